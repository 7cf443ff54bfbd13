// distdb-bench: load generator and latency meter, for one MariaDB server
// (the baseline) or a distdb cluster, with the same statements on both.
//
//   distdb-bench --target direct --db 127.0.0.1:3306 --workload insert --threads 4 --seconds 10
//   distdb-bench --target cluster --nodes 127.0.0.1:5000,127.0.0.1:5001 --workload point-select --json
//   distdb-bench --target cluster --nodes ... --tls-ca ca.crt      (nodes with security.tls)
//
// Exit status: 0 the run took place and statements succeeded, 1 the run
// failed (setup failed, a thread could not connect, or no statement
// succeeded), 2 usage.
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "options.hpp"
#include "report.hpp"
#include "runner.hpp"
#include "target.hpp"

namespace {

using distdb::bench::Endpoint;
using distdb::bench::Options;
using distdb::bench::TargetKind;
using distdb::bench::WorkloadKind;

constexpr int kExitOk = 0;
constexpr int kExitRunFailed = 1;
constexpr int kExitUsage = 2;

constexpr const char* kFooter =
    "The benchmark creates its own table (DROP TABLE IF EXISTS, then CREATE TABLE\n"
    "<table> (id BIGINT PRIMARY KEY, k INT, v VARCHAR(64))), pre-fills it with --rows\n"
    "rows for point-select and mixed (multi-row INSERTs), runs the threads together\n"
    "for --warmup then --seconds seconds, and drops the table unless --keep.\n"
    "Workloads: insert (a new row per statement, ids unique per thread), point-select\n"
    "(a random existing id), mixed (point-selects with probability --read-ratio,\n"
    "otherwise an UPDATE of a random existing row).\n"
    "Figures count statements started after the warmup; latencies are of statements\n"
    "that succeeded, errors are counted by kind. A progress line goes to stderr every\n"
    "second when stderr is a terminal.\n"
    "--pipeline N keeps N statements in flight on each connection; a node runs a\n"
    "connection's statements one at a time, in order, so this saves network round\n"
    "trips but does not let one connection's writes share a replication round.\n"
    "--timeline MS adds \"timeline\": {interval_ms, start_unix_ms, ok: [...], errors: [...]}\n"
    "to the JSON: statements completed in each MS-long interval from the start (the\n"
    "wall-clock start_unix_ms), warmup included, e.g. to time a failover.\n"
    "TLS (cluster, for nodes with security.tls): --tls checks the nodes' certificates\n"
    "against the system's trust store, --tls-ca FILE against FILE's CA certificates;\n"
    "--tls-cert/--tls-key present a client certificate; --tls-no-verify checks nothing\n"
    "(insecure). Each implies --tls.\n"
    "With --target cluster, --user USER logs every connection in as USER (nodes with\n"
    "client authentication), with the password of --password or $DISTDB_PASSWORD.\n"
    "\n"
    "Exit status: 0 success, 1 the run failed (setup, connections, or no statement\n"
    "succeeded), 2 usage.";

int usage_error(const std::string& message) {
  std::fprintf(stderr, "distdb-bench: %s (see --help)\n", message.c_str());
  return kExitUsage;
}

bool valid_table_name(const std::string& name) {
  if (name.empty() || name.size() > 64 || std::isdigit(static_cast<unsigned char>(name[0])) != 0)
    return false;
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '_') return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  namespace bench = distdb::bench;
  CLI::App app{
      "distdb-bench: throughput and latency of a distdb cluster, or of one MariaDB server as the baseline"};
  app.set_version_flag("--version", std::string("distdb-bench ") + DISTDB_VERSION);
  app.footer(kFooter);

  Options o;
  std::string db_text;
  std::vector<std::string> node_texts;
  const std::map<std::string, TargetKind> targets{
      {"direct", TargetKind::direct}, {"cluster", TargetKind::cluster}, {"two-phase", TargetKind::two_phase}};
  const std::map<std::string, WorkloadKind> workloads{{"insert", WorkloadKind::insert},
                                                      {"point-select", WorkloadKind::point_select},
                                                      {"mixed", WorkloadKind::mixed}};

