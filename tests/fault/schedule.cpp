#include "schedule.hpp"

#include <cstdio>
#include <iterator>

#include "rng.hpp"  // the simulator's xoshiro256** (tests/sim/rng.hpp): one PRNG for both harnesses

namespace distdb::fault {

const char* fault_name(FaultKind kind) {
  switch (kind) {
    case FaultKind::kill_coordinator:
      return "kill-coordinator";
    case FaultKind::kill_participant:
      return "kill-participant";
    case FaultKind::pause_coordinator:
      return "pause-coordinator";
    case FaultKind::pause_participant:
      return "pause-participant";
    case FaultKind::partition_coordinator:
      return "partition-coordinator";
    case FaultKind::partition_minority:
      return "partition-minority";
    case FaultKind::kill_database:
      return "kill-database";
  }
  return "?";
}

std::vector<PlannedFault> make_schedule(const ScheduleOptions& options) {
  // Every draw below happens in a fixed order and depends on nothing but
  // the options: that is the whole reproducibility argument.
  sim::Rng rng(options.seed);
  constexpr std::size_t kKinds = std::size(kAllFaultKinds);

  std::vector<FaultKind> first;
  if (options.cover_every_kind_first) {
    first.assign(std::begin(kAllFaultKinds), std::end(kAllFaultKinds));
    for (std::size_t i = kKinds - 1; i > 0; --i) std::swap(first[i], first[rng.below(i + 1)]);
  }

  std::vector<PlannedFault> out;
  std::int64_t t = options.warmup_ms;
  for (std::size_t n = 0;; ++n) {
    PlannedFault f;
    f.kind = n < first.size() ? first[n] : kAllFaultKinds[rng.below(kKinds)];
    f.duration_ms = static_cast<std::int64_t>(rng.between(static_cast<std::uint64_t>(options.min_fault_ms),
                                                          static_cast<std::uint64_t>(options.max_fault_ms)));
    f.target_index = static_cast<int>(rng.below(static_cast<std::uint64_t>(options.nodes)));
    if (f.kind == FaultKind::kill_database) f.target_index += 1;  // a node id
    f.reset_on_heal = rng.below(2) == 1;
    const auto gap = static_cast<std::int64_t>(rng.between(static_cast<std::uint64_t>(options.min_gap_ms),
                                                           static_cast<std::uint64_t>(options.max_gap_ms)));
    f.at_ms = t;
    if (f.at_ms + f.duration_ms + options.cooldown_ms > options.workload_ms) break;
    out.push_back(f);
    t = f.at_ms + f.duration_ms + gap;
  }
  return out;
}

std::string describe(const PlannedFault& fault) {
  char buf[160];
  std::string target;
  switch (fault.kind) {
    case FaultKind::kill_participant:
    case FaultKind::pause_participant:
    case FaultKind::partition_minority:
      target = " (participant #" + std::to_string(fault.target_index) + ")";
      break;
    case FaultKind::kill_database:
      target = " (node " + std::to_string(fault.target_index) + "'s server)";
      break;
    default:
      break;
  }
  const bool partition =
      fault.kind == FaultKind::partition_coordinator || fault.kind == FaultKind::partition_minority;
  std::snprintf(buf, sizeof buf, "%s%s for %.1f s%s", fault_name(fault.kind), target.c_str(),
                static_cast<double>(fault.duration_ms) / 1000.0,
                partition
                    ? (fault.reset_on_heal ? ", connections reset at heal" : ", connections resume at heal")
                    : "");
  return buf;
}

}  // namespace distdb::fault
