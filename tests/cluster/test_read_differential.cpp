// Read differential: a statement distdb classifies as a single read is run
// by the member that receives it, on its own database, without being
// replicated. Such a statement must change nothing there.
//
// A seeded grammar of tricky fragments generates a few thousand statements:
// SELECT, SHOW, EXPLAIN, DESCRIBE, VALUES, WITH, ANALYZE, SET STATEMENT ...
// FOR, parenthesised and UNION forms; executable comments (/*! */,
// /*!NNNNN */, /*M!NNNNNN */) with versions around the server's; `--`, `#`
// and /* */ comments; backticks; strings with escapes; calls of stored
// functions that write (to InnoDB and MyISAM tables, to an AUTO_INCREMENT
// table) or call NEXTVAL/SETVAL; FOR UPDATE, INTO @v, sequences,
// information_schema. Each is classified the way a node classifies it
// (distdb::sql::classify, Dialect::mariadb, the server's version). Every one
// classified as a single read is sent through a real three-node cluster to
// a member that is not the coordinator, and that member's database is
// fingerprinted directly on its server (db_fingerprint.hpp, plus the
// AUTO_INCREMENT counters the fingerprint leaves out) before and after,
// together with its log position (distdb_applied): neither may change.
// Whether the member answers or refuses the statement does not matter.
//
// The seed is fixed and printed; DISTDB_READ_DIFF_SEED=N picks another
// (DISTDB_READ_DIFF_COUNT=N the number of statements generated), so that
// any failure is reproduced by the command it prints;
// DISTDB_READ_DIFF_VERBOSE=1 prints every statement sent with its reply.
#include <doctest/doctest.h>

#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cluster_fixture.hpp"
#include "db_fingerprint.hpp"
#include "distdb/storage.hpp"
#include "mariadb_env.hpp"
#include "rng.hpp"
#include "sql/statement.hpp"

using namespace distdb;
using namespace distdb::test;
using namespace std::chrono_literals;

namespace {

constexpr int kCoordinator = 3;  // the highest id wins the first election
constexpr std::uint64_t kDefaultSeed = 20261207;
constexpr int kDefaultCount = 5000;

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 10);
}

// The grammar. Every choice comes from the seeded generator, so a seed
// gives the same statements on every run (against a server of the same
// version: the version goes into the comments).
class Grammar {
 public:
  Grammar(std::uint64_t seed, unsigned long server_version) : rng_(seed), version_(server_version) {}

  std::string statement() {
    std::string s = wrap(form(0));
    return s;
  }

 private:
  template <typename T>
  const T& pick(const std::vector<T>& items) {
    return items[rng_.below(items.size())];
  }
  bool chance(int percent) { return static_cast<int>(rng_.below(100)) < percent; }

  // A version for an executable comment: around the server's, around
  // MySQL-only 50700..99999, or old.
  std::string version(bool six_digits) {
    const long v = static_cast<long>(version_);
    if (six_digits) {
      const std::vector<long> around = {v - 1, v, v + 1, v - 100, v + 100, 100000, 999999, 50700};
      return std::to_string(pick(around));
    }
    const std::vector<std::string> five = {"50699",
                                           "50700",
                                           "50701",
                                           "99999",
                                           "40100",
                                           "32302",
                                           "10010",
                                           std::to_string(v / 10),
                                           std::to_string(v).substr(0, 5)};
    return pick(five);
  }

  std::string exec_comment(const std::string& code) {
    switch (rng_.below(4)) {
      case 0:
        return "/*!" + code + "*/";
      case 1:
        return "/*!" + version(false) + " " + code + "*/";
      case 2:
        return "/*M!" + version(true) + " " + code + "*/";
      default:
        return "/*!" + version(true) + " " + code + " */";  // six digits after /*!
    }
  }

  std::string comment() {
    static const std::vector<std::string> plain = {
        "/* c */", "/**/", "/* ; DELETE FROM t */", "/* nested /* ? */", "/* 'quote */", "/*+ hint */",
    };
    switch (rng_.below(5)) {
      case 0:
        return "-- x; DELETE FROM t\n";
      case 1:
        return "#; INSERT INTO logt VALUES (1)\n";
      case 2:
        return "--\tc\n";
      case 3:
        return exec_comment(
            pick(std::vector<std::string>{"", " ", "STRAIGHT_JOIN", "; DELETE FROM t", "SQL_NO_CACHE"}));
      default:
        return pick(plain);
    }
  }

