#include "terminal.hpp"

#include <pwd.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace distdb::tools {

EchoOff::EchoOff(int fd) : fd_(fd) {
  if (isatty(fd_) != 1 || tcgetattr(fd_, &saved_) != 0) return;
  termios quiet = saved_;
  quiet.c_lflag &= static_cast<tcflag_t>(~(ECHO | ECHONL));
  quiet.c_lflag |= ICANON;
  // TCSANOW: keys typed ahead belong to the answer; TCSAFLUSH would drop them.
  active_ = tcsetattr(fd_, TCSANOW, &quiet) == 0;
}

EchoOff::~EchoOff() {
  if (active_) tcsetattr(fd_, TCSANOW, &saved_);
}

std::optional<std::string> read_secret_line(int fd, std::ostream& out, const std::string& prompt) {
  std::string line;
  bool complete = false;
  bool interrupted = false;
  bool echo_was_off = false;
  {
    // Echo off before the prompt shows: keys typed as soon as it appears
    // must not be echoed.
    const EchoOff quiet(fd);
    echo_was_off = quiet.active();
    out << prompt << std::flush;
    char c = 0;
    for (;;) {
      const ssize_t n = ::read(fd, &c, 1);
      if (n == 1) {
        if (c == '\n') {
          complete = true;
          break;
        }
        line += c;
        continue;
      }
      if (n < 0 && errno == EINTR) interrupted = true;
      break;
    }
  }
  // The Enter the user typed was not echoed either.
  if (echo_was_off) out << '\n' << std::flush;
  if (interrupted || (!complete && line.empty())) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

std::string os_user_name() {
  const char* env = std::getenv("USER");
  if (env != nullptr && env[0] != '\0') return env;
  if (const passwd* pw = getpwuid(getuid()); pw != nullptr && pw->pw_name != nullptr) return pw->pw_name;
  return {};
}

}  // namespace distdb::tools
