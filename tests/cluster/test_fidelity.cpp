// Fidelity: every statement a client sends to ANY member either ends applied
// identically on every member, or is refused with an error message.
//
// Three distdb-node processes in front of the three MariaDB test servers.
// Each case of the divergence corpus is set up on a clean database (setup
// statements are writes sent to the coordinator), then its statements are
// sent to one member — in turn member 1, 2 and 3 (node 3 is the coordinator,
// 1 and 2 are not) — and, once all three have applied the same log
// position, the databases are fingerprinted directly on the servers
// (db_fingerprint.hpp) and compared. Refused or applied, either is fine;
// members that differ are the failure. Some classes are stricter: statements
// on distdb's own tables must be refused, compound statements must be
// accepted.
//
// A last check sends reads (and statements that look like reads) to each
// member and fingerprints that member's database before and after: a
// statement answered as a read (no log entry) must change nothing.
//
// Every failure names the case, the member, the replies and the diff; each
// TEST_CASE also prints a summary of its failing cases on stdout.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cluster_fixture.hpp"
#include "db_fingerprint.hpp"
#include "mariadb_env.hpp"

using namespace distdb;
using namespace distdb::test;
using namespace std::chrono_literals;

namespace {

constexpr int kCoordinator = 3;         // the highest id wins the first election
constexpr auto kConvergeTimeout = 10s;  // converging takes milliseconds; a member this late is stuck

enum class Expect {
  refused_or_identical,  // either answer, as long as the members end identical
  refused,               // every statement must be refused, and distdb's tables left alone
  accepted,              // every statement must be accepted, and the members end identical
};

struct Case {
  std::string name;
  std::vector<std::string> setup;  // writes, sent to the coordinator first
  std::vector<std::string> steps;  // sent, in order, to the member under test
  std::vector<std::string> probe;  // writes sent to the coordinator afterwards, to make hidden state visible
  Expect expect = Expect::refused_or_identical;
  // Session state on the executors' connections: a new cluster for each
  // member, since nothing the test can send resets those sessions.
  bool fresh_cluster = false;
};

// "{db}" in a statement names the case's database.
std::string with_db(std::string sql, const std::string& db) {
  for (auto at = sql.find("{db}"); at != std::string::npos; at = sql.find("{db}", at)) sql.replace(at, 4, db);
  return sql;
}

std::string describe(const Result<Reply>& r) {
  if (!r) return std::string("no reply (") + to_string(r.error().kind) + "): " + r.error().message;
  std::ostringstream out;
  switch (r->status) {
    case ReplyStatus::ok:
      out << "OK from node " << r->node << ": " << r->message;
      if (r->result.has_rows()) {
        out << " [";
        for (std::size_t i = 0; i < r->result.rows.size() && i < 3; ++i) {
          out << (i ? " " : "") << "(";
          for (std::size_t c = 0; c < r->result.rows[i].size(); ++c) {
            out << (c ? ", " : "") << render_value(r->result.rows[i][c]);
          }
          out << ")";
        }
        out << (r->result.rows.size() > 3 ? " ...]" : "]");
      }
      break;
    case ReplyStatus::redirect:
      out << "REDIRECT: " << r->message;
      break;
    case ReplyStatus::error:
      out << "ERROR from node " << r->node;
      if (r->error)
        out << " (" << to_string(r->error->kind) << " " << r->error->code << "): " << r->error->message;
      else
        out << ": " << r->message;
      break;
  }
  return out.str();
}

bool is_ok(const Result<Reply>& r) {
  return r && r->status == ReplyStatus::ok;
}
bool is_refusal(const Result<Reply>& r) {
  return r && r->status == ReplyStatus::error && r->error.has_value() && !r->error->message.empty();
}

std::string member_label(int member) {
  return "member " + std::to_string(member) +
         (member == kCoordinator ? " (the coordinator)" : " (not the coordinator)");
}

// A cluster of three nodes on one database, recreated (under a new database
// name) whenever a run may have left something behind that DROPs cannot
// clear: diverged members, or state in the executors' sessions.
class Harness {
 public:
  explicit Harness(std::string group) : group_(std::move(group)) {
    // Transactions a killed cluster of an earlier run left prepared hold
    // locks that would block the DROP DATABASE below (no cluster runs now:
    // these tests run one at a time).
    for (std::size_t i = 0; i < inspector_.size(); ++i) {
      auto prepared = inspector_.execute(i, "XA RECOVER");
      if (!prepared) continue;
      for (const Row& row : prepared->rows) {
        if (const auto* xid = std::get_if<std::string>(&row.at(3));
            xid && (xid->rfind("ddb-", 0) == 0 || xid->rfind("ddb.", 0) == 0)) {
          (void)inspector_.execute(i, "XA ROLLBACK '" + *xid + "'");
        }
      }
    }
    // Databases an interrupted earlier run left behind.
    for (std::size_t i = 0; i < inspector_.size(); ++i) {
      auto left = inspector_.execute(
          i, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'fid\\_" + group_ +
                 "\\_%'");
      if (!left) continue;
      for (const Row& row : left->rows) {
        if (const auto* name = std::get_if<std::string>(&row.at(0))) {
          (void)inspector_.execute(i, "DROP DATABASE IF EXISTS `" + *name + "`");
        }
      }
    }
    restart();
  }

  ~Harness() {
    cluster_.reset();
    for (const std::string& db : used_) {
      for (std::size_t i = 0; i < inspector_.size(); ++i)
        (void)inspector_.execute(i, "DROP DATABASE IF EXISTS `" + db + "`");
    }
  }

  const std::string& db() const { return db_; }
  DbInspector& inspector() { return inspector_; }
  ClusterProcesses& cluster() { return *cluster_; }

  void restart() {
    cluster_.reset();
    db_ = "fid_" + group_ + "_" + std::to_string(++generation_);
    used_.push_back(db_);
    cluster_ = std::make_unique<ClusterProcesses>(3, ClusterProcesses::Backend::mariadb, db_);
    REQUIRE_MESSAGE(cluster_->wait_for_coordinator(kCoordinator, 20s),
                    "node 1:\n" << cluster_->log(1) << "\nnode 2:\n" << cluster_->log(2) << "\nnode 3:\n"
                                 << cluster_->log(kCoordinator));
    std::string why;
    REQUIRE_MESSAGE(inspector_.wait_for_same_position(db_, kConvergeTimeout, &why), why);
    clean_ = true;
    pristine_ = true;
  }

  void mark_dirty() { clean_ = false; }

  Result<Reply> send(int member, const std::string& sql) {
    return cluster_->query(member, with_db(sql, db_));
  }

  // A clean database for the next run: the user's objects dropped through
  // the cluster (DROPs are writes), and checked to be gone on every server;
  // a new cluster when that is not enough.
  void prepare(bool fresh) {
    if (!pristine_ && (fresh || !clean_ || !drop_user_objects())) restart();
    pristine_ = false;  // the run about to start uses it
  }

 private:
  bool drop_user_objects() {
    const auto objects = user_objects(inspector_.fingerprint_all(db_));
    std::vector<std::string> drops;
    std::string tables, views, sequences;
    auto q = [](const std::string& name) { return "`" + name + "`"; };
    for (const auto& [kind, name] : objects) {
      if (kind == "trigger") drops.push_back("DROP TRIGGER IF EXISTS " + q(name));
      if (kind == "event") drops.push_back("DROP EVENT IF EXISTS " + q(name));
      if (kind == "procedure") drops.push_back("DROP PROCEDURE IF EXISTS " + q(name));
      if (kind == "function") drops.push_back("DROP FUNCTION IF EXISTS " + q(name));
      if (kind == "table") tables += (tables.empty() ? "" : ", ") + q(name);
      if (kind == "view") views += (views.empty() ? "" : ", ") + q(name);
      if (kind == "sequence") sequences += (sequences.empty() ? "" : ", ") + q(name);
    }
    if (!views.empty()) drops.push_back("DROP VIEW IF EXISTS " + views);
    if (!tables.empty()) drops.push_back("DROP TABLE IF EXISTS " + tables);
    if (!sequences.empty()) drops.push_back("DROP SEQUENCE IF EXISTS " + sequences);
    for (const std::string& sql : drops) {
      if (!is_ok(send(kCoordinator, sql))) return false;
    }
    if (!inspector_.wait_for_same_position(db_, kConvergeTimeout)) return false;
    const auto prints = inspector_.fingerprint_all(db_);
    return fingerprint_diff(prints).empty() && user_objects(prints).empty();
  }

