// Messages between replicas. Every message carries the sender's epoch; a
// replica refuses anything from an epoch older than the one it promised.
#pragma once

#include "distdb/export.hpp"

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "distdb/core/types.hpp"

namespace distdb::core {

// Sent by every replica to every other one, every heartbeat interval.
struct Heartbeat {
  Epoch epoch = 0;            // the sender's promised epoch
  NodeId coordinator = 0;     // the coordinator the sender follows (0: none)
  bool is_coordinator = false;
  EntryId applied;            // the sender's last committed entry
  std::vector<NodeId> view;   // when is_coordinator: the members of its view
  // False while the sender waits for a full copy of the data (it diverged):
  // the others then elect among themselves, whatever its id.
  bool eligible = true;
};

// A candidate asks for `epoch`.
struct VoteRequest {
  Epoch epoch = 0;
};

// The answer, sent only after the promise is durable. `applied` is the
// voter's last committed entry at that moment.
struct VoteReply {
  Epoch epoch = 0;            // the epoch asked for
  bool granted = false;
  EntryId applied;
  Epoch promised = 0;         // the voter's promise (when refused: why)
};

// Phase one: run `entry` in a prepared transaction and vote. `previous` is the
// entry just before it in the coordinator's log, which the participant must
// have (committed, or prepared: then `previous` is decided and it commits it
// first).
//
// When the entry carries effects (ReplicaConfig::ship_effects), the
// coordinator has already run it and `outcomes` are its outcomes: a member
// applies the effects and reports those outcomes as its own, except for a
// checksum statement, whose digest it takes of its own data (a member whose
// data differs then says so).
struct Prepare {
  Epoch epoch = 0;
  EntryId previous;
  Entry entry;
  std::vector<StatementOutcome> outcomes;  // with entry.effects: the coordinator's
};

struct PrepareReply {
  Epoch epoch = 0;
  EntryId entry;
  bool yes = false;
  std::string reason;                     // when !yes
  std::vector<StatementOutcome> outcomes; // when yes: one per statement
  // When !yes: the voter's database refused the coordinator's rows (a row
  // to change is missing, a key is taken). A majority of such votes means
  // the coordinator's data is the one that differs.
  bool effects_refused = false;
};

// Phase two: commit the prepared `entry`.
struct Decide {
  Epoch epoch = 0;
  EntryId entry;
};

struct DecideReply {
  Epoch epoch = 0;
  EntryId entry;
  bool ok = false;
};

// A replica outside the view asks for the committed entries after `applied`.
// Any replica with a longer log can answer; the coordinator also decides, on
// a request with `join`, whether the asker is caught up and enters the view.
struct CatchUpRequest {
  Epoch epoch = 0;
  EntryId applied;
  bool join = false;
  bool snapshot = false;  // the asker diverged replaying entries: send a full copy
};

struct CatchUpReply {
  Epoch epoch = 0;
  std::vector<Entry> entries;  // decided entries, in order, starting right after the asker's applied
  bool conflict = false;       // the asker's applied entry is not in this log: it needs a snapshot
  bool snapshot = false;       // `snapshot_data` holds a full copy (conflict, or too far behind)
  EntryId snapshot_applied;    // the last entry the snapshot contains
  std::string snapshot_data;
  bool joined = false;         // the asker is now in the view
  EntryId last;                // the answerer's last committed entry
};

// A non-coordinator hands a client's write to the coordinator, which answers
// with the outcome (the driver forwards it back to the client).
struct ForwardedWrite {
  Epoch epoch = 0;
  ClientTag tag = 0;           // the forwarder's tag
  std::string sql;
};

struct ForwardedReply {
  ClientTag tag = 0;
  int result = 0;              // a WriteResult::Kind
  StatementOutcome outcome;
  NodeId coordinator = 0;
  std::string message;
};

using Message = std::variant<Heartbeat, VoteRequest, VoteReply, Prepare, PrepareReply, Decide, DecideReply,
                             CatchUpRequest, CatchUpReply, ForwardedWrite, ForwardedReply>;

struct Envelope {
  NodeId from = 0;
  NodeId to = 0;
  Message message;
};

DISTDB_API const char* message_name(const Message& m);

}  // namespace distdb::core