  app.add_option("--target", o.target,
                 "What to load: one MariaDB server, distdb nodes, or several MariaDB servers with two-phase "
                 "commit run by the benchmark itself (the floor under a replicated write)")
      ->required()
      ->transform(CLI::CheckedTransformer(targets))
      ->option_text("direct|cluster|two-phase");
  app.add_option("--db", db_text, "direct: the MariaDB server (several: thread i on server i mod count, a table on each); two-phase: the servers")
      ->option_text("HOST:PORT[,...]");
  auto* user_opt =
      app.add_option("--user", o.user,
                     "direct: MariaDB user (default root); cluster: the distdb user to log in as "
                     "(default: no login)");
  auto* password_opt = app.add_option(
      "--password", o.password,
      "direct: MariaDB password (default empty); cluster: the user's password (default: $DISTDB_PASSWORD). "
      "Prefer the variable: a command line is visible to other local users");
  app.add_option("--database", o.database, "direct: database, created if missing (default distdb_bench)");
  app.add_option("--nodes", node_texts, "cluster: the nodes; thread i connects to node i mod count")
      ->delimiter(',')
      ->option_text("HOST:PORT,...");
  app.add_flag("--coordinator-only", o.coordinator_only,
               "cluster: every thread connects to the coordinator (found with STATUS) rather than spreading "
               "over the nodes, which forward writes to it");
  app.add_flag("--tls", o.tls.enabled, "cluster: connect to the nodes with TLS, checking their certificates");
  auto* tls_ca_opt =
      app.add_option("--tls-ca", o.tls.ca_file,
                     "cluster: check the nodes' certificates against the CA certificates in FILE")
          ->check(CLI::ExistingFile)
          ->option_text("FILE");
  auto* tls_cert_opt =
      app.add_option("--tls-cert", o.tls.certificate_file, "cluster: present the client certificate in FILE")
          ->check(CLI::ExistingFile)
          ->option_text("FILE");
  auto* tls_key_opt = app.add_option("--tls-key", o.tls.key_file, "cluster: the private key of --tls-cert")
                          ->check(CLI::ExistingFile)
                          ->option_text("FILE");
  tls_cert_opt->needs(tls_key_opt);
  tls_key_opt->needs(tls_cert_opt);
  bool tls_no_verify = false;
  app.add_flag("--tls-no-verify", tls_no_verify, "cluster: do not check the nodes' certificates (INSECURE)");
  app.add_option("--pipeline", o.pipeline, "cluster: statements outstanding per connection (default 1)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--workload", o.workload, "What each statement does (default insert)")
      ->transform(CLI::CheckedTransformer(workloads))
      ->option_text("insert|point-select|mixed");
  auto* ratio_opt =
      app.add_option("--read-ratio", o.read_ratio, "mixed: share of point-selects (default 0.5)")
          ->check(CLI::Range(0.0, 1.0));
  app.add_option("--threads", o.threads, "Threads, one connection each (default 1)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--seconds", o.seconds, "Measured duration (default 10)")->check(CLI::PositiveNumber);
  app.add_option("--warmup", o.warmup, "Unmeasured load before it (default 2)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--rows", o.rows, "Rows pre-filled for point-select and mixed (default 10000)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1000000000}));
  app.add_option("--table", o.table, "The benchmark's table (default bench_t)");
  app.add_flag("--keep", o.keep, "Leave the table in place at the end");
  auto* seed_opt = app.add_option("--seed", o.seed, "Seed of the generated ids and values (default random)");
  app.add_flag("--json", o.json, "Print one JSON object instead of text");
  app.add_option("--timeline", o.timeline_ms,
                 "Also report successes and errors per MS milliseconds, by completion time, from the start "
                 "(warmup included) to the end; with --json only")
      ->check(CLI::Range(1, 60000))
      ->option_text("MS");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }

