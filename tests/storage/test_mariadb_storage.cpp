// The MariaDB backend against a real server (server 0 of DISTDB_TEST_MARIADB).
// Some cases kill and restart that server through DISTDB_TEST_MARIADB_CTL.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include <mysql.h>

#include "distdb/storage.hpp"
#include "mariadb_env.hpp"
#include "storage/mariadb_storage.hpp"

using namespace distdb;
using distdb::test::mariadb_ctl;
using distdb::test::mariadb_db_config;

namespace {

const std::string kDb = "distdb_storage_test";

std::unique_ptr<Storage> open_db(const std::string& database = kDb) {
  auto s = open_mariadb_storage(mariadb_db_config(0, database));
  REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
  return std::move(s).value();
}

ResultSet must(Result<ResultSet> r) {
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  return std::move(r).value();
}

void must_ok(const Status& st) { REQUIRE_MESSAGE(st.ok(), (st.ok() ? "" : st.error().message)); }

std::int64_t count(Storage& s, const std::string& table) {
  auto rs = must(s.execute("SELECT COUNT(*) FROM " + table));
  return std::get<std::int64_t>(rs.rows.at(0).at(0));
}

// Polls `done` until it holds or the deadline passes.
bool wait_for(const std::function<bool()>& done, std::chrono::seconds deadline = std::chrono::seconds(30)) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

// A fresh test database with table t, created once per test case.
std::unique_ptr<Storage> fresh() {
  auto admin = open_db("");
  // Undecided XA transactions left by an earlier, failed run hold locks.
  const auto leftovers = admin->recover();
  REQUIRE(leftovers.ok());
  for (const auto& id : *leftovers) (void)admin->rollback(id);
  must(admin->execute("DROP DATABASE IF EXISTS " + kDb));
  must(admin->execute("CREATE DATABASE " + kDb));
  auto s = open_db();
  must(s->execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(32))"));
  return s;
}

}  // namespace

TEST_CASE("typed round trip") {
  auto s = fresh();
  must(s->execute(
      "CREATE TABLE types (u BIGINT UNSIGNED, i BIGINT, d DECIMAL(20,6), f DOUBLE, s VARCHAR(10), n VARCHAR(10), "
      "vb VARBINARY(300), b BLOB, dt DATETIME)"));
  std::string hex = "X'";
  Blob all;
  for (int i = 0; i < 256; ++i) {
    const char* digits = "0123456789ABCDEF";
    hex += digits[i / 16];
    hex += digits[i % 16];
    all.bytes.push_back(static_cast<std::uint8_t>(i));
  }
  hex += "'";
  must(s->execute("INSERT INTO types VALUES (18446744073709551615, -9223372036854775808, 12345678901234.123456, "
                  "2.5, '', NULL, " + hex + ", " + hex + ", '2024-02-29 13:14:15')"));
  auto rs = must(s->execute("SELECT u, i, d, f, s, n, vb, b, dt FROM types"));
  REQUIRE(rs.columns.size() == 9);
  CHECK(rs.columns[0] == "u");
  REQUIRE(rs.rows.size() == 1);
  const Row& row = rs.rows[0];
  CHECK(std::get<std::string>(row[0]) == "18446744073709551615");
  CHECK(std::get<std::int64_t>(row[1]) == INT64_MIN);
  CHECK(std::get<std::string>(row[2]) == "12345678901234.123456");
  CHECK(std::get<double>(row[3]) == 2.5);
  CHECK(std::get<std::string>(row[4]).empty());
  CHECK(is_null(row[5]));
  CHECK(std::get<Blob>(row[6]) == all);
  CHECK(std::get<Blob>(row[7]) == all);
  CHECK(std::get<std::string>(row[8]) == "2024-02-29 13:14:15");
  // A small unsigned value is still an integer.
  auto small = must(s->execute("SELECT CAST(7 AS UNSIGNED)"));
  CHECK(std::get<std::int64_t>(small.rows.at(0).at(0)) == 7);
}

