// distdb-cli on a real pseudo-terminal, as a user at a keyboard sees it:
// banner and prompt, a statement, recalling it with the up arrow, the history
// kept in a file for the next session, :exit.
#include <doctest/doctest.h>

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "node_fixture.hpp"

using namespace distdb::test;
using namespace std::chrono_literals;

namespace {

#ifdef DISTDB_CLI_HAVE_LIBEDIT
constexpr const char* kUpArrow = "\x1b[A";
#endif

// distdb-cli started on the slave side of a new pseudo-terminal.
class PtyCli {
 public:
  PtyCli(const std::vector<std::string>& args, const std::string& histfile) {
    const char* bin = std::getenv("DISTDB_CLI_BIN");
    if (bin == nullptr) throw std::runtime_error("DISTDB_CLI_BIN is not set (run through meson test)");
    std::vector<std::string> argv{bin};
    argv.insert(argv.end(), args.begin(), args.end());
    winsize size{};
    size.ws_row = 24;
    size.ws_col = 120;
    pid_ = forkpty(&master_, nullptr, nullptr, &size);
    if (pid_ < 0) throw std::runtime_error("forkpty failed");
    if (pid_ == 0) {
      std::vector<char*> cargs;
      for (auto& a : argv) cargs.push_back(a.data());
      cargs.push_back(nullptr);
      for (const char* var : {"LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"}) unsetenv(var);
      setenv("TERM", "xterm", 1);
      setenv("DISTDB_HISTFILE", histfile.c_str(), 1);
      execv(cargs[0], cargs.data());
      _exit(127);
    }
  }
  ~PtyCli() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) close(master_);
  }
  PtyCli(const PtyCli&) = delete;
  PtyCli& operator=(const PtyCli&) = delete;

  void type(const std::string& keys) {
    if (::write(master_, keys.data(), keys.size()) != static_cast<ssize_t>(keys.size())) {
      throw std::runtime_error("write to the pseudo-terminal failed");
    }
  }

  // Reads until `text` has appeared in what was read since the last call;
  // true if it did before `timeout`. Everything read is in seen().
  bool expect(const std::string& text, std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto at = fresh_.find(text);
      if (at != std::string::npos) {
        fresh_.erase(0, at + text.size());
        return true;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{master_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(master_, buf, sizeof buf);
      if (n <= 0) return fresh_.find(text) != std::string::npos;  // EIO: the shell is gone
      seen_.append(buf, static_cast<std::size_t>(n));
      fresh_.append(buf, static_cast<std::size_t>(n));
    }
  }

  const std::string& seen() const { return seen_; }

  // The exit status, or -1 if the shell is still running after `timeout`.
  int wait_exit(std::chrono::milliseconds timeout = 10s) {
    int status = 0;
    const bool done = wait_until([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, timeout);
    if (!done) return -1;
    exited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  int master_ = -1;
  bool exited_ = false;
  std::string seen_;
  std::string fresh_;
};

#ifdef DISTDB_CLI_HAVE_LIBEDIT
std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}
#endif

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE("a terminal: prompt, a statement, up-arrow recall, history kept for the next session, :exit") {
    NodeProcess node;
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
    const std::string dir = make_temp_dir("distdb-cli-pty");
    const std::string histfile = dir + "/history";
    const std::string prompt = "distdb [127.0.0.1:" + std::to_string(node.port()) + "]> ";
    {
      PtyCli cli({"-P", std::to_string(node.port())}, histfile);
      REQUIRE_MESSAGE(cli.expect("SQL statements end with ';'"), cli.seen());
      REQUIRE_MESSAGE(cli.expect(prompt), cli.seen());
      cli.type("SELECT 41+1 AS v;\r");
      CHECK_MESSAGE(cli.expect("| 42 |\r\n+----+\r\n1 row in set ("), cli.seen());
      CHECK_MESSAGE(cli.expect("Node executor: 1\r\n\r\n" + prompt), cli.seen());
#ifdef DISTDB_CLI_HAVE_LIBEDIT
      cli.type(kUpArrow);  // the statement comes back on the line...
      CHECK_MESSAGE(cli.expect("SELECT 41+1 AS v;"), cli.seen());
      cli.type("\r");  // ...and runs again
      CHECK_MESSAGE(cli.expect("| 42 |"), cli.seen());
      CHECK_MESSAGE(cli.expect(prompt), cli.seen());
#endif
      cli.type(":exit\r");
      CHECK_MESSAGE(cli.expect("Bye\r\n"), cli.seen());
      CHECK(cli.wait_exit() == 0);
    }
#ifdef DISTDB_CLI_HAVE_LIBEDIT
    // The history outlives the session (repeated lines kept once).
    const std::string saved = read_file(histfile);
    CHECK(saved.find("SELECT") != std::string::npos);
    CHECK(saved.find(":exit") != std::string::npos);
    {
      PtyCli cli({"-P", std::to_string(node.port())}, histfile);
      REQUIRE_MESSAGE(cli.expect(prompt), cli.seen());
      cli.type(kUpArrow);
      CHECK_MESSAGE(cli.expect(":exit"), cli.seen());
      cli.type(kUpArrow);
      CHECK_MESSAGE(cli.expect("SELECT 41+1 AS v;"), cli.seen());
      cli.type("\r");
      CHECK_MESSAGE(cli.expect("| 42 |"), cli.seen());
      // Keys are typed at the prompt: typed ahead, the terminal (not yet in
      // the editor's raw mode) would take Ctrl-D for itself.
      CHECK_MESSAGE(cli.expect(prompt), cli.seen());
      cli.type("\x04");  // Ctrl-D on an empty line leaves too
      CHECK_MESSAGE(cli.expect("Bye"), cli.seen());
      CHECK(cli.wait_exit() == 0);
    }
#endif
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
}
