#include "shell.hpp"

#include <cctype>
#include <charconv>
#include <cstdio>
#include <sstream>

#include "interrupt.hpp"
#include "terminal.hpp"

namespace distdb::cli {

namespace {

// Marks a call that talks to the cluster, for Ctrl-C (see interrupt.hpp).
class Running {
 public:
  Running() { InterruptHandler::begin_running(); }
  ~Running() { InterruptHandler::end_running(); }
  Running(const Running&) = delete;
  Running& operator=(const Running&) = delete;
};

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

std::vector<std::string> split_words(std::string_view s) {
  std::vector<std::string> words;
  std::istringstream in{std::string(s)};
  std::string w;
  while (in >> w) words.push_back(w);
  return words;
}

// The node would not run it: no login, or a refused one. Nothing ran.
bool needs_login(const Outcome& outcome) {
  if (outcome.failure) return outcome.failure->kind == ErrorKind::unauthenticated;
  return outcome.reply && outcome.reply->status == ReplyStatus::error && outcome.reply->error &&
         outcome.reply->error->kind == ErrorKind::unauthenticated;
}

// "host:port" or "[v6]:port".
std::optional<std::pair<std::string, std::uint16_t>> parse_host_port(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const auto port = parse_port(text.substr(colon + 1));
  if (!port || host.empty()) return std::nullopt;
  return std::make_pair(std::string(host), *port);
}

}  // namespace

std::optional<std::uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  const char* const end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value == 0 || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

Shell::Shell(Session& session, ReplyPrinter& printer, std::istream& in, std::ostream& out, std::ostream& err,
             ShellOptions options, LineReader* reader)
    : session_(session), printer_(printer), in_(in), out_(out), err_(err), options_(options), reader_(reader) {
  session_.set_notifier([this](const std::string& line) { printer_.notice(line); });
}

std::optional<std::string> Shell::read_line(const std::string& prompt) {
  if (reader_ != nullptr) return reader_->read_line(prompt);
  out_ << prompt << std::flush;
  std::string line;
  if (!std::getline(in_, line)) {
    if (InterruptHandler::take_interrupt()) {
      // The read was interrupted, not at its end: the stream can go on.
      in_.clear();
      std::clearerr(stdin);
      interrupted_ = true;
    }
    return std::nullopt;
  }
  return line;
}

bool Shell::take_interrupted() {
  const bool was = interrupted_ || InterruptHandler::take_interrupt();
  interrupted_ = false;
  return was;
}

int Shell::exit_code() const {
  // Like the mariadb client, an interactive session that ends normally exits 0:
  // its errors were shown as they happened.
  if (options_.interactive) return kExitOk;
  if (connection_failed_) return kExitUsageOrConnection;
  if (statement_failed_) return kExitStatementFailed;
  return kExitOk;
}

Shell::Flow Shell::after_failure(bool connection) {
  (connection ? connection_failed_ : statement_failed_) = true;
  return options_.interactive || options_.force ? Flow::go_on : Flow::stop;
}

std::string Shell::prompt() const {
  if (!splitter_.empty()) return "    -> ";
  return "distdb [" + session_.address() + "]> ";
}

void Shell::print_banner() {
  out_ << tr(Msg::banner_title, {DISTDB_VERSION}) << '\n'
       << tr(Msg::banner_hint) << "\n\n";
}

std::optional<std::pair<std::string, std::uint16_t>> Shell::ask_node() {
  auto answer = read_line(tr(Msg::prompt_node_ip));
  if (!answer) {
    (void)take_interrupted();  // Ctrl-C while asking: leave, as the seed's client did
    return std::nullopt;
  }
  std::string host(trim(*answer));
  if (host.empty()) host = kDefaultHost;
  for (;;) {
    answer = read_line(tr(Msg::prompt_node_port));
    if (!answer) {
      (void)take_interrupted();
      return std::nullopt;
    }
    const std::string_view text = trim(*answer);
    if (text.empty()) return std::make_pair(host, kDefaultPort);
    if (auto port = parse_port(text)) return std::make_pair(host, *port);
    err_ << tr(Msg::invalid_port, {std::string(text)}) << '\n';
  }
}

bool Shell::connect_first() {
  if (auto st = session_.connect(); !st) {
    err_ << st.error().message << '\n';
    if (st.error().kind == ErrorKind::unauthenticated && session_.user().empty())
      err_ << tr(Msg::login_hint) << '\n';
    connection_failed_ = true;
    return false;
  }
  return true;
}

std::optional<std::string> Shell::read_password(const std::string& prompt) {
  if (reader_ != nullptr) return tools::read_secret_line(STDIN_FILENO, out_, prompt);
  // Plain lines: through the same stream as the others (it may hold keys
  // typed ahead), with the terminal's echo off.
  std::optional<std::string> line;
  bool echo_was_off = false;
  {
    const tools::EchoOff quiet(STDIN_FILENO);
    echo_was_off = quiet.active();
    out_ << prompt << std::flush;
    std::string text;
    if (std::getline(in_, text)) {
      line = std::move(text);
    } else if (InterruptHandler::take_interrupt()) {
      in_.clear();
      std::clearerr(stdin);
    }
  }
  if (echo_was_off) out_ << '\n' << std::flush;
  return line;
}

bool Shell::ask_login() {
  if (!options_.interactive) return false;
  const std::string fallback = session_.user().empty() ? tools::os_user_name() : session_.user();
  auto user =
      read_line(fallback.empty() ? tr(Msg::prompt_user_no_default) : tr(Msg::prompt_user, {fallback}));
  if (!user) {
    (void)take_interrupted();
    out_ << '\n';
    return false;
  }
  std::string name(trim(*user));
  if (name.empty()) name = fallback;
  if (name.empty()) return false;
  auto password = read_password(tr(Msg::prompt_password));
  if (!password) {
    (void)take_interrupted();
    return false;
  }
  session_.set_credentials(std::move(name), std::move(*password));
  return true;
}

Status Shell::connect_with_login() {
  for (int tries = 0;; ++tries) {
    Status st = [&] {
      const Running running;
      return session_.connect();
    }();
    if (st) return st;
    err_ << st.error().message << '\n';
    if (st.error().kind != ErrorKind::unauthenticated || tries >= kLoginTries || !ask_login()) return st;
  }
}

int Shell::run_interactive(bool ask_for_node) {
  if (ask_for_node) {
    auto node = ask_node();
    if (!node) {
      out_ << '\n';
      return kExitOk;
    }
    session_.set_node(node->first, node->second);
  }
  // A node that is down is reported, but the shell stays: :node, or retry later.
  (void)connect_with_login();
  print_banner();
  for (;;) {
    const auto line = read_line(prompt());
    if (!line && take_interrupted()) {
      if (reader_ != nullptr) out_ << "^C";  // the editor's raw mode does not echo it; a plain terminal does
      // Ctrl-C at the prompt: the line, and any statement begun on earlier
      // lines, are dropped; nothing was sent.
      splitter_.clear();
      out_ << '\n';
      continue;
    }
    if (!line) {  // Ctrl-D
      out_ << '\n' << tr(Msg::bye) << '\n';
      break;
    }
    if (reader_ != nullptr) reader_->remember(*line);
    if (feed_line(*line) == Flow::stop) {
      out_ << tr(Msg::bye) << '\n';
      break;
    }
  }
  out_.flush();
  return exit_code();
}

int Shell::run_batch() {
  if (!connect_first()) return exit_code();
  std::string line;
  while (std::getline(in_, line)) {
    if (feed_line(line) == Flow::stop) return exit_code();
  }
  finish_pending();
  return exit_code();
}

int Shell::run_text(std::string_view sql) {
  if (!connect_first()) return exit_code();
  while (!sql.empty()) {
    const auto nl = sql.find('\n');
    const std::string_view line = sql.substr(0, nl);
    sql = nl == std::string_view::npos ? std::string_view() : sql.substr(nl + 1);
    if (feed_line(line) == Flow::stop) return exit_code();
  }
  finish_pending();
  return exit_code();
}

Shell::Flow Shell::feed_line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF scripts
  if (splitter_.empty()) {
    const std::string_view text = trim(line);
    if (!text.empty() && text.front() == ':') {
      splitter_.clear();
      return run_command(text);
    }
    // The mariadb client's ways out, for its users' fingers.
    std::string_view word = text;
    while (!word.empty() && (word.back() == ';' || is_blank(word.back()))) word.remove_suffix(1);
    if (iequals(word, "exit") || iequals(word, "quit") || word == "\\q") return Flow::stop;
  }
  for (const std::string& statement : splitter_.feed(line)) {
    if (run_statement(statement) == Flow::stop) {
      splitter_.clear();
      return Flow::stop;
    }
  }
  return Flow::go_on;
}