TEST_CASE("columns, rows_affected, last_insert_id") {
  auto s = fresh();
  auto empty = must(s->execute("SELECT id, v FROM t"));
  CHECK(empty.columns == std::vector<std::string>{"id", "v"});
  CHECK(empty.rows.empty());
  auto ins = must(s->execute("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')"));
  CHECK_FALSE(ins.has_rows());
  CHECK(ins.rows_affected == 3);
  auto upd = must(s->execute("UPDATE t SET v = 'z' WHERE id >= 2"));
  CHECK(upd.rows_affected == 2);
  must(s->execute("CREATE TABLE ai (id INT AUTO_INCREMENT PRIMARY KEY, x INT)"));
  must(s->execute("INSERT INTO ai (x) VALUES (1)"));
  auto second = must(s->execute("INSERT INTO ai (x) VALUES (2)"));
  CHECK(second.last_insert_id == 2);
}

TEST_CASE("SQL errors carry the server's code") {
  auto s = fresh();
  auto syntax = s->execute("SELEC 1");
  REQUIRE_FALSE(syntax.ok());
  CHECK(syntax.error().kind == ErrorKind::sql);
  CHECK(syntax.error().code == 1064);
  auto missing = s->execute("SELECT * FROM nope");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == 1146);
  must(s->execute("INSERT INTO t VALUES (1, 'a')"));
  auto dup = s->execute("INSERT INTO t VALUES (1, 'b')");
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.error().kind == ErrorKind::sql);
  CHECK(dup.error().code == 1062);
  CHECK(dup.error().message.find("Duplicate") != std::string::npos);
  // Several statements in one call are refused (the session's
  // multi-statement mode, on for execute_batch_in(), is off for such text).
  auto two = s->execute("INSERT INTO t VALUES (5, 'x'); INSERT INTO t VALUES (6, 'y')");
  REQUIRE_FALSE(two.ok());
  CHECK(two.error().code == 1064);
  CHECK(count(*s, "t") == 1);
}

TEST_CASE("a batch runs like one statement after another and stops at the first failure") {
  auto s = fresh();
  must(s->execute("CREATE TABLE ai (id INT AUTO_INCREMENT PRIMARY KEY, x INT UNIQUE)"));
  must_ok(s->begin("batch-1"));
  const std::vector<std::string_view> first = {
      "INSERT INTO ai (x) VALUES (10)",
      "INSERT INTO ai (x) VALUES (20), (30)",
      "UPDATE ai SET x = x + 1 WHERE x >= 20;",
      "INSERT INTO ai (x) VALUES (10)",  // duplicate: fails, and the server stops here
      "INSERT INTO ai (x) VALUES (40)",
  };
  auto results = s->execute_batch_in("batch-1", first);
  REQUIRE(results.size() == 4);
  CHECK(must(std::move(results[0])).last_insert_id == 1);
  CHECK(must(std::move(results[1])).rows_affected == 2);
  CHECK(must(std::move(results[2])).rows_affected == 2);
  REQUIRE_FALSE(results[3].ok());
  CHECK(results[3].error().kind == ErrorKind::sql);
  CHECK(results[3].error().code == 1062);
  // The transaction goes on after the failed statement.
  const std::vector<std::string_view> rest = {"INSERT INTO ai (x) VALUES (40)", "DELETE FROM ai WHERE x = 21"};
  auto more = s->execute_batch_in("batch-1", rest);
  REQUIRE(more.size() == 2);
  CHECK(must(std::move(more[0])).last_insert_id == 5);  // 4 went to the failed insert
  CHECK(must(std::move(more[1])).rows_affected == 1);
  must_ok(s->prepare("batch-1"));
  must_ok(s->commit("batch-1"));
  auto rows = must(s->execute("SELECT x FROM ai ORDER BY x"));
  REQUIRE(rows.rows.size() == 3);
  CHECK(std::get<std::int64_t>(rows.rows[0][0]) == 10);
  CHECK(std::get<std::int64_t>(rows.rows[1][0]) == 31);
  CHECK(std::get<std::int64_t>(rows.rows[2][0]) == 40);
}