  std::string group_;
  int generation_ = 0;
  std::string db_;
  std::vector<std::string> used_;
  bool clean_ = false;
  bool pristine_ = false;  // just started: nothing has run on it yet
  DbInspector inspector_;
  std::unique_ptr<ClusterProcesses> cluster_;
};

// What a TEST_CASE found, printed at its end.
struct Summary {
  std::string title;
  std::vector<std::string> failures;  // "case @ member N: why"
  std::vector<std::string> notes;     // refusals worth knowing about
  int runs = 0;

  ~Summary() {
    std::printf("\n=== %s: %d runs, %zu failing\n", title.c_str(), runs, failures.size());
    for (const auto& f : failures) std::printf("  FAIL %s\n", f.c_str());
    for (const auto& n : notes) std::printf("  note %s\n", n.c_str());
    std::fflush(stdout);
  }
};

// A step that is not sent: the member's own MariaDB server closes every
// connection distdb has to the database (what wait_timeout, a server restart
// or a network cut do to idle connections). Session state held there is lost.
const std::string kKillSessions = "{kill-sessions}";

std::string kill_sessions(DbInspector& in, std::size_t server, const std::string& db) {
  auto ids = in.execute(server, "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '" + db +
                                    "' AND ID <> CONNECTION_ID()");
  if (!ids) return "cannot list them: " + ids.error().message;
  int killed = 0;
  for (const Row& row : ids->rows) {
    if (in.execute(server, "KILL CONNECTION " + render_value(row.at(0)))) ++killed;
  }
  return std::to_string(killed) + " closed";
}

// One case, through one member.
void run_case(Harness& h, const Case& c, int member, Summary& summary) {
  ++summary.runs;
  h.prepare(c.fresh_cluster);
  const std::string db = h.db();
  DbInspector& in = h.inspector();
  std::ostringstream transcript;
  transcript << "case '" << c.name << "' through " << member_label(member) << ", database " << db << "\n";
  const std::string where = c.name + " @ member " + std::to_string(member);

  for (const std::string& sql : c.setup) {
    const auto r = h.send(kCoordinator, sql);
    transcript << "  setup (coordinator): " << with_db(sql, db) << "\n    -> " << describe(r) << "\n";
    if (!is_ok(r))
      summary.notes.push_back(where + ": setup refused: " + with_db(sql, db) + " -> " + describe(r));
  }
  std::string why;
  if (!in.wait_for_same_position(db, kConvergeTimeout, &why)) {
    h.mark_dirty();
    summary.failures.push_back(where + ": " + why + " (after the setup)");
    FAIL_CHECK(transcript.str() << why);
    return;
  }
  const std::string setup_diff = fingerprint_diff(in.fingerprint_all(db));
  if (!setup_diff.empty()) {
    h.mark_dirty();
    summary.failures.push_back(where + ": members differ after the setup alone");
    FAIL_CHECK(transcript.str() << "members differ after the setup alone (before the case's statements):\n"
                                << setup_diff);
    return;
  }
  std::vector<std::map<std::string, std::string>> books_before;
  std::vector<std::int64_t> log_last;
  std::vector<std::string> log_before;
  if (c.expect == Expect::refused) {
    for (std::size_t i = 0; i < in.size(); ++i) {
      books_before.push_back(in.bookkeeping(i, db));
      log_last.push_back(in.log_last_seq(i, db).value_or(-1));
      log_before.push_back(in.log_digest(i, db, log_last.back()));
    }
  }

  std::vector<Result<Reply>> replies;
  for (const std::string& sql : c.steps) {
    if (sql == kKillSessions) {
      transcript << "  (the member's MariaDB server closes distdb's connections: "
                 << kill_sessions(in, static_cast<std::size_t>(member - 1), db) << ")\n";
      continue;
    }
    replies.push_back(h.send(member, sql));
    transcript << "  statement (" << member_label(member) << "): " << with_db(sql, db) << "\n    -> "
               << describe(replies.back()) << "\n";
  }
  for (const std::string& sql : c.probe) {
    const auto r = h.send(kCoordinator, sql);
    transcript << "  probe (coordinator): " << with_db(sql, db) << "\n    -> " << describe(r) << "\n";
  }

  if (!in.wait_for_same_position(db, kConvergeTimeout, &why)) {
    h.mark_dirty();
    summary.failures.push_back(where + ": " + why);
    FAIL_CHECK(transcript.str() << why);
    return;
  }
  const std::string diff = fingerprint_diff(in.fingerprint_all(db));
  std::vector<std::string> problems;
  if (!diff.empty()) {
    h.mark_dirty();
    problems.push_back("the members differ");
  }
  for (std::size_t i = 0; i < replies.size(); ++i) {
    const auto& r = replies[i];
    const std::string which = "statement " + std::to_string(i + 1);
    if (!r) {
      problems.push_back(which + " got no reply (outcome unknown)");
    } else if (r->status == ReplyStatus::redirect) {
      problems.push_back(which + " was redirected although the request did not ask for it");
    } else if (r->status == ReplyStatus::error && !is_refusal(r)) {
      problems.push_back(which + " was refused without an error message");
    }
    if (c.expect == Expect::refused && !is_refusal(r))
      problems.push_back(which + " must be refused, and was not");
    if (c.expect == Expect::accepted && !is_ok(r))
      problems.push_back(which + " must be accepted, and was not");
  }
  if (c.expect == Expect::refused) {
    for (std::size_t i = 0; i < in.size(); ++i) {
      auto after = in.bookkeeping(i, db);
      for (const auto& [k, v] : books_before[i]) {
        const std::string& now = after[k];
        bool changed = now != v;
        if (k == "distdb_applied rows") {
          // One row, whose position moves on with every entry.
          changed = now.rfind("(1, ", 0) != 0 || now.find(")(") != std::string::npos;
        }
        if (changed)
          problems.push_back("server " + std::to_string(i + 1) + ": " + k + " was " + v + ", is now " + now);
      }
      // A refused statement may still be logged (as a failed one): the log
      // may grow, but the entries it held must all still be there.
      const std::string log_now = in.log_digest(i, db, log_last[i]);
      if (log_now != log_before[i]) {
        problems.push_back("server " + std::to_string(i + 1) + ": distdb_log up to seq " +
                           std::to_string(log_last[i]) + " held " + log_before[i] + ", now " + log_now);
      }
    }
  }
  if (problems.empty()) {
    CHECK(problems.empty());  // counted as an assertion
    return;
  }
  h.mark_dirty();  // whatever went wrong must not leak into the next run
  std::string what;
  for (const auto& p : problems) what += (what.empty() ? "" : "; ") + p;
  std::string replies_text;
  for (const auto& r : replies) replies_text += (replies_text.empty() ? "" : " / ") + describe(r);
  summary.failures.push_back(where + ": " + what + " [replies: " + replies_text + "]" +
                             (diff.empty() ? "" : "\n       diff: " + diff.substr(0, diff.find('\n'))));
  FAIL_CHECK(transcript.str() << "FAILED: " << what << "\n"
                              << (diff.empty() ? "" : "fingerprint diff:\n" + diff));
}

void run_group(const std::string& group, const std::string& title, const std::vector<Case>& cases) {
  Summary summary{title, {}, {}, 0};
  Harness h(group);
  for (const Case& c : cases) {
    for (int member = 1; member <= 3; ++member) {
      CAPTURE(c.name);
      CAPTURE(member);
      run_case(h, c, member, summary);
    }
  }
}

// --- The corpus -------------------------------------------------------------

const std::vector<std::string> kTable = {"CREATE TABLE t (a INT)", "INSERT INTO t VALUES (1), (2)"};

std::vector<Case> executable_comments() {
  std::vector<Case> cases;
  auto add = [&](std::string name, std::string sql, std::vector<std::string> setup = kTable) {
    cases.push_back({std::move(name), std::move(setup), {std::move(sql)}, {}});
  };
  // MariaDB runs /*!NNNNN ... */ when its version is at least NNNNN and
  // skips it otherwise; /*M!NNNNNN ... */ likewise, MariaDB only. A
  // reader that takes the comment as code sees a SELECT; the server may
  // see only what follows it.
  add("/*!99999 SELECT ... AND */ DROP TABLE", "/*!99999 SELECT 1 FROM DUAL WHERE 0 AND */ DROP TABLE t");
  add("/*!50700 SELECT ... AND */ DELETE", "/*!50700 SELECT 1 FROM DUAL WHERE 0 AND */ DELETE FROM t");
  add("SELECT 1 /*!99999 ; DELETE */", "SELECT 1 /*!99999 ; DELETE FROM t */");
  add("/*M!999999 SELECT ... AND*/ INSERT",
      "/*M!999999 SELECT 1 FROM DUAL WHERE 0 AND*/ INSERT INTO t VALUES (7)");
  add("/*!99999 SELECT ... AND */ EXECUTE IMMEDIATE",
      "/*!99999 SELECT 1 FROM DUAL WHERE 0 AND */ EXECUTE IMMEDIATE 'INSERT INTO t VALUES (9)'");
  add("/*M!999999 ... AND*/ EXECUTE IMMEDIATE",
      "/*M!999999 SELECT 1 FROM DUAL WHERE 0 AND*/ EXECUTE IMMEDIATE 'INSERT INTO t VALUES (9)'");
  add("/*!99999 with a nested comment */ INSERT",
      "/*!99999 SELECT 1 /* nested */ FROM DUAL WHERE 0 AND */ INSERT INTO t VALUES (10)");
  add("/*M!999999 ending in a nested comment */ UPDATE",
      "/*M!999999 SELECT 1 FROM DUAL WHERE 0 AND /* nested */ */ UPDATE t SET a = a + 100");
  add("/*M!101200 (just above 10.11) */ DELETE",
      "/*M!101200 SELECT 1 FROM DUAL WHERE 0 AND */ DELETE FROM t WHERE a = 1");
  add("/*!100000 six digits */ INSERT",
      "/*!100000 SELECT 1 FROM DUAL WHERE 0 AND */ INSERT INTO t VALUES (11)");
  add("write entirely inside /*M!100000 */", "/*M!100000 INSERT INTO t VALUES (12) */");
  add("/*!99999 ... */ CREATE TABLE", "/*!99999 SELECT 1 FROM DUAL WHERE 0 AND */ CREATE TABLE t3 (a INT)");
  add("/*M!999999 VALUES */ DELETE", "/*M!999999 VALUES (1) */ DELETE FROM t");
  add("/*M!999999 DESCRIBE */ DELETE", "/*M!999999 DESCRIBE */ DELETE FROM t");
  add("/*M!999999 SHOW TABLES */ TRUNCATE", "/*M!999999 SHOW TABLES WHERE 0 AND */ TRUNCATE t");
  add("/*!99999 WITH ... SELECT */ DELETE",
      "/*!99999 WITH x AS (SELECT 1) SELECT 1 FROM DUAL WHERE 0 AND */ DELETE FROM t WHERE a = 2");
  add("/*M!999999 SELECT*/ CALL", "/*M!999999 SELECT 1 FROM DUAL WHERE 0 AND*/ CALL p()",
      {"CREATE TABLE t (a INT)", "CREATE PROCEDURE p() INSERT INTO t VALUES (13)"});
  add("/*M!999999 SELECT*/ DO SETVAL", "/*M!999999 SELECT 1 FROM DUAL WHERE 0 AND*/ DO SETVAL(s, 500)",
      {"CREATE TABLE t (a INT)", "CREATE SEQUENCE s NOCACHE"});
  return cases;
}

std::vector<Case> reads_with_side_effects() {
  const std::vector<std::string> seq = {"CREATE SEQUENCE s NOCACHE", "CREATE TABLE t2 (a BIGINT)",
                                        "CREATE FUNCTION f() RETURNS BIGINT RETURN NEXTVAL(s)"};
  const std::vector<std::string> probe = {"INSERT INTO t2 VALUES (NEXTVAL(s))"};
  std::vector<Case> cases;
  auto add = [&](std::string name, std::vector<std::string> steps,
                 std::vector<std::string> extra_setup = {}) {
    std::vector<std::string> setup = seq;
    setup.insert(setup.end(), extra_setup.begin(), extra_setup.end());
    cases.push_back({std::move(name), std::move(setup), std::move(steps), probe});
  };
  const std::vector<std::string> g = {
      "CREATE TABLE log1 (a INT)",
      "CREATE FUNCTION g() RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO log1 "
      "VALUES (1); RETURN 1; END"};
  add("SELECT f() (f returns NEXTVAL)", {"SELECT f()"});
  add("SELECT NEXTVAL(s)", {"SELECT NEXTVAL(s)"});
  add("SELECT NEXT VALUE FOR s", {"SELECT NEXT VALUE FOR s"});
  add("SHOW TABLES WHERE SETVAL", {"SHOW TABLES WHERE SETVAL(s, 100)"});
  add("EXPLAIN SELECT NEXTVAL(s)", {"EXPLAIN SELECT NEXTVAL(s)"});
  add("EXPLAIN with a constant subquery calling f()", {"EXPLAIN SELECT 1 FROM DUAL WHERE (SELECT f()) > 0"});
  add("ANALYZE SELECT f()", {"ANALYZE SELECT f()"});
  add("SELECT from a view calling f()", {"SELECT * FROM v"}, {"CREATE VIEW v AS SELECT f() AS x"});
  add("WITH ... SELECT NEXTVAL", {"WITH x AS (SELECT NEXTVAL(s) AS n) SELECT n FROM x"});
  add("VALUES (NEXTVAL(s))", {"VALUES (NEXTVAL(s))"});
  add("SELECT SETVAL", {"SELECT SETVAL(s, 1000)"});
  add("(SELECT f()) UNION", {"(SELECT f()) UNION (SELECT 1)"});
  add("f() in a WHERE", {"SELECT 1 FROM DUAL WHERE f() > 0"});
  add("f() in a derived table", {"SELECT * FROM (SELECT f() AS x) d"});
  add("NEXTVAL over seq_1_to_5", {"SELECT COUNT(NEXTVAL(s)) FROM seq_1_to_5"});
  add("BENCHMARK(3, NEXTVAL(s))", {"SELECT BENCHMARK(3, NEXTVAL(s))"});
  add("SHOW STATUS WHERE NEXTVAL", {"SHOW STATUS WHERE NEXTVAL(s) < 0"});
  add("SELECT g() (g INSERTs)", {"SELECT g()"}, g);
  add("SET STATEMENT tx_read_only=0 FOR SELECT g()", {"SET STATEMENT tx_read_only=0 FOR SELECT g()"}, g);
  add("SET STATEMENT tx_read_only=0 FOR SELECT f()", {"SET STATEMENT tx_read_only=0 FOR SELECT f()"});
  add("SELECT f() INTO @v", {"SELECT f() INTO @v"});
  return cases;
}

std::vector<Case> nondeterminism() {
  const std::vector<std::string> tables = {"CREATE TABLE t (v VARCHAR(200))",
                                           "CREATE TABLE t2 (v VARCHAR(200))", "INSERT INTO t VALUES ('x')"};
  std::vector<Case> cases;
  auto add = [&](std::string name, std::vector<std::string> steps,
                 std::vector<std::string> extra_setup = {}) {
    std::vector<std::string> setup = tables;
    setup.insert(setup.end(), extra_setup.begin(), extra_setup.end());
    cases.push_back({std::move(name), std::move(setup), std::move(steps), {}});
  };
  add("`uuid`()", {"INSERT INTO t VALUES (`uuid`())"});
  add("`rand`()", {"INSERT INTO t VALUES (`rand`())"});
  add("uuid () with a space", {"INSERT INTO t VALUES (uuid ())"});
  add("UUID/**/()", {"INSERT INTO t VALUES (UUID/**/())"});
  add("{fn NOW()}", {"INSERT INTO t VALUES ({fn NOW()})"});
  add("EXECUTE IMMEDIATE NOW(6)", {"EXECUTE IMMEDIATE 'INSERT INTO t VALUES (NOW(6))'"});
  add("EXECUTE IMMEDIATE CONCAT(... SYSDATE ...)",
      {"EXECUTE IMMEDIATE CONCAT('INSERT INTO t VALUES (SYS', 'DATE(6))')"});
  add("EXECUTE IMMEDIATE ... USING `uuid`()",
      {"EXECUTE IMMEDIATE 'INSERT INTO t VALUES (?)' USING `uuid`()"});
  add("SELECT @@port", {"INSERT INTO t SELECT @@port"});
  add("SELECT @@datadir", {"INSERT INTO t SELECT @@datadir"});
  add("GLOBAL_STATUS QUERIES", {"INSERT INTO t2 SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
                                "WHERE VARIABLE_NAME='QUERIES'"});
  add("GLOBAL_VARIABLES PORT", {"INSERT INTO t SELECT VARIABLE_VALUE FROM "
                                "information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME = 'PORT'"});
  add("SESSION_STATUS QUESTIONS",
      {"INSERT INTO t SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = "
       "'QUESTIONS'"});
  add("TABLES.CREATE_TIME",
      {"INSERT INTO t SELECT CREATE_TIME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND "
       "TABLE_NAME = 't'"});
  add("PROCESSLIST",
      {"INSERT INTO t SELECT CONCAT(COUNT(*), '/', MAX(ID)) FROM information_schema.PROCESSLIST"});
  add("`connection_id`()", {"INSERT INTO t VALUES (`connection_id`())"});
  add("SYS_GUID()", {"INSERT INTO t VALUES (SYS_GUID())"});
  add("UUID_SHORT()", {"INSERT INTO t VALUES (UUID_SHORT())"});
  add("ENCRYPT with a random salt", {"INSERT INTO t VALUES (ENCRYPT('secret'))"});
  add("RANDOM_BYTES", {"INSERT INTO t VALUES (HEX(RANDOM_BYTES(8)))"});
  add("`uuid`() over seq_1_to_3", {"INSERT INTO t SELECT `uuid`() FROM seq_1_to_3"});
  add("JSON_OBJECT('u', `uuid`())", {"INSERT INTO t VALUES (JSON_OBJECT('u', `uuid`()))"});
  add("UPDATE ... SET v = `uuid`()", {"UPDATE t SET v = `uuid`()"});
  add("DELETE ... ORDER BY `rand`() LIMIT 1", {"DELETE FROM t ORDER BY `rand`() LIMIT 1"},
      {"INSERT INTO t VALUES ('a'), ('b'), ('c'), ('d'), ('e'), ('f')"});
  add("CREATE TABLE ... DEFAULT (UUID()) SELECT",
      {"CREATE TABLE c (u VARCHAR(36) DEFAULT (UUID()), a INT) SELECT 1 AS a"});
  add("DEFAULT (`uuid`()) then INSERT",
      {"CREATE TABLE d (a INT, u VARCHAR(36) DEFAULT (`uuid`()))", "INSERT INTO d (a) VALUES (1)"});
  add("DEFAULT CURRENT_TIMESTAMP(6) then INSERT",
      {"CREATE TABLE d (a INT, ts TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))",
       "INSERT INTO d (a) VALUES (1)"});
  add("ALTER TABLE ADD COLUMN DEFAULT (`uuid`()) over existing rows",
      {"ALTER TABLE t ADD COLUMN u VARCHAR(36) DEFAULT (`uuid`())"});
  add("trigger SET NEW.u = UUID()",
      {"CREATE TRIGGER tu BEFORE INSERT ON tu_t FOR EACH ROW SET NEW.u = UUID()",
       "INSERT INTO tu_t (a) VALUES (1)"},
      {"CREATE TABLE tu_t (a INT, u VARCHAR(36))"});
  add("trigger BEGIN SET NEW.u = UUID(); END",
      {"CREATE TRIGGER tu BEFORE INSERT ON tu_t FOR EACH ROW BEGIN SET NEW.u = UUID(); END",
       "INSERT INTO tu_t (a) VALUES (1)"},
      {"CREATE TABLE tu_t (a INT, u VARCHAR(36))"});
  add("trigger SET NEW.u = `uuid`()",
      {"CREATE TRIGGER tu BEFORE INSERT ON tu_t FOR EACH ROW SET NEW.u = `uuid`()",
       "INSERT INTO tu_t (a) VALUES (1)"},
      {"CREATE TABLE tu_t (a INT, u VARCHAR(36))"});
  add("procedure INSERTing `uuid`(), CALLed",
      {"CREATE PROCEDURE pu() INSERT INTO t VALUES (`uuid`())", "CALL pu()"});
  add("NOT DETERMINISTIC function returning `uuid`()",
      {"CREATE FUNCTION fu() RETURNS VARCHAR(36) NOT DETERMINISTIC RETURN `uuid`()",
       "INSERT INTO t VALUES (fu())"});
  add("view over `uuid`()", {"CREATE VIEW vu AS SELECT `uuid`() AS u", "INSERT INTO t SELECT u FROM vu"});
  add("procedure running SET GLOBAL", {"CREATE PROCEDURE pg() BEGIN SET GLOBAL max_connect_errors = "
                                       "@@GLOBAL.max_connect_errors + 1; INSERT INTO t "
                                       "SELECT @@GLOBAL.max_connect_errors; END",
                                       "CALL pg()"});
  add("procedure running SET GLOBAL (one statement)",
      {"CREATE PROCEDURE pg1() SET GLOBAL max_connect_errors = 100 + 0 * CONNECTION_ID()", "CALL pg1()"});
  add("BEGIN NOT ATOMIC with UUID()", {"BEGIN NOT ATOMIC INSERT INTO t VALUES (UUID()); END"});
  add("BEGIN NOT ATOMIC DECLARE x DEFAULT `uuid`()",
      {"BEGIN NOT ATOMIC DECLARE x VARCHAR(36) DEFAULT `uuid`(); INSERT INTO t VALUES (x); END"});
  add("BEGIN NOT ATOMIC EXECUTE IMMEDIATE NOW()",
      {"BEGIN NOT ATOMIC EXECUTE IMMEDIATE 'INSERT INTO t VALUES (NOW(6))'; END"});
  add("event without STARTS (starts at the server's now)",
      {"CREATE EVENT ev ON SCHEDULE EVERY 1 HOUR DO INSERT INTO t VALUES ('e')"});
  return cases;
}

std::vector<Case> session_state() {
  std::vector<Case> cases;
  auto add = [&](std::string name, std::vector<std::string> setup, std::vector<std::string> steps,
                 std::vector<std::string> probe = {}) {
    cases.push_back({std::move(name), std::move(setup), std::move(steps), std::move(probe),
                     Expect::refused_or_identical, true});
  };
  const std::vector<std::string> t = {"CREATE TABLE t (a INT)", "CREATE TABLE t2 (a BIGINT)",
                                      "INSERT INTO t VALUES (1)"};
  add("TEMPORARY TABLE shadowing t, the member's connections closed, then INSERT INTO t", t,
      {"CREATE TEMPORARY TABLE t (a INT)", kKillSessions, "INSERT INTO t VALUES (2)",
       "INSERT INTO t VALUES (3)"});
  add("SELECT @x := 5, the member's connections closed, then INSERT @x", t,
      {"SELECT @x := 5", kKillSessions, "INSERT INTO t VALUES (@x)", "INSERT INTO t VALUES (@x)"});
  add("PREPARE, the member's connections closed, then EXECUTE", t,
      {"PREPARE st FROM 'INSERT INTO t VALUES (4)'", kKillSessions, "EXECUTE st", "EXECUTE st"});
  add("TEMPORARY TABLE shadowing t, then INSERT INTO t", t,
      {"CREATE TEMPORARY TABLE t (a INT)", "INSERT INTO t VALUES (2)"},
      {"INSERT INTO t2 SELECT COUNT(*) FROM t"});
  add("CREATE TEMPORARY TABLE ... SELECT, then INSERT ... SELECT from it", t,
      {"CREATE TEMPORARY TABLE tt SELECT a FROM t", "INSERT INTO t SELECT a + 10 FROM tt"});
  add("SET @x = 5, then INSERT @x", t, {"SET @x = 5", "INSERT INTO t VALUES (@x)"});
  add("SELECT @x := 5, then INSERT @x", t, {"SELECT @x := 5", "INSERT INTO t VALUES (@x)"});
  add("SELECT 5 INTO @x, then INSERT @x", t, {"SELECT 5 INTO @x", "INSERT INTO t VALUES (@x)"});
  add("DO @x := 6, then INSERT @x", t, {"DO @x := 6", "INSERT INTO t VALUES (@x)"});
  add("BEGIN NOT ATOMIC SET @y, then INSERT @y", t,
      {"BEGIN NOT ATOMIC SET @y = 3; END", "INSERT INTO t VALUES (@y)"});
  const std::vector<std::string> ai = {"CREATE TABLE ai (id INT AUTO_INCREMENT PRIMARY KEY, a INT)",
                                       "CREATE TABLE t2 (a BIGINT)"};
  add("LAST_INSERT_ID() after an auto-increment insert", ai,
      {"INSERT INTO ai (a) VALUES (1)", "INSERT INTO t2 VALUES (LAST_INSERT_ID())"});
  add("`last_insert_id`() after an auto-increment insert", ai,
      {"INSERT INTO ai (a) VALUES (1)", "INSERT INTO t2 SELECT `last_insert_id`()"});
  add("LAST_INSERT_ID() after an insert through the coordinator", ai,
      {"INSERT INTO t2 VALUES (LAST_INSERT_ID())"});
  add("procedure setting auto_increment_increment, then inserts", ai,
      {"CREATE PROCEDURE ps() SET SESSION auto_increment_increment = 7", "CALL ps()",
       "INSERT INTO ai (a) VALUES (1)", "INSERT INTO ai (a) VALUES (2)"});
  const std::vector<std::string> s = {"CREATE SEQUENCE s NOCACHE", "CREATE TABLE t2 (a BIGINT)"};
  add("LASTVAL(s) after NEXTVAL on the member", s,
      {"SELECT NEXTVAL(s)", "INSERT INTO t2 VALUES (LASTVAL(s))"});
  add("PREVIOUS VALUE FOR s", s, {"INSERT INTO t2 VALUES (PREVIOUS VALUE FOR s)"});
  add("PREPARE then EXECUTE", t, {"PREPARE st FROM 'INSERT INTO t VALUES (3)'", "EXECUTE st"});
  add("PREPARE with UUID() inside the string, then EXECUTE", t,
      {"PREPARE st FROM 'INSERT INTO t2 VALUES (UUID_SHORT())'", "EXECUTE st"});
  add("ROW_COUNT() after a multi-row insert", t,
      {"INSERT INTO t VALUES (5), (6)", "INSERT INTO t2 VALUES (ROW_COUNT())"});
  add("FOUND_ROWS() after a read on the member", t,
      {"SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 0", "INSERT INTO t2 VALUES (FOUND_ROWS())"});
  add("SET sql_mode = '' then an over-long value", {"CREATE TABLE tv (v VARCHAR(3))"},
      {"SET sql_mode = ''", "INSERT INTO tv VALUES ('abcdefgh')"});
  add("SET time_zone then FROM_UNIXTIME", {"CREATE TABLE tz (v VARCHAR(40))"},
      {"SET time_zone = '+05:00'", "INSERT INTO tz VALUES (FROM_UNIXTIME(0))"});
  return cases;
}

std::vector<Case> bookkeeping_tables() {
  std::vector<Case> cases;
  auto add = [&](std::string name, std::vector<std::string> steps, std::vector<std::string> setup = kTable) {
    cases.push_back({std::move(name),
                     std::move(setup),
                     std::move(steps),
                     {"INSERT INTO t VALUES (99)"},
                     Expect::refused});
  };
  add("DELETE FROM distdb_log", {"DELETE FROM distdb_log"});
  add("UPDATE distdb_applied SET seq = seq", {"UPDATE distdb_applied SET seq = seq"});
  add("DELETE FROM `distdb_log` WHERE seq < 0", {"DELETE FROM `distdb_log` WHERE seq < 0"});
  add("DELETE FROM {db}.distdb_log", {"DELETE FROM {db}.distdb_log"});
  add("TRUNCATE TABLE distdb_log", {"TRUNCATE TABLE distdb_log"});
  add("DROP TABLE distdb_meta", {"DROP TABLE distdb_meta"});
  add("INSERT INTO distdb_meta", {"INSERT INTO distdb_meta VALUES ('x', 'y')"});
  add("REPLACE INTO distdb_meta promised_epoch",
      {"REPLACE INTO distdb_meta (name, value) VALUES ('promised_epoch', '0')"});
  add("ALTER TABLE distdb_log", {"ALTER TABLE distdb_log ADD COLUMN x INT"});
  add("RENAME TABLE distdb_log", {"RENAME TABLE distdb_log TO distdb_log_old"});
  add("multi-table DELETE naming distdb_log", {"DELETE t, distdb_log FROM t, distdb_log"});
  add("multi-table UPDATE of distdb_applied",
      {"UPDATE t, distdb_applied SET distdb_applied.seq = distdb_applied.seq + 0 WHERE t.a = 1"});
  add("EXECUTE IMMEDIATE 'DELETE FROM distdb_log'", {"EXECUTE IMMEDIATE 'DELETE FROM distdb_log'"});
  add("/*M!999999 SELECT*/ DELETE FROM distdb_log",
      {"/*M!999999 SELECT 1 FROM DUAL WHERE 0 AND*/ DELETE FROM distdb_log"});
  add("trigger on t deleting from distdb_log",
      {"CREATE TRIGGER tl BEFORE INSERT ON t FOR EACH ROW DELETE FROM distdb_log"});
  add("trigger on distdb_log",
      {"CREATE TRIGGER tl2 AFTER INSERT ON distdb_log FOR EACH ROW INSERT INTO t VALUES (1)"});
  add("procedure deleting from distdb_log, then CALL",
      {"CREATE PROCEDURE pd() DELETE FROM distdb_log", "CALL pd()"});
  add("BEGIN NOT ATOMIC DELETE FROM distdb_log", {"BEGIN NOT ATOMIC DELETE FROM distdb_log; END"});
  add("DELETE through an updatable view of distdb_log", {"DELETE FROM vlog"},
      {"CREATE TABLE t (a INT)", "CREATE VIEW vlog AS SELECT * FROM distdb_log"});
  add("UPDATE distdb_meta through a stored function", {"SELECT fm()"},
      {"CREATE TABLE t (a INT)",
       "CREATE FUNCTION fm() RETURNS INT MODIFIES SQL DATA BEGIN UPDATE distdb_meta SET value = "
       "value WHERE 0; DELETE FROM distdb_log; RETURN 1; END"});
  return cases;
}

std::vector<Case> compound_statements() {
  std::vector<Case> cases;
  auto add = [&](std::string name, std::vector<std::string> steps, std::vector<std::string> setup) {
    cases.push_back({std::move(name), std::move(setup), std::move(steps), {}, Expect::accepted});
  };
  const std::vector<std::string> ta = {"CREATE TABLE t (a INT, b INT)", "CREATE TABLE audit (a INT)"};
  add("BEFORE INSERT trigger with BEGIN ... END, then INSERT",
      {"CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN INSERT INTO audit VALUES (NEW.a); SET NEW.b "
       "= NEW.a * "
       "2; END",
       "INSERT INTO t (a) VALUES (21)"},
      ta);
  add("procedure with two INSERTs, then CALL",
      {"CREATE PROCEDURE p() BEGIN INSERT INTO t VALUES (1); INSERT INTO t VALUES (2); END", "CALL p()"},
      {"CREATE TABLE t (a INT)"});
  add("BEGIN NOT ATOMIC with two INSERTs",
      {"BEGIN NOT ATOMIC INSERT INTO t VALUES (3); INSERT INTO t VALUES (4); END"},
      {"CREATE TABLE t (a INT)"});
  add("function with DECLARE, used by an INSERT",
      {"CREATE FUNCTION fx(x INT) RETURNS INT DETERMINISTIC BEGIN DECLARE y INT DEFAULT x * 2; RETURN y + 1; "
       "END",
       "INSERT INTO t VALUES (fx(20))"},
      {"CREATE TABLE t (a INT)"});
  add("procedure with a WHILE loop, then CALL",
      {"CREATE PROCEDURE pw() BEGIN DECLARE i INT DEFAULT 0; WHILE i < 5 DO INSERT INTO t VALUES (i); SET i "
       "= i + 1; "
       "END WHILE; END",
       "CALL pw()"},
      {"CREATE TABLE t (a INT)"});
  add("BEGIN NOT ATOMIC with a labelled LOOP and LEAVE",
      {"BEGIN NOT ATOMIC DECLARE i INT DEFAULT 0; lbl: LOOP SET i = i + 1; IF i > 3 THEN LEAVE lbl; END IF; "
       "INSERT "
       "INTO t VALUES (i); END LOOP lbl; END"},
      {"CREATE TABLE t (a INT)"});
  add("procedure whose strings hold ';', END and BEGIN",
      {"CREATE PROCEDURE pq() BEGIN INSERT INTO tv VALUES ('a;b END; c'); INSERT INTO tv VALUES (\"BEGIN\"); "
       "END",
       "CALL pq()"},
      {"CREATE TABLE tv (v VARCHAR(20))"});
  add("procedure with comments holding ';' and END",
      {"CREATE PROCEDURE pc() BEGIN -- a comment; with END;\n INSERT INTO t VALUES (5); /* ; END; */ INSERT "
       "INTO t "
       "VALUES (6); # END;\n END",
       "CALL pc()"},
      {"CREATE TABLE t (a INT)"});
  add("procedure with IF and CASE, CALLed twice",
      {"CREATE PROCEDURE pi(IN x INT) BEGIN IF x > 0 THEN INSERT INTO t VALUES (x); ELSE INSERT INTO t "
       "VALUES (-x); "
       "END IF; CASE x WHEN 1 THEN INSERT INTO t VALUES (100); ELSE BEGIN END; END CASE; END",
       "CALL pi(1)", "CALL pi(-2)"},
      {"CREATE TABLE t (a INT)"});
  add("AFTER UPDATE trigger with IF, then UPDATE",
      {"CREATE TRIGGER tu AFTER UPDATE ON t FOR EACH ROW BEGIN IF NEW.a <> OLD.a THEN INSERT INTO audit "
       "VALUES "
       "(OLD.a); END IF; END",
       "UPDATE t SET a = a + 1"},
      {"CREATE TABLE t (a INT, b INT)", "CREATE TABLE audit (a INT)", "INSERT INTO t (a) VALUES (1), (2)"});
  add("nested BEGIN ... END blocks",
      {"BEGIN NOT ATOMIC BEGIN INSERT INTO t VALUES (7); END; BEGIN INSERT INTO t VALUES (8); END; END"},
      {"CREATE TABLE t (a INT)"});
  add("procedure with a CONTINUE HANDLER",
      {"CREATE PROCEDURE ph() BEGIN DECLARE CONTINUE HANDLER FOR SQLEXCEPTION INSERT INTO audit VALUES (-1); "
       "INSERT "
       "INTO nosuch VALUES (1); INSERT INTO t (a) VALUES (9); END",
       "CALL ph()"},
      ta);
  add("BEGIN NOT ATOMIC with REPEAT",
      {"BEGIN NOT ATOMIC DECLARE i INT DEFAULT 0; REPEAT SET i = i + 1; INSERT INTO t VALUES (i); UNTIL i >= "
       "3 END "
       "REPEAT; END"},
      {"CREATE TABLE t (a INT)"});
  add("BEGIN NOT ATOMIC with FOR",
      {"BEGIN NOT ATOMIC FOR i IN 1..3 DO INSERT INTO t VALUES (i); END FOR; END"},
      {"CREATE TABLE t (a INT)"});
  add("procedure with a cursor, then CALL",
      {"CREATE PROCEDURE pcur() BEGIN DECLARE done INT DEFAULT 0; DECLARE v INT; DECLARE c CURSOR FOR SELECT "
       "a FROM "
       "t ORDER BY a; DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1; OPEN c; rd: LOOP FETCH c INTO v; "
       "IF done "
       "THEN LEAVE rd; END IF; INSERT INTO audit VALUES (v); END LOOP; CLOSE c; END",
       "CALL pcur()"},
      {"CREATE TABLE t (a INT, b INT)", "CREATE TABLE audit (a INT)", "INSERT INTO t (a) VALUES (1), (2)"});
  return cases;
}

// Compound statements that hold something else worth refusing: either
// answer will do, as long as the members end identical.
std::vector<Case> compound_edge_cases() {
  std::vector<Case> cases;
  auto add = [&](std::string name, std::string sql) {
    cases.push_back(
        {std::move(name), {"CREATE TABLE t (a INT)", "INSERT INTO t VALUES (1)"}, {std::move(sql)}, {}});
  };
  add("COMMIT inside BEGIN NOT ATOMIC",
      "BEGIN NOT ATOMIC INSERT INTO t VALUES (5); COMMIT; INSERT INTO t VALUES (6); END");
  add("ROLLBACK inside BEGIN NOT ATOMIC", "BEGIN NOT ATOMIC INSERT INTO t VALUES (5); ROLLBACK; END");
  add("CREATE TABLE inside BEGIN NOT ATOMIC",
      "BEGIN NOT ATOMIC CREATE TABLE x (a INT); INSERT INTO x VALUES (1); END");
  add("a compound statement followed by another statement",
      "BEGIN NOT ATOMIC INSERT INTO t VALUES (1); END; DELETE FROM t");
  add("IF over a subquery inside BEGIN NOT ATOMIC",
      "BEGIN NOT ATOMIC IF (SELECT COUNT(*) FROM t) > 0 THEN DELETE FROM t; END IF; END");
  cases.push_back(
      {"procedure with START TRANSACTION ... COMMIT, then CALL",
       {"CREATE TABLE t (a INT)"},
       {"CREATE PROCEDURE pt() BEGIN START TRANSACTION; INSERT INTO t VALUES (1); COMMIT; END", "CALL pt()"},
       {}});
  return cases;
}

}  // namespace

