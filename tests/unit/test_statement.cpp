#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "sql/statement.hpp"

using distdb::sql::classify;
using distdb::sql::Classification;
using distdb::sql::Dialect;
using distdb::sql::replication_refusal;
using distdb::sql::StatementKind;

namespace {

constexpr auto R = StatementKind::read;
constexpr auto W = StatementKind::write;
constexpr auto T = StatementKind::transaction_control;
constexpr auto S = StatementKind::session;

struct KindCase {
  std::string_view sql;
  StatementKind kind;
};

void check_kinds(const std::vector<KindCase>& cases, Dialect dialect = Dialect::any) {
  for (const auto& c : cases) {
    CAPTURE(c.sql);
    const Classification got = classify(c.sql, dialect);
    CHECK(distdb::sql::to_string(got.kind) == distdb::sql::to_string(c.kind));
  }
}

struct NondetCase {
  std::string_view sql;
  std::optional<std::string_view> culprit;  // nullopt: deterministic
};

void check_nondet(const std::vector<NondetCase>& cases, Dialect dialect = Dialect::any) {
  for (const auto& c : cases) {
    CAPTURE(c.sql);
    const Classification got = classify(c.sql, dialect);
    if (c.culprit) {
      REQUIRE(got.nondeterministic.has_value());
      CHECK(*got.nondeterministic == *c.culprit);
    } else {
      CHECK_MESSAGE(!got.nondeterministic.has_value(), "flagged: " << got.nondeterministic.value_or(""));
    }
  }
}

struct MultiCase {
  std::string_view sql;
  bool multiple;
};

void check_multi(const std::vector<MultiCase>& cases, Dialect dialect = Dialect::any) {
  for (const auto& c : cases) {
    CAPTURE(c.sql);
    CHECK(classify(c.sql, dialect).multiple_statements == c.multiple);
  }
}

}  // namespace

TEST_SUITE_BEGIN("statement");

TEST_CASE("statement: plain reads") {
  check_kinds({
      {"SELECT 1", R},
      {"SELECT * FROM t WHERE id = 1", R},
      {"select * from t", R},
      {"SeLeCt a FROM t", R},
      {"SELECT 1;", R},
      {"SELECT 1 ;  ;; ", R},
      {"SHOW TABLES", R},
      {"show create table t", R},
      {"DESCRIBE t", R},
      {"DESC t", R},
      {"EXPLAIN SELECT * FROM t", R},
      {"VALUES (1, 2), (3, 4)", R},
      {"(SELECT 1) UNION (SELECT 2)", R},
      {"((SELECT 1))", R},
      {"SELECT a FROM t UNION ALL SELECT b FROM u ORDER BY 1", R},
      {"SELECT * FROM t FOR SYSTEM_TIME AS OF TIMESTAMP '2020-01-01'", R},
      {"SELECT REPLACE(name, 'a', 'b'), INSERT(name, 1, 2, 'x') FROM t", R},
      {"SELECT last_insert_id()", R},
      {"SELECT * FROM `update`", R},
      {"SELECT `for`, `update` FROM t", R},
  });
}

TEST_CASE("statement: first keyword is uppercased, after opening parentheses") {
  CHECK(classify("select 1").first_keyword == "SELECT");
  CHECK(classify("  \n\t(( select 1))").first_keyword == "SELECT");
  CHECK(classify("-- hello\n/* x */ # y\n  insert into t values (1)").first_keyword == "INSERT");
  CHECK(classify("Start Transaction").first_keyword == "START");
  CHECK(classify("").first_keyword.empty());
  CHECK(classify("   -- only a comment").first_keyword.empty());
  CHECK(classify("42").first_keyword.empty());
  CHECK(classify("'SELECT'").first_keyword.empty());
  CHECK(classify("`SELECT` 1").first_keyword.empty());
}

TEST_CASE("statement: empty and unknown statements are writes") {
  check_kinds({
      {"", W},
      {"   ", W},
      {"-- nothing\n", W},
      {"/* nothing */", W},
      {";", W},
      {"42", W},
      {"'SELECT 1'", W},
      {"FROBNICATE everything", W},
      {"(1)", W},
      {"(INSERT INTO t VALUES (1))", W},
  });
}

TEST_CASE("statement: locking and storing SELECTs are writes") {
  check_kinds({
      {"SELECT * FROM t FOR UPDATE", W},
      {"select * from t where id = 1 for update skip locked", W},
      {"SELECT * FROM t FOR SHARE", W},
      {"SELECT * FROM t LOCK IN SHARE MODE", W},
      {"SELECT * FROM t WHERE id IN (SELECT id FROM u FOR UPDATE)", W},
      {"SELECT a INTO @x FROM t", W},
      {"SELECT a FROM t INTO @x", W},
      {"SELECT * INTO OUTFILE '/tmp/x' FROM t", W},
      {"SELECT * FROM t INTO DUMPFILE '/tmp/x'", W},
      {"SELECT @x := 1", W},
      {"SELECT NEXTVAL(s)", W},
      {"SELECT NEXT VALUE FOR s", W},
      {"SELECT SETVAL(s, 10)", W},
      {"(SELECT 1 FOR UPDATE)", W},
      {"VALUES (1) INTO @x", W},
  });
}

TEST_CASE("statement: WITH is a read unless its main statement modifies") {
  check_kinds({
      {"WITH c AS (SELECT 1 AS x) SELECT x FROM c", R},
      {"WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 5) SELECT n FROM c", R},
      {"with a as (select 1), b as (select 2) select * from a, b", R},
      {"WITH c AS (SELECT REPLACE(x, 'a', 'b') AS y FROM t) SELECT y FROM c", R},
      {"WITH c AS (SELECT 1) INSERT INTO t SELECT * FROM c", W},
      {"WITH c AS (SELECT id FROM t) UPDATE u SET v = 1 WHERE id IN (SELECT id FROM c)", W},
      {"WITH c AS (SELECT id FROM t) DELETE FROM u WHERE id IN (SELECT id FROM c)", W},
      {"WITH c AS (SELECT 1) REPLACE INTO t SELECT * FROM c", W},
      {"WITH c AS (SELECT 1) SELECT * FROM c FOR UPDATE", W},
  });
}

TEST_CASE("statement: EXPLAIN and ANALYZE") {
  check_kinds({
      {"EXPLAIN SELECT 1", R},
      {"EXPLAIN UPDATE t SET a = 1", R},
      {"EXPLAIN DELETE FROM t", R},
      {"EXPLAIN EXTENDED SELECT 1", R},
      {"EXPLAIN FORMAT=JSON UPDATE t SET a = 1", R},
      {"EXPLAIN QUERY PLAN SELECT * FROM t", R},
      {"DESCRIBE SELECT 1", R},
      {"EXPLAIN ANALYZE SELECT 1", R},
      {"EXPLAIN ANALYZE UPDATE t SET a = 1", W},
      {"EXPLAIN ANALYZE FORMAT=TREE DELETE FROM t", W},
      {"ANALYZE SELECT * FROM t", R},
      {"ANALYZE FORMAT=JSON SELECT * FROM t", R},
      {"ANALYZE SELECT * FROM t FOR UPDATE", W},
      {"ANALYZE UPDATE t SET a = 1", W},
      {"ANALYZE DELETE FROM t", W},
      {"ANALYZE INSERT INTO t VALUES (1)", W},
      {"ANALYZE TABLE t", W},
      {"ANALYZE NO_WRITE_TO_BINLOG TABLE t", W},
      {"ANALYZE", W},
      {"ANALYZE t", W},
      {"EXPLAIN ANALYZE ANALYZE ANALYZE ANALYZE ANALYZE ANALYZE ANALYZE ANALYZE ANALYZE ANALYZE SELECT 1", W},
  });
}

