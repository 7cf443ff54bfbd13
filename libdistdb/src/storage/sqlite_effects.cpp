// Row replication on SQLite (see sqlite_effects.hpp for the what and why).
#include "storage/sqlite_effects.hpp"

#ifdef DISTDB_SQLITE_SESSIONS
// The session extension's declarations are inside these guards in sqlite3.h.
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#endif
#include <sqlite3.h>

#include <cctype>
#include <climits>
#include <cstdint>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

namespace distdb::sqlite {
#ifdef DISTDB_SQLITE_SESSIONS
namespace {

constexpr std::string_view kMagic = "DSQ1";
// A counter's value in the envelope when its row was removed.
constexpr std::int64_t kCounterRemoved = INT64_MIN;

// Names a session must not record and an apply must not write: distdb's
// bookkeeping (each member writes its own) and SQLite's own tables.
bool reserved(std::string_view table) {
  auto starts = [&](std::string_view prefix) {
    if (table.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
      const char c = table[i];
      const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
      if (lower != prefix[i]) return false;
    }
    return true;
  };
  return starts("distdb_") || starts("sqlite_");
}

Error sqlite_error(sqlite3* db, const std::string& what) {
  return Error(ErrorKind::sql, what + ": " + sqlite3_errmsg(db), sqlite3_extended_errcode(db));
}

// One prepared query with text parameters, stepped by the caller.
class Query {
 public:
  Query(sqlite3* db, const char* sql) : db_(db) {
    ok_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) == SQLITE_OK;
  }
  ~Query() { sqlite3_finalize(stmt_); }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  bool ok() const { return ok_; }
  void bind(int i, std::string_view text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
  void bind(int i, std::int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  int step() { return sqlite3_step(stmt_); }
  std::int64_t int_at(int i) const { return sqlite3_column_int64(stmt_, i); }
  std::string text_at(int i) const {
    const auto* p = sqlite3_column_text(stmt_, i);
    return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p));
  }
  Error error(const std::string& what) const { return sqlite_error(db_, what); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  bool ok_ = false;
};

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Reads the envelope front to back; any short read fails it.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  std::optional<std::uint64_t> uint(int bytes) {
    if (in_.size() < static_cast<std::size_t>(bytes)) return std::nullopt;
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i)
      v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in_[i])) << (8 * i);
    in_.remove_prefix(static_cast<std::size_t>(bytes));
    return v;
  }
  std::optional<std::string_view> bytes(std::uint64_t n) {
    if (in_.size() < n) return std::nullopt;
    auto out = in_.substr(0, static_cast<std::size_t>(n));
    in_.remove_prefix(static_cast<std::size_t>(n));
    return out;
  }
  bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

struct Counter {
  std::string table;
  std::int64_t value = 0;
};

struct Envelope {
  std::string_view changeset;
  std::vector<Counter> counters;
};

Result<Envelope> parse(std::string_view effects) {
  const Error bad(ErrorKind::invalid_request,
                  "the effects are not a distdb SQLite changeset (truncated or malformed)");
  Reader r(effects);
  auto magic = r.bytes(kMagic.size());
  if (!magic || *magic != kMagic) return bad;
  Envelope env;
  auto size = r.uint(8);
  if (!size || *size > static_cast<std::uint64_t>(INT32_MAX)) return bad;
  auto changeset = r.bytes(*size);
  if (!changeset) return bad;
  env.changeset = *changeset;
  auto count = r.uint(4);
  if (!count) return bad;
  for (std::uint64_t i = 0; i < *count; ++i) {
    auto name_size = r.uint(4);
    if (!name_size) return bad;
    auto name = r.bytes(*name_size);
    auto value = r.uint(8);
    if (!name || !value) return bad;
    env.counters.push_back(Counter{std::string(*name), static_cast<std::int64_t>(*value)});
  }
  if (!r.done()) return bad;
  return env;
}

std::string quote_name(const std::string& name) {
  std::string out = "\"";
  for (const char c : name) {
    out += c;
    if (c == '"') out += '"';
  }
  return out + "\"";
}