TEST_CASE("fidelity: executable comments") {
  run_group("comments", "executable comments", executable_comments());
}

// Whether this run's nodes ship rows (storage.replication "rows", set by
// tests/meson.build for the "-rows" runs).
bool rows_shipped() {
  const char* mode = std::getenv("DISTDB_TEST_REPLICATION");
  return mode != nullptr && std::string(mode) == "rows";
}

// Writes whose values each member would compute for itself. Shipped as
// rows they must be accepted and converge; as statements, refused (or
// identical).
std::vector<Case> values_computed_once() {
  const Expect expect = rows_shipped() ? Expect::accepted : Expect::refused_or_identical;
  const std::vector<std::string> table = {
      "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, u CHAR(36), r DOUBLE, ts DATETIME(6), n BIGINT)"};
  std::vector<Case> cases;
  auto add = [&](std::string name, std::vector<std::string> steps,
                 std::vector<std::string> extra_setup = {}) {
    std::vector<std::string> setup = table;
    setup.insert(setup.end(), extra_setup.begin(), extra_setup.end());
    cases.push_back({std::move(name), std::move(setup), std::move(steps), {}, expect});
  };
  add("UUID(), RAND(), NOW(6)",
      {"INSERT INTO t (u, r, ts) VALUES (UUID(), RAND(), NOW(6)), (UUID(), RAND(), NOW(6))"});
  add("backticked `uuid`() and `rand`()", {"INSERT INTO t (u, r) VALUES (`uuid`(), `rand`())"});
  add("UPDATE every row with RAND()",
      {"INSERT INTO t (n) VALUES (1), (2), (3)", "UPDATE t SET r = RAND(), u = UUID()"});
  add("SYSDATE(6), UUID_SHORT(), CONNECTION_ID()",
      {"INSERT INTO t (ts, n, r) VALUES (SYSDATE(6), UUID_SHORT(), CONNECTION_ID())"});
  add("a trigger setting UUID()",
      {"CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.u = UUID(), NEW.ts = NOW(6)",
       "INSERT INTO t (n) VALUES (1), (2)"});
  add("a procedure inserting RAND()",
      {"CREATE PROCEDURE p() BEGIN INSERT INTO t (r, u) VALUES (RAND(), UUID()); END", "CALL p()",
       "CALL p()"});
  add("NEXTVAL into a column, then the sequence's next value",
      {"INSERT INTO t (n) VALUES (NEXTVAL(s)), (NEXTVAL(s))", "INSERT INTO t (n) VALUES (NEXTVAL(s))"},
      {"CREATE SEQUENCE s NOCACHE"});
  return cases;
}

