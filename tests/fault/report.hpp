// The report a run prints: what was done to the cluster, what the clients
// saw, and each check -- short enough to read in a CI log, with the one
// command that reruns the same fault schedule.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "checker.hpp"
#include "history.hpp"
#include "nemesis.hpp"

namespace distdb::fault {

struct ReportInputs {
  std::uint64_t seed = 0;
  std::string mode;
  std::int64_t workload_ms = 0;
  std::string repro;
  std::string servers;
  const std::vector<Operation>* ops = nullptr;
  const std::vector<AppliedFault>* faults = nullptr;
  Availability availability;
  const std::vector<CheckResult>* checks = nullptr;
  std::uint64_t proxied_bytes = 0;
  std::string logs_kept_in;  // where the node logs were copied (failures), or empty
};

// The planned schedule, printed before the run starts.
void print_schedule(std::ostream& out, std::uint64_t seed, const std::vector<PlannedFault>& schedule);

void print_report(std::ostream& out, const ReportInputs& in);

}  // namespace distdb::fault