  std::string table() {
    static const std::vector<std::string> t = {"t",       "`t`",    "logt", "`logm`", "t_ai",
                                               "v_plain", "v_next", "s",    "{db}.t", "`{db}`.`t_ai`"};
    return pick(t);
  }

  std::string literal() {
    static const std::vector<std::string> l = {
        "1",
        "'it\\'s; DELETE FROM t'",
        "\"dq\\\"; INSERT INTO logt VALUES (2)\"",
        "'back\\\\'",
        "'--'",
        "'/*'",
        "'*/'",
        "'#'",
        "x'41'",
        "0x42",
        "NULL",
        "'a''b'",
        "_utf8mb4'é'",
        "N'n'",
    };
    return pick(l);
  }

  // An expression; `depth` limits subqueries.
  std::string expr(int depth) {
    static const std::vector<std::string> writers = {
        "f_ins()",  "`f_ins`()",  "f_insm()",         "f_ai()",         "f_next()",     "f_set()",
        "f_call()", "NEXTVAL(s)", "NEXT VALUE FOR s", "SETVAL(s, 500)", "NEXTVAL(`s`)", "SETVAL(s, 1, 0)",
    };
    static const std::vector<std::string> harmless = {
        "a",
        "b",
        "f_pure(2)",
        "LASTVAL(s)",
        "PREVIOUS VALUE FOR s",
        "@v",
        "@@version",
        "DATABASE()",
        "CONNECTION_ID()",
        "LAST_INSERT_ID(7)",
        "UUID()",
        "RAND()",
        "COUNT(*)",
        "SLEEP(0)",
        "BENCHMARK(2, f_ins())",
        "CONCAT('--', 1)",
        "JSON_OBJECT('k', 1)",
        "@@tx_read_only",
        "ROW_COUNT()",
        "FOUND_ROWS()",
    };
    switch (rng_.below(depth > 1 ? 3 : 5)) {
      case 0:
        return pick(writers);
      case 1:
        return chance(50) ? pick(harmless) : literal();
      case 2:
        // Code or not depending on the version: "X + Y" or "Y".
        return exec_comment(pick(std::vector<std::string>{"f_ins() +", "1 +", "NEXTVAL(s) +", "f_insm() +",
                                                          "f_ai() +", "f_set() -"})) +
               " " + (chance(50) ? "1" : pick(writers));
      case 3:
        return "(SELECT " + expr(depth + 1) + ")";
      default:
        return "(SELECT " + expr(depth + 1) + " FROM " + table() + " LIMIT 1)";
    }
  }

  std::string select(int depth, bool limit = true) {
    std::string s = chance(10) ? "select " : chance(10) ? "SeLeCt " : "SELECT ";
    if (chance(15))
      s += pick(std::vector<std::string>{"SQL_NO_CACHE ", "HIGH_PRIORITY ", "DISTINCT ", "STRAIGHT_JOIN ",
                                         "SQL_CALC_FOUND_ROWS "});
    s += expr(depth);
    if (chance(30)) s += ", " + expr(depth);
    if (chance(60)) {
      s += " FROM " +
           pick(std::vector<std::string>{table(), "DUAL", "seq_1_to_3", "information_schema.TABLES",
                                         "information_schema.ROUTINES", "(SELECT 1 AS a, 2 AS b) d"});
      if (chance(40)) s += " WHERE " + expr(depth) + (chance(50) ? " > 0" : "");
    }
    if (limit && chance(20)) s += " LIMIT 1";
    if (depth == 0 && chance(25)) {
      s += pick(std::vector<std::string>{" FOR UPDATE", " LOCK IN SHARE MODE", " INTO @v",
                                         " FOR UPDATE NOWAIT", " FOR UPDATE SKIP LOCKED", " INTO @v, @w",
                                         " PROCEDURE ANALYSE()", " FOR SHARE", " INTO OUTFILE '/dev/null'",
                                         " FOR UPDATE WAIT 0"});
    }
    return s;
  }

