#include "history.hpp"

namespace distdb::fault {

const char* op_name(OpKind kind) {
  switch (kind) {
    case OpKind::append:
      return "append";
    case OpKind::transfer:
      return "transfer";
    case OpKind::read_total:
      return "read-total";
    case OpKind::auto_insert:
      return "auto-insert";
    case OpKind::seq_insert:
      return "seq-insert";
    case OpKind::audit_update:
      return "audit-update";
  }
  return "?";
}

const char* outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::ok:
      return "ok";
    case Outcome::failed:
      return "failed";
    case Outcome::unknown:
      return "unknown";
  }
  return "?";
}

std::optional<std::int64_t> value_as_int(const Value& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return *i;
  if (const auto* s = std::get_if<std::string>(&v)) {
    try {
      std::size_t used = 0;
      const std::int64_t n = std::stoll(*s, &used);
      if (used == s->size()) return n;
    } catch (...) {
    }
  }
  return std::nullopt;
}

Outcome classify_write(const Result<Reply>& reply, std::string& detail) {
  if (!reply) {
    detail = std::string(to_string(reply.error().kind)) + ": " + reply.error().message;
    // The client reports `unavailable` only when the request did not leave
    // (refused connection, nothing written); once it is sent, a broken
    // connection becomes outcome_unknown and a silent one timeout
    // (libdistdb/src/net/client.cpp, Impl::broken).
    return reply.error().kind == ErrorKind::unavailable ? Outcome::failed : Outcome::unknown;
  }
  if (reply->status == ReplyStatus::ok) return Outcome::ok;
  if (reply->status == ReplyStatus::redirect) {  // not asked for: nothing was run
    detail = "redirect";
    return Outcome::failed;
  }
  const ErrorKind kind = reply->error ? reply->error->kind : ErrorKind::internal;
  detail = std::string(to_string(kind)) + ": " + (reply->error ? reply->error->message : reply->message);
  switch (kind) {
    // docs/protocol.md, "Error kinds": the statement did not run.
    case ErrorKind::sql:
    case ErrorKind::storage_unavailable:
    case ErrorKind::invalid_request:
    case ErrorKind::message_too_large:
    case ErrorKind::not_coordinator:
    case ErrorKind::no_quorum:
    case ErrorKind::unavailable:
    case ErrorKind::unauthenticated:
      return Outcome::failed;
    // Maybe ran; and a kind we do not know is treated as internal, which
    // promises nothing.
    default:
      return Outcome::unknown;
  }
}

std::int64_t History::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start_).count();
}

void History::add(Operation op) {
  std::lock_guard lock(mutex_);
  ops_.push_back(std::move(op));
}

std::vector<Operation> History::snapshot() const {
  std::lock_guard lock(mutex_);
  return ops_;
}

}  // namespace distdb::fault