// The resolution of the first ON CONFLICT clause of a CREATE TABLE text
// that a member could not apply as the coordinator did (REPLACE, IGNORE,
// ROLLBACK), or "". Words are compared in upper case with every run of
// white space read as one space.
std::string conflict_clause(const std::string& create_table) {
  std::string words;
  for (const char c : create_table) {
    const bool space = c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == '\v';
    if (space) {
      if (!words.empty() && words.back() != ' ') words += ' ';
    } else {
      words += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
  }
  for (const char* clause : {"REPLACE", "IGNORE", "ROLLBACK"}) {
    if (words.find(std::string("ON CONFLICT ") + clause) != std::string::npos) return clause;
  }
  return "";
}

// Whether a session can record every change to `table`. A session keys
// rows by the declared PRIMARY KEY: it ignores a table without one, and
// skips every change to a row whose key holds NULL, which a rowid table
// allows unless the key's columns say NOT NULL (an old SQLite quirk: `id INT
// PRIMARY KEY` takes NULL). So:
//   - WITHOUT ROWID tables, INTEGER PRIMARY KEY (the rowid itself) and keys
//     whose columns are all NOT NULL: recorded whole;
//   - a nullable one-column key: recorded, as long as no row holds NULL
//     there: a table that already does is refused (`null_keyed`), and
//     every statement is checked after it runs (Capture::check_keys);
//   - no key, or a nullable key of several columns: refused.
Result<TableShape> shape_of(sqlite3* db, const std::string& table, const std::set<std::string>* null_keyed) {
  TableShape shape;
  Query list(db, "SELECT wr, type FROM pragma_table_list WHERE schema = 'main' AND name = ?1");
  if (!list.ok()) return list.error("checking table '" + table + "'");
  list.bind(1, table);
  bool without_rowid = false;
  if (list.step() == SQLITE_ROW) {
    if (list.text_at(1) != "table") {
      // A virtual table's shadow tables (FTS, R-Tree): their rows are the
      // module's private state, which the module caches per connection.
      shape.refusal = "table '" + table + "' belongs to a virtual table (" + list.text_at(1) +
                      "), whose changes row replication on SQLite does not ship: use storage.replication "
                      "\"statements\" for virtual tables";
      return shape;
    }
    without_rowid = list.int_at(0) != 0;
  }
  // Generated columns: a session of SQLite 3.40 cannot read a table that has one.
  Query generated(db, "SELECT name FROM pragma_table_xinfo(?1, 'main') WHERE hidden IN (2, 3)");
  if (!generated.ok()) return generated.error("checking table '" + table + "'");
  generated.bind(1, table);
  if (generated.step() == SQLITE_ROW) {
    shape.refusal =
        "table '" + table + "' has a generated column ('" + generated.text_at(0) +
        "'), which row replication on SQLite cannot record: compute the value in the write instead";
    return shape;
  }
  // ON CONFLICT REPLACE, IGNORE or ROLLBACK in the table's constraints: a
  // member applies rows one at a time, in another order than they were
  // made, and SQLite would resolve a passing conflict its own way (delete a
  // row the next change needs, skip a change, end the transaction).
  Query definition(db, "SELECT sql FROM main.sqlite_master WHERE type = 'table' AND name = ?1");
  if (!definition.ok()) return definition.error("checking table '" + table + "'");
  definition.bind(1, table);
  if (definition.step() == SQLITE_ROW) {
    if (const std::string clause = conflict_clause(definition.text_at(0)); !clause.empty()) {
      shape.refusal =
          "table '" + table + "' declares a constraint ON CONFLICT " + clause +
          ", which row replication on SQLite cannot apply as the coordinator did: drop the clause "
          "(INSERT OR " +
          clause + " in a statement works)";
      return shape;
    }
  }
  // A key compared under another collation than BINARY (NOCASE, RTRIM)
  // matches rows the session tells apart by their bytes.
  Query collations(
      db,
      "SELECT x.name, x.coll FROM pragma_index_list(?1, 'main') AS l, pragma_index_xinfo(l.name, 'main') "
      "AS x WHERE l.origin = 'pk' AND x.key = 1 AND upper(x.coll) <> 'BINARY'");
  if (!collations.ok()) return collations.error("checking table '" + table + "'");
  collations.bind(1, table);
  if (collations.step() == SQLITE_ROW) {
    shape.refusal = "the PRIMARY KEY of table '" + table + "' compares column '" + collations.text_at(0) +
                    "' with collation " + collations.text_at(1) +
                    ", and row replication on SQLite identifies rows by their exact bytes: use the default "
                    "(BINARY) collation for key columns";
    return shape;
  }
  if (without_rowid) return shape;  // WITHOUT ROWID: keys are NOT NULL

  Query columns(db, "SELECT name, \"notnull\" FROM pragma_table_info(?1, 'main') WHERE pk > 0");
  if (!columns.ok()) return columns.error("checking table '" + table + "'");
  columns.bind(1, table);
  std::vector<std::string> key;
  std::string nullable;
  for (int rc = columns.step(); rc == SQLITE_ROW; rc = columns.step()) {
    key.push_back(columns.text_at(0));
    if (columns.int_at(1) == 0 && nullable.empty()) nullable = columns.text_at(0);
  }
  if (key.empty()) {
    shape.refusal =
        "table '" + table +
        "' has no PRIMARY KEY, and row replication on SQLite identifies rows by their key: give the "
        "table a PRIMARY KEY (an INTEGER PRIMARY KEY column, for instance)";
    return shape;
  }
  if (nullable.empty()) return shape;
  // An INTEGER PRIMARY KEY is the rowid itself, never NULL: it is the one
  // key of a rowid table that has no index of its own.
  Query indexes(db, "SELECT 1 FROM pragma_index_list(?1, 'main') WHERE origin = 'pk'");
  if (!indexes.ok()) return indexes.error("checking table '" + table + "'");
  indexes.bind(1, table);
  if (indexes.step() != SQLITE_ROW) return shape;
  if (key.size() > 1) {
    shape.refusal =
        "the PRIMARY KEY of table '" + table + "' may hold NULL (column '" + nullable +
        "'), and row replication on SQLite cannot identify such rows: declare the key's columns NOT "
        "NULL";
    return shape;
  }
  shape.nullable_key = nullable;
  if (null_keyed != nullptr && null_keyed->count(table) != 0) {
    shape.refusal = "table '" + table + "' holds rows whose PRIMARY KEY ('" + nullable +
                    "') is NULL, which SQLite allows but row replication cannot identify: give them keys or "
                    "remove them (with storage.replication \"statements\" on every member while you do)";
  }
  return shape;
}

// Whether `table` of main, if it exists, is an ordinary table (not a view,
// a virtual table or a virtual table's shadow table). A missing one is the
// apply's to find (a member whose schema differs: a refusal of the rows).
bool ordinary_table(sqlite3* db, const std::string& table) {
  Query list(db, "SELECT type FROM pragma_table_list WHERE schema = 'main' AND name = ?1");
  if (!list.ok()) return false;
  list.bind(1, table);
  return list.step() != SQLITE_ROW || list.text_at(0) == "table";
}

Result<bool> has_null_key(sqlite3* db, const std::string& table, const std::string& column) {
  Query nulls(
      db, ("SELECT 1 FROM main." + quote_name(table) + " WHERE " + quote_name(column) + " IS NULL LIMIT 1")
              .c_str());
  if (!nulls.ok()) return nulls.error("checking table '" + table + "'");
  return nulls.step() == SQLITE_ROW;
}

struct ConflictNote {
  std::string what;  // the first conflict, for the error message
};

const char* op_name(int op) {
  switch (op) {
    case SQLITE_INSERT:
      return "insert into";
    case SQLITE_UPDATE:
      return "update of";
    case SQLITE_DELETE:
      return "delete from";
    default:
      return "change to";
  }
}

int on_conflict(void* ctx, int type, sqlite3_changeset_iter* it) {
  auto* note = static_cast<ConflictNote*>(ctx);
  const char* table = nullptr;
  int columns = 0;
  int op = 0;
  int indirect = 0;
  sqlite3changeset_op(it, &table, &columns, &op, &indirect);
  if (note->what.empty()) {
    const char* why = "conflicts with this member's data";
    switch (type) {
      case SQLITE_CHANGESET_DATA:
        why = "finds the row with other values than the coordinator had";
        break;
      case SQLITE_CHANGESET_NOTFOUND:
        why = "finds no such row";
        break;
      case SQLITE_CHANGESET_CONFLICT:
        why = "finds the key already taken";
        break;
      case SQLITE_CHANGESET_CONSTRAINT:
        why = "breaks a constraint";
        break;
      case SQLITE_CHANGESET_FOREIGN_KEY:
        why = "breaks a foreign key";
        break;
      default:
        break;
    }
    note->what = std::string("the coordinator's ") + op_name(op) + " table '" +
                 (table != nullptr ? table : "?") + "' " + why + " here";
  }
  return SQLITE_CHANGESET_ABORT;
}

// Turns a connection setting off for the life of the object, and back to
// what it was after.
class SettingOff {
 public:
  SettingOff(sqlite3* db, int option) : db_(db), option_(option) {
    sqlite3_db_config(db_, option_, -1, &was_);
    int now = 0;
    sqlite3_db_config(db_, option_, 0, &now);
  }
  ~SettingOff() {
    int now = 0;
    sqlite3_db_config(db_, option_, was_, &now);
  }
  SettingOff(const SettingOff&) = delete;
  SettingOff& operator=(const SettingOff&) = delete;

 private:
  sqlite3* db_;
  int option_;
  int was_ = 1;
};

}  // namespace
#endif  // DISTDB_SQLITE_SESSIONS

