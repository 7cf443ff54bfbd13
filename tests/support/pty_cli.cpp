#include "pty_cli.hpp"

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>

#include "process.hpp"

namespace distdb::test {

PtyCli::PtyCli(const std::vector<std::string>& args, const std::string& histfile,
               const std::vector<std::pair<std::string, std::string>>& env) {
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
    for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
    execv(cargs[0], cargs.data());
    _exit(127);
  }
}

PtyCli::~PtyCli() {
  if (pid_ > 0 && !exited_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (master_ >= 0) close(master_);
}

void PtyCli::type(const std::string& keys) {
  if (::write(master_, keys.data(), keys.size()) != static_cast<ssize_t>(keys.size())) {
    throw std::runtime_error("write to the pseudo-terminal failed");
  }
}

bool PtyCli::expect(const std::string& text, std::chrono::milliseconds timeout) {
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

bool PtyCli::expect_prompt(const std::string& prompt, std::chrono::milliseconds timeout) {
  if (!expect(prompt, timeout)) return false;
#ifdef DISTDB_CLI_HAVE_LIBEDIT
  // On Linux the master side reports the slave's settings.
  return wait_until(
      [&] {
        termios mode{};
        return tcgetattr(master_, &mode) == 0 && (mode.c_lflag & ICANON) == 0;
      },
      timeout);
#else
  return true;
#endif
}

int PtyCli::wait_exit(std::chrono::milliseconds timeout) {
  int status = 0;
  const bool done = wait_until([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, timeout);
  if (!done) return -1;
  exited_ = true;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace distdb::test