  // A statement, `depth` levels inside another (SET STATEMENT, EXPLAIN, ...);
  // with `query`, a query only (what EXPLAIN and ANALYZE take).
  std::string form(int depth, bool query = false) {
    const std::uint64_t n = rng_.below(query ? 8 : depth > 0 ? 12 : 19);
    switch (n) {
      case 0:
      case 1:
      case 2:
        return select(depth);
      case 3:
        return "WITH " + std::string(chance(30) ? "RECURSIVE " : "") + "c AS (" + select(1) +
               ") SELECT * FROM c" + (chance(20) ? " FOR UPDATE" : "");
      case 4:
        return "VALUES (" + expr(0) + ")" + (chance(40) ? ", (" + expr(0) + ")" : "");
      case 5:
        return "(" + select(1) + ") UNION " + (chance(50) ? "ALL " : "") + "(" + select(1) + ")";
      case 6:
        return select(1, false) + " UNION " + (chance(50) ? "DISTINCT " : "") + select(1, false);
      case 7:
        return "(" + (chance(30) ? "(" + select(depth) + ")" : select(depth)) + ")";
      case 8:
        if (chance(40)) {
          return pick(std::vector<std::string>{"SHOW CREATE TABLE t", "SHOW CREATE SEQUENCE s",
                                               "SHOW CREATE FUNCTION f_ins", "SHOW INDEX FROM t_ai",
                                               "SHOW VARIABLES LIKE 'tx%'", "SHOW STATUS LIKE 'Com_select'",
                                               "SHOW WARNINGS", "SHOW CREATE VIEW v_next", "SHOW GRANTS"});
        }
        return pick(std::vector<std::string>{"SHOW TABLES", "SHOW FULL TABLES", "SHOW TRIGGERS",
                                             "SHOW TABLE STATUS", "SHOW VARIABLES", "SHOW STATUS",
                                             "SHOW FUNCTION STATUS", "SHOW COLUMNS FROM `t`",
                                             "SHOW SESSION STATUS", "SHOW DATABASES"}) +
               (chance(70) ? " WHERE " + expr(1) : "");
      case 9:
        return pick(std::vector<std::string>{"EXPLAIN ", "EXPLAIN EXTENDED ", "EXPLAIN FORMAT=JSON ", "DESC ",
                                             "DESCRIBE ", "EXPLAIN PARTITIONS "}) +
               (chance(25) ? pick(std::vector<std::string>{"DELETE FROM t", "UPDATE t SET b = 'z'",
                                                           "INSERT INTO logt VALUES (3)",
                                                           "INSERT INTO t_ai (v) SELECT f_ins()"})
                           : form(depth + 1, true));
      case 10:
        return pick(std::vector<std::string>{"ANALYZE ", "ANALYZE FORMAT=JSON "}) +
               (chance(25) ? pick(std::vector<std::string>{"DELETE FROM logt WHERE a = 99",
                                                           "UPDATE t SET b = b WHERE a = 0"})
                           : select(depth + 1));
      case 11:
        return "SET STATEMENT " +
               pick(std::vector<std::string>{"max_statement_time=10", "tx_read_only=0", "sql_mode=''",
                                             "transaction_read_only=0", "autocommit=0", "sql_log_bin=0",
                                             "max_statement_time=10, tx_read_only=0"}) +
               " FOR " + form(depth + 1);
      case 12:
        return pick(std::vector<std::string>{"DESCRIBE t", "DESC `t_ai`", "EXPLAIN logt", "DESCRIBE v_next",
                                             "DESCRIBE information_schema.TABLES", "DESC s"});
      case 13:
        return pick(std::vector<std::string>{"CHECKSUM TABLE t", "CHECK TABLE logm", "HELP 'SELECT'",
                                             "DO f_ins()", "CALL p()", "SELECT f_ins() INTO @v",
                                             "SELECT @v := f_next()", "HANDLER t OPEN"});
      case 14:
        // A write hidden behind an executable comment that reads as a read.
        return exec_comment(pick(std::vector<std::string>{"SELECT 1 FROM DUAL WHERE 0 AND", "SELECT 1 /*",
                                                          "VALUES (1)", "DESCRIBE", "SHOW TABLES WHERE 0 AND",
                                                          "SELECT"})) +
               " " +
               pick(std::vector<std::string>{"DELETE FROM t WHERE a = 1", "INSERT INTO logt VALUES (4)",
                                             "UPDATE t SET b = 'w'", "CALL p()", "f_ins()", "1",
                                             "INSERT INTO t_ai (v) VALUES (5)", "DO SETVAL(s, 77)"});
      case 15:
        return select(depth) + " " + comment() + (chance(50) ? "; " : ";") +
               (chance(50) ? "" : pick(std::vector<std::string>{"DELETE FROM t", "SELECT 2", " ", "-- x\n"}));
      case 16:
        return pick(std::vector<std::string>{
            "SELECT * FROM s", "SELECT next_not_cached_value FROM `s`", "SELECT NEXTVAL(s) FROM seq_1_to_2",
            "SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE()",
            "SELECT * FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = "
            "DATABASE() AND f_pure(1)",
            "SELECT * FROM v_next", "SELECT x FROM v_next FOR UPDATE",
            "SELECT COUNT(*) FROM logm WHERE f_insm()"});
      case 17:
        return "SELECT '" + std::string(chance(50) ? "\\\\" : "\\'") + "'" + (chance(50) ? "; " : " ") +
               pick(std::vector<std::string>{"DELETE FROM t", "f_ins()", "-- '\n, f_ins()", "# '\n, 1",
                                             "' , f_ins() '", "FROM t"});
      default:
        return "SELECT " + pick(std::vector<std::string>{"`f_ins`", "f_ins", "`f_next`", "f_set"}) + " " +
               comment() + " ()";
    }
  }

