// Reading a password from a terminal without showing it.
#pragma once

#include <termios.h>

#include <optional>
#include <ostream>
#include <string>

namespace distdb::tools {

// Turns the echo of terminal `fd` off for its lifetime (nothing when `fd`
// is not a terminal).
class EchoOff {
 public:
  explicit EchoOff(int fd);
  ~EchoOff();
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;
  // Whether the echo was turned off.
  bool active() const { return active_; }

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

// Shows `prompt` on `out` and reads one line from file descriptor `fd`.
// When `fd` is a terminal its echo is off while the line is typed (and
// back on afterwards, also when interrupted); otherwise the line is read as
// it comes. The line ends at a newline, which is not part of it; a CR
// before it is dropped too. nullopt at end of input, or when a signal
// (Ctrl-C) interrupted the read.
std::optional<std::string> read_secret_line(int fd, std::ostream& out, const std::string& prompt);

// The name of the user running the program ($USER, else the password
// database); empty when neither knows.
std::string os_user_name();

}  // namespace distdb::tools
