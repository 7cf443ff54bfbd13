#include "node/snapshot.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <cstdio>

namespace distdb {

namespace {

constexpr std::size_t kRowsPerInsert = 200;

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

// Names of the user tables, with the statement that creates each.
Result<std::vector<std::pair<std::string, std::string>>> user_tables(Storage& storage) {
  std::vector<std::pair<std::string, std::string>> out;
  if (is_mariadb(storage)) {
    auto names = storage.execute("SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'");
    if (!names) return names.error();
    for (const Row& row : names->rows) {
      const auto* name = std::get_if<std::string>(&row[0]);
      if (name == nullptr || name->rfind("distdb_", 0) == 0) continue;
      auto ddl = storage.execute("SHOW CREATE TABLE " + quote_identifier(*name, true));
      if (!ddl) return ddl.error();
      out.emplace_back(*name, std::get<std::string>(ddl->rows.at(0).at(1)));
    }
    return out;
  }
  auto rs = storage.execute(
      "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL "
      "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'distdb_%' ORDER BY name");
  if (!rs) return rs.error();
  for (const Row& row : rs->rows) out.emplace_back(std::get<std::string>(row[0]), std::get<std::string>(row[1]));
  return out;
}

}  // namespace

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

Result<std::string> make_snapshot(Storage& storage) {
  const bool mariadb = is_mariadb(storage);
  auto tables = user_tables(storage);
  if (!tables) return tables.error();
  std::vector<std::string> statements;
  for (const auto& [name, ddl] : *tables) {
    statements.push_back(ddl);
    auto rows = storage.execute("SELECT * FROM " + quote_identifier(name, mariadb));
    if (!rows) return rows.error();
    std::string insert;
    std::size_t in_batch = 0;
    for (const Row& row : rows->rows) {
      insert += in_batch == 0 ? "INSERT INTO " + quote_identifier(name, mariadb) + " VALUES " : ", ";
      insert += "(";
      for (std::size_t i = 0; i < row.size(); ++i) insert += (i ? ", " : "") + literal(row[i], mariadb);
      insert += ")";
      if (++in_batch == kRowsPerInsert) {
        statements.push_back(std::move(insert));
        insert.clear();
        in_batch = 0;
      }
    }
    if (in_batch > 0) statements.push_back(std::move(insert));
  }
  if (!mariadb) {
    // Indexes, views and triggers, after the tables they depend on.
    auto rest = storage.execute(
        "SELECT sql FROM sqlite_master WHERE type != 'table' AND sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite_%' AND tbl_name NOT LIKE 'distdb_%' ORDER BY type, name");
    if (!rest) return rest.error();
    for (const Row& row : rest->rows) statements.push_back(std::get<std::string>(row[0]));
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartArray();
  for (const auto& s : statements) w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  w.EndArray();
  return std::string(buf.GetString(), buf.GetSize());
}

Status restore_snapshot(Storage& storage, const std::string& snapshot) {
  const bool mariadb = is_mariadb(storage);
  rapidjson::Document doc;
  doc.Parse(snapshot.data(), snapshot.size());
  if (doc.HasParseError() || !doc.IsArray()) return Error(ErrorKind::invalid_request, "unreadable snapshot");
  auto tables = user_tables(storage);
  if (!tables) return tables.error();
  std::vector<std::string> statements;
  statements.push_back(mariadb ? "SET FOREIGN_KEY_CHECKS = 0" : "PRAGMA foreign_keys = OFF");
  for (const auto& table : *tables) statements.push_back("DROP TABLE IF EXISTS " + quote_identifier(table.first, mariadb));
  for (const auto& s : doc.GetArray()) {
    if (!s.IsString()) return Error(ErrorKind::invalid_request, "unreadable snapshot");
    statements.emplace_back(s.GetString(), s.GetStringLength());
  }
  statements.push_back(mariadb ? "SET FOREIGN_KEY_CHECKS = 1" : "PRAGMA foreign_keys = ON");
  for (const auto& s : statements) {
    if (auto rs = storage.execute(s); !rs) {
      Error e = rs.error();
      e.message = "installing a snapshot: " + e.message;
      return e;
    }
  }
  return {};
}

}  // namespace distdb
