#include "node/snapshot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

namespace distdb {

namespace {

constexpr std::size_t kRowsPerInsert = 200;
// An INSERT of a full copy is closed once it holds this much (a row larger
// than this makes a statement of its own).
constexpr std::size_t kInsertBytes = 1024 * 1024;

bool is_mariadb(const Storage& s) { return s.backend_name() == "mariadb"; }

std::string quote_identifier(const std::string& name, bool mariadb) {
  const char q = mariadb ? '`' : '"';
  std::string out(1, q);
  for (char c : name) {
    if (c == q) out.push_back(q);
    out.push_back(c);
  }
  out.push_back(q);
  return out;
}

std::string literal(const Value& v, bool mariadb) {
  if (is_null(v)) return "NULL";
  if (auto i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (auto d = std::get_if<double>(&v)) {
    if (!std::isfinite(*d)) return "NULL";
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", *d);
    return buf;
  }
  if (auto s = std::get_if<std::string>(&v)) return sql_string_literal(*s, mariadb);
  const auto& bytes = std::get<Blob>(v).bytes;
  static const char* hex = "0123456789ABCDEF";
  std::string out = "X'";
  for (std::uint8_t b : bytes) {
    out.push_back(hex[b >> 4]);
    out.push_back(hex[b & 15]);
  }
  out.push_back('\'');
  return out;
}

std::string text_at(const Row& row, std::size_t i) {
  if (i >= row.size()) return {};
  if (const auto* s = std::get_if<std::string>(&row[i])) return *s;
  if (const auto* n = std::get_if<std::int64_t>(&row[i])) return std::to_string(*n);
  return {};
}

bool is_ours(const std::string& name) { return name.rfind("distdb_", 0) == 0; }

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

// The objects of the database, by kind (distdb's own tables left out).
struct Catalog {
  std::vector<std::string> tables;     // base tables, system-versioned ones included
  std::set<std::string> versioned;     // of those, the system-versioned ones
  std::vector<std::string> sequences;  // MariaDB
  std::vector<std::string> views;
  std::vector<std::pair<std::string, std::string>> routines;  // (PROCEDURE|FUNCTION, name)
  std::vector<std::string> triggers;                          // MariaDB (SQLite's travel in `other`)
  std::vector<std::string> events;                            // MariaDB
};

Result<Catalog> read_catalog(Storage& storage) {
  Catalog c;
  if (!is_mariadb(storage)) {
    auto rs = storage.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name");
    if (!rs) return rs.error();
    for (const Row& row : rs->rows) {
      if (!is_ours(text_at(row, 0))) c.tables.push_back(text_at(row, 0));
    }
    auto views = storage.execute("SELECT name FROM sqlite_master WHERE type = 'view' ORDER BY name");
    if (!views) return views.error();
    for (const Row& row : views->rows) c.views.push_back(text_at(row, 0));
    return c;
  }
  auto tables = storage.execute(
      "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
      "ORDER BY TABLE_NAME");
  if (!tables) return tables.error();
  for (const Row& row : tables->rows) {
    const std::string name = text_at(row, 0);
    const std::string type = text_at(row, 1);
    if (is_ours(name)) continue;
    if (type == "BASE TABLE" || type == "SYSTEM VERSIONED") {
      c.tables.push_back(name);
      if (type == "SYSTEM VERSIONED") c.versioned.insert(name);
    } else if (type == "SEQUENCE") {
      c.sequences.push_back(name);
    } else if (type == "VIEW") {
      c.views.push_back(name);
    }
  }
  auto routines = storage.execute(
      "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() "
      "ORDER BY ROUTINE_TYPE, ROUTINE_NAME");
  if (!routines) return routines.error();
  for (const Row& row : routines->rows) c.routines.emplace_back(text_at(row, 0), text_at(row, 1));
  auto triggers = storage.execute(
      "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() "
      "ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER");
  if (!triggers) return triggers.error();
  for (const Row& row : triggers->rows) c.triggers.push_back(text_at(row, 0));
  auto events = storage.execute(
      "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() ORDER BY EVENT_NAME");
  if (!events) return events.error();
  for (const Row& row : events->rows) c.events.push_back(text_at(row, 0));
  return c;
}

// The columns a copy stores: every column but generated ones (their values
// follow from the others, and the server refuses values for them);
// invisible columns included, since SELECT * leaves them out.
Result<std::vector<std::string>> stored_columns(Storage& storage, const std::string& table, bool mariadb) {
  std::vector<std::string> out;
  if (mariadb) {
    auto rs = storage.execute(
        "SELECT COLUMN_NAME, EXTRA, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND "
        "TABLE_NAME = " +
        sql_string_literal(table, true) + " ORDER BY ORDINAL_POSITION");
    if (!rs) return rs.error();
    for (const Row& row : rs->rows) {
      if (text_at(row, 1).find("GENERATED") != std::string::npos) continue;
      out.push_back(quote_identifier(text_at(row, 0), true));
    }
    return out;
  }
  // table_xinfo's `hidden`: 0 an ordinary column, 2 and 3 generated ones.
  auto rs = storage.execute("SELECT name, hidden FROM pragma_table_xinfo(" + sql_string_literal(table, false) + ")");
  if (!rs) return rs.error();
  for (const Row& row : rs->rows) {
    const auto* hidden = row.size() > 1 ? std::get_if<std::int64_t>(&row[1]) : nullptr;
    if (hidden != nullptr && *hidden != 0) continue;
    out.push_back(quote_identifier(text_at(row, 0), false));
  }
  return out;
}

// A table's rows as INSERTs of its stored columns. A system-versioned
// table's history goes with it: every row version with its period
// (ROW_START/ROW_END), restored under system_versioning_insert_history.
Status copy_rows(Storage& storage, const std::string& table, bool mariadb, bool versioned,
                 SnapshotSink& statements) {
  auto columns = stored_columns(storage, table, mariadb);
  if (!columns) return columns.error();
  if (columns->empty()) return {};
  std::vector<std::string> selected = *columns;
  if (mariadb) {
    // The text protocol prints a FLOAT with about six digits, which does
    // not read back as the same FLOAT: read it as a DOUBLE, which holds
    // every FLOAT exactly and prints all its digits.
    auto floats = storage.execute(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = " +
        sql_string_literal(table, true) + " AND DATA_TYPE = 'float'");
    if (!floats) return floats.error();
    for (const Row& row : floats->rows) {
      const std::string q = quote_identifier(text_at(row, 0), true);
      for (auto& column : selected) {
        if (column == q) column = "CAST(" + q + " AS DOUBLE)";
      }
    }
  }
  if (versioned) {
    selected.push_back("ROW_START");
    selected.push_back("ROW_END");
  }
  std::vector<std::string> targets = *columns;
  if (versioned) {
    targets.push_back("ROW_START");
    targets.push_back("ROW_END");
  }
  const std::string source = quote_identifier(table, mariadb) + (versioned ? " FOR SYSTEM_TIME ALL" : "");
  const std::string head = "INSERT INTO " + quote_identifier(table, mariadb) + " (" + join(targets) + ") VALUES ";
  // Rows stream from the database into INSERTs of a bounded size: neither
  // the table nor a statement is ever held whole.
  std::string insert;
  std::size_t in_batch = 0;
  const Status scanned = storage.scan("SELECT " + join(selected) + " FROM " + source, [&](const Row& row) {
    insert += in_batch == 0 ? head : ", ";
    insert += "(";
    for (std::size_t i = 0; i < row.size(); ++i) insert += (i ? ", " : "") + literal(row[i], mariadb);
    insert += ")";
    if (++in_batch == kRowsPerInsert || insert.size() >= kInsertBytes) {
      statements.add(std::move(insert));
      insert.clear();
      in_batch = 0;
    }
    return statements.status();
  });
  if (!scanned) return scanned;
  if (in_batch > 0) statements.add(std::move(insert));
  return statements.status();
}

// The definition SHOW CREATE gives in column `column`, made under the
// sql_mode the object was created with (column `mode_column`, or none):
// a routine's or trigger's body is parsed by that mode again.
Status push_definition(Storage& storage, const std::string& show, std::size_t column,
                       std::optional<std::size_t> mode_column, SnapshotSink& statements) {
  auto rs = storage.execute(show);
  if (!rs) return rs.error();
  if (rs->rows.empty()) return Error(ErrorKind::storage_unavailable, "no definition from '" + show + "'");
  const Row& row = rs->rows.front();
  if (mode_column)
    statements.add("SET SESSION sql_mode = " + sql_string_literal(text_at(row, *mode_column), true));
  statements.add(text_at(row, column));
  return {};
}

// Views in an order where each comes after the views it reads from (a
// view's definition names them quoted: `name`).
std::vector<std::string> views_in_dependency_order(const std::map<std::string, std::string>& definitions) {
  std::vector<std::string> order;
  std::set<std::string> placed;
  while (order.size() < definitions.size()) {
    bool progress = false;
    for (const auto& [name, ddl] : definitions) {
      if (placed.count(name) > 0) continue;
      bool ready = true;
      for (const auto& [other, unused] : definitions) {
        if (other != name && placed.count(other) == 0 && ddl.find("`" + other + "`") != std::string::npos) {
          ready = false;
          break;
        }
      }
      if (!ready) continue;
      order.push_back(name);
      placed.insert(name);
      progress = true;
    }
    if (!progress) {  // a cycle cannot be created; keep the rest in name order
      for (const auto& [name, unused] : definitions) {
        if (placed.insert(name).second) order.push_back(name);
      }
    }
  }
  return order;
}

Status make_mariadb_snapshot(Storage& storage, const Catalog& catalog, SnapshotSink& statements) {
  // Tables, with their rows; AUTO_INCREMENT=N in the DDL carries the counter.
  for (const auto& table : catalog.tables) {
    if (auto st = push_definition(storage, "SHOW CREATE TABLE " + quote_identifier(table, true), 1, std::nullopt,
                                  statements);
        !st) {
      return st;
    }
    const bool versioned = catalog.versioned.count(table) > 0;
    if (versioned) statements.add("SET SESSION system_versioning_insert_history = 1");
    if (auto st = copy_rows(storage, table, true, versioned, statements); !st) return st;
    if (versioned) statements.add("SET SESSION system_versioning_insert_history = 0");
  }
  // Sequences at their position on disk. (A cached sequence hands out
  // numbers ahead of that position from memory; distdb refuses to create
  // one, docs/design.md section 3.)
  for (const auto& sequence : catalog.sequences) {
    const std::string name = quote_identifier(sequence, true);
    if (auto st = push_definition(storage, "SHOW CREATE SEQUENCE " + name, 1, std::nullopt, statements); !st) {
      return st;
    }
    auto pos = storage.execute("SELECT next_not_cached_value, cycle_count FROM " + name);
    if (!pos) return pos.error();
    if (pos->rows.empty()) continue;
    statements.add("SELECT SETVAL(" + name + ", " + text_at(pos->rows[0], 0) + ", 0, " +
                   text_at(pos->rows[0], 1) + ")");
  }
  // Routines before views (a view may call a function) and triggers.
  for (const auto& [type, routine] : catalog.routines) {
    if (auto st = push_definition(storage, "SHOW CREATE " + type + " " + quote_identifier(routine, true), 2, 1,
                                  statements);
        !st) {
      return st;
    }
  }
  std::map<std::string, std::string> views;
  for (const auto& view : catalog.views) {
    // A view whose table (or function) was dropped since cannot be created
    // again: it is not carried, and checksums leave it out too
    // (node/checksum.cpp).
    if (!view_is_valid(storage, {}, view)) continue;
    auto rs = storage.execute("SHOW CREATE VIEW " + quote_identifier(view, true));
    if (!rs) return rs.error();
    if (!rs->rows.empty()) views[view] = text_at(rs->rows.front(), 1);
  }
  for (const auto& view : views_in_dependency_order(views)) statements.add(views[view]);
  // Triggers last among the data's objects: loading rows must not fire them.
  for (const auto& trigger : catalog.triggers) {
    if (auto st = push_definition(storage, "SHOW CREATE TRIGGER " + quote_identifier(trigger, true), 2, 1,
                                  statements);
        !st) {
      return st;
    }
  }
  for (const auto& event : catalog.events) {
    if (auto st = push_definition(storage, "SHOW CREATE EVENT " + quote_identifier(event, true), 3, 1,
                                  statements);
        !st) {
      return st;
    }
  }
  return {};
}

Status make_sqlite_snapshot(Storage& storage, const Catalog& catalog, SnapshotSink& statements) {
  for (const auto& table : catalog.tables) {
    auto ddl = storage.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = " +
                               sql_string_literal(table, false));
    if (!ddl) return ddl.error();
    if (ddl->rows.empty()) continue;
    statements.add(text_at(ddl->rows.front(), 0));
    if (auto st = copy_rows(storage, table, false, false, statements); !st) return st;
  }
  // Indexes, views and triggers, after the tables they depend on.
  auto rest = storage.execute(
      "SELECT sql FROM sqlite_master WHERE type != 'table' AND sql IS NOT NULL "
      "AND name NOT LIKE 'sqlite_%' AND tbl_name NOT LIKE 'distdb_%' ORDER BY type, name");
  if (!rest) return rest.error();
  for (const Row& row : rest->rows) statements.add(text_at(row, 0));
  return {};
}

// What drops every object of the catalog: views first (they depend on
// tables), then routines, events, sequences and tables (their triggers go
// with them).
std::vector<std::string> drop_statements(const Catalog& c, bool mariadb) {
  std::vector<std::string> out;
  for (const auto& v : c.views) out.push_back("DROP VIEW IF EXISTS " + quote_identifier(v, mariadb));
  for (const auto& [type, name] : c.routines) out.push_back("DROP " + type + " IF EXISTS " + quote_identifier(name, true));
  for (const auto& e : c.events) out.push_back("DROP EVENT IF EXISTS " + quote_identifier(e, true));
  for (const auto& s : c.sequences) out.push_back("DROP SEQUENCE IF EXISTS " + quote_identifier(s, true));
  for (const auto& t : c.tables) out.push_back("DROP TABLE IF EXISTS " + quote_identifier(t, mariadb));
  return out;
}

}  // namespace

bool view_is_valid(Storage& storage, const TxnId& txn, const std::string& view) {
  const std::string probe = "SELECT * FROM " + quote_identifier(view, storage.backend_name() == "mariadb") + " LIMIT 0";
  auto rs = txn.empty() ? storage.execute(probe) : storage.execute_in(txn, probe);
  return rs.ok() || rs.error().kind != ErrorKind::sql;
}

std::string sql_string_literal(const std::string& text, bool mariadb) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out.push_back('\'');
    if (mariadb && c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

Result<SnapshotFile> write_snapshot(Storage& storage, const std::string& path) {
  const bool mariadb = is_mariadb(storage);
  auto catalog = read_catalog(storage);
  if (!catalog) return catalog.error();
  SnapshotSink sink(path, storage.backend_name());
  if (auto st = sink.status(); !st) return st.error();
  const Status made = mariadb ? make_mariadb_snapshot(storage, *catalog, sink)
                              : make_sqlite_snapshot(storage, *catalog, sink);
  if (!made) {
    sink.abandon();
    return made.error();
  }
  return sink.finish();
}

Status restore_snapshot(Storage& storage, const std::string& path) {
  const bool mariadb = is_mariadb(storage);
  // The whole file is read once before anything is dropped: a copy that is
  // cut short, corrupt or from another backend leaves the database as it
  // was.
  SnapshotSource source(path, storage.backend_name());
  std::string statement;
  for (;;) {
    auto more = source.next(statement);
    if (!more) return more.error();
    if (!*more) break;
  }
  if (auto st = source.rewind(); !st) return st;
  auto catalog = read_catalog(storage);
  if (!catalog) return catalog.error();
  // The replication connection's own settings come back whatever the copy set.
  std::string sql_mode;
  if (mariadb) {
    auto mode = storage.execute("SELECT @@SESSION.sql_mode");
    if (!mode) return mode.error();
    sql_mode = mode->rows.empty() ? std::string() : text_at(mode->rows.front(), 0);
  }
  std::vector<std::string> prologue;
  prologue.push_back(mariadb ? "SET FOREIGN_KEY_CHECKS = 0" : "PRAGMA foreign_keys = OFF");
  for (auto& s : drop_statements(*catalog, mariadb)) prologue.push_back(std::move(s));
  Status result;
  const auto run = [&](const std::string& s) {
    if (auto rs = storage.execute(s); !rs) {
      Error e = rs.error();
      e.message = "installing a full copy: " + e.message + " (in: " + s.substr(0, 200) + ")";
      result = e;
    }
    return result.ok();
  };
  bool ok = true;
  for (const auto& s : prologue) {
    if (ok = run(s); !ok) break;
  }
  if (ok) {
    for (;;) {
      auto more = source.next(statement);
      if (!more) {
        result = more.error();
        break;
      }
      if (!*more || !run(statement)) break;
    }
  }
  const std::vector<std::string> reset =
      mariadb ? std::vector<std::string>{"SET FOREIGN_KEY_CHECKS = 1", "SET SESSION system_versioning_insert_history = 0",
                                         "SET SESSION sql_mode = " + sql_string_literal(sql_mode, true)}
              : std::vector<std::string>{"PRAGMA foreign_keys = ON"};
  for (const auto& s : reset) {
    if (auto rs = storage.execute(s); !rs && result) result = rs.error();
  }
  return result;
}

}  // namespace distdb
