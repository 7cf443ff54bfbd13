// Replica: inputs, outputs and the helpers the protocol files share.
#include "distdb/core/replica.hpp"

#include <algorithm>
#include <cassert>

namespace distdb::core {

ReplicaCore::ReplicaCore(ReplicaConfig config, RecoveredState recovered)
    : config_(std::move(config)),
      rng_(config_.random_seed * 0x9E3779B97F4A7C15ull + config_.id),
      promised_(recovered.promised),
      applied_(recovered.applied),
      last_decided_(recovered.applied) {
  std::sort(config_.members.begin(), config_.members.end());
  // A prepared transaction found at start is rolled back at once. That is
  // always safe: a client is only told OK once a majority has COMMITTED
  // (design.md, I2), so a merely prepared entry was never acknowledged; if
  // it was decided, catch-up brings it back from the log of a replica that
  // committed it.
  for (const EntryId& id : recovered.prepared) queue_storage(RollbackEntry{id});
  needs_snapshot_ = recovered.needs_snapshot;
}

Replica::Replica(ReplicaConfig config, RecoveredState recovered)
    : ReplicaCore(std::move(config), std::move(recovered)) {}

// --- inputs -----------------------------------------------------------------

void Replica::tick() {
  ++now_;
  for (const EntryId& id : std::exchange(rollbacks_to_retry_, {})) queue_storage(RollbackEntry{id});
  retry_commit();
  if (now_ % static_cast<std::uint64_t>(std::max(1, config_.heartbeat_interval_ticks)) == 0) send_heartbeats();
  check_liveness();
  maybe_start_election();
  if (role_ == Role::coordinator) {
    round_timeout();
    maybe_start_round();
  }
  maybe_catch_up();
  expire_forwards();
  expire_waiting();
  drain_local_inbox();
}

void Replica::step(const Envelope& envelope) {
  if (envelope.to != config_.id || envelope.from == config_.id) return;
  if (std::find(config_.members.begin(), config_.members.end(), envelope.from) == config_.members.end()) return;
  last_heard_[envelope.from] = now_;
  process(envelope);
  drain_local_inbox();
}

void Replica::process(const Envelope& e) {
  const NodeId from = e.from;
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, Heartbeat>) on_heartbeat(from, m);
        else if constexpr (std::is_same_v<T, VoteRequest>) on_vote_request(from, m);
        else if constexpr (std::is_same_v<T, VoteReply>) on_vote_reply(from, m);
        else if constexpr (std::is_same_v<T, Prepare>) on_prepare(from, m);
        else if constexpr (std::is_same_v<T, PrepareReply>) on_prepare_reply(from, m);
        else if constexpr (std::is_same_v<T, Decide>) on_decide(from, m);
        else if constexpr (std::is_same_v<T, DecideReply>) on_decide_reply(from, m);
        else if constexpr (std::is_same_v<T, CatchUpRequest>) on_catch_up_request(from, m);
        else if constexpr (std::is_same_v<T, CatchUpReply>) on_catch_up_reply(from, m);
        else if constexpr (std::is_same_v<T, ForwardedWrite>) on_forwarded_write(from, m);
        else if constexpr (std::is_same_v<T, ForwardedReply>) on_forwarded_reply(m);
      },
      e.message);
}

void Replica::propose(ClientTag tag, std::string sql) {
  on_propose(tag, std::move(sql), 0, 0);
  drain_local_inbox();
}

void Replica::storage_done(StorageDone done) {
  // Tasks complete in the order they were handed out (storage_ops.hpp).
  assert(!in_flight_.empty() && in_flight_.front().id == done.id);
  if (in_flight_.empty() || in_flight_.front().id != done.id) return;
  const StorageTask task = std::move(in_flight_.front());
  in_flight_.pop_front();
  std::visit(
      [&](const auto& op) {
        using T = std::decay_t<decltype(op)>;
        if constexpr (std::is_same_v<T, PersistPromise>) {
          if (done.ok) on_promise_persisted(op.epoch);
        } else if constexpr (std::is_same_v<T, PrepareEntry>) {
          on_participant_prepared(done);
        } else if constexpr (std::is_same_v<T, CommitEntry>) {
          on_participant_committed(done);
        } else if constexpr (std::is_same_v<T, RollbackEntry>) {
          // Nothing waits for a rollback, but a prepared transaction left
          // behind would hold its locks: retry a failed one (next tick).
          if (!done.ok) rollbacks_to_retry_.push_back(op.id);
        } else if constexpr (std::is_same_v<T, ApplyEntries>) {
          on_entries_applied(done, op);
        } else if constexpr (std::is_same_v<T, ReadLog>) {
          on_log_read(done, op);
        } else if constexpr (std::is_same_v<T, ReadSnapshot>) {
          on_snapshot_read(done, op);
        } else if constexpr (std::is_same_v<T, InstallSnapshot>) {
          on_snapshot_installed(done, op);
        }
      },
      task.op);
  drain_local_inbox();
}

