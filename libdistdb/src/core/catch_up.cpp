// Catch-up: how a replica outside the view (restarted, lagging, or a new
// coordinator behind the best log) gets the committed entries it lacks.
//
// Any replica serves committed entries from its log (ReadLog). When the
// asker's last entry is not in the server's log (a conflicting entry the
// asker committed for a deposed coordinator, which no client was told about)
// or is older than the retained log, the server sends a full copy instead.
// A follower that has caught up asks the coordinator to join the view; the
// coordinator admits it between rounds, when it holds exactly the
// coordinator's log.
//
// A member that fails to apply what it was sent (or fails to install a full
// copy, or fails to prepare an entry of a round and so leaves the view) does
// not ask again at once: the answer would be the same entries, failing the
// same way, in a loop as fast as the network and the databases go. It waits
// (note_apply_failure: exponential in ticks, capped, reset once entries run
// here again), and after a few failures at the same position on a database
// that answered it asks for a full copy instead. Until it is back in the
// view it reports itself stale (Replica::staleness()), so that a read path
// can tell.
#include <algorithm>

#include "distdb/core/two_phase_commit.hpp"

namespace distdb::core {

namespace {

// Whether a failed attempt reached a database that refused it (an SQL error
// such as a deadlock or a lock wait timeout, outcomes other than the logged
// ones, a copy it could not read) rather than one it could not reach: only
// the former says anything about this member's data, and only then can a
// full copy help.
bool database_answered(const StorageDone& done) {
  if (done.ok || done.diverged) return true;
  switch (done.error.kind) {
    case ErrorKind::storage_unavailable:
    case ErrorKind::outcome_unknown:
    case ErrorKind::unavailable:
    case ErrorKind::timeout:
      return false;
    default:
      return true;
  }
}

}  // namespace

void TwoPhaseCommit::maybe_catch_up() {
  if (participant_busy_ || applying_ || now_ < next_catch_up_at_) return;
  const auto retry_after = static_cast<std::uint64_t>(2 * config_.round_timeout_ticks);
  if (catching_up_ && now_ - catch_up_sent_at_ <= retry_after) return;
  catching_up_ = false;
  CatchUpRequest request;
  request.epoch = promised_;
  request.applied = applied_;
  request.snapshot = needs_snapshot_;
  NodeId source = 0;
  if (role_ == Role::coordinator && recovering_) {
    if (!is_alive(recovery_source_)) {
      // The only voter known to hold the best log is gone: try again later.
      step_down(0, "the voter holding the best log went away during recovery");
      return;
    }
    source = recovery_source_;
  } else if (role_ == Role::follower && coordinator_ != 0 && !in_view_now()) {
    source = coordinator_;
    request.join = true;
  }
  if (source == 0) return;
  catching_up_ = true;
  catch_up_sent_at_ = now_;
  catch_up_epoch_ = promised_;
  send(source, request);
}

void TwoPhaseCommit::on_catch_up_request(NodeId from, const CatchUpRequest& m) {
  // Only an authoritative log is served: the coordinator's once it has
  // recovered, or — to a recovering coordinator, which picked us as holding
  // the best log among its voters (its requests do not ask to join) — ours.
  // Anyone else may hold entries no majority agreed to.
  const bool authoritative = role_ == Role::coordinator ? !recovering_ : !m.join;
  if (!authoritative) {
    CatchUpReply not_now;
    not_now.epoch = promised_;
    not_now.last = applied_;
    send(from, not_now);
    return;
  }
  // One read of our storage per asker at a time: a lagging member must not
  // be able to flood the storage queue that our own rounds need.
  if (serving_.count(from) > 0) return;
  if (m.snapshot || (role_ == Role::coordinator && diverged_members_.count(from) > 0)) {
    serving_.insert(from);
    queue_storage(ReadSnapshot{from});
    return;
  }
  CatchUpReply reply;
  reply.epoch = promised_;
  reply.last = applied_;
  if (m.applied == applied_) {
    if (m.join && role_ == Role::coordinator && !recovering_ && !round_) {
      view_.insert(from);
      reply.joined = true;
    }
    send(from, reply);
    return;
  }
  if (m.applied.seq > applied_.seq) {
    // The asker holds entries beyond our log. If we are the coordinator
    // (recovered) and they lie beyond everything we decided, they were
    // never committed on a majority — our log contains every entry that was
    // — and no client was told they succeeded: the asker's data is replaced
    // by ours. Otherwise (we have not yet committed locally what we decided,
    // or we are not the coordinator) we cannot help yet.
    if (role_ == Role::coordinator && !recovering_ && m.applied.seq > last_decided_.seq &&
        applied_ == last_decided_) {
      serving_.insert(from);
      queue_storage(ReadSnapshot{from});
    } else {
      send(from, reply);
    }
    return;
  }
  serving_.insert(from);
  queue_storage(ReadLog{m.applied, config_.catch_up_batch, from, m.join});
}

void TwoPhaseCommit::on_log_read(const StorageDone& done, const ReadLog& op) {
  serving_.erase(op.reader);
  if (!done.ok) return;  // the asker retries
  if (done.log_conflict || done.log_truncated) {
    serving_.insert(op.reader);
    queue_storage(ReadSnapshot{op.reader});
    return;
  }
  CatchUpReply reply;
  reply.epoch = promised_;
  reply.last = applied_;
  reply.entries = done.entries;
  send(op.reader, std::move(reply));
}

void TwoPhaseCommit::on_snapshot_read(const StorageDone& done, const ReadSnapshot& op) {
  serving_.erase(op.reader);
  if (!done.ok) return;
  diverged_members_.erase(op.reader);
  CatchUpReply reply;
  reply.epoch = promised_;
  reply.last = applied_;
  reply.snapshot = true;
  reply.snapshot_applied = done.snapshot_applied;
  reply.snapshot_data = done.snapshot_data;
  send(op.reader, std::move(reply));
}

void TwoPhaseCommit::on_catch_up_reply(NodeId /*from*/, const CatchUpReply& m) {
  if (!catching_up_) return;  // an answer to an older request
  catching_up_ = false;
  // Asked before we promised a newer epoch: our vote reported what we had
  // applied then, and the new coordinator's log is built on that report, so
  // nothing from the old request may be applied now.
  if (catch_up_epoch_ != promised_) return;
  if (participant_busy_ || applying_) return;
  if (m.joined) {
    announced_view_.insert(config_.id);
    joined_ = true;
    // We hold exactly the coordinator's log: whatever failed before, our
    // data is current now. (The failure count stays until something is
    // applied here, so that a member that joins and then fails every
    // prepare keeps backing off further.)
    apply_failed_ = false;
    return;
  }
  if (m.snapshot) {
    if (prepared_) {
      queue_storage(RollbackEntry{prepared_->id});
      prepared_.reset();
    }
    applying_ = true;
    queue_storage(InstallSnapshot{m.snapshot_applied, m.snapshot_data});
    return;
  }
  if (m.entries.empty() || m.entries.front().id.seq != applied_.seq + 1) {
    // Nothing usable (the coordinator is mid-round, or not ready): ask again
    // a little later, not at once — a tight loop would flood it.
    next_catch_up_at_ = now_ + static_cast<std::uint64_t>(config_.heartbeat_interval_ticks);
    return;
  }
  if (prepared_) {
    // Whatever was prepared here is decided by the log we are replaying.
    queue_storage(RollbackEntry{prepared_->id});
    prepared_.reset();
  }
  applying_ = true;
  queue_storage(ApplyEntries{m.entries});
}

void TwoPhaseCommit::on_entries_applied(const StorageDone& done, const ApplyEntries& op) {
  applying_ = false;
  if (done.applied_count > 0 && done.applied_count <= op.entries.size()) {
    applied_ = op.entries[done.applied_count - 1].id;
    note_apply_progress();
  }
  if (done.diverged) {
    needs_snapshot_ = true;
    snapshot_after_failures_ = false;  // a divergence is reason enough
  }
  // Anything short of applying at least one entry is a failure, diverged or
  // not: the next request would start at the same position and meet the
  // same outcome. (Some entries applied, then a failure: progress, and the
  // first failure at the new position.)
  if (!done.ok || done.diverged || done.applied_count == 0) note_apply_failure(done, true);
  after_catch_up_progress();
}

void TwoPhaseCommit::on_snapshot_installed(const StorageDone& done, const InstallSnapshot& op) {
  applying_ = false;
  if (done.ok) {
    applied_ = op.applied;
    needs_snapshot_ = false;
    snapshot_after_failures_ = false;
    // Current (once it joins) — but not yet progress for the back-off: a
    // copy that installs says nothing about whether entries will run here
    // after it. A database that refuses every entry would otherwise pull a
    // full copy every few heartbeats, each one a read of the whole database
    // on the member serving it; this way the wait keeps growing to its cap.
    // The count towards the next copy starts again (a new position).
    apply_failed_ = false;
    entry_failures_ = 0;
    failed_after_ = applied_;
  } else {
    // The next request asks for a full copy again, whatever made the
    // coordinator send this one: an install that fails part-way has already
    // marked the position unknown and may have dropped tables
    // (ReplicationExecutor::install_snapshot), so only a whole copy can
    // make the data agree with a position again.
    needs_snapshot_ = true;
    note_apply_failure(done, false);
  }
  after_catch_up_progress();
}

void TwoPhaseCommit::note_apply_failure(const StorageDone& done, bool ran_entries) {
  if (!(failed_after_ == applied_)) {
    // applied_ moved since (a copy installed): the count towards a full copy
    // is of failures at one position.
    entry_failures_ = 0;
    failed_after_ = applied_;
  }
  ++apply_failures_;
  apply_failed_ = true;
  if (ran_entries && database_answered(done)) ++entry_failures_;
  if (entry_failures_ >= std::max(1, config_.snapshot_after_failed_applies) && !needs_snapshot_) {
    needs_snapshot_ = true;
    snapshot_after_failures_ = true;
  }
  // Also spaces out the retries of a recovering coordinator, whose catch-up
  // goes through the same maybe_catch_up().
  next_catch_up_at_ = std::max(next_catch_up_at_, now_ + apply_retry_delay());
}

// Entries ran here: applied in catch-up, prepared or committed in a round.
void TwoPhaseCommit::note_apply_progress() {
  if (apply_failures_ > 0) next_catch_up_at_ = now_;  // the back-off is over
  apply_failures_ = 0;
  entry_failures_ = 0;
  failed_after_ = applied_;
  apply_failed_ = false;
  if (snapshot_after_failures_) {
    // Entries apply here after all (a prepare went through, say, while we
    // waited for the copy that the failures asked for): no copy needed.
    needs_snapshot_ = false;
    snapshot_after_failures_ = false;
  }
}

std::uint64_t TwoPhaseCommit::apply_retry_delay() const {
  const auto min = static_cast<std::uint64_t>(std::max(1, config_.apply_retry_min_ticks));
  const auto max = std::max(min, static_cast<std::uint64_t>(std::max(1, config_.apply_retry_max_ticks)));
  std::uint64_t delay = min;
  for (int i = 1; i < apply_failures_ && delay < max; ++i) delay *= 2;
  return std::min(delay, max);
}

void TwoPhaseCommit::after_catch_up_progress() {
  if (role_ == Role::coordinator && recovering_ &&
      (applied_ == recovery_target_ || more_up_to_date(applied_, recovery_target_))) {
    recovering_ = false;
    last_decided_ = applied_;
    maybe_start_round();
    return;
  }
  maybe_catch_up();
}

}  // namespace distdb::core