TEST_CASE("a batch never lets a client's text run as two statements") {
  auto s = fresh();
  must_ok(s->begin("batch-2"));
  // Each of these would split differently if joined as it is: they run
  // alone, with multi-statements off, and the server refuses them whole.
  const std::vector<std::string_view> hostile = {
      "INSERT INTO t VALUES (1, 'a')",
      "INSERT INTO t VALUES (2, 'b'); INSERT INTO t VALUES (3, 'c')",
  };
  auto results = s->execute_batch_in("batch-2", hostile);
  REQUIRE(results.size() == 2);
  CHECK(results[0].ok());
  REQUIRE_FALSE(results[1].ok());
  CHECK(results[1].error().code == 1064);
  // A string left open would swallow the next statement if joined; alone it
  // is a syntax error, and the statement after it runs by itself.
  const std::vector<std::string_view> open_string = {
      "INSERT INTO t VALUES (4, 'd\\'); INSERT INTO t VALUES (5, 'e') -- ')",
      "INSERT INTO t VALUES (6, 'f')",
  };
  auto second = s->execute_batch_in("batch-2", open_string);
  REQUIRE(second.size() == 1);
  CHECK_FALSE(second[0].ok());
  auto third = s->execute_batch_in("batch-2", {open_string[1]});
  REQUIRE(third.size() == 1);
  CHECK(third[0].ok());
  must_ok(s->prepare("batch-2"));
  must_ok(s->commit("batch-2"));
  auto ids = must(s->execute("SELECT id FROM t ORDER BY id"));
  REQUIRE(ids.rows.size() == 2);
  CHECK(std::get<std::int64_t>(ids.rows[0][0]) == 1);
  CHECK(std::get<std::int64_t>(ids.rows[1][0]) == 6);
}

TEST_CASE("statements, XA END and XA PREPARE in one batch") {
  auto s = fresh();
  auto other = open_db();
  const auto prepared_ids = [&] {
    auto ids = other->recover();
    REQUIRE(ids.ok());
    return *ids;
  };
  const auto listed = [&](const std::string& id) {
    const auto ids = prepared_ids();
    return std::find(ids.begin(), ids.end(), id) != ids.end();
  };

  // Everything joinable: the transaction starts, runs, ends and prepares.
  must_ok(s->begin("bp.1"));
  std::optional<Status> prepared;
  auto results = s->execute_batch_and_prepare(
      "bp.1", {"INSERT INTO t VALUES (1, 'a')", "INSERT INTO t VALUES (2, 'b')"}, prepared);
  REQUIRE(results.size() == 2);
  CHECK(results[0].ok());
  CHECK(results[1].ok());
  REQUIRE(prepared.has_value());
  must_ok(*prepared);
  CHECK(listed("bp.1"));
  must_ok(s->commit("bp.1"));
  CHECK(count(*other, "t") == 2);

  // A failed statement stops the batch before XA END: the transaction stays
  // open, unprepared, and goes on from the next statement.
  must_ok(s->begin("bp.2"));
  results = s->execute_batch_and_prepare(
      "bp.2", {"INSERT INTO t VALUES (3, 'c')", "INSERT INTO t VALUES (1, 'dup')", "INSERT INTO t VALUES (4, 'd')"},
      prepared);
  REQUIRE(results.size() == 2);
  CHECK(results[0].ok());
  REQUIRE_FALSE(results[1].ok());
  CHECK(results[1].error().kind == ErrorKind::sql);
  CHECK(results[1].error().code == 1062);
  CHECK_FALSE(prepared.has_value());
  CHECK_FALSE(listed("bp.2"));
  results = s->execute_batch_and_prepare("bp.2", {"INSERT INTO t VALUES (4, 'd')"}, prepared);
  REQUIRE(results.size() == 1);
  CHECK(results[0].ok());
  REQUIRE(prepared.has_value());
  must_ok(*prepared);
  must_ok(s->commit("bp.2"));
  CHECK(count(*other, "t") == 4);

  // Text that cannot be joined runs alone, and the transaction still
  // prepares.
  must_ok(s->begin("bp.3"));
  results = s->execute_batch_and_prepare("bp.3", {"SELECT 1", "INSERT INTO t VALUES (5, 'e')"}, prepared);
  REQUIRE(results.size() == 2);
  CHECK(results[0].ok());
  CHECK(results[1].ok());
  REQUIRE(prepared.has_value());
  must_ok(*prepared);
  must_ok(s->rollback("bp.3"));
  CHECK(count(*other, "t") == 4);
}

