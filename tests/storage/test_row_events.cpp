// Row-based shipping (storage/mariadb_row_events.hpp) against two real
// MariaDB servers of DISTDB_TEST_MARIADB: server 0 is the coordinator, whose
// binary log a RowEventTap reads, server 1 the member, which applies the
// effects with BINLOG inside its own XA transaction. Both run distdb's
// bookkeeping in the same transactions, on distdb_applied / distdb_log
// tables of the scratch database, as the replication executor does.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "distdb/storage.hpp"
#include "mariadb_env.hpp"
#include "storage/mariadb_row_events.hpp"
#include "storage/mariadb_storage.hpp"
#include "storage_text.hpp"

using namespace distdb;
using distdb::mariadb::EffectsEvent;
using distdb::mariadb::RowEventTap;
using distdb::test::mariadb_db_config;
using distdb::test::must;
using distdb::test::rows_text;
using distdb::test::value_text;

namespace {

constexpr const char* kDb = "distdb_rows_test";
// Dump server ids of the tests' taps: far from the servers' own (1, 2, ...).
constexpr std::uint32_t kTapId = 4242;

bool two_servers() {
  if (distdb::test::mariadb_servers().size() >= 2) return true;
  MESSAGE("skipped: row shipping needs two MariaDB servers in DISTDB_TEST_MARIADB");
  return false;
}

std::unique_ptr<Storage> open_db(std::size_t server, const std::string& database) {
  auto s = open_mariadb_storage(mariadb_db_config(server, database));
  REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
  return std::move(s).value();
}

void must_ok(const Status& st) {
  REQUIRE_MESSAGE(st.ok(), (st.ok() ? "" : st.error().message));
}

std::string one(Storage& s, const std::string& sql) {
  const auto rs = must(s.execute(sql));
  REQUIRE(!rs.rows.empty());
  return value_text(rs.rows.at(0).at(0));
}

// Everything a table holds: its checksum and every row, ordered by all its
// columns, invisible columns and (system-versioned) history included; a
// sequence's one row.
std::string table_image(Storage& s, const std::string& table) {
  const std::string type = one(s,
                               "SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                               "DATABASE() AND TABLE_NAME = '" +
                                   table + "'");
  if (type == "SEQUENCE") return rows_text(s, "SELECT * FROM `" + table + "`");
  std::string columns;
  std::string order;
  int n = 0;
  for (const Row& c :
       must(s.execute("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
                      "DATABASE() AND TABLE_NAME = '" +
                      table + "' ORDER BY ORDINAL_POSITION"))
           .rows) {
    columns += (columns.empty() ? "`" : ", `") + value_text(c[0]) + "`";
    order += (order.empty() ? "" : ", ") + std::to_string(++n);
  }
  const bool versioned = type == "SYSTEM VERSIONED";
  if (versioned) {
    columns += ", ROW_START, ROW_END";
    order += ", " + std::to_string(n + 1) + ", " + std::to_string(n + 2);
  }
  const std::string checksum = rows_text(s, "CHECKSUM TABLE `" + table + "`");
  return checksum.substr(checksum.find('|')) +
         rows_text(s, "SELECT " + columns + " FROM `" + table + "`" +
                          (versioned ? " FOR SYSTEM_TIME ALL" : "") + " ORDER BY " + order);
}

// The kinds and tables of an effects string's events, e.g.
// "FDE Table_map(db.t) Write_rows! " (! = STMT_END_F); it must parse.
std::string describe(const std::string& effects) {
  if (effects.empty()) return "";
  auto events = mariadb::parse_effects(effects);
  REQUIRE_MESSAGE(events.ok(), (events.ok() ? "" : events.error().message));
  std::string out;
  for (const EffectsEvent& ev : *events) {
    switch (ev.type) {
      case 15:
        out += "FDE";
        break;
      case 19:
        out += "Table_map(" + ev.table + ")";
        break;
      case 23:
      case 30:
        out += "Write_rows";
        break;
      case 24:
      case 31:
        out += "Update_rows";
        break;
      case 25:
      case 32:
        out += "Delete_rows";
        break;
      default:
        out += "type" + std::to_string(ev.type);
        break;
    }
    if (ev.rows_flags & 1) out += "!";
    out += " ";
  }
  return out;
}

// The server's own view of XA transaction `xid`'s group in its binary log
// (SHOW BINLOG EVENTS of the current file), in describe()'s notation, Rows
// events named after their table: what the effects were filtered from.
std::string server_view(Storage& s, const std::string& xid) {
  std::string hex;
  for (const unsigned char c : xid) {
    hex += "0123456789abcdef"[c >> 4];
    hex += "0123456789abcdef"[c & 15];
  }
  const std::string file = one(s, "SHOW MASTER STATUS");
  const auto events = must(s.execute("SHOW BINLOG EVENTS IN '" + file + "'"));
  std::map<std::string, std::string> tables;  // "table_id: N" -> db.table
  std::string out;
  bool in = false;
  for (const Row& row : events.rows) {
    const std::string type = value_text(row.at(2));
    const std::string info = value_text(row.at(5));
    if (type == "Gtid") in = info.find("XA START X'" + hex + "'") != std::string::npos;
    if (!in) continue;
    const auto id_end = info.find_first_of(" ", info.find("table_id: ") + 10);
    const std::string id = info.substr(0, id_end);
    if (type == "Table_map") {
      tables[id] = info.substr(info.find('(') + 1, info.find(')') - info.find('(') - 1);
      out += "Table_map(" + tables[id] + ") ";
    } else if (type.find("_rows") != std::string::npos && type != "Annotate_rows") {
      out += type.substr(0, type.find("_v1")) + "(" + tables[id] + ")" +
             (info.find("STMT_END_F") != std::string::npos ? "!" : "") + " ";
    } else if (type == "XA_prepare") {
      break;
    }
  }
  return out;
}

void fresh_database(std::size_t server, const std::string& name) {
  auto admin = open_db(server, "");
  must(admin->execute("DROP DATABASE IF EXISTS `" + name + "`"));
  must(admin->execute("CREATE DATABASE `" + name + "`"));
}

// A coordinator (server 0) and a member (server 1) with the same schema in
// `database`, created as text on each (as distdb replicates DDL), and a tap
// on the coordinator's binary log opened after it.
struct Pair {
  std::unique_ptr<Storage> coord;
  std::unique_ptr<Storage> member;
  std::unique_ptr<RowEventTap> tap;
  int seq = 0;  // of the last entry shipped

