// Runs one benchmark: sets up the table, starts the threads together, stops
// them at a deadline, gathers their figures, drops the table.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "histogram.hpp"
#include "options.hpp"
#include "target.hpp"

namespace distdb::bench {

struct ErrorTally {
  std::uint64_t count = 0;
  std::string first_message;
};

// What some threads measured: latencies of the statements that succeeded,
// failures counted by kind. Each thread fills its own; they are merged after
// the threads have stopped, so nothing here is shared while running.
struct OpStats {
  LatencyHistogram read_latency;   // microseconds
  LatencyHistogram write_latency;  // microseconds
  std::map<std::string, ErrorTally> errors;
  std::uint64_t error_count = 0;

  void record_success(bool is_read, std::uint64_t micros);
  void record_error(const std::string& kind, const std::string& message);
  void merge(const OpStats& other);

  std::uint64_t ok_count() const { return read_latency.count() + write_latency.count(); }
  std::uint64_t op_count() const { return ok_count() + error_count; }
};

// Completions per interval (--timeline), by completion time from the start
// of the run, warmup included. Each thread fills its own, merged afterwards.
struct Timeline {
  std::vector<std::uint64_t> ok;
  std::vector<std::uint64_t> errors;

  void record(std::size_t interval, bool succeeded);
  void merge(const Timeline& other);
};

struct RunResult {
  // False when the run could not take place (target or table setup failed,
  // a thread could not connect); `failure` says why.
  bool ran = false;
  std::string failure;
  OpStats stats;                // measured statements only (after the warmup)
  double measured_seconds = 0;  // from the end of the warmup to the last measured completion
  double prefill_seconds = 0;
  std::vector<Endpoint> endpoints;  // where the threads connected
  Timeline timeline;                // --timeline only
  std::int64_t start_unix_ms = 0;   // the wall-clock time of the start, for --timeline
};

// `progress`: print a line on stderr every second (for a terminal).
RunResult run_benchmark(const Options& options, Target& target, bool progress);

}  // namespace distdb::bench