bool sessions_available() {
#ifdef DISTDB_SQLITE_SESSIONS
  return true;
#else
  return false;
#endif
}

#ifdef DISTDB_SQLITE_SESSIONS

Capture::Capture(sqlite3* db, sqlite3_session* session) : db_(db), session_(session) {}

Capture::~Capture() {
  sqlite3session_delete(session_);
}

int Capture::filter(void* self, const char* table) {
  // Called once per table, before its first change is recorded (inside
  // SQLite's pre-update hook, where queries on the connection are allowed:
  // the session reads the table's columns there too).
  auto* capture = static_cast<Capture*>(self);
  if (table == nullptr || reserved(table)) return 0;
  auto known = capture->tables_.find(table);
  if (known == capture->tables_.end()) {
    auto shape = shape_of(capture->db_, table, &capture->null_keyed_);
    if (!shape) {
      TableShape unknown;
      unknown.refusal = "checking how table '" + std::string(table) + "' is keyed: " + shape.error().message;
      shape = unknown;
    }
    known = capture->tables_.emplace(table, *shape).first;
  }
  if (!known->second.refusal) return 1;
  // Not attached, so that the filter hears of every later change to it too:
  // the statement that made one is refused (check_keys), not the entry.
  if (!capture->refused_) capture->refused_ = *known->second.refusal;
  return 0;
}

