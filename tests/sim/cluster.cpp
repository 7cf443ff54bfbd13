#include "cluster.hpp"

#include <stdexcept>
#include <type_traits>
#include <utility>

namespace distdb::sim {

namespace {

std::string nodes_str(const std::vector<NodeId>& ids) {
  std::string out = "[";
  for (std::size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  return out + "]";
}

std::string b(bool v) { return v ? "1" : "0"; }

}  // namespace

std::string describe(const core::Message& m) {
  std::string out = core::message_name(m);
  std::visit(
      [&out](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, core::Heartbeat>) {
          out += " e=" + std::to_string(x.epoch) + " coord=" + std::to_string(x.coordinator) +
                 " is_coord=" + b(x.is_coordinator) + " applied=" + to_string(x.applied) +
                 (x.is_coordinator ? " view=" + nodes_str(x.view) : "");
        } else if constexpr (std::is_same_v<T, core::VoteRequest>) {
          out += " e=" + std::to_string(x.epoch);
        } else if constexpr (std::is_same_v<T, core::VoteReply>) {
          out += " e=" + std::to_string(x.epoch) + " granted=" + b(x.granted) + " applied=" +
                 to_string(x.applied) + " promised=" + std::to_string(x.promised);
        } else if constexpr (std::is_same_v<T, core::Prepare>) {
          out += " e=" + std::to_string(x.epoch) + " prev=" + to_string(x.previous) + " entry=" +
                 to_string(x.entry.id) + " n=" + std::to_string(x.entry.statements.size());
        } else if constexpr (std::is_same_v<T, core::PrepareReply>) {
          out += " e=" + std::to_string(x.epoch) + " entry=" + to_string(x.entry) + " yes=" + b(x.yes) +
                 (x.yes ? "" : " reason=" + x.reason);
        } else if constexpr (std::is_same_v<T, core::Decide>) {
          out += " e=" + std::to_string(x.epoch) + " entry=" + to_string(x.entry);
        } else if constexpr (std::is_same_v<T, core::DecideReply>) {
          out += " e=" + std::to_string(x.epoch) + " entry=" + to_string(x.entry) + " ok=" + b(x.ok);
        } else if constexpr (std::is_same_v<T, core::CatchUpRequest>) {
          out += " e=" + std::to_string(x.epoch) + " applied=" + to_string(x.applied) + " join=" + b(x.join);
        } else if constexpr (std::is_same_v<T, core::CatchUpReply>) {
          out += " e=" + std::to_string(x.epoch) + " entries=" + std::to_string(x.entries.size()) +
                 " conflict=" + b(x.conflict) + " snapshot=" + b(x.snapshot) +
                 (x.snapshot ? " snap_applied=" + to_string(x.snapshot_applied) : "") + " joined=" + b(x.joined) +
                 " last=" + to_string(x.last);
        } else if constexpr (std::is_same_v<T, core::ForwardedWrite>) {
          out += " e=" + std::to_string(x.epoch) + " tag=" + std::to_string(x.tag) + " sql='" + x.sql + "'";
        } else if constexpr (std::is_same_v<T, core::ForwardedReply>) {
          out += " tag=" + std::to_string(x.tag) + " result=" + std::to_string(x.result) +
                 " coord=" + std::to_string(x.coordinator);
        }
      },
      m);
  return out;
}

std::string describe(const core::StorageOp& op) {
  std::string out = core::storage_op_name(op);
  std::visit(
      [&out](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, core::PersistPromise>) {
          out += " e=" + std::to_string(x.epoch);
        } else if constexpr (std::is_same_v<T, core::PrepareEntry>) {
          out += " " + to_string(x.entry.id) + " n=" + std::to_string(x.entry.statements.size());
        } else if constexpr (std::is_same_v<T, core::CommitEntry> || std::is_same_v<T, core::RollbackEntry>) {
          out += " " + to_string(x.id);
        } else if constexpr (std::is_same_v<T, core::ApplyEntries>) {
          out += " n=" + std::to_string(x.entries.size());
          if (!x.entries.empty()) {
            out += " " + to_string(x.entries.front().id) + ".." + to_string(x.entries.back().id);
          }
        } else if constexpr (std::is_same_v<T, core::ReadLog>) {
          out += " after=" + to_string(x.after) + " max=" + std::to_string(x.max) +
                 " reader=" + std::to_string(x.reader) + " join=" + b(x.join);
        } else if constexpr (std::is_same_v<T, core::ReadSnapshot>) {
          out += " reader=" + std::to_string(x.reader);
        } else if constexpr (std::is_same_v<T, core::InstallSnapshot>) {
          out += " applied=" + to_string(x.applied) + " bytes=" + std::to_string(x.data.size());
        }
      },
      op);
  return out;
}

