// The fault schedule: which faults the nemesis applies, to whom, when and for
// how long -- drawn from one seeded PRNG before anything starts, so that the
// same seed always yields the same schedule.
//
// Why the schedule is fixed in advance rather than drawn as the run goes:
// the workload and the cluster are real processes whose timing differs from
// one run to the next. If the nemesis drew its next fault *after* observing
// the cluster (or after a client thread had used the PRNG), two runs with the
// same seed would diverge at the first scheduling hiccup. Drawing the whole
// list up front from the seed alone makes "--seed N" mean one exact sequence
// of faults, printed at the start of every run.
//
// What cannot be fixed in advance is *which node* is the coordinator when a
// fault aimed at "the coordinator" fires; the schedule therefore names roles
// (coordinator, or the k-th participant) and the nemesis resolves them at the
// moment of the fault, and reports the node it hit. With three nodes and the
// highest-id-wins election the answer is almost always the same anyway.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace distdb::fault {

enum class FaultKind {
  kill_coordinator,       // kill -9 the coordinator's distdb-node, restart it after `duration`
  kill_participant,       // kill -9 a non-coordinator's distdb-node, restart it
  pause_coordinator,      // SIGSTOP the coordinator for longer than the heartbeat timeout, SIGCONT
  pause_participant,      // SIGSTOP a participant, SIGCONT
  partition_coordinator,  // cut every link between the coordinator and the others (both directions)
  partition_minority,     // cut one participant off from the others
  kill_database,          // kill -9 a node's MariaDB server, restart it
};

inline constexpr FaultKind kAllFaultKinds[] = {
    FaultKind::kill_coordinator,  FaultKind::kill_participant,      FaultKind::pause_coordinator,
    FaultKind::pause_participant, FaultKind::partition_coordinator, FaultKind::partition_minority,
    FaultKind::kill_database,
};

const char* fault_name(FaultKind kind);

struct PlannedFault {
  FaultKind kind = FaultKind::kill_coordinator;
  std::int64_t at_ms = 0;        // start, from the start of the workload
  std::int64_t duration_ms = 0;  // until the heal (restart, SIGCONT, link restored)
  // For participant faults: which non-coordinator (k-th lowest id, modulo
  // their number). For kill_database: the node whose server dies (1-based id).
  int target_index = 0;
  // Partitions only: at the heal, reset the cut connections (their buffered
  // bytes are lost, as when a middlebox forgets the flows) instead of letting
  // them resume (as TCP does when a partition heals before it gives up).
  bool reset_on_heal = false;
};

struct ScheduleOptions {
  std::uint64_t seed = 1;
  int nodes = 3;
  std::int64_t workload_ms = 40000;  // the schedule ends (everything healed) before this
  std::int64_t warmup_ms = 2000;     // fault-free start, so the first coordinator is elected and serving
  std::int64_t min_fault_ms = 1200;  // > the heartbeat timeout (400 ms): every fault is noticed
  std::int64_t max_fault_ms = 3000;
  std::int64_t min_gap_ms = 1500;  // quiet time between a heal and the next fault
  std::int64_t max_gap_ms = 3000;
  std::int64_t cooldown_ms = 3000;  // fault-free end, so the last heal is seen under load
  // Every kind once, in a seeded order, before any kind repeats: a short run
  // covers each fault at least once (as long as the duration allows it).
  bool cover_every_kind_first = true;
};

std::vector<PlannedFault> make_schedule(const ScheduleOptions& options);

// "kill-coordinator for 2.1 s" and the like, for the report.
std::string describe(const PlannedFault& fault);

}  // namespace distdb::fault