TEST_CASE("statement: SQLite PRAGMA") {
  check_kinds({
      {"PRAGMA table_info(t)", R},
      {"PRAGMA main.table_info(t)", R},
      {"pragma index_list('t')", R},
      {"PRAGMA foreign_key_check", R},
      {"PRAGMA journal_mode", R},
      {"PRAGMA user_version", R},
      {"PRAGMA foreign_keys = ON", S},
      {"PRAGMA main.cache_size = -2000", S},
      {"PRAGMA journal_mode(WAL)", S},
      {"PRAGMA user_version = 5", W},
      {"PRAGMA application_id = 5", W},
      {"PRAGMA optimize", W},
      {"PRAGMA", W},
  });
}

TEST_CASE("statement: transaction control") {
  check_kinds({
      {"BEGIN", T},
      {"begin work", T},
      {"BEGIN IMMEDIATE TRANSACTION", T},
      {"START TRANSACTION", T},
      {"start transaction read only", T},
      {"COMMIT", T},
      {"COMMIT WORK", T},
      {"END TRANSACTION", T},
      {"ROLLBACK", T},
      {"ROLLBACK TO SAVEPOINT a", T},
      {"SAVEPOINT a", T},
      {"RELEASE SAVEPOINT a", T},
      {"XA START 'x'", T},
      {"XA COMMIT 'x'", T},
      {"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", T},
      {"SET SESSION TRANSACTION READ ONLY", T},
      {"LOCK TABLES t WRITE", T},
      {"LOCK TABLE t READ", T},
      {"UNLOCK TABLES", T},
      {"BEGIN NOT ATOMIC SELECT 1 END", W},
      {"START SLAVE", W},
  });
}

TEST_CASE("statement: session statements") {
  check_kinds({
      {"SET NAMES utf8mb4", S},
      {"SET autocommit = 0", S},
      {"SET @x = 1", S},
      {"set session sql_mode = ''", S},
      {"SET @@session.time_zone = '+00:00'", S},
      {"SET ROLE admin", S},
      {"USE db", S},
      {"use `my db`", S},
      {"SET PASSWORD FOR 'u'@'%' = PASSWORD('x')", W},
      {"SET DEFAULT ROLE admin FOR u", W},
      {"SET STATEMENT max_statement_time = 1 FOR SELECT * FROM t", R},
      {"SET STATEMENT max_statement_time = 1 FOR UPDATE t SET a = 1", W},
      {"SET STATEMENT a = (1), b = 2 FOR INSERT INTO t VALUES (1)", W},
      {"SET STATEMENT a = 1", W},
  });
}

TEST_CASE("statement: writes") {
  check_kinds({
      {"INSERT INTO t VALUES (1)", W},
      {"insert into t select * from u", W},
      {"UPDATE t SET a = 1", W},
      {"DELETE FROM t", W},
      {"REPLACE INTO t VALUES (1)", W},
      {"CREATE TABLE t (id INT)", W},
      {"ALTER TABLE t ADD c INT", W},
      {"DROP TABLE t", W},
      {"TRUNCATE t", W},
      {"RENAME TABLE a TO b", W},
      {"GRANT SELECT ON t TO u", W},
      {"CALL p()", W},
      {"DO 1", W},
      {"LOAD DATA INFILE 'x' INTO TABLE t", W},
      {"HANDLER t OPEN", W},
      {"FLUSH TABLES", W},
      {"VACUUM", W},
  });
}

TEST_CASE("statement: leading whitespace and comments") {
  check_kinds({
      {"  \t\r\n SELECT 1", R},
      {"-- a comment\nSELECT 1", R},
      {"--\tSELECT\nDELETE FROM t", W},
      {"# a comment\nSELECT 1", R},
      {"/* DELETE FROM t */ SELECT 1", R},
      {"/* multi\nline */\n-- x\n# y\n   select 1", R},
      {"/**/SELECT 1", R},
      {"/* SELECT 1 */ DELETE FROM t", W},
      {"-- SELECT 1\nDELETE FROM t", W},
  });
}

TEST_CASE("statement: keywords inside strings, comments and identifiers do not count") {
  check_kinds({
      {"SELECT * FROM t -- FOR UPDATE", R},
      {"SELECT * FROM t # FOR UPDATE", R},
      {"SELECT * FROM t /* FOR UPDATE */", R},
      {"SELECT 'FOR UPDATE' FROM t", R},
      {"SELECT \"for update\" FROM t", R},
      {"SELECT `into` FROM t", R},
      {"SELECT 'a'' INTO @x' FROM t", R},
      {"SELECT 'a\\' INTO @x' FROM t", R},
  }, Dialect::mariadb);
  check_multi({
      {"INSERT INTO t VALUES ('; DROP TABLE x')", false},
      {"INSERT INTO t VALUES (\"; DROP TABLE x\")", false},
      {"SELECT 1 -- ; DROP TABLE x", false},
      {"SELECT 1 # ; DROP TABLE x", false},
      {"SELECT 1 /* ; DROP TABLE x */", false},
      {"SELECT `a;b` FROM t", false},
      {"SELECT 'it''s; fine'", false},
  });
}

TEST_CASE("statement: multiple statements") {
  check_multi({
      {"SELECT 1", false},
      {"SELECT 1;", false},
      {"SELECT 1;;;  ", false},
      {"SELECT 1; -- trailing comment", false},
      {"SELECT 1; /* trailing */ ; # more", false},
      {"SELECT 1; SELECT 2", true},
      {"INSERT INTO t VALUES (1);DELETE FROM t", true},
      {"SELECT 1; x", true},
      {"; SELECT 1", true},
      {"SELECT 1; /*! DELETE FROM t */", true},
      {"SELECT 1; /*!*/", false},
  });
  const auto c = classify("SELECT 1; DELETE FROM t");
  CHECK(c.kind == R);  // the first statement decides the kind
  REQUIRE(replication_refusal(c).has_value());
  CHECK(replication_refusal(c)->find("more than one statement") != std::string::npos);
}

TEST_CASE("statement: MariaDB executable comments are code") {
  check_kinds({
      {"SELECT /*! STRAIGHT_JOIN */ a FROM t", R},
      {"SELECT * FROM t /*! FOR UPDATE */", W},
      {"SELECT * FROM t /*!50100 FOR UPDATE */", W},
      {"SELECT * FROM t /*M!100100 FOR UPDATE */", W},
      {"/*!40101 SET NAMES utf8 */", S},
      {"/*!40101 SET NAMES utf8 */;", S},
      {"/*! SELECT 1 */", R},
      {"SELECT * FROM t /*+ FOR UPDATE */", R},  // an optimizer hint is a comment
      {"/*!40000 ALTER TABLE t DISABLE KEYS */", W},
  });
  check_nondet({
      {"INSERT INTO t VALUES (/*! NOW() */)", "NOW()"},
      {"INSERT INTO t VALUES (/*!50000 RAND() */)", "RAND()"},
      {"INSERT INTO t VALUES (/* NOW() */ 1)", std::nullopt},
  });
  check_multi({
      {"SELECT 1 /*! ; DELETE FROM t */", true},
      {"SELECT 1 /* ; DELETE FROM t */", false},
  });
  // SQLite reads /*! ... */ as a comment.
  CHECK(classify("SELECT * FROM t /*! FOR UPDATE */", Dialect::sqlite).kind == R);
  CHECK(classify("SELECT * FROM t /*! FOR UPDATE */", Dialect::mariadb).kind == W);
}

