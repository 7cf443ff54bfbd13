// Logging. Lines go to standard error by default; an embedding application
// can route them elsewhere.
#pragma once

#include <functional>
#include <string_view>

#include "distdb/config.hpp"
#include "distdb/export.hpp"

namespace distdb {

using LogSink = std::function<void(LogLevel level, std::string_view line)>;

// Messages below `level` are dropped. Thread-safe.
DISTDB_API void set_log_level(LogLevel level);
DISTDB_API LogLevel log_level();
// Replaces the sink (nullptr restores standard error). Thread-safe.
DISTDB_API void set_log_sink(LogSink sink);

}  // namespace distdb
