#include "sql/statement.hpp"

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <span>
#include <vector>

namespace distdb::sql {
namespace {

// ---------------------------------------------------------------------------
// Lexer

struct LexRules {
  bool backslash_escapes;         // '\' escapes the next character in '...' and "..."
  bool dash_comment_needs_blank;  // "--" is a comment only before a blank or control char
  bool hash_always_comment;       // '#' always starts a comment (else "#name" is a parameter)
  bool executable_comments;       // /*! ... */ and /*M! ... */ are code
  bool bracket_identifiers;       // [name] is a quoted identifier
};

constexpr LexRules kMariaDbRules{true, true, true, true, false};
constexpr LexRules kSqliteRules{false, false, false, false, true};

enum class Tok : unsigned char {
  word,          // unquoted identifier or keyword
  number,        // starts with a digit
  string,        // '...' or "..." (quotes included in the text)
  quoted_ident,  // `...` or [...]
  user_var,      // @name, and parameters :name #name ?
  system_var,    // @@name, @@session.name
  punct,         // one character, or ":="
};

struct Token {
  Tok kind;
  std::string_view text;
};

bool is_blank(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
// Bytes of multi-byte UTF-8 characters may appear in identifiers.
bool is_ident_char(unsigned char c) { return is_alpha(c) || is_digit(c) || c == '_' || c == '$' || c >= 0x80; }

char to_upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = to_upper(c);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_upper(a[i]) != to_upper(b[i])) return false;
  }
  return true;
}

class Lexer {
 public:
  Lexer(std::string_view sql, const LexRules& rules) : s_(sql), rules_(rules) {}

  std::vector<Token> run() {
    std::vector<Token> out;
    const std::size_t n = s_.size();
    bool in_executable_comment = false;
    std::size_t i = 0;
    while (i < n) {
      const auto c = static_cast<unsigned char>(s_[i]);
      const unsigned char next = i + 1 < n ? static_cast<unsigned char>(s_[i + 1]) : '\0';
      if (is_blank(c)) {
        ++i;
      } else if (c == '-' && next == '-' &&
                 (!rules_.dash_comment_needs_blank || i + 2 >= n ||
                  is_blank(static_cast<unsigned char>(s_[i + 2])) ||
                  is_control(static_cast<unsigned char>(s_[i + 2])))) {
        i = line_end(i);
      } else if (c == '#') {
        if (!rules_.hash_always_comment && i + 1 < n && is_ident_char(next)) {
          i = push_run(out, Tok::user_var, i, i + 1);
        } else {
          i = line_end(i);
        }
      } else if (c == '/' && next == '*') {
        const std::size_t code = rules_.executable_comments ? executable_comment_body(i) : 0;
        if (code != 0) {
          in_executable_comment = true;
          i = code;
        } else {
          const std::size_t close = s_.find("*/", i + 2);
          i = close == std::string_view::npos ? n : close + 2;  // unterminated: to the end
        }
      } else if (c == '*' && next == '/' && in_executable_comment) {
        in_executable_comment = false;
        i += 2;
      } else if (c == '\'' || c == '"') {
        i = push_quoted(out, Tok::string, i, static_cast<char>(c), rules_.backslash_escapes);
      } else if (c == '`') {
        i = push_quoted(out, Tok::quoted_ident, i, '`', false);
      } else if (c == '[' && rules_.bracket_identifiers) {
        const std::size_t close = s_.find(']', i + 1);
        const std::size_t end = close == std::string_view::npos ? n : close + 1;
        out.push_back({Tok::quoted_ident, s_.substr(i, end - i)});
        i = end;
      } else if (c == '@') {
        if (next == '@') {
          std::size_t j = i + 2;
          while (j < n && (is_ident_char(static_cast<unsigned char>(s_[j])) || s_[j] == '.')) ++j;
          out.push_back({Tok::system_var, s_.substr(i, j - i)});
          i = j;
        } else {
          i = push_run(out, Tok::user_var, i, i + 1);
        }
      } else if (c == ':' && next == '=') {
        out.push_back({Tok::punct, s_.substr(i, 2)});
        i += 2;
      } else if (c == ':' && is_ident_char(next)) {
        i = push_run(out, Tok::user_var, i, i + 1);
      } else if (c == '?') {
        out.push_back({Tok::user_var, s_.substr(i, 1)});
        ++i;
      } else if (is_digit(c)) {
        i = push_run(out, Tok::number, i, i);
      } else if (is_ident_char(c)) {
        i = push_run(out, Tok::word, i, i);
      } else {
        out.push_back({Tok::punct, s_.substr(i, 1)});
        ++i;
      }
    }
    return out;
  }

