#include "distdb/error.hpp"

namespace distdb {

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::sql: return "sql";
    case ErrorKind::storage_unavailable: return "storage_unavailable";
    case ErrorKind::outcome_unknown: return "outcome_unknown";
    case ErrorKind::invalid_request: return "invalid_request";
    case ErrorKind::message_too_large: return "message_too_large";
    case ErrorKind::not_coordinator: return "not_coordinator";
    case ErrorKind::no_quorum: return "no_quorum";
    case ErrorKind::timeout: return "timeout";
    case ErrorKind::unavailable: return "unavailable";
    case ErrorKind::unauthenticated: return "unauthenticated";
    case ErrorKind::config: return "config";
    case ErrorKind::io: return "io";
    case ErrorKind::internal: return "internal";
  }
  return "internal";
}

}  // namespace distdb
