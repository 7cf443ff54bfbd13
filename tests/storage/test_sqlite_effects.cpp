// Row replication on SQLite (storage/sqlite_effects.*): what one file's
// transaction changed, captured with the session extension and applied to
// another file, against real database files.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "distdb/storage.hpp"
#include "storage/sqlite_effects.hpp"
#include "storage/sqlite_storage.hpp"
#include "temp_dir.hpp"

using namespace distdb;

namespace {

// A test's directory of database files.
class TempDir : public test::TempDir {
 public:
  TempDir() : test::TempDir("distdb-sqlite-effects") {}
};

std::unique_ptr<Storage> open_at(const std::string& path) {
  auto s = open_sqlite_storage(path);
  REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
  auto st = ensure_distdb_schema(**s);
  REQUIRE_MESSAGE(st.ok(), (st.ok() ? "" : st.error().message));
  return std::move(s).value();
}

ResultSet must(Result<ResultSet> r) {
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  return std::move(r).value();
}

void must(const Status& st) {
  REQUIRE_MESSAGE(st.ok(), (st.ok() ? "" : st.error().message));
}

void run_all(Storage& s, const std::vector<std::string>& statements) {
  for (const auto& sql : statements) {
    CAPTURE(sql);
    must(s.execute(sql));
  }
}

// Every row of `table`, sorted, as text: what two members must agree on.
std::vector<std::string> rows_of(Storage& s, const std::string& table) {
  std::vector<std::string> out;
  for (const Row& row : must(s.execute("SELECT * FROM " + table)).rows) {
    std::string line;
    for (const Value& v : row) {
      if (const auto* i = std::get_if<std::int64_t>(&v)) line += std::to_string(*i);
      if (const auto* t = std::get_if<std::string>(&v)) line += *t;
      if (const auto* d = std::get_if<double>(&v)) line += std::to_string(*d);
      if (std::holds_alternative<std::monostate>(v)) line += "NULL";
      line += "|";
    }
    out.push_back(line);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The coordinator's side: runs `statements` in a captured transaction,
// prepares it and returns its effects (the transaction is left prepared).
std::string capture(Storage& s, const TxnId& txn, const std::vector<std::string>& statements) {
  must(s.start_capture());
  must(s.begin(txn));
  for (const auto& sql : statements) {
    CAPTURE(sql);
    auto rs = s.execute_in(txn, sql);
    (void)rs;  // a failed statement is part of some tests
  }
  must(s.prepare(txn));
  auto effects = s.captured_effects(txn);
  REQUIRE_MESSAGE(effects.ok(), (effects.ok() ? "" : effects.error().message));
  return *effects;
}

// A member's side: applies `effects` in a transaction of its own and commits.
Status apply(Storage& s, const TxnId& txn, const std::string& effects) {
  must(s.begin(txn));
  auto st = s.apply_effects_in(txn, effects);
  if (!st) {
    must(s.rollback(txn));
    return st;
  }
  must(s.prepare(txn));
  must(s.commit(txn));
  return {};
}

const std::vector<std::string> kSchema = {
    "CREATE TABLE parent (id INTEGER PRIMARY KEY, code INT UNIQUE, note TEXT)",
    "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INT REFERENCES parent(id) ON DELETE CASCADE)",
    "CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, what TEXT)",
    "CREATE TABLE tagged (tag TEXT PRIMARY KEY, n INT) WITHOUT ROWID",
    "CREATE TABLE named (name TEXT NOT NULL PRIMARY KEY, v INT)",
    "CREATE TRIGGER parent_audit AFTER INSERT ON parent BEGIN "
    "INSERT INTO audit (what) VALUES ('parent ' || new.id || ' ' || random()); END",
    "INSERT INTO parent VALUES (1, 1, 'one'), (2, 2, 'two')",
    "INSERT INTO child VALUES (10, 1), (20, 2)",
};

const std::vector<std::string> kTables = {"parent", "child", "audit", "tagged", "named", "sqlite_sequence"};

// A coordinator's file and a member's, given the same schema.
struct TwoMembers {
  explicit TwoMembers(const std::vector<std::string>& schema) {
    run_all(*coordinator, schema);
    run_all(*member, schema);
  }
  TempDir dir;
  std::unique_ptr<Storage> coordinator = open_at(dir.path("a.db"));
  std::unique_ptr<Storage> member = open_at(dir.path("b.db"));
};

}  // namespace

TEST_CASE(
    "rows captured on one file apply identically on another: random(), a trigger, a cascade, a moved "
    "unique key, an AUTOINCREMENT counter") {
  REQUIRE(sqlite::sessions_available());
  TwoMembers m(kSchema);
  auto& coordinator = m.coordinator;
  auto& member = m.member;
  // The trigger wrote its own random() on each file while seeding: make
  // them agree before the test compares them.
  must(member->execute("DELETE FROM audit"));
  must(coordinator->execute("DELETE FROM audit"));

  REQUIRE(coordinator->captures_effects());
  const std::string effects =
      capture(*coordinator, "t1",
              {
                  "INSERT INTO parent VALUES (3, 3, hex(randomblob(8)))",       // a value only this run knows
                  "DELETE FROM parent WHERE id = 1",                            // cascades to child 10
                  "INSERT INTO parent VALUES (4, 1, 'takes code 1')",           // the key parent 1 freed
                  "UPDATE named SET v = 0",                                     // no rows: nothing to ship
                  "INSERT INTO named VALUES ('n' || abs(random() % 1000), 1)",  //
                  "INSERT INTO tagged VALUES ('t', 1)",                         //
                  "INSERT INTO audit (what) VALUES ('gone')",                   // moves the counter...
                  "DELETE FROM audit WHERE what = 'gone'",                      // ...and leaves no row
                  "INSERT INTO distdb_meta (name, value) VALUES ('x', 'y')",    // each member writes its own
              });
  REQUIRE_FALSE(effects.empty());
  must(coordinator->commit("t1"));

  must(apply(*member, "t1", effects));
  for (const auto& table : kTables) {
    CAPTURE(table);
    CHECK(rows_of(*coordinator, table) == rows_of(*member, table));
  }
  // The trigger ran once, on the coordinator: its two rows (parents 3 and 4)
  // are the coordinator's, random() included.
  CHECK(rows_of(*member, "audit").size() == 2);
  CHECK(rows_of(*member, "child") == std::vector<std::string>{"20|2|"});
  // distdb's own tables are not shipped.
  CHECK(must(member->execute("SELECT * FROM distdb_meta WHERE name = 'x'")).rows.empty());
  // The member's triggers and foreign keys work again after the apply.
  must(member->execute("INSERT INTO parent VALUES (5, 5, 'after')"));
  CHECK(rows_of(*member, "audit").size() == 3);
  CHECK(must(member->execute("PRAGMA foreign_keys")).rows.at(0).at(0) == Value(std::int64_t{1}));
  CHECK_FALSE(member->execute("INSERT INTO child VALUES (99, 12345)").ok());
}

TEST_CASE("AUTOINCREMENT counters set or removed directly travel too") {
  TwoMembers m({"CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT, v)",
                "CREATE TABLE b (id INTEGER PRIMARY KEY AUTOINCREMENT, v)", "INSERT INTO a (v) VALUES (1)",
                "INSERT INTO b (v) VALUES (1)"});
  const std::string effects = capture(*m.coordinator, "t1",
                                      {"UPDATE sqlite_sequence SET seq = 1000 WHERE name = 'a'",
                                       "DELETE FROM sqlite_sequence WHERE name = 'b'"});
  REQUIRE_FALSE(effects.empty());
  must(m.coordinator->commit("t1"));
  must(apply(*m.member, "t1", effects));
  CHECK(rows_of(*m.member, "sqlite_sequence") == std::vector<std::string>{"a|1000|"});
  CHECK(rows_of(*m.coordinator, "sqlite_sequence") == rows_of(*m.member, "sqlite_sequence"));

  // A row the members could not set is refused, with the write.
  for (const std::string sql : {"INSERT INTO sqlite_sequence VALUES ('nosuch', 5)",
                                "UPDATE sqlite_sequence SET seq = -1 WHERE name = 'a'",
                                "UPDATE sqlite_sequence SET seq = '7x' WHERE name = 'a'",
                                "INSERT INTO sqlite_sequence VALUES ('b', 5)"}) {
    CAPTURE(sql);
    must(m.coordinator->start_capture());
    must(m.coordinator->begin("t2"));
    must(m.coordinator->execute_in("t2", sql));
    must(m.coordinator->prepare("t2"));
    auto captured = m.coordinator->captured_effects("t2");
    must(m.coordinator->rollback("t2"));
    if (sql.find("('b', 5)") != std::string::npos) {
      CHECK(captured.ok());  // b is an AUTOINCREMENT table: its counter may be set again
      continue;
    }
    REQUIRE_FALSE(captured.ok());
    CHECK(captured.error().kind == ErrorKind::sql);
    CHECK(captured.error().message.find("sqlite_sequence") != std::string::npos);
  }
}

TEST_CASE("a stray row of sqlite_sequence from before blocks no write, and may be removed") {
  TwoMembers m({"CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT, v)", "INSERT INTO a (v) VALUES (1)",
                "INSERT INTO sqlite_sequence VALUES ('stray', 5)"});
  const std::string insert = capture(*m.coordinator, "t1", {"INSERT INTO a (v) VALUES (2)"});
  must(m.coordinator->commit("t1"));
  must(apply(*m.member, "t1", insert));
  const std::string removal =
      capture(*m.coordinator, "t2", {"DELETE FROM sqlite_sequence WHERE name = 'stray'"});
  REQUIRE_FALSE(removal.empty());
  must(m.coordinator->commit("t2"));
  must(apply(*m.member, "t2", removal));
  CHECK(rows_of(*m.member, "sqlite_sequence") == std::vector<std::string>{"a|2|"});
  CHECK(rows_of(*m.coordinator, "sqlite_sequence") == rows_of(*m.member, "sqlite_sequence"));
}

TEST_CASE("a statement that failed in the captured transaction ships nothing of what it undid") {
  TwoMembers m(kSchema);
  auto& coordinator = m.coordinator;
  auto& member = m.member;
  must(coordinator->start_capture());
  must(coordinator->begin("t1"));
  must(coordinator->execute_in("t1", "SAVEPOINT s"));
  must(coordinator->execute_in("t1", "INSERT INTO tagged VALUES ('kept', 1)"));
  must(coordinator->execute_in("t1", "SAVEPOINT s2"));
  must(coordinator->execute_in("t1", "INSERT INTO tagged VALUES ('undone', 2)"));
  must(coordinator->execute_in("t1", "ROLLBACK TO SAVEPOINT s2"));
  // A statement that fails half-way (its second row breaks the key).
  CHECK_FALSE(coordinator->execute_in("t1", "INSERT INTO tagged VALUES ('half', 3), ('kept', 4)").ok());
  must(coordinator->prepare("t1"));
  auto effects = coordinator->captured_effects("t1");
  REQUIRE(effects.ok());
  must(coordinator->commit("t1"));
  must(apply(*member, "t1", *effects));
  CHECK(rows_of(*member, "tagged") == std::vector<std::string>{"kept|1|"});
  CHECK(rows_of(*coordinator, "tagged") == rows_of(*member, "tagged"));
}

TEST_CASE(
    "a statement that writes a table whose rows cannot be shipped is refused, naming the table; the "
    "entry's other statements stand") {
  TempDir dir;
  auto s = open_at(dir.path("a.db"));
  run_all(
      *s,
      {"CREATE TABLE plain (a INT)", "CREATE TABLE loose (k TEXT PRIMARY KEY, v INT)",
       "CREATE TABLE pair (a INT, b INT, PRIMARY KEY (a, b))",
       "CREATE TABLE strict_key (k TEXT PRIMARY KEY NOT NULL, v INT)",
       "CREATE TABLE rowid_key (k INTEGER PRIMARY KEY, v INT)",
       "CREATE TABLE old_nulls (k INT PRIMARY KEY, v INT)", "INSERT INTO old_nulls VALUES (NULL, 1)",
       "CREATE TABLE computed (id INTEGER PRIMARY KEY, x TEXT, y AS (x || '!'))",
       "CREATE TABLE folded (k TEXT NOT NULL PRIMARY KEY COLLATE NOCASE)",
       "CREATE VIRTUAL TABLE words USING fts5(body)",
       "CREATE TABLE replacing (id INTEGER PRIMARY KEY, code TEXT UNIQUE ON CONFLICT REPLACE)",
       "CREATE TABLE ignoring (id INTEGER PRIMARY KEY, code TEXT UNIQUE ON\n  CONFLICT   IGNORE)",
       "CREATE TABLE aborting (id INTEGER PRIMARY KEY, code TEXT UNIQUE ON CONFLICT ABORT, replaced_at INT)",
       "CREATE TABLE binary_key (k TEXT COLLATE binary NOT NULL PRIMARY KEY)",
       "CREATE TRIGGER into_plain AFTER INSERT ON rowid_key WHEN new.v = 99 BEGIN "
       "INSERT INTO plain VALUES (new.k); END"});
  struct Case {
    std::string sql;
    std::string refused_table;  // empty: accepted
  };
  const std::vector<Case> cases = {
      {"INSERT INTO plain VALUES (1)", "plain"},
      {"INSERT INTO pair VALUES (1, 2)", "pair"},            // a nullable key of two columns
      {"INSERT INTO old_nulls VALUES (2, 2)", "old_nulls"},  // rows with NULL keys from before
      {"INSERT INTO computed (id, x) VALUES (1, 'a')", "computed"},
      {"INSERT INTO folded VALUES ('a')", "folded"},
      {"INSERT INTO words VALUES ('some text')", "words_"},  // its shadow tables
      {"INSERT INTO replacing VALUES (1, 'a')", "replacing"},
      {"INSERT INTO ignoring VALUES (1, 'a')", "ignoring"},
      {"INSERT INTO aborting VALUES (1, 'a', 0)", ""},
      {"INSERT INTO binary_key VALUES ('a')", ""},
      {"INSERT INTO rowid_key VALUES (5, 99)", "plain"},  // through a trigger
      {"INSERT INTO loose VALUES ('a', 1)", ""},          // a nullable key, but no NULL in it
      {"INSERT INTO strict_key VALUES ('a', 1)", ""},
      {"INSERT INTO rowid_key VALUES (NULL, 1)", ""},  // NULL here means: the next rowid
  };
  must(s->start_capture());
  must(s->begin("t1"));
  for (const auto& c : cases) {
    CAPTURE(c.sql);
    auto rs = s->execute_in("t1", c.sql);
    if (c.refused_table.empty()) {
      CHECK_MESSAGE(rs.ok(), (rs.ok() ? "" : rs.error().message));
    } else {
      REQUIRE_FALSE(rs.ok());
      CHECK(rs.error().kind == ErrorKind::sql);
      CHECK(rs.error().message.find("'" + c.refused_table) != std::string::npos);
    }
  }
  // The refused statements left nothing; the others are shipped.
  must(s->prepare("t1"));
  auto effects = s->captured_effects("t1");
  REQUIRE_MESSAGE(effects.ok(), (effects.ok() ? "" : effects.error().message));
  CHECK_FALSE(effects->empty());
  must(s->commit("t1"));
  for (const std::string table : {"plain", "pair", "computed", "folded", "words", "replacing", "ignoring"}) {
    CAPTURE(table);
    CHECK(must(s->execute("SELECT COUNT(*) FROM " + table)).rows.at(0).at(0) == Value(std::int64_t{0}));
  }
  CHECK(must(s->execute("SELECT COUNT(*) FROM rowid_key")).rows.at(0).at(0) == Value(std::int64_t{1}));
}

TEST_CASE("a statement that touched a refused table and failed on its own does not refuse the others") {
  TwoMembers m(
      {"CREATE TABLE good (id INTEGER PRIMARY KEY, v INT)", "CREATE TABLE checked (a INT CHECK (a > 0))"});
  must(m.coordinator->start_capture());
  must(m.coordinator->begin("t1"));
  must(m.coordinator->execute_in("t1", "INSERT INTO good VALUES (1, 1)"));
  auto failed = m.coordinator->execute_in("t1", "INSERT INTO checked VALUES (1), (-1)");  // its CHECK fails
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().message.find("CHECK") != std::string::npos);
  must(m.coordinator->execute_in("t1", "SELECT 1"));
  must(m.coordinator->prepare("t1"));
  auto effects = m.coordinator->captured_effects("t1");
  REQUIRE_MESSAGE(effects.ok(), (effects.ok() ? "" : effects.error().message));
  must(m.coordinator->commit("t1"));
  must(apply(*m.member, "t1", *effects));
  CHECK(rows_of(*m.member, "good") == std::vector<std::string>{"1|1|"});
}

TEST_CASE("a statement that leaves a NULL in a one-column key is refused and undone, as MariaDB would") {
  const std::vector<std::string> schema = {"CREATE TABLE teste (id INT PRIMARY KEY)",
                                           "INSERT INTO teste VALUES (1)"};
  TwoMembers m(schema);
  auto& coordinator = m.coordinator;
  auto& member = m.member;
  must(coordinator->start_capture());
  must(coordinator->begin("t1"));
  auto inserted = coordinator->execute_in("t1", "INSERT INTO teste VALUES (NULL)");
  REQUIRE_FALSE(inserted.ok());
  CHECK(inserted.error().code == 1299);  // SQLITE_CONSTRAINT_NOTNULL
  CHECK(inserted.error().message.find("'teste'") != std::string::npos);
  auto moved = coordinator->execute_in("t1", "UPDATE teste SET id = NULL WHERE id = 1");
  REQUIRE_FALSE(moved.ok());
  // Both undone; the transaction goes on, and what else it does is shipped.
  must(coordinator->execute_in("t1", "INSERT INTO teste VALUES (2)"));
  must(coordinator->prepare("t1"));
  auto effects = coordinator->captured_effects("t1");
  REQUIRE_MESSAGE(effects.ok(), (effects.ok() ? "" : effects.error().message));
  must(coordinator->commit("t1"));
  must(apply(*member, "t1", *effects));
  CHECK(rows_of(*coordinator, "teste") == std::vector<std::string>{"1|", "2|"});
  CHECK(rows_of(*member, "teste") == rows_of(*coordinator, "teste"));
}

TEST_CASE("effects this database does not fit are refused as divergence, and undo what they did") {
  TwoMembers m(kSchema);
  auto& coordinator = m.coordinator;
  auto& member = m.member;
  auto& dir = m.dir;
  const std::string effects = capture(
      *coordinator, "t1", {"INSERT INTO tagged VALUES ('x', 1)", "UPDATE parent SET note = 'changed'"});
  must(coordinator->commit("t1"));
  must(apply(*member, "t1", effects));

  SUBCASE("applied twice: the key is taken and the rows no longer hold the old values") {
    auto again = apply(*member, "t2", effects);
    REQUIRE_FALSE(again.ok());
    CHECK(member->refuses_effects(again.error()));
  }
  SUBCASE("a member without the table") {
    auto other = open_at(dir.path("c.db"));
    run_all(*other, {"CREATE TABLE parent (id INTEGER PRIMARY KEY, code INT UNIQUE, note TEXT)",
                     "INSERT INTO parent VALUES (1, 1, 'one'), (2, 2, 'two')"});
    auto st = apply(*other, "t2", effects);
    REQUIRE_FALSE(st.ok());
    CHECK(other->refuses_effects(st.error()));
    // Nothing of it stayed: the parents are untouched.
    CHECK(rows_of(*other, "parent") == std::vector<std::string>{"1|1|one|", "2|2|two|"});
  }
  SUBCASE("a member whose row differs") {
    auto other = open_at(dir.path("c.db"));
    run_all(*other, kSchema);
    must(other->execute("UPDATE parent SET note = 'mine' WHERE id = 2"));
    auto st = apply(*other, "t2", effects);
    REQUIRE_FALSE(st.ok());
    CHECK(other->refuses_effects(st.error()));
    CHECK(st.error().message.find("parent") != std::string::npos);
    CHECK(rows_of(*other, "tagged").empty());
  }
}

TEST_CASE(
    "effects from a peer that are malformed or name distdb's or SQLite's tables are refused before "
    "anything runs") {
  const std::vector<std::string> schema = {"CREATE TABLE xistdb_log (seq INTEGER PRIMARY KEY, v TEXT)",
                                           "CREATE TABLE counted (id INTEGER PRIMARY KEY AUTOINCREMENT)"};
  TwoMembers m(schema);
  auto& coordinator = m.coordinator;
  auto& member = m.member;
  const std::string good = capture(*coordinator, "t1", {"INSERT INTO xistdb_log VALUES (999, 'forged')"});
  must(coordinator->commit("t1"));

  auto refused = [&](const std::string& effects) {
    must(member->begin("t2"));
    auto st = member->apply_effects_in("t2", effects);
    must(member->rollback("t2"));
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().kind == ErrorKind::invalid_request);
    CHECK_FALSE(member->refuses_effects(st.error()));
    return st.error().message;
  };
  // The same change, retargeted at distdb's own log.
  std::string forged = good;
  const auto at = forged.find("xistdb_log");
  REQUIRE(at != std::string::npos);
  forged[at] = 'd';
  CHECK(refused(forged).find("distdb_log") != std::string::npos);
  CHECK(must(member->execute("SELECT COUNT(*) FROM distdb_log")).rows.at(0).at(0) == Value(std::int64_t{0}));

