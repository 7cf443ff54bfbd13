// Vocabulary of the replication core: log positions, entries, outcomes.
//
// The core (Replica, with its Coordinator and TwoPhaseCommit halves) is a
// pure state machine: no sockets, threads or clocks. Everything here is
// plain data so that the simulator and the real node drive the same code.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
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
// from the same state, so outcomes must match everywhere. Compared: whether
// it succeeded and its error code, the rows it touched, the automatic id it
// took (an auto-increment counter ahead on one member, e.g. after an entry
// it prepared was rolled back, gives its rows other ids), and a checksum
// entry's digest (node/checksum.hpp).
struct StatementOutcome {
  bool ok = true;
  int code = 0;                 // the backend's error code when !ok
  std::string message;          // the error message when !ok
  std::uint64_t rows_affected = 0;
  std::uint64_t last_insert_id = 0;
  std::string digest;           // a checksum statement's digest of the database; empty otherwise
  bool same_effect(const StatementOutcome& o) const {
    return ok == o.ok && code == o.code && rows_affected == o.rows_affected && last_insert_id == o.last_insert_id &&
           digest == o.digest;
  }
};

// One replicated statement. `expect_*` are filled once the entry is decided
// (in the log, for catch-up): a replica replaying the entry must see the
// same outcome, or it has diverged.
struct LoggedStatement {
  std::string sql;
  bool expect_ok = true;
  int expect_code = 0;
  std::uint64_t expect_insert_id = 0;  // the automatic id it took (0: none)
  std::string expect_digest;           // a checksum statement's digest (empty: not one)
  // Whether `o` is the outcome this statement was decided with. The
  // automatic id is compared where the log knows it (not 0: a MariaDB entry
  // records its log row in the same round trip as its statements, before
  // their ids are known); a checksum's digest always.
  bool expected(const StatementOutcome& o) const {
    return o.ok == expect_ok && o.code == expect_code &&
           (expect_insert_id == 0 || o.last_insert_id == expect_insert_id) && o.digest == expect_digest;
  }
};

// A batch of writes at one log position.
struct Entry {
  EntryId id;
  std::vector<LoggedStatement> statements;
  // What the coordinator's run of the statements changed, when the cluster
  // ships effects rather than statements (row-based replication,
  // docs/design.md section 3): every other member applies these instead of
  // running the statements, so that whatever the statements evaluated on
  // the coordinator (UUID(), NOW(6), a trigger, an automatic id) is what
  // every member stores. Empty string: the run changed nothing replicated.
  // nullopt: every member runs the statements itself (a DDL entry, a
  // backend that cannot capture effects, or the cluster ships statements).
  // Opaque to the core: the storage that captured them knows their format
  // (MariaDB: binary log row events).
  std::optional<std::string> effects;
};

// Identifies the client request a write belongs to (chosen by the driver).
using ClientTag = std::uint64_t;

}  // namespace distdb::core
