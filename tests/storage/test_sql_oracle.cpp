// The MariaDB server as the oracle for what distdb decides about SQL before
// it runs (server 0 of DISTDB_TEST_MARIADB):
//   - a read runs on a read-only connection, and whatever a statement taken
//     for a read hides (a stored function that writes, a sequence, DDL
//     behind a version-conditional comment, dynamic SQL) changes nothing;
//   - the classifier reads executable comments exactly as the server does:
//     the text it would replicate (Classification::effective_sql) gives the
//     server's own answer for a large generated corpus.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "distdb/storage.hpp"
#include "mariadb_env.hpp"
#include "sql/statement.hpp"
#include "storage/mariadb_storage.hpp"

using namespace distdb;
using distdb::test::mariadb_db_config;

namespace {

const std::string kDb = "distdb_oracle_test";

std::unique_ptr<Storage> open_db(StorageAccess access, const std::string& database = kDb) {
  auto s = open_mariadb_storage(mariadb_db_config(0, database), access);
  REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
  return std::move(s).value();
}

std::string text_of(const Value& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&v)) return std::to_string(*d);
  if (const auto* str = std::get_if<std::string>(&v)) return *str;
  if (is_null(v)) return "NULL";
  return "<blob>";
}

ResultSet must(Result<ResultSet> r) {
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  return std::move(r).value();
}

std::string cell(Storage& s, const std::string& sql) {
  const ResultSet rs = must(s.execute(sql));
  REQUIRE(!rs.rows.empty());
  return text_of(rs.rows.at(0).at(0));
}

// A fresh database with a table, a sequence, a function that advances the
// sequence and one that inserts; returns a read-write connection to it.
std::unique_ptr<Storage> fresh() {
  auto admin = open_db(StorageAccess::read_write, "");
  must(admin->execute("DROP DATABASE IF EXISTS " + kDb));
  must(admin->execute("CREATE DATABASE " + kDb));
  auto s = open_db(StorageAccess::read_write);
  must(s->execute("CREATE TABLE t (a INT PRIMARY KEY)"));
  must(s->execute("INSERT INTO t VALUES (1), (2)"));
  must(s->execute("CREATE SEQUENCE s"));
  must(s->execute("CREATE FUNCTION f() RETURNS INT RETURN NEXTVAL(s)"));
  must(s->execute("CREATE FUNCTION g() RETURNS INT BEGIN INSERT INTO t VALUES (100); RETURN 1; END"));
  return s;
}

// What a reader sees of the data a read must not change.
std::string state(Storage& s) {
  return cell(s, "SELECT GROUP_CONCAT(a ORDER BY a) FROM t") + " | next " +
         cell(s, "SELECT next_not_cached_value FROM s") + " | tables " +
         cell(s,
              "SELECT GROUP_CONCAT(table_name ORDER BY table_name) FROM information_schema.tables "
              "WHERE table_schema = '" +
                  kDb + "'");
}

// Writes hidden in statements a classifier could take for reads.
const std::vector<std::string> kHiddenWrites = {
    "SELECT NEXTVAL(s)",
    "SELECT f()",
    "SELECT g()",
    "SELECT a, f() FROM t",
    "SHOW TABLES WHERE SETVAL(s, 100)",
    "SELECT SETVAL(s, 500)",
    "/*!99999 SELECT 1 FROM DUAL WHERE 0 AND */ DROP TABLE t",
    "/*!50700 SELECT 1 FROM DUAL WHERE 0 AND */ DELETE FROM t",
    "/*!99999 SELECT 1 FROM DUAL WHERE 0 AND */ EXECUTE IMMEDIATE 'INSERT INTO t VALUES (9)'",
    "EXECUTE IMMEDIATE 'INSERT INTO t VALUES (9)'",
    "CREATE TEMPORARY TABLE tt (a INT)",
    "CREATE TABLE u (a INT)",
    "INSERT INTO t VALUES (7)",
    "DO NEXTVAL(s)",
};

}  // namespace

