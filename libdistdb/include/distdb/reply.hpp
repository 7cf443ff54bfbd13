// What a node answers to a client request.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "distdb/config.hpp"
#include "distdb/error.hpp"
#include "distdb/value.hpp"

namespace distdb {

// The seed's three statuses.
enum class ReplyStatus { ok, redirect, error };

struct Reply {
  std::optional<std::uint64_t> id;  // echoes the request's id (pipelined connections)
  ReplyStatus status = ReplyStatus::ok;
  NodeId node = 0;                  // the node that executed the statement (or that answered)
  ResultSet result;                 // rows for reads; rows_affected / last_insert_id for writes
  std::string message;              // a human-readable summary
  std::optional<Error> error;       // set when status == error
  std::optional<PeerConfig> coordinator;  // set when status == redirect: where to send the write
  // The login a node expects ("SCRAM-SHA-256", "PLAIN"), named in its
  // error replies of kind unauthenticated; "off" in its answer to a login
  // when it authenticates nobody.
  std::string auth_mechanism;
};

}  // namespace distdb
