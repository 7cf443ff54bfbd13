#include "db_fingerprint.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <set>
#include <sstream>

#include "mariadb_env.hpp"
#include "process.hpp"

namespace distdb::test {
namespace {

const std::set<std::string> kBookkeeping = {"distdb_log", "distdb_applied", "distdb_meta", "distdb_effects"};

// How many rows of a table its "rows" facet shows.
constexpr std::size_t kShownRows = 50;

std::string quote_id(const std::string& name) {
  std::string out = "`";
  for (char c : name) {
    out += c;
    if (c == '`') out += '`';
  }
  return out + "`";
}

std::string quote_str(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'' || c == '\\') out += c;
    out += c;
  }
  return out + "'";
}

std::string cell(const ResultSet& rs, std::size_t row, std::size_t col) {
  if (row >= rs.rows.size() || col >= rs.rows[row].size()) return "(missing)";
  const Value& v = rs.rows[row][col];
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  return render_value(v);
}

std::string key(const std::string& kind, const std::string& name, const std::string& facet) {
  return kind + " " + quote_id(name) + ": " + facet;
}

}  // namespace

std::string render_value(const Value& v) {
  if (std::holds_alternative<std::monostate>(v)) return "NULL";
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&v)) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", *d);
    return buf;
  }
  if (const auto* s = std::get_if<std::string>(&v)) return quote_str(*s);
  const auto& bytes = std::get<Blob>(v).bytes;
  std::string out = "x'";
  static const char* const hex = "0123456789abcdef";
  for (std::uint8_t b : bytes) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out + "'";
}

std::string strip_definer(const std::string& sql) {
  static const std::regex definer(R"(DEFINER\s*=\s*(`[^`]*`|'[^']*'|[^\s@]+)@(`[^`]*`|'[^']*'|\S+)\s*)",
                                  std::regex::icase);
  return std::regex_replace(sql, definer, "");
}

std::string strip_auto_increment(const std::string& sql) {
  static const std::regex option(R"( AUTO_INCREMENT=[0-9]+)");
  return std::regex_replace(sql, option, "");
}

DbInspector::DbInspector() {
  const auto servers = mariadb_servers();
  for (std::size_t i = 0; i < servers.size(); ++i) {
    servers_.push_back(mariadb_db_config(i, "mysql"));
    connections_.emplace_back();
  }
}

DbInspector::~DbInspector() = default;

Result<ResultSet> DbInspector::execute_on(std::size_t index, const std::string& sql) {
  auto& conn = connections_.at(index);
  if (!conn) {
    StorageConfig sc;
    sc.backend = StorageBackend::mariadb;
    sc.db = servers_.at(index);
    auto opened = open_storage(sc);
    if (!opened) return opened.error();
    conn = std::move(*opened);
  }
  return conn->execute(sql);
}

Result<ResultSet> DbInspector::execute(std::size_t index, const std::string& sql) {
  return execute_on(index, sql);
}

