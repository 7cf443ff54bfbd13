#include "node/checksum.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <vector>

#include "node/snapshot.hpp"

namespace distdb {
namespace {

std::string render(const Value& v) {
  if (is_null(v)) return "\\N";
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&v)) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", *d);
    return buf;
  }
  if (const auto* s = std::get_if<std::string>(&v)) return "'" + *s + "'";
  const auto& bytes = std::get<Blob>(v).bytes;
  std::string out = "x'";
  for (const std::uint8_t b : bytes) {
    out += "0123456789abcdef"[b >> 4];
    out += "0123456789abcdef"[b & 15];
  }
  return out + "'";
}

std::string text_at(const Row& row, std::size_t i) {
  if (i >= row.size()) return {};
  if (const auto* s = std::get_if<std::string>(&row[i])) return *s;
  return render(row[i]);
}

// A definition without its DEFINER=`user`@`host` clause: the definer is the
// account of the connection that created the object, whose host part may
// differ from member to member.
std::string without_definer(std::string sql) {
  const auto at = sql.find("DEFINER=");
  if (at == std::string::npos) return sql;
  std::size_t end = at + 8;
  // `user`@`host` or user@host: up to the next blank outside backquotes.
  bool quoted = false;
  while (end < sql.size() && (quoted || sql[end] != ' ')) {
    if (sql[end] == '`') quoted = !quoted;
    ++end;
  }
  sql.erase(at, end - at);
  return sql;
}

bool is_ours(const std::string& name) { return name.rfind("distdb_", 0) == 0; }

// In transaction `txn`, or in autocommit mode when there is none (an entry
// applied outside a transaction, as MariaDB's DDL entries are).
Result<ResultSet> run(Storage& storage, const TxnId& txn, const std::string& sql) {
  return txn.empty() ? storage.execute(sql) : storage.execute_in(txn, sql);
}

std::string quote(const std::string& name, char q) {
  std::string out(1, q);
  for (const char c : name) {
    if (c == q) out.push_back(q);
    out.push_back(c);
  }
  out.push_back(q);
  return out;
}

class Digest {
 public:
  Digest() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Digest() { EVP_MD_CTX_free(ctx_); }
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;

