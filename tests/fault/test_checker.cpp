// The fault checker's SQL-workload checks, fed made-up histories and
// snapshots: each must pass on agreeing nodes and fail, naming the
// difference, when the nodes disagree or a promise to a client was broken.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "checker.hpp"

using namespace distdb;
using namespace distdb::fault;

namespace {

// A node that holds one auto-id row (key 10, id 1, updated once, audited),
// one sequence row (key 11, value 1), and the fingerprint that goes with it.
NodeSnapshot agreeing_node(int id) {
  NodeSnapshot s;
  s.node = id;
  s.auto_rows[10] = {1, 1};
  s.audit[10].inserts = 1;
  s.audit[10].updates = {1};
  s.seq_rows[11] = 1;
  s.fingerprint.database = "distdb_fault";
  s.fingerprint.facets = {
      {"table `fault_auto`: checksum", "1234"},
      {"table `fault_audit`: checksum", "5678"},
      {"table `fault_auto`: definition", "CREATE TABLE `fault_auto` (...)"},
      {"sequence `fault_seq`: next_not_cached_value", "2"},
      {"trigger `fault_auto_ai`: definition", "AFTER INSERT ON fault_auto: BEGIN ... END"},
  };
  s.auto_increment = {{"fault_auto", "2"}, {"fault_audit", "3"}};
  return s;
}

std::vector<Operation> history() {
  std::vector<Operation> ops;
  Operation insert;
  insert.kind = OpKind::auto_insert;
  insert.key = 10;
  insert.value = 1;
  insert.outcome = Outcome::ok;
  ops.push_back(insert);
  Operation seq;
  seq.kind = OpKind::seq_insert;
  seq.key = 11;
  seq.outcome = Outcome::ok;
  ops.push_back(seq);
  Operation update;
  update.kind = OpKind::audit_update;
  update.key = 10;
  update.outcome = Outcome::ok;
  ops.push_back(update);
  return ops;
}

const CheckResult& find(const std::vector<CheckResult>& checks, const std::string& name) {
  for (const auto& c : checks) {
    if (c.name == name) return c;
  }
  FAIL("no check named " << name);
  static CheckResult none;
  return none;
}

std::vector<CheckResult> run(const std::vector<Operation>& ops, const std::vector<NodeSnapshot>& snaps) {
  static const std::vector<UnexpectedExit> no_exits;
  CheckInputs in;
  in.ops = &ops;
  in.snapshots = &snaps;
  in.exits = &no_exits;
  in.sql_workload = true;
  return run_checks(in);
}

}  // namespace

TEST_CASE("compare_databases: identical fingerprints and counters pass") {
  const std::vector<NodeSnapshot> snaps = {agreeing_node(1), agreeing_node(2), agreeing_node(3)};
  const CheckResult c = compare_databases(snaps);
  CHECK(c.name == "same-databases");
  CHECK_MESSAGE(c.passed, c.detail);
}

TEST_CASE("compare_databases: a different table checksum fails and shows every node's value") {
  std::vector<NodeSnapshot> snaps = {agreeing_node(1), agreeing_node(2), agreeing_node(3)};
  snaps[1].fingerprint.facets["table `fault_audit`: checksum"] = "9999";
  const CheckResult c = compare_databases(snaps);
  CHECK_FALSE(c.passed);
  CHECK(c.detail.find("table `fault_audit`: checksum: node 1: 5678 | node 2: 9999 | node 3: 5678") !=
        std::string::npos);
  CHECK(c.detail.find("fault_auto`: checksum") == std::string::npos);  // only what differs
}

TEST_CASE("compare_databases: a different sequence position or trigger fails") {
  std::vector<NodeSnapshot> snaps = {agreeing_node(1), agreeing_node(2), agreeing_node(3)};
  snaps[2].fingerprint.facets["sequence `fault_seq`: next_not_cached_value"] = "3";
  snaps[0].fingerprint.facets.erase("trigger `fault_auto_ai`: definition");
  const CheckResult c = compare_databases(snaps);
  CHECK_FALSE(c.passed);
  CHECK(c.detail.find("sequence `fault_seq`: next_not_cached_value: node 1: 2 | node 2: 2 | node 3: 3") !=
        std::string::npos);
  CHECK(c.detail.find("trigger `fault_auto_ai`: definition: node 1: (absent)") != std::string::npos);
}

TEST_CASE("compare_databases: AUTO_INCREMENT counters are compared, although fingerprints leave them out") {
  std::vector<NodeSnapshot> snaps = {agreeing_node(1), agreeing_node(2), agreeing_node(3)};
  snaps[0].auto_increment["fault_auto"] = "5";  // e.g. ids consumed by a transaction rolled back there only
  const CheckResult c = compare_databases(snaps);
  CHECK_FALSE(c.passed);
  CHECK(c.detail.find("table `fault_auto`: AUTO_INCREMENT counter (information_schema.TABLES): node 1: 5 | "
                      "node 2: 2 | node 3: 2") != std::string::npos);

  snaps = {agreeing_node(1), agreeing_node(2), agreeing_node(3)};
  snaps[2].auto_increment.erase("fault_audit");
  CHECK_FALSE(compare_databases(snaps).passed);
}