TEST_CASE("fidelity: values each member would compute itself are computed once") {
  run_group("once", rows_shipped() ? "computed once (rows: must be accepted)" : "computed once (statements)",
            values_computed_once());
}

TEST_CASE("fidelity: reads with side effects") {
  run_group("reads", "reads with side effects", reads_with_side_effects());
}

TEST_CASE("fidelity: non-determinism spelled past a name list") {
  // max_connect_errors is changed by one case (a procedure running SET
  // GLOBAL): put back what each server had.
  DbInspector in;
  std::vector<std::string> saved;
  for (std::size_t i = 0; i < in.size(); ++i) {
    auto r = in.execute(i, "SELECT @@GLOBAL.max_connect_errors");
    saved.push_back(r && !r->rows.empty() ? render_value(r->rows[0][0]) : "100");
  }
  run_group("nondet", "non-determinism", nondeterminism());
  for (std::size_t i = 0; i < in.size(); ++i)
    (void)in.execute(i, "SET GLOBAL max_connect_errors = " + saved[i]);
}

TEST_CASE("fidelity: session state on the executors' connections") {
  run_group("session", "session state", session_state());
}

TEST_CASE("fidelity: distdb's own tables are refused") {
  run_group("books", "distdb's own tables (must be refused)", bookkeeping_tables());
}

