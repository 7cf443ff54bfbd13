// sql::single_statement(): the proof that lets the MariaDB storage join
// statements into one multi-statement request. A wrong "yes" would let one
// client's text swallow or split another's, so the refusals matter most.
#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <string_view>

#include "sql/statement_boundary.hpp"

using distdb::sql::single_statement;

namespace {

std::optional<std::string> joined_text(std::string_view sql) {
  auto v = single_statement(sql);
  if (!v) return std::nullopt;
  return std::string(*v);
}

}  // namespace

TEST_CASE("a plain statement is one statement, without its final ';' and trailing blanks") {
  CHECK(joined_text("INSERT INTO t VALUES (1)") == "INSERT INTO t VALUES (1)");
  CHECK(joined_text("  UPDATE t SET a = 1  ") == "  UPDATE t SET a = 1");
  CHECK(joined_text("DELETE FROM t;") == "DELETE FROM t");
  CHECK(joined_text("DELETE FROM t ;  \n") == "DELETE FROM t");
  CHECK(joined_text("DELETE FROM t; -- done\n") == "DELETE FROM t");
  CHECK(joined_text("DELETE FROM t /* why */ WHERE a = 1 # trailing") ==
        "DELETE FROM t /* why */ WHERE a = 1");
}

TEST_CASE("separators inside strings, identifiers and comments do not split") {
  CHECK(joined_text("INSERT INTO t VALUES ('a;b')") == "INSERT INTO t VALUES ('a;b')");
  CHECK(joined_text("INSERT INTO t VALUES (\"a;b\")") == "INSERT INTO t VALUES (\"a;b\")");
  CHECK(joined_text("INSERT INTO `we;ird` VALUES (1)") == "INSERT INTO `we;ird` VALUES (1)");
  CHECK(joined_text("INSERT INTO t VALUES ('it''s')") == "INSERT INTO t VALUES ('it''s')");
  CHECK(joined_text("INSERT INTO t /* a;b */ VALUES (1)") == "INSERT INTO t /* a;b */ VALUES (1)");
  CHECK(joined_text("INSERT INTO t -- a;b\nVALUES (1)") == "INSERT INTO t -- a;b\nVALUES (1)");
  CHECK(joined_text("INSERT INTO t # a;b\nVALUES (1)") == "INSERT INTO t # a;b\nVALUES (1)");
}

TEST_CASE("several statements, empty text and unterminated tokens are refused") {
  CHECK_FALSE(single_statement("INSERT INTO t VALUES (1); DROP TABLE t"));
  CHECK_FALSE(single_statement("INSERT INTO t VALUES (1);DELETE FROM t;"));
  CHECK_FALSE(single_statement(""));
  CHECK_FALSE(single_statement("   \n"));
  CHECK_FALSE(single_statement("-- only a comment"));
  CHECK_FALSE(single_statement(";"));
  CHECK_FALSE(single_statement("; INSERT INTO t VALUES (1)"));
  CHECK_FALSE(single_statement("INSERT INTO t VALUES ('open"));
  CHECK_FALSE(single_statement("INSERT INTO t VALUES (\"open"));
  CHECK_FALSE(single_statement("INSERT INTO `open VALUES (1)"));
  CHECK_FALSE(single_statement("INSERT INTO t VALUES (1) /* open"));
  CHECK_FALSE(single_statement(std::string_view("INSERT INTO t VALUES (1)\0", 25)));
}

TEST_CASE("two dashes start a comment only before a blank or a control character") {
  // "1--1" is arithmetic to MariaDB: the ';' after it is a separator.
  CHECK_FALSE(single_statement("UPDATE t SET a = 1--1; DROP TABLE t"));
  CHECK(joined_text("UPDATE t SET a = 1--1") == "UPDATE t SET a = 1--1");
  CHECK(joined_text("UPDATE t SET a = 1 --\tDROP TABLE t; x") == "UPDATE t SET a = 1");
  CHECK(joined_text("UPDATE t SET a = 1 --") == "UPDATE t SET a = 1");
}

TEST_CASE("text whose extent depends on the sql_mode is refused") {
  // With backslash escapes the string is 'a\'' + "; DROP..." inside it; with
  // NO_BACKSLASH_ESCAPES it ends after the backslash and DROP TABLE is a
  // second statement. Either way the server's reading is not certain.
  CHECK_FALSE(single_statement("INSERT INTO t VALUES ('a\\'); DROP TABLE t; -- ')"));
  CHECK_FALSE(single_statement("INSERT INTO t VALUES (\"a\\\"); DROP TABLE t; -- \")"));
  CHECK_FALSE(single_statement("INSERT INTO t VALUES ('a\\')"));
  // A backslash whose reading does not change where the string ends is fine.
  CHECK(joined_text("INSERT INTO t VALUES ('a\\\\b')") == "INSERT INTO t VALUES ('a\\\\b')");
  CHECK(joined_text("INSERT INTO t VALUES ('C:\\dir')") == "INSERT INTO t VALUES ('C:\\dir')");
  // In `identifiers` a backslash never escapes.
  CHECK(joined_text("INSERT INTO `a\\` VALUES (1)") == "INSERT INTO `a\\` VALUES (1)");
}

TEST_CASE("executable comments are never joined") {
  CHECK_FALSE(single_statement("INSERT /*! IGNORE */ INTO t VALUES (1)"));
  CHECK_FALSE(single_statement("INSERT /*!50100 IGNORE */ INTO t VALUES (1)"));
  CHECK_FALSE(single_statement("INSERT /*M!100100 IGNORE */ INTO t VALUES (1)"));
}

TEST_CASE("an accepted statement joined with another is two statements, and each splits back") {
  const char* samples[] = {
      "INSERT INTO t VALUES ('x;y') -- tail",
      "UPDATE t SET a = 'q''' # c",
      "DELETE FROM `t``;` WHERE b = \"z\" /* ; */",
      "REPLACE INTO t VALUES (1);",
  };
  for (const char* sample : samples) {
    CAPTURE(sample);
    auto v = single_statement(sample);
    REQUIRE(v);
    CHECK(single_statement(*v) == v);  // stable
    const std::string twice = std::string(*v) + "\n;\n" + std::string(*v);
    CHECK_FALSE(single_statement(twice));
  }
}

// Found by tests/fuzz: both would have let joined text run differently.
TEST_CASE("dashes at the very end, or before DEL, are refused or read as a comment") {
  // "1--;": the dashes are code before the ';', but a comment once the ';'
  // is cut off and a newline follows: the server would run "... = 1".
  CHECK_FALSE(single_statement("UPDATE t SET a = 1--;"));
  // At the very end of the text the dashes are a comment already.
  CHECK(joined_text("UPDATE t SET a = 1--") == "UPDATE t SET a = 1");
  // DEL is a control character: "--" before it starts a comment, so the
  // quote after it opens nothing and "; DROP TABLE t" is a second statement.
  CHECK_FALSE(single_statement("SELECT 1 --\x7f '\n; DROP TABLE t; '"));
}