Cluster::Cluster(ClusterOptions options)
    : options_(std::move(options)), rng_(options_.seed), trace_(options_.verbose), network_(options_.network) {
  checker_.set_cluster_size(options_.nodes);
  for (NodeId id = 1; id <= options_.nodes; ++id) {
    Node n;
    n.id = id;
    SimStorageOptions so;
    so.prepare_durable = options_.prepare_durable;
    so.nondeterministic = options_.nondeterministic;
    so.log_retention = options_.log_retention;
    so.failure_ppm = options_.storage_failure_ppm;
    n.storage = std::make_unique<SimStorage>(id, so);
    checker_.attach(*n.storage);
    n.storage->on_note = [this](NodeId at, const std::string& text) {
      trace_.add(now_, "node " + std::to_string(at) + " storage note: " + text);
    };
    nodes_.emplace(id, std::move(n));
  }
  for (auto& [id, n] : nodes_) start_replica(n);
}

Cluster::~Cluster() = default;

Cluster::Node& Cluster::node(NodeId id) {
  auto it = nodes_.find(id);
  if (it == nodes_.end()) throw std::out_of_range("sim: no node " + std::to_string(id));
  return it->second;
}

const Cluster::Node& Cluster::node(NodeId id) const {
  auto it = nodes_.find(id);
  if (it == nodes_.end()) throw std::out_of_range("sim: no node " + std::to_string(id));
  return it->second;
}

std::vector<NodeId> Cluster::ids() const {
  std::vector<NodeId> out;
  for (const auto& [id, n] : nodes_) out.push_back(id);
  return out;
}

std::vector<NodeId> Cluster::up_ids() const {
  std::vector<NodeId> out;
  for (const auto& [id, n] : nodes_) {
    if (n.replica) out.push_back(id);
  }
  return out;
}

bool Cluster::is_up(NodeId id) const { return node(id).replica != nullptr; }

core::Replica& Cluster::replica(NodeId id) {
  Node& n = node(id);
  if (!n.replica) throw std::logic_error("sim: node " + std::to_string(id) + " is down");
  return *n.replica;
}

SimStorage& Cluster::storage(NodeId id) { return *node(id).storage; }

void Cluster::set_storage_failure_ppm(std::uint64_t ppm) {
  for (auto& [id, n] : nodes_) n.storage->set_failure_ppm(ppm);
}

void Cluster::start_replica(Node& n) {
  core::ReplicaConfig config = options_.replica;
  config.id = n.id;
  config.members = ids();
  config.random_seed = rng_.next();
  const core::RecoveredState recovered = n.storage->recover();
  ++n.incarnation;
  std::string prepared;
  for (const auto& p : recovered.prepared) prepared += " " + to_string(p);
  trace_.add(now_, "node " + std::to_string(n.id) + " starts (incarnation " + std::to_string(n.incarnation) +
                       ") promised=" + std::to_string(recovered.promised) + " applied=" +
                       to_string(recovered.applied) + " prepared=[" + prepared + " ]");
  n.replica = std::make_unique<core::Replica>(config, recovered);
  checker_.restarted(n.id);
  drain(n);
}

void Cluster::observe(Node& n) {
  if (n.replica) checker_.observe(*n.replica, *n.storage);
}

void Cluster::drain(Node& n) {
  while (n.replica) {
    core::Ready ready = n.replica->take_ready();
    if (ready.empty()) break;
    for (auto& task : ready.storage) {
      if (trace_.verbose()) {
        trace_.add(now_, "node " + std::to_string(n.id) + " queues #" + std::to_string(task.id) + " " +
                             sim::describe(task.op));
      } else {
        trace_.add(now_, "node " + std::to_string(n.id) + " queues #" + std::to_string(task.id) + " " +
                             core::storage_op_name(task.op));
      }
      n.fifo.push_back(std::move(task));
      if (n.fifo.size() == 1) n.head_due = now_ + rng_.between(options_.storage_min_latency, options_.storage_max_latency);
    }
    for (auto& env : ready.messages) {
      if (!nodes_.count(env.to) || env.from != n.id) {
        checker_.safety_violation("node " + std::to_string(n.id) + " sent " + core::message_name(env.message) +
                                  " from " + std::to_string(env.from) + " to unknown node " +
                                  std::to_string(env.to));
        continue;
      }
      if (trace_.verbose()) {
        trace_.add(now_, "send " + std::to_string(env.from) + "->" + std::to_string(env.to) + " " +
                             sim::describe(env.message));
      }
      checker_.on_send(env, *n.storage);
      network_.send(std::move(env), now_, rng_);
    }
    for (const auto& result : ready.results) record_result(n.id, result);
  }
  observe(n);
}