TEST_CASE("fidelity: compound statements are accepted and converge") {
  run_group("compound", "compound statements (must be accepted)", compound_statements());
}

TEST_CASE("fidelity: compound statements holding something else") {
  run_group("edge", "compound statements, edge cases", compound_edge_cases());
}

TEST_CASE("fidelity: a statement answered as a read changes nothing on the member that answered it") {
  Summary summary{"reads change nothing", {}, {}, 0};
  Harness h("readcheck");
  const std::vector<std::string> setup = {
      "CREATE TABLE t (a INT)",
      "INSERT INTO t VALUES (1), (2)",
      "CREATE TABLE t2 (a BIGINT)",
      "CREATE SEQUENCE s NOCACHE",
      "CREATE FUNCTION f() RETURNS BIGINT RETURN NEXTVAL(s)",
      "CREATE VIEW v AS SELECT f() AS x",
      "CREATE TABLE log1 (a INT)",
      "CREATE FUNCTION g() RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO log1 VALUES (1); RETURN 1; END",
      "CREATE PROCEDURE p() INSERT INTO t VALUES (13)",
  };
  for (const std::string& sql : setup) {
    const auto r = h.send(kCoordinator, sql);
    if (!is_ok(r)) summary.notes.push_back("setup refused: " + sql + " -> " + describe(r));
  }
  std::string why;
  REQUIRE_MESSAGE(h.inspector().wait_for_same_position(h.db(), kConvergeTimeout, &why), why);
  REQUIRE_MESSAGE(fingerprint_diff(h.inspector().fingerprint_all(h.db())).empty(),
                  fingerprint_diff(h.inspector().fingerprint_all(h.db())));

  const std::vector<std::string> reads = {
      "SELECT * FROM t",
      "SELECT 1",
      "SHOW TABLES",
      "SHOW CREATE TABLE t",
      "DESCRIBE t",
      "EXPLAIN SELECT * FROM t",
      "SELECT f()",
      "SELECT NEXTVAL(s)",
      "SELECT NEXT VALUE FOR s",
      "SELECT LASTVAL(s)",
      "SHOW TABLES WHERE SETVAL(s, 100)",
      "EXPLAIN SELECT NEXTVAL(s)",
      "EXPLAIN SELECT 1 FROM DUAL WHERE (SELECT f()) > 0",
      "DESC SELECT 1 FROM DUAL WHERE (SELECT f()) > 0",
      "ANALYZE SELECT f()",
      "SELECT * FROM v",
      "WITH x AS (SELECT NEXTVAL(s) AS n) SELECT n FROM x",
      "VALUES (NEXTVAL(s))",
      "(SELECT f()) UNION (SELECT 1)",
      "SELECT * FROM (SELECT f() AS x) d",
      "SELECT COUNT(NEXTVAL(s)) FROM seq_1_to_5",
      "SELECT BENCHMARK(3, NEXTVAL(s))",
      "SHOW STATUS WHERE NEXTVAL(s) < 0",
      "SELECT g()",
      "SET STATEMENT tx_read_only=0 FOR SELECT g()",
      "SET STATEMENT tx_read_only=0 FOR SELECT f()",
      "SELECT 1 /*!99999 ; DELETE FROM t */",
      "/*!99999 SELECT 1 FROM DUAL WHERE 0 AND */ DELETE FROM t WHERE a = 1",
      "/*M!999999 SELECT 1 FROM DUAL WHERE 0 AND*/ INSERT INTO t VALUES (7)",
      "/*!99999 SELECT 1 /* nested */ FROM DUAL WHERE 0 AND */ INSERT INTO t VALUES (10)",
      "/*M!999999 SELECT 1 FROM DUAL WHERE 0 AND*/ CALL p()",
      "/*M!999999 VALUES (1) */ UPDATE t SET a = a + 1",
      "/*M!999999 DESCRIBE */ INSERT INTO t VALUES (8)",
      "/*M!999999 SHOW TABLES WHERE 0 AND */ INSERT INTO t VALUES (9)",
      "/*M!999999 SELECT 1 FROM DUAL WHERE 0 AND*/ EXECUTE IMMEDIATE 'INSERT INTO t VALUES (11)'",
  };
  DbInspector& in = h.inspector();
  for (const std::string& sql : reads) {
    for (int member = 1; member <= 3; ++member) {
      ++summary.runs;
      const std::size_t server = static_cast<std::size_t>(member - 1);
      const auto pos_before = in.applied(server, h.db());
      const auto all_before = in.fingerprint_all(h.db());
      const DbFingerprint& before = all_before.at(server);
      const auto r = h.send(member, sql);
      const auto pos_after = in.applied(server, h.db());
      const std::string where = "'" + sql + "' @ member " + std::to_string(member);
      // A write's reply comes once a majority has committed: this member may
      // apply it a moment after the position above was read. A reply that
      // says it was replicated is a write, whatever the position showed.
      const bool replicated = r.ok() && r->message.find("replicated to the cluster") != std::string::npos;
      if (!replicated && pos_before && pos_after && *pos_before == *pos_after) {
        // No log entry: answered as a read.
        const std::string diff =
            fingerprint_diff({before, in.fingerprint(server, h.db())}, {"before", "after"});
        if (!diff.empty()) {
          summary.failures.push_back(
              where + ": answered as a read (" + describe(r) +
              ") yet changed the member's database: " + diff.substr(0, diff.find('\n')));
        }
        CHECK_MESSAGE(diff.empty(), "'" << sql << "' sent to " << member_label(member)
                                        << ", answered as a read (" << describe(r)
                                        << "), changed that member's database " << h.db() << " (server "
                                        << member << "):\n"
                                        << diff);
      } else {
        // It went down the write path: then it must not make the members
        // differ (more than an earlier read may already have made them).
        const bool same = in.wait_for_same_position(h.db(), kConvergeTimeout, &why);
        std::string diff = same ? fingerprint_diff(in.fingerprint_all(h.db())) : why;
        if (diff == fingerprint_diff(all_before)) diff.clear();
        if (!diff.empty())
          summary.failures.push_back(where + ": replicated as a write, members differ: " + diff);
        CHECK_MESSAGE(diff.empty(), "'" << sql << "' sent to " << member_label(member)
                                        << " was replicated as a write (" << describe(r)
                                        << ") and the members differ:\n"
                                        << diff);
      }
    }
  }
}

