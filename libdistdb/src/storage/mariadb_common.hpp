// What the MariaDB backend's two ways of talking to the server share: the
// blocking sessions of MariadbStorage (mariadb_storage.cpp) and the
// non-blocking ones that serve a node's reads on its network thread
// (node/mariadb_reads.cpp). Both must open sessions the same way and turn
// the server's answers into the same values and errors, so that a read
// gives the same result whichever path ran it.
#pragma once

#include <mysql.h>

#include <string>
#include <string_view>

#include "distdb/config.hpp"
#include "distdb/error.hpp"
#include "distdb/storage.hpp"
#include "distdb/value.hpp"

namespace distdb::mariadb {

// Client read/write timeouts. They must exceed InnoDB's lock wait timeout
// (50 s by default): a statement that waits for a row lock must get the
// server's own timeout error (the connection survives), not a client
// timeout that drops the connection.
constexpr unsigned int kReadTimeoutS = 90;
constexpr unsigned int kWriteTimeoutS = 90;

// mysql_library_init(), once per process (mysql_init() does it on first
// use, but not in a thread-safe way).
void init_library_once();

// The options every session of the node's own database is opened with:
// utf8mb4, the timeouts above and the connect timeout of `config`, no
// automatic reconnect (see mariadb_storage.cpp), no LOAD DATA LOCAL; and
// for StorageAccess::read_only, every transaction of the session READ ONLY
// (an init command, so that a reconnected session is read-only too).
void set_session_options(MYSQL* conn, const DbConfig& config, StorageAccess access);

// Where `config` points, for messages: the socket path, or host:port.
std::string server_address(const DbConfig& config);

// The server or the connection went away while a call was in flight.
bool is_connection_lost(unsigned int code);
// An error of the client library (2000-2999) rather than of the server.
bool is_client_error(unsigned int code);

// The error of the call `sql` just made on `conn`: kind sql for the
// server's refusals (the session is still usable); outcome_unknown when the
// connection was lost or the client library failed, in which case `broken`
// is set (the session cannot be trusted any more).
Error call_error(MYSQL* conn, std::string_view sql, bool& broken);

// A stored result as distdb values: integers as int64 (BIGINT UNSIGNED
// above its range as exact text), FLOAT/DOUBLE as double, binary strings as
// blobs, NULL as null, everything else (DECIMAL, dates, JSON) as text.
ResultSet read_result(MYSQL_RES* res);

// One field of a fetched row, read as read_result() reads it.
Value field_value(const MYSQL_FIELD& field, const char* data, unsigned long length);

// The result of the statement the session has just answered (rows, or the
// affected-row count and insert id); call_error() when rows were due but
// could not be read.
Result<ResultSet> result_of(MYSQL* conn, MYSQL_RES* stored, std::string_view sql, bool& broken);

// Frees a MYSQL_RES however the function that got it returns.
class ResultGuard {
 public:
  explicit ResultGuard(MYSQL_RES* res) : res_(res) {}
  ~ResultGuard() {
    if (res_ != nullptr) mysql_free_result(res_);
  }
  ResultGuard(const ResultGuard&) = delete;
  ResultGuard& operator=(const ResultGuard&) = delete;

 private:
  MYSQL_RES* res_;
};

}  // namespace distdb::mariadb
