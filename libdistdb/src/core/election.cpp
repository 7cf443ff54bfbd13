// The Coordinator half of a Replica: heartbeats, liveness, elections, the view.
//
// Rules (docs/design.md, "Election and membership"):
//   - Every replica heartbeats every other one; a member silent for
//     heartbeat_timeout_ticks is considered down.
//   - Only the highest-id member a replica hears may become coordinator: a
//     replica starts an election only when it is the highest it hears (and
//     hears a majority), and grants its vote only to a candidate that is.
//   - A vote is a durable promise: once a replica promised epoch E it refuses
//     everything from older epochs. A candidate with promises from a majority
//     is the only coordinator of E (invariant I1).
//   - A coordinator with a lower id than a caught-up member hands over: that
//     member starts an election, and the seed's rule (highest id wins) holds
//     without a moment where the new coordinator lacks committed writes.
#include <algorithm>

#include "distdb/core/coordinator.hpp"

namespace distdb::core {

void Coordinator::send_heartbeats() {
  Heartbeat hb;
  hb.epoch = promised_;
  hb.coordinator = coordinator_;
  hb.is_coordinator = role_ == Role::coordinator;
  hb.applied = applied_;
  hb.eligible = !needs_snapshot_;
  if (hb.is_coordinator) hb.view.assign(view_.begin(), view_.end());
  broadcast(hb);
}

void Coordinator::check_liveness() {
  const auto timeout = static_cast<std::uint64_t>(config_.heartbeat_timeout_ticks);
  if (role_ == Role::coordinator) {
    // Silent members leave the view; they catch up and rejoin later.
    for (auto it = view_.begin(); it != view_.end();) {
      if (*it != config_.id && !is_alive(*it)) {
        if (round_) round_->members.erase(*it);
        it = view_.erase(it);
      } else {
        ++it;
      }
    }
    if (alive_members().size() >= majority()) {
      last_majority_contact_ = now_;
    } else if (now_ - last_majority_contact_ > timeout) {
      // Cut off from the majority: stop accepting writes. Whoever the
      // majority elects meanwhile will not be contradicted by us.
      step_down(0, "lost contact with the majority");
    }
    if (round_) check_round();
  } else if (coordinator_ != 0 && now_ - last_coordinator_contact_ > timeout) {
    // The coordinator went silent: the writes we forwarded to it may or may
    // not commit. Say so now rather than at the forward timeout.
    for (auto it = forwards_.begin(); it != forwards_.end();) {
      if (it->second.to != coordinator_) {
        ++it;
        continue;
      }
      WriteResult result;
      result.tag = it->first;
      result.kind = WriteResult::outcome_unknown;
      result.message = "the coordinator (node " + std::to_string(coordinator_) +
                       ") stopped answering: the write may or may not have been applied";
      ready_.results.push_back(std::move(result));
      it = forwards_.erase(it);
    }
    coordinator_ = 0;
    announced_view_.clear();
  }
}

void Coordinator::maybe_start_election() {
  if (role_ == Role::coordinator || now_ < election_not_before_) return;
  const std::vector<NodeId> alive = alive_members();
  if (alive.size() < majority()) return;
  // A member whose data diverged waits for its full copy first.
  const std::vector<NodeId> eligible = eligible_members();
  if (eligible.empty() || eligible.back() != config_.id) return;  // a higher member is up: it is the one to run
  const bool coordinator_alive =
      coordinator_ != 0 && now_ - last_coordinator_contact_ <= static_cast<std::uint64_t>(config_.heartbeat_timeout_ticks);
  if (coordinator_alive) {
    // Take over from a lower-id coordinator, but only once caught up and in
    // its view, so that the hand-over loses nothing and stalls little.
    if (coordinator_ > config_.id || !in_view_now()) return;
  }
  start_election();
}

void Coordinator::start_election() {
  role_ = Role::candidate;
  coordinator_ = 0;
  candidate_epoch_ = std::max(promised_, highest_seen_epoch_) + 1;
  promised_ = candidate_epoch_;
  votes_.clear();
  // Try again later if this one fails (no majority of grants): back off by
  // a random amount so that two candidates do not keep colliding.
  const auto timeout = static_cast<std::uint64_t>(config_.heartbeat_timeout_ticks);
  election_not_before_ = now_ + timeout + next_random() % (timeout + 1);
  queue_storage(PersistPromise{candidate_epoch_});
}

void Coordinator::on_promise_persisted(Epoch epoch) {
  if (pending_grant_ && pending_grant_->second == epoch) {
    VoteReply reply;
    reply.epoch = epoch;
    reply.granted = promised_ == epoch;
    reply.applied = applied_;  // every storage task queued before the promise is done
    reply.promised = promised_;
    send(pending_grant_->first, reply);
    pending_grant_.reset();
  }
  if (role_ == Role::candidate && epoch == candidate_epoch_ && promised_ == epoch) {
    VoteReply self;
    self.epoch = epoch;
    self.granted = true;
    self.applied = applied_;
    self.promised = epoch;
    votes_[config_.id] = self;
    broadcast(VoteRequest{epoch});
    if (votes_.size() >= majority()) become_coordinator();
  }
}

void Coordinator::on_vote_request(NodeId from, const VoteRequest& m) {
  highest_seen_epoch_ = std::max(highest_seen_epoch_, m.epoch);
  VoteReply refusal;
  refusal.epoch = m.epoch;
  refusal.granted = false;
  refusal.applied = applied_;
  refusal.promised = promised_;
  if (m.epoch <= promised_) {
    send(from, refusal);
    return;
  }
  // Highest id wins: refuse a candidate when a higher member is up (one
  // that waits for a full copy does not count).
  const std::vector<NodeId> alive = eligible_members();
  if (!alive.empty() && alive.back() > from) {
    send(from, refusal);
    return;
  }
  promised_ = m.epoch;
  if (role_ != Role::follower) step_down(0, "granted a vote to a higher candidate");
  coordinator_ = 0;
  announced_view_.clear();
  pending_grant_ = {from, m.epoch};
  queue_storage(PersistPromise{m.epoch});
}

void Coordinator::on_vote_reply(NodeId from, const VoteReply& m) {
  reported_applied_[from] = m.applied;
  if (role_ != Role::candidate || m.epoch != candidate_epoch_) return;
  if (!m.granted) {
    if (m.promised > promised_) {
      promised_ = m.promised;
      queue_storage(PersistPromise{promised_});
      role_ = Role::follower;
    } else if (m.promised < m.epoch && (quick_retry_until_ == 0 || now_ < quick_retry_until_)) {
      // Refused although our epoch was new to the voter: it still hears a
      // member with a higher id, which our failure detector has already
      // timed out. Its own detector started from that member's last
      // message too, so it fires soon: within a tick or two, or one
      // heartbeat interval if that member's last heartbeat reached the
      // voter and not us. Ask again every two ticks for that long, instead
      // of waiting out the back-off (one to two more heartbeat timeouts of
      // write outage whenever the candidate's detector fires first). Then
      // the back-off again, so that a voter that keeps hearing that member
      // (an asymmetric partition) is not asked in a tight loop.
      if (quick_retry_until_ == 0) {
        quick_retry_until_ = now_ + static_cast<std::uint64_t>(config_.heartbeat_interval_ticks) + 2;
      }
      election_not_before_ = std::min(election_not_before_, now_ + 2);
    }
    return;
  }
  votes_[from] = m;
  if (votes_.size() >= majority()) become_coordinator();
}

void Coordinator::become_coordinator() {
  role_ = Role::coordinator;
  quick_retry_until_ = 0;
  diverged_members_.clear();  // what an earlier term of ours found; the rounds of this one find their own
  coordinator_ = config_.id;
  last_coordinator_contact_ = now_;
  last_majority_contact_ = now_;
  // The best log among the majority that voted contains every acknowledged
  // entry (design.md, I2/I3): catch up to it before ordering new writes.
  EntryId best = applied_;
  NodeId best_holder = config_.id;
  for (const auto& [voter, vote] : votes_) {
    if (more_up_to_date(vote.applied, best)) {
      best = vote.applied;
      best_holder = voter;
    }
  }
  view_.clear();
  view_.insert(config_.id);
  for (const auto& [voter, vote] : votes_) {
    // Not one that waits for a full copy: it would refuse our rounds.
    if (vote.applied == best && ineligible_.count(voter) == 0) view_.insert(voter);
  }
  recovery_target_ = best;
  recovery_source_ = best_holder;
  recovering_ = best != applied_;
  if (prepared_) {
    // Our own undecided entry: the new log decides its position afresh.
    queue_storage(RollbackEntry{prepared_->id});
    prepared_.reset();
  }
  if (recovering_) {
    catching_up_ = false;
    maybe_catch_up();
  } else {
    last_decided_ = applied_;
  }
  send_heartbeats();
}

void Coordinator::step_down(NodeId new_coordinator, const char* reason) {
  if (role_ == Role::coordinator) last_step_down_reason_ = reason;
  if (role_ == Role::coordinator) {
    fail_pending(WriteResult::not_coordinator, "the coordinator stepped down before running the write");
    if (round_) {
      for (const Pending& p : round_->writes) {
        finish_write(p, WriteResult::outcome_unknown, {},
                     "the coordinator lost its epoch while the write was being replicated");
      }
      round_.reset();
    }
    view_.clear();
    recovering_ = false;
  }
  role_ = Role::follower;
  coordinator_ = new_coordinator;
}

void Coordinator::on_heartbeat(NodeId from, const Heartbeat& m) {
  reported_applied_[from] = m.applied;
  if (m.eligible) {
    ineligible_.erase(from);
  } else {
    ineligible_.insert(from);
  }
  highest_seen_epoch_ = std::max(highest_seen_epoch_, m.epoch);
  if (m.epoch > promised_ && m.is_coordinator) {
    // The coordinator of a newer epoch (it had a majority): follow it.
    promised_ = m.epoch;
    queue_storage(PersistPromise{promised_});
    if (role_ != Role::follower) step_down(0, "saw a coordinator of a newer epoch");
    coordinator_ = 0;
    announced_view_.clear();
  } else if (m.epoch > promised_ && role_ == Role::coordinator) {
    // A member promised a newer epoch (to a candidate that failed): it will
    // refuse our rounds, and our epoch cannot take it back. Make way for a
    // new election, which uses a higher epoch still.
    step_down(0, "a member promised a newer epoch");
  }
  if (m.epoch == promised_ && m.is_coordinator && role_ != Role::coordinator) {
    if (role_ == Role::candidate) role_ = Role::follower;
    quick_retry_until_ = 0;  // a coordinator is in place: the next failover may retry soon again
    coordinator_ = from;
    last_coordinator_contact_ = now_;
    announced_view_ = std::set<NodeId>(m.view.begin(), m.view.end());
    const bool listed = announced_view_.count(config_.id) > 0;
    if (!listed) joined_ = false;
    const bool holds_next = prepared_ && prepared_->id == m.applied;
    if (!listed && prepared_ && !participant_busy_) {
      // Out of the view: whatever we prepared was not (or no longer) counted
      // in the decision, and our outcomes were not compared. Drop it; if the
      // entry was decided, catch-up replays it from the log, checking them.
      queue_storage(RollbackEntry{prepared_->id});
      prepared_.reset();
    } else if (listed && holds_next && !participant_busy_) {
      // The coordinator has committed the entry we hold prepared, and we
      // are in its view, so our vote was counted: the entry is decided, even
      // if its Decide never reached us.
      participant_busy_ = true;
      decide_from_ = 0;
      queue_storage(CommitEntry{prepared_->id});
    } else if (joined_ && !holds_next && !participant_busy_ && m.applied.seq > applied_.seq) {
      // Listed in the view but behind the coordinator (a round we missed,
      // or an entry rolled back at restart): catch up and rejoin.
      joined_ = false;
    }
  }
}

}  // namespace distdb::core
