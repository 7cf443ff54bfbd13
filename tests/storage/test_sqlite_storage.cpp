// The SQLite backend against real database files under $TMPDIR.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "distdb/storage.hpp"
#include "storage/sqlite_storage.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace distdb;

namespace {

// A fresh database file path, removed (with its WAL files) at scope exit.
class TempDb {
 public:
  std::string path() const { return dir_.path("test.db"); }

 private:
  test::TempDir dir_{"distdb-sqlite-test"};
};

std::unique_ptr<Storage> open(const TempDb& db) {
  auto s = open_sqlite_storage(db.path());
  REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
  return std::move(s).value();
}

ResultSet must(Result<ResultSet> r) {
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  return std::move(r).value();
}

std::int64_t count(Storage& s, const std::string& table) {
  auto rs = must(s.execute("SELECT COUNT(*) FROM " + table));
  return std::get<std::int64_t>(rs.rows.at(0).at(0));
}

}  // namespace

TEST_CASE("typed round trip") {
  TempDb db;
  auto s = open(db);
  must(s->execute("CREATE TABLE t (i INTEGER, r REAL, s TEXT, e TEXT, n TEXT, b BLOB)"));
  must(s->execute("INSERT INTO t VALUES (-9223372036854775808, 2.5, 'héllo', '', NULL, NULL)"));
  // A blob with every byte value, NUL included, written through a hex literal.
  std::string hex = "X'";
  Blob expected;
  for (int i = 0; i < 256; ++i) {
    const char* digits = "0123456789ABCDEF";
    hex += digits[i / 16];
    hex += digits[i % 16];
    expected.bytes.push_back(static_cast<std::uint8_t>(i));
  }
  hex += "'";
  must(s->execute("UPDATE t SET b = " + hex));

  auto rs = must(s->execute("SELECT i, r, s, e, n, b FROM t"));
  REQUIRE(rs.columns == std::vector<std::string>{"i", "r", "s", "e", "n", "b"});
  REQUIRE(rs.rows.size() == 1);
  const Row& row = rs.rows[0];
  CHECK(std::get<std::int64_t>(row[0]) == INT64_MIN);
  CHECK(std::get<double>(row[1]) == 2.5);
  CHECK(std::get<std::string>(row[2]) == "héllo");
  CHECK(std::get<std::string>(row[3]).empty());
  CHECK(is_null(row[4]));
  CHECK(row[3] != row[4]);  // '' is not NULL
  CHECK(std::get<Blob>(row[5]) == expected);
}

TEST_CASE("an empty SELECT still has columns") {
  TempDb db;
  auto s = open(db);
  must(s->execute("CREATE TABLE t (a INTEGER, b TEXT)"));
  auto rs = must(s->execute("SELECT a, b FROM t"));
  CHECK(rs.has_rows());
  CHECK(rs.columns == std::vector<std::string>{"a", "b"});
  CHECK(rs.rows.empty());
  auto ddl = must(s->execute("CREATE TABLE u (x INTEGER)"));
  CHECK_FALSE(ddl.has_rows());
}

TEST_CASE("rows_affected and last_insert_id") {
  TempDb db;
  auto s = open(db);
  must(s->execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)"));
  auto ins = must(s->execute("INSERT INTO t (v) VALUES (10), (20), (30)"));
  CHECK(ins.rows_affected == 3);
  CHECK(ins.last_insert_id == 3);
  auto upd = must(s->execute("UPDATE t SET v = v + 1 WHERE v >= 20"));
  CHECK(upd.rows_affected == 2);
  CHECK(upd.last_insert_id == 0);
  auto none = must(s->execute("UPDATE t SET v = 0 WHERE v > 1000"));
  CHECK(none.rows_affected == 0);  // not the previous statement's 2
  auto sel = must(s->execute("SELECT * FROM t"));
  CHECK(sel.rows_affected == 0);
  CHECK(sel.last_insert_id == 0);
  auto del = must(s->execute("DELETE FROM t WHERE id = 1"));
  CHECK(del.rows_affected == 1);
  CHECK(del.last_insert_id == 0);
}

