#include "reply_printer.hpp"

#include <cstdio>

namespace distdb::cli {

namespace {

Error reply_error(const Reply& reply) {
  if (reply.error) return *reply.error;
  return Error(ErrorKind::internal, reply.message.empty() ? "the node reported an error" : reply.message);
}

std::string json_error(const Error& error) {
  return "{\"kind\":" + json_string(to_string(error.kind)) + ",\"code\":" + std::to_string(error.code) +
         ",\"message\":" + json_string(error.message) + "}";
}

}  // namespace

std::string format_seconds(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", seconds < 0 ? 0.0 : seconds);
  return buf;
}

void ReplyPrinter::redirect_notice(const PeerConfig& coordinator) {
  std::ostream& to = options_.format == Format::table ? out_ : err_;
  to << tr(Msg::redirecting, {std::to_string(coordinator.id)}) << '\n';
  to.flush();
}

void ReplyPrinter::notice(const std::string& line) {
  std::ostream& to = options_.format == Format::table ? out_ : err_;
  out_.flush();
  to << line << '\n';
  to.flush();
}

void ReplyPrinter::print_node(std::ostream& to, const Reply& reply) {
  if (reply.node != 0) to << tr(Msg::node_executor, {std::to_string(reply.node)}) << '\n';
}

void ReplyPrinter::print(const Outcome& outcome) {
  if (options_.format == Format::json) {
    print_json(outcome);
    return;
  }
  const std::string secs = format_seconds(outcome.elapsed_sec);
  const bool timed = options_.show_timing;
  if (outcome.failure) {
    out_.flush();
    if (outcome.connection_failed()) {
      err_ << outcome.failure->message << '\n';
    } else {
      err_ << tr(Msg::error_line,
                 {std::to_string(outcome.failure->code), to_string(outcome.failure->kind), outcome.failure->message})
           << '\n';
    }
    err_.flush();
  } else if (outcome.reply && outcome.reply->status != ReplyStatus::ok) {
    const Error error = reply_error(*outcome.reply);
    out_.flush();
    err_ << tr(Msg::error_line, {std::to_string(error.code), to_string(error.kind), error.message}) << '\n';
    print_node(err_, *outcome.reply);
    err_.flush();
  } else if (outcome.reply) {
    const Reply& reply = *outcome.reply;
    const ResultSet& rs = reply.result;
    if (options_.format == Format::tsv) {
      if (rs.has_rows() && !rs.rows.empty()) print_tsv(out_, rs);
    } else if (rs.has_rows()) {
      if (rs.rows.empty()) {
        out_ << (timed ? tr(Msg::empty_set, {secs}) : tr(Msg::empty_set_untimed)) << '\n';
      } else {
        print_table(out_, rs, options_.table);
        const std::string n = std::to_string(rs.rows.size());
        if (timed) {
          out_ << (rs.rows.size() == 1 ? tr(Msg::rows_in_set_one, {secs})
                                        : tr(Msg::rows_in_set_many, {n, secs}));
        } else {
          out_ << (rs.rows.size() == 1 ? tr(Msg::rows_in_set_one_untimed)
                                        : tr(Msg::rows_in_set_many_untimed, {n}));
        }
        out_ << '\n';
      }
      print_node(out_, reply);
    } else {
      const std::string n = std::to_string(rs.rows_affected);
      if (timed) {
        out_ << (rs.rows_affected == 1 ? tr(Msg::query_ok_one, {secs}) : tr(Msg::query_ok_many, {n, secs}));
      } else {
        out_ << (rs.rows_affected == 1 ? tr(Msg::query_ok_one_untimed)
                                        : tr(Msg::query_ok_many_untimed, {n}));
      }
      out_ << '\n';
      print_node(out_, reply);
    }
  }
  if (options_.blank_line_after && options_.format == Format::table) out_ << '\n';
  out_.flush();
}

void ReplyPrinter::print_json(const Outcome& outcome) {
  std::string line = "{";
  if (outcome.failure) {
    line += "\"status\":\"error\",\"error\":" + json_error(*outcome.failure);
  } else if (outcome.reply) {
    const Reply& reply = *outcome.reply;
    const bool ok = reply.status == ReplyStatus::ok;
    line += std::string("\"status\":") + (ok ? "\"ok\"" : "\"error\"") + ",\"node\":" + std::to_string(reply.node);
    if (!ok) {
      line += ",\"error\":" + json_error(reply_error(reply));
    } else if (reply.result.has_rows()) {
      line += "," + json_rows_members(reply.result);
    } else {
      line += ",\"rows_affected\":" + std::to_string(reply.result.rows_affected) +
              ",\"last_insert_id\":" + std::to_string(reply.result.last_insert_id);
    }
  }
  line += ",\"time_sec\":" + format_seconds(outcome.elapsed_sec) + "}";
  out_ << line << '\n';
  out_.flush();
}

}  // namespace distdb::cli