TEST_CASE("statement: non-deterministic functions") {
  check_nondet({
      {"INSERT INTO t VALUES (NOW())", "NOW()"},
      {"insert into t values (now ())", "NOW()"},
      {"INSERT INTO t VALUES (NOW/**/())", "NOW()"},
      {"INSERT INTO t VALUES (SYSDATE())", "SYSDATE()"},
      {"INSERT INTO t VALUES (CURDATE())", "CURDATE()"},
      {"INSERT INTO t VALUES (CURTIME())", "CURTIME()"},
      {"INSERT INTO t VALUES (CURRENT_DATE)", "CURRENT_DATE"},
      {"INSERT INTO t VALUES (current_time)", "CURRENT_TIME"},
      {"UPDATE t SET ts = CURRENT_TIMESTAMP", "CURRENT_TIMESTAMP"},
      {"UPDATE t SET ts = CURRENT_TIMESTAMP()", "CURRENT_TIMESTAMP()"},
      {"UPDATE t SET ts = LOCALTIME", "LOCALTIME"},
      {"UPDATE t SET ts = LOCALTIMESTAMP()", "LOCALTIMESTAMP()"},
      {"UPDATE t SET ts = UTC_DATE()", "UTC_DATE()"},
      {"UPDATE t SET ts = UTC_TIME", "UTC_TIME"},
      {"UPDATE t SET ts = UTC_TIMESTAMP()", "UTC_TIMESTAMP()"},
      {"UPDATE t SET ts = UNIX_TIMESTAMP()", "UNIX_TIMESTAMP()"},
      {"UPDATE t SET ts = UNIX_TIMESTAMP( )", "UNIX_TIMESTAMP()"},
      {"UPDATE t SET ts = UNIX_TIMESTAMP('2020-01-01')", std::nullopt},
      {"UPDATE t SET ts = UNIX_TIMESTAMP(d)", std::nullopt},
      {"UPDATE t SET r = RAND()", "RAND()"},
      {"UPDATE t SET r = rand(42)", "RAND()"},
      {"INSERT INTO t VALUES (random())", "RANDOM()"},
      {"INSERT INTO t VALUES (randomblob(16))", "RANDOMBLOB()"},
      {"INSERT INTO t VALUES (UUID())", "UUID()"},
      {"INSERT INTO t VALUES (UUID_SHORT())", "UUID_SHORT()"},
      {"INSERT INTO t VALUES (SYS_GUID())", "SYS_GUID()"},
      {"INSERT INTO t VALUES (CONNECTION_ID())", "CONNECTION_ID()"},
      {"INSERT INTO t VALUES (USER())", "USER()"},
      {"INSERT INTO t VALUES (CURRENT_USER)", "CURRENT_USER"},
      {"INSERT INTO t VALUES (CURRENT_USER())", "CURRENT_USER()"},
      {"INSERT INTO t VALUES (SESSION_USER())", "SESSION_USER()"},
      {"INSERT INTO t VALUES (SYSTEM_USER())", "SYSTEM_USER()"},
      {"INSERT INTO t VALUES (VERSION())", "VERSION()"},
      {"INSERT INTO t VALUES (FOUND_ROWS())", "FOUND_ROWS()"},
      {"INSERT INTO t VALUES (ROW_COUNT())", "ROW_COUNT()"},
      {"INSERT INTO t VALUES (LOAD_FILE('/etc/hostname'))", "LOAD_FILE()"},
      {"DO GET_LOCK('a', 1)", "GET_LOCK()"},
      {"DO RELEASE_LOCK('a')", "RELEASE_LOCK()"},
      {"INSERT INTO t VALUES (IS_FREE_LOCK('a'))", "IS_FREE_LOCK()"},
      {"DO BENCHMARK(10, 1)", "BENCHMARK()"},
      {"INSERT INTO t VALUES (MASTER_POS_WAIT('f', 4))", "MASTER_POS_WAIT()"},
      {"INSERT INTO t VALUES (@@hostname)", "@@hostname"},
      {"INSERT INTO t VALUES (@@session.sql_mode)", "@@session.sql_mode"},
      {"INSERT INTO t VALUES (@@GLOBAL.server_id)", "@@GLOBAL.server_id"},
      {"INSERT INTO t VALUES (changes())", "CHANGES()"},
      {"INSERT INTO t VALUES (sqlite_version())", "SQLITE_VERSION()"},
  });
}

TEST_CASE("statement: deterministic look-alikes") {
  check_nondet({
      {"INSERT INTO t VALUES (1)", std::nullopt},
      {"INSERT INTO t VALUES (LAST_INSERT_ID())", std::nullopt},
      {"INSERT INTO t VALUES (SLEEP(1))", std::nullopt},
      {"INSERT INTO t VALUES ('now()')", std::nullopt},
      {"INSERT INTO t VALUES (\"rand()\")", std::nullopt},
      {"INSERT INTO t (`now`, `user`) VALUES (1, 2)", std::nullopt},
      {"INSERT INTO t VALUES (1) -- now()", std::nullopt},
      {"INSERT INTO t VALUES (1) /* uuid() */", std::nullopt},
      {"INSERT INTO t VALUES ('@@hostname')", std::nullopt},
      {"INSERT INTO t (now, user, version) VALUES (1, 2, 3)", std::nullopt},
      {"UPDATE t SET a = user WHERE version = 3", std::nullopt},
      {"UPDATE t SET a = t.now", std::nullopt},
      {"UPDATE t SET a = db.version()", std::nullopt},
      {"INSERT INTO user (a) VALUES (1)", std::nullopt},
      {"INSERT user (a) VALUES (1)", std::nullopt},
      {"REPLACE INTO version(a) VALUES (1)", std::nullopt},
      {"CREATE TABLE uuid (id INT)", std::nullopt},
      {"CREATE TABLE IF NOT EXISTS user (id INT)", std::nullopt},
      {"CREATE TABLE t (uid INT REFERENCES user(id))", std::nullopt},
      {"CREATE INDEX i ON user (name)", std::nullopt},
      {"CALL uuid()", std::nullopt},
      {"UPDATE t SET a = @x", std::nullopt},
      {"INSERT INTO t VALUES (DATE('2020-01-01'))", std::nullopt},
      {"INSERT INTO t VALUES (datetime(ts, '+1 day'))", std::nullopt},
      {"INSERT INTO t VALUES (strftime('%Y', ts))", std::nullopt},
      {"INSERT INTO t VALUES (upper('now'))", std::nullopt},
      {"INSERT INTO t VALUES (NEXTVAL(s))", std::nullopt},
  });
}

TEST_CASE("statement: SQLite date and time functions with 'now'") {
  check_nondet({
      {"INSERT INTO t VALUES (date('now'))", "DATE('now')"},
      {"INSERT INTO t VALUES (datetime('now'))", "DATETIME('now')"},
      {"INSERT INTO t VALUES (DATETIME('NOW', 'localtime'))", "DATETIME('NOW')"},
      {"INSERT INTO t VALUES (julianday('now'))", "JULIANDAY('now')"},
      {"INSERT INTO t VALUES (time(\"now\"))", "TIME(\"now\")"},
      {"INSERT INTO t VALUES (strftime('%s', 'now'))", "STRFTIME(..., 'now')"},
      {"INSERT INTO t VALUES (unixepoch('now'))", "UNIXEPOCH('now')"},
      {"INSERT INTO t VALUES (date())", "DATE()"},
      {"INSERT INTO t VALUES (datetime( ))", "DATETIME()"},
      {"INSERT INTO t VALUES (strftime('%s'))", "STRFTIME('%s')"},
      {"INSERT INTO t VALUES (date(ts, 'start of month'))", std::nullopt},
      {"INSERT INTO t VALUES (date(coalesce(x, 'now')))", std::nullopt},  // 'now' not a direct argument
  });
}