TEST_CASE("SQL errors carry SQLite's code and message") {
  TempDb db;
  auto s = open(db);
  auto syntax = s->execute("SELEC 1");
  REQUIRE_FALSE(syntax.ok());
  CHECK(syntax.error().kind == ErrorKind::sql);
  CHECK(syntax.error().code == 1);  // SQLITE_ERROR
  CHECK(syntax.error().message.find("syntax error") != std::string::npos);

  auto missing = s->execute("SELECT * FROM nope");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().kind == ErrorKind::sql);
  CHECK(missing.error().message.find("no such table") != std::string::npos);

  must(s->execute("CREATE TABLE t (id INTEGER PRIMARY KEY, u TEXT UNIQUE)"));
  must(s->execute("INSERT INTO t (u) VALUES ('x')"));
  auto dup = s->execute("INSERT INTO t (u) VALUES ('x')");
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.error().kind == ErrorKind::sql);
  CHECK(dup.error().code == 2067);  // SQLITE_CONSTRAINT_UNIQUE
  CHECK(dup.error().message.find("UNIQUE") != std::string::npos);
  // The connection is still fine.
  CHECK(count(*s, "t") == 1);
}

TEST_CASE("only one statement per call") {
  TempDb db;
  auto s = open(db);
  must(s->execute("CREATE TABLE t (id INTEGER)"));
  auto two = s->execute("INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)");
  REQUIRE_FALSE(two.ok());
  CHECK(two.error().kind == ErrorKind::sql);
  CHECK(two.error().message.find("one statement") != std::string::npos);
  CHECK(count(*s, "t") == 0);  // nothing ran
  // Trailing semicolons, whitespace and comments are fine.
  must(s->execute("INSERT INTO t VALUES (3);;  -- done\n /* really */ "));
  CHECK(count(*s, "t") == 1);
}

TEST_CASE("transactions: commit, rollback, misuse") {
  TempDb db;
  auto a = open(db);
  auto b = open(db);
  must(a->execute("CREATE TABLE t (id INTEGER PRIMARY KEY)"));
  CHECK_FALSE(a->prepare_survives_crash());

  SUBCASE("commit is visible from another connection") {
    REQUIRE(a->begin("1.1").ok());
    must(a->execute_in("1.1", "INSERT INTO t VALUES (1)"));
    CHECK(count(*b, "t") == 0);  // not yet
    REQUIRE(a->prepare("1.1").ok());
    REQUIRE(a->commit("1.1").ok());
    CHECK(count(*b, "t") == 1);
    CHECK(a->recover()->empty());
  }
  SUBCASE("rollback is invisible") {
    REQUIRE(a->begin("1.2").ok());
    must(a->execute_in("1.2", "INSERT INTO t VALUES (2)"));
    REQUIRE(a->prepare("1.2").ok());
    REQUIRE(a->rollback("1.2").ok());
    CHECK(count(*b, "t") == 0);
    CHECK(count(*a, "t") == 0);
  }
  SUBCASE("rollback of an unknown id is OK") {
    CHECK(a->rollback("never-begun").ok());
  }
  SUBCASE("a second begin is refused") {
    REQUIRE(a->begin("x1").ok());
    auto second = a->begin("x2");
    REQUIRE_FALSE(second.ok());
    CHECK(second.error().message.find("already open") != std::string::npos);
    CHECK_FALSE(a->execute_in("x2", "INSERT INTO t VALUES (9)").ok());
    REQUIRE(a->rollback("x1").ok());
    REQUIRE(a->begin("x2").ok());  // the connection is free again
    REQUIRE(a->rollback("x2").ok());
  }
  SUBCASE("execute while a transaction is open is refused") {
    REQUIRE(a->begin("y1").ok());
    auto r = a->execute("INSERT INTO t VALUES (5)");
    REQUIRE_FALSE(r.ok());
    REQUIRE(a->rollback("y1").ok());
    CHECK(count(*a, "t") == 0);
  }
  SUBCASE("invalid ids are refused") {
    CHECK_FALSE(a->begin("").ok());
    CHECK_FALSE(a->begin("it's").ok());
    CHECK_FALSE(a->begin(std::string(65, 'a')).ok());
    CHECK(a->begin(std::string(64, 'a')).ok());
  }
}