void Cluster::record_result(NodeId at, const core::WriteResult& result) {
  auto it = history_.find(result.tag);
  trace_.add(now_, "node " + std::to_string(at) + " answers write " + std::to_string(result.tag) + ": " +
                       kind_name(result.kind) + (result.outcome.ok ? "" : " code=" + std::to_string(result.outcome.code)) +
                       " coord=" + std::to_string(result.coordinator) +
                       (result.message.empty() ? "" : " (" + result.message + ")"));
  if (it == history_.end()) {
    checker_.safety_violation("node " + std::to_string(at) + " answered unknown write tag " +
                              std::to_string(result.tag));
    return;
  }
  WriteRecord& w = it->second;
  if (w.node != at) {
    checker_.safety_violation("node " + std::to_string(at) + " answered write " + std::to_string(result.tag) +
                              " proposed at node " + std::to_string(w.node));
  }
  checker_.on_result(w, result);
  ++w.answers;
  // Keep the first definite answer; an unknown outcome may be resolved later.
  if (!w.result || w.result->kind == core::WriteResult::outcome_unknown) {
    w.result = result;
    w.answered_at = now_;
  }
}

void Cluster::finish_storage_task(Node& n) {
  core::StorageTask task = std::move(n.fifo.front());
  n.fifo.pop_front();
  if (!n.fifo.empty()) n.head_due = now_ + rng_.between(options_.storage_min_latency, options_.storage_max_latency);
  core::StorageDone done = n.storage->execute(task, rng_);
  std::string extra;
  if (!done.ok) extra += " FAILED(" + done.error.message + ")";
  if (done.diverged) extra += " diverged";
  if (done.log_conflict) extra += " log_conflict";
  if (done.log_truncated) extra += " log_truncated";
  if (std::holds_alternative<core::ApplyEntries>(task.op)) extra += " applied_count=" + std::to_string(done.applied_count);
  if (std::holds_alternative<core::ReadLog>(task.op)) extra += " entries=" + std::to_string(done.entries.size());
  trace_.add(now_, "node " + std::to_string(n.id) + " done #" + std::to_string(task.id) + " " +
                       core::storage_op_name(task.op) + extra + " -> applied=" + to_string(n.storage->applied()));
  n.replica->storage_done(std::move(done));
  drain(n);
}

void Cluster::step() {
  ++now_;
  for (auto& env : network_.deliver_due(now_)) {
    Node& n = node(env.to);
    if (!n.replica) continue;  // a crashed node hears nothing
    if (trace_.verbose()) {
      trace_.add(now_, "recv " + std::to_string(env.from) + "->" + std::to_string(env.to) + " " +
                           sim::describe(env.message));
    } else {
      trace_.add(now_, "recv " + std::to_string(env.from) + "->" + std::to_string(env.to) + " " +
                           core::message_name(env.message));
    }
    n.replica->step(env);
    drain(n);
  }
  for (auto& [id, n] : nodes_) {
    if (n.replica && !n.fifo.empty() && n.head_due <= now_) finish_storage_task(n);
  }
  for (auto& [id, n] : nodes_) {
    if (!n.replica) continue;
    n.replica->tick();
    drain(n);
  }
}

void Cluster::run(std::uint64_t ticks) {
  for (std::uint64_t i = 0; i < ticks && !checker_.failed(); ++i) step();
}

bool Cluster::step_until(const std::function<bool()>& done, std::uint64_t limit) {
  for (std::uint64_t i = 0; i < limit; ++i) {
    if (done()) return true;
    if (checker_.failed()) return false;
    step();
  }
  return done();
}

void Cluster::crash(NodeId id) {
  Node& n = node(id);
  if (!n.replica) return;
  const core::StorageTask* executing = n.fifo.empty() ? nullptr : &n.fifo.front();
  trace_.add(now_, "node " + std::to_string(id) + " CRASH (" + std::to_string(n.fifo.size()) +
                       " storage tasks lost" +
                       (executing ? ", #" + std::to_string(executing->id) + " " +
                                        core::storage_op_name(executing->op) + " was running" : std::string()) + ")");
  n.storage->crash(executing, rng_);
  n.fifo.clear();
  n.replica.reset();
  trace_.add(now_, "node " + std::to_string(id) + " storage after crash: promised=" +
                       std::to_string(n.storage->promised()) + " applied=" + to_string(n.storage->applied()) +
                       (n.storage->prepared_id() ? " prepared=" + to_string(*n.storage->prepared_id()) : ""));
}

