#include "interrupt.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <string>

#include "messages.hpp"

namespace distdb::cli {

namespace {

// Read and written by the handler: lock-free atomics only.
std::atomic<bool> g_interrupted{false};
std::atomic<bool> g_running{false};
std::atomic<int> g_presses_while_running{0};

// Prepared before the handler can run; the handler only write()s them.
std::string g_first_notice;
std::string g_second_notice;

struct sigaction g_previous {};

// The self-pipe: the handler writes a byte, wait_readable() polls for it.
int g_wake_read = -1;
int g_wake_write = -1;

void drain_wake_pipe() {
  char buf[64];
  while (g_wake_read >= 0 && ::read(g_wake_read, buf, sizeof buf) > 0) {
  }
}

void write_all(const std::string& text) {
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) return;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

extern "C" void on_sigint(int) {
  if (!g_running.load()) {
    const int saved_errno = errno;
    g_interrupted.store(true);
    if (g_wake_write >= 0) (void)::write(g_wake_write, "!", 1);
    errno = saved_errno;
    return;
  }
  if (g_presses_while_running.fetch_add(1) == 0) {
    write_all(g_first_notice);
  } else {
    write_all(g_second_notice);
    _exit(130);  // 128 + SIGINT, as shells report it
  }
}

}  // namespace

InterruptHandler::InterruptHandler() {
  g_first_notice = "\n" + tr(Msg::interrupt_while_running) + "\n";
  g_second_notice = "\n" + tr(Msg::interrupt_abandoned) + "\n";
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0) {
    g_wake_read = fds[0];
    g_wake_write = fds[1];
  }
  struct sigaction action {};
  action.sa_handler = on_sigint;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: a blocked read must return
  sigaction(SIGINT, &action, &g_previous);
}

InterruptHandler::~InterruptHandler() {
  sigaction(SIGINT, &g_previous, nullptr);
  for (int* fd : {&g_wake_read, &g_wake_write}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

bool InterruptHandler::take_interrupt() {
  drain_wake_pipe();
  return g_interrupted.exchange(false);
}

bool InterruptHandler::wait_readable(int fd) {
  for (;;) {
    if (g_interrupted.load()) return false;
    pollfd fds[2] = {{fd, POLLIN, 0}, {g_wake_read, POLLIN, 0}};
    const int n = poll(fds, g_wake_read >= 0 ? 2 : 1, -1);
    if (n < 0 && errno != EINTR) return true;  // let the read report the problem
    if (n > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !g_interrupted.load()) return true;
  }
}

void InterruptHandler::begin_running() {
  g_presses_while_running.store(0);
  g_running.store(true);
  // Pressed between Enter and now: too late to drop the line, so it is the
  // first press of a running statement.
  if (take_interrupt()) on_sigint(SIGINT);
}

void InterruptHandler::end_running() {
  g_running.store(false);
  (void)take_interrupt();  // a press during the statement was answered already
}

}  // namespace distdb::cli