TEST_CASE("a prepared transaction dies with its connection") {
  TempDb db;
  {
    auto a = open(db);
    must(a->execute("CREATE TABLE t (id INTEGER PRIMARY KEY)"));
    REQUIRE(a->begin("crash").ok());
    must(a->execute_in("crash", "INSERT INTO t VALUES (1)"));
    REQUIRE(a->prepare("crash").ok());
    // Destroyed without commit: what a crash does to an SQLite "prepare".
  }
  auto b = open(db);
  CHECK(count(*b, "t") == 0);
  CHECK(b->recover()->empty());
  CHECK_FALSE(b->commit("crash").ok());
}

TEST_CASE("is_valid_txn_id") {
  CHECK(is_valid_txn_id("3:17"));
  CHECK(is_valid_txn_id("a.b-c_D:9"));
  CHECK_FALSE(is_valid_txn_id(""));
  CHECK_FALSE(is_valid_txn_id("a b"));
  CHECK_FALSE(is_valid_txn_id("a'b"));
  CHECK_FALSE(is_valid_txn_id(std::string(65, 'x')));
}

TEST_CASE("ensure_distdb_schema is idempotent") {
  TempDb db;
  auto s = open(db);
  REQUIRE(ensure_distdb_schema(*s).ok());
  must(s->execute("UPDATE distdb_applied SET epoch = 3, seq = 42 WHERE id = 1"));
  must(s->execute("UPDATE distdb_meta SET value = '7' WHERE name = 'promised_epoch'"));
  REQUIRE(ensure_distdb_schema(*s).ok());  // must not reset anything
  auto meta = must(s->execute("SELECT name, value FROM distdb_meta ORDER BY name"));
  REQUIRE(meta.rows.size() == 2);
  CHECK(meta.rows[0] == Row{std::string("promised_epoch"), std::string("7")});
  CHECK(meta.rows[1] == Row{std::string("schema_version"), std::string("1")});
  auto applied = must(s->execute("SELECT id, epoch, seq FROM distdb_applied"));
  REQUIRE(applied.rows.size() == 1);
  CHECK(applied.rows[0] == Row{std::int64_t{1}, std::int64_t{3}, std::int64_t{42}});
}

TEST_CASE("sql/distdb_schema.sql matches ensure_distdb_schema") {
  const char* root = std::getenv("DISTDB_SOURCE_ROOT");
  if (root == nullptr) {
    MESSAGE("DISTDB_SOURCE_ROOT unset (run through meson test): skipped");
    return;
  }
  std::ifstream file(fs::path(root) / "sql" / "distdb_schema.sql");
  REQUIRE(file.good());
  std::stringstream text;
  text << file.rdbuf();

  // Apply the file's statements to one database, the C++ code to another,
  // and compare the resulting schema and rows.
  TempDb from_file;
  TempDb from_code;
  auto f = open(from_file);
  auto c = open(from_code);
  std::string statement;
  std::string all = text.str();
  std::stringstream lines(all);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("--", 0) == 0) continue;
    statement += line + "\n";
    if (line.find(';') != std::string::npos) {
      must(f->execute(statement));
      statement.clear();
    }
  }
  REQUIRE(ensure_distdb_schema(*c).ok());
  const std::string q = "SELECT name, sql FROM sqlite_master ORDER BY name";
  CHECK(must(f->execute(q)).rows == must(c->execute(q)).rows);
  CHECK(must(f->execute("SELECT * FROM distdb_meta")).rows == must(c->execute("SELECT * FROM distdb_meta")).rows);
  CHECK(must(f->execute("SELECT * FROM distdb_applied")).rows ==
        must(c->execute("SELECT * FROM distdb_applied")).rows);
}

TEST_CASE("two connections write one file concurrently") {
  TempDb db;
  {
    auto setup = open(db);
    must(setup->execute("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, who INTEGER)"));
  }
  constexpr int kPerThread = 100;
  std::atomic<int> failures{0};
  std::string first_error;
  std::mutex error_mutex;
  auto worker = [&](int who) {
    auto opened = open_sqlite_storage(db.path());
    if (!opened) {
      ++failures;
      return;
    }
    auto& s = **opened;
    for (int i = 0; i < kPerThread; ++i) {
      Status st;
      const TxnId id = "w" + std::to_string(who) + "." + std::to_string(i);
      if (i % 2 == 0) {
        auto r = s.execute("INSERT INTO t (who) VALUES (" + std::to_string(who) + ")");
        if (!r) st = r.error();
      } else if (st = s.begin(id); st) {
        auto r = s.execute_in(id, "INSERT INTO t (who) VALUES (" + std::to_string(who) + ")");
        if (!r) st = r.error();
        if (st) st = s.prepare(id);
        if (st) st = s.commit(id);
      }
      if (!st) {
        ++failures;
        std::lock_guard<std::mutex> lock(error_mutex);
        if (first_error.empty()) first_error = st.error().message;
      }
    }
  };
  std::thread t1(worker, 1);
  std::thread t2(worker, 2);
  t1.join();
  t2.join();
  CHECK_MESSAGE(failures.load() == 0, first_error);
  auto check = open(db);
  CHECK(count(*check, "t") == 2 * kPerThread);
}