Shell::Flow Shell::finish_pending() {
  const std::string rest = splitter_.take_rest();
  if (rest.empty()) return Flow::go_on;
  return run_statement(rest);
}

Shell::Flow Shell::run_statement(const std::string& sql) {
  for (int tries = 0;; ++tries) {
    const Outcome outcome = [&] {
      const Running running;
      return session_.run(sql, [this](const PeerConfig& c) { printer_.redirect_notice(c); });
    }();
    printer_.print(outcome);
    if (outcome.succeeded()) return Flow::go_on;
    // The node would not run it without a login: ask for one, run it again.
    if (needs_login(outcome) && tries < kLoginTries && ask_login()) continue;
    if (needs_login(outcome) && !options_.interactive && session_.user().empty()) {
      err_ << tr(Msg::login_hint) << '\n';
    }
    return after_failure(outcome.connection_failed());
  }
}

Shell::Flow Shell::run_command(std::string_view line) {
  const std::vector<std::string> words = split_words(line);
  const std::string& name = words.front();
  const std::vector<std::string> args(words.begin() + 1, words.end());
  if (name == ":exit" || name == ":quit") return Flow::stop;
  if (name == ":help") {
    out_ << tr(Msg::help_text) << '\n';
    if (options_.interactive) out_ << '\n';
    out_.flush();
    return Flow::go_on;
  }
  if (name == ":info") return command_info();
  if (name == ":status") return command_status();
  if (name == ":leader") return command_leader();
  if (name == ":check") return command_check();
  if (name == ":timer") return command_timer(args);
  if (name == ":node") return command_node(args);
  out_.flush();
  err_ << tr(Msg::unknown_command, {name}) << '\n';
  return after_failure(false);
}

