// TwoPhaseCommit: the write-log half of a replica (rounds.cpp,
// participant.cpp, catch_up.cpp).
#pragma once

#include "distdb/export.hpp"

#include "distdb/core/replica_core.hpp"

namespace distdb::core {

// The TwoPhaseCommit half: the write log. rounds.cpp (coordinator side:
// batching, prepare, decide, answers, forwarded writes), participant.cpp
// (every member: prepare, vote, commit), catch_up.cpp (members outside the view).
class DISTDB_API TwoPhaseCommit : public virtual ReplicaCore {
 protected:
  TwoPhaseCommit() = default;

  // --- rounds.cpp
  void on_propose(ClientTag tag, std::string sql, NodeId forwarded_from, ClientTag forwarded_tag);
  void maybe_start_round();
  // ship_effects: our own participant voted `own` on the round's entry;
  // send the entry, with its effects and our outcomes, to the others.
  void ask_others(const PrepareReply& own);
  void on_prepare_reply(NodeId from, const PrepareReply& m);
  void on_decide_reply(NodeId from, const DecideReply& m);
  void check_round() override;
  // Whether a majority of the other voters agree on outcomes other than
  // ours (`self`): then our data is the one that differs.
  bool outvoted(const Round& r, const PrepareReply& self) const;
  // Whether every other member voted yes, none with our outcomes.
  bool agreed_by_none(const Round& r, const PrepareReply& self) const;
  // Whether a majority of the cluster refused our rows (effects_refused).
  bool rows_refused_by_majority(const Round& r) const;
  void round_timeout();
  void fail_pending(WriteResult::Kind kind, const std::string& why) override;
  void finish_write(const Pending& p, WriteResult::Kind kind, const StatementOutcome& outcome,
                    const std::string& message) override;
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
  void maybe_catch_up() override;
  void on_catch_up_request(NodeId from, const CatchUpRequest& m);
  void on_catch_up_reply(NodeId from, const CatchUpReply& m);
  void on_log_read(const StorageDone& done, const ReadLog& op);
  void on_snapshot_read(const StorageDone& done, const ReadSnapshot& op);
  void on_entries_applied(const StorageDone& done, const ApplyEntries& op);
  void on_snapshot_installed(const StorageDone& done, const InstallSnapshot& op);
  void after_catch_up_progress();
  void note_apply_failure(const StorageDone& done, bool ran_entries);
  void note_apply_progress();
  std::uint64_t apply_retry_delay() const;
};

}  // namespace distdb::core