// A member whose database keeps refusing what it must apply (here: a row
// locked by someone else, with short lock timeouts) stops answering reads as
// if it were current, and once the database lets it, catches up (by entries
// or a full copy) to the same data as the others.
TEST_CASE("fidelity: a member that cannot apply an entry refuses reads, then catches up") {
  DbInspector servers;
  REQUIRE(servers.size() >= 1);
  // Short lock waits on member 1's server, put back whatever happens.
  struct Timeouts {
    DbInspector& in;
    std::string innodb = "50", lock = "31536000";
    explicit Timeouts(DbInspector& i) : in(i) {
      auto rs = in.execute(0, "SELECT @@GLOBAL.innodb_lock_wait_timeout, @@GLOBAL.lock_wait_timeout");
      if (rs && !rs->rows.empty()) {
        innodb = render_value(rs->rows[0][0]);
        lock = render_value(rs->rows[0][1]);
      }
      (void)in.execute(0, "SET GLOBAL innodb_lock_wait_timeout = 1, GLOBAL lock_wait_timeout = 2");
    }
    ~Timeouts() {
      (void)in.execute(
          0, "SET GLOBAL innodb_lock_wait_timeout = " + innodb + ", GLOBAL lock_wait_timeout = " + lock);
    }
  } timeouts(servers);

  Harness h("stuck");
  for (const std::string sql :
       {"CREATE TABLE t (a INT PRIMARY KEY, v INT)", "INSERT INTO t VALUES (1, 0), (2, 0)"}) {
    REQUIRE_MESSAGE(is_ok(h.send(kCoordinator, sql)), sql);
  }
  REQUIRE(h.inspector().wait_for_same_position(h.db(), kConvergeTimeout));

  // Someone else holds row 1 on member 1's server.
  auto holder = open_storage(StorageConfig{StorageBackend::mariadb, "", mariadb_db_config(0, h.db()), 1});
  REQUIRE(holder.ok());
  REQUIRE((*holder)->begin("distdb_test_lock_holder").ok());
  REQUIRE((*holder)->execute_in("distdb_test_lock_holder", "SELECT v FROM t WHERE a = 1 FOR UPDATE").ok());

  const auto update = h.send(kCoordinator, "UPDATE t SET v = v + 1 WHERE a = 1");
  CHECK_MESSAGE(is_ok(update), describe(update));  // members 2 and 3 are a majority

  // Member 1 fails to apply it, again and again: it says so instead of
  // answering reads from data it knows to be behind.
  std::string refusal;
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (refusal.empty() && std::chrono::steady_clock::now() < until) {
    const auto read = h.cluster().query(1, "SELECT v FROM t WHERE a = 2");
    if (read && read->status == ReplyStatus::error && read->error &&
        read->error->kind == ErrorKind::unavailable) {
      refusal = read->message;
    }
    if (refusal.empty()) std::this_thread::sleep_for(50ms);
  }
  REQUIRE_MESSAGE(!refusal.empty(), "member 1 kept answering reads: " << h.cluster().log(1));
  CHECK(refusal.find("behind the cluster") != std::string::npos);

  // Released: it catches up and serves reads of the same data again.
  REQUIRE((*holder)->rollback("distdb_test_lock_holder").ok());
  holder->reset();
  std::string why;
  REQUIRE_MESSAGE(h.inspector().wait_for_same_position(h.db(), 60s, &why), why);
  const auto prints = h.inspector().fingerprint_all(h.db());
  CHECK_MESSAGE(fingerprint_diff(prints).empty(), fingerprint_diff(prints));
  CHECK(h.cluster().wait_for_value(1, "SELECT v FROM t WHERE a = 1", 1, 30s));
}