  std::string wrap(std::string s) {
    if (chance(15)) s = comment() + (chance(50) ? " " : "") + s;
    if (chance(10)) s = exec_comment("") + s;
    if (chance(10)) s += " " + comment();
    if (chance(15)) s += pick(std::vector<std::string>{";", " ;", ";;", "; -- end", ";\n", "\n"});
    if (chance(5)) s = "  \t\n" + s;
    return s;
  }

  sim::Rng rng_;
  unsigned long version_;
};

std::string with_db(std::string sql, const std::string& db) {
  for (auto at = sql.find("{db}"); at != std::string::npos; at = sql.find("{db}", at)) sql.replace(at, 4, db);
  return sql;
}

std::string describe(const Result<Reply>& r) {
  if (!r) return std::string("no reply (") + to_string(r.error().kind) + "): " + r.error().message;
  switch (r->status) {
    case ReplyStatus::ok:
      return "OK from node " + std::to_string(r->node) + ": " + r->message;
    case ReplyStatus::redirect:
      return "REDIRECT: " + r->message;
    case ReplyStatus::error:
      return "ERROR from node " + std::to_string(r->node) + ": " +
             (r->error ? r->error->message : r->message);
  }
  return "?";
}

// A member's database: its fingerprint, with the AUTO_INCREMENT counters
// (which the fingerprint leaves out of SHOW CREATE TABLE) as facets of
// their own, and its log position.
struct MemberState {
  DbFingerprint print;
  std::optional<AppliedPosition> position;
};

MemberState member_state(DbInspector& in, std::size_t server, const std::string& db) {
  MemberState s;
  s.print = in.fingerprint(server, db);
  auto counters = in.execute(
      server, "SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = '" + db +
                  "' AND AUTO_INCREMENT IS NOT NULL");
  if (!counters) {
    if (s.print.error.empty()) s.print.error = "AUTO_INCREMENT counters: " + counters.error().message;
  } else {
    for (const Row& row : counters->rows) {
      const auto* name = std::get_if<std::string>(&row.at(0));
      s.print.facets["table `" + (name ? *name : render_value(row.at(0))) + "`: AUTO_INCREMENT counter"] =
          render_value(row.at(1));
    }
  }
  s.position = in.applied(server, db);
  return s;
}

std::string position_text(const std::optional<AppliedPosition>& p) {
  if (!p) return "unreadable";
  return "epoch " + std::to_string(p->epoch) + " seq " + std::to_string(p->seq);
}

}  // namespace