  explicit Pair(const std::vector<std::string>& schema, const std::string& coord_db = kDb,
                const std::string& member_db = kDb) {
    fresh_database(0, coord_db);
    fresh_database(1, member_db);
    coord = open_db(0, coord_db);
    member = open_db(1, member_db);
    for (Storage* s : {coord.get(), member.get()}) {
      must(s->execute(
          "CREATE TABLE distdb_applied (id INT PRIMARY KEY, epoch BIGINT NOT NULL, seq BIGINT NOT NULL)"));
      must(s->execute(
          "CREATE TABLE distdb_log (seq BIGINT PRIMARY KEY, epoch BIGINT NOT NULL, statements LONGTEXT "
          "NOT NULL)"));
      must(s->execute("INSERT INTO distdb_applied VALUES (1, 0, 0)"));
      for (const std::string& sql : schema) {
        CAPTURE(sql);
        must(s->execute(sql));
      }
    }
    open_tap();
  }

  void open_tap() {
    tap.reset();
    auto t = RowEventTap::open(mariadb_db_config(0, ""), kTapId);
    REQUIRE_MESSAGE(t.ok(), (t.ok() ? "" : t.error().message));
    tap = std::move(t).value();
  }

  // Runs `statements` and the coordinator's bookkeeping (epoch 1) in XA
  // transaction `id`, prepares it, captures its effects, commits.
  std::string capture(const std::string& id, const std::vector<std::string>& statements) {
    ++seq;
    must_ok(coord->begin(id));
    for (const std::string& sql : statements) {
      CAPTURE(sql);
      must(coord->execute_in(id, sql));
    }
    must(coord->execute_in(
        id, "UPDATE distdb_applied SET epoch = 1, seq = " + std::to_string(seq) + " WHERE id = 1"));
    must(coord->execute_in(id, "INSERT INTO distdb_log (seq, epoch, statements) VALUES (" +
                                   std::to_string(seq) + ", 1, 'the coordinator''s entry')"));
    if (seq > 3) {
      must(coord->execute_in(id, "DELETE FROM distdb_log WHERE seq <= " + std::to_string(seq - 3)));
    }
    must_ok(coord->prepare(id));
    auto effects = tap->effects_of(id);
    REQUIRE_MESSAGE(effects.ok(), (effects.ok() ? "" : effects.error().message));
    must_ok(coord->commit(id));
    // Never an event on a distdb_ table; always parses.
    const std::string events = describe(*effects);
    CHECK_MESSAGE(events.find(".distdb_") == std::string::npos, events);
    return *effects;
  }

  // Applies `effects` on the member in its own XA transaction `id`: BINLOG
  // first, then the member's own bookkeeping (epoch 2, the same seq: a
  // coordinator's distdb_log row that leaked would collide with it).
  void apply(const std::string& id, const std::string& effects, bool commit = true) {
    must_ok(member->begin(id));
    if (!effects.empty()) must(member->execute_in(id, mariadb::apply_statement(effects)));
    must(member->execute_in(
        id, "UPDATE distdb_applied SET epoch = 2, seq = " + std::to_string(seq) + " WHERE id = 1"));
    must(member->execute_in(id, "INSERT INTO distdb_log (seq, epoch, statements) VALUES (" +
                                    std::to_string(seq) + ", 2, 'the member''s own')"));
    must_ok(member->prepare(id));
    must_ok(commit ? member->commit(id) : member->rollback(id));
  }

  std::string ship(const std::vector<std::string>& statements) {
    const std::string id = "rows-" + std::to_string(seq + 1);
    std::string effects = capture(id, statements);
    apply(id, effects);
    return effects;
  }

  void expect_same(const std::string& table) {
    CAPTURE(table);
    const std::string expected = table_image(*coord, table);
    CHECK(table_image(*member, table) == expected);
  }

  // The member's bookkeeping is its own: nothing of the coordinator's.
  void expect_own_bookkeeping() {
    CHECK(one(*member, "SELECT COUNT(*) FROM distdb_log WHERE epoch <> 2") == "0");
    CHECK(rows_text(*member, "SELECT epoch, seq FROM distdb_applied") == "2|" + std::to_string(seq) + "|\n");
  }
};

}  // namespace