void Capture::begin_statement() {
  refused_.reset();
}

Status Capture::check_keys() {
  if (refused_) {
    Error e(ErrorKind::sql, *refused_, SQLITE_CONSTRAINT);
    refused_.reset();
    return e;
  }
  for (const auto& [table, shape] : tables_) {
    if (shape.nullable_key.empty() || shape.refusal) continue;
    auto nulls = has_null_key(db_, table, shape.nullable_key);
    if (!nulls) return nulls.error();
    if (*nulls) {
      return Error(ErrorKind::sql,
                   "a row of table '" + table + "' would have a NULL PRIMARY KEY ('" + shape.nullable_key +
                       "'), which SQLite allows but row replication cannot identify: give the row a key",
                   SQLITE_CONSTRAINT_NOTNULL);
    }
  }
  return {};
}

Result<std::set<std::string>> tables_with_null_keys(sqlite3* db) {
  std::vector<std::string> tables;
  {
    Query list(db, "SELECT name FROM main.sqlite_master WHERE type = 'table'");
    if (!list.ok()) return list.error("listing tables");
    for (int rc = list.step(); rc == SQLITE_ROW; rc = list.step()) tables.push_back(list.text_at(0));
  }
  std::set<std::string> out;
  for (const auto& table : tables) {
    if (reserved(table)) continue;
    auto shape = shape_of(db, table, nullptr);
    if (!shape) return shape.error();
    if (shape->nullable_key.empty()) continue;
    auto nulls = has_null_key(db, table, shape->nullable_key);
    if (!nulls) return nulls.error();
    if (*nulls) out.insert(table);
  }
  return out;
}

