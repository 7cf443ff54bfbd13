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

// A name taken from the client's text, fit for a one-line message: control
// characters shown as '?', and at most 64 bytes.
std::string printable(std::string_view text) {
  std::string out;
  for (const char c : text.substr(0, 64)) out.push_back(is_control(static_cast<unsigned char>(c)) ? '?' : c);
  if (text.size() > 64) out += "...";
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_upper(a[i]) != to_upper(b[i])) return false;
  }
  return true;
}

// What the lexer found besides tokens.
struct LexNotes {
  // An executable comment whose fate depends on the server's version, and
  // that version is not known.
  bool version_unknown = false;
  // Text the server refuses before it runs anything: an executable comment
  // that is never closed.
  bool malformed = false;
  // The text as the server executes it: executed comments without their
  // markers, skipped ones gone (each replaced by one blank, so that tokens
  // stay apart as the server keeps them). Empty when the text has no
  // executable comment (the text is already that).
  std::string resolved;
};

// MariaDB versions are MAJOR * 10000 + MINOR * 100 + PATCH; no supported
// server is older than 10.0.0.
constexpr unsigned long kOldestMariaDb = 100000;

class Lexer {
 public:
  // `server_version`: the MariaDB server's (0: unknown), for executable
  // comments.
  Lexer(std::string_view sql, const LexRules& rules, unsigned long server_version = 0)
      : s_(sql), rules_(rules), version_(server_version) {}

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
        const Executable e = rules_.executable_comments ? executable_comment(i) : Executable{};
        if (e.kind == Executable::none) {
          // An ordinary comment ends at the first "*/" (no nesting).
          const std::size_t close = s_.find("*/", i + 2);
          i = close == std::string_view::npos ? n : close + 2;
        } else if (e.kind == Executable::executed) {
          // Inside an executed comment, another executed marker is dropped
          // too, and the first "*/" still ends the one executable state the
          // server keeps (it has a flag, not a depth).
          in_executable_comment = true;
          resolve(i, e.body, " ");
          i = e.body;
        } else {
          const std::size_t end = skipped_comment_end(e.body);
          if (end == 0) {
            notes_.malformed = true;  // never closed: the server refuses it
            i = n;
          } else {
            resolve(i, end, " ");
            i = end;
          }
        }
      } else if (c == '*' && next == '/' && in_executable_comment) {
        in_executable_comment = false;
        resolve(i, i + 2, " ");
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
        } else if (next == '\'' || next == '"' || next == '`') {
          // @'name', @"name", @`name`: a quoted user variable, or the host
          // part of an account ('u'@'h').
          const std::size_t before = out.size();
          const std::size_t end = push_quoted(out, Tok::user_var, i + 1, static_cast<char>(next), false);
          out.resize(before);
          out.push_back({Tok::user_var, s_.substr(i, end - i)});
          i = end;
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
    // The server refuses an executable comment that is never closed.
    if (in_executable_comment) notes_.malformed = true;
    if (!notes_.resolved.empty() || resolved_upto_ > 0) notes_.resolved.append(s_.substr(resolved_upto_));
    return out;
  }

  LexNotes& notes() { return notes_; }

 private:
  struct Executable {
    enum Kind { none, executed, skipped } kind = none;
    std::size_t body = 0;  // where the code (or the skipped text) starts
  };

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
    out.push_back({kind, s_.substr(start, std::min(end, n) - start)});
    return std::min(end, n);
  }

  // "/*!" or "/*M!" at `at`, as MariaDB's lexer reads it (checked against
  // the real server in the MariaDB test suite):
  //   - five digits after the marker are a version, and a sixth digit
  //     belongs to it (/*!50700, /*!100500); fewer digits are code;
  //   - a comment without a version is always code;
  //   - with a version it is code when the version is at most the server's
  //     and, for "/*!" (not "/*M!"), not in 50700..99999: MariaDB skips
  //     those, which are MySQL 5.7+ versions it does not speak;
  //   - otherwise the whole comment is skipped (skipped_comment_end()).
  // "/*m!" (lower case) is an ordinary comment.
  Executable executable_comment(std::size_t at) {
    std::size_t j = at + 2;
    bool mariadb_marker = false;
    if (j < s_.size() && s_[j] == '!') {
      ++j;
    } else if (j + 1 < s_.size() && s_[j] == 'M' && s_[j + 1] == '!') {
      j += 2;
      mariadb_marker = true;
    } else {
      return {};
    }
    std::size_t digits = 0;
    while (digits < 6 && j + digits < s_.size() && is_digit(static_cast<unsigned char>(s_[j + digits])))
      ++digits;
    if (digits < 5) return {Executable::executed, j};
    unsigned long version = 0;
    for (std::size_t k = 0; k < digits; ++k)
      version = version * 10 + static_cast<unsigned long>(s_[j + k] - '0');
    const std::size_t body = j + digits;
    const bool mysql_only = !mariadb_marker && version >= 50700 && version <= 99999;
    if (mysql_only) return {Executable::skipped, body};
    if (version <= kOldestMariaDb) return {Executable::executed, body};  // every supported server runs it
    if (version_ == 0) {
      // Which way the server goes depends on a version we do not know.
      // Read it as code (the stricter reading for what it may hold) and
      // say so: the caller refuses to replicate it.
      notes_.version_unknown = true;
      return {Executable::executed, body};
    }
    return {version <= version_ ? Executable::executed : Executable::skipped, body};
  }

  // The end of a skipped executable comment whose text starts at `from`
  // (0 if it never ends): the server skips it without reading strings or
  // line comments, and lets one level of "/* ... */" nest inside it.
  std::size_t skipped_comment_end(std::size_t from) const {
    const std::size_t n = s_.size();
    int depth = 1;
    std::size_t j = from;
    while (j < n) {
      if (depth == 1 && s_[j] == '/' && j + 1 < n && s_[j + 1] == '*') {
        depth = 2;
        j += 2;
      } else if (s_[j] == '*' && j + 1 < n && s_[j + 1] == '/') {
        j += 2;
        if (--depth == 0) return j;
      } else {
        ++j;
      }
    }
    return 0;
  }

  // Notes that the server reads s_[from, to) as `with`.
  void resolve(std::size_t from, std::size_t to, std::string_view with) {
    notes_.resolved.append(s_.substr(resolved_upto_, from - resolved_upto_));
    notes_.resolved.append(with);
    resolved_upto_ = to;
  }

  std::string_view s_;
  const LexRules& rules_;
  unsigned long version_;
  LexNotes notes_;
  std::size_t resolved_upto_ = 0;
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

