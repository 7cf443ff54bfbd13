// distdb-fault: Jepsen-style fault testing with real processes.
//
//   distdb-fault [--mode short|long] [--seed N] [--duration SECONDS]
//                [--min-availability FRACTION] [--keep-logs DIR]
//                [--database NAME] [--sql-workload on|off] [--log-retention ENTRIES]
//
// Starts three distdb-node processes on the three MariaDB test servers
// (DISTDB_TEST_MARIADB, started by scripts/test.sh or by hand with
// scripts/mariadb-sandbox.sh), runs the append, bank and SQL workloads through
// distdb::Client while the nemesis kills, pauses and partitions nodes and
// kills their database servers on a seeded schedule, heals everything, waits
// for convergence, checks the history against the final state of every
// database, and prints a report. docs/fault-testing.md describes it all.
//
// Exit status: 0 every check passed, 1 a violation, 2 a setup or usage error
// (or an interrupted run), 77 skipped (no MariaDB servers configured and
// DISTDB_REQUIRE_MARIADB is not 1: meson's "skipped").
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "checker.hpp"
#include "cluster_fixture.hpp"
#include "distdb/storage.hpp"
#include "history.hpp"
#include "mariadb_env.hpp"
#include "nemesis.hpp"
#include "proxy.hpp"
#include "report.hpp"
#include "schedule.hpp"
#include "workload.hpp"

namespace {

using namespace distdb;
using namespace distdb::fault;

constexpr int kExitPass = 0;
constexpr int kExitViolation = 1;
constexpr int kExitSetup = 2;
constexpr int kExitSkip = 77;
constexpr int kNodes = 3;

std::atomic<bool> g_abort{false};

extern "C" void on_signal(int) {
  g_abort = true;
}

struct Options {
  std::string mode = "short";
  std::optional<std::uint64_t> seed;
  std::optional<std::int64_t> duration_s;
  std::optional<double> min_availability;
  std::string keep_logs;
  std::string database = "distdb_fault";
  bool sql_workload = true;
  // limits.log_retention_entries of the nodes: small, a member that was down
  // or cut off for a while comes back through a full copy.
  std::optional<std::uint64_t> log_retention;
};

[[noreturn]] void usage(const std::string& problem, int status = kExitSetup) {
  const std::string head = problem.empty() ? std::string() : "distdb-fault: " + problem + "\n";
  std::fprintf(status == 0 ? stdout : stderr,
               "%s"
               "usage: distdb-fault [--mode short|long] [--seed N] [--duration SECONDS]\n"
               "                    [--min-availability FRACTION] [--keep-logs DIR] [--database NAME]\n"
               "                    [--sql-workload on|off] [--log-retention ENTRIES]\n"
               "  short: 50 s of workload (CI); long: 600 s. Needs DISTDB_TEST_MARIADB (3 servers),\n"
               "  DISTDB_TEST_MARIADB_CTL and DISTDB_NODE_BIN; see docs/fault-testing.md.\n",
               head.c_str());
  std::exit(status);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(arg + " needs a value");
      return argv[++i];
    };
    try {
      if (arg == "--mode") {
        o.mode = value();
        if (o.mode != "short" && o.mode != "long") usage("--mode must be short or long");
      } else if (arg == "--seed") {
        o.seed = std::stoull(value());
      } else if (arg == "--duration") {
        o.duration_s = std::stoll(value());
        if (*o.duration_s < 10) usage("--duration must be at least 10 seconds");
      } else if (arg == "--min-availability") {
        o.min_availability = std::stod(value());
      } else if (arg == "--keep-logs") {
        o.keep_logs = value();
      } else if (arg == "--database") {
        o.database = value();
      } else if (arg == "--sql-workload") {
        const std::string v = value();
        if (v != "on" && v != "off") usage("--sql-workload must be on or off");
        o.sql_workload = v == "on";
      } else if (arg == "--log-retention") {
        o.log_retention = std::stoull(value());
        if (*o.log_retention < 1) usage("--log-retention must be at least 1");
      } else if (arg == "--help" || arg == "-h") {
        usage("", 0);
      } else {
        usage("unknown argument '" + arg + "'");
      }
    } catch (const std::logic_error&) {
      usage("bad value for " + arg);
    }
  }
  return o;
}