TEST_CASE("statement: a non-deterministic column default is refused, saying why") {
  // Each member would evaluate it on its own whenever a row omits the column.
  for (const auto& [sql, culprit] : std::vector<std::pair<std::string_view, std::string_view>>{
           {"CREATE TABLE t (id INT, ts TIMESTAMP DEFAULT CURRENT_TIMESTAMP)", "CURRENT_TIMESTAMP"},
           {"CREATE TABLE t (ts TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, a INT)",
            "CURRENT_TIMESTAMP"},
           {"CREATE TABLE t (ts DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6))",
            "CURRENT_TIMESTAMP()"},
           {"CREATE TABLE t (ts DATETIME DEFAULT NOW())", "NOW()"},
           {"CREATE TABLE t (id BINARY(16) DEFAULT (UUID()))", "UUID()"},
           {"CREATE TABLE t (id BINARY(16) DEFAULT (`uuid`()))", "UUID()"},
           {"CREATE TABLE t (d TEXT DEFAULT (datetime('now')))", "DATETIME('now')"},
           {"create table t (ts timestamp default current_timestamp)", "CURRENT_TIMESTAMP"},
           {"ALTER TABLE t MODIFY ts TIMESTAMP DEFAULT CURRENT_TIMESTAMP", "CURRENT_TIMESTAMP"},
           {"ALTER TABLE t ALTER COLUMN ts SET DEFAULT CURRENT_TIMESTAMP", "CURRENT_TIMESTAMP"},
       }) {
    CAPTURE(sql);
    const auto got = classify(sql, Dialect::any);
    REQUIRE(got.nondeterministic.has_value());
    CHECK(*got.nondeterministic == culprit);
    CHECK(got.nondeterministic_default);
    const auto refusal = replication_refusal(got);
    REQUIRE(refusal.has_value());
    CHECK(refusal->find("column default") != std::string::npos);
  }
  check_nondet({
      {"CREATE TABLE t (a INT DEFAULT 0, b VARCHAR(3) DEFAULT 'now', c INT DEFAULT (1 + 2))", std::nullopt},
      // Evaluated now, by each node: flagged as a call.
      {"CREATE TABLE t AS SELECT NOW() AS ts", "NOW()"},
      {"CREATE TABLE t (ts TIMESTAMP DEFAULT CURRENT_TIMESTAMP, r DOUBLE) AS SELECT RAND() AS r",
       "CURRENT_TIMESTAMP"},
      {"CREATE TABLE c (u VARCHAR(36) DEFAULT (UUID()), a INT) SELECT 1 AS a", "UUID()"},
      {"ALTER TABLE t ADD COLUMN ts TIMESTAMP DEFAULT CURRENT_TIMESTAMP", "CURRENT_TIMESTAMP"},
      {"ALTER TABLE t ADD (a INT, ts TIMESTAMP DEFAULT NOW())", "NOW()"},
      {"INSERT INTO t VALUES (DEFAULT, NOW())", "NOW()"},
      {"UPDATE t SET a = DEFAULT, ts = CURRENT_TIMESTAMP", "CURRENT_TIMESTAMP"},
  });
  CHECK_FALSE(classify("CREATE TABLE c (u VARCHAR(36) DEFAULT (UUID()), a INT) SELECT 1 AS a")
                  .nondeterministic_default);
}

TEST_CASE("statement: non-determinism is looked for in every statement") {
  const auto c = classify("INSERT INTO t VALUES (1); INSERT INTO t VALUES (NOW())");
  CHECK(c.multiple_statements);
  REQUIRE(c.nondeterministic.has_value());
  CHECK(*c.nondeterministic == "NOW()");
}

TEST_CASE("statement: MariaDB and SQLite lexical differences") {
  // Backslash: an escape in MariaDB, an ordinary character in SQLite.
  const std::string_view backslash = "INSERT INTO t VALUES ('it\\'s now()')";
  CHECK_FALSE(classify(backslash, Dialect::mariadb).nondeterministic.has_value());
  CHECK(classify(backslash, Dialect::sqlite).nondeterministic.has_value());
  CHECK(classify(backslash).nondeterministic.has_value());  // the union is conservative

  const std::string_view hidden = "INSERT INTO t VALUES ('a\\'); DELETE FROM t; -- ')";
  CHECK_FALSE(classify(hidden, Dialect::mariadb).multiple_statements);
  CHECK(classify(hidden, Dialect::sqlite).multiple_statements);
  CHECK(classify(hidden).multiple_statements);

  // "--" directly followed by a non-blank is not a comment in MariaDB.
  const std::string_view dashes = "SELECT 1--1; DELETE FROM t";
  CHECK(classify(dashes, Dialect::mariadb).multiple_statements);
  CHECK_FALSE(classify(dashes, Dialect::sqlite).multiple_statements);
  CHECK(classify(dashes).multiple_statements);
  CHECK(classify("SELECT 1 --\n", Dialect::mariadb).kind == R);  // "--" at a line end is a comment

  // The readings disagree on the kind: write.
  const std::string_view disagree = "SELECT 'a\\' FOR UPDATE -- '";
  CHECK(classify(disagree, Dialect::mariadb).kind == R);
  CHECK(classify(disagree, Dialect::sqlite).kind == W);
  CHECK(classify(disagree).kind == W);

  // SQLite quotes identifiers with [...].
  CHECK_FALSE(classify("SELECT [a;b] FROM t", Dialect::sqlite).multiple_statements);
  CHECK_FALSE(classify("INSERT INTO t ([now()]) VALUES (1)", Dialect::sqlite).nondeterministic.has_value());
}

TEST_CASE("statement: unterminated strings, identifiers and comments") {
  check_kinds({
      {"SELECT 'abc", R},
      {"SELECT \"abc", R},
      {"SELECT `abc", R},
      {"SELECT 1 /* FOR UPDATE", R},
      {"SELECT 'x' FROM t WHERE a = 'FOR UPDATE", R},
      {"INSERT INTO t VALUES ('x", W},
      {"SELECT 'x\\", R},
      {"/*", W},
      {"/*!", W},
      {"'", W},
      {"SELECT * FROM t /*! FOR UPDATE", W},
      {"SELECT @@", R},
  });
  check_multi({
      {"SELECT 'abc; DELETE FROM t", false},
      {"SELECT 1 /* ; DELETE FROM t", false},
  });
  check_nondet({
      {"INSERT INTO t VALUES ('now()", std::nullopt},
      {"INSERT INTO t VALUES (NOW(", "NOW()"},
      {"INSERT INTO t VALUES (strftime('%s'", std::nullopt},
      {"INSERT INTO t VALUES (date(", std::nullopt},
  });
}

TEST_CASE("statement: replication_refusal") {
  CHECK_FALSE(replication_refusal(classify("SELECT NOW()")).has_value());
  CHECK_FALSE(replication_refusal(classify("INSERT INTO t VALUES (1)")).has_value());
  CHECK_FALSE(replication_refusal(classify("CREATE TABLE t (ts TIMESTAMP DEFAULT 0)")).has_value());

  const auto nondet = replication_refusal(classify("INSERT INTO t VALUES (NOW())"));
  REQUIRE(nondet.has_value());
  CHECK(nondet->find("NOW()") != std::string::npos);
  CHECK(nondet->find("non-deterministic") != std::string::npos);

  const auto multi = replication_refusal(classify("INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)"));
  REQUIRE(multi.has_value());
  CHECK(multi->find("more than one statement") != std::string::npos);

  const auto session = replication_refusal(classify("SET NAMES utf8"));
  REQUIRE(session.has_value());
  CHECK(session->find("'SET'") != std::string::npos);

  const auto txn = replication_refusal(classify("start transaction"));
  REQUIRE(txn.has_value());
  CHECK(txn->find("'START'") != std::string::npos);
  CHECK(txn->find("transaction-control") != std::string::npos);

  for (const auto& refusal : {*nondet, *multi, *session, *txn}) {
    CAPTURE(refusal);
    CHECK(refusal.back() == '.');
    CHECK(refusal.find('\n') == std::string::npos);
  }
}

