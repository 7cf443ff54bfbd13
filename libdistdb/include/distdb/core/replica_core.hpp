// What the two halves of a replica share: configuration, inputs and outputs
// (Ready, WriteResult), and ReplicaCore, the state they work on.
#pragma once

#include "distdb/export.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "distdb/core/messages.hpp"
#include "distdb/core/storage_ops.hpp"
#include "distdb/core/types.hpp"

namespace distdb::core {

struct ReplicaConfig {
  NodeId id = 0;
  std::vector<NodeId> members;          // every configured member, this one included
  int heartbeat_interval_ticks = 2;     // send heartbeats this often
  int heartbeat_timeout_ticks = 10;     // a member silent this long is considered down
  int round_timeout_ticks = 10;         // votes/commit acks awaited this long before dropping silent members
  int forward_timeout_ticks = 100;      // a forwarded write unanswered this long: outcome unknown
  std::size_t max_batch = 256;          // statements per round
  std::size_t catch_up_batch = 512;     // entries per catch-up reply
  // After a failed attempt to run entries here — an ApplyEntries that
  // applied nothing or diverged, an InstallSnapshot, or a PrepareEntry that
  // failed — the member waits before it asks for catch-up again: the first
  // time apply_retry_min_ticks, then twice as long after each further
  // failure in a row, up to apply_retry_max_ticks; entries that run here
  // again (applied, prepared or committed) start it again from the minimum.
  // (A full copy that installs does not: it says nothing about whether the
  // entries after it will run, and a database that refuses every entry
  // would otherwise pull a full copy every few heartbeats.)
  //
  // Without the wait a member whose database keeps refusing an entry asks,
  // is answered and fails again as fast as the network and the database
  // allow (tens of thousands of XA START ... XA ROLLBACK a second were seen
  // against MariaDB), which loads the coordinator's storage and its own
  // database for nothing. The minimum is
  // one heartbeat interval — soon enough that a passing fault (a deadlock,
  // a lock wait timeout) costs little — and the cap 32 of them, which keeps
  // a member whose database comes back a few seconds from catching up at
  // most (the driver sets both from the heartbeat interval; these defaults
  // assume the default interval of 2 ticks).
  int apply_retry_min_ticks = 2;
  int apply_retry_max_ticks = 64;
  // After this many failed attempts in a row to run the entries that follow
  // the same position, on a database that answered (an SQL error, a
  // divergence — not "unreachable": a full copy would fail to install just
  // the same, and each one costs the member serving it a read of its whole
  // database), the member asks for a full copy instead: whatever in its
  // data stops the entries from applying, a copy replaces it. Three: one
  // failure can be a deadlock, two in a row a lock held a little longer,
  // three at the same place rarely anything that a fourth try would cure.
  int snapshot_after_failed_applies = 3;
  std::uint64_t random_seed = 1;        // for election back-off
  bool forward_writes = true;           // a non-coordinator forwards writes (else: not_coordinator)
  // Ship effects, not statements: the coordinator runs each entry first,
  // alone, and sends the others what it changed (Entry::effects) with its
  // outcomes; they apply that. Costs the round one more step in sequence
  // (the others prepare once the coordinator has), and buys determinism:
  // nothing a statement evaluates can differ between members. The driver
  // sets it when the storage can capture effects (MariaDB with a row-format
  // binary log) and the configuration asks for it.
  bool ship_effects = false;
  // Statements that must be an entry of their own, never batched with
  // others (empty: none). The driver names DDL, which MariaDB commits by
  // itself, outside any transaction — every member runs such an entry as
  // statements, so a write batched with it would be too — and checksum
  // statements, whose digest is then of the data between two entries.
  // A pure function of the text: the core only asks it.
  std::function<bool(const std::string& sql)> runs_alone;
};

// What the replica finds in its storage at start.
struct RecoveredState {
  Epoch promised = 0;
  EntryId applied;
  std::vector<EntryId> prepared;        // in-doubt prepared transactions (XA RECOVER)
  // A full copy was being installed when the node stopped: its data is
  // partial, and it waits for a full copy (serving no reads) before
  // anything else.
  bool needs_snapshot = false;
};

// The answer to one proposed write.
struct WriteResult {
  enum Kind {
    committed = 0,       // replicated; `outcome` is the statement's own (ok, or an SQL error that
                         // happened identically everywhere and was rolled back alone)
    not_coordinator = 1, // nothing was done; `coordinator` is the one to ask (0: unknown)
    no_quorum = 2,       // nothing was done: no majority behind a coordinator
    outcome_unknown = 3, // the write may or may not commit (its coordinator lost its epoch mid-round)
  };
  ClientTag tag = 0;
  Kind kind = committed;
  StatementOutcome outcome;
  NodeId executed_by = 0;  // the coordinator that ran it
  NodeId coordinator = 0;
  std::string message;
};

struct Ready {
  std::vector<StorageTask> storage;
  std::vector<Envelope> messages;
  std::vector<WriteResult> results;
  bool empty() const { return storage.empty() && messages.empty() && results.empty(); }
};

enum class Role { follower, candidate, coordinator };
DISTDB_API const char* to_string(Role role);

// Whether a member knows that its data may lack committed entries, and why
// (Replica::staleness()). Only what the member itself can know: a member
// that missed the last round but has not heard so yet (the coordinator's
// next heartbeat tells it) still says `current`. A coordinator is current
// once it has caught up to the best log among its voters.
enum class Staleness {
  current = 0,     // a coordinator that has recovered, or a follower in the coordinator's view
  no_coordinator,  // no coordinator is known (an election, or cut off from the majority)
  out_of_view,     // not (or no longer) in the coordinator's view; it will catch up and rejoin
  catching_up,     // out of the view and asking for, or applying, the entries it lacks
  recovering,      // a new coordinator catching up to the best log among its voters
  apply_failed,    // its last attempt to apply entries (or a copy) failed; it retries after a back-off
  needs_snapshot,  // it diverged or kept failing to apply entries: it waits for a full copy
  commit_failed,   // the commit of a decided entry failed here; it retries
};
DISTDB_API const char* to_string(Staleness staleness);

// How this member's catch-up stands (Replica::catch_up_status()), for the
// driver's status and log.
struct CatchUpStatus {
  Staleness staleness = Staleness::current;
  EntryId applied;                       // the position the failures below happened after
  int failed_attempts = 0;               // failed attempts in a row since entries last ran here
  bool needs_snapshot = false;           // the next catch-up request asks for a full copy
  bool snapshot_after_failures = false;  // ... because of failed_attempts, not a divergence
  std::uint64_t retry_in_ticks = 0;      // ticks until the next catch-up request may go out
  bool stale() const { return staleness != Staleness::current; }
};

// A member as this replica sees it.
struct MemberView {
  NodeId id = 0;
  bool alive = false;       // heard from within the heartbeat timeout (always true for itself)
  bool in_view = false;     // part of the coordinator's view (as last announced)
  EntryId applied;          // as last reported
};

// What both halves of a replica share: its state (durable mirrors, the
// election, the log), the output batch, and small helpers. Coordinator and
// TwoPhaseCommit derive from it virtually, so that a Replica has one copy;
// each half reaches the other only through the hooks declared here.
class DISTDB_API ReplicaCore {
 public:
  virtual ~ReplicaCore() = default;