DbFingerprint DbInspector::fingerprint(std::size_t index, const std::string& database) {
  DbFingerprint fp;
  fp.database = database;
  const std::string db = quote_id(database);
  const std::string db_str = quote_str(database);
  auto run = [&](const std::string& sql) -> std::optional<ResultSet> {
    auto r = execute_on(index, sql);
    if (!r) {
      if (fp.error.empty()) fp.error = sql + ": " + r.error().message;
      return std::nullopt;
    }
    return std::move(*r);
  };

  auto created = run("SHOW CREATE DATABASE " + db);
  if (!created) return fp;
  fp.facets["database " + db + ": definition"] = cell(*created, 0, 1);

  auto tables =
      run("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = " + db_str +
          " ORDER BY TABLE_NAME");
  if (!tables) return fp;
  for (std::size_t r = 0; r < tables->rows.size(); ++r) {
    const std::string name = cell(*tables, r, 0);
    const std::string type = cell(*tables, r, 1);
    if (kBookkeeping.count(name) != 0) continue;
    const std::string qualified = db + "." + quote_id(name);
    if (type == "VIEW") {
      auto v = run("SHOW CREATE VIEW " + qualified);
      if (!v) return fp;
      fp.facets[key("view", name, "definition")] = strip_definer(cell(*v, 0, 1));
    } else if (type == "SEQUENCE") {
      auto state = run(
          "SELECT next_not_cached_value, minimum_value, maximum_value, start_value, increment, cache_size, "
          "cycle_option, cycle_count FROM " +
          qualified);
      auto def = run("SHOW CREATE SEQUENCE " + qualified);
      if (!state || !def) return fp;
      fp.facets[key("sequence", name, "next_not_cached_value")] = cell(*state, 0, 0);
      std::string rest;
      for (std::size_t c = 1; c < state->columns.size(); ++c) {
        rest += (c > 1 ? ", " : "") + state->columns[c] + "=" + cell(*state, 0, c);
      }
      fp.facets[key("sequence", name, "state")] = rest;
      fp.facets[key("sequence", name, "definition")] = cell(*def, 0, 1);
    } else {
      auto sum = run("CHECKSUM TABLE " + qualified);
      auto count = run("SELECT COUNT(*) FROM " + qualified);
      auto def = run("SHOW CREATE TABLE " + qualified);
      auto rows = run("SELECT * FROM " + qualified + " LIMIT " + std::to_string(kShownRows + 1));
      if (!sum || !count || !def || !rows) return fp;
      fp.facets[key("table", name, "checksum")] = cell(*sum, 0, 1);
      fp.facets[key("table", name, "row count")] = cell(*count, 0, 0);
      fp.facets[key("table", name, "definition")] = strip_auto_increment(cell(*def, 0, 1));
      std::vector<std::string> shown;
      for (const Row& row : rows->rows) {
        std::string line = "(";
        for (std::size_t c = 0; c < row.size(); ++c) line += (c ? ", " : "") + render_value(row[c]);
        shown.push_back(line + ")");
      }
      std::sort(shown.begin(), shown.end());
      std::string text;
      for (std::size_t i = 0; i < shown.size() && i < kShownRows; ++i) text += (i ? " " : "") + shown[i];
      if (shown.size() > kShownRows) text += " ...";
      fp.facets[key("table", name, "rows")] = text.empty() ? "(none)" : text;
    }
  }

  auto triggers =
      run("SELECT TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_ORDER, ACTION_TIMING, "
          "ACTION_STATEMENT, SQL_MODE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = " +
          db_str + " ORDER BY TRIGGER_NAME");
  if (!triggers) return fp;
  for (std::size_t r = 0; r < triggers->rows.size(); ++r) {
    fp.facets[key("trigger", cell(*triggers, r, 0), "definition")] =
        cell(*triggers, r, 4) + " " + cell(*triggers, r, 1) + " ON " + cell(*triggers, r, 2) + " (order " +
        cell(*triggers, r, 3) + ", sql_mode " + cell(*triggers, r, 6) + "): " + cell(*triggers, r, 5);
  }

  auto routines = run(
      "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = " + db_str +
      " ORDER BY ROUTINE_TYPE, ROUTINE_NAME");
  if (!routines) return fp;
  for (std::size_t r = 0; r < routines->rows.size(); ++r) {
    const std::string name = cell(*routines, r, 0);
    std::string type = cell(*routines, r, 1);  // PROCEDURE, FUNCTION, PACKAGE, PACKAGE BODY
    auto def = run("SHOW CREATE " + type + " " + db + "." + quote_id(name));
    if (!def) return fp;
    std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) { return std::tolower(c); });
    fp.facets[key(type, name, "definition")] =
        "sql_mode " + cell(*def, 0, 1) + ": " + strip_definer(cell(*def, 0, 2));
  }

  auto events =
      run("SELECT EVENT_NAME, STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = " + db_str +
          " ORDER BY EVENT_NAME");
  if (!events) return fp;
  for (std::size_t r = 0; r < events->rows.size(); ++r) {
    const std::string name = cell(*events, r, 0);
    auto def = run("SHOW CREATE EVENT " + db + "." + quote_id(name));
    if (!def) return fp;
    fp.facets[key("event", name, "definition")] = "status " + cell(*events, r, 1) + ", time_zone " +
                                                  cell(*def, 0, 2) + ": " + strip_definer(cell(*def, 0, 3));
  }
  return fp;
}

std::vector<DbFingerprint> DbInspector::fingerprint_all(const std::string& database) {
  std::vector<DbFingerprint> out;
  for (std::size_t i = 0; i < size(); ++i) out.push_back(fingerprint(i, database));
  return out;
}

std::optional<AppliedPosition> DbInspector::applied(std::size_t index, const std::string& database) {
  auto r = execute_on(index, "SELECT epoch, seq FROM " + quote_id(database) + ".distdb_applied WHERE id = 1");
  if (!r || r->rows.empty()) return std::nullopt;
  const auto* epoch = std::get_if<std::int64_t>(&r->rows[0][0]);
  const auto* seq = std::get_if<std::int64_t>(&r->rows[0][1]);
  if (epoch == nullptr || seq == nullptr) return std::nullopt;
  return AppliedPosition{*epoch, *seq};
}

bool DbInspector::wait_for_same_position(const std::string& database, std::chrono::milliseconds timeout,
                                         std::string* why) {
  std::vector<std::optional<AppliedPosition>> seen(size());
  const bool same = wait_until(
      [&] {
        for (std::size_t i = 0; i < size(); ++i) seen[i] = applied(i, database);
        for (std::size_t i = 0; i < size(); ++i) {
          if (!seen[i] || !(*seen[i] == *seen[0])) return false;
        }
        return true;
      },
      timeout);
  if (!same && why != nullptr) {
    std::ostringstream out;
    out << "members did not reach the same log position within " << timeout.count() << " ms:";
    for (std::size_t i = 0; i < size(); ++i) {
      out << " server " << i + 1 << " ";
      if (seen[i]) {
        out << "epoch " << seen[i]->epoch << " seq " << seen[i]->seq << ";";
      } else {
        out << "unreadable;";
      }
    }
    *why = out.str();
  }
  return same;
}