TEST_CASE("compare_databases: a fingerprint not taken is a failure, not a pass") {
  std::vector<NodeSnapshot> snaps = {agreeing_node(1), agreeing_node(2), agreeing_node(3)};
  snaps[1].fingerprint.error = "SHOW CREATE DATABASE: server has gone away";
  CheckResult c = compare_databases(snaps);
  CHECK_FALSE(c.passed);
  CHECK(c.detail.find("node 2: no fingerprint: SHOW CREATE DATABASE") != std::string::npos);

  for (auto& s : snaps) s = NodeSnapshot{};
  CHECK_FALSE(compare_databases(snaps).passed);
}

TEST_CASE("sql checks: agreeing nodes and a kept history pass") {
  const std::vector<NodeSnapshot> snaps = {agreeing_node(1), agreeing_node(2), agreeing_node(3)};
  const auto checks = run(history(), snaps);
  for (const char* name : {"sql-acked-present", "sql-failed-absent", "sql-updates-explained", "trigger-audit",
                           "sequence-values", "same-databases"}) {
    const CheckResult& c = find(checks, name);
    CHECK_MESSAGE(c.passed, name << ": " << c.detail);
  }
}

TEST_CASE("sql checks: an acknowledged insert missing on one node, or stored with another id") {
  std::vector<NodeSnapshot> snaps = {agreeing_node(1), agreeing_node(2), agreeing_node(3)};
  snaps[1].seq_rows.clear();
  snaps[2].auto_rows[10].id = 2;
  const auto checks = run(history(), snaps);
  const CheckResult& c = find(checks, "sql-acked-present");
  CHECK_FALSE(c.passed);
  CHECK(c.detail.find("key 11 missing from fault_seqrows on node 2") != std::string::npos);
  CHECK(c.detail.find("key 10: its reply said id 1, the nodes hold node 1: 1; node 2: 1; node 3: 2;") !=
        std::string::npos);
}

TEST_CASE("sql checks: a failed insert present, or a key nobody inserted") {
  auto ops = history();
  ops[1].outcome = Outcome::failed;
  std::vector<NodeSnapshot> snaps = {agreeing_node(1), agreeing_node(2), agreeing_node(3)};
  snaps[0].auto_rows[99] = {7, 0};
  const auto checks = run(ops, snaps);
  const CheckResult& c = find(checks, "sql-failed-absent");
  CHECK_FALSE(c.passed);
  CHECK(c.detail.find("key 11 present in fault_seqrows on node 1") != std::string::npos);
  CHECK(c.detail.find("key 99 in fault_auto on node 1 was never attempted") != std::string::npos);
}

TEST_CASE("sql checks: updates and the audit trail the triggers leave") {
  std::vector<NodeSnapshot> snaps = {agreeing_node(1), agreeing_node(2), agreeing_node(3)};
  snaps[0].auto_rows[10].n = 2;        // one update more than was ever sent
  snaps[1].audit[10].updates.clear();  // the update trigger did not fire there
  snaps[2].audit[12].inserts = 1;      // an audit row without its row
  const auto checks = run(history(), snaps);
  const CheckResult& updates = find(checks, "sql-updates-explained");
  CHECK_FALSE(updates.passed);
  CHECK(updates.detail.find("node 1 key 10: n = 2, but 1 acknowledged and 0 unknown updates") !=
        std::string::npos);
  const CheckResult& audit = find(checks, "trigger-audit");
  CHECK_FALSE(audit.passed);
  CHECK(audit.detail.find("node 2 key 10 (n = 1): 1 'insert' audit rows, 'update' rows for n = []") !=
        std::string::npos);
  CHECK(audit.detail.find("node 3: audit rows for key 12, which fault_auto does not hold") !=
        std::string::npos);
}

TEST_CASE("sql checks: a sequence value stored twice, or beyond the sequence's position") {
  std::vector<NodeSnapshot> snaps = {agreeing_node(1), agreeing_node(2), agreeing_node(3)};
  snaps[0].seq_rows[13] = 1;
  snaps[1].seq_rows[11] = 2;
  auto ops = history();
  Operation another;
  another.kind = OpKind::seq_insert;
  another.key = 13;
  another.outcome = Outcome::unknown;
  ops.push_back(another);
  const auto checks = run(ops, snaps);
  const CheckResult& c = find(checks, "sequence-values");
  CHECK_FALSE(c.passed);
  CHECK(c.detail.find("node 1: NEXTVAL value 1 stored for keys 11 and 13") != std::string::npos);
  CHECK(c.detail.find("node 2: value 2 stored, but fault_seq's next value is 2") != std::string::npos);
}