TEST_CASE("row shipping: non-deterministic values and every kind of table arrive identical") {
  if (!two_servers()) return;
  Pair p({
      "CREATE TABLE a (id INT AUTO_INCREMENT PRIMARY KEY, u CHAR(36), r DOUBLE, ts DATETIME(6), "
      "d CHAR(36) DEFAULT (UUID()))",
      "CREATE TABLE b (id INT AUTO_INCREMENT PRIMARY KEY, x INT)",
      "CREATE TABLE blog (id INT AUTO_INCREMENT PRIMARY KEY, b_id INT, u CHAR(36), at TIMESTAMP(6) DEFAULT "
      "CURRENT_TIMESTAMP(6))",
      "CREATE TRIGGER b_ai AFTER INSERT ON b FOR EACH ROW INSERT INTO blog (b_id, u) VALUES (NEW.id, UUID())",
      "CREATE TABLE ai (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10))",
      "CREATE SEQUENCE s START WITH 100 INCREMENT BY 1 CACHE 10",
      "CREATE TABLE sv (id INT PRIMARY KEY, v BIGINT)",
      "CREATE TABLE g (id INT PRIMARY KEY, a INT, inv INT INVISIBLE DEFAULT 7, vg INT AS (a * 2) VIRTUAL, "
      "sg INT AS (a + 1) STORED, u CHAR(36) INVISIBLE DEFAULT (UUID()))",
      "CREATE TABLE ver (id INT PRIMARY KEY, x VARCHAR(40)) WITH SYSTEM VERSIONING",
      "CREATE TABLE nopk (a INT, b VARCHAR(40))",
  });

  SUBCASE("UUID(), RAND(), NOW(6), a DEFAULT (UUID()) column") {
    p.ship({"INSERT INTO a (u, r, ts) VALUES (UUID(), RAND(), NOW(6)), (UUID(), RAND(), NOW(6))"});
    p.expect_same("a");
    CHECK(one(*p.member, "SELECT COUNT(DISTINCT d) FROM a") == "2");
    // A multi-row UPDATE with RAND() and UUID(), then a DELETE.
    p.ship({"UPDATE a SET r = RAND(), u = UUID()"});
    p.expect_same("a");
    p.ship({"DELETE FROM a WHERE id = 1"});
    p.expect_same("a");
    CHECK(one(*p.member, "SELECT COUNT(*) FROM a") == "1");
  }
  SUBCASE("a trigger that inserts UUID() into another table (the member's trigger does not fire again)") {
    p.ship({"INSERT INTO b (x) VALUES (1), (2)"});
    p.expect_same("b");
    p.expect_same("blog");
    CHECK(one(*p.member, "SELECT COUNT(*) FROM blog") == "2");
  }
  SUBCASE("auto-increment after an XA ROLLBACK burned ids on the coordinator only") {
    must_ok(p.coord->begin("burn"));
    must(p.coord->execute_in("burn", "INSERT INTO ai (v) VALUES ('burnt'), ('burnt'), ('burnt')"));
    must_ok(p.coord->prepare("burn"));
    must_ok(p.coord->rollback("burn"));
    p.ship({"INSERT INTO ai (v) VALUES ('x'), ('y')"});
    p.expect_same("ai");
    CHECK(rows_text(*p.member, "SELECT id FROM ai ORDER BY id") == "4|\n5|\n");
  }
  SUBCASE("NEXTVAL: the sequence's separate group travels too") {
    const std::string first =
        p.ship({"INSERT INTO sv VALUES (1, NEXTVAL(s)), (2, NEXTVAL(s)), (3, NEXTVAL(s))"});
    CHECK(describe(first).find("Table_map(distdb_rows_test.s)") != std::string::npos);
    // 12 more: crosses the cache of 10, so the sequence is logged again.
    p.ship({"INSERT INTO sv SELECT seq, NEXTVAL(s) FROM seq_10_to_21"});
    p.expect_same("sv");
    p.expect_same("s");
    // After a failover the member hands out values the coordinator never did.
    const std::string max_used = one(*p.coord, "SELECT MAX(v) FROM sv");
    CHECK(std::stoll(one(*p.member, "SELECT NEXTVAL(s)")) > std::stoll(max_used));
  }
  SUBCASE("INVISIBLE and VIRTUAL/STORED generated columns") {
    p.ship({"INSERT INTO g (id, a) VALUES (1, 10), (2, 20)", "UPDATE g SET a = a + 1 WHERE id = 2"});
    p.expect_same("g");
    CHECK(one(*p.member, "SELECT COUNT(DISTINCT u) FROM g") == "2");
  }
  SUBCASE("a system-versioned table: rows and history") {
    p.ship({"INSERT INTO ver VALUES (1, UUID()), (2, 'two')"});
    p.ship({"UPDATE ver SET x = UUID() WHERE id = 1", "DELETE FROM ver WHERE id = 2"});
    p.expect_same("ver");
    // 1 and 2 as inserted, then 1's history row and 2's, now ended.
    CHECK(one(*p.member, "SELECT COUNT(*) FROM ver FOR SYSTEM_TIME ALL") == "3");
    CHECK(one(*p.member, "SELECT COUNT(*) FROM ver") == "1");
  }
  SUBCASE("a table without a primary key, with duplicate rows") {
    p.ship({"INSERT INTO nopk VALUES (1, 'a'), (1, 'a'), (2, UUID())"});
    p.ship({"UPDATE nopk SET b = UUID() WHERE a = 1 LIMIT 1", "DELETE FROM nopk WHERE a = 2"});
    p.expect_same("nopk");
    CHECK(one(*p.member, "SELECT COUNT(*) FROM nopk WHERE b = 'a'") == "1");
  }
  // Every table, whatever the subcase did (not the sequence, which the
  // member's own NEXTVAL above moved on).
  for (const char* t : {"a", "b", "blog", "ai", "sv", "g", "ver", "nopk"}) p.expect_same(t);
  p.expect_own_bookkeeping();
}