// The name a word or a quoted identifier stands for (`now` and [now] name
// now; a doubled quote inside is left as it is, which no name here has);
// empty for other tokens.
std::string_view name_of(const Token& t) {
  if (t.kind == Tok::word) return t.text;
  if (t.kind == Tok::quoted_ident && t.text.size() >= 2) return t.text.substr(1, t.text.size() - 2);
  return {};
}

bool name_in(const Token& t, std::initializer_list<std::string_view> names) {
  const std::string_view name = name_of(t);
  return !name.empty() &&
         std::any_of(names.begin(), names.end(), [&](std::string_view n) { return iequals(name, n); });
}

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
    // SET STATEMENT var = value [, ...] FOR <statement>. A read that lifts
    // its own transaction's READ ONLY (reads run read-only: storage.hpp)
    // could write; it is a write, replicated like one.
    int depth = 0;
    for (std::size_t j = 2; j < st.size(); ++j) {
      if (is_punct(st[j], "(")) ++depth;
      if (is_punct(st[j], ")")) depth = std::max(0, depth - 1);
      if (depth == 0 && name_in(st[j], {"TX_READ_ONLY", "TRANSACTION_READ_ONLY"}))
        return StatementKind::write;
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
  // SQLite: another database file on this connection only.
  if (is_word_in(k, {"ATTACH", "DETACH"})) return StatementKind::session;
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
    // A salt of its own on every call; the database's name, which members may not share.
    "ENCRYPT", "DATABASE", "SCHEMA",
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
// CURRENT_TIMESTAMP` and SQLite's `DEFAULT (datetime('now'))` store the
// same definition on every member, but every member evaluates the default
// itself whenever an INSERT omits the column (or an UPDATE does not set
// it), and nothing in that INSERT shows it: each member would store its
// own time. So find_nondeterministic() skips them (`with_defaults` false)
// and find_nondeterministic_default() names them with what to do instead.
// ALTER TABLE ... ADD with such a default, and CREATE TABLE ... SELECT,
// evaluate it right away and are flagged as any other call.
std::optional<std::string> find_nondeterministic(Tokens st, bool with_defaults = false) {
  const std::size_t first = skip_open_parens(st);
  const bool is_create = word_at(st, first, "CREATE");
  const bool is_alter = word_at(st, first, "ALTER");
  // CREATE TABLE ... [AS] SELECT fills the new columns' defaults at once.
  const bool fills_rows = is_create && std::any_of(st.begin(), st.end(), [](const Token& t) {
                            return is_word(t, "SELECT") || is_word(t, "VALUES");
                          });

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
        return "STRFTIME(" + printable(i == o.at + 2 ? st[o.at + 1].text : "...") + ")";
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
    if (t.kind == Tok::quoted_ident) {
      // `uuid`() and [random]() call the built-in as surely as uuid() does:
      // a quoted name before '(' is read as the function it names.
      if (!punct_at(st, i + 1, "(") || introduces_name(st, i, is_create)) continue;
      const Token as_word{Tok::word, name_of(t)};
      if (is_word_in(as_word, kFunctions) || is_word_in(as_word, kNiladic)) return upper(as_word.text) + "()";
      if (is_word_in(as_word, {"UNIX_TIMESTAMP"}) && punct_at(st, i + 2, ")")) return "UNIX_TIMESTAMP()";
      if (is_word_in(as_word, kDateFunctions) && punct_at(st, i + 2, ")")) return upper(as_word.text) + "()";
      continue;
    }
    if (t.kind != Tok::word) continue;

    if (is_alter && open.empty() && is_word(t, "ADD")) add_clause = true;
    if (!with_defaults && !fills_rows && (is_create || (is_alter && !add_clause)) &&
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

// A non-deterministic column default or ON UPDATE in DDL (see above).
std::optional<std::string> find_nondeterministic_default(Tokens st) {
  if (find_nondeterministic(st)) return std::nullopt;  // reported as such
  auto culprit = find_nondeterministic(st, true);
  if (!culprit) return std::nullopt;
  return culprit;
}

// ---------------------------------------------------------------------------
// Compound statements
//
// A trigger, procedure, function or event body, and MariaDB's compound
// statements run outside a routine (BEGIN NOT ATOMIC ... END, IF ... END
// IF, CASE, LOOP, WHILE, REPEAT, FOR), hold ';' of their own: the server
// reads the whole text as one statement. Inside one, a ';' ends a
// statement of the body only; the compound statement ends at the ';' after
// its last END. Blocks are counted by their keywords: BEGIN and CASE (a
// CASE expression ends with END too), LOOP, WHILE, REPEAT, FOR ... IN, and
// IF where a statement starts; each END closes one (END IF, END LOOP, ...
// name what they close, and the word after END is not an opener).
// Miscounting can only make the text look like more than one statement,
// which is refused with a message; it can never join two statements the
// server would run separately, because nothing is ever sent with
// multi-statements on unless it provably holds one statement
// (sql/statement_boundary.hpp).

// Whether st[i] is the CREATE of a stored program: CREATE [OR REPLACE]
// [DEFINER = account] [AGGREGATE] [TEMP] <kind>, where the first word
// naming a kind of object decides.
// The word naming the kind of object a CREATE at st[i] creates (PROCEDURE,
// TABLE, VIEW, ...), or an empty string.
std::string_view created_kind(Tokens st, std::size_t i) {
  if (i >= st.size() || !is_word(st[i], "CREATE")) return {};
  for (std::size_t j = i + 1; j < st.size() && j < i + 24; ++j) {
    if (is_word_in(st[j], {"PROCEDURE",  "FUNCTION", "TRIGGER",  "EVENT",   "PACKAGE", "TABLE",    "VIEW",
                           "INDEX",      "DATABASE", "SCHEMA",   "USER",    "ROLE",    "SEQUENCE", "SERVER",
                           "TABLESPACE", "UNIQUE",   "FULLTEXT", "SPATIAL", "VIRTUAL", "LOGFILE"})) {
      return st[j].text;
    }
  }
  return {};
}

bool creates_program(Tokens st, std::size_t i) {
  const std::string_view kind = created_kind(st, i);
  for (const std::string_view program : {"PROCEDURE", "FUNCTION", "TRIGGER", "EVENT", "PACKAGE"}) {
    if (iequals(kind, program)) return true;
  }
  return false;
}

// Whether a compound statement starts at st[0].
bool starts_compound(Tokens st) {
  std::size_t i = 0;
  if (st.size() > 2 && st[0].kind == Tok::word && is_punct(st[1], ":")) i = 2;  // label: BEGIN ...
  if (i >= st.size() || st[i].kind != Tok::word) return false;
  if (is_word(st[i], "BEGIN")) return word_at(st, i + 1, "NOT");  // BEGIN alone is a transaction
  if (is_word_in(st[i], {"IF", "CASE", "LOOP", "WHILE", "REPEAT", "FOR"})) return true;
  return creates_program(st, i);
}

// Whether st (a whole statement) defines a stored program: CREATE [OR
// REPLACE] [DEFINER = ...] [AGGREGATE] PROCEDURE | FUNCTION | TRIGGER |
// EVENT | PACKAGE, with or without a compound body.
bool defines_program(Tokens st) {
  return creates_program(st, skip_open_parens(st));
}

// Whether DDL text `all` (run as statements by every member) also reads or
// writes rows itself: CREATE TABLE ... SELECT, or a block (BEGIN NOT
// ATOMIC, IF, ...) holding DDL among other statements. A view's SELECT is
// not run by its CREATE, nor a stored program's body.
bool ddl_runs_queries(Tokens all, std::size_t first) {
  if (first < all.size() && is_word(all[first], "CREATE")) {
    if (creates_program(all, first) || iequals(created_kind(all, first), "VIEW")) return false;
    return std::any_of(all.begin() + static_cast<std::ptrdiff_t>(first), all.end(), [](const Token& t) {
      return is_word_in(t, {"SELECT", "VALUES"});
    });
  }
  return starts_compound(all);
}

// Where a statement of a compound body may start, seen from the token before.
bool ends_statement_start(const Token& prev) {
  return is_punct(prev, ";") || is_punct(prev, ":") || is_punct(prev, ")") ||
         is_word_in(prev, {"BEGIN", "THEN", "ELSE", "DO", "LOOP", "REPEAT"});
}

// The indexes of the ';' tokens that end top-level statements.
std::vector<std::size_t> statement_ends(Tokens all) {
  std::vector<std::size_t> ends;
  std::size_t start = 0;
  bool compound = false;
  int depth = 0;
  for (std::size_t k = 0; k < all.size(); ++k) {
    const Token& t = all[k];
    if (k == start) {
      compound = starts_compound(all.subspan(k));
      depth = 0;
    }
    if (is_punct(t, ";")) {
      if (!compound || depth == 0) {
        ends.push_back(k);
        start = k + 1;
      }
      continue;
    }
    if (!compound || t.kind != Tok::word) continue;
    const Token* prev = k > start ? &all[k - 1] : nullptr;
    if (is_word(t, "END")) {
      depth = std::max(0, depth - 1);
      continue;
    }
    if (prev != nullptr && is_word(*prev, "END")) continue;  // END IF, END LOOP, ...
    if (is_word_in(t, {"BEGIN", "CASE"})) {
      ++depth;
    } else if (is_word(t, "IF")) {
      if (prev == nullptr || ends_statement_start(*prev)) ++depth;
    } else if (is_word_in(t, {"LOOP", "WHILE", "REPEAT"})) {
      if (!punct_at(all, k + 1, "(")) ++depth;  // REPEAT('a', 3) is a function
    } else if (is_word(t, "FOR")) {
      if (word_at(all, k + 2, "IN")) ++depth;  // FOR x IN ... DO ... END FOR
    }
  }
  return ends;
}

// ---------------------------------------------------------------------------
// Session state and reserved names

// Whether the user variable at i is the host part of an account
// ('app'@'localhost', app@localhost): written right after the user name.
bool is_account_host(Tokens st, std::size_t i) {
  if (i == 0) return false;
  const Token& prev = st[i - 1];
  if (prev.kind != Tok::word && prev.kind != Tok::string && prev.kind != Tok::quoted_ident) return false;
  return prev.text.data() + prev.text.size() == st[i].text.data();
}

// The first thing in `st` that lives in one connection of one member: a
// user variable, a temporary table, a prepared statement, dynamic SQL, the
// connection's last insert id or sequence value, a session or global
// setting changed from a routine. A write runs on each member's own
// replication connection, which has none of the client's session and loses
// its own at every restart, so any of these would make members differ.
std::optional<SessionState> find_session_state(Tokens st) {
  for (std::size_t i = 0; i < st.size(); ++i) {
    const Token& t = st[i];
    if (t.kind == Tok::user_var && t.text.size() > 1 && t.text[0] == '@' && !is_account_host(st, i)) {
      return SessionState{"the user variable " + printable(t.text), SessionState::variable};
    }
    if (t.kind != Tok::word) continue;
    const Token* prev = i > 0 ? &st[i - 1] : nullptr;
    if (is_word(t, "LAST_INSERT_ID") && punct_at(st, i + 1, "(") && punct_at(st, i + 2, ")")) {
      return SessionState{"LAST_INSERT_ID()", SessionState::last_value};
    }
    if (is_word(t, "LASTVAL") && punct_at(st, i + 1, "("))
      return SessionState{"LASTVAL()", SessionState::last_value};
    if (is_word(t, "PREVIOUS") && word_at(st, i + 1, "VALUE") && word_at(st, i + 2, "FOR")) {
      return SessionState{"PREVIOUS VALUE FOR", SessionState::last_value};
    }
    if (is_word_in(t, {"TEMPORARY", "TEMP"}) && prev != nullptr &&
        is_word_in(*prev, {"CREATE", "REPLACE", "DROP"})) {
      return SessionState{"a temporary table", SessionState::temporary};
    }
    if (is_word(t, "TEMP") && punct_at(st, i + 1, "."))
      return SessionState{"the temp schema", SessionState::temporary};
    const bool named_next =
        i + 1 < st.size() && (st[i + 1].kind == Tok::word || st[i + 1].kind == Tok::quoted_ident);
    if (is_word(t, "EXECUTE") && named_next && !is_word_in(st[i + 1], {"ON", "TO"})) {
      return SessionState{word_at(st, i + 1, "IMMEDIATE") ? "EXECUTE IMMEDIATE" : "EXECUTE",
                          SessionState::dynamic};
    }
    if (is_word(t, "PREPARE") && named_next && word_at(st, i + 2, "FROM")) {
      return SessionState{"PREPARE", SessionState::dynamic};
    }
    if (is_word_in(t, {"DEALLOCATE", "DROP"}) && word_at(st, i + 1, "PREPARE")) {
      return SessionState{upper(t.text) + " PREPARE", SessionState::dynamic};
    }
    if (is_word(t, "SET") && i + 1 < st.size() &&
        is_word_in(st[i + 1], {"GLOBAL", "SESSION", "LOCAL", "PERSIST"})) {
      return SessionState{"SET " + upper(st[i + 1].text), SessionState::setting};
    }
  }
  return std::nullopt;
}

// Whether a statement starts at st[i]: the first token, or after a token
// that ends a statement or opens a compound body.
// A routine's or trigger's body may also follow its header directly: after
// the parameter list's ')', a characteristic (DETERMINISTIC, NO SQL, SQL
// SECURITY INVOKER, COMMENT '...') or FOR EACH ROW. (A ')' also ends
// expressions, so a statement may be seen where there is none, never the
// other way round: the checks made at statement starts only refuse more.)
bool statement_starts_at(Tokens st, std::size_t i) {
  if (i == 0) return true;
  const Token& prev = st[i - 1];
  return is_punct(prev, ";") || is_punct(prev, ":") || is_punct(prev, ")") || prev.kind == Tok::string ||
         is_word_in(prev, {"BEGIN", "THEN", "ELSE", "DO", "LOOP", "REPEAT", "ATOMIC", "DETERMINISTIC", "SQL",
                           "DATA", "DEFINER", "INVOKER", "ROW"});
}

// Statements that act on one database server rather than on the data:
// its sessions, files, logs, plugins, caches and replication. Run through
// distdb they would act differently on every member (or read the node's
// own files), so they are refused wherever they stand, in a routine body
// too.
std::optional<std::string> find_server_administration(Tokens st) {
  for (std::size_t i = 0; i < st.size(); ++i) {
    if (is_word_in(st[i], {"OUTFILE", "DUMPFILE"}) && i > 0 && is_word(st[i - 1], "INTO")) {
      return "SELECT ... INTO " + upper(st[i].text) +
             " writes a file on each member's database server, outside the data: run it on one server "
             "directly, not through distdb.";
    }
    if (st[i].kind != Tok::word || !statement_starts_at(st, i)) continue;
    const Token& t = st[i];
    std::string what;
    if (is_word_in(t, {"KILL", "SHUTDOWN", "FLUSH", "RESET", "PURGE", "BINLOG", "HANDLER", "BACKUP", "INSTALL",
                       "UNINSTALL"})) {
      what = upper(t.text);
    } else if (is_word(t, "CHANGE") && word_at(st, i + 1, "MASTER")) {
      what = "CHANGE MASTER";
    } else if (is_word_in(t, {"START", "STOP"}) &&
               i + 1 < st.size() && is_word_in(st[i + 1], {"SLAVE", "REPLICA", "ALL"})) {
      what = upper(t.text) + " " + upper(st[i + 1].text);
    } else if (is_word(t, "CACHE") && word_at(st, i + 1, "INDEX")) {
      what = "CACHE INDEX";
    } else if (is_word(t, "LOAD")) {
      return "LOAD reads a file on each member's own host (or on the node's), which differs from member to "
             "member and may not be shown to clients: send the rows as INSERT statements.";
    } else {
      continue;
    }
    return "'" + what + "' acts on one database server (its sessions, files, logs, plugins or replication), "
           "which is not the same on every member: run it on each server directly, not through distdb.";
  }
  return std::nullopt;
}

// The names a routine body may assign with SET: its parameters, the
// variables it DECLAREs, FOR loop variables (lower-cased: local names are
// case-insensitive).
std::vector<std::string> local_names(Tokens all) {
  std::vector<std::string> names;
  auto lower = [](std::string_view v) {
    std::string out(v);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  for (std::size_t i = 0; i < all.size(); ++i) {
    // CREATE ... PROCEDURE|FUNCTION name ( [IN|OUT|INOUT] p type, ... )
    if (is_word_in(all[i], {"PROCEDURE", "FUNCTION"}) && i + 2 < all.size() && !name_of(all[i + 1]).empty()) {
      std::size_t j = i + 2;
      if (punct_at(all, j, ".") && j + 2 < all.size()) j += 2;  // db.name
      if (!punct_at(all, j, "(")) continue;
      int depth = 0;
      bool expect_name = true;
      for (++j; j < all.size(); ++j) {
        if (is_punct(all[j], "(")) ++depth;
        if (is_punct(all[j], ")")) {
          if (depth == 0) break;
          --depth;
        }
        if (depth == 0 && is_punct(all[j], ",")) {
          expect_name = true;
          continue;
        }
        if (expect_name && is_word_in(all[j], {"IN", "OUT", "INOUT"})) continue;
        if (expect_name && !name_of(all[j]).empty()) {
          names.push_back(lower(name_of(all[j])));
          expect_name = false;
        }
      }
    }
    // DECLARE a, b type
    if (is_word(all[i], "DECLARE")) {
      for (std::size_t j = i + 1; j < all.size() && !name_of(all[j]).empty(); j += 2) {
        if (is_word_in(all[j], {"CONTINUE", "EXIT", "UNDO"})) break;  // a handler
        names.push_back(lower(name_of(all[j])));
        if (!punct_at(all, j + 1, ",")) break;
      }
    }
    // FOR v IN ...
    if (is_word(all[i], "FOR") && word_at(all, i + 2, "IN") && i + 1 < all.size() && !name_of(all[i + 1]).empty()) {
      names.push_back(lower(name_of(all[i + 1])));
    }
  }
  return names;
}

// A SET inside a compound body whose target is not one of the body's local
// variables (nor NEW.x / OLD.x in a trigger) sets a variable of the
// connection: time_zone, sql_mode, autocommit, tx_read_only, ... It would
// change how every later entry runs on each member's replication
// connection (and be lost at a restart), or lift a read connection's
// READ ONLY, so it is refused.
std::optional<SessionState> find_session_setting(Tokens all, Tokens st, bool in_body) {
  std::vector<std::string> locals;
  bool locals_read = false;
  // A top-level SET (the first token of a statement that is not part of a
  // body) is a session statement, refused as such.
  for (std::size_t i = in_body ? 0 : 1; i < st.size(); ++i) {
    if (!is_word(st[i], "SET") || !statement_starts_at(st, i)) continue;
    if (!locals_read) {
      locals = local_names(all);
      locals_read = true;
    }
    // Targets: name [. name] = expression, separated by top-level commas.
    std::size_t j = i + 1;
    while (j < st.size()) {
      const Token& target = st[j];
      if (target.kind == Tok::user_var || target.kind == Tok::system_var) break;  // flagged elsewhere
      const std::string_view name = name_of(target);
      const bool row_field = !name.empty() && punct_at(st, j + 1, ".") && is_word_in(target, {"NEW", "OLD"});
      std::string lowered(name);
      for (char& c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const bool local = std::find(locals.begin(), locals.end(), lowered) != locals.end();
      if (!row_field && !local) {
        return SessionState{"SET " + printable(name.empty() ? target.text : name) + " in a routine or trigger body",
                            SessionState::setting};
      }
      // Skip to the next top-level comma.
      int depth = 0;
      for (++j; j < st.size(); ++j) {
        if (is_punct(st[j], "(")) ++depth;
        if (is_punct(st[j], ")")) depth = std::max(0, depth - 1);
        if (depth == 0 && is_punct(st[j], ",")) break;
      }
      if (j < st.size()) ++j;
    }
  }
  return std::nullopt;
}

// Whether `st` holds a statement MariaDB runs only outside a transaction
// (DDL: it commits by itself), wherever it stands: first, in a compound
// body, or after SET STATEMENT ... FOR.
bool has_ddl(Tokens st) {
  static constexpr std::string_view kDdl[] = {"CREATE", "ALTER", "DROP",     "TRUNCATE", "RENAME",
                                              "GRANT",  "REVOKE", "ANALYZE", "OPTIMIZE", "REPAIR"};
  for (std::size_t i = 0; i < st.size(); ++i) {
    if (!is_word_in(st[i], std::span<const std::string_view>(kDdl))) continue;
    if (statement_starts_at(st, i) || (i > 0 && is_word(st[i - 1], "FOR") && word_at(st, 0, "SET") &&
                                       word_at(st, 1, "STATEMENT"))) {
      return true;
    }
  }
  return false;
}

// Objects whose state would differ between members however identically
// they were created: an event runs on each member's own clock, outside the
// log; a sequence with a cache hands out numbers from memory ahead of its
// position on disk, so a member whose server restarted (or that took a full
// copy) goes on from another number than the others.
std::optional<std::string> find_unreplicable(Tokens st) {
  const std::size_t first = skip_open_parens(st);
  if (first >= st.size() || !is_word_in(st[first], {"CREATE", "ALTER"})) return std::nullopt;
  for (std::size_t j = first + 1; j < st.size() && j < first + 24; ++j) {
    if (is_word(st[j], "EVENT")) {
      return "An event runs on each member's own schedule and clock, outside replication, so its changes would "
             "differ between members: run the job from one place and send its statements as writes.";
    }
    if (is_word(st[j], "SEQUENCE")) {
      const bool create = is_word(st[first], "CREATE");
      bool no_cache = false;
      bool cache = false;
      for (std::size_t k = j + 1; k < st.size(); ++k) {
        if (is_word(st[k], "NOCACHE") || (is_word(st[k], "NO") && word_at(st, k + 1, "CACHE"))) no_cache = true;
        if (is_word(st[k], "CACHE") && !(k > 0 && is_word(st[k - 1], "NO"))) {
          const std::size_t v = punct_at(st, k + 1, "=") ? k + 2 : k + 1;
          if (v < st.size() && st[v].kind == Tok::number && st[v].text.find_first_not_of('0') == std::string_view::npos) {
            no_cache = true;
          } else {
            cache = true;
          }
        }
      }
      if (cache || (create && !no_cache)) {
        return "A sequence with a cache hands out numbers from memory ahead of its position on disk, so a member "
               "whose database restarted would go on from another number than the others: create it with "
               "NOCACHE (or CACHE 0).";
      }
      return std::nullopt;
    }
    if (is_word_in(st[j], {"TABLE", "VIEW", "INDEX", "DATABASE", "SCHEMA", "USER", "ROLE", "TRIGGER", "PROCEDURE",
                           "FUNCTION", "SERVER"})) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

// The first name in `st` in distdb's reserved space (distdb_*).
std::optional<std::string> find_reserved_name(Tokens st) {
  constexpr std::string_view kPrefix = "distdb_";
  for (std::size_t i = 0; i < st.size(); ++i) {
    const Token& t = st[i];
    std::string_view name = name_of(t);
    if (t.kind == Tok::string && t.text.size() >= 2 && t.text.front() == '"') {
      name = t.text.substr(1, t.text.size() - 2);  // "name": an identifier in SQLite and ANSI_QUOTES
    }
    // 'name' where SQLite expects a table's name and a string cannot stand
    // (INSERT INTO 'x', CREATE TABLE 'x', RENAME TO 'x', ...): SQLite reads
    // it as the identifier. (MariaDB refuses such text: nothing lost.)
    if (t.kind == Tok::string && t.text.size() >= 2 && t.text.front() == '\'' && i > 0 &&
        (is_punct(st[i - 1], ".") ||
         is_word_in(st[i - 1],
                    {"INTO", "UPDATE", "TABLE", "FROM", "JOIN", "TO", "ON", "EXISTS", "VIEW", "TRIGGER",
                     "INDEX", "REFERENCES", "IGNORE", "REPLACE", "ABORT", "FAIL", "ROLLBACK"}))) {
      name = t.text.substr(1, t.text.size() - 2);
    }
    if (name.size() >= kPrefix.size() && iequals(name.substr(0, kPrefix.size()), kPrefix))
      return std::string(name);
  }
  return std::nullopt;
}

// The first database other than `database` that `st` names for a table,
// view, routine or database of its own: db.t after FROM, INTO, UPDATE,
// JOIN, TABLE, ..., the first name of a three-part name, and CREATE/DROP/
// ALTER DATABASE. A name after a keyword that introduces tables is read as
// [db.]table; a.b elsewhere is table.column and says nothing. Accounts
// (GRANT, CREATE USER) belong to the whole server and are not checked.
std::optional<std::string> find_other_database(Tokens st, std::string_view database, bool case_sensitive) {
  if (database.empty() || st.empty()) return std::nullopt;
  const std::size_t first = skip_open_parens(st);
  if (first < st.size() && is_word_in(st[first], {"GRANT", "REVOKE"})) return std::nullopt;
  const bool definition = first < st.size() && is_word_in(st[first], {"CREATE", "ALTER", "DROP"});
  auto other = [&](const Token& t) -> std::optional<std::string> {
    const std::string_view name = name_of(t);
    if (name.empty() || (case_sensitive ? name == database : iequals(name, database))) return std::nullopt;
    return printable(name);
  };
  bool table_list = false;  // after a keyword that lists tables, until something else
  bool seen_on = false;
  for (std::size_t i = 0; i < st.size(); ++i) {
    const Token& t = st[i];
    // The server's own schemas differ from member to member wherever they
    // are named (FROM (information_schema.X), a subquery, a function's
    // argument): x.y with x one of them is never a table alias.
    if (name_in(t, {"information_schema", "performance_schema", "mysql", "sys"}) && punct_at(st, i + 1, ".") &&
        (i == 0 || !is_punct(st[i - 1], "."))) {
      if (auto db = other(t)) return db;
    }
    // a.b.c: a is a database.
    if (!name_of(t).empty() && punct_at(st, i + 1, ".") && i + 3 < st.size() && !name_of(st[i + 2]).empty() &&
        punct_at(st, i + 3, ".") && (i == 0 || !is_punct(st[i - 1], "."))) {
      if (auto db = other(t)) return db;
    }
    if (is_word_in(t, {"DATABASE", "SCHEMA"}) && definition && i == first + 1) {
      std::size_t j = i + 1;
      if (word_at(st, j, "IF")) j += word_at(st, j + 1, "NOT") ? 3 : 2;  // IF [NOT] EXISTS
      if (j < st.size()) {
        if (auto db = other(st[j])) return db;
      }
      return std::nullopt;
    }
    const bool opens_table =
        is_word_in(t, {"FROM", "INTO", "INSERT", "REPLACE", "UPDATE", "JOIN", "TABLE", "TABLES", "REFERENCES",
                       "VIEW", "TRIGGER", "PROCEDURE", "FUNCTION", "EVENT", "SEQUENCE", "CALL", "TO"}) ||
        (is_word(t, "ON") && definition && !seen_on) || (is_word_in(t, {"LIKE", "RENAME"}) && definition);
    if (is_word(t, "ON")) seen_on = true;
    if (opens_table) {
      table_list = true;
      std::size_t j = i + 1;
      while (punct_at(st, j, "(")) ++j;  // FROM (db.t), JOIN ((db.t))
      if (word_at(st, j, "IF")) j += word_at(st, j + 1, "NOT") ? 3 : 2;  // IF [NOT] EXISTS
      if (j + 1 < st.size() && !name_of(st[j]).empty() && punct_at(st, j + 1, ".")) {
        if (auto db = other(st[j])) return db;
      }
      continue;
    }
    if (table_list && is_punct(t, ",")) {
      // FROM a, db.b / DROP TABLE a, db.b / FROM a, (db.b)
      std::size_t j = i + 1;
      while (punct_at(st, j, "(")) ++j;
      if (j + 1 < st.size() && !name_of(st[j]).empty() && punct_at(st, j + 1, ".")) {
        if (auto db = other(st[j])) return db;
      }
    }
    // The list of tables ends at any other punctuation, or at the keyword
    // of the next clause; names and aliases (AS x) continue it.
    if (t.kind == Tok::punct
            ? !is_punct(t, ".") && !is_punct(t, ",")
            : is_word_in(t, {"WHERE",   "SET",   "VALUES", "VALUE",  "SELECT", "ON",        "USING", "ORDER",
                             "GROUP",   "LIMIT", "HAVING", "WINDOW", "UNION",  "PARTITION", "WITH",  "FOR",
                             "RETURNS", "BEGIN", "BEFORE", "AFTER",  "DO",     "ENGINE"})) {
      table_list = false;
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// One reading of the text

struct Reading {
  Classification c;
  bool empty_first = true;  // the first statement has no token
};

Reading read_as(std::string_view sql, const LexRules& rules, const Context& context) {
  Lexer lexer(sql, rules, context.server_version);
  const std::vector<Token> tokens = lexer.run();
  const Tokens all(tokens);

  Reading r;
  r.c.version_unknown = lexer.notes().version_unknown;
  r.c.malformed = lexer.notes().malformed;
  r.c.effective_sql = std::move(lexer.notes().resolved);

  const std::vector<std::size_t> ends = statement_ends(all);
  const std::size_t first_end = ends.empty() ? all.size() : ends.front();
  const Tokens first = all.first(first_end);
  r.empty_first = first.empty();
  r.c.multiple_statements = std::any_of(all.begin() + static_cast<std::ptrdiff_t>(first_end), all.end(),
                                        [](const Token& t) { return !is_punct(t, ";"); });

  const std::size_t k = skip_open_parens(first);
  if (k < first.size() && first[k].kind == Tok::word) r.c.first_keyword = upper(first[k].text);
  r.c.kind = kind_of(first, 0);
  r.c.defines_program = defines_program(first);

  // Every statement, those of a compound body too, not only the first.
  const bool compound = starts_compound(all);
  std::size_t begin = 0;
  for (std::size_t i = 0; i <= all.size(); ++i) {
    if (i == all.size() || is_punct(all[i], ";")) {
      const Tokens part = all.subspan(begin, i - begin);
      if (!r.c.nondeterministic) r.c.nondeterministic = find_nondeterministic(part);
      if (!r.c.nondeterministic) {
        r.c.nondeterministic = find_nondeterministic_default(part);
        r.c.nondeterministic_default = r.c.nondeterministic.has_value();
      }
      if (!r.c.session_state) r.c.session_state = find_session_state(part);
      if (!r.c.unreplicable) r.c.unreplicable = find_unreplicable(part);
      if (!r.c.unreplicable) r.c.unreplicable = find_server_administration(part);
      r.c.ddl = r.c.ddl || has_ddl(part);
      // Only compound statements have bodies (elsewhere "... USING (id) SET"
      // is an UPDATE's SET, not a statement).
      if (!r.c.session_state && compound) r.c.session_state = find_session_setting(all, part, begin > 0);
      if (!r.c.other_database) {
        // Database names are case-sensitive on MariaDB (on Linux), schema
        // names are not on SQLite.
        r.c.other_database = find_other_database(part, context.database, rules.executable_comments);
      }
      begin = i + 1;
    }
  }
  r.c.reserved_name = find_reserved_name(all);
  r.c.ddl_runs_queries = r.c.ddl && ddl_runs_queries(all, skip_open_parens(all));
  return r;
}

}  // namespace

Classification classify(std::string_view sql, const Context& context) {
  switch (context.dialect) {
    case Dialect::mariadb:
      return read_as(sql, kMariaDbRules, context).c;
    case Dialect::sqlite:
      return read_as(sql, kSqliteRules, context).c;
    case Dialect::any:
      break;
  }
  Reading m = read_as(sql, kMariaDbRules, context);
  Reading s = read_as(sql, kSqliteRules, context);
  Classification c;
  c.multiple_statements = m.c.multiple_statements || s.c.multiple_statements;
  c.nondeterministic_default = m.c.nondeterministic ? m.c.nondeterministic_default : s.c.nondeterministic_default;
  c.nondeterministic =
      m.c.nondeterministic ? std::move(m.c.nondeterministic) : std::move(s.c.nondeterministic);
  c.session_state = m.c.session_state ? std::move(m.c.session_state) : std::move(s.c.session_state);
  c.reserved_name = m.c.reserved_name ? std::move(m.c.reserved_name) : std::move(s.c.reserved_name);
  c.other_database = m.c.other_database ? std::move(m.c.other_database) : std::move(s.c.other_database);
  c.unreplicable = m.c.unreplicable ? std::move(m.c.unreplicable) : std::move(s.c.unreplicable);
  c.ddl = m.c.ddl || s.c.ddl;
  c.defines_program = m.c.defines_program && s.c.defines_program;
  c.ddl_runs_queries = m.c.ddl_runs_queries || s.c.ddl_runs_queries;
  c.version_unknown = m.c.version_unknown;
  c.malformed = m.c.malformed;
  // Only a MariaDB server resolves executable comments; one text for both
  // servers cannot be rewritten for one of them.
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

Classification classify(std::string_view sql, Dialect dialect, unsigned long server_version) {
  return classify(sql, Context{dialect, server_version, {}});
}

Classification classify(std::string_view sql) {
  return classify(sql, Dialect::any);
}

std::optional<std::string> replication_refusal(const Classification& c, bool rows_shipped) {
  const std::string what = c.first_keyword.empty() ? "This statement" : "'" + c.first_keyword + "'";
  if (c.multiple_statements) {
    return "The request holds more than one statement (a ';' is followed by more SQL); send one statement per "
           "request so that every node runs exactly the same statement.";
  }
  if (c.malformed) {
    return "An executable comment (/*! ... */) is never closed, which the database refuses: end it with */.";
  }
  if (c.version_unknown) {
    return "A version-conditional comment (/*!NNNNNN ... */ or /*M!NNNNNN ... */) means code or nothing "
           "depending on the database server's version, which this node has not learned yet (its database "
           "has "
           "not been reached): try again shortly.";
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
  if (c.reserved_name) {
    return "'" + *c.reserved_name +
           "' is in the name space distdb keeps for its own bookkeeping (names starting "
           "with distdb_): clients may read those tables but not write them or create objects so named.";
  }
  if (c.unreplicable) return *c.unreplicable;
  if (c.other_database) {
    return "This statement writes to database '" + *c.other_database +
           "', and this cluster replicates its own database only (full copies carry that one alone, so other "
           "members would lose the change): name tables of the cluster's database.";
  }
  if (c.session_state) {
    const SessionState& st = *c.session_state;
    const std::string head = st.culprit +
                             " is state of one connection: every member applies writes on a "
                             "connection of its own, which does not share yours and starts empty after "
                             "a restart, so the write cannot be replicated as is";
    switch (st.kind) {
      case SessionState::variable:
        return head +
               " (send the value itself instead of a user variable; a routine can use DECLAREd local "
               "variables).";
      case SessionState::last_value:
        return head + " (use the last_insert_id of your INSERT's reply, or send the value itself).";
      case SessionState::temporary:
        return head + " (temporary tables are not replicated: use an ordinary table).";
      case SessionState::dynamic:
        return head +
               " (dynamic SQL runs text that distdb cannot check before it runs: send the statement "
               "itself).";
      case SessionState::setting:
        return head + " (a routine or trigger may not change session or global settings).";
    }
  }
  if (c.nondeterministic && c.nondeterministic_default) {
    return *c.nondeterministic + " as a column default or ON UPDATE value is evaluated by each member itself "
                                 "whenever a row is written without that column, so members would store different "
                                 "values: give the column a constant default (or none) and send the value with "
                                 "each INSERT and UPDATE.";
  }
  if (rows_shipped && c.ddl_runs_queries) {
    return "This DDL also reads or writes rows, and every member runs DDL itself, so what it computes (a "
           "function's value, a trigger, a routine it calls) could differ between members: create the table "
           "first, then fill it with INSERT ... SELECT, and send DDL and writes as separate requests.";
  }
  if (c.nondeterministic && rows_shipped && (!c.ddl || c.defines_program)) {
    // Evaluated once, on the coordinator; the members store its rows.
    return std::nullopt;
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