// Leaves the servers as the run found them. No node runs any more, so a
// prepared transaction of distdb's ("ddb.<database>-<seq>-<epoch>", or "ddb-<seq>-<epoch>" of older versions)
// is a leftover (a failed run, or a bug the none-prepared check reported): it would hold its locks and make
// DROP DATABASE wait, so it is rolled back first. A transaction no session owns that XA RECOVER does not list
// (MariaDB's commit race, mariadb_storage.cpp point 3) can only be reached after a server restart, which
// brings it back as prepared: the server is restarted first. The suite runs one test at a time on these
// servers (is_parallel: false), so no other test's transaction can be open now.
void drop_database(const std::string& database) {
  for (std::size_t i = 0; i < test::mariadb_servers().size() && i < kNodes; ++i) {
    StorageConfig sc;
    sc.backend = StorageBackend::mariadb;
    sc.db = test::mariadb_db_config(i, "mysql");
    auto s = open_storage(sc);
    if (!s) {
      std::fprintf(stderr, "distdb-fault: cleanup: server %zu: %s\n", i, s.error().message.c_str());
      continue;
    }
    auto roll_back_leftovers = [&] {
      std::int64_t listed = 0;
      if (auto ids = (*s)->recover()) {
        for (const auto& txn : *ids) {
          if (txn.rfind("ddb-", 0) == 0 || txn.rfind("ddb.", 0) == 0) (void)(*s)->rollback(txn);
          ++listed;
        }
      }
      return listed;
    };
    const std::int64_t listed = roll_back_leftovers();
    auto ownerless =
        (*s)->execute("SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = 0");
    if (ownerless && !ownerless->rows.empty() && value_as_int(ownerless->rows[0][0]).value_or(0) > listed) {
      std::fprintf(
          stderr,
          "distdb-fault: cleanup: server %zu holds a transaction no session owns and XA RECOVER does not "
          "list; restarting it\n",
          i);
      s = Error(ErrorKind::unavailable, "restarting");
      if (test::mariadb_ctl("stop", i) != 0 || test::mariadb_ctl("start", i) != 0) {
        std::fprintf(stderr, "distdb-fault: cleanup: server %zu: restart failed\n", i);
        continue;
      }
      s = open_storage(sc);
      if (!s) continue;
      roll_back_leftovers();
    }
    if (auto r = (*s)->execute("DROP DATABASE IF EXISTS `" + database + "`"); !r) {
      std::fprintf(stderr, "distdb-fault: cleanup: server %zu: %s\n", i, r.error().message.c_str());
    }
  }
}

std::string copy_logs(const std::string& from_dir, const std::string& to_dir) {
  std::error_code ec;
  std::filesystem::create_directories(to_dir, ec);
  for (const auto& entry : std::filesystem::directory_iterator(from_dir, ec)) {
    const auto name = entry.path().filename().string();
    if (name.rfind("node", 0) == 0 || name.rfind("config", 0) == 0) {
      std::filesystem::copy_file(entry.path(), to_dir + "/" + name,
                                 std::filesystem::copy_options::overwrite_existing, ec);
    }
  }
  return to_dir;
}

// Runs the statements through the cluster, each of which must succeed.
bool run_setup(const test::ClusterProcesses& cluster, const std::vector<std::string>& statements,
               std::string& error) {
  std::vector<std::pair<std::string, std::uint16_t>> seeds;
  for (int id = 1; id <= kNodes; ++id)
    seeds.emplace_back("127.0.0.1", static_cast<std::uint16_t>(cluster.port(id)));
  ClientOptions o = test::ClusterProcesses::client_options();
  o.retry_for_ms = 20000;
  auto client = Client::connect_cluster(seeds, o);
  if (!client) {
    error = client.error().message;
    return false;
  }
  for (const auto& sql : statements) {
    auto r = client->query(sql);
    if (!r || r->status != ReplyStatus::ok) {
      error = sql + ": " + (r ? r->message : r.error().message);
      return false;
    }
  }
  return true;
}