namespace {

// The AUTO_INCREMENT counter of `table` on server `index`.
std::string counter(DbInspector& in, std::size_t index, const std::string& db, const std::string& table) {
  auto rs = in.execute(index, "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = '" + db +
                                  "' AND TABLE_NAME = '" + table + "'");
  if (!rs || rs->rows.empty()) return "?";
  return render_value(rs->rows[0][0]);
}

bool log_mentions(const ClusterProcesses& cluster, int id, const std::string& text) {
  return cluster.log(id).find(text) != std::string::npos;
}

}  // namespace

// Data changed behind distdb's back on one member (here: directly on its
// server) is found by a CHECK, and that member is repaired by a full copy.
TEST_CASE("fidelity: a checksum finds a member that differs, and a full copy repairs it") {
  Harness h("check");
  for (const std::string sql : {"CREATE TABLE t (a INT PRIMARY KEY, v INT)", "INSERT INTO t VALUES (1, 1), (2, 2)",
                                "CREATE VIEW w AS SELECT a FROM t"}) {
    REQUIRE_MESSAGE(is_ok(h.send(kCoordinator, sql)), sql);
  }
  REQUIRE(h.inspector().wait_for_same_position(h.db(), kConvergeTimeout));
  // The members agree: the check says so, and nobody leaves the view.
  const auto agreed = h.cluster().check(1);  // through a member that is not the coordinator
  REQUIRE_MESSAGE(is_ok(agreed), describe(agreed));
  CHECK(agreed->message.rfind("CHECKSUM ", 0) == 0);
  REQUIRE(agreed->result.rows.size() == 1);
  const std::string digest = std::get<std::string>(agreed->result.rows[0][0]);
  CHECK(digest.size() == 32);
  CHECK(is_ok(h.cluster().check(2)));
  CHECK_FALSE(log_mentions(h.cluster(), 1, "DIVERGED"));

  // Someone changes member 2's rows directly.
  REQUIRE(h.inspector().execute(1, "UPDATE `" + h.db() + "`.t SET v = 99 WHERE a = 2").ok());
  REQUIRE(h.inspector().execute(1, "CREATE TABLE `" + h.db() + "`.stray (x INT)").ok());
  CHECK(!fingerprint_diff(h.inspector().fingerprint_all(h.db())).empty());
  const auto found = h.cluster().check(kCoordinator);
  REQUIRE_MESSAGE(is_ok(found), describe(found));
  CHECK(std::get<std::string>(found->result.rows.at(0).at(0)) == digest);  // the coordinator's data did not change

  // Member 2 left the view, found its checksum differs from the log's when
  // it caught up, and took a full copy: the three databases are the same again.
  const auto until = std::chrono::steady_clock::now() + 60s;
  std::string diff = "not compared";
  while (std::chrono::steady_clock::now() < until) {
    if (h.inspector().wait_for_same_position(h.db(), 2s)) {
      diff = fingerprint_diff(h.inspector().fingerprint_all(h.db()));
      if (diff.empty()) break;
    }
    std::this_thread::sleep_for(200ms);
  }
  CHECK_MESSAGE(diff.empty(), diff);
  // Said loudly by the coordinator, and member 2 installed a full copy.
  CHECK(log_mentions(h.cluster(), kCoordinator, "DIVERGED: the outcomes of node 2"));
  CHECK(log_mentions(h.cluster(), 2, "Installed a full copy"));
  CHECK(is_ok(h.cluster().check(2)));
}