TEST_CASE("row shipping: the bookkeeping statements are whole runs, each ending in STMT_END_F") {
  if (!two_servers()) return;
  Pair p({"CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40))"});
  // Interleaved with the user's statements: nothing is rewritten, every run
  // the server wrote for t is there with its own STMT_END_F.
  const std::string effects = p.capture(
      "runs-1", {"INSERT INTO t VALUES (1, UUID())", "UPDATE distdb_applied SET seq = 100 WHERE id = 1",
                 "INSERT INTO t VALUES (2, 'b'), (3, 'c')", "UPDATE t SET v = 'x' WHERE id > 1"});
  const std::string t = "(distdb_rows_test.t)";
  const std::string applied = "(distdb_rows_test.distdb_applied)";
  const std::string log = "(distdb_rows_test.distdb_log)";
  CHECK(server_view(*p.coord, "runs-1") ==
        "Table_map" + t + " Write_rows" + t + "! Table_map" + applied + " Update_rows" + applied +
            "! Table_map" + t + " Write_rows" + t + "! Table_map" + t + " Update_rows" + t + "! Table_map" +
            applied + " Update_rows" + applied + "! Table_map" + log + " Write_rows" + log + "! ");
  CHECK(describe(effects) ==
        "FDE Table_map(distdb_rows_test.t) Write_rows! Table_map(distdb_rows_test.t) Write_rows! "
        "Table_map(distdb_rows_test.t) Update_rows! ");
  p.apply("runs-1", effects);
  p.expect_same("t");
  p.expect_own_bookkeeping();
}

TEST_CASE("row shipping: a statement that writes a user table and a distdb_ table keeps its user rows") {
  if (!two_servers()) return;
  // Not something distdb does: a trigger on a user table writing a
  // bookkeeping table. The statement's STMT_END_F is on the distdb_ event;
  // it moves to the user table's last event (CRC recomputed).
  Pair p({"CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40))",
          "CREATE TABLE distdb_audit (n INT AUTO_INCREMENT PRIMARY KEY, u CHAR(36))",
          "CREATE TRIGGER t_ai AFTER INSERT ON t FOR EACH ROW INSERT INTO distdb_audit (u) VALUES (UUID())"});
  const std::string effects = p.capture(
      "mixed-1", {"INSERT INTO t (v) VALUES (UUID()), (UUID())", "INSERT INTO t (v) VALUES ('after')"});
  // As the server logged it (one Rows event per table and row, the last on
  // distdb_audit), then as shipped (parse_effects() checked the CRCs).
  const std::string t = "(distdb_rows_test.t)";
  const std::string audit = "(distdb_rows_test.distdb_audit)";
  CHECK(server_view(*p.coord, "mixed-1")
            .find("Table_map" + t + " Table_map" + audit + " Write_rows" + t + " Write_rows" + audit +
                  " Write_rows" + t + " Write_rows" + audit + "! Table_map" + t + " Table_map" + audit +
                  " Write_rows" + t + " Write_rows" + audit + "! ") == 0);
  CHECK(describe(effects) == "FDE Table_map" + t + " Write_rows Write_rows! Table_map" + t + " Write_rows! ");
  // (The member's trigger does not fire for applied rows: its distdb_audit stays empty.)
  p.apply("mixed-1", effects);
  p.expect_same("t");
  CHECK(one(*p.member, "SELECT COUNT(*) FROM distdb_audit") == "0");
  CHECK(one(*p.coord, "SELECT COUNT(*) FROM distdb_audit") == "3");
  p.expect_own_bookkeeping();
}

TEST_CASE("row shipping: nothing but bookkeeping, or no change at all, gives empty effects") {
  if (!two_servers()) return;
  Pair p({"CREATE TABLE t (id INT PRIMARY KEY)"});
  CHECK(p.capture("book-1", {}) == "");
  // An XA transaction that changes nothing logs nothing: the call stops at
  // the end of the log instead of waiting (here in the next binlog file).
  must(p.coord->execute("FLUSH BINARY LOGS"));
  must_ok(p.coord->begin("none-1"));
  must(p.coord->execute_in("none-1", "SELECT * FROM t"));
  must(p.coord->execute_in("none-1", "UPDATE t SET id = 5 WHERE id = 4"));
  must_ok(p.coord->prepare("none-1"));
  const auto started = std::chrono::steady_clock::now();
  auto effects = p.tap->effects_of("none-1");
  const auto took = std::chrono::steady_clock::now() - started;
  REQUIRE_MESSAGE(effects.ok(), (effects.ok() ? "" : effects.error().message));
  CHECK(*effects == "");
  CHECK(took < std::chrono::seconds(1));
  must_ok(p.coord->commit("none-1"));
  // The tap goes on as before.
  p.ship({"INSERT INTO t VALUES (1)"});
  p.expect_same("t");
}

