#include "simulation.hpp"

#include <exception>
#include <utility>

namespace distdb::sim {

std::string FaultParams::describe() const {
  auto s = [](std::uint64_t v) { return std::to_string(v); };
  return "nodes=" + s(nodes) + " prepare_durable=" + s(prepare_durable ? 1 : 0) +
         " ship_effects=" + s(ship_effects ? 1 : 0) + " log_retention=" + s(log_retention) +
         " delay=" + s(network.min_delay) + ".." + s(network.max_delay) + " loss_ppm=" + s(network.loss_ppm) +
         " dup_ppm=" + s(network.duplicate_ppm) + " crash_ppm=" + s(crash_ppm) + " down=" + s(restart_min) +
         ".." + s(restart_max) + " partition_ppm=" + s(partition_ppm) + " partition_len=" + s(partition_min) +
         ".." + s(partition_max) + " burst_ppm=" + s(burst_ppm) + " burst_loss_ppm=" + s(burst_loss_ppm) +
         " burst_len=" + s(burst_min) + ".." + s(burst_max) +
         " storage_failure_ppm=" + s(storage_failure_ppm) + " client_ppm=" + s(client_ppm) +
         " duplicate_ppm=" + s(duplicate_ppm);
}

FaultParams derive_faults(const SimParams& params, Rng& rng) {
  FaultParams f;
  // Always draw, so that overriding one choice does not shift the others.
  const std::size_t nodes = rng.below(2) == 0 ? 3 : 5;
  const bool durable = rng.below(2) == 1;
  f.nodes = params.nodes ? params.nodes : nodes;
  f.prepare_durable = params.prepare_durable >= 0 ? params.prepare_durable != 0 : durable;
  f.log_retention = rng.between(4, 200);
  f.network.min_delay = 1;
  f.network.max_delay = rng.between(1, 4);
  f.network.loss_ppm = rng.below(50'000);
  f.network.duplicate_ppm = rng.below(30'000);
  if (params.no_duplicates) f.network.duplicate_ppm = 0;
  f.crash_ppm = rng.below(4'000);
  f.restart_min = rng.between(1, 50);
  f.restart_max = f.restart_min + rng.below(400);
  f.partition_ppm = rng.below(4'000);
  f.partition_min = rng.between(5, 50);
  f.partition_max = f.partition_min + rng.below(400);
  f.burst_ppm = rng.below(3'000);
  f.burst_loss_ppm = rng.between(300'000, 1'000'000);
  f.burst_min = rng.between(2, 20);
  f.burst_max = f.burst_min + rng.below(60);
  f.storage_failure_ppm = rng.below(3) == 0 ? 0 : rng.below(20'000);
  f.client_ppm = rng.between(50'000, 600'000);
  f.duplicate_ppm = rng.between(50'000, 200'000);
  // Drawn last, so that the choices above stay what they were for a seed.
  const bool ship = rng.below(2) == 1;
  f.ship_effects = params.ship_effects >= 0 ? params.ship_effects != 0 : ship;
  return f;
}

std::string repro_command(const std::string& program, const SimParams& params, const FaultParams& faults) {
  return program + " --seed " + std::to_string(params.seed) + " --nodes " + std::to_string(faults.nodes) +
         " --prepare-durable " + std::to_string(faults.prepare_durable ? 1 : 0) + " --ship-effects " +
         std::to_string(faults.ship_effects ? 1 : 0) + " --ticks " + std::to_string(params.ticks) +
         (params.no_duplicates ? " --no-duplicates" : "");
}

namespace {

class Run {
 public:
  Run(const SimParams& params, const FaultParams& faults, std::uint64_t cluster_seed)
      : params_(params), faults_(faults), cluster_(options(params, faults, cluster_seed)) {}

  SimResult go() {
    SimResult result;
    result.faults = faults_;
    try {
      cluster_.note("seed " + std::to_string(params_.seed) + ": " + faults_.describe());
      safety_phase();
      if (!cluster_.checker().failed()) liveness_phase();
      if (!cluster_.checker().failed()) final_check();
    } catch (const std::exception& e) {
      result.code = kCrash;
      result.message = std::string("exception: ") + e.what();
    }
    if (result.code == kOk && cluster_.checker().failed()) {
      result.code = cluster_.checker().safety().empty() ? kLiveness : kSafety;
      result.message = cluster_.checker().summary();
    }
    result.trace_hash = cluster_.trace().hash();
    result.trace_events = cluster_.trace().events();
    result.ticks = cluster_.now();
    result.crashes = crashes_;
    result.partitions = partitions_;
    for (const auto& [tag, w] : cluster_.history()) {
      ++result.writes;
      if (!w.result) {
        ++result.unanswered;
      } else if (w.result->kind == core::WriteResult::committed) {
        ++result.acked;
      } else if (w.result->kind == core::WriteResult::outcome_unknown) {
        ++result.unknown;
      } else {
        ++result.failed;
      }
    }
    if (result.code != kOk) {
      for (const auto& line : cluster_.trace().recent()) result.recent_trace += "    " + line + "\n";
      result.cluster_state = cluster_.describe();
    }
    return result;
  }

 private:
  static ClusterOptions options(const SimParams& params, const FaultParams& f, std::uint64_t seed) {
    ClusterOptions o;
    o.nodes = f.nodes;
    o.seed = seed;
    o.prepare_durable = f.prepare_durable;
    o.nondeterministic = f.ship_effects;
    o.replica.ship_effects = f.ship_effects;
    o.log_retention = f.log_retention;
    o.storage_failure_ppm = f.storage_failure_ppm;
    o.network = f.network;
    o.verbose = params.verbose;
    o.replica.heartbeat_interval_ticks = 2;
    o.replica.heartbeat_timeout_ticks = 12;
    o.replica.round_timeout_ticks = 15;
    o.replica.forward_timeout_ticks = 100;
    o.replica.max_batch = 16;
    o.replica.catch_up_batch = 8;
    return o;
  }

  void safety_phase() {
    Rng& rng = cluster_.rng();
    for (std::uint64_t t = 0; t < params_.ticks && !cluster_.checker().failed(); ++t) {
      cluster_.step();
      const std::uint64_t now = cluster_.now();
      // Restarts that are due.
      for (auto it = down_until_.begin(); it != down_until_.end();) {
        if (it->second <= now) {
          cluster_.restart(it->first);
          it = down_until_.erase(it);
        } else {
          ++it;
        }
      }
      // Crashes.
      for (NodeId id : cluster_.up_ids()) {
        if (rng.chance(faults_.crash_ppm)) {
          cluster_.crash(id);
          ++crashes_;
          down_until_[id] = now + rng.between(faults_.restart_min, faults_.restart_max);
        }
      }
      // Partitions.
      if (cluster_.network().partitioned()) {
        if (now >= heal_at_) cluster_.heal();
      } else if (rng.chance(faults_.partition_ppm)) {
        std::vector<NodeId> a, b;
        for (NodeId id : cluster_.ids()) (rng.below(2) == 0 ? a : b).push_back(id);
        cluster_.partition({a, b});
        ++partitions_;
        heal_at_ = now + rng.between(faults_.partition_min, faults_.partition_max);
      }
      // Loss bursts.
      if (rng.chance(faults_.burst_ppm)) {
        const std::uint64_t until = now + rng.between(faults_.burst_min, faults_.burst_max);
        cluster_.network().loss_burst(faults_.burst_loss_ppm, until);
        cluster_.note("LOSS BURST until t=" + std::to_string(until));
      }
      // Clients.
      if (rng.chance(faults_.client_ppm)) {
        const auto up = cluster_.up_ids();
        if (!up.empty()) {
          const NodeId at = up[rng.below(up.size())];
          cluster_.propose_insert(at, rng.chance(faults_.duplicate_ppm));
        }
      }
    }
  }

  void liveness_phase() {
    cluster_.note("LIVENESS PHASE: heal, restart, faults off");
    cluster_.heal();
    cluster_.network().loss_burst(0, 0);
    cluster_.network().options().loss_ppm = 0;
    cluster_.network().options().duplicate_ppm = 0;
    cluster_.set_storage_failure_ppm(0);
    for (const auto& [id, until] : down_until_) cluster_.restart(id);
    down_until_.clear();
    const std::uint64_t budget = 2000;
    const std::uint64_t start = cluster_.now();
    if (!cluster_.step_until([this] { return cluster_.converged(false); }, budget)) {
      if (!cluster_.checker().failed()) {
        cluster_.checker().liveness_violation("no convergence within " + std::to_string(budget) +
                                              " ticks of the heal (t=" + std::to_string(start) +
                                              "): not every node in the view at the same applied id");
      }
      return;
    }
    // A new write must commit within a bounded time.
    const std::uint64_t write_budget = 500;
    const std::uint64_t deadline = cluster_.now() + write_budget;
    bool committed = false;
    while (!committed && cluster_.now() < deadline && !cluster_.checker().failed()) {
      const auto coord = cluster_.coordinator();
      const auto up = cluster_.up_ids();
      const NodeId at = coord ? *coord : up.front();
      const auto tag = cluster_.propose_insert(at);
      cluster_.step_until([&] { return cluster_.answered(tag); }, deadline - cluster_.now());
      committed = cluster_.committed_ok(tag);
      if (!committed) cluster_.run(5);  // refused at once (no_quorum, ...): retry a little later
    }
    if (!committed) {
      if (!cluster_.checker().failed()) {
        cluster_.checker().liveness_violation("no write committed within " + std::to_string(write_budget) +
                                              " ticks after convergence");
      }
      return;
    }
    if (!cluster_.step_until([this] { return cluster_.converged(true); }, budget)) {
      if (!cluster_.checker().failed()) {
        std::string why;
        for (NodeId id : cluster_.ids()) {
          if (auto p = cluster_.storage(id).prepared_id()) {
            why += " node " + std::to_string(id) + " still holds prepared " + to_string(*p) + ";";
          }
        }
        cluster_.checker().liveness_violation("no quiescence within " + std::to_string(budget) +
                                              " ticks after the final write:" + why);
      }
    }
  }

  void final_check() {
    std::vector<const SimStorage*> storages;
    for (NodeId id : cluster_.ids()) storages.push_back(&cluster_.storage(id));
    cluster_.checker().check_final(storages, cluster_.history());
  }

  SimParams params_;
  FaultParams faults_;
  Cluster cluster_;
  std::map<NodeId, std::uint64_t> down_until_;
  std::uint64_t heal_at_ = 0;
  std::uint64_t crashes_ = 0;
  std::uint64_t partitions_ = 0;
};

}  // namespace

SimResult run_simulation(const SimParams& params) {
  Rng rng(params.seed);
  const FaultParams faults = derive_faults(params, rng);
  const std::uint64_t cluster_seed = rng.next();
  try {
    Run run(params, faults, cluster_seed);
    return run.go();
  } catch (const std::exception& e) {  // thrown while the cluster was being built
    SimResult result;
    result.faults = faults;
    result.code = kCrash;
    result.message = std::string("exception at start: ") + e.what();
    return result;
  }
}

}  // namespace distdb::sim