TEST_CASE("read differential: a statement classified as a single read changes nothing on the member") {
  const std::uint64_t seed = env_number("DISTDB_READ_DIFF_SEED", kDefaultSeed);
  const int count = static_cast<int>(env_number("DISTDB_READ_DIFF_COUNT", kDefaultCount));
  const bool verbose = env_number("DISTDB_READ_DIFF_VERBOSE", 0) != 0;  // every statement sent, and its reply
  const std::string repro = "DISTDB_READ_DIFF_SEED=" + std::to_string(seed) +
                            " DISTDB_READ_DIFF_COUNT=" + std::to_string(count) +
                            " meson test -C <build> read-differential-mariadb";
  std::printf("read differential: seed %llu, %d statements (repro: %s)\n",
              static_cast<unsigned long long>(seed), count, repro.c_str());
  std::fflush(stdout);

  DbInspector in;
  REQUIRE(in.size() >= 3);
  const std::string db = "rdiff_" + std::to_string(::getpid());
  for (std::size_t i = 0; i < 3; ++i) (void)in.execute(i, "DROP DATABASE IF EXISTS `" + db + "`");

  unsigned long version = 0;
  {
    StorageConfig sc;
    sc.backend = StorageBackend::mariadb;
    sc.db = mariadb_db_config(0, "mysql");
    auto s = open_storage(sc);
    REQUIRE_MESSAGE(static_cast<bool>(s), (s ? std::string() : s.error().message));
    version = (*s)->server_version();
  }
  REQUIRE(version > 0);

  const auto started = std::chrono::steady_clock::now();
  {
    ClusterProcesses cluster(3, ClusterProcesses::Backend::mariadb, db);
    REQUIRE_MESSAGE(cluster.wait_for_coordinator(kCoordinator, 20s), cluster.log(kCoordinator));
    const std::vector<std::string> setup = {
        "CREATE TABLE t (a INT PRIMARY KEY, b VARCHAR(20) NOT NULL DEFAULT 'x')",
        "INSERT INTO t VALUES (1, 'one'), (2, 'it''s'), (3, 'back\\\\')",
        "CREATE TABLE logt (a INT)",
        "CREATE TABLE logm (a INT) ENGINE=MyISAM",
        "CREATE TABLE t_ai (id INT AUTO_INCREMENT PRIMARY KEY, v INT)",
        "INSERT INTO t_ai (v) VALUES (1), (2)",
        "CREATE SEQUENCE s NOCACHE",
        "CREATE FUNCTION f_pure(x INT) RETURNS INT DETERMINISTIC RETURN x + 1",
        "CREATE FUNCTION f_next() RETURNS BIGINT RETURN NEXTVAL(s)",
        "CREATE FUNCTION f_set() RETURNS BIGINT RETURN SETVAL(s, 1000)",
        "CREATE FUNCTION f_ins() RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO logt VALUES (1); RETURN 1; "
        "END",
        "CREATE FUNCTION f_insm() RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO logm VALUES (1); RETURN 1; "
        "END",
        "CREATE FUNCTION f_ai() RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO t_ai (v) VALUES (9); RETURN "
        "1; "
        "END",
        "CREATE PROCEDURE p() INSERT INTO logt VALUES (13)",
        "CREATE FUNCTION f_call() RETURNS INT MODIFIES SQL DATA BEGIN CALL p(); RETURN 1; END",
        "CREATE TRIGGER t_ai_audit AFTER INSERT ON t_ai FOR EACH ROW BEGIN INSERT INTO logt VALUES (NEW.v); "
        "END",
        "CREATE VIEW v_plain AS SELECT a, b FROM t",
        "CREATE VIEW v_next AS SELECT f_next() AS x",
    };
    for (const std::string& sql : setup) {
      const auto r = cluster.query(kCoordinator, sql);
      REQUIRE_MESSAGE((r && r->status == ReplyStatus::ok), sql << " -> " << describe(r));
    }
    std::string why;
    REQUIRE_MESSAGE(in.wait_for_same_position(db, 10s, &why), why);
    REQUIRE_MESSAGE(fingerprint_diff(in.fingerprint_all(db)).empty(),
                    fingerprint_diff(in.fingerprint_all(db)));
    // Each member learns its server's version with its first session: a
    // read first, so that the members classify as this test does.
    for (int member = 1; member <= 3; ++member) (void)cluster.query(member, "SELECT 1");

    Grammar grammar(seed, version);
    sql::Context context;
    context.dialect = sql::Dialect::mariadb;
    context.server_version = version;
    context.database = db;

    std::map<int, MemberState> state;  // member -> its state before the next read
    for (int member = 1; member <= 2; ++member) {
      state[member] = member_state(in, static_cast<std::size_t>(member - 1), db);
      REQUIRE_MESSAGE(state[member].print.ok(), state[member].print.error);
    }
    int sent = 0, refused = 0, not_reads = 0;
    std::map<std::string, int> kinds;
    std::map<std::string, int> errors;  // replies other than OK, by their first words
    std::vector<std::string> failures;
    for (int i = 0; i < count; ++i) {
      const std::string sql = with_db(grammar.statement(), db);
      const sql::Classification c = sql::classify(sql, context);
      if (c.kind != sql::StatementKind::read || c.multiple_statements) {
        ++not_reads;
        ++kinds[std::string(sql::to_string(c.kind)) + (c.multiple_statements ? " (several)" : "")];
        continue;
      }
      ++kinds["read"];
      const int member = 1 + (i % 2);
      const std::size_t server = static_cast<std::size_t>(member - 1);
      const auto reply = cluster.query(member, sql);
      ++sent;
      if (verbose)
        std::printf("#%d member %d: %s\n  -> %s\n", i, member, sql.c_str(), describe(reply).c_str());
      if (!reply || reply->status != ReplyStatus::ok) {
        ++refused;
        // What refused it, for the summary: the message without its details.
        std::string text = describe(reply);
        text = text.substr(0, std::min(text.find(':', text.find(':') + 1), std::size_t{70}));
        ++errors[text];
      }
      MemberState after = member_state(in, server, db);
      MemberState& before = state[member];
      std::string problem;
      if (!after.print.ok()) {
        problem = "no fingerprint after it: " + after.print.error;
      } else {
        const std::string diff = fingerprint_diff({before.print, after.print}, {"before", "after"});
        if (!diff.empty()) problem += "its database changed:\n" + diff;
        if (!before.position || !after.position || !(*before.position == *after.position)) {
          problem += "its log position moved: before " + position_text(before.position) + ", after " +
                     position_text(after.position) + "\n";
        }
      }
      if (!problem.empty()) {
        std::ostringstream out;
        out << "statement #" << i << " (seed " << seed << "), classified as a single read, sent to member "
            << member << " (not the coordinator):\n  " << sql << "\n  reply: " << describe(reply) << "\n"
            << problem << "repro: " << repro;
        failures.push_back(out.str());
        FAIL_CHECK(out.str());
      }
      if (after.print.ok()) before = std::move(after);  // the next read is compared with this state
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::printf(
        "read differential: seed %llu: %d statements generated, %d single reads sent (%d answered with "
        "an error), %d not sent (",
        static_cast<unsigned long long>(seed), count, sent, refused, not_reads);
    bool first = true;
    for (const auto& [kind, n] : kinds) {
      if (kind == "read") continue;
      std::printf("%s%s %d", first ? "" : ", ", kind.c_str(), n);
      first = false;
    }
    std::printf("); %zu failing; %.1f s\n", failures.size(), seconds);
    for (const auto& [text, n] : errors) std::printf("  %5d x %s\n", n, text.c_str());
    std::fflush(stdout);
    CHECK_MESSAGE(sent > count / 4,
                  "too few statements were reads: the grammar no longer exercises the read path");

    // Nothing was replicated, so the three members still agree.
    REQUIRE_MESSAGE(in.wait_for_same_position(db, 10s, &why), why);
    const std::string diff = fingerprint_diff(in.fingerprint_all(db));
    CHECK_MESSAGE(diff.empty(), "the members differ after the reads:\n" << diff);
  }
  for (std::size_t i = 0; i < 3; ++i) (void)in.execute(i, "DROP DATABASE IF EXISTS `" + db + "`");
}
