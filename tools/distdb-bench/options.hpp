// The parameters of one benchmark run, as given on the command line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "distdb/client.hpp"

namespace distdb::bench {

enum class TargetKind { direct, cluster, two_phase };
enum class WorkloadKind { insert, point_select, mixed };

const char* to_string(TargetKind kind);
const char* to_string(WorkloadKind kind);

struct Endpoint {
  std::string host;
  std::uint16_t port = 0;

  std::string to_string() const { return host + ":" + std::to_string(port); }
};

// "HOST:PORT" (the last ':' separates them, so "[::1]:3306" is not needed
// and not supported); nullopt when malformed or the port is not 1..65535.
std::optional<Endpoint> parse_endpoint(std::string_view text);

struct Options {
  TargetKind target = TargetKind::direct;

  // --target direct (and two-phase: the first server)
  Endpoint db;
  // --target two-phase: every server, db first
  std::vector<Endpoint> dbs;
  std::string user = "root";
  std::string password;
  std::string database = "distdb_bench";

  // --target cluster
  std::vector<Endpoint> nodes;
  std::string cluster_user;      // empty: no login
  std::string cluster_password;  // never reported
  bool coordinator_only = false;
  int pipeline = 1;  // requests outstanding per connection
  ClientTls tls;     // --tls, --tls-ca, --tls-cert/--tls-key, --tls-no-verify

  WorkloadKind workload = WorkloadKind::insert;
  double read_ratio = 0.5;  // mixed only
  int threads = 1;
  double seconds = 10;
  double warmup = 2;
  std::int64_t rows = 10000;  // pre-filled for point-select and mixed
  std::string table = "bench_t";
  bool keep = false;
  std::uint64_t seed = 0;
  bool json = false;
  // When > 0: also count completions per interval of this many ms, from the
  // start (warmup included), for failover measurements.
  int timeline_ms = 0;
};

}  // namespace distdb::bench