// The rows of sqlite_sequence but distdb's, by name: the value, or nullopt
// for a row that is not the counter of an AUTOINCREMENT table here as a
// whole number from 0 (a client may write sqlite_sequence itself), which
// could not be set on the members.
using Counters = std::map<std::string, std::optional<std::int64_t>>;

static Result<Counters> read_counters(sqlite3* db) {
  Counters out;
  Query exists(db, "SELECT 1 FROM main.sqlite_master WHERE name = 'sqlite_sequence'");
  if (!exists.ok()) return exists.error("reading AUTOINCREMENT counters");
  if (exists.step() != SQLITE_ROW) return out;
  Query all(db,
            "SELECT s.name, s.seq, typeof(s.seq) = 'integer' AND s.seq >= 0 AND EXISTS (SELECT 1 FROM "
            "main.sqlite_master m WHERE m.type = 'table' AND m.name = s.name AND upper(m.sql) LIKE "
            "'%AUTOINCREMENT%') FROM main.sqlite_sequence s");
  if (!all.ok()) return all.error("reading AUTOINCREMENT counters");
  for (int rc = all.step(); rc == SQLITE_ROW; rc = all.step()) {
    std::string name = all.text_at(0);
    if (reserved(name)) continue;
    out[std::move(name)] = all.int_at(2) != 0 ? std::optional<std::int64_t>(all.int_at(1)) : std::nullopt;
  }
  return out;
}

Result<std::unique_ptr<Capture>> Capture::start(sqlite3* db, std::set<std::string> null_keyed) {
  sqlite3_session* session = nullptr;
  if (sqlite3session_create(db, "main", &session) != SQLITE_OK) {
    return Error(ErrorKind::storage_unavailable,
                 "cannot start an SQLite session to record the rows a write changes");
  }
  std::unique_ptr<Capture> capture(new Capture(db, session));
  capture->null_keyed_ = std::move(null_keyed);
  auto counters = read_counters(db);
  if (!counters) return counters.error();
  capture->counters_before_ = std::move(*counters);
  // Every table, as it is first written (the filter decides, and notes it).
  sqlite3session_table_filter(session, &Capture::filter, capture.get());
  if (sqlite3session_attach(session, nullptr) != SQLITE_OK)
    return sqlite_error(db, "starting an SQLite session");
  return capture;
}