TEST_CASE("row shipping: a member's XA ROLLBACK after BINLOG leaves nothing") {
  if (!two_servers()) return;
  Pair p({"CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, u CHAR(36))"});
  p.ship({"INSERT INTO t (u) VALUES (UUID())"});
  const std::string before = table_image(*p.member, "t");
  const std::string effects = p.capture("rb-1", {"INSERT INTO t (u) VALUES (UUID()), (UUID())"});
  p.apply("rb-1", effects, /*commit=*/false);
  CHECK(table_image(*p.member, "t") == before);
  CHECK(one(*p.member, "SELECT COUNT(*) FROM distdb_log WHERE seq = 2") == "0");
  // Applied again, committed this time.
  p.apply("rb-2", effects);
  p.expect_same("t");
}

TEST_CASE("row shipping: a row the member lacks makes BINLOG fail, not skip") {
  if (!two_servers()) return;
  Pair p({"CREATE TABLE t (id INT PRIMARY KEY, v INT)"});
  // A row on the coordinator only (written outside the binary log).
  auto unlogged = open_db(0, kDb);
  must(unlogged->execute("SET SESSION sql_log_bin = 0"));
  must(unlogged->execute("INSERT INTO t VALUES (1, 1)"));
  const std::string effects = p.capture("miss-1", {"UPDATE t SET v = 2 WHERE id = 1"});
  must_ok(p.member->begin("miss-1"));
  auto applied = p.member->execute_in("miss-1", mariadb::apply_statement(effects));
  REQUIRE_FALSE(applied.ok());
  CHECK(applied.error().kind == ErrorKind::sql);
  CHECK(applied.error().code == 1032);
  must_ok(p.member->rollback("miss-1"));
}

TEST_CASE("row shipping: binary log rotations, between and inside the effects") {
  if (!two_servers()) return;
  Pair p({"CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, u CHAR(36))"});
  p.ship({"INSERT INTO t (u) VALUES (UUID())"});
  must(p.coord->execute("FLUSH BINARY LOGS"));
  const std::string after_flush = p.ship({"INSERT INTO t (u) VALUES (UUID())"});
  CHECK(describe(after_flush) == "FDE Table_map(distdb_rows_test.t) Write_rows! ");
  p.expect_same("t");
  // A committed rows-only group (a write made without distdb) before a
  // rotation, then the transaction: the effects carry both, each after the
  // FDE of its binlog file, and apply as one BINLOG statement.
  must(p.coord->execute("INSERT INTO t (u) VALUES ('outside distdb')"));
  must(p.coord->execute("FLUSH BINARY LOGS"));
  const std::string both = p.ship({"INSERT INTO t (u) VALUES (UUID())"});
  CHECK(describe(both) ==
        "FDE Table_map(distdb_rows_test.t) Write_rows! FDE Table_map(distdb_rows_test.t) Write_rows! ");
  p.expect_same("t");
  CHECK(p.tap->position().find("binlog.") == 0);
  p.expect_own_bookkeeping();
}

TEST_CASE("row shipping: DDL and CREATE TABLE ... SELECT between captures are skipped") {
  if (!two_servers()) return;
  Pair p({"CREATE TABLE t (id INT PRIMARY KEY, u CHAR(36))"});
  p.ship({"INSERT INTO t VALUES (1, UUID())"});
  // DDL in autocommit: distdb replicates it as text, on each server.
  for (const char* ddl :
       {"CREATE TABLE t2 (id INT PRIMARY KEY)", "ALTER TABLE t ADD COLUMN n INT DEFAULT 5"}) {
    must(p.coord->execute(ddl));
    must(p.member->execute(ddl));
  }
  must(p.coord->execute("CREATE TABLE t3 (PRIMARY KEY (id)) SELECT id, u FROM t"));
  const std::string effects = p.ship({"INSERT INTO t VALUES (2, UUID(), 6)", "INSERT INTO t2 VALUES (1)"});
  CHECK(describe(effects) ==
        "FDE Table_map(distdb_rows_test.t) Write_rows! Table_map(distdb_rows_test.t2) Write_rows! ");
  p.expect_same("t");
  p.expect_same("t2");
}

TEST_CASE("row shipping: a statement logged as text in the transaction is refused, not skipped") {
  if (!two_servers()) return;
  Pair p({"CREATE TABLE t (id INT PRIMARY KEY)"});
  // A session that logs statements (its own binlog_format, which needs
  // privileges distdb's account has).
  auto statements = open_db(0, kDb);
  must(statements->execute("SET SESSION binlog_format = STATEMENT"));
  must_ok(statements->begin("text-1"));
  must(statements->execute_in("text-1", "INSERT INTO t VALUES (1)"));
  must_ok(statements->prepare("text-1"));
  auto effects = p.tap->effects_of("text-1");
  REQUIRE_FALSE(effects.ok());
  CHECK(effects.error().kind == ErrorKind::sql);
  CHECK(effects.error().message.find("logged a statement as text") != std::string::npos);
  must_ok(statements->rollback("text-1"));
  // The tap is still good.
  p.ship({"INSERT INTO t VALUES (2)"});
  p.expect_same("t");
}

