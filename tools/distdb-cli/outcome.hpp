// What running one statement produced.
#pragma once

#include <optional>

#include "distdb/error.hpp"
#include "distdb/reply.hpp"

namespace distdb::cli {

// A reply from a node (OK or ERROR, never REDIRECT: those are followed), or a
// failure before any node could answer (its message is ready for the user).
struct Outcome {
  std::optional<Reply> reply;
  std::optional<Error> failure;
  double elapsed_sec = 0;

  bool succeeded() const { return reply && reply->status == ReplyStatus::ok; }
  // Could not reach a node, or lost it mid-statement.
  bool connection_failed() const {
    return failure && (failure->kind == ErrorKind::unavailable || failure->kind == ErrorKind::outcome_unknown ||
                       failure->kind == ErrorKind::timeout);
  }
};

}  // namespace distdb::cli