Result<std::string> Capture::effects() {
  int size = 0;
  void* changeset = nullptr;
  // A failure here refuses the write (ErrorKind::sql) rather than the
  // member: the next coordinator would meet the same write.
  if (const int rc = sqlite3session_changeset(session_, &size, &changeset); rc != SQLITE_OK) {
    return Error(ErrorKind::sql,
                 std::string("row replication on SQLite could not record what this write changed (") +
                     sqlite3_errstr(rc) + "); nothing was changed",
                 rc);
  }
  // Reading the session may itself write (FTS flushes pending terms).
  if (refused_) {
    sqlite3_free(changeset);
    return Error(ErrorKind::sql, *refused_ + "; nothing was changed", SQLITE_CONSTRAINT);
  }
  std::string out;
  if (size > 0) {
    out.append(kMagic);
    put_u64(out, static_cast<std::uint64_t>(size));
    out.append(static_cast<const char*>(changeset), static_cast<std::size_t>(size));
  }
  sqlite3_free(changeset);

  // AUTOINCREMENT counters that moved (sqlite_sequence has no key, so no
  // session records it; a row inserted and deleted again in the same entry
  // moves the counter and leaves no row; a client may set it directly).
  auto now = read_counters(db_);
  if (!now) return now.error();
  std::vector<Counter> counters;
  for (const auto& [table, value] : *now) {
    const auto was = counters_before_.find(table);
    if (was != counters_before_.end() && was->second == value) continue;
    if (!value) {
      return Error(
          ErrorKind::sql,
          "sqlite_sequence would hold a row ('" + table +
              "') that is not the counter of an AUTOINCREMENT table as a whole number from 0, which row "
              "replication on SQLite cannot set on the other members; nothing was changed",
          SQLITE_CONSTRAINT);
    }
    counters.push_back(Counter{table, *value});
  }
  for (const auto& [table, value] : counters_before_) {
    if (now->count(table) == 0) counters.push_back(Counter{table, kCounterRemoved});
  }
  if (counters.empty() && out.empty()) return std::string();
  if (out.empty()) {
    out.append(kMagic);
    put_u64(out, 0);
  }
  put_u32(out, static_cast<std::uint32_t>(counters.size()));
  for (const auto& c : counters) {
    put_u32(out, static_cast<std::uint32_t>(c.table.size()));
    out.append(c.table);
    put_u64(out, static_cast<std::uint64_t>(c.value));
  }
  return out;
}

