#include "storage/mariadb_common.hpp"

#include <errmsg.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <mutex>
#include <string>

namespace distdb::mariadb {
namespace {

constexpr unsigned int kBinaryCharset = 63;

// Error codes that mean the session is gone (mysqld_error.h and errmsg.h
// have them, but not every version of them has every name).
constexpr unsigned int kErServerShutdown = 1053;
constexpr unsigned int kErConnectionKilled = 1927;
constexpr unsigned int kErReadOnlyTransaction = 1792;
constexpr unsigned int kCrServerGone = 2006;

constexpr const char* kSessionSqlMode =
    "SET SESSION sql_mode = REGEXP_REPLACE(@@SESSION.sql_mode, "
    "'(^|,)(ANSI_QUOTES|NO_BACKSLASH_ESCAPES|IGNORE_SPACE|ANSI|ORACLE|MSSQL|DB2|POSTGRESQL|MAXDB)(?=,|$)', "
    "'')";
constexpr unsigned int kCrServerLost = 2013;
constexpr unsigned int kCrServerLostExtended = 2055;

bool is_integer_type(enum_field_types t) {
  switch (t) {
    case MYSQL_TYPE_TINY:
    case MYSQL_TYPE_SHORT:
    case MYSQL_TYPE_LONG:
    case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_LONGLONG:
    case MYSQL_TYPE_YEAR:
      return true;
    default:
      return false;
  }
}

// Types whose bytes are binary when the column's character set is "binary".
// (Other types, e.g. DATETIME, also report charset 63 but are text.)
bool may_be_binary(enum_field_types t) {
  switch (t) {
    case MYSQL_TYPE_TINY_BLOB:
    case MYSQL_TYPE_MEDIUM_BLOB:
    case MYSQL_TYPE_LONG_BLOB:
    case MYSQL_TYPE_BLOB:
    case MYSQL_TYPE_STRING:
    case MYSQL_TYPE_VAR_STRING:
    case MYSQL_TYPE_VARCHAR:
    case MYSQL_TYPE_BIT:
    case MYSQL_TYPE_GEOMETRY:
      return true;
    default:
      return false;
  }
}

}  // namespace

Value field_value(const MYSQL_FIELD& field, const char* data, unsigned long length) {
  if (data == nullptr) return std::monostate{};
  const std::string_view text(data, length);
  if (is_integer_type(field.type)) {
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec == std::errc() && end == text.data() + text.size()) return v;
    return std::string(text);  // BIGINT UNSIGNED above INT64_MAX: text, exactly
  }
  if (field.type == MYSQL_TYPE_FLOAT || field.type == MYSQL_TYPE_DOUBLE) {
    double v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec == std::errc() && end == text.data() + text.size()) return v;
    return std::string(text);  // "inf"-like oddities: keep what the server said
  }
  if (field.charsetnr == kBinaryCharset && may_be_binary(field.type)) {
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(data);
    return Blob{std::vector<std::uint8_t>(bytes, bytes + length)};
  }
  // DECIMAL stays text (no precision loss), as do dates, times, JSON, ENUM, ...
  return std::string(text);
}

void init_library_once() {
  // mysql_init() initializes the library on first use, but not in a
  // thread-safe way; pools open connections from several threads.
  static std::once_flag once;
  std::call_once(once, [] { mysql_library_init(0, nullptr, nullptr); });
}

bool is_connection_lost(unsigned int code) {
  return code == kCrServerGone || code == kCrServerLost || code == kCrServerLostExtended ||
         code == kErServerShutdown || code == kErConnectionKilled;
}

bool is_client_error(unsigned int code) { return code >= 2000 && code < 3000; }

