// The checker: after the faults are healed, waits for the cluster to
// converge, reads every node's database directly (not through distdb, so
// that a bug in the read path cannot hide one in replication), and holds the
// system to what it promised the clients in the history.
//
// Checks (docs/fault-testing.md explains each in more words):
//   converged         a write succeeds again and every node applies it
//   acked-present     every acknowledged append is on every node
//   failed-absent     no append reported as failed is on any node
//   no-phantoms       every key on a node was attempted by some client
//   bank-total        every node's accounts sum to the initial total
//   bank-explained    each account's final balance is the initial balance
//                     plus the acknowledged transfers plus some of the
//                     unknown ones (never a failed one), within bounds
//   bank-reads        every total read during the run was the initial total
//   checksums         CHECKSUM TABLE is equal on every node
//   applied-equal     distdb_applied (seq, epoch) is equal on every node
//   log-agreement     every sequence number held by several nodes holds the
//                     identical entry (epoch and statements), and each
//                     node's log is gap-free, epoch-monotonic and ends at
//                     its applied position
//   sql-acked-present every acknowledged auto_insert and seq_insert is on
//                     every node (auto_insert: with the id its reply gave)
//   sql-failed-absent no auto_insert or seq_insert reported as failed is on
//                     any node, and every key on a node was attempted
//   sql-updates-explained  each row's update count (n) is its acknowledged
//                     updates plus some of the unknown ones
//   trigger-audit     on every node, each fault_auto row has exactly one
//                     'insert' audit row and one 'update' row per update
//                     (n = 1..its n), and no audit row lacks its row
//   sequence-values   on every node, no NEXTVAL value was stored twice, and
//                     all are below the sequence's position
//   same-databases    the nodes' databases have identical fingerprints
//                     (db_fingerprint.hpp: every table's checksum and
//                     definition, sequences' positions, triggers' and
//                     routines' definitions) and AUTO_INCREMENT counters
//   none-prepared     once converged, no server holds a prepared (XA)
//                     transaction of distdb's, nor any transaction no
//                     session owns: a leftover one holds its row locks for ever
//   one-coordinator   at most one node became coordinator per epoch (the
//                     nodes' own "now the coordinator (epoch N)" log lines)
//   databases-up      no MariaDB server stopped unless the nemesis killed it
//   no-crash          no distdb-node exited unless the nemesis killed it
//   availability      while a majority was up, writes succeeded in at least
//                     the required share of time windows
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cluster_fixture.hpp"
#include "db_fingerprint.hpp"
#include "history.hpp"
#include "nemesis.hpp"

namespace distdb::fault {

struct CheckResult {
  std::string name;
  bool passed = false;
  std::string detail;
};

// One node's database, read after the run.
struct NodeSnapshot {
  int node = 0;
  std::string error;  // non-empty when it could not be read
  std::set<std::int64_t> keys;
  std::map<int, std::int64_t> balances;
  std::map<std::string, std::string> checksums;  // table -> CHECKSUM TABLE value
  std::int64_t applied_seq = -1;
  std::int64_t applied_epoch = -1;
  std::int64_t barrier_rows = 0;
  std::vector<std::string> prepared;  // XA RECOVER: distdb's (ddb-... / ddb.<db>-...) prepared transactions
  // InnoDB transactions no session owns (information_schema.INNODB_TRX with
  // thread id 0): prepared XA transactions, including the ones MariaDB no
  // longer lists in XA RECOVER (mariadb_storage.cpp, point 3).
  std::int64_t ownerless_transactions = 0;
  struct LogEntry {
    std::int64_t epoch = 0;
    std::string statements;
    bool operator==(const LogEntry&) const = default;
  };
  std::map<std::int64_t, LogEntry> log;  // seq -> entry

  // The SQL-rich workload's tables (read with `sql_workload` only).
  struct AutoRow {
    std::int64_t id = 0;
    std::int64_t n = 0;
  };
  std::map<std::int64_t, AutoRow> auto_rows;  // fault_auto: k -> (id, n)
  struct Audit {
    std::int64_t inserts = 0;
    std::vector<std::int64_t> updates;  // the n of each 'update' row, sorted
    std::int64_t others = 0;            // rows with any other op
  };
  std::map<std::int64_t, Audit> audit;            // fault_audit, by k
  std::map<std::int64_t, std::int64_t> seq_rows;  // fault_seqrows: k -> v
  // The whole database as the fingerprint helper sees it, and the
  // AUTO_INCREMENT counter of every table that has one (information_schema
  // .TABLES: SHOW CREATE TABLE's AUTO_INCREMENT=N is left out of the
  // fingerprint, but a counter that differs makes the next automatic id differ).
  test::DbFingerprint fingerprint;
  std::map<std::string, std::string> auto_increment;  // table -> counter
};

// Reads node `id`'s database (MariaDB server id-1, database `database`);
// with `position_only`, just its applied position and barrier rows (cheap
// enough to poll); with `sql_workload`, also the SQL workload's tables and
// the database's fingerprint.
NodeSnapshot read_snapshot(int id, const std::string& database, bool position_only = false,
                           bool sql_workload = false);

// The same-databases check alone: the snapshots' fingerprints and
// AUTO_INCREMENT counters compared, each difference in the detail (one
// facet per line, every node's value). Also used by run_checks.
CheckResult compare_databases(const std::vector<NodeSnapshot>& snapshots);

struct Availability {
  double share = 1.0;  // windows with a successful write / windows with a majority up
  int eligible_windows = 0;
  int available_windows = 0;
  std::int64_t window_ms = 500;
  std::int64_t longest_outage_ms = 0;  // longest stretch without a successful write
  std::int64_t outage_from_ms = 0;
  std::int64_t outage_to_ms = 0;
};

Availability measure_availability(const std::vector<Operation>& ops,
                                  const std::vector<MajorityChange>& majority, std::int64_t end_ms);

struct CheckInputs {
  const std::vector<Operation>* ops = nullptr;
  const std::vector<NodeSnapshot>* snapshots = nullptr;
  std::map<int, std::string> node_logs;  // id -> the node's log (all its lifetimes)
  const std::vector<UnexpectedExit>* exits = nullptr;
  Availability availability;
  double min_availability = 0.0;
  bool converged = false;
  std::string convergence_detail;
  int accounts = 0;
  std::int64_t initial_balance = 0;
  bool sql_workload = false;  // run the SQL workload's checks
};

std::vector<CheckResult> run_checks(const CheckInputs& in);

// After the heal: a barrier write must succeed through the cluster, and
// then every node must hold it and report the same applied position.
// Waits for those conditions up to `timeout`; `detail` says what it saw.
bool wait_for_convergence(test::ClusterProcesses& cluster, const std::string& database,
                          std::chrono::milliseconds timeout, std::string& detail);

}  // namespace distdb::fault