std::map<std::string, std::string> DbInspector::bookkeeping(std::size_t index, const std::string& database) {
  std::map<std::string, std::string> out;
  const std::string db = quote_id(database);
  auto one = [&](const std::string& name, const std::string& sql) {
    auto r = execute_on(index, sql);
    if (!r) {
      out[name] = "error: " + r.error().message;
      return;
    }
    std::string text;
    for (const Row& row : r->rows) {
      text += "(";
      for (std::size_t c = 0; c < row.size(); ++c) text += (c ? ", " : "") + render_value(row[c]);
      text += ")";
    }
    out[name] = text;
  };
  for (const std::string& t : kBookkeeping)
    one(t + " definition", "SHOW CREATE TABLE " + db + "." + quote_id(t));
  one("distdb_meta rows", "SELECT name, value FROM " + db + ".distdb_meta ORDER BY name");
  one("distdb_applied rows", "SELECT id, epoch, seq FROM " + db + ".distdb_applied ORDER BY id");
  one("triggers on distdb tables",
      "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = " + quote_str(database) +
          " AND EVENT_OBJECT_TABLE LIKE 'distdb\\_%' ORDER BY TRIGGER_NAME");
  return out;
}

std::optional<std::int64_t> DbInspector::log_last_seq(std::size_t index, const std::string& database) {
  auto r = execute_on(index, "SELECT COALESCE(MAX(seq), 0) FROM " + quote_id(database) + ".distdb_log");
  if (!r || r->rows.empty()) return std::nullopt;
  if (const auto* i = std::get_if<std::int64_t>(&r->rows[0][0])) return *i;
  if (const auto* s = std::get_if<std::string>(&r->rows[0][0])) return std::atoll(s->c_str());
  return std::nullopt;
}

std::string DbInspector::log_digest(std::size_t index, const std::string& database, std::int64_t upto) {
  auto r = execute_on(
      index, "SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT_WS(':', seq, epoch, statements))), 0) FROM " +
                 quote_id(database) + ".distdb_log WHERE seq <= " + std::to_string(upto));
  if (!r) return "error: " + r.error().message;
  if (r->rows.empty()) return "(no answer)";
  return render_value(r->rows[0][0]) + " entries, CRC32 sum " + render_value(r->rows[0][1]);
}

std::string fingerprint_diff(const std::vector<DbFingerprint>& prints,
                             const std::vector<std::string>& labels) {
  auto label = [&](std::size_t i) {
    return i < labels.size() ? labels[i] : "server " + std::to_string(i + 1);
  };
  std::ostringstream out;
  for (std::size_t i = 0; i < prints.size(); ++i) {
    if (!prints[i].ok()) out << label(i) << ": no fingerprint: " << prints[i].error << "\n";
  }
  std::set<std::string> keys;
  for (const auto& p : prints) {
    for (const auto& [k, v] : p.facets) keys.insert(k);
  }
  for (const std::string& k : keys) {
    std::vector<const std::string*> values;
    bool differ = false;
    for (const auto& p : prints) {
      auto it = p.facets.find(k);
      values.push_back(it == p.facets.end() ? nullptr : &it->second);
    }
    for (const auto* v : values) {
      const bool both_missing = v == nullptr && values[0] == nullptr;
      const bool equal = v != nullptr && values[0] != nullptr && *v == *values[0];
      if (!both_missing && !equal) differ = true;
    }
    if (!differ) continue;
    out << k << ":";
    for (std::size_t i = 0; i < values.size(); ++i) {
      out << (i ? " |" : "") << " " << label(i) << ": " << (values[i] ? *values[i] : "(absent)");
    }
    out << "\n";
  }
  return out.str();
}

std::vector<std::pair<std::string, std::string>> user_objects(const std::vector<DbFingerprint>& prints) {
  std::set<std::pair<std::string, std::string>> found;
  static const std::regex object(R"(^(\w+) `((?:[^`]|``)*)`: )");
  for (const auto& p : prints) {
    for (const auto& [k, v] : p.facets) {
      std::smatch m;
      if (!std::regex_search(k, m, object) || m[1] == "database") continue;
      std::string name = m[2];
      for (auto at = name.find("``"); at != std::string::npos; at = name.find("``", at + 1))
        name.erase(at, 1);
      found.insert({m[1], name});
    }
  }
  return {found.begin(), found.end()};
}

}  // namespace distdb::test
