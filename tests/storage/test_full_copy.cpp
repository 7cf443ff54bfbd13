// A full copy (node/snapshot.hpp) against a real MariaDB server: every kind
// of object the replicated database can hold comes back the same in another
// database, which held other objects before (server 0 of DISTDB_TEST_MARIADB).
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "distdb/storage.hpp"
#include "mariadb_env.hpp"
#include "node/snapshot.hpp"
#include "storage/mariadb_storage.hpp"
#include "storage_text.hpp"

using namespace distdb;
using distdb::test::mariadb_db_config;
using distdb::test::must;
using distdb::test::rows_text;
using distdb::test::value_text;

namespace {

// A file name in the temporary directory, removed at the end.
struct TempFile {
  std::string path = (std::filesystem::temp_directory_path() /
                      ("distdb-copy-test-" + std::to_string(::getpid()) + ".snapshot"))
                         .string();
  ~TempFile() { std::filesystem::remove(path); }
};

std::unique_ptr<Storage> open_db(const std::string& database) {
  auto s = open_mariadb_storage(mariadb_db_config(0, database));
  REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
  return std::move(s).value();
}

// What a logical dump would show of the database: every object's
// definition (without the database's name and the definer's host), every
// table's checksum and rows (invisible columns and history included), every
// sequence's position.
std::string fingerprint(Storage& s) {
  std::string out;
  const auto tables = must(s.execute(
      "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
      "AND TABLE_NAME NOT LIKE 'distdb\\_%' ORDER BY TABLE_NAME"));
  for (const Row& row : tables.rows) {
    const std::string name = value_text(row[0]);
    const std::string type = value_text(row[1]);
    out += "== " + type + " " + name + "\n";
    if (type == "VIEW") {
      out += rows_text(
          s,
          "SELECT VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() AND "
          "TABLE_NAME = '" +
              name + "'");
      out += rows_text(s, "SELECT * FROM `" + name + "`");
      continue;
    }
    if (type == "SEQUENCE") {
      out += rows_text(s, "SELECT * FROM `" + name + "`");
      continue;
    }
    out += rows_text(s, "SHOW CREATE TABLE `" + name + "`");
    const std::string checksum = rows_text(s, "CHECKSUM TABLE `" + name + "`");
    out += checksum.substr(checksum.find('|'));  // without the database's name
    std::string columns;
    std::string order;
    for (const Row& c : must(s.execute("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
                                       "DATABASE() AND TABLE_NAME = '" + name + "' ORDER BY ORDINAL_POSITION"))
                            .rows) {
      columns += (columns.empty() ? "`" : ", `") + value_text(c[0]) + "`";
      order += (order.empty() ? "" : ", ") + std::to_string(order.empty() ? 1 : std::count(order.begin(), order.end(), ',') + 2);
    }
    const std::string history = type == "SYSTEM VERSIONED" ? ", ROW_START, ROW_END" : "";
    const std::string all = type == "SYSTEM VERSIONED" ? " FOR SYSTEM_TIME ALL" : "";
    out += rows_text(s, "SELECT " + columns + history + " FROM `" + name + "`" + all + " ORDER BY " + order);
  }
  out +=
      rows_text(s,
                "SELECT ROUTINE_TYPE, ROUTINE_NAME, ROUTINE_DEFINITION, IS_DETERMINISTIC, SQL_DATA_ACCESS, "
                "SQL_MODE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() ORDER BY 1, 2");
  out += rows_text(
      s,
      "SELECT TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_TIMING, ACTION_ORDER, "
      "ACTION_STATEMENT, SQL_MODE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() "
      "ORDER BY 1");
  out += rows_text(s,
                   "SELECT EVENT_NAME, EVENT_DEFINITION, INTERVAL_VALUE, INTERVAL_FIELD, STATUS FROM "
                   "information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() ORDER BY 1");
  // A view's definition names its database; the copy is in another one.
  const std::string qualifier =
      "`" + value_text(must(s.execute("SELECT DATABASE()")).rows.at(0).at(0)) + "`.";
  for (std::size_t at = out.find(qualifier); at != std::string::npos; at = out.find(qualifier, at)) {
    out.erase(at, qualifier.size());
  }
  return out;
}

void fresh_database(const std::string& name) {
  auto admin = open_db("");
  must(admin->execute("DROP DATABASE IF EXISTS `" + name + "`"));
  must(admin->execute("CREATE DATABASE `" + name + "`"));
}

}  // namespace

