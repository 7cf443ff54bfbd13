// Replica: one member's replication state machine (sans-IO).
//
// Inputs:  tick()                 one unit of time (the driver's clock, e.g. 10 ms)
//          step(envelope)         a message from another replica
//          propose(tag, sql)      a client's write arriving at this replica
//          storage_done(done)     completion of a storage task
// Outputs: take_ready()           storage tasks to run (in order, one at a
//                                 time), messages to send (at once: none of
//                                 them waits for a storage task of the same
//                                 batch), and replies to clients.
//
// The Coordinator half (election, heartbeats, view) and the TwoPhaseCommit
// half (the write log, rounds, catch-up) share this object's state; see
// docs/design.md for the protocol and its invariants.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/messages.hpp"
#include "core/storage_ops.hpp"
#include "core/types.hpp"

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
  std::uint64_t random_seed = 1;        // for election back-off
  bool forward_writes = true;           // a non-coordinator forwards writes (else: not_coordinator)
};

// What the replica finds in its storage at start.
struct RecoveredState {
  Epoch promised = 0;
  EntryId applied;
  std::vector<EntryId> prepared;        // in-doubt prepared transactions (XA RECOVER)
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
const char* to_string(Role role);

// A member as this replica sees it.
struct MemberView {
  NodeId id = 0;
  bool alive = false;       // heard from within the heartbeat timeout (always true for itself)
  bool in_view = false;     // part of the coordinator's view (as last announced)
  EntryId applied;          // as last reported
};

class Replica {
 public:
  Replica(ReplicaConfig config, RecoveredState recovered);

  void tick();
  void step(const Envelope& envelope);
  void propose(ClientTag tag, std::string sql);
  void storage_done(StorageDone done);
  Ready take_ready();
  bool has_ready() const { return !ready_.empty(); }

  NodeId id() const { return config_.id; }
  Role role() const { return role_; }
  Epoch epoch() const { return promised_; }
  NodeId coordinator() const { return coordinator_; }
  EntryId applied() const { return applied_; }
  bool in_view() const;
  // True when this replica is the coordinator of its epoch, has recovered,
  // and has a majority view: it can commit writes.
  bool can_commit() const;
  std::vector<MemberView> members() const;
  // Why this replica last stopped being coordinator (for the log).
  const std::string& last_step_down_reason() const { return last_step_down_reason_; }

 private:
  // The implementation is split by concern: election.cpp (Coordinator half:
  // heartbeats, votes, view), rounds.cpp (TwoPhaseCommit, coordinator side),
  // participant.cpp (TwoPhaseCommit, participant side), catch_up.cpp.
  struct Pending;
  struct Round;

  // --- shared helpers
  std::uint64_t queue_storage(StorageOp op);
  void send(NodeId to, Message m);
  void broadcast(const Message& m);
  std::size_t majority() const { return config_.members.size() / 2 + 1; }
  bool is_alive(NodeId id) const;
  std::vector<NodeId> alive_members() const;
  void observe_epoch(Epoch epoch, NodeId from);
  std::uint64_t next_random();

  // --- election.cpp
  void send_heartbeats();
  void check_liveness();
  void maybe_start_election();
  void start_election();
  void on_heartbeat(NodeId from, const Heartbeat& m);
  void on_vote_request(NodeId from, const VoteRequest& m);
  void on_vote_reply(NodeId from, const VoteReply& m);
  void on_promise_persisted(Epoch epoch);
  void become_coordinator();
  void step_down(NodeId new_coordinator, const char* reason);

  // --- rounds.cpp
  void on_propose(ClientTag tag, std::string sql, NodeId forwarded_from, ClientTag forwarded_tag);
  void maybe_start_round();
  void on_prepare_reply(NodeId from, const PrepareReply& m);
  void on_decide_reply(NodeId from, const DecideReply& m);
  void check_round();
  void round_timeout();
  void fail_pending(WriteResult::Kind kind, const std::string& why);
  void finish_write(const Pending& p, WriteResult::Kind kind, const StatementOutcome& outcome,
                    const std::string& message);
  void on_forwarded_write(NodeId from, const ForwardedWrite& m);
  void on_forwarded_reply(const ForwardedReply& m);
  void expire_forwards();
  void forward(Pending p);
  void expire_waiting();

  // --- participant.cpp
  void on_prepare(NodeId from, const Prepare& m);
  void on_decide(NodeId from, const Decide& m);
  void on_participant_prepared(const StorageDone& done);
  void on_participant_committed(const StorageDone& done);
  void run_deferred();
  void retry_commit();
  template <class M>
  bool accept_from_coordinator(NodeId from, const M& m);

  // --- catch_up.cpp
  void maybe_catch_up();
  void on_catch_up_request(NodeId from, const CatchUpRequest& m);
  void on_catch_up_reply(NodeId from, const CatchUpReply& m);
  void on_log_read(const StorageDone& done, const ReadLog& op);
  void on_snapshot_read(const StorageDone& done, const ReadSnapshot& op);
  void on_entries_applied(const StorageDone& done, const ApplyEntries& op);
  void on_snapshot_installed(const StorageDone& done, const InstallSnapshot& op);
  void after_catch_up_progress();

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
  std::set<NodeId> announced_view_;              // the view as the coordinator last announced it
  bool joined_ = false;                          // joined (or took part in a round) since we started
  std::uint64_t last_coordinator_contact_ = 0;
  std::uint64_t election_not_before_ = 0;
  Epoch candidate_epoch_ = 0;
  Epoch highest_seen_epoch_ = 0;                 // in any heartbeat or vote request
  std::map<NodeId, VoteReply> votes_;
  bool recovering_ = false;                      // coordinator catching up before its first round
  EntryId recovery_target_;                      // the best log among the voters
  NodeId recovery_source_ = 0;                   // a voter holding it
  std::set<NodeId> view_;                        // coordinator only: members that take part in rounds
  std::uint64_t last_majority_contact_ = 0;

  // Rounds (TwoPhaseCommit, coordinator side).
  struct Pending {
    ClientTag tag = 0;
    std::string sql;
    NodeId forwarded_from = 0;   // 0: a local client
    ClientTag forwarded_tag = 0;
    std::uint64_t since = 0;     // tick it arrived
  };
  struct Round {
    Entry entry;
    std::vector<Pending> writes;
    std::set<NodeId> members;            // the view when it started
    std::map<NodeId, PrepareReply> votes;
    std::vector<StatementOutcome> reference;  // the coordinator's own outcomes
    bool local_prepared = false;
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
  // duplicated ForwardedWrite never runs twice.
  static constexpr std::size_t kAnsweredForwardsKept = 65536;
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
  void drain_local_inbox();
  void process(const Envelope& envelope);

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
  bool needs_snapshot_ = false;
};

}  // namespace distdb::core
