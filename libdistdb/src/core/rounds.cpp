// The TwoPhaseCommit half, coordinator side: batching writes into log
// entries and running each through prepare and commit.
//
// One round at a time: entry s+1 is prepared only once s is committed on a
// majority. Throughput comes from batching every write waiting when a round
// starts into its entry, not from overlapping rounds; this keeps at most one
// undecided entry in the whole cluster, which is what makes recovery simple.
//
// A round (docs/design.md, "Writes"):
//   1. Prepare(entry) to every member of the view, the coordinator included
//      (its own participant gets it through the local inbox). When shipping
//      effects (ReplicaConfig::ship_effects), to the coordinator alone
//      first; once it has voted, to the others with what its run changed
//      (ask_others).
//   2. A member that votes no, disagrees on an outcome, or stays silent
//      leaves the view (it catches up and rejoins). The entry is decided
//      (committed) once every remaining member voted yes — provided they are
//      still a majority; otherwise the coordinator steps down and the
//      writes' outcome is unknown.
//   3. Decide(entry) to those members. Once a majority (the coordinator
//      included) has committed, the writes are answered: from then on every
//      later coordinator's log contains the entry (I2).
#include <algorithm>

#include "distdb/core/two_phase_commit.hpp"

namespace distdb::core {

void TwoPhaseCommit::on_propose(ClientTag tag, std::string sql, NodeId forwarded_from, ClientTag forwarded_tag) {
  Pending p{tag, std::move(sql), forwarded_from, forwarded_tag, now_};
  if (role_ == Role::coordinator) {
    // Queued even while the view is short of a majority (members rejoining
    // after an election): expire_waiting() answers no_quorum if it stays so.
    pending_.push_back(std::move(p));
    maybe_start_round();
    return;
  }
  if (forwarded_from != 0) {
    // A forwarded write reached a replica that is not (or no longer) the coordinator.
    finish_write(p, coordinator_ != 0 ? WriteResult::not_coordinator : WriteResult::no_quorum, {},
                 coordinator_ != 0 ? "not the coordinator" : "no coordinator elected");
    return;
  }
  if (coordinator_ == 0) {
    // An election may be under way (or the node just started): wait for it
    // a little rather than fail at once.
    parked_.push_back(std::move(p));
    return;
  }
  forward(std::move(p));
}

void TwoPhaseCommit::forward(Pending p) {
  if (!config_.forward_writes) {
    finish_write(p, WriteResult::not_coordinator, {}, "writes go to the coordinator");
    return;
  }
  forwards_[p.tag] = Forward{p.tag, coordinator_, now_};
  send(coordinator_, ForwardedWrite{promised_, p.tag, p.sql});
}

void TwoPhaseCommit::expire_waiting() {
  const auto limit = static_cast<std::uint64_t>(2 * config_.heartbeat_timeout_ticks);
  const std::string why = "no quorum: no coordinator with a majority could be found in time";
  if (role_ == Role::coordinator) {
    for (Pending& p : std::exchange(parked_, {})) pending_.push_back(std::move(p));
    if (!can_commit_now()) {
      while (!pending_.empty() && now_ - pending_.front().since > limit) {
        Pending p = std::move(pending_.front());
        pending_.pop_front();
        finish_write(p, WriteResult::no_quorum, {}, why);
      }
    }
    return;
  }
  while (!parked_.empty()) {
    if (coordinator_ != 0) {
      Pending p = std::move(parked_.front());
      parked_.pop_front();
      forward(std::move(p));
    } else if (now_ - parked_.front().since > limit) {
      Pending p = std::move(parked_.front());
      parked_.pop_front();
      finish_write(p, WriteResult::no_quorum, {}, why);
    } else {
      break;
    }
  }
}

void TwoPhaseCommit::maybe_start_round() {
  if (round_ || pending_.empty() || !can_commit_now()) return;
  Round r;
  r.entry.id = EntryId{last_decided_.seq + 1, promised_};
  while (!pending_.empty() && r.writes.size() < config_.max_batch) {
    const bool alone = config_.runs_alone && config_.runs_alone(pending_.front().sql);
    if (alone && !r.writes.empty()) break;  // it starts the next entry
    r.entry.statements.push_back(LoggedStatement{pending_.front().sql, true, 0, 0, {}});
    r.writes.push_back(std::move(pending_.front()));
    pending_.pop_front();
    if (alone) break;
  }
  r.members = view_;
  r.started_at = now_;
  round_ = std::move(r);
  Prepare prepare{promised_, last_decided_, round_->entry, {}};
  if (config_.ship_effects) {
    // Our own participant runs the entry first; the others get it with its
    // effects once we have voted (ask_others).
    round_->others_asked = false;
    send(config_.id, prepare);
    return;
  }
  for (NodeId member : round_->members) send(member, prepare);
}

void TwoPhaseCommit::ask_others(const PrepareReply& own) {
  Round& r = *round_;
  r.others_asked = true;
  r.started_at = now_;   // the others get their own round_timeout_ticks
  if (!own.yes) return;  // check_round steps down
  // The entry as our participant prepared it: its statements' expected
  // outcomes filled and, when the storage captured them, its effects.
  if (prepared_ && prepared_->id == r.entry.id) r.entry = *prepared_;
  Prepare prepare{promised_, last_decided_, r.entry, {}};
  if (r.entry.effects) prepare.outcomes = own.outcomes;
  for (NodeId member : r.members) {
    if (member != config_.id) send(member, prepare);
  }
}

void TwoPhaseCommit::on_prepare_reply(NodeId from, const PrepareReply& m) {
  if (role_ != Role::coordinator || !round_ || round_->decided) return;
  if (m.epoch != promised_ || !(m.entry == round_->entry.id) || round_->members.count(from) == 0) return;
  round_->votes[from] = m;
  round_->all_votes[from] = m;
  if (!round_->others_asked && from == config_.id) ask_others(m);
  check_round();
}

namespace {

bool same_outcomes(const PrepareReply& a, const PrepareReply& b) {
  if (!a.yes || !b.yes || a.outcomes.size() != b.outcomes.size()) return false;
  for (std::size_t i = 0; i < a.outcomes.size(); ++i) {
    if (!a.outcomes[i].same_effect(b.outcomes[i])) return false;
  }
  return true;
}

}  // namespace

bool TwoPhaseCommit::rows_refused_by_majority(const Round& r) const {
  // With effects shipped, members report the coordinator's outcomes, so
  // outcomes cannot disagree; a member whose data differs refuses the rows
  // instead. When a majority of the cluster refuses them, the odd one out
  // is us.
  std::size_t refusing = 0;
  for (const auto& [voter, vote] : r.all_votes) {
    if (voter != config_.id && !vote.yes && vote.effects_refused) ++refusing;
  }
  return refusing >= majority();
}

bool TwoPhaseCommit::outvoted(const Round& r, const PrepareReply& self) const {
  for (const auto& [voter, vote] : r.all_votes) {
    if (voter == config_.id || same_outcomes(vote, self)) continue;
    std::size_t agreeing = 0;
    for (const auto& [other, other_vote] : r.all_votes) {
      if (other != config_.id && same_outcomes(other_vote, vote)) ++agreeing;
    }
    if (agreeing >= majority()) return true;
  }
  return false;
}

bool TwoPhaseCommit::agreed_by_none(const Round& r, const PrepareReply& self) const {
  // Every other member of the cluster voted yes, each with other outcomes
  // than ours (and outvoted() found no majority agreeing on theirs: three
  // members, three digests). A member that is down or whose storage failed
  // might agree with us: then this is not the case, and the round fails as
  // any other.
  if (config_.members.size() < 2) return false;
  for (NodeId m : config_.members) {
    if (m == config_.id) continue;
    const auto vote = r.all_votes.find(m);
    if (vote == r.all_votes.end() || !vote->second.yes || same_outcomes(vote->second, self)) return false;
  }
  return true;
}

void TwoPhaseCommit::check_round() {
  if (!round_) return;
  Round& r = *round_;
  if (!r.decided) {
    auto self = r.votes.find(config_.id);
    if (self != r.votes.end() && !self->second.yes) {
      // Our own storage refused: we cannot order writes.
      step_down(0, "its own storage refused the entry");
      return;
    }
    // Our own outcomes against a majority that agrees on others: our data
    // is the one that differs (e.g. an auto-increment counter moved by an
    // entry we prepared alone, then rolled back). Ordering writes from it
    // would push every other member out; instead step down, wait for a
    // full copy, and stay out of elections until it is installed.
    if (self != r.votes.end() && (outvoted(r, self->second) || rows_refused_by_majority(r))) {
      needs_snapshot_ = true;
      step_down(0, "its outcomes differ from those of a majority: its data diverged, and it takes a full copy");
      return;
    }
    // No member agrees with anyone: a vote cannot tell whose data is right
    // (auto-increment counters moved differently on each member by entries
    // prepared and rolled back, say). Keeping ours would push every other
    // member out and step down for want of a majority; the next election
    // would make us coordinator again and meet the same round, for ever (the
    // fault runner found that livelock). Any one member's data will do, as
    // long as all take the same: ours gives way, as an outvoted coordinator's
    // does. The next coordinator then finds at most one member that differs
    // from it, which the rule below repairs.
    if (self != r.votes.end() && agreed_by_none(r, self->second)) {
      needs_snapshot_ = true;
      step_down(0,
                "no member's outcomes agree with its own or with each other's: its data gives way, and it "
                "takes a full copy from the next coordinator");
      return;
    }
    // Members that voted no, or whose outcomes differ from ours, leave the view.
    if (self != r.votes.end()) {
      for (auto it = r.votes.begin(); it != r.votes.end();) {
        const PrepareReply& v = it->second;
        bool agrees = v.yes && v.outcomes.size() == self->second.outcomes.size();
        for (std::size_t i = 0; agrees && i < v.outcomes.size(); ++i) {
          agrees = v.outcomes[i].same_effect(self->second.outcomes[i]);
        }
        if (!agrees) {
          // A yes vote with other outcomes: same statements, same order,
          // other effects, so other data (a no vote only says the storage
          // failed).
          if (v.yes && it->first != config_.id) diverged_members_.insert(it->first);
          r.members.erase(it->first);
          view_.erase(it->first);
          it = r.votes.erase(it);
        } else {
          ++it;
        }
      }
    }
    if (r.members.size() < majority()) {
      step_down(0, "too few members agreed on the entry");
      return;
    }
    for (NodeId m : r.members) {
      if (r.votes.count(m) == 0) return;  // still waiting
    }
    r.decided = true;
    r.started_at = now_;  // the commit phase gets its own round_timeout_ticks
    r.reference = r.votes[config_.id].outcomes;
    last_decided_ = r.entry.id;
    for (NodeId m : r.members) send(m, Decide{promised_, r.entry.id});
    return;
  }
  std::set<NodeId> possible = r.members;
  possible.insert(r.committed.begin(), r.committed.end());
  if (possible.size() < majority()) {
    // Too few members left to ever commit it on a majority.
    step_down(0, "too few members left to commit the entry");
    return;
  }
  if (r.committed.count(config_.id) == 0 || r.committed.size() < majority()) return;
  // Committed on a majority, ourselves included: answer every write.
  Round done = std::move(r);
  round_.reset();
  for (std::size_t i = 0; i < done.writes.size(); ++i) {
    const StatementOutcome& outcome = done.reference.at(i);
    finish_write(done.writes[i], WriteResult::committed, outcome,
                 outcome.ok ? "SUCCESS: replicated to every node of the view"
                            : "ERROR: " + outcome.message + " (rolled back on every node)");
  }
  maybe_start_round();
}

void TwoPhaseCommit::on_decide_reply(NodeId from, const DecideReply& m) {
  if (role_ != Role::coordinator || !round_ || !round_->decided) return;
  if (m.epoch != promised_ || !(m.entry == round_->entry.id)) return;
  if (m.ok) {
    round_->committed.insert(from);
  } else if (from == config_.id) {
    step_down(0, "its own storage lost the prepared entry");
    return;
  } else {
    // It could not commit (its storage failed): out of the view until it catches up.
    round_->members.erase(from);
    view_.erase(from);
  }
  check_round();
}

void TwoPhaseCommit::round_timeout() {
  if (!round_ || now_ - round_->started_at <= static_cast<std::uint64_t>(config_.round_timeout_ticks)) return;
  // Members that have not answered in time leave the view.
  Round& r = *round_;
  if (!r.others_asked) return;  // our own prepare is still running: nobody else was asked yet
  for (auto it = r.members.begin(); it != r.members.end();) {
    const bool answered = r.decided ? r.committed.count(*it) > 0 : r.votes.count(*it) > 0;
    if (!answered && *it != config_.id) {
      view_.erase(*it);
      it = r.members.erase(it);
    } else {
      ++it;
    }
  }
  r.started_at = now_;
  check_round();
}

void TwoPhaseCommit::fail_pending(WriteResult::Kind kind, const std::string& why) {
  while (!pending_.empty()) {
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    finish_write(p, kind, {}, why);
  }
}

void TwoPhaseCommit::finish_write(const Pending& p, WriteResult::Kind kind, const StatementOutcome& outcome,
                           const std::string& message) {
  if (p.forwarded_from != 0) {
    ForwardedReply reply;
    reply.tag = p.forwarded_tag;
    reply.result = kind;
    reply.outcome = outcome;
    reply.coordinator = coordinator_;
    reply.message = message;
    const std::pair<NodeId, ClientTag> key{p.forwarded_from, p.forwarded_tag};
    running_forwards_.erase(key);
    answered_forwards_[key] = reply;
    answered_order_.push_back(key);
    while (answered_order_.size() > kAnsweredForwardsKept) {
      answered_forwards_.erase(answered_order_.front());
      answered_order_.pop_front();
    }
    send(p.forwarded_from, std::move(reply));
    return;
  }
  WriteResult result;
  result.tag = p.tag;
  result.kind = kind;
  result.outcome = outcome;
  result.executed_by = kind == WriteResult::committed ? config_.id : 0;
  result.coordinator = coordinator_;
  result.message = message;
  ready_.results.push_back(std::move(result));
}

void TwoPhaseCommit::on_forwarded_write(NodeId from, const ForwardedWrite& m) {
  // The network may deliver a message twice: a write must run once. A
  // repeat of a forward still running is dropped (its answer will come); a
  // repeat of one already answered gets the same answer again.
  const std::pair<NodeId, ClientTag> key{from, m.tag};
  if (auto it = answered_forwards_.find(key); it != answered_forwards_.end()) {
    send(from, it->second);
    return;
  }
  if (!running_forwards_.insert(key).second) return;
  on_propose(0, m.sql, from, m.tag);
}

void TwoPhaseCommit::on_forwarded_reply(const ForwardedReply& m) {
  auto it = forwards_.find(m.tag);
  if (it == forwards_.end()) return;  // already expired: the client was told the outcome is unknown
  WriteResult result;
  result.tag = m.tag;
  result.kind = static_cast<WriteResult::Kind>(m.result);
  result.outcome = m.outcome;
  result.executed_by = m.result == WriteResult::committed ? it->second.to : 0;
  result.coordinator = m.coordinator;
  result.message = m.message;
  forwards_.erase(it);
  ready_.results.push_back(std::move(result));
}

void TwoPhaseCommit::expire_forwards() {
  for (auto it = forwards_.begin(); it != forwards_.end();) {
    if (now_ - it->second.sent_at > static_cast<std::uint64_t>(config_.forward_timeout_ticks)) {
      WriteResult result;
      result.tag = it->first;
      result.kind = WriteResult::outcome_unknown;
      result.coordinator = coordinator_;
      result.message = "no answer from the coordinator: the write may or may not have been applied";
      ready_.results.push_back(std::move(result));
      it = forwards_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace distdb::core