TEST_CASE("statement: replication_refusal when rows are shipped") {
  // Rows are shipped: what a write evaluates once on the coordinator is
  // stored as is everywhere, so non-deterministic functions in writes and
  // in stored programs' bodies are fine. DDL is still run as text by every
  // member: a default or a CREATE TABLE ... SELECT each member evaluates
  // itself is refused all the same, and so is everything else that is not
  // about determinism.
  const auto md = [](const char* sql) { return classify(sql, Dialect::mariadb, 101119); };
  for (const char* sql :
       {"INSERT INTO t VALUES (UUID(), NOW(6), RAND())", "UPDATE t SET v = `rand`()",
        "INSERT INTO t SELECT CONNECTION_ID(), @@hostname",
        "SET STATEMENT max_statement_time=1 FOR INSERT INTO t VALUES (SYSDATE())",
        "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.u = UUID()",
        "CREATE DEFINER = CURRENT_USER PROCEDURE p() BEGIN INSERT INTO t VALUES (NOW(6)); END",
        "CREATE OR REPLACE FUNCTION f() RETURNS DOUBLE NOT DETERMINISTIC RETURN RAND()"}) {
    CAPTURE(sql);
    CHECK(md(sql).nondeterministic.has_value());
    CHECK(replication_refusal(md(sql)).has_value());
    CHECK_FALSE(replication_refusal(md(sql), true).has_value());
  }
  // DDL that runs queries itself: every member would evaluate them.
  for (const char* sql :
       {"CREATE TABLE t2 AS SELECT f() AS u", "CREATE OR REPLACE TABLE t2 SELECT * FROM t",
        "BEGIN NOT ATOMIC INSERT INTO t VALUES (1); CREATE TABLE IF NOT EXISTS z (a INT); END",
        "CREATE TABLE t2 (a INT) AS VALUES (1)"}) {
    CAPTURE(sql);
    CHECK(md(sql).ddl_runs_queries);
    const auto refusal = replication_refusal(md(sql), true);
    REQUIRE(refusal.has_value());
    CHECK(refusal->find("INSERT ... SELECT") != std::string::npos);
  }
  for (const char* sql : {"CREATE VIEW v AS SELECT UUID() AS u", "CREATE TABLE t2 (a INT, b INT AS (a + 1))",
                          "ALTER TABLE t ADD COLUMN c INT",
                          "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW INSERT INTO audit SELECT NEW.id",
                          "CREATE TABLE t3 LIKE t"}) {
    CAPTURE(sql);
    CHECK_FALSE(md(sql).ddl_runs_queries);
  }
  for (const char* sql :
       {"CREATE TABLE t2 AS SELECT UUID() AS u", "ALTER TABLE t ADD COLUMN u CHAR(36) DEFAULT (UUID())",
        "CREATE TABLE t3 (ts DATETIME(6) DEFAULT NOW(6))", "INSERT INTO t VALUES (@x)",
        "CREATE TEMPORARY TABLE tt (a INT)", "INSERT INTO distdb_log VALUES (1)",
        "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)"}) {
    CAPTURE(sql);
    CHECK(replication_refusal(md(sql), true).has_value());
  }
  CHECK(md("CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.u = UUID()").defines_program);
  CHECK_FALSE(md("CREATE TABLE t2 AS SELECT UUID() AS u").defines_program);
}

TEST_CASE("statement: very long inputs") {
  std::string select = "SELECT ";
  for (int i = 0; i < 100000; ++i) select += "a" + std::to_string(i) + " + ";
  select += "1 FROM t";
  CHECK(classify(select).kind == R);
  CHECK(classify(select + " FOR UPDATE").kind == W);

  std::string insert = "INSERT INTO t VALUES ('" + std::string(1 << 20, 'x') + "'";
  for (int i = 0; i < 10000; ++i) insert += ", ('; now()')";
  insert += ")";
  const auto c = classify(insert);
  CHECK(c.kind == W);
  CHECK_FALSE(c.multiple_statements);
  CHECK_FALSE(c.nondeterministic.has_value());

  // Deep nesting and long runs of one construct stay linear.
  const std::string deep = "INSERT INTO t VALUES (" + std::string(200000, '(') + "strftime('%s', x" +
                           std::string(200000, ')') + ")";
  CHECK_FALSE(classify(deep).nondeterministic.has_value());
  std::string dates = "INSERT INTO t VALUES (";
  for (int i = 0; i < 50000; ++i) dates += "date(";
  dates += "'now'";
  CHECK(classify(dates).nondeterministic == std::optional<std::string>("DATE('now')"));
  std::string analyzes = "EXPLAIN";
  for (int i = 0; i < 100000; ++i) analyzes += " ANALYZE";
  CHECK(classify(analyzes).kind == W);
  std::string defaults = "CREATE TABLE t (";
  for (int i = 0; i < 50000; ++i) defaults += "c" + std::to_string(i) + " INT DEFAULT (((1))), ";
  defaults += "z INT)";
  CHECK_FALSE(classify(defaults).nondeterministic.has_value());
  CHECK(classify(std::string(1 << 20, ';')).kind == W);
  CHECK(classify(std::string(1 << 20, '/')).kind == W);
}