TEST_CASE("XA START travels with the first statements") {
  auto s = fresh();
  auto other = open_db();
  // Begun and rolled back before any statement: nothing reached the server,
  // and the id is free again.
  must_ok(s->begin("lazy.1"));
  must_ok(s->rollback("lazy.1"));
  must_ok(s->begin("lazy.1"));
  // Begun and prepared with no statement: START, END and PREPARE together.
  must_ok(s->prepare("lazy.1"));
  auto ids = other->recover();
  REQUIRE(ids.ok());
  CHECK(std::find(ids->begin(), ids->end(), "lazy.1") != ids->end());
  // XA START refused by the server (the id is taken by the prepared
  // transaction): reported as a storage failure, never as the first
  // statement's SQL error, and the transaction is not open.
  must_ok(other->begin("lazy.1"));
  auto results = other->execute_batch_in("lazy.1", {"INSERT INTO t VALUES (1, 'a')", "INSERT INTO t VALUES (2, 'b')"});
  REQUIRE(results.size() == 1);
  REQUIRE_FALSE(results[0].ok());
  CHECK(results[0].error().kind != ErrorKind::sql);
  CHECK(results[0].error().message.find("XA START") != std::string::npos);
  CHECK_FALSE(other->execute_in("lazy.1", "INSERT INTO t VALUES (3, 'c')").ok());
  // The same through execute_in (a statement that is sent alone).
  must_ok(other->begin("lazy.1"));
  auto alone = other->execute_in("lazy.1", "INSERT INTO t VALUES (1, 'a')");
  REQUIRE_FALSE(alone.ok());
  CHECK(alone.error().kind != ErrorKind::sql);
  // The session is still usable.
  must_ok(other->begin("lazy.2"));
  must(other->execute_in("lazy.2", "INSERT INTO t VALUES (7, 'g')"));
  must_ok(other->prepare("lazy.2"));
  must_ok(other->commit("lazy.2"));
  must_ok(s->rollback("lazy.1"));
  CHECK(count(*other, "t") == 1);
}

TEST_CASE("a missing database is created") {
  auto admin = open_db("");
  must(admin->execute("DROP DATABASE IF EXISTS distdb_storage_autocreate"));
  auto s = open_db("distdb_storage_autocreate");
  auto rs = must(s->execute("SELECT DATABASE()"));
  CHECK(std::get<std::string>(rs.rows.at(0).at(0)) == "distdb_storage_autocreate");
  REQUIRE(ensure_distdb_schema(*s).ok());
  REQUIRE(ensure_distdb_schema(*s).ok());
  CHECK(count(*s, "distdb_applied") == 1);
  must(admin->execute("DROP DATABASE distdb_storage_autocreate"));
}

TEST_CASE("XA commit, rollback, unknown id") {
  auto s = fresh();
  auto other = open_db();
  CHECK(s->prepare_survives_crash());

  must_ok(s->begin("t.1"));
  must(s->execute_in("t.1", "INSERT INTO t VALUES (1, 'one')"));
  CHECK_FALSE(s->execute("SELECT 1").ok());  // execute() inside a transaction is refused
  must_ok(s->prepare("t.1"));
  // After prepare the same storage can start the next transaction...
  must_ok(s->begin("t.2"));
  must(s->execute_in("t.2", "INSERT INTO t VALUES (2, 'two')"));
  must_ok(s->prepare("t.2"));
  // ...while another cannot decide one that is still held (the server
  // keeps it bound to the session that prepared it)...
  CHECK_FALSE(other->commit("t.1").ok());
  // ...and each is decided by the storage that prepared it.
  must_ok(s->commit("t.1"));
  must_ok(s->rollback("t.2"));
  CHECK(count(*other, "t") == 1);
  CHECK(count(*s, "t") == 1);

  must_ok(s->begin("t.3"));
  must(s->execute_in("t.3", "INSERT INTO t VALUES (3, 'three')"));
  must_ok(s->rollback("t.3"));  // rolled back while still active
  CHECK(count(*s, "t") == 1);

  CHECK(s->rollback("no.such.txn").ok());
  const auto left = s->recover();
  REQUIRE(left.ok());
  CHECK(left->empty());
}