 protected:
  ReplicaCore() = default;
  ReplicaCore(ReplicaConfig config, RecoveredState recovered);

  struct Pending {
    ClientTag tag = 0;
    std::string sql;
    NodeId forwarded_from = 0;   // 0: a local client
    ClientTag forwarded_tag = 0;
    std::uint64_t since = 0;     // tick it arrived
  };

  // --- helpers
  std::uint64_t queue_storage(StorageOp op);
  void send(NodeId to, Message m);
  void broadcast(const Message& m);
  std::size_t majority() const { return config_.members.size() / 2 + 1; }
  bool is_alive(NodeId id) const;
  std::vector<NodeId> alive_members() const;
  // The alive members that may become coordinator: not one that waits for
  // a full copy of the data (its own, or as its heartbeats say), since its
  // data is not the cluster's. The highest of these is the one to run.
  std::vector<NodeId> eligible_members() const;
  std::uint64_t next_random();
  bool in_view_now() const;
  bool can_commit_now() const;
  Staleness staleness_now() const;

  // --- hooks between the halves
  // Implemented by Coordinator:
  virtual void step_down(NodeId new_coordinator, const char* reason) = 0;
  // Implemented by TwoPhaseCommit:
  virtual void fail_pending(WriteResult::Kind kind, const std::string& why) = 0;
  virtual void finish_write(const Pending& p, WriteResult::Kind kind, const StatementOutcome& outcome,
                            const std::string& message) = 0;
  virtual void check_round() = 0;
  virtual void maybe_catch_up() = 0;

  ReplicaConfig config_;
  Ready ready_;
  std::string last_step_down_reason_;
  std::uint64_t rng_;
  std::uint64_t now_ = 0;  // ticks since start

  // Durable state, mirrored (the storage is the source of truth).
  Epoch promised_ = 0;
  EntryId applied_;

  // Storage tasks handed out and not yet done, in order.
  std::deque<StorageTask> in_flight_;
  std::uint64_t next_task_id_ = 1;

  // Election (Coordinator half).
  Role role_ = Role::follower;
  NodeId coordinator_ = 0;
  std::map<NodeId, std::uint64_t> last_heard_;   // tick of the last message from each member
  std::map<NodeId, EntryId> reported_applied_;
  std::set<NodeId> ineligible_;                  // members whose last heartbeat said they wait for a full copy
  std::set<NodeId> announced_view_;              // the view as the coordinator last announced it
  bool joined_ = false;                          // joined (or took part in a round) since we started
  std::uint64_t last_coordinator_contact_ = 0;
  std::uint64_t election_not_before_ = 0;
  // Until this tick a refused candidacy is retried soon, rather than after
  // the back-off, when the refusal only said that the voter still hears a
  // higher member (election.cpp, on_vote_reply); 0: no such refusal yet
  // since a coordinator was last in place.
  std::uint64_t quick_retry_until_ = 0;
  Epoch candidate_epoch_ = 0;
  Epoch highest_seen_epoch_ = 0;                 // in any heartbeat or vote request
  std::map<NodeId, VoteReply> votes_;
  bool recovering_ = false;                      // coordinator catching up before its first round
  EntryId recovery_target_;                      // the best log among the voters
  NodeId recovery_source_ = 0;                   // a voter holding it
  std::set<NodeId> view_;                        // coordinator only: members that take part in rounds
  std::uint64_t last_majority_contact_ = 0;