TEST_CASE("row shipping: concurrent transactions each get their own group") {
  if (!two_servers()) return;
  Pair p({"CREATE TABLE t (id INT PRIMARY KEY, u CHAR(36))"});
  auto other = open_db(0, kDb);
  must_ok(p.coord->begin("conc-a"));
  must(p.coord->execute_in("conc-a", "INSERT INTO t VALUES (1, UUID())"));
  must_ok(other->begin("conc-b"));
  must(other->execute_in("conc-b", "INSERT INTO t VALUES (2, UUID())"));
  must_ok(p.coord->prepare("conc-a"));
  must_ok(other->prepare("conc-b"));
  // b first: a's group is read on the way and kept.
  auto b = p.tap->effects_of("conc-b");
  REQUIRE(b.ok());
  auto a = p.tap->effects_of("conc-a");
  REQUIRE(a.ok());
  must_ok(p.coord->commit("conc-a"));
  must_ok(other->commit("conc-b"));
  CHECK(describe(*a) == "FDE Table_map(distdb_rows_test.t) Write_rows! ");
  CHECK(describe(*b) == "FDE Table_map(distdb_rows_test.t) Write_rows! ");
  CHECK(*a != *b);
  p.seq = 1;
  p.apply("conc-a", *a);
  p.seq = 2;
  p.apply("conc-b", *b);
  p.expect_same("t");
  // An id used again after its transaction was decided: the new group.
  const std::string again = p.capture("conc-a", {"INSERT INTO t VALUES (3, UUID())"});
  p.apply("conc-a", again);
  p.expect_same("t");
}

TEST_CASE("row shipping: large effects as several BINLOG statements, and another database name") {
  if (!two_servers()) return;
  Pair p({"CREATE TABLE t (id INT PRIMARY KEY, u CHAR(36), pad VARCHAR(200))"}, kDb, "distdb_rows_member");
  std::vector<std::string> statements;
  for (int i = 0; i < 20; ++i) {
    statements.push_back("INSERT INTO t VALUES (" + std::to_string(i) + ", UUID(), REPEAT('x', 150))");
  }
  statements.push_back("UPDATE t SET u = UUID()");
  const std::string effects = p.capture("big-1", statements);
  auto renamed = mariadb::rename_database(effects, kDb, "distdb_rows_member");
  REQUIRE(renamed.ok());
  CHECK(describe(*renamed).find("Table_map(distdb_rows_member.t)") != std::string::npos);
  CHECK(describe(*renamed).find(std::string("Table_map(") + kDb) == std::string::npos);
  auto pieces = mariadb::apply_statements(*renamed, 2000);
  REQUIRE(pieces.ok());
  CHECK(pieces->size() > 5);
  must_ok(p.member->begin("big-1"));
  for (const std::string& sql : *pieces) must(p.member->execute_in("big-1", sql));
  must_ok(p.member->prepare("big-1"));
  must_ok(p.member->commit("big-1"));
  p.expect_same("t");
  // One piece when the limit allows.
  auto whole = mariadb::apply_statements(*renamed, 1 << 20);
  REQUIRE(whole.ok());
  CHECK(whole->size() == 1);
  CHECK(whole->front() == mariadb::apply_statement(*renamed));
}

TEST_CASE("row shipping: a corrupted effects string does not parse") {
  if (!two_servers()) return;
  Pair p({"CREATE TABLE t (id INT PRIMARY KEY)"});
  const std::string effects = p.capture("bad-1", {"INSERT INTO t VALUES (1)"});
  REQUIRE(mariadb::parse_effects(effects).ok());
  std::string flipped = effects;
  flipped[flipped.size() - 10] ^= 1;
  CHECK_FALSE(mariadb::parse_effects(flipped).ok());
  CHECK_FALSE(mariadb::parse_effects(effects.substr(0, effects.size() - 1)).ok());
  CHECK_FALSE(mariadb::apply_statements(flipped, 1000).ok());
}

TEST_CASE("row shipping: a lost tap fails its call, and a new one works") {
  if (!two_servers()) return;
  Pair p({"CREATE TABLE t (id INT PRIMARY KEY)"});
  p.ship({"INSERT INTO t VALUES (1)"});
  must(p.coord->execute("KILL CONNECTION " + std::to_string(p.tap->connection_id())));
  must_ok(p.coord->begin("lost-1"));
  must(p.coord->execute_in("lost-1", "INSERT INTO t VALUES (2)"));
  must_ok(p.coord->prepare("lost-1"));
  auto effects = p.tap->effects_of("lost-1");
  REQUIRE_FALSE(effects.ok());
  CHECK(effects.error().kind == ErrorKind::storage_unavailable);
  CHECK(effects.error().message.find("binary log dump") != std::string::npos);
  // Broken for good: the next call fails at once.
  auto again = p.tap->effects_of("lost-1");
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().kind == ErrorKind::storage_unavailable);
  must_ok(p.coord->rollback("lost-1"));
  p.open_tap();
  p.ship({"INSERT INTO t VALUES (3)"});
  p.expect_same("t");
}