Status apply_effects(sqlite3* db, std::string_view effects) {
  if (effects.empty()) return {};
  auto env = parse(effects);
  if (!env) return env.error();
  void* changeset = const_cast<char*>(env->changeset.data());  // SQLite only reads it
  const int size = static_cast<int>(env->changeset.size());

  // Every change names a table this cluster replicates, and the changeset
  // reads to its end.
  std::int64_t changes = 0;
  if (size > 0) {
    sqlite3_changeset_iter* it = nullptr;
    if (sqlite3changeset_start(&it, size, changeset) != SQLITE_OK) {
      return Error(ErrorKind::invalid_request, "the effects hold a malformed SQLite changeset");
    }
    std::string refused;
    std::map<std::string, bool> ordinary;  // by table: may be written
    int rc = SQLITE_OK;
    while ((rc = sqlite3changeset_next(it)) == SQLITE_ROW) {
      const char* table = nullptr;
      int columns = 0;
      int op = 0;
      int indirect = 0;
      if (sqlite3changeset_op(it, &table, &columns, &op, &indirect) != SQLITE_OK || table == nullptr) break;
      if (refused.empty()) {
        auto known = ordinary.find(table);
        if (known == ordinary.end())
          known = ordinary.emplace(table, !reserved(table) && ordinary_table(db, table)).first;
        if (!known->second) refused = table;
      }
      ++changes;
    }
    const int finished = sqlite3changeset_finalize(it);
    if (rc != SQLITE_DONE || finished != SQLITE_OK) {
      return Error(ErrorKind::invalid_request, "the effects hold a malformed SQLite changeset");
    }
    if (!refused.empty()) {
      return Error(ErrorKind::invalid_request,
                   "the effects change table '" + refused +
                       "', which belongs to distdb or SQLite, or is not an ordinary table here: refused");
    }
  }
  for (const auto& c : env->counters) {
    if (c.value == kCounterRemoved && !reserved(c.table)) continue;  // removing a row is harmless
    // Only an AUTOINCREMENT table has a counter (its CREATE TABLE says so;
    // the word cannot appear in it otherwise but in a name or a string,
    // which a mistaken match only lets through to the checks below).
    Query table(db,
                "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = ?1 AND "
                "upper(sql) LIKE '%AUTOINCREMENT%'");
    if (!table.ok()) return table.error("checking the effects' counters");
    table.bind(1, c.table);
    if (reserved(c.table) || c.value < 0 || !ordinary_table(db, c.table) || table.step() != SQLITE_ROW) {
      return Error(ErrorKind::invalid_request, "the effects set the AUTOINCREMENT counter of '" + c.table +
                                                   "', which is not a table here");
    }
  }

  if (size > 0) {
    // The changeset holds what triggers and foreign-key actions did on the
    // coordinator: running them here again would do it twice.
    ConflictNote note;
    const auto before = sqlite3_total_changes64(db);
    int rc = SQLITE_OK;
    {
      SettingOff triggers(db, SQLITE_DBCONFIG_ENABLE_TRIGGER);
      SettingOff foreign_keys(db, SQLITE_DBCONFIG_ENABLE_FKEY);
      rc = sqlite3changeset_apply(db, size, changeset, nullptr, on_conflict, &note);
    }
    if (rc != SQLITE_OK) {
      if (!note.what.empty()) return Error(ErrorKind::sql, note.what, kEffectsRefused);
      // SQLite's savepoint rollback has cleared the connection's error by
      // now: the code is all there is. A changeset this member cannot apply
      // at all (its table is a view, a virtual table, keyless) says its
      // schema is not the coordinator's.
      return Error(ErrorKind::sql,
                   std::string("applying the coordinator's rows: ") + sqlite3_errstr(rc) +
                       " (this member's tables are not shaped as the coordinator's)",
                   kEffectsRefused);
    }
    // A change to a table this member does not have, or has with other
    // columns or another key, is skipped by SQLite without a word: every
    // change must have changed exactly one row.
    const auto applied = sqlite3_total_changes64(db) - before;
    if (applied != changes) {
      return Error(
          ErrorKind::sql,
          "only " + std::to_string(applied) + " of the coordinator's " + std::to_string(changes) +
              " row changes could be applied here: a table is missing, or has other columns or another "
              "key than on the coordinator",
          kEffectsRefused);
    }
  }
  for (const auto& c : env->counters) {
    if (c.value == kCounterRemoved) {
      Query remove(db, "DELETE FROM main.sqlite_sequence WHERE name = ?1");
      if (!remove.ok()) return remove.error("setting AUTOINCREMENT counters");
      remove.bind(1, c.table);
      if (remove.step() != SQLITE_DONE) return remove.error("setting AUTOINCREMENT counters");
      continue;
    }
    Query update(db, "UPDATE main.sqlite_sequence SET seq = ?2 WHERE name = ?1");
    if (!update.ok()) return update.error("setting AUTOINCREMENT counters");
    update.bind(1, c.table);
    update.bind(2, c.value);
    if (update.step() != SQLITE_DONE) return update.error("setting AUTOINCREMENT counters");
    if (sqlite3_changes64(db) > 0) continue;
    Query insert(db, "INSERT INTO main.sqlite_sequence (name, seq) VALUES (?1, ?2)");
    if (!insert.ok()) return insert.error("setting AUTOINCREMENT counters");
    insert.bind(1, c.table);
    insert.bind(2, c.value);
    if (insert.step() != SQLITE_DONE) return insert.error("setting AUTOINCREMENT counters");
  }
  return {};
}

#else  // !DISTDB_SQLITE_SESSIONS

Capture::Capture(sqlite3* db, sqlite3_session* session) : db_(db), session_(session) {}
Capture::~Capture() = default;
void Capture::begin_statement() {}
int Capture::filter(void*, const char*) {
  return 0;
}
Status Capture::check_keys() {
  return {};
}

static Error no_sessions() {
  return Error(ErrorKind::config,
               "this distdb was built with an SQLite library without the session extension, which row "
               "replication on SQLite needs (SQLITE_ENABLE_SESSION and SQLITE_ENABLE_PREUPDATE_HOOK)");
}

Result<std::unique_ptr<Capture>> Capture::start(sqlite3*, std::set<std::string>) {
  return no_sessions();
}
Result<std::set<std::string>> tables_with_null_keys(sqlite3*) {
  return no_sessions();
}
Result<std::string> Capture::effects() {
  return no_sessions();
}
Status apply_effects(sqlite3*, std::string_view) {
  return no_sessions();
}

#endif

}  // namespace distdb::sqlite