std::optional<Reply> Shell::fetch_status() {
  for (int tries = 0;; ++tries) {
    auto status = [&] {
      const Running running;
      return session_.status();
    }();
    if (status && status->status == ReplyStatus::ok) return std::move(*status);
    Outcome outcome;
    if (status) {
      outcome.reply = std::move(*status);
    } else {
      outcome.failure = status.error();
    }
    // Errors are printed like a statement's, in any format but JSON (this is for humans).
    PrinterOptions human = printer_.options();
    if (human.format == Format::json) human.format = Format::table;
    ReplyPrinter(out_, err_, human).print(outcome);
    if (needs_login(outcome) && tries < kLoginTries && ask_login()) continue;
    (void)after_failure(outcome.connection_failed());
    return std::nullopt;
  }
}

Shell::Flow Shell::command_info() {
  out_ << tr(Msg::info_address, {session_.address()}) << '\n';
  const auto reply = fetch_status();
  if (!reply) return options_.interactive || options_.force ? Flow::go_on : Flow::stop;
  out_ << tr(Msg::info_node, {std::to_string(reply->node)}) << '\n';
  const std::vector<MemberStatus> members = parse_status(reply->result);
  if (const MemberStatus* c = find_coordinator(members)) {
    out_ << tr(Msg::info_coordinator, {std::to_string(c->id), c->address()}) << '\n';
  } else {
    out_ << tr(Msg::info_coordinator_unknown) << '\n';
  }
  print_table(out_, reply->result, printer_.options().table);
  if (options_.interactive) out_ << '\n';
  out_.flush();
  return Flow::go_on;
}

