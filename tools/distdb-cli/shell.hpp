// The read-eval-print loop: statements ended by ';', commands starting with
// ':', prompts and banner on a terminal, none for piped input.
#pragma once

#include <cstdint>
#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "line_reader.hpp"
#include "messages.hpp"
#include "reply_printer.hpp"
#include "session.hpp"
#include "statement_splitter.hpp"

namespace distdb::cli {

constexpr int kExitOk = 0;
constexpr int kExitStatementFailed = 1;
constexpr int kExitUsageOrConnection = 2;

constexpr const char* kDefaultHost = "127.0.0.1";
constexpr std::uint16_t kDefaultPort = 5000;

// "5000" -> 5000; nullopt unless a whole number from 1 to 65535.
std::optional<std::uint16_t> parse_port(std::string_view text);

struct ShellOptions {
  bool interactive = false;  // a terminal: prompts, banner, the shell survives every error
  bool force = false;        // non-interactive: go on after a failed statement
};

class Shell {
 public:
  // `reader`, when given, supplies the interactive lines (and the answers to
  // the node prompts) instead of `in`.
  Shell(Session& session, ReplyPrinter& printer, std::istream& in, std::ostream& out, std::ostream& err,
        ShellOptions options, LineReader* reader = nullptr);

  // A terminal session: optionally asks for the node first (the seed's
  // prompts), then banner and prompt loop until :exit or end of input.
  int run_interactive(bool ask_for_node);
  // Statements read from a pipe or file, no prompts.
  int run_batch();
  // The statements of one string (-e).
  int run_text(std::string_view sql);

 private:
  enum class Flow { go_on, stop };

  // Feeds one input line; runs what it completes.
  Flow feed_line(std::string_view line);
  Flow run_statement(const std::string& sql);
  Flow run_command(std::string_view line);
  Flow finish_pending();  // end of input: runs an unterminated statement

  Flow command_info();
  Flow command_status();
  Flow command_leader();
  Flow command_check();
  Flow command_timer(const std::vector<std::string>& args);
  // The node's STATUS answer; nullopt after printing why there is none.
  std::optional<Reply> fetch_status();
  // Shows `prompt`, reads a line (through the reader when there is one);
  // nullopt at the end of input or when Ctrl-C interrupted the read.
  std::optional<std::string> read_line(const std::string& prompt);
  // Whether the last nullopt from read_line() was Ctrl-C; clears it.
  bool take_interrupted();
  Flow command_node(const std::vector<std::string>& args);
  // The seed's two prompts; nullopt at end of input.
  std::optional<std::pair<std::string, std::uint16_t>> ask_node();
  // Connects at start-up (batch and -e); false after printing why not.
  bool connect_first();
  // Interactive sessions, when a node answers that it requires a login (or
  // refused one): asks for a user (the OS user by default) and a password
  // (not echoed) and gives them to the session. False when the user gave
  // none (end of input, Ctrl-C) or the session is not interactive.
  bool ask_login();
  // Session::connect(), asking for a login (up to kLoginTries times) while
  // the node refuses to go on without one; each error is printed.
  Status connect_with_login();
  std::optional<std::string> read_password(const std::string& prompt);

  void print_banner();
  std::string prompt() const;
  int exit_code() const;
  Flow after_failure(bool connection);

  Session& session_;
  ReplyPrinter& printer_;
  std::istream& in_;
  std::ostream& out_;
  std::ostream& err_;
  ShellOptions options_;
  LineReader* reader_;
  StatementSplitter splitter_;
  static constexpr int kLoginTries = 3;

  bool statement_failed_ = false;
  bool connection_failed_ = false;
  bool interrupted_ = false;
};

}  // namespace distdb::cli