TEST_CASE("row shipping: compressed row events (which BINLOG refuses) fail the capture") {
  if (!two_servers()) return;
  Pair p({"CREATE TABLE t (id INT PRIMARY KEY, b LONGTEXT)"});
  auto admin = open_db(0, "");
  must(admin->execute("SET GLOBAL log_bin_compress = ON"));
  struct Restore {
    Storage& admin;
    ~Restore() { (void)admin.execute("SET GLOBAL log_bin_compress = OFF"); }
  } restore{*admin};
  // (log_bin_compress is read when a session starts.)
  auto session = open_db(0, kDb);
  must_ok(session->begin("zip-1"));
  must(session->execute_in("zip-1", "INSERT INTO t VALUES (1, REPEAT('ab', 3000))"));
  must_ok(session->prepare("zip-1"));
  auto effects = p.tap->effects_of("zip-1");
  REQUIRE_FALSE(effects.ok());
  CHECK(effects.error().kind == ErrorKind::config);
  CHECK(effects.error().message.find("set log_bin_compress=OFF") != std::string::npos);
  must_ok(session->rollback("zip-1"));
}

TEST_CASE("row shipping: check_row_capture names the setting or privilege to change") {
  if (!two_servers()) return;
  const DbConfig config = mariadb_db_config(0, "");
  std::vector<std::string> warnings;
  auto ok = mariadb::check_row_capture(config, &warnings);
  REQUIRE_MESSAGE(ok.ok(), (ok.ok() ? "" : ok.error().message));
  CHECK(warnings.empty());

  auto admin = open_db(0, "");
  // Restores the server's settings and drops the test account however the case ends.
  struct Restore {
    Storage& admin;
    ~Restore() {
      (void)admin.execute("SET GLOBAL binlog_format = ROW");
      (void)admin.execute("SET GLOBAL binlog_row_image = FULL");
      (void)admin.execute("SET GLOBAL sync_binlog = 1");
      (void)admin.execute("SET GLOBAL log_bin_trust_function_creators = 1");
      (void)admin.execute("SET GLOBAL log_bin_compress = OFF");
      (void)admin.execute("SET GLOBAL slave_exec_mode = STRICT");
      (void)admin.execute("SET GLOBAL slave_run_triggers_for_rbr = NO");
      (void)admin.execute("DROP USER IF EXISTS 'distdb_rows'@'%'");
    }
  } restore{*admin};

  // A tap open meanwhile is not disturbed by the checks' dumps.
  auto tap = RowEventTap::open(config, kTapId + 1);
  REQUIRE(tap.ok());

  must(admin->execute("SET GLOBAL binlog_format = MIXED"));
  must(admin->execute("SET GLOBAL binlog_row_image = MINIMAL"));
  must(admin->execute("SET GLOBAL sync_binlog = 0"));
  must(admin->execute("SET GLOBAL log_bin_trust_function_creators = 0"));
  must(admin->execute("SET GLOBAL log_bin_compress = ON"));
  must(admin->execute("SET GLOBAL slave_exec_mode = IDEMPOTENT"));
  must(admin->execute("SET GLOBAL slave_run_triggers_for_rbr = ENFORCE"));
  warnings.clear();
  auto bad = mariadb::check_row_capture(config, &warnings);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().kind == ErrorKind::config);
  MESSAGE(bad.error().message);
  CHECK(bad.error().message.find("binlog_format=MIXED: set binlog_format=ROW") != std::string::npos);
  CHECK(bad.error().message.find("binlog_row_image=MINIMAL: set binlog_row_image=FULL") != std::string::npos);
  CHECK(bad.error().message.find("set log_bin_compress=OFF") != std::string::npos);
  CHECK(bad.error().message.find("slave_exec_mode=IDEMPOTENT") != std::string::npos);
  CHECK(bad.error().message.find("set slave_exec_mode=STRICT") != std::string::npos);
  CHECK(bad.error().message.find("set slave_run_triggers_for_rbr=NO") != std::string::npos);
  REQUIRE(warnings.size() == 2);
  CHECK(warnings[0].find("sync_binlog=0") != std::string::npos);
  CHECK(warnings[1].find("set log_bin_trust_function_creators=1") != std::string::npos);
  must(admin->execute("SET GLOBAL binlog_format = ROW"));
  must(admin->execute("SET GLOBAL binlog_row_image = FULL"));
  must(admin->execute("SET GLOBAL sync_binlog = 1"));
  must(admin->execute("SET GLOBAL log_bin_trust_function_creators = 1"));
  must(admin->execute("SET GLOBAL log_bin_compress = OFF"));
  must(admin->execute("SET GLOBAL slave_exec_mode = STRICT"));
  must(admin->execute("SET GLOBAL slave_run_triggers_for_rbr = NO"));

  // An account without the privileges: each one named, in turn.
  must(admin->execute("DROP USER IF EXISTS 'distdb_rows'@'%'"));
  must(admin->execute("CREATE USER 'distdb_rows'@'%' IDENTIFIED BY 'pw'"));
  DbConfig weak = config;
  weak.user = "distdb_rows";
  weak.password = "pw";
  auto none = mariadb::check_row_capture(weak);
  REQUIRE_FALSE(none.ok());
  MESSAGE(none.error().message);
  CHECK(none.error().message.find("GRANT BINLOG MONITOR ON *.* TO 'distdb_rows'@'%'") != std::string::npos);
  auto no_tap = RowEventTap::open(weak, kTapId + 2);
  REQUIRE_FALSE(no_tap.ok());
  CHECK(no_tap.error().kind == ErrorKind::config);
  CHECK(no_tap.error().message.find("GRANT BINLOG MONITOR") != std::string::npos);

  must(admin->execute("GRANT BINLOG MONITOR ON *.* TO 'distdb_rows'@'%'"));
  auto monitor = mariadb::check_row_capture(weak);
  REQUIRE_FALSE(monitor.ok());
  MESSAGE(monitor.error().message);
  CHECK(monitor.error().message.find("GRANT REPLICATION SLAVE ON *.*") != std::string::npos);
  CHECK(monitor.error().message.find("BINLOG MONITOR") == std::string::npos);
  no_tap = RowEventTap::open(weak, kTapId + 2);
  REQUIRE_FALSE(no_tap.ok());
  CHECK(no_tap.error().message.find("GRANT REPLICATION SLAVE") != std::string::npos);

  must(admin->execute("GRANT REPLICATION SLAVE ON *.* TO 'distdb_rows'@'%'"));
  auto slave = mariadb::check_row_capture(weak);
  REQUIRE_FALSE(slave.ok());
  MESSAGE(slave.error().message);
  CHECK(slave.error().message.find("GRANT BINLOG REPLAY ON *.* TO 'distdb_rows'@'%'") != std::string::npos);
  CHECK(slave.error().message.find("REPLICATION SLAVE") == std::string::npos);
  CHECK(RowEventTap::open(weak, kTapId + 2).ok());

  must(admin->execute("GRANT BINLOG REPLAY ON *.* TO 'distdb_rows'@'%'"));
  auto all = mariadb::check_row_capture(weak);
  CHECK_MESSAGE(all.ok(), (all.ok() ? "" : all.error().message));

  // The tap opened before the checks still reads.
  auto still = (*tap)->effects_of("nothing-here");
  CHECK_MESSAGE(still.ok(), (still.ok() ? "" : still.error().message));
}