TEST_CASE("a prepared transaction outlives its storage: the next one to open the database decides it") {
  // What a restarted node does: its old sessions are gone, the prepared
  // transactions are not. Repeated, because deciding too early (while the
  // server still tears the old session down) once answered OK without
  // committing.
  auto other = open_db();
  {
    auto setup = fresh();
  }
  for (int i = 0; i < 30; ++i) {
    const std::string id = "gone." + std::to_string(i);
    {
      auto s = open_db();
      must_ok(s->begin(id));
      must(s->execute_in(id, "INSERT INTO t VALUES (" + std::to_string(100 + i) + ", 'kept')"));
      must_ok(s->prepare(id));
    }
    const auto listed = other->recover();
    REQUIRE(listed.ok());
    CHECK(std::find(listed->begin(), listed->end(), id) != listed->end());
    must_ok(other->commit(id));
  }
  CHECK(count(*other, "t") == 30);
  // Committed for real: nothing is left prepared, and no row lock is held
  // (an update of every row would wait for one).
  const auto left = other->recover();
  REQUIRE(left.ok());
  CHECK(left->empty());
  must(other->execute("SET SESSION innodb_lock_wait_timeout = 2"));
  must(other->execute("UPDATE t SET v = 'checked'"));
}

TEST_CASE("recovery waits for a prepare still running on a session opened before it") {
  // A node killed while its session executed a request ending in XA PREPARE:
  // the server finishes the request after the client is gone. The restarted
  // node must not list the prepared transactions before that request has
  // ended, or it never learns of the one it prepares (which then stays
  // prepared, holding its locks, with nobody to decide it).
  {
    auto setup = fresh();
  }
  const DbConfig cfg = mariadb_db_config(0, kDb);
  MYSQL* earlier = mysql_init(nullptr);
  REQUIRE(earlier != nullptr);
  REQUIRE(mysql_real_connect(earlier, cfg.host.c_str(), cfg.user.c_str(), cfg.password.c_str(), kDb.c_str(), cfg.port,
                             nullptr, CLIENT_MULTI_STATEMENTS) != nullptr);
  const unsigned long earlier_id = mysql_thread_id(earlier);
  const std::string id = "late.prepare";
  const std::string batch = "XA START '" + id + "'; INSERT INTO t VALUES (1, 'late'); DO SLEEP(1.5); XA END '" + id +
                            "'; XA PREPARE '" + id + "'";
  // Sent, and its answers never read, as by a client that was killed.
  REQUIRE(mysql_send_query(earlier, batch.data(), static_cast<unsigned long>(batch.size())) == 0);
  auto observer = open_db();
  const std::string running = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " +
                              std::to_string(earlier_id) + " AND COMMAND = 'Query'";
  REQUIRE(wait_for([&] { return std::get<std::int64_t>(must(observer->execute(running)).rows.at(0).at(0)) == 1; }));

  auto restarted = open_db();  // opened after it: a higher thread id
  const auto listed = restarted->recover();
  REQUIRE(listed.ok());
  CHECK(std::find(listed->begin(), listed->end(), id) != listed->end());

  // Clean up: once the earlier session is gone, the transaction is anyone's to decide.
  mysql_close(earlier);
  const std::string gone =
      "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " + std::to_string(earlier_id);
  REQUIRE(wait_for([&] { return std::get<std::int64_t>(must(observer->execute(gone)).rows.at(0).at(0)) == 0; }));
  must_ok(restarted->rollback(id));
  CHECK(count(*restarted, "t") == 0);
}