std::string repro_command(const char* argv0, const Options& o, std::uint64_t seed) {
  std::string cmd = std::string(argv0) + " --mode " + o.mode + " --seed " + std::to_string(seed);
  if (o.duration_s) cmd += " --duration " + std::to_string(*o.duration_s);
  if (!o.sql_workload) cmd += " --sql-workload off";
  if (o.log_retention) cmd += " --log-retention " + std::to_string(*o.log_retention);
  return cmd;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);

  // --- environment ---
  const auto servers = test::mariadb_servers();
  if (servers.size() < kNodes) {
    const char* require = std::getenv("DISTDB_REQUIRE_MARIADB");
    if (require != nullptr && std::string(require) == "1") {
      std::fprintf(
          stderr,
          "distdb-fault: DISTDB_TEST_MARIADB lists %zu servers, 3 needed, and DISTDB_REQUIRE_MARIADB=1\n",
          servers.size());
      return kExitSetup;
    }
    std::fprintf(stderr,
                 "skipped: needs 3 MariaDB servers in DISTDB_TEST_MARIADB (scripts/test.sh starts them)\n");
    return kExitSkip;
  }
  const char* ctl = std::getenv("DISTDB_TEST_MARIADB_CTL");
  if (ctl == nullptr || *ctl == '\0') {
    std::fprintf(stderr,
                 "distdb-fault: DISTDB_TEST_MARIADB_CTL is not set: the nemesis needs it to kill and restart "
                 "the MariaDB servers (eval \"$(scripts/mariadb-sandbox.sh env 3)\")\n");
    return kExitSetup;
  }
  if (std::getenv("DISTDB_NODE_BIN") == nullptr) {
    std::fprintf(stderr,
                 "distdb-fault: DISTDB_NODE_BIN is not set (the distdb-node to test; meson test sets it)\n");
    return kExitSetup;
  }
  std::string server_list;
  for (std::size_t i = 0; i < kNodes; ++i) {
    server_list += (i ? "," : "") + servers[i].host + ":" + std::to_string(servers[i].port);
  }

  // --- the schedule, from the seed alone ---
  const std::uint64_t seed = options.seed.value_or(
      static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) %
      1000000000ULL);
  const bool long_mode = options.mode == "long";
  ScheduleOptions so;
  so.seed = seed;
  so.nodes = kNodes;
  // Short: every fault kind once (about 35 s of schedule) plus warm-up and
  // cool-down, about a minute in all with setup and checks. Long: ten minutes.
  so.workload_ms = 1000 * options.duration_s.value_or(long_mode ? 600 : 50);
  const std::vector<PlannedFault> schedule = make_schedule(so);
  const double min_availability = options.min_availability.value_or(0.5);
  const std::string repro = repro_command(argv[0], options, seed);
  std::cout << "distdb-fault: seed " << seed << ", mode " << options.mode << "\nrepro: " << repro << "\n";
  print_schedule(std::cout, seed, schedule);

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // --- run ---
  // Everything below is torn down in reverse order, also on an error: the
  // workload first (no more clients), then the nemesis's faults undone (so
  // the MariaDB servers are left running, as the suite found them), then the
  // node processes (ClusterProcesses kills them; a stopped one was continued
  // by heal_everything), the proxy, and finally the databases.
  int status = kExitSetup;
  std::string kept_logs;
  drop_database(options.database);
  {
    std::unique_ptr<PartitionProxy> proxy;
    std::unique_ptr<test::ClusterProcesses> cluster;
    std::unique_ptr<History> history;
    std::unique_ptr<Workload> workload;
    std::unique_ptr<Nemesis> nemesis;
    std::thread nemesis_thread;
    // The node logs and configs, copied out before the cluster's directory
    // goes: always with --keep-logs, else only when something failed.
    auto keep_logs = [&] {
      const char* tmp = std::getenv("TMPDIR");
      return copy_logs(cluster->dir(), !options.keep_logs.empty()
                                           ? options.keep_logs
                                           : std::string(tmp ? tmp : "/tmp") + "/distdb-fault-" +
                                                 std::to_string(seed) + "-logs");
    };
    auto teardown = [&] {
      if (workload) workload->stop();
      if (nemesis_thread.joinable()) nemesis_thread.join();
      if (nemesis) nemesis->heal_everything();
    };
    try {
      proxy = std::make_unique<PartitionProxy>(kNodes);
      cluster = std::make_unique<test::ClusterProcesses>(
          kNodes, test::ClusterProcesses::Backend::mariadb, options.database,
          options.log_retention
              ? "\"limits\": {\"log_retention_entries\": " + std::to_string(*options.log_retention) + "}"
              : std::string(),
          [&proxy](int from, int to) { return proxy->port(from, to); });
      proxy->start({cluster->port(1), cluster->port(2), cluster->port(3)});
      if (!cluster->wait_for_coordinator(kNodes, std::chrono::seconds(30))) {
        throw std::runtime_error("node 3 did not become coordinator of all three within 30 s");
      }
      WorkloadOptions wo;
      wo.ports = {cluster->port(1), cluster->port(2), cluster->port(3)};
      wo.seed = seed;
      if (!options.sql_workload) wo.sql_workers = 0;
      std::string error;
      if (!run_setup(*cluster, workload_setup_statements(wo), error)) {
        throw std::runtime_error("creating the workload's tables failed: " + error);
      }

      history = std::make_unique<History>(Clock::now());
      workload = std::make_unique<Workload>(wo, *history);
      nemesis = std::make_unique<Nemesis>(*cluster, *proxy, *history, schedule, g_abort);
      workload->start();
      nemesis_thread = std::thread([&] { nemesis->run(); });
      while (!g_abort && history->now_ms() < so.workload_ms)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      const std::int64_t workload_end_ms = std::min<std::int64_t>(history->now_ms(), so.workload_ms);
      teardown();
      if (g_abort) throw std::runtime_error("interrupted");
      nemesis->check_for_crashes();

      std::cout << "workload done; waiting for convergence\n" << std::flush;
      std::string convergence;
      const bool converged =
          wait_for_convergence(*cluster, options.database, std::chrono::seconds(60), convergence);
      nemesis->check_for_crashes();

      std::vector<NodeSnapshot> snapshots;
      for (int id = 1; id <= kNodes; ++id)
        snapshots.push_back(read_snapshot(id, options.database, false, options.sql_workload));
      const std::vector<Operation> ops = history->snapshot();
      CheckInputs in;
      in.ops = &ops;
      in.snapshots = &snapshots;
      for (int id = 1; id <= kNodes; ++id) in.node_logs[id] = cluster->log(id);
      in.exits = &nemesis->unexpected_exits();
      in.availability = measure_availability(ops, nemesis->majority_timeline(), workload_end_ms);
      in.min_availability = min_availability;
      in.converged = converged;
      in.convergence_detail = convergence;
      in.accounts = wo.accounts;
      in.initial_balance = wo.initial_balance;
      in.sql_workload = options.sql_workload;
      const std::vector<CheckResult> checks = run_checks(in);
      bool passed = true;
      for (const auto& c : checks) passed = passed && c.passed;
      status = passed ? kExitPass : kExitViolation;

      if (!options.keep_logs.empty() || !passed) kept_logs = keep_logs();
      ReportInputs report;
      report.seed = seed;
      report.mode = options.mode;
      report.workload_ms = workload_end_ms;
      report.repro = repro;
      report.servers = server_list;
      report.ops = &ops;
      report.faults = &nemesis->applied();
      report.availability = in.availability;
      report.checks = &checks;
      report.proxied_bytes = proxy->forwarded_bytes();
      report.logs_kept_in = kept_logs;
      print_report(std::cout, report);
    } catch (const std::exception& e) {
      teardown();
      if (cluster) kept_logs = keep_logs();
      std::cerr << "distdb-fault: setup error: " << e.what() << "\n";
      if (!kept_logs.empty()) std::cerr << "node logs kept in " << kept_logs << "\n";
      std::cerr << "repro: " << repro << "\n";
      status = kExitSetup;
    }
    workload.reset();
    nemesis.reset();
    cluster.reset();  // kills the node processes, removes their directory
    proxy.reset();
  }
  drop_database(options.database);
  return status;
}
