// distdb-cli's output and input handling without a node: table layout,
// escaping, tsv/json encodings, reply summaries, statement splitting, messages,
// the :status table.
#include <doctest/doctest.h>

#include <libintl.h>

#include <algorithm>
#include <cctype>
#include <clocale>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "cluster_status.hpp"
#include "messages.hpp"
#include "reply_printer.hpp"
#include "statement_splitter.hpp"
#include "table_printer.hpp"

using namespace distdb;
using namespace distdb::cli;

namespace {

ResultSet people() {
  ResultSet rs;
  rs.columns = {"id", "name", "score"};
  rs.rows.push_back({std::int64_t{1}, std::string("ana"), 9.5});
  rs.rows.push_back({std::int64_t{22}, std::monostate{}, std::monostate{}});
  rs.rows.push_back({std::int64_t{333}, std::string("bob"), -1.0});
  return rs;
}

std::string table_of(const ResultSet& rs, TableOptions options = {}) {
  std::ostringstream out;
  print_table(out, rs, options);
  return out.str();
}

Reply ok_reply(ResultSet rs, NodeId node = 3) {
  Reply r;
  r.status = ReplyStatus::ok;
  r.node = node;
  r.result = std::move(rs);
  return r;
}

struct Printed {
  std::string out;
  std::string err;
};

Printed print_outcome(const Outcome& outcome, Format format) {
  std::ostringstream out;
  std::ostringstream err;
  PrinterOptions options;
  options.format = format;
  ReplyPrinter printer(out, err, options);
  printer.print(outcome);
  return {out.str(), err.str()};
}

// Switches gettext to the Portuguese catalog for one test case, the way
// distdb-cli's start-up does on a machine without a generated pt_BR locale.
class PortugueseForThisTest {
 public:
  PortugueseForThisTest() {
    (void)bindtextdomain("distdb", std::getenv("DISTDB_LOCALEDIR"));
    (void)std::setlocale(LC_CTYPE, "C.UTF-8");
    (void)std::setlocale(LC_MESSAGES, "C.UTF-8");
    (void)setenv("LANGUAGE", "pt_BR", 1);
  }
  ~PortugueseForThisTest() {
    (void)unsetenv("LANGUAGE");
    (void)std::setlocale(LC_MESSAGES, "C");
    (void)std::setlocale(LC_CTYPE, "C");
  }
  PortugueseForThisTest(const PortugueseForThisTest&) = delete;
  PortugueseForThisTest& operator=(const PortugueseForThisTest&) = delete;
};

// The sorted placeholders ({0}, {1}, ...) that appear in `text`.
std::vector<std::string> placeholders_of(const std::string& text) {
  std::vector<std::string> found;
  for (std::size_t i = 0; i + 2 < text.size(); ++i) {
    if (text[i] == '{' && text[i + 2] == '}' && std::isdigit(static_cast<unsigned char>(text[i + 1])) != 0) {
      found.push_back(text.substr(i, 3));
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

}  // namespace

TEST_SUITE("cli table printer") {
  TEST_CASE("aligned table: numbers right, text left, NULL shown as NULL, headers left") {
    CHECK(table_of(people()) ==
          "+-----+------+-------+\n"
          "| id  | name | score |\n"
          "+-----+------+-------+\n"
          "|   1 | ana  |   9.5 |\n"
          "|  22 | NULL |  NULL |\n"
          "| 333 | bob  |    -1 |\n"
          "+-----+------+-------+\n");
  }

  TEST_CASE("a column of only NULLs is left-aligned; no columns prints nothing") {
    ResultSet rs;
    rs.columns = {"nothing_here"};
    rs.rows.push_back({std::monostate{}});
    CHECK(table_of(rs) ==
          "+--------------+\n"
          "| nothing_here |\n"
          "+--------------+\n"
          "| NULL         |\n"
          "+--------------+\n");
    CHECK(table_of(ResultSet{}).empty());
  }

  TEST_CASE("the text 'NULL' and an empty string are not NULL") {
    ResultSet rs;
    rs.columns = {"v"};
    rs.rows.push_back({std::string("")});
    rs.rows.push_back({std::string("NULL")});
    rs.rows.push_back({std::monostate{}});
    CHECK(table_of(rs) ==
          "+------+\n"
          "| v    |\n"
          "+------+\n"
          "|      |\n"
          "| NULL |\n"
          "| NULL |\n"
          "+------+\n");
    // tsv keeps them apart.
    std::ostringstream out;
    print_tsv(out, rs);
    CHECK(out.str() == "v\n\nNULL\n\\N\n");
  }

  TEST_CASE("newlines, tabs and control characters are escaped so the layout holds") {
    CHECK(table_text("a\nb\tc\r\x01", 0) == "a\\nb\\tc\\r\\x01");
    CHECK(table_text(std::string("nul\0x", 5), 0) == "nul\\0x");
    CHECK(table_text("back\\slash", 0) == "back\\slash");
    CHECK(table_text("\xFF" "ok", 0) == "\\xFFok");            // invalid UTF-8 byte
    CHECK(table_text("\xE2\x80\xAE" "rtl", 0) == "\\u202Ertl");  // bidi override
    ResultSet rs;
    rs.columns = {"s"};
    rs.rows.push_back({std::string("two\nlines")});
    CHECK(table_of(rs) ==
          "+------------+\n"
          "| s          |\n"
          "+------------+\n"
          "| two\\nlines |\n"
          "+------------+\n");
  }

  TEST_CASE("UTF-8 text is measured in terminal columns") {
    CHECK(display_width("ação") == 4);
    CHECK(display_width("日本") == 4);
    CHECK(display_width("e\xCC\x81") == 1);  // e + combining acute
    ResultSet rs;
    rs.columns = {"nome"};
    rs.rows.push_back({std::string("joão")});
    rs.rows.push_back({std::string("日本")});
    CHECK(table_of(rs) ==
          "+------+\n"
          "| nome |\n"
          "+------+\n"
          "| joão |\n"
          "| 日本 |\n"
          "+------+\n");
  }

  TEST_CASE("wide values are cut with an ellipsis in table mode only") {
    CHECK(table_text("abcdefghij", 5) == "abcd…");
    CHECK(table_text("abcde", 5) == "abcde");
    CHECK(table_text("a\nbcdef", 4) == "a\\n…");  // an escape is never split
    CHECK(table_text("a\nbcdef", 3) == "a…");
    CHECK(table_text("日本語", 4) == "日…");
    CHECK(display_width(table_text(std::string(500, 'x'), 64)) == 64);
    ResultSet rs;
    rs.columns = {"long"};
    rs.rows.push_back({std::string(100, 'y')});
    TableOptions narrow;
    narrow.max_cell_width = 8;
    CHECK(table_of(rs, narrow) ==
          "+----------+\n"
          "| long     |\n"
          "+----------+\n"
          "| yyyyyyy… |\n"
          "+----------+\n");
    CHECK(tsv_field(std::string(100, 'y')) == std::string(100, 'y'));
  }

  TEST_CASE("blobs as 0x hex, reals in shortest form") {
    CHECK(hex_blob(Blob{{0x00, 0xAB, 0x10}}) == "0x00AB10");
    CHECK(hex_blob(Blob{}) == "0x");
    CHECK(table_cell(Value{Blob{{0xDE, 0xAD}}}, 0) == "0xDEAD");
    CHECK(table_cell(Value{Blob{{1, 2, 3, 4, 5, 6}}}, 8) == "0x01020…");
    CHECK(format_double(0.1) == "0.1");
    CHECK(format_double(3.0) == "3");
    CHECK(format_double(1e300) == "1e+300");
    CHECK(format_double(std::numeric_limits<double>::quiet_NaN()) == "NaN");
    CHECK(format_double(-std::numeric_limits<double>::infinity()) == "-Infinity");
    CHECK(table_cell(Value{std::int64_t{-9223372036854775807 - 1}}, 0) == "-9223372036854775808");
  }

  TEST_CASE("tsv: header, tab-separated rows, NULL as \\N, mariadb escapes") {
    std::ostringstream out;
    print_tsv(out, people());
    CHECK(out.str() == "id\tname\tscore\n1\tana\t9.5\n22\t\\N\t\\N\n333\tbob\t-1\n");
    CHECK(tsv_escape("a\tb\nc\\d\re") == "a\\tb\\nc\\\\d\\re");
    CHECK(tsv_field(Value{Blob{{0x41}}}) == "0x41");
  }

  TEST_CASE("json values") {
    CHECK(json_value(Value{}) == "null");
    CHECK(json_value(Value{std::int64_t{42}}) == "42");
    CHECK(json_value(Value{2.5}) == "2.5");
    CHECK(json_value(Value{std::numeric_limits<double>::infinity()}) == "\"Infinity\"");
    CHECK(json_value(Value{std::string("say \"hi\"\n\\ é")}) == "\"say \\\"hi\\\"\\n\\\\ é\"");
    CHECK(json_value(Value{std::string("\x01")}) == "\"\\u0001\"");
    CHECK(json_value(Value{std::string("\xC3")}) == "\"\\ufffd\"");
    CHECK(json_value(Value{Blob{{'h', 'i', '!', '?'}}}) == "{\"base64\":\"aGkhPw==\"}");
    CHECK(base64(Blob{{'a', 'b'}}) == "YWI=");
    CHECK(base64(Blob{{'a', 'b', 'c'}}) == "YWJj");
    CHECK(base64(Blob{}) == "");
    CHECK(json_rows_members(people()) ==
          "\"columns\":[\"id\",\"name\",\"score\"],\"rows\":[[1,\"ana\",9.5],[22,null,null],[333,\"bob\",-1]]");
  }
}

TEST_SUITE("cli reply printer") {
  TEST_CASE("a read: table, row count with time, executing node") {
    Outcome o;
    o.reply = ok_reply(people());
    o.elapsed_sec = 0.0031;
    const Printed p = print_outcome(o, Format::table);
    CHECK(p.out == table_of(people()) + "3 rows in set (0.003 sec)\nNode executor: 3\n");
    CHECK(p.err.empty());
  }

  TEST_CASE("one row, no rows") {
    ResultSet one;
    one.columns = {"x"};
    one.rows.push_back({std::int64_t{7}});
    Outcome o;
    o.reply = ok_reply(one, 1);
    CHECK(print_outcome(o, Format::table).out == "+---+\n| x |\n+---+\n| 7 |\n+---+\n1 row in set (0.000 sec)\nNode executor: 1\n");
    ResultSet none;
    none.columns = {"x"};
    o.reply = ok_reply(none, 1);
    CHECK(print_outcome(o, Format::table).out == "Empty set (0.000 sec)\nNode executor: 1\n");
    CHECK(print_outcome(o, Format::tsv).out.empty());
  }

  TEST_CASE("a write: Query OK with rows affected") {
    ResultSet w;
    w.rows_affected = 2;
    Outcome o;
    o.reply = ok_reply(w, 2);
    o.elapsed_sec = 0.002;
    CHECK(print_outcome(o, Format::table).out == "Query OK, 2 rows affected (0.002 sec)\nNode executor: 2\n");
    w.rows_affected = 1;
    o.reply = ok_reply(w, 2);
    CHECK(print_outcome(o, Format::table).out == "Query OK, 1 row affected (0.002 sec)\nNode executor: 2\n");
    CHECK(print_outcome(o, Format::tsv).out.empty());
    CHECK(print_outcome(o, Format::json).out ==
          "{\"status\":\"ok\",\"node\":2,\"rows_affected\":1,\"last_insert_id\":0,\"time_sec\":0.002}\n");
  }

  TEST_CASE("an SQL error: ERROR line and node on stderr") {
    Reply r;
    r.status = ReplyStatus::error;
    r.node = 1;
    r.error = Error(ErrorKind::sql, "no such table: nope", 1);
    Outcome o;
    o.reply = r;
    const Printed p = print_outcome(o, Format::table);
    CHECK(p.out.empty());
    CHECK(p.err == "ERROR 1 (sql): no such table: nope\nNode executor: 1\n");
    CHECK(print_outcome(o, Format::json).out ==
          "{\"status\":\"error\",\"node\":1,\"error\":{\"kind\":\"sql\",\"code\":1,\"message\":\"no such table: "
          "nope\"},\"time_sec\":0.000}\n");
  }

  TEST_CASE("a connection failure is one plain line") {
    Outcome o;
    o.failure = Error(ErrorKind::unavailable, "cannot connect to 127.0.0.1:5000: connection refused");
    const Printed p = print_outcome(o, Format::table);
    CHECK(p.out.empty());
    CHECK(p.err == "cannot connect to 127.0.0.1:5000: connection refused\n");
    o.failure = Error(ErrorKind::not_coordinator, "too many redirects");
    CHECK(print_outcome(o, Format::tsv).err == "ERROR 0 (not_coordinator): too many redirects\n");
  }

  TEST_CASE("json rows, one object per line") {
    Outcome o;
    o.reply = ok_reply(people(), 3);
    o.elapsed_sec = 0.25;
    CHECK(print_outcome(o, Format::json).out ==
          "{\"status\":\"ok\",\"node\":3," + json_rows_members(people()) + ",\"time_sec\":0.250}\n");
  }

  TEST_CASE("redirect notice: the seed's words, on stdout for tables, stderr otherwise") {
    std::ostringstream out;
    std::ostringstream err;
    PrinterOptions options;
    ReplyPrinter table(out, err, options);
    table.redirect_notice(PeerConfig{3, "10.0.0.3", 5000});
    CHECK(out.str() == "[!] Redirecting to coordinator (Node 3)\n");
    options.format = Format::tsv;
    ReplyPrinter en(out, err, options);
    en.redirect_notice(PeerConfig{3, "10.0.0.3", 5000});
    CHECK(err.str() == "[!] Redirecting to coordinator (Node 3)\n");
  }
}

TEST_SUITE("cli statement splitter") {
  TEST_CASE("statements end at ';' and may span lines") {
    StatementSplitter s;
    CHECK(s.feed("SELECT *").empty());
    CHECK_FALSE(s.empty());
    CHECK(s.feed("  FROM t").empty());
    const auto done = s.feed("WHERE id = 1;");
    REQUIRE(done.size() == 1);
    CHECK(done[0] == "SELECT *\n  FROM t\nWHERE id = 1");
    CHECK(s.empty());
  }

  TEST_CASE("several statements on one line, blanks and empty statements skipped") {
    StatementSplitter s;
    const auto done = s.feed("  SELECT 1; ;SELECT 2 ;  SELECT");
    REQUIRE(done.size() == 2);
    CHECK(done[0] == "SELECT 1");
    CHECK(done[1] == "SELECT 2");
    CHECK(s.take_rest() == "SELECT");
    CHECK(s.empty());
    CHECK(s.take_rest().empty());
  }

  TEST_CASE("';' inside quotes and comments does not end a statement") {
    StatementSplitter s;
    auto done = s.feed("INSERT INTO t VALUES ('a;b', \"c;d\", `e;f`, 'it''s;', 'x\\';y'); -- done; really");
    REQUIRE(done.size() == 1);
    CHECK(done[0] == "INSERT INTO t VALUES ('a;b', \"c;d\", `e;f`, 'it''s;', 'x\\';y')");
    CHECK(s.empty());  // only a comment is pending
    done = s.feed("SELECT /* ; */ 1 # ;");
    CHECK(done.empty());
    done = s.feed(";");
    REQUIRE(done.size() == 1);
    CHECK(done[0] == "SELECT /* ; */ 1 # ;");
  }

  TEST_CASE("a string spanning lines keeps its newline") {
    StatementSplitter s;
    CHECK(s.feed("INSERT INTO t VALUES ('one;").empty());
    const auto done = s.feed("two');");
    REQUIRE(done.size() == 1);
    CHECK(done[0] == "INSERT INTO t VALUES ('one;\ntwo')");
  }

  TEST_CASE("'--' starts a comment only before a blank, as in MariaDB") {
    StatementSplitter s;
    const auto done = s.feed("SELECT 1--1;");
    REQUIRE(done.size() == 1);
    CHECK(done[0] == "SELECT 1--1");
  }

  TEST_CASE("comments before a statement are dropped; executable comments are SQL") {
    StatementSplitter s;
    CHECK(s.feed("-- about t").empty());
    auto done = s.feed("/* x */ SELECT 1 /* y */;");
    REQUIRE(done.size() == 1);
    CHECK(done[0] == "SELECT 1 /* y */");
    done = s.feed("/*!40101 SET NAMES utf8 */;");
    REQUIRE(done.size() == 1);
    CHECK(done[0] == "/*!40101 SET NAMES utf8 */");
  }

  TEST_CASE("comments alone are not a statement") {
    StatementSplitter s;
    CHECK(s.feed("-- just a comment").empty());
    CHECK(s.feed("/* block */").empty());
    CHECK(s.empty());
    CHECK(s.take_rest().empty());
  }
}

TEST_SUITE("cli messages") {
  TEST_CASE("English without a catalog for the locale") {
    CHECK(std::string(msg(Msg::prompt_node_ip)) == "Node IP: ");
    CHECK(std::string(msg(Msg::prompt_node_port)) == "Node port: ");
    CHECK(tr(Msg::redirecting, {"3"}) == "[!] Redirecting to coordinator (Node 3)");
  }

  TEST_CASE("placeholders") {
    CHECK(tools::fill_placeholders("{1} then {0}{2}", {"a", "b"}) == "b then a");
    CHECK(tools::fill_placeholders("{x} {", {}) == "{x} {");
  }

  // The catalog the build compiled (po/pt.po), through gettext as distdb-cli
  // uses it: every message is translated, and keeps its placeholders (a
  // translation that lost {1} would print a blank where a value belongs).
  TEST_CASE("Portuguese catalog: every message translated, placeholders kept") {
    const char* dir = std::getenv("DISTDB_LOCALEDIR");
    if (dir == nullptr) {
      MESSAGE("DISTDB_LOCALEDIR not set (built without translations): skipped");
      return;
    }
    PortugueseForThisTest portuguese;
    // The seed's prompts and notices, exactly as its users know them.
    CHECK(std::string(msg(Msg::prompt_node_ip)) == "IP do nó middleware: ");
    CHECK(std::string(msg(Msg::prompt_node_port)) == "Porta do nó: ");
    CHECK(tr(Msg::redirecting, {"3"}) == "[!] Redirecionando para coordenador (Nó 3)");
    CHECK(tr(Msg::node_executor, {"2"}) == "Nó executor: 2");
    for (int i = 0; i < static_cast<int>(Msg::count_); ++i) {
      const auto id = static_cast<Msg>(i);
      const std::string english = english_msg(id);
      const std::string translated = msg(id);
      CAPTURE(english);
      CHECK(translated != english);
      CHECK(placeholders_of(translated) == placeholders_of(english));
    }
  }
}

TEST_SUITE("cli status") {
  // A STATUS result as distdb-node sends it.
  ResultSet status_result() {
    ResultSet rs;
    rs.columns = {"id", "ip", "port", "role", "alive", "in_view", "applied_seq", "epoch"};
    rs.rows.push_back({std::int64_t{1}, std::string("10.0.0.1"), std::int64_t{5000}, std::string("member"),
                       std::int64_t{1}, std::int64_t{1}, std::int64_t{40}, std::int64_t{7}});
    rs.rows.push_back({std::int64_t{2}, std::string("10.0.0.2"), std::int64_t{5001}, std::string("coordinator"),
                       std::int64_t{1}, std::int64_t{1}, std::int64_t{42}, std::int64_t{7}});
    rs.rows.push_back({std::int64_t{3}, std::string("::1"), std::int64_t{5002}, std::string("member"),
                       std::int64_t{0}, std::int64_t{0}, std::monostate{}, std::int64_t{7}});
    return rs;
  }

  TEST_CASE("members, coordinator and epoch read from a STATUS result") {
    const auto members = parse_status(status_result());
    REQUIRE(members.size() == 3);
    CHECK(members[0].address() == "10.0.0.1:5000");
    CHECK(members[2].address() == "[::1]:5002");
    CHECK_FALSE(members[2].applied_seq.has_value());
    const MemberStatus* c = find_coordinator(members);
    REQUIRE(c != nullptr);
    CHECK(c->id == 2);
    CHECK(cluster_epoch(members) == std::optional<std::int64_t>(7));
    CHECK(find_coordinator({}) == nullptr);
    CHECK_FALSE(cluster_epoch({}).has_value());
  }

  TEST_CASE(":status table: lag behind the coordinator, NULL when unknown") {
    CHECK(table_of(status_table(parse_status(status_result()))) ==
          "+----+---------------+-------------+-------+---------+-------------+------+\n"
          "| id | address       | role        | alive | in_view | applied_seq | lag  |\n"
          "+----+---------------+-------------+-------+---------+-------------+------+\n"
          "|  1 | 10.0.0.1:5000 | member      | yes   | yes     |          40 |    2 |\n"
          "|  2 | 10.0.0.2:5001 | coordinator | yes   | yes     |          42 |    0 |\n"
          "|  3 | [::1]:5002    | member      | no    | no      |        NULL | NULL |\n"
          "+----+---------------+-------------+-------+---------+-------------+------+\n");
    // No coordinator (an election under way): no lag at all.
    ResultSet leaderless = status_result();
    leaderless.rows[1][3] = std::string("member");
    for (const Row& row : status_table(parse_status(leaderless)).rows) CHECK(is_null(row[6]));
  }
}

TEST_SUITE("cli timer") {
  TEST_CASE(":timer off: summaries without the time, in every table summary") {
    std::ostringstream out;
    std::ostringstream err;
    PrinterOptions options;
    options.show_timing = false;
    ReplyPrinter printer(out, err, options);
    Outcome rows;
    rows.reply = ok_reply(people());
    rows.elapsed_sec = 0.25;
    printer.print(rows);
    ResultSet none;
    none.columns = {"x"};
    Outcome empty;
    empty.reply = ok_reply(none);
    printer.print(empty);
    Outcome write;
    write.reply = ok_reply(ResultSet{});
    write.reply->result.rows_affected = 1;
    printer.print(write);
    write.reply->result.rows_affected = 4;
    printer.print(write);
    const std::string text = out.str();
    CHECK(text.find("sec)") == std::string::npos);
    CHECK(text.find("+\n3 rows in set\nNode executor: 3\n") != std::string::npos);
    CHECK(text.find("Empty set\nNode executor: 3\nQuery OK, 1 row affected\nNode executor: 3\n"
                    "Query OK, 4 rows affected\nNode executor: 3\n") != std::string::npos);
    printer.set_show_timing(true);
    printer.print(empty);
    CHECK(out.str().substr(text.size()) == "Empty set (0.000 sec)\nNode executor: 3\n");
  }
}