void set_session_options(MYSQL* conn, const DbConfig& config, StorageAccess access) {
  const auto connect_s = static_cast<unsigned int>(std::max(1, (config.connect_timeout_ms + 999) / 1000));
  const my_bool no = 0;
  mysql_options(conn, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  mysql_options(conn, MYSQL_OPT_CONNECT_TIMEOUT, &connect_s);
  mysql_options(conn, MYSQL_OPT_READ_TIMEOUT, &kReadTimeoutS);
  mysql_options(conn, MYSQL_OPT_WRITE_TIMEOUT, &kWriteTimeoutS);
  mysql_options(conn, MYSQL_OPT_RECONNECT, &no);  // see the top of mariadb_storage.cpp
  // LOAD DATA LOCAL would read a file of the node's own host: never. The
  // connector reads this option as an unsigned int (a my_bool here would
  // leave three bytes of whatever follows it, and switch it on).
  const unsigned int no_local_infile = 0;
  mysql_options(conn, MYSQL_OPT_LOCAL_INFILE, &no_local_infile);
  // The server then refuses, with error 1792, anything that would change
  // data: a stored function that writes, NEXTVAL/SETVAL, DDL, EXECUTE
  // IMMEDIATE, temporary tables. A statement cannot switch it back: SET
  // TRANSACTION is never sent as a read, and changing it inside the
  // statement's own transaction is refused (1568).
  // The server reads statements the way distdb's classifier does
  // (sql/statement.hpp): a backslash escapes in '...', "..." is a string,
  // a built-in function name needs its '(' right after it. The sql_mode
  // flags that change that — ANSI_QUOTES, NO_BACKSLASH_ESCAPES,
  // IGNORE_SPACE and the combinations that imply them — are taken off
  // every session of distdb's, whatever the server's global mode; the
  // other flags (strictness, ...) stay as the server's administrator set
  // them. (MariaDB accepts the empty items the removal leaves.)
  mysql_options(conn, MYSQL_INIT_COMMAND, kSessionSqlMode);
  if (access == StorageAccess::read_only)
    mysql_options(conn, MYSQL_INIT_COMMAND, "SET SESSION TRANSACTION READ ONLY");
}

std::string server_address(const DbConfig& config) {
  if (!config.unix_socket.empty()) return config.unix_socket;
  return config.host + ":" + std::to_string(config.port);
}

Error call_error(MYSQL* conn, std::string_view sql, bool& broken) {
  const unsigned int code = mysql_errno(conn);
  std::string message = mysql_error(conn);
  const std::string statement(sql.substr(0, 200));
  if (is_connection_lost(code)) {
    broken = true;
    return Error(ErrorKind::outcome_unknown,
                 "connection to MariaDB lost during '" + statement + "' (it may or may not have run): " + message,
                 static_cast<int>(code));
  }
  if (is_client_error(code)) {
    // Some other client-side failure (out of sync, out of memory).
    broken = true;
    return Error(ErrorKind::outcome_unknown, "MariaDB client error during '" + statement + "': " + message,
                 static_cast<int>(code));
  }
  if (code == kErReadOnlyTransaction) {
    // Only a read-only session (StorageAccess::read_only) gets this: say why.
    message +=
        ": distdb ran this statement as a read, and reads run where nothing may change, so that no "
        "member changes alone. It changes data (through a stored function, a sequence, DDL or dynamic "
        "SQL): send it as a write, e.g. DO f() instead of SELECT f()";
  }
  return Error(ErrorKind::sql, message + " (MariaDB " + std::to_string(code) + ")", static_cast<int>(code));
}

ResultSet read_result(MYSQL_RES* res) {
  ResultSet rs;
  const unsigned int nfields = mysql_num_fields(res);
  const MYSQL_FIELD* fields = mysql_fetch_fields(res);
  for (unsigned int i = 0; i < nfields; ++i) rs.columns.emplace_back(fields[i].name, fields[i].name_length);
  while (MYSQL_ROW row = mysql_fetch_row(res)) {
    const unsigned long* lengths = mysql_fetch_lengths(res);
    Row out;
    out.reserve(nfields);
    for (unsigned int i = 0; i < nfields; ++i) out.push_back(field_value(fields[i], row[i], lengths[i]));
    rs.rows.push_back(std::move(out));
  }
  return rs;
}

Result<ResultSet> result_of(MYSQL* conn, MYSQL_RES* stored, std::string_view sql, bool& broken) {
  if (stored != nullptr) {
    ResultGuard guard(stored);
    return read_result(stored);
  }
  if (mysql_field_count(conn) > 0) return call_error(conn, sql, broken);  // rows were due but could not be read
  ResultSet rs;
  const auto affected = mysql_affected_rows(conn);
  rs.rows_affected = affected == static_cast<my_ulonglong>(-1) ? 0 : affected;
  rs.last_insert_id = mysql_insert_id(conn);
  return rs;
}

}  // namespace distdb::mariadb