TEST_CASE("full copy: every object kind, with generated, invisible and system-versioned columns") {
  fresh_database("distdb_copy_src");
  fresh_database("distdb_copy_dst");
  auto src = open_db("distdb_copy_src");
  for (const std::string sql : {
           "CREATE TABLE parent (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(20))",
           "CREATE TABLE child (id INT PRIMARY KEY, parent_id INT, FOREIGN KEY (parent_id) REFERENCES parent (id))",
           "CREATE TABLE g (a INT, b INT AS (a * 2) VIRTUAL, c INT AS (a + 1) STORED, d INT INVISIBLE DEFAULT 5, "
           "e BLOB, f DECIMAL(30,10), j JSON)",
           "CREATE TABLE audit (n INT)",
           "CREATE TABLE sv (a INT PRIMARY KEY, v INT) WITH SYSTEM VERSIONING",
           "CREATE TABLE fl (id INT PRIMARY KEY, e FLOAT, d DOUBLE)",
           "INSERT INTO fl VALUES (1, 1/3, 1/3), (2, -3.4028234e38, 1e-300), (3, 1.17549435e-38, NULL)",
           "CREATE TABLE gone (x INT)",
           "CREATE VIEW dangling AS SELECT x FROM gone",
           "DROP TABLE gone",  // the view is now invalid: it cannot be created again
           "CREATE SEQUENCE s START WITH 10 INCREMENT BY 5 NOCACHE",
           "INSERT INTO parent (name) VALUES ('a'), ('b\\\\c'), ('it''s')",
           "DELETE FROM parent WHERE id = 3",  // the counter stays at 4
           "INSERT INTO child VALUES (1, 1), (2, 2)",
           "INSERT INTO g (a, d, e, f, j) VALUES (1, 7, X'00FF10', 12345678901234567890.0123456789, '{\"k\": [1]}'), "
           "(2, DEFAULT, NULL, NULL, NULL)",
           "INSERT INTO sv VALUES (1, 1)",
           "UPDATE sv SET v = 2 WHERE a = 1",
           "SELECT NEXTVAL(s)",
           "SELECT NEXTVAL(s)",
           "CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2",
           "CREATE PROCEDURE add_parent(n VARCHAR(20)) BEGIN INSERT INTO parent (name) VALUES (n); "
           "INSERT INTO audit VALUES (1); END",
           "CREATE VIEW v1 AS SELECT id, twice(id) AS t FROM parent",
           "CREATE VIEW v0 AS SELECT * FROM v1 WHERE t > 2",  // reads v1: created after it
           "CREATE TRIGGER tr BEFORE INSERT ON child FOR EACH ROW BEGIN INSERT INTO audit VALUES (NEW.id); "
           "SET NEW.parent_id = COALESCE(NEW.parent_id, 1); END",
           "CREATE EVENT ev ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM audit",
       }) {
    CAPTURE(sql);
    must(src->execute(sql));
  }
  auto dst = open_db("distdb_copy_dst");
  // Objects the copy must replace.
  for (const std::string sql : {"CREATE TABLE parent (x INT)", "CREATE TABLE stale (x INT)",
                                "CREATE VIEW sv2 AS SELECT 1", "CREATE SEQUENCE s2",
                                "CREATE PROCEDURE old() SELECT 1"}) {
    must(dst->execute(sql));
  }
  const std::string mode_before = rows_text(*dst, "SELECT @@SESSION.sql_mode, @@SESSION.foreign_key_checks");

  TempFile file;
  auto snapshot = write_snapshot(*src, file.path);
  REQUIRE_MESSAGE(snapshot.ok(), (snapshot.ok() ? "" : snapshot.error().message));
  CHECK(snapshot->bytes == std::filesystem::file_size(file.path));
  CHECK(sha256_of_file(file.path).value() == snapshot->sha256);
  const auto restored = restore_snapshot(*dst, file.path);
  REQUIRE_MESSAGE(restored.ok(), (restored.ok() ? "" : restored.error().message));

  // The invalid view is not carried; everything else is.
  must(src->execute("DROP VIEW dangling"));
  const std::string expected = fingerprint(*src);
  CHECK(expected.find("SYSTEM VERSIONED sv") != std::string::npos);
  CHECK(expected.find("SEQUENCE s") != std::string::npos);
  CHECK(fingerprint(*dst) == expected);
  CHECK(rows_text(*dst, "SELECT @@SESSION.sql_mode, @@SESSION.foreign_key_checks") == mode_before);
  // The copy behaves as the original: counters, sequences, triggers, routines.
  for (Storage* s : {src.get(), dst.get()}) {
    must(s->execute("CALL add_parent('z')"));
    must(s->execute("INSERT INTO child (id) VALUES (3)"));
  }
  CHECK(rows_text(*dst, "SELECT id, name FROM parent ORDER BY id") ==
        rows_text(*src, "SELECT id, name FROM parent ORDER BY id"));
  CHECK(rows_text(*dst, "SELECT NEXTVAL(s)") == rows_text(*src, "SELECT NEXTVAL(s)"));
  CHECK(rows_text(*dst, "SELECT COUNT(*), SUM(n) FROM audit") ==
        rows_text(*src, "SELECT COUNT(*), SUM(n) FROM audit"));
  CHECK(rows_text(*dst, "SELECT parent_id FROM child WHERE id = 3") == "1|\n");

  // A copy of the copy is the same again (installing over every kind of object).
  auto again = write_snapshot(*dst, file.path);
  REQUIRE(again.ok());
  REQUIRE(restore_snapshot(*src, file.path).ok());
  CHECK(fingerprint(*src) == fingerprint(*dst));
}