 private:
  std::size_t line_end(std::size_t from) const {
    const std::size_t nl = s_.find('\n', from);
    return nl == std::string_view::npos ? s_.size() : nl + 1;
  }

  // Pushes s_[start, end) extended over identifier characters from `from`.
  std::size_t push_run(std::vector<Token>& out, Tok kind, std::size_t start, std::size_t from) const {
    std::size_t j = from;
    while (j < s_.size() && is_ident_char(static_cast<unsigned char>(s_[j]))) ++j;
    out.push_back({kind, s_.substr(start, j - start)});
    return j;
  }

  // A quoted token; a doubled quote stands for itself. Unterminated: to the end.
  std::size_t push_quoted(std::vector<Token>& out, Tok kind, std::size_t start, char quote, bool backslash) const {
    const std::size_t n = s_.size();
    std::size_t j = start + 1;
    std::size_t end = n;
    while (j < n) {
      if (backslash && s_[j] == '\\') {
        j += 2;
      } else if (s_[j] == quote) {
        if (j + 1 < n && s_[j + 1] == quote) {
          j += 2;
        } else {
          end = j + 1;
          break;
        }
      } else {
        ++j;
      }
    }
    out.push_back({kind, s_.substr(start, end - start)});
    return end;
  }

  // For "/*!" or "/*M!" at `at`: where its code starts (after the optional
  // version number); 0 if this is an ordinary comment.
  std::size_t executable_comment_body(std::size_t at) const {
    std::size_t j = at + 2;
    if (j < s_.size() && s_[j] == '!') {
      ++j;
    } else if (j + 1 < s_.size() && s_[j] == 'M' && s_[j + 1] == '!') {
      j += 2;
    } else {
      return 0;
    }
    for (int k = 0; k < 6 && j < s_.size() && is_digit(static_cast<unsigned char>(s_[j])); ++k) ++j;
    return j;
  }

  std::string_view s_;
  const LexRules& rules_;
};

// ---------------------------------------------------------------------------
// Token helpers

using Tokens = std::span<const Token>;

bool is_word(const Token& t, std::string_view keyword) { return t.kind == Tok::word && iequals(t.text, keyword); }

bool is_word_in(const Token& t, std::span<const std::string_view> keywords) {
  if (t.kind != Tok::word) return false;
  return std::any_of(keywords.begin(), keywords.end(), [&](std::string_view k) { return iequals(t.text, k); });
}
bool is_word_in(const Token& t, std::initializer_list<std::string_view> keywords) {
  return is_word_in(t, std::span<const std::string_view>(keywords.begin(), keywords.size()));
}

bool is_punct(const Token& t, std::string_view p) { return t.kind == Tok::punct && t.text == p; }

bool word_at(Tokens st, std::size_t i, std::string_view keyword) { return i < st.size() && is_word(st[i], keyword); }
bool punct_at(Tokens st, std::size_t i, std::string_view p) { return i < st.size() && is_punct(st[i], p); }

// Index of the first token that is not an opening parenthesis.
std::size_t skip_open_parens(Tokens st) {
  std::size_t i = 0;
  while (i < st.size() && is_punct(st[i], "(")) ++i;
  return i;
}

// Skips "FORMAT = name" (EXPLAIN/ANALYZE options) at i.
std::size_t skip_format_option(Tokens st, std::size_t i) {
  if (word_at(st, i, "FORMAT") && punct_at(st, i + 1, "=")) return std::min(i + 3, st.size());
  return i;
}

// ---------------------------------------------------------------------------
// Kinds

constexpr int kMaxNesting = 8;  // EXPLAIN ANALYZE ANALYZE ... cannot recurse without bound

StatementKind kind_of(Tokens st, int nesting);