Shell::Flow Shell::command_status() {
  const auto reply = fetch_status();
  if (!reply) return options_.interactive || options_.force ? Flow::go_on : Flow::stop;
  const std::vector<MemberStatus> members = parse_status(reply->result);
  print_table(out_, status_table(members), printer_.options().table);
  const auto epoch = cluster_epoch(members);
  out_ << (epoch ? tr(Msg::status_epoch, {std::to_string(*epoch)})
                 : tr(Msg::status_epoch_unknown))
       << '\n';
  if (options_.interactive) out_ << '\n';
  out_.flush();
  return Flow::go_on;
}

Shell::Flow Shell::command_leader() {
  const auto reply = fetch_status();
  if (!reply) return options_.interactive || options_.force ? Flow::go_on : Flow::stop;
  const std::vector<MemberStatus> members = parse_status(reply->result);
  if (const MemberStatus* c = find_coordinator(members)) {
    out_ << tr(Msg::info_coordinator, {std::to_string(c->id), c->address()}) << '\n';
  } else {
    out_ << tr(Msg::info_coordinator_unknown) << '\n';
  }
  if (options_.interactive) out_ << '\n';
  out_.flush();
  return Flow::go_on;
}

// The checksum round's answer as any reply is printed (its one row is the
// checksum), then the members, which show whoever left the view.
Shell::Flow Shell::command_check() {
  auto reply = [&] {
    const Running running;
    return session_.check();
  }();
  Outcome outcome;
  if (reply) {
    outcome.reply = std::move(*reply);
  } else {
    outcome.failure = reply.error();
  }
  ReplyPrinter(out_, err_, printer_.options()).print(outcome);
  const bool ok = outcome.reply && outcome.reply->status == ReplyStatus::ok;
  if (!ok) return after_failure(outcome.connection_failed());
  return command_status();
}

Shell::Flow Shell::command_timer(const std::vector<std::string>& args) {
  if (args.size() == 1 && (iequals(args[0], "on") || iequals(args[0], "off"))) {
    printer_.set_show_timing(iequals(args[0], "on"));
  } else if (!args.empty()) {
    out_.flush();
    err_ << tr(Msg::timer_usage) << '\n';
    return after_failure(false);
  }
  out_ << tr(printer_.options().show_timing ? Msg::timer_state_on : Msg::timer_state_off) << '\n';
  if (options_.interactive) out_ << '\n';
  out_.flush();
  return Flow::go_on;
}

Shell::Flow Shell::command_node(const std::vector<std::string>& args) {
  std::optional<std::pair<std::string, std::uint16_t>> target;
  if (args.empty()) {
    if (!options_.interactive) {
      err_ << tr(Msg::node_usage) << '\n';
      return after_failure(false);
    }
    target = ask_node();
    if (!target) return Flow::stop;  // end of input while asking
  } else if (args.size() == 1) {
    target = parse_host_port(args[0]);
  } else if (args.size() == 2) {
    if (auto port = parse_port(args[1])) {
      target = std::make_pair(args[0], *port);
    } else {
      err_ << tr(Msg::invalid_port, {args[1]}) << '\n';
      return after_failure(false);
    }
  }
  if (!target) {
    err_ << tr(Msg::node_usage) << '\n';
    return after_failure(false);
  }
  // The same login as before, on the new node; asked for again if refused there.
  session_.set_node(target->first, target->second);
  if (!connect_with_login()) return after_failure(true);
  return Flow::go_on;
}

}  // namespace distdb::cli