TEST_CASE("a read-only connection refuses every change, and says why") {
  TempDb db;
  auto rw = open(db);
  must(rw->execute("CREATE TABLE t (a INTEGER PRIMARY KEY)"));
  must(rw->execute("INSERT INTO t VALUES (1)"));
  must(rw->execute("CREATE TRIGGER tr AFTER UPDATE ON t BEGIN INSERT INTO t VALUES (NEW.a + 100); END"));
  auto opened = open_sqlite_storage(db.path(), StorageAccess::read_only);
  REQUIRE(opened.ok());
  auto ro = std::move(opened).value();
  CHECK(ro->server_version() >= 3000000);
  for (const std::string sql :
       {"INSERT INTO t VALUES (2)", "UPDATE t SET a = a", "DELETE FROM t", "DROP TABLE t",
        "CREATE TABLE u (a)", "CREATE TEMP TABLE tt (a)", "PRAGMA query_only = 0", "PRAGMA user_version = 7",
        "ATTACH DATABASE ':memory:' AS other", "REPLACE INTO t VALUES (1)",
        "WITH x AS (SELECT 1) INSERT INTO t SELECT 5 FROM x"}) {
    CAPTURE(sql);
    const auto r = ro->execute(sql);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::sql);
  }
  const auto insert = ro->execute("INSERT INTO t VALUES (3)");
  REQUIRE_FALSE(insert.ok());
  CHECK(insert.error().message.find("ran it as a read") != std::string::npos);
  CHECK(count(*ro, "t") == 1);
  CHECK(count(*rw, "t") == 1);
  CHECK(std::get<std::int64_t>(must(ro->execute("PRAGMA user_version")).rows.at(0).at(0)) == 0);
  // The writer is not affected.
  must(rw->execute("INSERT INTO t VALUES (2)"));
  CHECK(count(*ro, "t") == 2);
}

TEST_CASE(
    "scan hands rows over one at a time, stops at the visitor's error, and leaves no transaction open") {
  TempDb db;
  auto s = open(db);
  REQUIRE(s->execute("CREATE TABLE t (a INTEGER, b TEXT)").ok());
  REQUIRE(s->execute("INSERT INTO t VALUES (1, 'x'), (2, NULL), (3, 'z')").ok());
  std::vector<std::int64_t> seen;
  REQUIRE(s->scan("SELECT a, b FROM t ORDER BY a", [&](const Row& row) {
             seen.push_back(std::get<std::int64_t>(row.at(0)));
             return Status();
           }).ok());
  CHECK(seen == std::vector<std::int64_t>{1, 2, 3});
  seen.clear();
  const Status stopped = s->scan("SELECT a FROM t ORDER BY a", [&](const Row& row) {
    seen.push_back(std::get<std::int64_t>(row.at(0)));
    return seen.size() == 2 ? Status(Error(ErrorKind::storage_unavailable, "disk full")) : Status();
  });
  REQUIRE_FALSE(stopped.ok());
  CHECK(stopped.error().message == "disk full");
  CHECK(seen.size() == 2);
  CHECK_FALSE(s->scan("SELECT nope FROM t", [](const Row&) { return Status(); }).ok());
  // The connection is usable, in autocommit, afterwards.
  REQUIRE(s->execute("INSERT INTO t VALUES (4, 'w')").ok());
  REQUIRE(s->begin("after-scan").ok());
  CHECK_FALSE(
      s->scan("SELECT a FROM t", [](const Row&) { return Status(); }).ok());  // not inside a transaction
  REQUIRE(s->rollback("after-scan").ok());
}