// An auto-increment counter ahead on one member (as an entry it prepared
// and then rolled back leaves it) gives its next automatic id away at once:
// the outcomes differ, the member leaves the view, and when it replays the
// entry the logged id does not match, so it takes a full copy, counter
// included.
TEST_CASE("fidelity: an auto-increment counter ahead on one member is found and repaired") {
  Harness h("autoinc");
  REQUIRE(is_ok(h.send(kCoordinator, "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")));
  REQUIRE(is_ok(h.send(kCoordinator, "INSERT INTO t (v) VALUES (1)")));
  REQUIRE(h.inspector().wait_for_same_position(h.db(), kConvergeTimeout));
  REQUIRE(h.inspector().execute(0, "ALTER TABLE `" + h.db() + "`.t AUTO_INCREMENT = 50").ok());
  const auto insert = h.send(kCoordinator, "INSERT INTO t (v) VALUES (2)");
  REQUIRE_MESSAGE(is_ok(insert), describe(insert));
  CHECK(insert->result.last_insert_id == 2);

  if (rows_shipped()) {
    // The coordinator's row, with its id, is what member 1 stores: its
    // counter ahead changes nothing, and needs no repair.
    REQUIRE(h.inspector().wait_for_same_position(h.db(), kConvergeTimeout));
    CHECK(fingerprint_diff(h.inspector().fingerprint_all(h.db())).empty());
    REQUIRE(is_ok(h.send(kCoordinator, "INSERT INTO t (v) VALUES (3)")));
    REQUIRE(h.inspector().wait_for_same_position(h.db(), kConvergeTimeout));
    CHECK(fingerprint_diff(h.inspector().fingerprint_all(h.db())).empty());
    return;
  }
  const auto until = std::chrono::steady_clock::now() + 60s;
  std::string diff = "not compared";
  while (std::chrono::steady_clock::now() < until) {
    if (h.inspector().wait_for_same_position(h.db(), 2s)) {
      diff = fingerprint_diff(h.inspector().fingerprint_all(h.db()));
      if (diff.empty() && counter(h.inspector(), 0, h.db(), "t") == counter(h.inspector(), 2, h.db(), "t")) break;
    }
    std::this_thread::sleep_for(200ms);
  }
  CHECK_MESSAGE(diff.empty(), diff << "\n" << h.cluster().log(1) << "\n=== node 3\n" << h.cluster().log(3));
  CHECK(counter(h.inspector(), 0, h.db(), "t") == counter(h.inspector(), 2, h.db(), "t"));
  // Later inserts take the same ids everywhere.
  REQUIRE(is_ok(h.send(kCoordinator, "INSERT INTO t (v) VALUES (3)")));
  REQUIRE(h.inspector().wait_for_same_position(h.db(), kConvergeTimeout));
  CHECK(fingerprint_diff(h.inspector().fingerprint_all(h.db())).empty());
}
