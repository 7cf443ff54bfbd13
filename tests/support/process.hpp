// Child processes for end-to-end tests: start a program, signal it, wait for
// it with a deadline, read what it wrote.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace distdb::test {

class Process {
 public:
  // Starts `argv[0]` with arguments; stdout and stderr go to `log_path`
  // (appended), so a failing test can show them.
  Process(std::vector<std::string> argv, std::string log_path);
  ~Process();  // kills (SIGKILL) and reaps the child if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // Waits for exit; returns the exit code (128+signal if killed), or nullopt on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  // Everything the process wrote so far.
  std::string output() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string log_path_;
};

// Polls `condition` every few milliseconds until it holds or `timeout` passes.
template <class F>
bool wait_until(F condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    struct timespec ts{0, 10 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
  return condition();
}

// A TCP port on 127.0.0.1 that is free right now.
int free_port();

// A fresh directory under the system temp dir.
std::string make_temp_dir(const std::string& prefix);

}  // namespace distdb::test