TEST_CASE("steady traffic reuses sessions: no connection per transaction") {
  auto s = fresh();
  auto probe = open_db();
  const auto connections = [&] {
    auto rs = probe->execute("SHOW GLOBAL STATUS LIKE 'Connections'");
    REQUIRE(rs.ok());
    return std::stoll(std::get<std::string>(rs->rows.at(0).at(1)));
  };
  const long long before = connections();
  for (int i = 0; i < 50; ++i) {
    const std::string id = "steady." + std::to_string(i);
    must_ok(s->begin(id));
    must(s->execute_in(id, "INSERT INTO t VALUES (" + std::to_string(200 + i) + ", 'x')"));
    must_ok(s->prepare(id));
    must_ok(s->commit(id));
  }
  // One spare session at most, opened by the first transaction's prepare.
  CHECK(connections() - before <= 2);
  CHECK(count(*s, "t") == 50);
}

TEST_CASE("an XA PREPARE survives kill -9 of the server") {
  auto s = fresh();
  must_ok(s->begin("crash.1"));
  must(s->execute_in("crash.1", "INSERT INTO t VALUES (10, 'survivor')"));
  must_ok(s->prepare("crash.1"));
  s.reset();

  REQUIRE(mariadb_ctl("kill", 0) == 0);
  REQUIRE(mariadb_ctl("start", 0) == 0);

  auto after = open_db();
  auto ids = after->recover();
  REQUIRE(ids.ok());
  CHECK(std::find(ids->begin(), ids->end(), "crash.1") != ids->end());
  must_ok(after->commit("crash.1"));
  CHECK(count(*after, "t") == 1);
  const auto left = after->recover();
  REQUIRE(left.ok());
  CHECK(std::find(left->begin(), left->end(), "crash.1") == left->end());
}

TEST_CASE("the same Storage reconnects after the server comes back") {
  auto s = fresh();
  must(s->execute("INSERT INTO t VALUES (1, 'before')"));
  REQUIRE(mariadb_ctl("kill", 0) == 0);

  auto failed = s->execute("SELECT COUNT(*) FROM t");
  REQUIRE_FALSE(failed.ok());
  const auto kind = failed.error().kind;
  CHECK((kind == ErrorKind::storage_unavailable || kind == ErrorKind::outcome_unknown));
  // While it is down, calls keep failing cleanly.
  CHECK_FALSE(s->ping().ok());
  CHECK_FALSE(s->execute("SELECT 1").ok());

  REQUIRE(mariadb_ctl("start", 0) == 0);
  // The server answers pings before InnoDB is necessarily ready for us: wait
  // with a deadline rather than assume.
  CHECK(wait_for([&] { return s->execute("SELECT COUNT(*) FROM t").ok(); }));
  CHECK(count(*s, "t") == 1);
  must(s->execute("INSERT INTO t VALUES (2, 'after')"));
  CHECK(count(*s, "t") == 2);
}

TEST_CASE("a transaction open when the connection drops is gone, not silently continued") {
  auto s = fresh();
  must_ok(s->begin("drop.1"));
  must(s->execute_in("drop.1", "INSERT INTO t VALUES (1, 'x')"));
  REQUIRE(mariadb_ctl("kill", 0) == 0);
  REQUIRE(mariadb_ctl("start", 0) == 0);
  auto r = s->execute_in("drop.1", "INSERT INTO t VALUES (2, 'y')");
  REQUIRE_FALSE(r.ok());
  // Now the connection is known broken and the transaction forgotten; the
  // next statement reconnects and runs outside any transaction.
  CHECK_FALSE(s->execute_in("drop.1", "INSERT INTO t VALUES (3, 'z')").ok());
  CHECK(wait_for([&] { return s->execute("SELECT 1").ok(); }));
  CHECK(count(*s, "t") == 0);
  CHECK(s->rollback("drop.1").ok());
}