void Cluster::restart(NodeId id) {
  Node& n = node(id);
  if (n.replica) return;
  start_replica(n);
}

void Cluster::partition(const std::vector<std::vector<NodeId>>& groups) {
  std::string text = "PARTITION";
  for (const auto& g : groups) text += " " + nodes_str(g);
  trace_.add(now_, text);
  network_.partition(groups);
}

void Cluster::isolate(NodeId id) {
  std::vector<NodeId> rest;
  for (NodeId other : ids()) {
    if (other != id) rest.push_back(other);
  }
  partition({{id}, rest});
}

void Cluster::heal() {
  trace_.add(now_, "HEAL");
  network_.heal();
}

core::ClientTag Cluster::propose(NodeId at, const std::string& sql) {
  Node& n = node(at);
  if (!n.replica) throw std::logic_error("sim: propose at node " + std::to_string(at) + " which is down");
  WriteRecord w;
  w.tag = next_tag_++;
  w.node = at;
  w.sql = sql;
  w.invoked_at = now_;
  // "INSERT k v" / "UPSERT k v": the key and the (unique) value.
  const auto sp1 = sql.find(' ');
  const auto sp2 = sp1 == std::string::npos ? std::string::npos : sql.find(' ', sp1 + 1);
  if (sql.rfind("INSERT ", 0) == 0 && sp2 != std::string::npos) {
    w.key = sql.substr(sp1 + 1, sp2 - sp1 - 1);
    w.value = sql.substr(sp2 + 1);
  }
  const core::ClientTag tag = w.tag;
  history_.emplace(tag, std::move(w));
  trace_.add(now_, "client proposes write " + std::to_string(tag) + " at node " + std::to_string(at) + ": " + sql);
  n.replica->propose(tag, sql);
  drain(n);
  return tag;
}

core::ClientTag Cluster::propose_insert(NodeId at, bool duplicate_key) {
  const std::uint64_t v = next_value_++;
  std::string key;
  if (duplicate_key && !keys_.empty()) {
    key = keys_[rng_.below(keys_.size())];
  } else {
    key = "k" + std::to_string(v);
    keys_.push_back(key);
  }
  return propose(at, "INSERT " + key + " v" + std::to_string(v));
}

bool Cluster::committed_ok(core::ClientTag tag) const {
  const auto& w = history_.at(tag);
  return w.result && w.result->kind == core::WriteResult::committed && w.result->outcome.ok;
}

std::optional<NodeId> Cluster::coordinator() const {
  std::optional<NodeId> best;
  core::Epoch best_epoch = 0;
  for (const auto& [id, n] : nodes_) {
    if (n.replica && n.replica->role() == core::Role::coordinator && n.replica->can_commit() &&
        (!best || n.replica->epoch() > best_epoch)) {
      best = id;
      best_epoch = n.replica->epoch();
    }
  }
  return best;
}

bool Cluster::converged(bool quiescent) const {
  std::optional<EntryId> applied;
  bool any_coordinator = false;
  for (const auto& [id, n] : nodes_) {
    if (!n.replica) return false;
    if (quiescent && (!n.fifo.empty() || n.storage->prepared_id())) return false;
    if (!n.replica->in_view()) return false;
    const EntryId a = n.replica->applied();
    if (quiescent && !(a == n.storage->applied())) return false;
    if (applied && !(a == *applied)) return false;
    applied = a;
    if (n.replica->role() == core::Role::coordinator && n.replica->can_commit()) any_coordinator = true;
  }
  return any_coordinator;
}

std::string Cluster::describe() const {
  std::string out;
  for (const auto& [id, n] : nodes_) {
    out += "  node " + std::to_string(id) + ": ";
    if (n.replica) {
      out += std::string(core::to_string(n.replica->role())) + " epoch=" + std::to_string(n.replica->epoch()) +
             " coord=" + std::to_string(n.replica->coordinator()) + " can_commit=" + b(n.replica->can_commit()) +
             " in_view=" + b(n.replica->in_view()) + " applied=" + to_string(n.replica->applied());
    } else {
      out += "DOWN";
    }
    out += " | storage promised=" + std::to_string(n.storage->promised()) + " applied=" +
           to_string(n.storage->applied()) + " rows=" + std::to_string(n.storage->data().size()) +
           (n.storage->prepared_id() ? " prepared=" + to_string(*n.storage->prepared_id()) : "") +
           " fifo=" + std::to_string(n.fifo.size()) + "\n";
  }
  return out;
}

}  // namespace distdb::sim