// SELECT, VALUES, WITH and parenthesised queries: a read unless something in
// them locks, assigns, stores or modifies.
StatementKind query_kind(Tokens st) {
  for (std::size_t i = 0; i < st.size(); ++i) {
    const Token& t = st[i];
    if (is_punct(t, ":=")) return StatementKind::write;  // SELECT @v := ...
    if (t.kind != Tok::word) continue;
    if (is_word(t, "INTO")) return StatementKind::write;  // INTO @v / OUTFILE / DUMPFILE
    if (is_word(t, "FOR") && i + 1 < st.size() && is_word_in(st[i + 1], {"UPDATE", "SHARE"})) {
      return StatementKind::write;
    }
    if (is_word(t, "LOCK") && word_at(st, i + 1, "IN")) return StatementKind::write;  // LOCK IN SHARE MODE
    // Sequences: NEXTVAL(s), SETVAL(s, n), NEXT VALUE FOR s change the sequence.
    if (is_word_in(t, {"NEXTVAL", "SETVAL"}) && punct_at(st, i + 1, "(")) return StatementKind::write;
    if (is_word(t, "NEXT") && word_at(st, i + 1, "VALUE") && word_at(st, i + 2, "FOR")) return StatementKind::write;
    // WITH ... INSERT/UPDATE/DELETE/REPLACE. Followed by '(' these are the
    // string functions INSERT() and REPLACE().
    if (is_word_in(t, {"INSERT", "UPDATE", "DELETE", "REPLACE"}) && !punct_at(st, i + 1, "(")) {
      return StatementKind::write;
    }
  }
  return StatementKind::read;
}

// EXPLAIN/DESCRIBE/DESC: shows a plan without executing, except EXPLAIN ANALYZE.
StatementKind explain_kind(Tokens st, int nesting) {
  std::size_t i = 1;
  for (;;) {
    const std::size_t after = skip_format_option(st, i);
    if (after != i) {
      i = after;
    } else if (word_at(st, i, "EXTENDED") || word_at(st, i, "PARTITIONS")) {
      ++i;
    } else {
      break;
    }
  }
  if (word_at(st, i, "ANALYZE")) {
    return kind_of(st.subspan(skip_format_option(st, i + 1)), nesting + 1);
  }
  return StatementKind::read;
}

// MariaDB's ANALYZE <statement> executes it; ANALYZE [TABLE] t (both
// servers) rewrites the table statistics.
StatementKind analyze_kind(Tokens st, int nesting) {
  const std::size_t i = skip_format_option(st, 1);
  if (i < st.size() && (is_punct(st[i], "(") ||
                        is_word_in(st[i], {"SELECT", "WITH", "VALUES", "INSERT", "UPDATE", "DELETE", "REPLACE"}))) {
    return kind_of(st.subspan(i), nesting + 1);
  }
  return StatementKind::write;
}

// SQLite: PRAGMA [schema.]name [= value | (value)].
StatementKind pragma_kind(Tokens st) {
  std::size_t i = 1;
  if (punct_at(st, i + 1, ".")) i += 2;
  if (i >= st.size() || st[i].kind != Tok::word) return StatementKind::write;
  const Token& name = st[i];
  // These change the database file itself, not the connection: the header's
  // user_version/application_id are data; optimize runs ANALYZE.
  if (is_word_in(name, {"USER_VERSION", "APPLICATION_ID"})) {
    return i + 1 < st.size() ? StatementKind::write : StatementKind::read;
  }
  if (is_word(name, "OPTIMIZE")) return StatementKind::write;
  if (punct_at(st, i + 1, "=")) return StatementKind::session;
  if (punct_at(st, i + 1, "(")) {
    // With an argument list most pragmas set; these only query.
    if (is_word_in(name, {"TABLE_INFO", "TABLE_XINFO", "TABLE_LIST", "INDEX_INFO", "INDEX_XINFO", "INDEX_LIST",
                          "FOREIGN_KEY_LIST", "FOREIGN_KEY_CHECK", "INTEGRITY_CHECK", "QUICK_CHECK"})) {
      return StatementKind::read;
    }
    return StatementKind::session;
  }
  return i + 1 < st.size() ? StatementKind::write : StatementKind::read;
}

StatementKind set_kind(Tokens st, int nesting) {
  std::size_t i = 1;
  if (i < st.size() && is_word_in(st[i], {"GLOBAL", "SESSION", "LOCAL"})) ++i;
  if (word_at(st, i, "TRANSACTION")) return StatementKind::transaction_control;
  if (word_at(st, 1, "STATEMENT")) {
    // SET STATEMENT var = value [, ...] FOR <statement>
    int depth = 0;
    for (std::size_t j = 2; j < st.size(); ++j) {
      if (is_punct(st[j], "(")) ++depth;
      if (is_punct(st[j], ")")) depth = std::max(0, depth - 1);
      if (depth == 0 && is_word(st[j], "FOR")) return kind_of(st.subspan(j + 1), nesting + 1);
    }
    return StatementKind::write;
  }
  // Stored in the grant tables: replicated like any other write.
  if (word_at(st, 1, "PASSWORD") || (word_at(st, 1, "DEFAULT") && word_at(st, 2, "ROLE"))) {
    return StatementKind::write;
  }
  return StatementKind::session;
}