TEST_CASE("a refused login names the server, never the password") {
  DbConfig config = mariadb_db_config(0, kDb);
  config.user = "distdb_no_such_user";
  config.password = "Tr0ub4dor-and-3";
  auto s = open_mariadb_storage(config);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().kind == ErrorKind::storage_unavailable);
  CHECK(s.error().message.find("cannot connect to MariaDB at") != std::string::npos);
  CHECK(s.error().message.find("Tr0ub4dor") == std::string::npos);
}

TEST_CASE(
    "scan streams a result larger than the connector's buffers; an early stop leaves the session usable") {
  auto s = open_db();
  must(s->execute("DROP TABLE IF EXISTS scanned"));
  must(s->execute("CREATE TABLE scanned (id INT PRIMARY KEY, pad TEXT)"));
  must(s->execute("INSERT INTO scanned SELECT seq, REPEAT('p', 1000) FROM seq_1_to_20000"));
  std::int64_t count = 0;
  std::int64_t sum = 0;
  REQUIRE(s->scan("SELECT id, pad FROM scanned ORDER BY id", [&](const Row& row) {
             ++count;
             sum += std::get<std::int64_t>(row.at(0));
             return std::get<std::string>(row.at(1)).size() == 1000
                        ? Status()
                        : Status(Error(ErrorKind::internal, "bad pad"));
           }).ok());
  CHECK(count == 20000);
  CHECK(sum == 20000LL * 20001 / 2);
  count = 0;
  const Status stopped = s->scan("SELECT id FROM scanned ORDER BY id", [&](const Row&) {
    return ++count == 10 ? Status(Error(ErrorKind::storage_unavailable, "enough")) : Status();
  });
  REQUIRE_FALSE(stopped.ok());
  CHECK(stopped.error().message == "enough");
  CHECK(count == 10);
  // The rest of the result was read off the session: the next statement runs.
  auto after = s->execute("SELECT COUNT(*) FROM scanned");
  REQUIRE(after.ok());
  CHECK(std::get<std::int64_t>(after->rows.at(0).at(0)) == 20000);
  const Status bad = s->scan("SELECT nope FROM scanned", [](const Row&) { return Status(); });
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().kind == ErrorKind::sql);
  must(s->execute("DROP TABLE scanned"));
}

TEST_CASE(
    "a server whose global sql_mode changes how statements are read: distdb's sessions read them as distdb "
    "does") {
  auto admin = open_db();
  const std::string before =
      std::get<std::string>(must(admin->execute("SELECT @@GLOBAL.sql_mode")).rows.at(0).at(0));
  struct Restore {
    Storage& s;
    std::string mode;
    ~Restore() { (void)s.execute("SET GLOBAL sql_mode = '" + mode + "'"); }
  } restore{*admin, before};
  must(admin->execute("SET GLOBAL sql_mode = 'ANSI,NO_BACKSLASH_ESCAPES,STRICT_ALL_TABLES'"));
  for (const StorageAccess access : {StorageAccess::read_write, StorageAccess::read_only}) {
    CAPTURE(static_cast<int>(access));
    auto opened = open_mariadb_storage(mariadb_db_config(0, kDb), access);
    REQUIRE(opened.ok());
    Storage& s = **opened;
    const std::string mode =
        std::get<std::string>(must(s.execute("SELECT @@SESSION.sql_mode")).rows.at(0).at(0));
    CHECK(mode.find("ANSI_QUOTES") == std::string::npos);
    CHECK(mode.find("NO_BACKSLASH_ESCAPES") == std::string::npos);
    CHECK(mode.find("IGNORE_SPACE") == std::string::npos);
    CHECK(mode.find("STRICT_ALL_TABLES") != std::string::npos);  // the rest of the administrator's mode stays
    // A backslash escapes, and "..." is a string, as the classifier reads them.
    const auto row = must(s.execute("SELECT 'a\\'b', \"x\"")).rows.at(0);
    CHECK(std::get<std::string>(row.at(0)) == "a'b");
    CHECK(std::get<std::string>(row.at(1)) == "x");
  }
}
