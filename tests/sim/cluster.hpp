// Cluster: the simulation fixture. N replicas, each with its SimStorage and
// a driver loop, over a SimNetwork, all on one simulated clock (ticks) and
// one seeded Rng. In the manner of dqlite's raft fixture: the cluster steps
// one tick at a time with a fixed order of events, exposes
// crash/restart/partition/heal and step_until(predicate, limit), and runs the
// Checker after every input it gives a replica.
//
// One tick:
//   1. messages due at this tick are delivered (network order);
//   2. each node (id order) finishes its running storage task if it is due,
//      and reports it (its FIFO runs one task at a time, 1-3 ticks each);
//   3. each live replica gets tick();
// and after every input, the replica's Ready is taken at once: storage tasks
// join the node's FIFO, messages go to the network, results to the history.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checker.hpp"
#include "distdb/core/replica.hpp"
#include "rng.hpp"
#include "sim_network.hpp"
#include "sim_storage.hpp"
#include "trace.hpp"

namespace distdb::sim {

struct ClusterOptions {
  std::size_t nodes = 3;             // ids 1..nodes
  std::uint64_t seed = 1;
  bool prepare_durable = false;      // MariaDB XA (true) or SQLite (false) crash semantics
  bool nondeterministic = false;     // SimStorageOptions::nondeterministic
  std::size_t log_retention = 200;
  std::uint64_t storage_failure_ppm = 0;
  std::uint64_t storage_min_latency = 1;  // ticks per storage task
  std::uint64_t storage_max_latency = 3;
  NetworkOptions network;
  core::ReplicaConfig replica;       // timeouts etc.; id, members and random_seed are filled in
  bool verbose = false;              // print the trace
};

class Cluster {
 public:
  explicit Cluster(ClusterOptions options);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // --- time
  void step();                                  // one tick
  void run(std::uint64_t ticks);
  // Steps until `done` holds (checked before each tick) or `limit` ticks
  // passed, or the checker failed. True when `done` held.
  bool step_until(const std::function<bool()>& done, std::uint64_t limit);
  std::uint64_t now() const { return now_; }

  // --- faults
  void crash(NodeId id);
  void restart(NodeId id);
  bool is_up(NodeId id) const;
  void partition(const std::vector<std::vector<NodeId>>& groups);
  void isolate(NodeId id);  // id alone, the others together
  void heal();

  // --- clients
  // Proposes `sql` at `node` (which must be up); returns the write's tag.
  core::ClientTag propose(NodeId node, const std::string& sql);
  // Proposes "INSERT k<n> v<n>" with a fresh n; a duplicate reuses the key
  // of an earlier write (and still a fresh value).
  core::ClientTag propose_insert(NodeId node, bool duplicate_key = false);
  const WriteRecord& write(core::ClientTag tag) const { return history_.at(tag); }
  const std::map<core::ClientTag, WriteRecord>& history() const { return history_; }
  bool answered(core::ClientTag tag) const { return history_.at(tag).result.has_value(); }
  bool committed_ok(core::ClientTag tag) const;

  // --- inspection
  std::vector<NodeId> ids() const;
  std::vector<NodeId> up_ids() const;
  core::Replica& replica(NodeId id);  // must be up
  SimStorage& storage(NodeId id);
  // The live replica that can commit, with the highest epoch (nullopt: none).
  std::optional<NodeId> coordinator() const;
  // Every node is up, reports the same applied id and is in the view, and
  // one of them can commit. `quiescent` also asks that the storages agree
  // with their replicas, have no task left and nothing prepared.
  bool converged(bool quiescent = true) const;
  std::string describe() const;  // one line per node

  Checker& checker() { return checker_; }
  Trace& trace() { return trace_; }
  SimNetwork& network() { return network_; }
  Rng& rng() { return rng_; }
  const ClusterOptions& options() const { return options_; }
  void set_storage_failure_ppm(std::uint64_t ppm);
  void note(const std::string& text) { trace_.add(now_, text); }

 private:
  struct Node {
    NodeId id = 0;
    std::unique_ptr<SimStorage> storage;
    std::unique_ptr<core::Replica> replica;  // null while crashed
    std::deque<core::StorageTask> fifo;
    std::uint64_t head_due = 0;               // tick at which fifo.front() completes
    std::uint64_t incarnation = 0;
  };

  Node& node(NodeId id);
  const Node& node(NodeId id) const;
  void start_replica(Node& n);
  void drain(Node& n);
  void observe(Node& n);
  void finish_storage_task(Node& n);
  void record_result(NodeId at, const core::WriteResult& result);

  ClusterOptions options_;
  Rng rng_;
  Trace trace_;
  SimNetwork network_;
  Checker checker_;
  std::map<NodeId, Node> nodes_;
  std::map<core::ClientTag, WriteRecord> history_;
  core::ClientTag next_tag_ = 1;
  std::uint64_t next_value_ = 1;
  std::vector<std::string> keys_;  // keys used so far (for duplicates)
  std::uint64_t now_ = 0;
};

// For traces: a message or a storage op with its main fields.
std::string describe(const core::Message& m);
std::string describe(const core::StorageOp& op);

}  // namespace distdb::sim