TEST_CASE("statement: random bytes do not crash and take bounded time") {
  std::mt19937 rng(12345);  // fixed seed: reproducible
  const std::string alphabet = "SELECT INSERT FOR UPDATE now() date('now') @@x ;'\"`\\-#/*!M[]()=:,. \n\t";
  const auto start = std::chrono::steady_clock::now();
  for (int iteration = 0; iteration < 20000; ++iteration) {
    const std::size_t len = rng() % 200;
    std::string input(len, '\0');
    const bool from_alphabet = iteration % 2 == 0;
    for (auto& ch : input) {
      ch = from_alphabet ? alphabet[rng() % alphabet.size()] : static_cast<char>(rng() & 0xff);
    }
    for (const Dialect d : {Dialect::any, Dialect::mariadb, Dialect::sqlite}) {
      const auto c = classify(input, d);
      (void)replication_refusal(c);
      for (const char k : c.first_keyword) CHECK_FALSE((k >= 'a' && k <= 'z'));
    }
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(elapsed < std::chrono::seconds(20));
}

TEST_SUITE_END();

// --- Executable comments as the server of a known version reads them ------

namespace {

constexpr unsigned long kMariaDb1011 = 101119;

Classification classify_1011(std::string_view sql) {
  return classify(sql, Dialect::mariadb, kMariaDb1011);
}

}  // namespace

TEST_CASE("statement: version-conditional comments are code or nothing, as the server decides") {
  struct Case {
    std::string_view sql;
    StatementKind kind;
    std::string_view effective;  // what the server runs
  };
  const std::vector<Case> cases = {
      // Above the server's version: skipped whole, so the DROP is what runs.
      {"/*!99999 SELECT 1 FROM DUAL WHERE 0 AND */ DROP TABLE t", W, "  DROP TABLE t"},
      {"/*!101120 SELECT 1 FROM DUAL WHERE 0 AND */ DROP TABLE t", W, "  DROP TABLE t"},
      {"/*M!999999 SELECT 1 FROM DUAL WHERE 0 AND */ DELETE FROM t", W, "  DELETE FROM t"},
      // MySQL 5.7+ versions are skipped by MariaDB whatever its version...
      {"/*!50700 SELECT 1 FROM DUAL WHERE 0 AND */ DELETE FROM t", W, "  DELETE FROM t"},
      // ... but not behind /*M!.
      // (The server refuses what these two run; their kind is write.)
      {"/*M!50700 SELECT 1 FROM DUAL WHERE 0 AND */ DELETE FROM t", W,
       "  SELECT 1 FROM DUAL WHERE 0 AND   DELETE FROM t"},
      // At or below the server's version: code.
      {"/*!101119 SELECT 1 FROM DUAL WHERE 0 AND */ DELETE FROM t", W,
       "  SELECT 1 FROM DUAL WHERE 0 AND   DELETE FROM t"},
      {"SELECT * FROM t /*!50699 FOR UPDATE */", W, "SELECT * FROM t   FOR UPDATE  "},
      {"/*!101119 SELECT 2 */", R, "  SELECT 2  "},
      // Four digits are not a version: code.
      {"SELECT 1 /*!1234 +10 */", R, "SELECT 1  1234 +10  "},
      // A skipped comment lets one level of /* */ nest, and reads no strings.
      {"SELECT 1 /*!99999 /* inner */ +10 */ + 2", R, "SELECT 1   + 2"},
      {"SELECT 1 /*!99999 '*/' +10", R, "SELECT 1  ' +10"},
      // A skipped comment inside an executed one.
      {"SELECT 1 /*! +2 /*!99999 +5 */ +10 */", R, "SELECT 1   +2   +10  "},
      // A lower-case m is no marker: an ordinary comment.
      {"SELECT 1 /*m!50700 FOR UPDATE */", R, ""},
  };
  for (const auto& c : cases) {
    CAPTURE(c.sql);
    const Classification got = classify_1011(c.sql);
    CHECK(distdb::sql::to_string(got.kind) == distdb::sql::to_string(c.kind));
    CHECK(got.effective_sql == c.effective);
    CHECK_FALSE(got.version_unknown);
  }
  // A statement hidden after a skipped comment's end is a second statement.
  CHECK(classify_1011("SELECT 1 /*!99999 */ ; DELETE FROM t").multiple_statements);
  CHECK_FALSE(classify_1011("SELECT 1 /*!99999 ; DELETE FROM t */").multiple_statements);
  // Non-determinism inside a skipped comment does not run; inside an executed one it does.
  CHECK_FALSE(classify_1011("INSERT INTO t VALUES (1 /*!99999 + RAND() */)").nondeterministic.has_value());
  CHECK(classify_1011("INSERT INTO t VALUES (1 /*!100000 + RAND() */)").nondeterministic.has_value());
  // Code inside code: the inner marker goes too, and the first "*/" ends both.
  CHECK(classify_1011("SELECT 1 /*! +10 /*! +5 */ +100").effective_sql == "SELECT 1   +10   +5   +100");
  // Never closed: the server refuses it; so does replication.
  const auto open = classify_1011("INSERT INTO t VALUES (1 /*! + 2)");
  CHECK(open.malformed);
  REQUIRE(replication_refusal(open).has_value());
  CHECK(replication_refusal(open)->find("never closed") != std::string::npos);
  CHECK(classify_1011("INSERT INTO t VALUES (1 /*!99999 + 2)").malformed);
}

TEST_CASE("statement: a version-dependent comment with the server's version unknown is not replicated") {
  const auto c = classify("INSERT INTO t VALUES (1 /*!100500 + 1 */)", Dialect::mariadb, 0);
  CHECK(c.version_unknown);
  REQUIRE(replication_refusal(c).has_value());
  CHECK(replication_refusal(c)->find("version") != std::string::npos);
  // Versions every supported server agrees on need no version.
  CHECK_FALSE(classify("INSERT INTO t VALUES (1 /*!40101 + 1 */)", Dialect::mariadb, 0).version_unknown);
  CHECK_FALSE(classify("INSERT INTO t VALUES (1 /*!50700 + 1 */)", Dialect::mariadb, 0).version_unknown);
  CHECK_FALSE(classify("INSERT INTO t VALUES (1 /*M!99999 + 1 */)", Dialect::mariadb, 0).version_unknown);
}

TEST_CASE("statement: compound statements are one statement") {
  check_multi(
      {
          {"CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN INSERT INTO a VALUES (NEW.x); SET NEW.y "
           "= 1; "
           "END",
           false},
          {"CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN INSERT INTO a VALUES (NEW.x); END;",
           false},
          {"CREATE DEFINER=`root`@`localhost` PROCEDURE p(IN n INT) BEGIN DECLARE i INT DEFAULT 0; "
           "WHILE i < n DO INSERT INTO t VALUES (i); SET i = i + 1; END WHILE; END",
           false},
          {"CREATE PROCEDURE p() BEGIN IF (SELECT COUNT(*) FROM t) > 0 THEN DELETE FROM t; ELSE INSERT INTO "
           "t "
           "VALUES (1); END IF; END",
           false},
          {"CREATE FUNCTION f(x INT) RETURNS INT DETERMINISTIC BEGIN DECLARE y INT; SET y = CASE WHEN x > 0 "
           "THEN 1 "
           "ELSE 0 END; RETURN IF(y > 0, y, 2); END",
           false},
          {"CREATE PROCEDURE p() lbl: LOOP INSERT INTO t VALUES (1); LEAVE lbl; END LOOP lbl", false},
          {"CREATE PROCEDURE p() BEGIN REPEAT INSERT INTO t VALUES (REPEAT('a', 2)); UNTIL 1 END REPEAT; END",
           false},
          {"CREATE PROCEDURE p() BEGIN FOR i IN 1..3 DO INSERT INTO t VALUES (i); END FOR; END", false},
          {"CREATE PROCEDURE p() BEGIN CASE 1 WHEN 1 THEN INSERT INTO t VALUES (1); ELSE BEGIN END; END "
           "CASE; END",
           false},
          {"CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO BEGIN DELETE FROM t; INSERT INTO t VALUES (1); END",
           false},
          {"BEGIN NOT ATOMIC INSERT INTO t VALUES (3); INSERT INTO t VALUES (4); END", false},
          {"IF 1 THEN INSERT INTO t VALUES (1); END IF", false},
          // Still two statements: one after the compound one, or none at all.
          {"CREATE PROCEDURE p() BEGIN INSERT INTO t VALUES (1); END; DELETE FROM t", true},
          {"BEGIN NOT ATOMIC INSERT INTO t VALUES (1); END; DROP TABLE t", true},
          {"CREATE TABLE t (a INT); DROP TABLE u", true},
          {"BEGIN; DELETE FROM t", true},
          {"SELECT CASE WHEN 1 THEN 2 END; DELETE FROM t", true},
      },
      Dialect::mariadb);
  // SQLite triggers have bodies too.
  check_multi(
      {{"CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE u SET n = n + 1; SELECT CASE WHEN 1 THEN 2 END; "
        "END",
        false}},
      Dialect::sqlite);
  const auto trigger = classify("CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.u = 1; END",
                                Dialect::mariadb);
  CHECK(trigger.kind == W);
  CHECK_FALSE(replication_refusal(trigger).has_value());
  // The determinism rules apply inside bodies.
  const auto uuid = classify(
      "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.u = UUID(); END", Dialect::mariadb);
  REQUIRE(replication_refusal(uuid).has_value());
  CHECK(replication_refusal(uuid)->find("UUID()") != std::string::npos);
}

TEST_CASE("statement: session state in a write is refused, naming it") {
  struct Case {
    std::string_view sql;
    std::string_view culprit;
  };
  const std::vector<Case> refused = {
      {"INSERT INTO t VALUES (@x)", "@x"},
      {"INSERT INTO t VALUES (@`a b`)", "@`a b`"},
      {"UPDATE t SET a = @'x'", "@'x'"},
      {"INSERT INTO t2 VALUES (LAST_INSERT_ID())", "LAST_INSERT_ID()"},
      {"INSERT INTO t2 VALUES (LASTVAL(s))", "LASTVAL()"},
      {"INSERT INTO t2 VALUES (PREVIOUS VALUE FOR s)", "PREVIOUS VALUE FOR"},
      {"CREATE TEMPORARY TABLE t (a INT)", "temporary"},
      {"CREATE OR REPLACE TEMPORARY TABLE t (a INT)", "temporary"},
      {"DROP TEMPORARY TABLE t", "temporary"},
      {"EXECUTE IMMEDIATE 'INSERT INTO t VALUES (1)'", "EXECUTE IMMEDIATE"},
      {"PREPARE st FROM 'INSERT INTO t VALUES (1)'", "PREPARE"},
      {"EXECUTE st", "EXECUTE"},
      {"DEALLOCATE PREPARE st", "DEALLOCATE PREPARE"},
      {"CREATE PROCEDURE p() BEGIN SET GLOBAL max_connections = 10; END", "SET GLOBAL"},
      {"CREATE PROCEDURE p() BEGIN SET SESSION sql_mode = ''; INSERT INTO t VALUES (1); END", "SET SESSION"},
      {"CREATE PROCEDURE p() BEGIN PREPARE s FROM 'DELETE FROM t'; EXECUTE s; END", "PREPARE"},
      {"CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET @n = @n + 1", "@n"},
  };
  for (const auto& c : refused) {
    CAPTURE(c.sql);
    const auto got = classify(c.sql, Dialect::mariadb, kMariaDb1011);
    REQUIRE(got.session_state.has_value());
    CHECK(got.session_state->culprit.find(c.culprit) != std::string::npos);
    const auto refusal = replication_refusal(got);
    REQUIRE(refusal.has_value());
    CHECK(refusal->find(c.culprit) != std::string::npos);
    CHECK(refusal->find("one connection") != std::string::npos);
  }
  const std::vector<std::string_view> accepted = {
      "CREATE USER 'app'@'localhost' IDENTIFIED BY 'x'",
      "CREATE USER app@localhost",
      "GRANT SELECT, EXECUTE ON db.* TO 'app'@'%'",
      "GRANT EXECUTE ON PROCEDURE db.p TO `app`@`%`",
      "CREATE DEFINER = 'root'@'localhost' TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1",
      "INSERT INTO t VALUES (LAST_INSERT_ID(5))",
      "INSERT INTO t (execute, prepare) VALUES (1, 2)",
      "CREATE TABLE temp_values (a INT)",
      "CREATE PROCEDURE p() BEGIN DECLARE v INT; SET v = 1; INSERT INTO t VALUES (v); END",
  };
  for (const auto sql : accepted) {
    CAPTURE(sql);
    const auto got = classify(sql, Dialect::mariadb, kMariaDb1011);
    CHECK_MESSAGE(!got.session_state.has_value(), "flagged: " << got.session_state->culprit);
  }
  // SQLite's temp schema.
  CHECK(classify("CREATE TEMP TABLE t (a)", Dialect::sqlite).session_state.has_value());
  CHECK(classify("INSERT INTO temp.t VALUES (1)", Dialect::sqlite).session_state.has_value());
}

TEST_CASE("statement: distdb's own tables cannot be written") {
  for (const std::string_view sql :
       {"DELETE FROM distdb_log", "UPDATE distdb_applied SET seq = seq", "DROP TABLE `distdb_meta`",
        "INSERT INTO mydb.DISTDB_LOG VALUES (1)", "CREATE TABLE distdb_mine (a INT)",
        "CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW UPDATE distdb_applied SET seq = 0",
        "UPDATE \"distdb_applied\" SET seq = 0"}) {
    CAPTURE(sql);
    const auto got = classify(sql, Dialect::mariadb, kMariaDb1011);
    REQUIRE(got.reserved_name.has_value());
    const auto refusal = replication_refusal(got);
    REQUIRE(refusal.has_value());
    CHECK(refusal->find("distdb_") != std::string::npos);
  }
  // Reading them is fine.
  CHECK_FALSE(replication_refusal(classify("SELECT * FROM distdb_log", Dialect::mariadb)).has_value());
  CHECK_FALSE(classify("INSERT INTO t VALUES ('distdb_log')", Dialect::mariadb).reserved_name.has_value());
  // SQLite takes a 'string' where only a table's name can stand for that name.
  for (const std::string_view sql :
       {"INSERT INTO 'distdb_meta' VALUES ('promised_epoch', '9')",
        "CREATE TABLE 'distdb_x' (id INTEGER PRIMARY KEY)", "ALTER TABLE t RENAME TO 'distdb_t'",
        "UPDATE 'DISTDB_applied' SET seq = 0", "DELETE FROM 'distdb_log'",
        "CREATE TABLE IF NOT EXISTS 'distdb_y' (a)", "INSERT INTO main.'distdb_meta' VALUES ('a', 'b')",
        "UPDATE OR IGNORE 'distdb_meta' SET value = '9'",
        "INSERT OR REPLACE INTO 'distdb_applied' VALUES (1, 0, 0)", "DELETE FROM main.'distdb_log'"}) {
    CAPTURE(sql);
    CHECK(classify(sql, Dialect::sqlite).reserved_name.has_value());
    CHECK(classify(sql).reserved_name.has_value());
  }
  CHECK_FALSE(classify("INSERT INTO t VALUES ('distdb_log')", Dialect::sqlite).reserved_name.has_value());
  CHECK_FALSE(classify("UPDATE t SET a = 'distdb_x'", Dialect::sqlite).reserved_name.has_value());
}

TEST_CASE("statement: a quoted function name is the function") {
  check_nondet(
      {
          {"INSERT INTO t VALUES (`uuid`())", "UUID()"},
          {"INSERT INTO t VALUES (`rand`())", "RAND()"},
          {"INSERT INTO t VALUES (`Now`())", "NOW()"},
          {"INSERT INTO t VALUES (`unix_timestamp`())", "UNIX_TIMESTAMP()"},
          {"INSERT INTO t (`uuid`) VALUES (1)", std::nullopt},
          {"INSERT INTO `uuid`(a) VALUES (1)", std::nullopt},
          {"CALL `rand`()", std::nullopt},
      },
      Dialect::mariadb);
}

TEST_CASE("statement: SET STATEMENT that lifts READ ONLY is a write") {
  CHECK(classify("SET STATEMENT tx_read_only=0 FOR SELECT g()", Dialect::mariadb).kind == W);
  CHECK(classify("SET STATEMENT `TX_READ_ONLY` = 0 FOR SELECT g()", Dialect::mariadb).kind == W);
  CHECK(classify("SET STATEMENT max_statement_time=1 FOR SELECT 1", Dialect::mariadb).kind == R);
}

TEST_CASE("statement: writes to another database are refused, naming it") {
  using distdb::sql::Context;
  const Context maria{Dialect::mariadb, kMariaDb1011, "app"};
  const std::vector<std::pair<std::string_view, std::string_view>> refused = {
      {"INSERT INTO other.t VALUES (1)", "other"},
      {"INSERT other.t VALUES (1)", "other"},
      {"UPDATE other.t SET a = 1", "other"},
      {"UPDATE app.t, other.u SET t.a = u.a", "other"},
      {"DELETE FROM `other`.`t`", "other"},
      {"DELETE a FROM app.t a JOIN other.u b ON a.x = b.y", "other"},
      {"DROP TABLE t, other.t", "other"},
      {"DROP TABLE IF EXISTS other.t", "other"},
      {"CREATE TABLE other.t (a INT)", "other"},
      {"CREATE TABLE t LIKE other.t", "other"},
      {"CREATE TABLE t AS SELECT * FROM other.t", "other"},
      {"INSERT INTO t SELECT * FROM other.u", "other"},
      {"CREATE DATABASE other", "other"},
      {"DROP DATABASE IF EXISTS other", "other"},
      {"CREATE VIEW other.v AS SELECT 1", "other"},
      {"CREATE TRIGGER tr BEFORE INSERT ON other.t FOR EACH ROW SET NEW.a = 1", "other"},
      {"CALL other.p()", "other"},
      {"RENAME TABLE t TO other.t", "other"},
      {"UPDATE t SET a = other.u.b", "other"},
      {"INSERT INTO APP.t VALUES (1)", "APP"},  // MariaDB names are case-sensitive
      {"INSERT INTO t (v) SELECT VARIABLE_VALUE FROM (information_schema.GLOBAL_STATUS) WHERE 1", "information_schema"},
      {"INSERT INTO t (v) SELECT 1 FROM t, (information_schema.PROCESSLIST)", "information_schema"},
      {"INSERT INTO t SELECT (SELECT COUNT(*) FROM mysql.user)", "mysql"},
      {"UPDATE t SET v = (SELECT MAX(ID) FROM `information_schema`.`PROCESSLIST`)", "information_schema"},
      {"CREATE VIEW v AS SELECT * FROM (performance_schema.threads)", "performance_schema"},
      {"ALTER TABLE t RENAME other.t9", "other"},
      {"DELETE FROM t WHERE a IN (SELECT a FROM ((other.u)))", "other"},
  };
  for (const auto& [sql, db] : refused) {
    CAPTURE(sql);
    const auto got = classify(sql, maria);
    REQUIRE(got.other_database.has_value());
    CHECK(*got.other_database == db);
    const auto refusal = replication_refusal(got);
    REQUIRE(refusal.has_value());
    CHECK(refusal->find("'" + std::string(db) + "'") != std::string::npos);
  }
  for (const std::string_view sql : {
           "INSERT INTO app.t VALUES (1)", "UPDATE t SET t.a = 1 WHERE t.b = 2", "UPDATE t AS x SET x.a = 1",
           "DELETE FROM t WHERE t.a IN (SELECT u.a FROM u)",
           "INSERT INTO t (a, b) SELECT u.a, u.b FROM u JOIN v ON u.x = v.y",
           "CREATE TABLE t (a INT, FOREIGN KEY (a) REFERENCES u (a))", "GRANT SELECT ON other.* TO 'x'@'%'",
           "CREATE USER 'x'@'%'", "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = NEW.b",
           "SELECT * FROM other.t",  // a read: not replicated, not refused
       }) {
    CAPTURE(sql);
    const auto got = classify(sql, maria);
    const bool fine = !got.other_database.has_value() || got.kind == R;
    CHECK_MESSAGE(fine, "flagged: " << got.other_database.value_or(""));
  }
  CHECK_FALSE(replication_refusal(classify("SELECT * FROM other.t", maria)).has_value());
  // SQLite: the schema is "main", in any case; attached databases are refused.
  const Context lite{Dialect::sqlite, 0, "main"};
  CHECK_FALSE(classify("INSERT INTO MAIN.t VALUES (1)", lite).other_database.has_value());
  CHECK(classify("INSERT INTO aux.t VALUES (1)", lite).other_database == "aux");
  CHECK(classify("ATTACH DATABASE 'x.db' AS aux", lite).kind == S);
}

TEST_CASE("statement: events and cached sequences are refused") {
  for (const std::string_view sql : {"CREATE EVENT e ON SCHEDULE EVERY 1 HOUR DO DELETE FROM t",
                                     "CREATE DEFINER=root@localhost EVENT e ON SCHEDULE EVERY 1 HOUR DO SELECT 1",
                                     "ALTER EVENT e ENABLE", "CREATE SEQUENCE s", "CREATE SEQUENCE s CACHE 10",
                                     "CREATE OR REPLACE SEQUENCE s START WITH 5", "ALTER SEQUENCE s CACHE = 100"}) {
    CAPTURE(sql);
    const auto got = classify(sql, Dialect::mariadb, kMariaDb1011);
    REQUIRE(got.unreplicable.has_value());
    CHECK(replication_refusal(got) == got.unreplicable);
  }
  for (const std::string_view sql : {"CREATE SEQUENCE s NOCACHE", "CREATE SEQUENCE s START WITH 10 CACHE 0",
                                     "CREATE SEQUENCE s CACHE = 0 INCREMENT BY 5", "ALTER SEQUENCE s RESTART 10",
                                     "CREATE SEQUENCE s NO CACHE", "CREATE TABLE event (a INT)",
                                     "CREATE TABLE t (sequence INT, cache INT)", "DROP SEQUENCE s", "DROP EVENT e"}) {
    CAPTURE(sql);
    CHECK_FALSE(classify(sql, Dialect::mariadb, kMariaDb1011).unreplicable.has_value());
  }
}

TEST_CASE("statement: a routine or trigger body may SET its own variables only") {
  for (const std::string_view sql : {
           "CREATE FUNCTION f_rw() RETURNS INT BEGIN SET tx_read_only = 0; RETURN 1; END",
           "CREATE PROCEDURE p_tz() SET time_zone = '+05:00'",
           "CREATE PROCEDURE p() BEGIN SET autocommit = 0; INSERT INTO t VALUES (1); END",
           "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET foreign_key_checks = 0",
           "CREATE PROCEDURE p(a INT) BEGIN DECLARE b INT; SET b = a, sql_mode = ''; END",
           "CREATE PROCEDURE p() BEGIN SET NAMES latin1; END",
           "BEGIN NOT ATOMIC SET time_zone = '+01:00'; INSERT INTO t VALUES (NOW()); END",
       }) {
    CAPTURE(sql);
    const auto got = classify(sql, Dialect::mariadb, kMariaDb1011);
    REQUIRE(replication_refusal(got).has_value());
  }
  for (const std::string_view sql : {
           "CREATE PROCEDURE p(IN a INT, OUT b INT) BEGIN DECLARE c, d INT DEFAULT 0; SET c = a + 1, d = c; "
           "SET b = d; END",
           "CREATE FUNCTION f(x INT) RETURNS INT DETERMINISTIC BEGIN DECLARE y INT; SET y = x * 2; RETURN y; END",
           "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = NEW.b + 1",
           "CREATE TRIGGER tr BEFORE UPDATE ON t FOR EACH ROW BEGIN SET NEW.a = OLD.a, NEW.b = 2; END",
           "CREATE PROCEDURE p() BEGIN FOR i IN 1..3 DO INSERT INTO t VALUES (i); END FOR; END",
           "CREATE PROCEDURE p(Aa INT) BEGIN DECLARE Bb INT; SET bb = aa; INSERT INTO t VALUES (bB); END",
           // Not a body: an UPDATE's SET after a parenthesis.
           "UPDATE t1 JOIN t2 USING (id) SET t1.b = t2.b",
           "UPDATE t1 JOIN t2 ON (t1.a = t2.a) SET t1.b = 1",
       }) {
    CAPTURE(sql);
    const auto got = classify(sql, Dialect::mariadb, kMariaDb1011);
    CHECK_MESSAGE(!replication_refusal(got).has_value(), replication_refusal(got).value_or(""));
  }
}

TEST_CASE("statement: statements that administer one server are refused wherever they stand") {
  for (const std::string_view sql :
       {"KILL QUERY 142", "KILL 7", "SHUTDOWN", "FLUSH TABLES", "FLUSH TABLES WITH READ LOCK", "RESET MASTER",
        "PURGE BINARY LOGS BEFORE NOW()", "CHANGE MASTER TO MASTER_HOST='x'", "START SLAVE", "STOP REPLICA",
        "INSTALL SONAME 'x'", "UNINSTALL PLUGIN x", "BINLOG 'abc'", "HANDLER t OPEN", "CACHE INDEX t IN k",
        "BACKUP STAGE START", "LOAD DATA LOCAL INFILE '/proc/self/stat' INTO TABLE t (v)",
        "LOAD DATA INFILE '/etc/passwd' INTO TABLE t", "LOAD XML INFILE 'x' INTO TABLE t",
        "CREATE PROCEDURE p() BEGIN KILL 5; END", "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO FLUSH LOGS",
        "SELECT * FROM t INTO OUTFILE '/tmp/t.csv'", "SELECT a FROM t INTO DUMPFILE '/tmp/a'"}) {
    CAPTURE(sql);
    const auto got = classify(sql, Dialect::mariadb, kMariaDb1011);
    REQUIRE(got.unreplicable.has_value());
    CHECK(replication_refusal(got) == got.unreplicable);
  }
  for (const std::string_view sql : {"ALTER TABLE t CHANGE a b INT", "INSERT INTO t (kill, load) VALUES (1, 2)",
                                     "START TRANSACTION", "UPDATE t SET flush = 1"}) {
    CAPTURE(sql);
    CHECK_FALSE(classify(sql, Dialect::mariadb, kMariaDb1011).unreplicable.has_value());
  }
}

TEST_CASE("statement: DDL is found wherever it stands") {
  for (const std::string_view sql :
       {"CREATE TABLE t (a INT)", "drop table t", "SET STATEMENT sql_mode='' FOR CREATE TABLE ty (a INT)",
        "BEGIN NOT ATOMIC CREATE TABLE bna (a INT); END", "IF 1 THEN DROP TABLE t; END IF",
        "BEGIN NOT ATOMIC INSERT INTO t VALUES (1); ALTER TABLE t ADD COLUMN b INT; END"}) {
    CAPTURE(sql);
    CHECK(classify(sql, Dialect::mariadb, kMariaDb1011).ddl);
  }
  for (const std::string_view sql : {"INSERT INTO t (create, drop) VALUES (1, 2)", "UPDATE t SET alter = 1",
                                     "BEGIN NOT ATOMIC INSERT INTO t VALUES (1); END", "SELECT 1"}) {
    CAPTURE(sql);
    CHECK_FALSE(classify(sql, Dialect::mariadb, kMariaDb1011).ddl);
  }
}
