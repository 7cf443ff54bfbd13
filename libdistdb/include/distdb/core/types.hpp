// Vocabulary of the replication core: log positions, entries, outcomes.
//
// The core (Replica, with its Coordinator and TwoPhaseCommit halves) is a
// pure state machine: no sockets, threads or clocks. Everything here is
// plain data so that the simulator and the real node drive the same code.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <vector>

#include "distdb/config.hpp"
#include "distdb/error.hpp"

namespace distdb::core {

using Epoch = std::uint64_t;
using Seq = std::uint64_t;

// Identifies a log entry: its position and the epoch of the coordinator that
// created it. Two entries at the same seq with different origins conflict;
// at most one of them can have been acknowledged to a client (design.md I2).
struct EntryId {
  Seq seq = 0;
  Epoch origin = 0;
  bool operator==(const EntryId&) const = default;
};

// Orders logs by how up to date they are: the epoch of the last entry first,
// then its position. The best log among a majority contains every
// acknowledged entry (design.md, "choosing the log").
inline bool more_up_to_date(const EntryId& a, const EntryId& b) {
  if (a.origin != b.origin) return a.origin > b.origin;
  return a.seq > b.seq;
}

// What one statement did. Replicas run the same statements in the same order
// from the same state, so outcomes must match everywhere; `ok` and `code` are
// what is compared.
struct StatementOutcome {
  bool ok = true;
  int code = 0;                 // the backend's error code when !ok
  std::string message;          // the error message when !ok
  std::uint64_t rows_affected = 0;
  std::uint64_t last_insert_id = 0;
  bool same_effect(const StatementOutcome& o) const {
    return ok == o.ok && code == o.code && rows_affected == o.rows_affected;
  }
};

// One replicated statement. `expected` is filled once the entry is decided
// (in the log, for catch-up): a replica replaying the entry must see the
// same outcome, or it has diverged.
struct LoggedStatement {
  std::string sql;
  bool expect_ok = true;
  int expect_code = 0;
};

// A batch of writes at one log position.
struct Entry {
  EntryId id;
  std::vector<LoggedStatement> statements;
};

// Identifies the client request a write belongs to (chosen by the driver).
using ClientTag = std::uint64_t;

}  // namespace distdb::core
