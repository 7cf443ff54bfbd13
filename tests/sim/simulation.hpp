// One randomized run (VOPR-style): every fault rate is derived from the seed,
// a safety phase with faults on, then a liveness phase (everything healed
// and restarted, faults off) that must converge within a budget.
#pragma once

#include <cstdint>
#include <string>

#include "cluster.hpp"

namespace distdb::sim {

struct SimParams {
  std::uint64_t seed = 1;
  std::size_t nodes = 0;        // 0: chosen by the seed (3 or 5)
  int prepare_durable = -1;     // -1: chosen by the seed
  int ship_effects = -1;        // -1: chosen by the seed
  std::uint64_t ticks = 3000;   // length of the safety phase
  bool verbose = false;
  bool no_duplicates = false;   // no message duplication (to look past a known duplication bug)
};

// What the seed chose; printed with every failure.
struct FaultParams {
  std::size_t nodes = 3;
  bool prepare_durable = false;
  // The coordinator ships effects (ReplicaConfig::ship_effects); the
  // storages are then non-deterministic (SimStorageOptions): a member that
  // ran a statement itself would store other values.
  bool ship_effects = false;
  std::size_t log_retention = 200;
  NetworkOptions network;
  std::uint64_t crash_ppm = 0;           // per live node, per tick
  std::uint64_t restart_min = 0, restart_max = 0;  // ticks a crashed node stays down
  std::uint64_t partition_ppm = 0;       // per tick
  std::uint64_t partition_min = 0, partition_max = 0;
  std::uint64_t burst_ppm = 0;           // per tick: start a loss burst
  std::uint64_t burst_loss_ppm = 0;
  std::uint64_t burst_min = 0, burst_max = 0;
  std::uint64_t storage_failure_ppm = 0;
  std::uint64_t client_ppm = 0;          // per tick: a client proposes a write
  std::uint64_t duplicate_ppm = 0;       // of those, with an existing key
  std::string describe() const;
};

enum ExitCode { kOk = 0, kUsage = 1, kCrash = 2, kSafety = 3, kLiveness = 4 };

struct SimResult {
  int code = kOk;
  std::string message;          // what failed
  FaultParams faults;
  std::uint64_t trace_hash = 0;
  std::uint64_t trace_events = 0;
  std::uint64_t ticks = 0;
  std::uint64_t writes = 0, acked = 0, failed = 0, unknown = 0, unanswered = 0;
  std::uint64_t crashes = 0, partitions = 0;
  std::string recent_trace;     // the last trace lines (on failure)
  std::string cluster_state;    // describe() at the end (on failure)
};

FaultParams derive_faults(const SimParams& params, Rng& rng);

// Runs one seed. Exceptions from the system under test are caught and
// reported as kCrash; an abort() (a failed assert) is not caught here (vopr
// installs a signal handler for that).
SimResult run_simulation(const SimParams& params);

// The command line that reproduces `params` with the choices of the seed
// made explicit.
std::string repro_command(const std::string& program, const SimParams& params, const FaultParams& faults);

}  // namespace distdb::sim