  // Rounds (TwoPhaseCommit, coordinator side).
  struct Round {
    Entry entry;
    std::vector<Pending> writes;
    std::set<NodeId> members;            // the view when it started
    std::map<NodeId, PrepareReply> votes;
    std::map<NodeId, PrepareReply> all_votes;  // every vote received, kept when its member leaves the round
    std::vector<StatementOutcome> reference;  // the coordinator's own outcomes
    // ship_effects: false until the coordinator's own prepare is done and
    // the others have been sent the entry with its effects. Until then the
    // others are not waited for (round_timeout leaves them be).
    bool others_asked = true;
    bool decided = false;
    std::set<NodeId> committed;          // members that reported the commit durable
    std::uint64_t started_at = 0;        // start of the current phase (prepare, then commit)
  };
  std::deque<Pending> pending_;
  std::deque<Pending> parked_;           // local writes waiting for a coordinator to be known
  std::optional<Round> round_;
  EntryId last_decided_;                 // coordinator: the last entry decided in its log

  // Forwarded writes waiting for the coordinator's answer (forwarder side).
  struct Forward {
    ClientTag tag;
    NodeId to;
    std::uint64_t sent_at;
  };
  std::map<ClientTag, Forward> forwards_;

  // Coordinator side: forwarded writes by (forwarder, tag), so that a
  // duplicated ForwardedWrite never runs twice. A duplicate can only be the
  // network delivering a frame twice (a forwarder never sends a write again,
  // and the TCP transport drops rather than re-sends a batch whose write
  // failed), and arrives close behind the original: the last 4,096 answers
  // cover that many times over. The bound is also the cache's memory: about
  // 200 bytes an answer, under 1 MiB (it was 65,536 answers, some 13 MiB,
  // which a node under steady forwarded load filled in its first minutes;
  // heaptrack showed it as the whole of the coordinator's memory growth).
  static constexpr std::size_t kAnsweredForwardsKept = 4096;
  std::set<std::pair<NodeId, ClientTag>> running_forwards_;
  std::map<std::pair<NodeId, ClientTag>, ForwardedReply> answered_forwards_;
  std::deque<std::pair<NodeId, ClientTag>> answered_order_;
  std::vector<EntryId> rollbacks_to_retry_;

  // Participant side.
  std::optional<Entry> prepared_;          // the entry prepared here, awaiting a decision
  std::vector<StatementOutcome> prepared_outcomes_;
  NodeId decide_from_ = 0;                 // who asked for the commit in flight (0: ourselves)
  bool commit_retry_ = false;              // the commit of the decided prepared_ failed: retry it
  Epoch decide_epoch_ = 0;
  NodeId prepare_from_ = 0;
  Epoch prepare_epoch_ = 0;
  bool participant_busy_ = false;          // a PrepareEntry/CommitEntry of ours is in flight
  std::deque<std::pair<NodeId, Message>> deferred_;  // Prepare/Decide received while busy

  // Messages to this replica itself (the coordinator is also a participant),
  // delivered after the current input has been handled.
  std::deque<Envelope> local_inbox_;

  // A vote granted, sent once its promise is durable.
  std::optional<std::pair<NodeId, Epoch>> pending_grant_;
  Entry preparing_;                        // the entry of the PrepareEntry in flight

  // Catch-up.
  bool catching_up_ = false;               // a CatchUpRequest is out, no reply yet
  bool applying_ = false;                  // an ApplyEntries/InstallSnapshot of ours is running
  std::uint64_t catch_up_sent_at_ = 0;
  Epoch catch_up_epoch_ = 0;               // our promise when the request went out
  std::uint64_t next_catch_up_at_ = 0;     // no request before this tick
  std::set<NodeId> serving_;               // askers whose log/snapshot read is queued
  // Members whose outcomes for an entry differed from ours (coordinator):
  // their data differs from the cluster's, so their next catch-up gets a
  // full copy, whatever they ask for (replaying the log could succeed with
  // their own values, e.g. another automatic id, and keep the difference).
  std::set<NodeId> diverged_members_;
  bool needs_snapshot_ = false;

  // Failed attempts to run entries here (catch_up.cpp, note_apply_failure):
  // they space out the catch-up requests and, repeated, ask for a full copy.
  int apply_failures_ = 0;                // failed attempts in a row since entries last ran here
  int entry_failures_ = 0;                // of those, at the same position, on a database that answered
  EntryId failed_after_;                  // the position they happened after
  bool apply_failed_ = false;             // the last attempt failed (cleared by progress or by joining)
  bool snapshot_after_failures_ = false;  // needs_snapshot_ was set by entry_failures_
};

}  // namespace distdb::core