  void line(std::string_view text) {
    EVP_DigestUpdate(ctx_, text.data(), text.size());
    EVP_DigestUpdate(ctx_, "\n", 1);
  }

  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_DigestFinal_ex(ctx_, md, &size);
    std::string out;
    for (unsigned int i = 0; i < size && i < 16; ++i) {
      out += "0123456789abcdef"[md[i] >> 4];
      out += "0123456789abcdef"[md[i] & 15];
    }
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

// Runs `sql` in the transaction and adds every row of its answer (columns
// from `first` on) to the digest, under `label`.
Status add_rows(Storage& storage, const TxnId& txn, Digest& digest, const std::string& label, const std::string& sql,
                std::size_t first = 0, bool definer_free = false) {
  auto rs = run(storage, txn, sql);
  if (!rs) return rs.error();
  for (const Row& row : rs->rows) {
    std::string line = label;
    for (std::size_t i = first; i < row.size(); ++i) {
      line += '|';
      line += definer_free ? without_definer(text_at(row, i)) : text_at(row, i);
    }
    digest.line(line);
  }
  return {};
}

Result<std::string> mariadb_digest(Storage& storage, const TxnId& txn) {
  Digest digest;
  auto tables = storage.execute_in(
      txn,
      "SELECT TABLE_NAME, TABLE_TYPE, AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
      "DATABASE() ORDER BY TABLE_NAME");
  if (!tables) return tables.error();
  std::string checksum_list;
  for (const Row& row : tables->rows) {
    const std::string name = text_at(row, 0);
    const std::string type = text_at(row, 1);
    if (is_ours(name)) continue;
    // An invalid view (its table dropped) is not carried by full copies
    // (node/snapshot.cpp): leave it out here too.
    if (type == "VIEW" && !view_is_valid(storage, txn, name)) continue;
    digest.line("object|" + type + "|" + name + "|auto_increment=" + text_at(row, 2));
    const std::string q = quote(name, '`');
    if (type == "VIEW") {
      if (auto st = add_rows(storage, txn, digest, "view", "SHOW CREATE VIEW " + q, 1, true); !st) return st.error();
    } else if (type == "SEQUENCE") {
      if (auto st = add_rows(storage, txn, digest, "sequence", "SELECT * FROM " + q); !st) return st.error();
    } else {
      if (auto st = add_rows(storage, txn, digest, "table", "SHOW CREATE TABLE " + q, 1); !st) return st.error();
      checksum_list += (checksum_list.empty() ? "" : ", ") + q;
    }
  }
  // CHECKSUM TABLE answers "database.table | checksum": the name is left
  // out (it is in the object lines above, in the same order).
  if (!checksum_list.empty()) {
    if (auto st = add_rows(storage, txn, digest, "rows", "CHECKSUM TABLE " + checksum_list, 1); !st) {
      return st.error();
    }
  }
  const std::pair<const char*, const char*> objects[] = {
      {"routine",
       "SELECT ROUTINE_TYPE, ROUTINE_NAME, ROUTINE_DEFINITION, IS_DETERMINISTIC, SQL_DATA_ACCESS, SECURITY_TYPE, "
       "SQL_MODE, DTD_IDENTIFIER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() "
       "ORDER BY ROUTINE_TYPE, ROUTINE_NAME"},
      {"trigger",
       "SELECT TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_ORDER, ACTION_TIMING, ACTION_STATEMENT, "
       "SQL_MODE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY TRIGGER_NAME"},
      {"event",
       "SELECT EVENT_NAME, EVENT_DEFINITION, EVENT_TYPE, INTERVAL_VALUE, INTERVAL_FIELD, STATUS, SQL_MODE "
       "FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() ORDER BY EVENT_NAME"},
  };
  for (const auto& [label, sql] : objects) {
    if (auto st = add_rows(storage, txn, digest, label, sql); !st) return st.error();
  }
  return digest.hex();
}

Result<std::string> sqlite_digest(Storage& storage, const TxnId& txn) {
  Digest digest;
  auto objects = storage.execute_in(
      txn,
      "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name");
  if (!objects) return objects.error();
  for (const Row& row : objects->rows) {
    const std::string type = text_at(row, 0);
    const std::string name = text_at(row, 1);
    if (is_ours(name) || is_ours(text_at(row, 2))) continue;
    digest.line("object|" + type + "|" + name + "|" + text_at(row, 3));
    if (type != "table") continue;
    auto rows = run(storage, txn, "SELECT * FROM " + quote(name, '"'));
    if (!rows) return rows.error();
    std::vector<std::string> lines;
    lines.reserve(rows->rows.size());
    for (const Row& r : rows->rows) {
      std::string line;
      for (const Value& v : r) line += render(v) + "|";
      lines.push_back(std::move(line));
    }
    std::sort(lines.begin(), lines.end());  // the same rows in any order
    for (const auto& line : lines) digest.line(line);
  }
  // AUTOINCREMENT counters.
  auto counters = run(storage, txn, "SELECT name FROM sqlite_master WHERE name = 'sqlite_sequence'");
  if (!counters) return counters.error();
  if (!counters->rows.empty()) {
    auto rs = run(storage, txn, "SELECT name, seq FROM sqlite_sequence ORDER BY name");
    if (!rs) return rs.error();
    for (const Row& r : rs->rows) {
      if (!is_ours(text_at(r, 0))) digest.line("counter|" + text_at(r, 0) + "|" + text_at(r, 1));
    }
  }
  return digest.hex();
}

}  // namespace

Result<std::string> database_digest(Storage& storage, const TxnId& txn) {
  return storage.backend_name() == "mariadb" ? mariadb_digest(storage, txn) : sqlite_digest(storage, txn);
}

}  // namespace distdb
