// The TwoPhaseCommit half, participant side: every replica (the coordinator
// included) runs entries in prepared transactions, votes, and commits what
// the coordinator decided.
//
// A participant holds at most one prepared entry. It refuses messages from an
// epoch older than its promise, so a deposed coordinator can no longer
// prepare or commit here. Prepare and Decide messages are handled one at a
// time: while our own storage task for one is running, later ones wait
// (deferred_), because what to do with them depends on its result.
#include "distdb/core/two_phase_commit.hpp"

namespace distdb::core {

namespace {

PrepareReply refuse(Epoch epoch, EntryId entry, std::string reason) {
  PrepareReply r;
  r.epoch = epoch;
  r.entry = entry;
  r.yes = false;
  r.reason = std::move(reason);
  return r;
}

}  // namespace

// Notes that `from` acts as our coordinator, and defers `m` while our own
// storage task for an earlier one runs. False when `m` must wait.
template <class M>
bool TwoPhaseCommit::accept_from_coordinator(NodeId from, const M& m) {
  if (from != config_.id) {
    coordinator_ = from;
    last_coordinator_contact_ = now_;
  }
  if (participant_busy_) {
    deferred_.emplace_back(from, m);
    return false;
  }
  return true;
}

void TwoPhaseCommit::on_prepare(NodeId from, const Prepare& m) {
  if (m.epoch < promised_) {
    send(from, refuse(m.epoch, m.entry.id, "stale epoch"));
    return;
  }
  if (m.epoch > promised_) {
    // A coordinator of a newer epoch (it had a majority of promises).
    promised_ = m.epoch;
    queue_storage(PersistPromise{promised_});
    if (role_ != Role::follower) step_down(from, "a coordinator of a newer epoch took over");
  }
  if (!accept_from_coordinator(from, m)) return;
  if (needs_snapshot_) {
    // Our data diverged: nothing we prepare can be trusted to match. Out of
    // the view, we catch up with the full copy we wait for.
    send(from, refuse(m.epoch, m.entry.id, "diverged: waits for a full copy of the data"));
    return;
  }
  if (applied_.seq >= m.entry.id.seq) {
    // Already past this position: a duplicate, or a conflicting log here.
    if (!(applied_ == m.entry.id)) send(from, refuse(m.epoch, m.entry.id, "conflict: a different entry is applied here"));
    return;
  }
  if (prepared_) {
    if (prepared_->id == m.entry.id) {
      // A duplicate of the prepare we voted on: vote again.
      PrepareReply yes;
      yes.epoch = m.epoch;
      yes.entry = m.entry.id;
      yes.yes = true;
      yes.outcomes = prepared_outcomes_;
      send(from, yes);
      return;
    }
    if (prepared_->id == m.previous) {
      // The entry before this one is decided (it is in the coordinator's
      // log): commit it first, then come back to this Prepare.
      deferred_.emplace_front(from, m);
      participant_busy_ = true;
      decide_from_ = 0;
      queue_storage(CommitEntry{prepared_->id});
      return;
    }
    // Our prepared entry lost: this position is decided otherwise.
    queue_storage(RollbackEntry{prepared_->id});
    prepared_.reset();
  }
  if (!(applied_ == m.previous)) {
    send(from, refuse(m.epoch, m.entry.id,
                      applied_.seq < m.previous.seq ? "behind: needs catch-up" : "conflict: needs a snapshot"));
    return;
  }
  joined_ = true;  // taking part in the coordinator's rounds
  participant_busy_ = true;
  preparing_ = m.entry;
  prepare_from_ = from;
  prepare_epoch_ = m.epoch;
  // Our own run as the coordinator, when shipping effects, captures what
  // it changes for the others.
  queue_storage(PrepareEntry{m.entry, m.outcomes, from == config_.id && config_.ship_effects});
}

void TwoPhaseCommit::on_participant_prepared(const StorageDone& done) {
  participant_busy_ = false;
  if (done.ok) {
    note_apply_progress();  // entries run here: whatever failed before is over
    prepared_ = preparing_;
    prepared_outcomes_ = done.outcomes;
    if (!prepared_->effects) prepared_->effects = done.effects;  // captured by our own run
    for (std::size_t i = 0; i < prepared_->statements.size() && i < done.outcomes.size(); ++i) {
      prepared_->statements[i].expect_ok = done.outcomes[i].ok;
      prepared_->statements[i].expect_code = done.outcomes[i].code;
      prepared_->statements[i].expect_insert_id = done.outcomes[i].last_insert_id;
      prepared_->statements[i].expect_digest = done.outcomes[i].digest;
    }
    if (prepare_epoch_ == promised_) {
      PrepareReply yes;
      yes.epoch = prepare_epoch_;
      yes.entry = preparing_.id;
      yes.yes = true;
      yes.outcomes = done.outcomes;
      send(prepare_from_, yes);
    } else {
      // We promised a newer epoch meanwhile: no vote for the old one. The
      // prepared entry waits for the new coordinator's decision.
      send(prepare_from_, refuse(prepare_epoch_, preparing_.id, "stale epoch"));
    }
  } else {
    PrepareReply no = refuse(prepare_epoch_, preparing_.id, "storage: " + done.error.message);
    no.effects_refused = done.effects_refused;
    send(prepare_from_, std::move(no));
    // A no vote takes us out of the view (rounds.cpp, check_round): say so
    // now rather than at the coordinator's next heartbeat, so that we count
    // as stale at once and do not take over as coordinator meanwhile. We
    // then catch up and rejoin like any member outside the view — after the
    // same back-off as a failed catch-up, so that a database that refuses
    // every entry does not make us join, fail a round and leave at the pace
    // of the rounds; and, repeated at this position, with a full copy.
    joined_ = false;
    note_apply_failure(done, true);
  }
  run_deferred();
}

void TwoPhaseCommit::on_decide(NodeId from, const Decide& m) {
  if (m.epoch < promised_) return;
  if (!accept_from_coordinator(from, m)) return;
  if (applied_ == m.entry) {
    send(from, DecideReply{m.epoch, m.entry, true});  // a duplicate: already committed
    return;
  }
  if (!prepared_ || !(prepared_->id == m.entry)) {
    // Not prepared here (lost in a crash, or rolled back): catch up instead.
    send(from, DecideReply{m.epoch, m.entry, false});
    return;
  }
  participant_busy_ = true;
  decide_from_ = from;
  decide_epoch_ = m.epoch;
  queue_storage(CommitEntry{m.entry});
}

void TwoPhaseCommit::on_participant_committed(const StorageDone& done) {
  participant_busy_ = false;
  const EntryId id = prepared_ ? prepared_->id : EntryId{};
  if (!done.ok && prepared_ && done.error.kind == ErrorKind::invalid_request) {
    // The storage no longer holds it (on SQLite, rolled back to record a
    // promise): this replica cannot commit it and catches up instead.
    prepared_.reset();
    joined_ = false;
    if (decide_from_ != 0) send(decide_from_, DecideReply{decide_epoch_, id, false});
    decide_from_ = 0;
    run_deferred();
    return;
  }
  if (!done.ok && prepared_) {
    // The entry is decided: committing it is the only way forward. Keep it
    // prepared and try again on the next tick (the database may be back).
    commit_retry_ = true;
    return;
  }
  if (done.ok && prepared_) {
    applied_ = id;
    prepared_.reset();
    note_apply_progress();
  }
  // No commit acknowledgement to a coordinator whose epoch we have since
  // left: our vote for the newer epoch reported what we had applied then,
  // and an entry acknowledged to clients thanks to this commit would be
  // invisible to the new coordinator (I2). (Committing it locally is still
  // right — it is decided; if the new log differs, catch-up replaces it.)
  if (decide_from_ != 0 && decide_epoch_ == promised_) {
    send(decide_from_, DecideReply{decide_epoch_, id, done.ok});
  }
  decide_from_ = 0;
  run_deferred();
}

void TwoPhaseCommit::retry_commit() {
  if (!commit_retry_ || participant_busy_) return;
  commit_retry_ = false;
  if (!prepared_) {
    run_deferred();
    return;
  }
  participant_busy_ = true;
  queue_storage(CommitEntry{prepared_->id});
}

void TwoPhaseCommit::run_deferred() {
  // Handle what waited, until one of them starts a storage task again.
  while (!participant_busy_ && !deferred_.empty()) {
    auto [from, message] = std::move(deferred_.front());
    deferred_.pop_front();
    if (auto* p = std::get_if<Prepare>(&message)) {
      on_prepare(from, *p);
    } else if (auto* d = std::get_if<Decide>(&message)) {
      on_decide(from, *d);
    }
  }
}

}  // namespace distdb::core