TEST_CASE("full copy: a file cut short, corrupt or from another backend leaves the database as it was") {
  fresh_database("distdb_copy_src");
  fresh_database("distdb_copy_dst");
  auto src = open_db("distdb_copy_src");
  auto dst = open_db("distdb_copy_dst");
  must(src->execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)"));
  must(src->execute("INSERT INTO t VALUES (1, 'one'), (2, 'two')"));
  must(dst->execute("CREATE TABLE kept (x INT)"));
  must(dst->execute("INSERT INTO kept VALUES (7)"));
  TempFile file;
  REQUIRE(write_snapshot(*src, file.path).ok());
  std::string whole;
  {
    std::ifstream in(file.path, std::ios::binary);
    whole.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string before = fingerprint(*dst);
  const auto header_end = whole.find('\n');
  struct Case {
    std::string name;
    std::string bytes;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"cut short", whole.substr(0, whole.size() - 5), "ends in the middle"},
      {"cut in a statement", whole.substr(0, whole.size() / 2), "ends in the middle"},
      {"bytes after the end", whole + "x", "bytes follow its trailer"},
      {"another backend", "distdb-snapshot 1 sqlite" + whole.substr(header_end), "made by a sqlite member"},
      {"not a copy", std::string(400000, '['), "not a distdb full copy"},
      {"a length out of bounds", whole.substr(0, header_end + 1) + "99999999999999999999999\n",
       "no valid length"},
      {"a wrong count", whole.substr(0, whole.rfind("end ")) + "end 1\n", "trailer counts"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    {
      std::ofstream out(file.path, std::ios::binary | std::ios::trunc);
      out << c.bytes;
    }
    const auto restored = restore_snapshot(*dst, file.path);
    REQUIRE_FALSE(restored.ok());
    CHECK_MESSAGE(restored.error().message.find(c.says) != std::string::npos, restored.error().message);
    CHECK(fingerprint(*dst) == before);
  }
  CHECK_FALSE(restore_snapshot(*dst, file.path + ".missing").ok());
  CHECK(fingerprint(*dst) == before);
}

TEST_CASE("full copy: a table larger than any statement travels in INSERTs of bounded size") {
  fresh_database("distdb_copy_src");
  fresh_database("distdb_copy_dst");
  auto src = open_db("distdb_copy_src");
  auto dst = open_db("distdb_copy_dst");
  must(src->execute("CREATE TABLE big (id INT PRIMARY KEY, pad LONGTEXT)"));
  // About 24 MiB in 3,000 rows of 8 KiB, and one row of 3 MiB alone.
  must(src->execute("INSERT INTO big SELECT seq, REPEAT(CHAR(65 + seq % 26), 8192) FROM seq_1_to_3000"));
  must(src->execute("INSERT INTO big VALUES (0, REPEAT('z', 3 * 1024 * 1024))"));
  TempFile file;
  auto made = write_snapshot(*src, file.path);
  REQUIRE(made.ok());
  CHECK(made->bytes > 24u * 1024 * 1024);
  // Every statement of the file is at most one row past the 1 MiB mark.
  std::ifstream in(file.path, std::ios::binary);
  std::string line;
  std::getline(in, line);
  std::size_t largest_multi_row = 0;
  std::size_t statements = 0;
  while (std::getline(in, line) && line.rfind("end ", 0) != 0) {
    const std::size_t length = std::stoull(line);
    std::string statement(length, '\0');
    in.read(statement.data(), static_cast<std::streamsize>(length));
    in.get();
    ++statements;
    if (statement.find("), (") != std::string::npos) largest_multi_row = std::max(largest_multi_row, length);
  }
  CHECK(statements > 24);
  CHECK(largest_multi_row > 0);
  CHECK(largest_multi_row < 1024 * 1024 + 16 * 1024);
  REQUIRE(restore_snapshot(*dst, file.path).ok());
  CHECK(fingerprint(*dst) == fingerprint(*src));
}
