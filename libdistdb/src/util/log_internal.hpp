// Internal logging: DISTDB_LOG(info) << "text " << value;
// The stream is only built when the level is enabled.
#pragma once

#include <sstream>
#include <string>

#include "distdb/log.hpp"

namespace distdb::detail {

bool log_enabled(LogLevel level);
void log_write(LogLevel level, const std::string& line);

class LogLine {
 public:
  explicit LogLine(LogLevel level) : level_(level) {}
  ~LogLine() { log_write(level_, out_.str()); }
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;
  template <class T>
  LogLine& operator<<(const T& v) {
    out_ << v;
    return *this;
  }

 private:
  LogLevel level_;
  std::ostringstream out_;
};

}  // namespace distdb::detail

#define DISTDB_LOG(lvl)                                                  \
  if (!::distdb::detail::log_enabled(::distdb::LogLevel::lvl)) {         \
  } else                                                                 \
    ::distdb::detail::LogLine(::distdb::LogLevel::lvl)