  refused("garbage");
  refused(good.substr(0, good.size() - 3));  // truncated
  refused(good + "x");                       // trailing bytes
  std::string corrupt = good;
  corrupt[12] = static_cast<char>(0x7f);  // the changeset's first byte: not an operation
  refused(corrupt);

  // A counter for a table that is not one (the envelope's format is in
  // sqlite_effects.hpp).
  auto counter_only = [](const std::string& name) {
    std::string out = "DSQ1";
    out.append(8, '\0');
    out.push_back(1);
    out.append(3, '\0');
    out.push_back(static_cast<char>(name.size()));
    out.append(3, '\0');
    out += name;
    out.push_back(9);
    out.append(7, '\0');
    return out;
  };
  refused(counter_only("sqlite_master"));
  refused(counter_only("no_such_table"));
  refused(counter_only("xistdb_log"));  // a table, but without AUTOINCREMENT
  // ... while a real table's counter is set.
  must(apply(*member, "t3", counter_only("counted")));
  CHECK(must(member->execute("SELECT seq FROM sqlite_sequence WHERE name = 'counted'")).rows.at(0).at(0) ==
        Value(std::int64_t{9}));
}

TEST_CASE("a read-only connection neither captures nor applies effects") {
  TempDir dir;
  auto rw = open_at(dir.path("a.db"));
  auto ro = open_sqlite_storage(dir.path("a.db"), StorageAccess::read_only);
  REQUIRE(ro.ok());
  CHECK_FALSE((*ro)->captures_effects());
  CHECK_FALSE((*ro)->start_capture().ok());
}