TEST_CASE("row shipping: capture latency of a small transaction") {
  if (!two_servers()) return;
  Pair p({"CREATE TABLE t (id INT PRIMARY KEY, u CHAR(36))"});
  constexpr int kRuns = 300;
  std::vector<double> us;
  us.reserve(kRuns);
  for (int i = 0; i < kRuns; ++i) {
    const std::string id = "lat-" + std::to_string(i);
    must_ok(p.coord->begin(id));
    must(p.coord->execute_in(id, "INSERT INTO t VALUES (" + std::to_string(i) + ", UUID())"));
    must(p.coord->execute_in(id,
                             "UPDATE distdb_applied SET seq = " + std::to_string(i + 1) + " WHERE id = 1"));
    must_ok(p.coord->prepare(id));
    const auto started = std::chrono::steady_clock::now();
    auto effects = p.tap->effects_of(id);
    const auto took = std::chrono::steady_clock::now() - started;
    REQUIRE(effects.ok());
    REQUIRE(!effects->empty());
    us.push_back(std::chrono::duration<double, std::micro>(took).count());
    must_ok(p.coord->commit(id));
  }
  std::sort(us.begin(), us.end());
  const double median = us[us.size() / 2];
  const double p99 = us[us.size() * 99 / 100];
  MESSAGE("effects_of() over " << kRuns << " transactions: median " << median << " us, p99 " << p99 << " us");
  CHECK(median < 20000);
}

TEST_CASE("row shipping: a member refuses effects for another database, two databases or a system schema") {
  // Effects come from the network, and BINLOG applies rows without
  // checking table privileges: Storage::apply_effects_in checks them first.
  if (!two_servers()) return;
  const std::string other = "distdb_rows_elsewhere";
  Pair p({"CREATE TABLE t (id INT PRIMARY KEY)"});
  fresh_database(0, other);
  must(p.coord->execute("CREATE TABLE `" + other + "`.t (id INT PRIMARY KEY)"));
  const std::string two =
      p.capture("two-dbs", {"INSERT INTO t VALUES (1)", "INSERT INTO `" + other + "`.t VALUES (2)"});
  REQUIRE(describe(two).find(other) != std::string::npos);
  auto expect_refused = [&](const std::string& effects, const std::string& why) {
    CAPTURE(why);
    must_ok(p.member->begin("refused"));
    const Status st = p.member->apply_effects_in("refused", effects);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().kind == ErrorKind::invalid_request);
    CHECK(st.error().message.find(why) != std::string::npos);
    must_ok(p.member->rollback("refused"));
  };
  expect_refused(two, "two databases");
  const std::string mine = p.capture("one-db", {"INSERT INTO t VALUES (3)"});
  auto system = mariadb::rename_database(mine, kDb, "mysql");
  REQUIRE(system.ok());
  expect_refused(*system, "system schema");
  CHECK(one(*p.member, "SELECT COUNT(*) FROM t") == "0");
  // The same effects, for this member's database, apply.
  must_ok(p.member->begin("accepted"));
  must_ok(p.member->apply_effects_in("accepted", mine));
  must_ok(p.member->prepare("accepted"));
  must_ok(p.member->commit("accepted"));
  CHECK(one(*p.member, "SELECT COUNT(*) FROM t") == "1");
}