  o.tls.enabled = o.tls.enabled || tls_ca_opt->count() > 0 || tls_cert_opt->count() > 0 || tls_no_verify;
  o.tls.verify = !tls_no_verify;
  if (o.target == TargetKind::direct || o.target == TargetKind::two_phase) {
    if (o.tls.enabled) return usage_error("--tls and its options are for --target cluster");
    if (db_text.empty()) return usage_error(std::string("--target ") + to_string(o.target) + " needs --db HOST:PORT");
    std::string_view rest = db_text;
    while (!rest.empty()) {
      const std::string_view item = rest.substr(0, rest.find(','));
      rest.remove_prefix(std::min(rest.size(), item.size() + 1));
      auto db = bench::parse_endpoint(item);
      if (!db) return usage_error("--db: expected HOST:PORT, got '" + std::string(item) + "'");
      o.dbs.push_back(*db);
    }
    o.db = o.dbs.front();
    if (!node_texts.empty() || o.coordinator_only)
      return usage_error("--nodes and --coordinator-only are for --target cluster");
    // The classic MariaDB protocol answers one statement at a time.
    if (o.pipeline > 1) return usage_error("--pipeline is for --target cluster");
  } else {
    if (node_texts.empty()) return usage_error("--target cluster needs --nodes HOST:PORT,...");
    for (const std::string& text : node_texts) {
      auto node = bench::parse_endpoint(text);
      if (!node) return usage_error("--nodes: expected HOST:PORT, got '" + text + "'");
      o.nodes.push_back(*node);
    }
    if (!db_text.empty()) return usage_error("--db is for --target direct and two-phase");
    if (user_opt->count() > 0) {
      o.cluster_user = o.user;
      if (password_opt->count() > 0) {
        o.cluster_password = o.password;
      } else if (const char* env = std::getenv("DISTDB_PASSWORD"); env != nullptr) {
        o.cluster_password = env;
      }
    } else if (password_opt->count() > 0) {
      return usage_error("--password without --user");
    }
  }
  if (o.timeline_ms > 0 && !o.json) return usage_error("--timeline needs --json");
  if (tls_no_verify) {
    std::fprintf(stderr, "distdb-bench: warning: --tls-no-verify: the nodes' certificates are not checked\n");
  }
  if (ratio_opt->count() > 0 && o.workload != WorkloadKind::mixed) {
    return usage_error("--read-ratio is for --workload mixed");
  }
  // The name goes into the SQL as it is, on MariaDB and SQLite alike.
  if (!valid_table_name(o.table))
    return usage_error("--table: letters, digits and '_' only, not starting with a digit");
  // Reported with the figures, so that a run can be repeated with --seed.
  if (seed_opt->count() == 0) o.seed = std::random_device{}();

  std::unique_ptr<bench::Target> target;
  if (o.target == TargetKind::direct) {
    auto direct = bench::make_direct_target(o);
    if (!direct) return usage_error(direct.error().message);
    target = std::move(*direct);
  } else if (o.target == TargetKind::two_phase) {
    auto two_phase = bench::make_two_phase_target(o);
    if (!two_phase) return usage_error(two_phase.error().message);
    target = std::move(*two_phase);
  } else {
    target = bench::make_cluster_target(o);
  }

  const bench::RunResult run = bench::run_benchmark(o, *target, isatty(STDERR_FILENO) == 1);
  if (o.json) {
    std::fputs(bench::to_json(o, run).c_str(), stdout);
  } else {
    bench::print_text(stdout, o, run);
  }
  // The text report says why the run failed; the JSON one is for programs,
  // so a person also gets the reason on stderr.
  if (!run.ran && o.json) {
    std::fprintf(stderr, "distdb-bench: %s\n", run.failure.c_str());
  } else if (run.ran && !bench::run_succeeded(run)) {
    std::fprintf(stderr, "distdb-bench: no statement succeeded\n");
  }
  return bench::run_succeeded(run) ? kExitOk : kExitRunFailed;
}