Ready Replica::take_ready() { return std::exchange(ready_, Ready{}); }

// --- shared helpers -----------------------------------------------------------

std::uint64_t ReplicaCore::queue_storage(StorageOp op) {
  const std::uint64_t id = next_task_id_++;
  in_flight_.push_back({id, op});
  ready_.storage.push_back({id, std::move(op)});
  return id;
}

void ReplicaCore::send(NodeId to, Message m) {
  if (to == config_.id) {
    local_inbox_.push_back({config_.id, config_.id, std::move(m)});
  } else {
    ready_.messages.push_back({config_.id, to, std::move(m)});
  }
}

void ReplicaCore::broadcast(const Message& m) {
  for (NodeId member : config_.members) {
    if (member != config_.id) send(member, m);
  }
}

void Replica::drain_local_inbox() {
  while (!local_inbox_.empty()) {
    Envelope e = std::move(local_inbox_.front());
    local_inbox_.pop_front();
    process(e);
  }
}

bool ReplicaCore::is_alive(NodeId id) const {
  if (id == config_.id) return true;
  auto it = last_heard_.find(id);
  return it != last_heard_.end() &&
         now_ - it->second <= static_cast<std::uint64_t>(config_.heartbeat_timeout_ticks);
}

std::vector<NodeId> ReplicaCore::alive_members() const {
  std::vector<NodeId> alive;
  for (NodeId m : config_.members) {
    if (is_alive(m)) alive.push_back(m);
  }
  return alive;
}

std::vector<NodeId> ReplicaCore::eligible_members() const {
  std::vector<NodeId> out;
  for (NodeId m : alive_members()) {
    const bool waits_for_copy = m == config_.id ? needs_snapshot_ : ineligible_.count(m) > 0;
    if (!waits_for_copy) out.push_back(m);
  }
  return out;
}

std::uint64_t ReplicaCore::next_random() {
  // splitmix64: small, and deterministic for a given seed.
  std::uint64_t z = (rng_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

bool ReplicaCore::in_view_now() const {
  if (role_ == Role::coordinator) return true;
  // Listed by the coordinator is not enough: after a restart its view may
  // still hold our previous incarnation. We count as in the view once we
  // have joined (or taken part in a round) since.
  return joined_ && announced_view_.count(config_.id) > 0;
}

bool ReplicaCore::can_commit_now() const {
  return role_ == Role::coordinator && !recovering_ && view_.size() >= majority();
}

Staleness ReplicaCore::staleness_now() const {
  // A decided entry that failed to commit here is missing from our data,
  // in the view or not, coordinator or not.
  if (commit_retry_) return Staleness::commit_failed;
  if (role_ == Role::coordinator) {
    if (!recovering_) return Staleness::current;
  } else if (coordinator_ != 0 && in_view_now()) {
    // In the view: we took part in every round since we joined (a member
    // that misses one, or votes no, leaves the view), so we hold every
    // committed entry but, at most, the latest (its Decide may be on its way).
    return Staleness::current;
  }
  // Behind, or not knowing: the most telling reason first.
  if (needs_snapshot_) return Staleness::needs_snapshot;
  if (apply_failed_) return Staleness::apply_failed;
  if (role_ == Role::coordinator) return Staleness::recovering;
  if (coordinator_ == 0) return Staleness::no_coordinator;
  if (catching_up_ || applying_) return Staleness::catching_up;
  return Staleness::out_of_view;
}

CatchUpStatus Replica::catch_up_status() const {
  CatchUpStatus s;
  s.staleness = staleness_now();
  s.applied = applied_;
  s.failed_attempts = apply_failures_;
  s.needs_snapshot = needs_snapshot_;
  s.snapshot_after_failures = snapshot_after_failures_;
  s.retry_in_ticks = next_catch_up_at_ > now_ ? next_catch_up_at_ - now_ : 0;
  return s;
}

std::vector<MemberView> Replica::members() const {
  std::vector<MemberView> out;
  const std::set<NodeId>& view = role_ == Role::coordinator ? view_ : announced_view_;
  for (NodeId m : config_.members) {
    MemberView v;
    v.id = m;
    v.alive = is_alive(m);
    v.in_view = view.count(m) > 0;
    if (m == config_.id) {
      v.applied = applied_;
    } else if (auto it = reported_applied_.find(m); it != reported_applied_.end()) {
      v.applied = it->second;
    }
    out.push_back(v);
  }
  return out;
}

}  // namespace distdb::core
