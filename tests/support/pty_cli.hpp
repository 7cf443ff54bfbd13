// distdb-cli on a real pseudo-terminal, for tests that type at it as a user
// at a keyboard would and read what the terminal shows.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace distdb::test {

// Keys as a terminal sends them.
inline constexpr const char* kUpArrow = "\x1b[A";
inline constexpr const char* kCtrlC = "\x03";
inline constexpr const char* kCtrlD = "\x04";

// distdb-cli ($DISTDB_CLI_BIN) started on the slave side of a new
// pseudo-terminal, 120 columns wide, with TERM=xterm, no locale variables
// but those in `env`, and its history in `histfile`.
class PtyCli {
 public:
  PtyCli(const std::vector<std::string>& args, const std::string& histfile,
         const std::vector<std::pair<std::string, std::string>>& env = {});
  ~PtyCli();  // SIGKILL if still running
  PtyCli(const PtyCli&) = delete;
  PtyCli& operator=(const PtyCli&) = delete;

  void type(const std::string& keys);
  // Reads until `text` has appeared in what was read since the last call;
  // true if it did before `timeout`. Everything read is in seen().
  bool expect(const std::string& text, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // expect(prompt), then waits until the line editor has the terminal in
  // its raw mode. libedit prints the prompt first and switches the mode
  // after: a key sent in between is read in the terminal's line mode, where
  // Ctrl-D, for one, turns into a NUL byte on the switch.
  bool expect_prompt(const std::string& prompt, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  const std::string& seen() const { return seen_; }
  // What was read since the last successful expect() (or the start).
  const std::string& fresh() const { return fresh_; }
  // The exit status, or -1 if the shell is still running after `timeout`.
  int wait_exit(std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  pid_t pid_ = -1;
  int master_ = -1;
  bool exited_ = false;
  std::string seen_;
  std::string fresh_;
};

}  // namespace distdb::test