StatementKind kind_of(Tokens st, int nesting) {
  if (nesting > kMaxNesting) return StatementKind::write;
  const std::size_t first = skip_open_parens(st);
  if (first >= st.size() || st[first].kind != Tok::word) return StatementKind::write;
  const Token& k = st[first];
  if (is_word_in(k, {"SELECT", "VALUES", "WITH"})) return query_kind(st);
  if (first > 0) return StatementKind::write;  // "(" before anything but a query

  if (is_word(k, "SHOW")) return StatementKind::read;
  if (is_word_in(k, {"EXPLAIN", "DESCRIBE", "DESC"})) return explain_kind(st, nesting);
  if (is_word(k, "ANALYZE")) return analyze_kind(st, nesting);
  if (is_word(k, "PRAGMA")) return pragma_kind(st);

  if (is_word(k, "BEGIN")) {
    // BEGIN NOT ATOMIC ... END is a MariaDB compound statement, not a transaction.
    return word_at(st, 1, "NOT") ? StatementKind::write : StatementKind::transaction_control;
  }
  if (is_word(k, "START")) {
    return word_at(st, 1, "TRANSACTION") ? StatementKind::transaction_control : StatementKind::write;
  }
  if (is_word_in(k, {"COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "XA", "END"})) {
    return StatementKind::transaction_control;  // END [TRANSACTION] is SQLite's COMMIT
  }
  if (is_word_in(k, {"LOCK", "UNLOCK"})) {
    return st.size() > 1 && is_word_in(st[1], {"TABLE", "TABLES"}) ? StatementKind::transaction_control
                                                                     : StatementKind::write;
  }
  if (is_word(k, "SET")) return set_kind(st, nesting);
  if (is_word(k, "USE")) return StatementKind::session;
  return StatementKind::write;
}

// ---------------------------------------------------------------------------
// Non-determinism

// Values that differ from node to node (clock, randomness, connection, server
// identity, per-connection history such as the last SELECT, which ran on one
// node only). LAST_INSERT_ID() is not among them: writes run in the same
// order everywhere, so it has the same value on every node.

// Keywords that need no parentheses (MariaDB).
constexpr std::string_view kNiladic[] = {
    "CURRENT_DATE", "CURRENT_TIME", "CURRENT_TIMESTAMP", "LOCALTIME", "LOCALTIMESTAMP", "CURRENT_USER",
    "CURRENT_ROLE", "UTC_DATE",     "UTC_TIME",          "UTC_TIMESTAMP",
};

// Functions: only when followed by '(' (so a column named `user` is fine).
constexpr std::string_view kFunctions[] = {
    "NOW", "SYSDATE", "CURDATE", "CURTIME", "RAND", "RANDOM", "RANDOMBLOB", "RANDOM_BYTES", "UUID", "UUID_SHORT",
    "UUID_V4", "UUID_V7", "SYS_GUID", "CONNECTION_ID", "USER", "SESSION_USER", "SYSTEM_USER", "VERSION",
    "FOUND_ROWS", "ROW_COUNT", "LOAD_FILE", "GET_LOCK", "RELEASE_LOCK", "RELEASE_ALL_LOCKS", "IS_FREE_LOCK",
    "IS_USED_LOCK", "BENCHMARK", "MASTER_POS_WAIT", "MASTER_GTID_WAIT",
    // SQLite
    "CHANGES", "TOTAL_CHANGES", "SQLITE_VERSION", "SQLITE_SOURCE_ID",
};

// SQLite date and time functions: non-deterministic with a 'now' argument,
// or with no time value at all (date(), strftime('%s')).
constexpr std::string_view kDateFunctions[] = {
    "DATE", "TIME", "DATETIME", "JULIANDAY", "UNIXEPOCH", "STRFTIME", "TIMEDIFF",
};

constexpr std::string_view kStrftime[] = {"STRFTIME"};

// Words after which "name(" names a table, routine or view, not a call:
// INSERT INTO user(a) ..., CREATE TABLE version (...), CALL uuid().
bool introduces_name(Tokens st, std::size_t i, bool is_create) {
  if (i == 0) return false;
  const Token& prev = st[i - 1];
  if (is_punct(prev, ".")) return true;  // t.now, db.version(): qualified, not the built-in
  if (is_word_in(prev, {"INTO", "TABLE", "EXISTS", "REFERENCES", "VIEW", "PROCEDURE", "FUNCTION", "CALL"})) {
    return true;
  }
  if (is_create && is_word(prev, "ON")) return true;  // CREATE INDEX i ON user (a)
  // INSERT user (a) VALUES ...: MariaDB's INTO is optional.
  return i == 1 && is_word_in(prev, {"INSERT", "REPLACE"});
}

bool is_now_string(const Token& t) {
  return t.kind == Tok::string && t.text.size() == 5 && t.text.front() == t.text.back() &&
         iequals(t.text.substr(1, 3), "now");
}

// Index just past the term starting at i: "(...)", "name(...)" or one token.
std::size_t term_end(Tokens st, std::size_t i) {
  if (i >= st.size()) return i;
  std::size_t open = i;
  if (!is_punct(st[i], "(")) {
    if (!(st[i].kind == Tok::word && punct_at(st, i + 1, "("))) return i + 1;
    open = i + 1;
  }
  int depth = 0;
  for (std::size_t j = open; j < st.size(); ++j) {
    if (is_punct(st[j], "(")) ++depth;
    if (is_punct(st[j], ")") && --depth == 0) return j + 1;
  }
  return st.size();
}

// DDL column defaults. `c TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE
// CURRENT_TIMESTAMP` and SQLite's `DEFAULT (datetime('now'))` are not
// flagged in CREATE TABLE or ALTER TABLE ... MODIFY/CHANGE/ALTER ... SET
// DEFAULT: the statement itself stores the same definition on every node,
// and refusing it would forbid the most common timestamp column there is.
// Known limitation: the default is evaluated later, at insert time, on each
// node, so an INSERT into such a table that omits the column stores a
// different time on each node; nothing in that INSERT shows it.
// ALTER TABLE ... ADD with such a default IS flagged: it fills the existing
// rows with the node's own clock right away.
std::optional<std::string> find_nondeterministic(Tokens st) {
  const std::size_t first = skip_open_parens(st);
  const bool is_create = word_at(st, first, "CREATE");
  const bool is_alter = word_at(st, first, "ALTER");

  struct Open {
    std::size_t at;      // index of the '('
    std::size_t commas;  // top-level commas seen inside it so far
    bool exempt;         // inside a DDL default
  };
  std::vector<Open> open;
  bool add_clause = false;  // ALTER: an ADD since the last top-level comma
  std::size_t exempt_until = 0;

  // Whether the '(' at `p` opens a call to one of `names`.
  auto call_of = [&](std::size_t p, std::span<const std::string_view> names) {
    return p > 0 && is_word_in(st[p - 1], names) && !introduces_name(st, p - 1, is_create);
  };

  for (std::size_t i = 0; i < st.size(); ++i) {
    const Token& t = st[i];
    const bool exempt = i < exempt_until;
    if (is_punct(t, "(")) {
      open.push_back({i, 0, exempt});
      continue;
    }
    if (is_punct(t, ",")) {
      if (open.empty()) add_clause = false;
      else ++open.back().commas;
      continue;
    }
    if (is_punct(t, ")")) {
      if (open.empty()) continue;
      const Open o = open.back();
      open.pop_back();
      // strftime('%s') and the like: a format and no time value means now.
      if (!o.exempt && o.commas == 0 && call_of(o.at, kStrftime)) {
        return "STRFTIME(" + std::string(i == o.at + 2 ? st[o.at + 1].text : "...") + ")";
      }
      continue;
    }
    if (exempt) continue;

    if (t.kind == Tok::system_var) return std::string(t.text);
    if (is_now_string(t) && !open.empty() && call_of(open.back().at, kDateFunctions)) {
      const std::size_t p = open.back().at;
      const std::string name = upper(st[p - 1].text);
      return name + (p + 1 == i ? "(" : "(..., ") + std::string(t.text) + ")";
    }
    if (t.kind != Tok::word) continue;

    if (is_alter && open.empty() && is_word(t, "ADD")) add_clause = true;
    if ((is_create || (is_alter && !add_clause)) &&
        (is_word(t, "DEFAULT") || (is_word(t, "ON") && word_at(st, i + 1, "UPDATE")))) {
      const std::size_t term = is_word(t, "ON") ? i + 2 : i + 1;
      exempt_until = term_end(st, term);
      continue;
    }

    if (introduces_name(st, i, is_create)) continue;
    const bool call = punct_at(st, i + 1, "(");
    if (is_word_in(t, kNiladic)) return upper(t.text) + (call ? "()" : "");
    if (!call) continue;
    if (is_word_in(t, kFunctions)) return upper(t.text) + "()";
    // UNIX_TIMESTAMP() is the clock; UNIX_TIMESTAMP(expr) is a conversion.
    if (is_word(t, "UNIX_TIMESTAMP") && punct_at(st, i + 2, ")")) return "UNIX_TIMESTAMP()";
    // SQLite: date(), datetime(), julianday()... with no argument mean now.
    if (is_word_in(t, kDateFunctions) && punct_at(st, i + 2, ")")) return upper(t.text) + "()";
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// One reading of the text

struct Reading {
  Classification c;
  bool empty_first = true;  // the first statement has no token
};

Reading read_as(std::string_view sql, const LexRules& rules) {
  const std::vector<Token> tokens = Lexer(sql, rules).run();
  const Tokens all(tokens);

  Reading r;
  const auto semi = std::find_if(all.begin(), all.end(), [](const Token& t) { return is_punct(t, ";"); });
  const Tokens first = all.first(static_cast<std::size_t>(semi - all.begin()));
  r.empty_first = first.empty();
  r.c.multiple_statements =
      std::any_of(semi, all.end(), [](const Token& t) { return !is_punct(t, ";"); });

  const std::size_t k = skip_open_parens(first);
  if (k < first.size() && first[k].kind == Tok::word) r.c.first_keyword = upper(first[k].text);
  r.c.kind = kind_of(first, 0);

  // Every statement, not only the first.
  std::size_t begin = 0;
  for (std::size_t i = 0; i <= all.size() && !r.c.nondeterministic; ++i) {
    if (i == all.size() || is_punct(all[i], ";")) {
      r.c.nondeterministic = find_nondeterministic(all.subspan(begin, i - begin));
      begin = i + 1;
    }
  }
  return r;
}

}  // namespace

Classification classify(std::string_view sql, Dialect dialect) {
  switch (dialect) {
    case Dialect::mariadb:
      return read_as(sql, kMariaDbRules).c;
    case Dialect::sqlite:
      return read_as(sql, kSqliteRules).c;
    case Dialect::any:
      break;
  }
  Reading m = read_as(sql, kMariaDbRules);
  Reading s = read_as(sql, kSqliteRules);
  Classification c;
  c.multiple_statements = m.c.multiple_statements || s.c.multiple_statements;
  c.nondeterministic = m.c.nondeterministic ? std::move(m.c.nondeterministic) : std::move(s.c.nondeterministic);
  if (m.empty_first != s.empty_first) {
    // One reading sees only a comment (e.g. SQLite and "/*!40101 SET NAMES
    // utf8 */"): that server would reject the empty statement, so the other
    // reading decides.
    const Reading& r = m.empty_first ? s : m;
    c.kind = r.c.kind;
    c.first_keyword = r.c.first_keyword;
  } else {
    c.kind = m.c.kind == s.c.kind ? m.c.kind : StatementKind::write;
    c.first_keyword = std::move(m.c.first_keyword);
  }
  return c;
}

Classification classify(std::string_view sql) { return classify(sql, Dialect::any); }

std::optional<std::string> replication_refusal(const Classification& c) {
  const std::string what = c.first_keyword.empty() ? "This statement" : "'" + c.first_keyword + "'";
  if (c.multiple_statements) {
    return "The request holds more than one statement (a ';' is followed by more SQL); send one statement per "
           "request so that every node runs exactly the same statement.";
  }
  switch (c.kind) {
    case StatementKind::read:
      return std::nullopt;
    case StatementKind::transaction_control:
      return what + " is a transaction-control statement, which cannot be replicated: each request runs in its own "
                    "replicated transaction.";
    case StatementKind::session:
      return what + " changes the state of one connection on one node, which cannot be replicated to the other "
                    "nodes.";
    case StatementKind::write:
      break;
  }
  if (c.nondeterministic) {
    return *c.nondeterministic + " is non-deterministic: every node would compute its own value, so the write "
                                 "cannot be replicated as is (compute the value in the client and send it as a "
                                 "literal).";
  }
  return std::nullopt;
}

std::string_view to_string(StatementKind kind) {
  switch (kind) {
    case StatementKind::read:
      return "read";
    case StatementKind::write:
      return "write";
    case StatementKind::transaction_control:
      return "transaction_control";
    case StatementKind::session:
      return "session";
  }
  return "write";
}

}  // namespace distdb::sql