TEST_CASE("oracle: a read-only connection refuses every write a read could hide, and says why") {
  auto rw = fresh();
  const std::string before = state(*rw);
  auto ro = open_db(StorageAccess::read_only);
  CHECK(ro->server_version() >= 100000);
  for (const auto& sql : kHiddenWrites) {
    CAPTURE(sql);
    const auto r = ro->execute(sql);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::sql);
    CHECK(r.error().code == 1792);
    CHECK(r.error().message.find("ran this statement as a read") != std::string::npos);
    CHECK(state(*rw) == before);
  }
  // Reads still read (the sequence's position included).
  CHECK(cell(*ro, "SELECT COUNT(*) FROM t") == "2");
  CHECK(cell(*ro, "SELECT next_not_cached_value FROM s") == "1");
  // EXPLAIN of a statement that would advance the sequence changes nothing,
  // whether or not the server answers it.
  (void)ro->execute("EXPLAIN SELECT * FROM t WHERE a = NEXTVAL(s)");
  (void)ro->execute("EXPLAIN SELECT f()");
  CHECK(state(*rw) == before);
  // A statement cannot lift the read-only mode of its own transaction.
  CHECK_FALSE(ro->execute("SELECT 1 FROM t WHERE (SELECT g()) = 1").ok());
  CHECK(state(*rw) == before);
}

TEST_CASE("oracle: no connection of a node reads the node's own files (LOAD DATA LOCAL)") {
  auto rw = fresh();
  must(rw->execute("CREATE TABLE lf (v TEXT)"));
  for (auto access : {StorageAccess::read_write, StorageAccess::read_only}) {
    auto s = open_db(access);
    const auto r = s->execute("LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE lf (v)");
    CHECK_FALSE(r.ok());
  }
  CHECK(cell(*rw, "SELECT COUNT(*) FROM lf") == "0");
}

TEST_CASE("oracle: a reconnected read-only connection is read-only again") {
  auto rw = fresh();
  const std::string before = state(*rw);
  auto ro = open_db(StorageAccess::read_only);
  const std::string id = cell(*ro, "SELECT CONNECTION_ID()");
  must(rw->execute("KILL CONNECTION " + id));
  // The first statement after the kill finds the session gone, or a new one.
  (void)ro->execute("SELECT 1");
  CHECK(cell(*ro, "SELECT CONNECTION_ID()") != id);
  const auto r = ro->execute("SELECT NEXTVAL(s)");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == 1792);
  CHECK(state(*rw) == before);
}

TEST_CASE("oracle: executable comments are read as the server reads them") {
  auto rw = fresh();
  const unsigned long version = rw->server_version();
  REQUIRE(version >= 100000);
  // Versions around every boundary the server has, this server's own included.
  std::vector<std::string> versions = {"",      "1234",   "00000",  "40101",  "50699",  "50700",
                                       "99999", "100000", "100001", "999999", "1000000"};
  versions.push_back(std::to_string(version));
  versions.push_back(std::to_string(version + 1));
  versions.push_back(std::to_string(version - 1));
  const std::vector<std::string> markers = {"/*!", "/*M!", "/*m!", "/*", "/*!M"};
  const std::vector<std::string> bodies = {
      " +10 ",      "+10", " +10 /* c */ +1 ", " +10 /*!99999 +5 */ ", " +10 /*! +5 */ ", " '*/' +10 ",
      " -- x\n+1 ", " ",   " +2 /* /* */ +3 ", " +2 /*/ +3 ",          " +2 \"*/\" +3 ",  " ; +1 "};
  const std::vector<std::string> trailers = {"*/", "*/ +100", "*/ */", "", "*/ +100 /* x */ +1000"};
  int compared = 0;
  int agreed_ok = 0;
  for (const auto& marker : markers) {
    for (const auto& v : versions) {
      for (const auto& body : bodies) {
        for (const auto& trailer : trailers) {
          const std::string sql = "SELECT 1 " + marker + v + body + trailer;
          const auto c = sql::classify(sql, sql::Dialect::mariadb, version);
          if (c.multiple_statements) continue;  // never sent: refused before it runs
          const std::string effective = c.effective_sql.empty() ? sql : c.effective_sql;
          const auto original = rw->execute(sql);
          const auto resolved = rw->execute(effective);
          CAPTURE(sql);
          CAPTURE(effective);
          ++compared;
          if (c.malformed) {
            CHECK_FALSE(original.ok());  // the server refuses what we call malformed
            continue;
          }
          REQUIRE(original.ok() == resolved.ok());
          if (original.ok()) {
            ++agreed_ok;
            CHECK(text_of(original->rows.at(0).at(0)) == text_of(resolved->rows.at(0).at(0)));
          }
          CHECK_FALSE(c.version_unknown);
        }
      }
    }
  }
  MESSAGE(compared << " texts compared, " << agreed_ok << " of them run by the server");
  CHECK(compared > 2000);
  CHECK(agreed_ok > 300);
}
