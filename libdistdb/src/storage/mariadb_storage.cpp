// The MariaDB/MySQL backend, through MariaDB Connector/C.
//
// Connection handling. The client library's automatic reconnect
// (MYSQL_OPT_RECONNECT) is left off on purpose: it would silently open a
// fresh session in the middle of a transaction, and the statements after it
// would run in autocommit mode. Instead, a call that loses the connection
// fails (outcome_unknown when the statement may have run) and marks the
// connection broken; the NEXT call reconnects first. A transaction that was
// open on the lost connection is forgotten: the server rolls back an
// unprepared transaction when its session ends, and a prepared one stays
// prepared for recover()/commit()/rollback() by id.
//
// Two-phase commit uses XA:
//   begin    XA START 'id'
//   prepare  XA END 'id'; XA PREPARE 'id'
//   commit   XA COMMIT 'id'
//   rollback [XA END 'id';] XA ROLLBACK 'id'   (unknown id = success)
//   recover  XA RECOVER
//
// What MariaDB 10.11 does after XA PREPARE (found by experiment while
// writing this file, against 10.11.19):
//   1. The session stays bound to the prepared transaction: the same
//      connection can NOT XA START another one (error 1399 XAER_RMFAIL,
//      "... in the PREPARED state"), nor touch a table; it may only
//      XA COMMIT/ROLLBACK that transaction (or run table-less statements).
//   2. Another connection can NOT commit it while the preparing session is
//      alive: XA COMMIT answers 1397 XAER_NOTA "Unknown XID", although
//      XA RECOVER lists the id. Once the preparing session has ended, the
//      transaction is "detached" and any connection can commit or roll it
//      back (it also survives a server crash, see recover()).
//   3. Dangerous race: committing from another connection while the
//      preparing session is still being torn down (mysql_close() returned,
//      the server thread not yet gone) sometimes answers OK without
//      committing: the transaction disappears from XA RECOVER but keeps its
//      locks and reappears as prepared after a server restart. In a loop of
//      300 transactions about 2% were lost this way; waiting until the old
//      session has left information_schema.PROCESSLIST before anyone
//      commits made all 300 commit correctly.
//   4. mysql_reset_connection() and mysql_change_user() do detach the
//      prepared transaction, but leave the session broken: the next
//      transaction's INSERT fails with 1031 "Storage engine InnoDB of the
//      table ... doesn't have this option". So they are not used.
//
// Hence prepare() ends by DETACHING the transaction: it closes the session,
// opens a new one, and waits until the old session is gone from the process
// list. This works whichever way points 1 and 2 go (a server where the same
// session could go on, or another session could commit, loses nothing but
// one reconnect per transaction), and commit() may then come from any
// connection, including this one. The cost is a TCP connect and login per
// prepared transaction.
#include "storage/mariadb_storage.hpp"

#include <mysql.h>
#include <errmsg.h>
#include <mysqld_error.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

namespace distdb {
namespace {

using Clock = std::chrono::steady_clock;

// Client read/write timeouts. They must exceed InnoDB's lock wait timeout
// (50 s by default): a statement that waits for a row lock must get the
// server's own timeout error (the connection survives), not a client
// timeout that drops the connection.
constexpr unsigned int kReadTimeoutS = 90;
constexpr unsigned int kWriteTimeoutS = 90;

// How long prepare() waits for the previous session to disappear.
constexpr auto kDetachDeadline = std::chrono::seconds(10);

constexpr unsigned int kBinaryCharset = 63;

// Server error codes (mysqld_error.h has them, but not every version of it
// has every name).
constexpr unsigned int kErBadDb = 1049;
constexpr unsigned int kErXaerNota = 1397;
constexpr unsigned int kErXaRbrollback = 1402;
constexpr unsigned int kErXaRbtimeout = 1613;
constexpr unsigned int kErXaRbdeadlock = 1614;
constexpr unsigned int kErServerShutdown = 1053;
constexpr unsigned int kErConnectionKilled = 1927;
// Client error codes: the connection dropped while a statement was in flight.
constexpr unsigned int kCrServerGone = 2006;
constexpr unsigned int kCrServerLost = 2013;
constexpr unsigned int kCrServerLostExtended = 2055;

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

std::string quote_identifier(const std::string& name) {
  std::string out = "`";
  for (const char c : name) {
    if (c == '`') out += '`';
    out += c;
  }
  return out + "`";
}

std::string xa(std::string_view verb, const TxnId& id) {
  // Ids are checked by is_valid_txn_id() before they get here: no quoting needed.
  return "XA " + std::string(verb) + " '" + id + "'";
}

Error invalid_id(const TxnId& id) {
  return Error(ErrorKind::invalid_request, "invalid transaction id '" + id + "'");
}

// --- Typed values -----------------------------------------------------------

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

// --- The connection -----------------------------------------------------------

class MariadbStorage final : public Storage {
 public:
  explicit MariadbStorage(DbConfig config) : config_(std::move(config)) {}
  ~MariadbStorage() override { disconnect(); }
  MariadbStorage(const MariadbStorage&) = delete;
  MariadbStorage& operator=(const MariadbStorage&) = delete;

  Status connect() {
    disconnect();
    auto conn = open_session(true);
    if (!conn) return conn.error();
    conn_ = *conn;
    return {};
  }

  std::string_view backend_name() const override { return "mariadb"; }
  bool prepare_survives_crash() const override { return true; }

  Result<ResultSet> execute(std::string_view sql) override {
    if (state_ != TxnState::none) {
      return Error(ErrorKind::invalid_request,
                   "execute() while transaction '" + txn_ + "' is open on this connection");
    }
    return query(sql);
  }

  Status begin(const TxnId& id) override {
    if (!is_valid_txn_id(id)) return invalid_id(id);
    if (state_ != TxnState::none) {
      return Error(ErrorKind::invalid_request,
                   "begin('" + id + "'): transaction '" + txn_ + "' is already open on this connection");
    }
    auto rs = query(xa("START", id));
    if (!rs) return rs.error();
    txn_ = id;
    state_ = TxnState::active;
    return {};
  }

  Result<ResultSet> execute_in(const TxnId& id, std::string_view sql) override {
    if (auto st = check_active(id, "execute_in"); !st) return st.error();
    return query(sql);
  }

  Status prepare(const TxnId& id) override {
    if (auto st = check_active(id, "prepare"); !st) return st;
    if (state_ == TxnState::active) {
      auto ended = query(xa("END", id));
      if (!ended) return ended.error();
      state_ = TxnState::idle;
    }
    auto prepared = query(xa("PREPARE", id));
    if (!prepared) return prepared.error();
    forget_txn();
    detach_prepared();
    return {};
  }

  Status commit(const TxnId& id) override {
    if (!is_valid_txn_id(id)) return invalid_id(id);
    if (state_ != TxnState::none) {
      return Error(ErrorKind::invalid_request, "commit('" + id + "'): transaction '" + txn_ +
                                                   "' is open on this connection and not prepared");
    }
    auto rs = query(xa("COMMIT", id));
    if (rs) return {};
    Error e = rs.error();
    if (e.kind == ErrorKind::sql && static_cast<unsigned int>(e.code) == kErXaerNota) {
      // Either the transaction is unknown (already committed or rolled
      // back), or a session that is still connected holds it (point 2 at
      // the top). Say which, so that the caller knows a retry can help.
      auto listed = recover();
      if (listed && std::find(listed->begin(), listed->end(), id) != listed->end()) {
        e.message = "XA COMMIT '" + id + "': the transaction is prepared but still attached to another live "
                    "session; retry once that session has ended (" + e.message + ")";
      }
    }
    return e;
  }

  Status rollback(const TxnId& id) override {
    if (!is_valid_txn_id(id)) return invalid_id(id);
    if (state_ != TxnState::none && txn_ != id) {
      return Error(ErrorKind::invalid_request, "rollback('" + id + "'): transaction '" + txn_ +
                                                   "' is open on this connection");
    }
    const bool was_open = state_ != TxnState::none;
    if (state_ == TxnState::active) {
      // XA ROLLBACK refuses an ACTIVE transaction (1399); end it first. An
      // error here (e.g. the branch was already rolled back by a deadlock)
      // is not final: XA ROLLBACK below says what the state really is.
      (void)query(xa("END", id));
    }
    forget_txn();
    auto rs = query(xa("ROLLBACK", id));
    if (rs) return {};
    const Error& e = rs.error();
    const auto code = static_cast<unsigned int>(e.code);
    if (e.kind == ErrorKind::sql &&
        (code == kErXaerNota || code == kErXaRbrollback || code == kErXaRbtimeout || code == kErXaRbdeadlock)) {
      return {};  // unknown, or already rolled back: the outcome asked for
    }
    // A transaction that was never prepared dies with its session, so a
    // lost connection still means "rolled back"; a prepared one may remain.
    if (was_open && (e.kind == ErrorKind::outcome_unknown || e.kind == ErrorKind::storage_unavailable)) return {};
    return e;
  }

  Result<std::vector<TxnId>> recover() override {
    auto rs = query("XA RECOVER");
    if (!rs) return rs.error();
    std::vector<TxnId> ids;
    // Columns: formatID, gtrid_length, bqual_length, data (gtrid then bqual).
    for (const Row& row : rs->rows) {
      if (row.size() < 4 || !std::holds_alternative<std::int64_t>(row[1])) continue;
      const auto gtrid_length = static_cast<std::size_t>(std::get<std::int64_t>(row[1]));
      std::string data;
      if (const auto* text = std::get_if<std::string>(&row[3])) data = *text;
      if (const auto* blob = std::get_if<Blob>(&row[3])) data.assign(blob->bytes.begin(), blob->bytes.end());
      if (gtrid_length > data.size()) continue;
      TxnId id = data.substr(0, gtrid_length);
      // XA transactions of other applications may share the server.
      if (is_valid_txn_id(id)) ids.push_back(std::move(id));
    }
    return ids;
  }

  Status ping() override {
    if (conn_ != nullptr && !broken_ && mysql_ping(conn_) == 0) return {};
    mark_broken();
    return ensure_connected();
  }

 private:
  enum class TxnState {
    none,    // no transaction begun on this session
    active,  // XA START done
    idle,    // XA END done, XA PREPARE not (yet, or it failed)
  };

  Status check_active(const TxnId& id, const char* op) const {
    if (!is_valid_txn_id(id)) return invalid_id(id);
    if (state_ == TxnState::none || txn_ != id) {
      return Error(ErrorKind::invalid_request,
                   std::string(op) + "('" + id + "'): no such open transaction on this connection"
                   " (a lost connection rolls an unprepared transaction back)");
    }
    if (state_ == TxnState::idle && std::string_view(op) == "execute_in") {
      return Error(ErrorKind::invalid_request, "execute_in('" + id + "'): the transaction has been ended");
    }
    return {};
  }

  void forget_txn() {
    txn_.clear();
    state_ = TxnState::none;
  }

  void disconnect() {
    if (conn_ != nullptr) mysql_close(conn_);
    conn_ = nullptr;
    broken_ = false;
  }

  void mark_broken() {
    broken_ = true;
    // The server ends an unprepared transaction with the session.
    forget_txn();
  }

  // Opens a session, creating the database when it does not exist
  // (and `create_db` allows it).
  Result<MYSQL*> open_session(bool create_db) {
    init_library_once();
    MYSQL* conn = mysql_init(nullptr);
    if (conn == nullptr) return Error(ErrorKind::storage_unavailable, "mysql_init: out of memory");
    set_options(conn);
    const char* socket = config_.unix_socket.empty() ? nullptr : config_.unix_socket.c_str();
    const char* database = config_.database.empty() ? nullptr : config_.database.c_str();
    if (mysql_real_connect(conn, config_.host.c_str(), config_.user.c_str(), config_.password.c_str(), database,
                           config_.port, socket, 0) != nullptr) {
      return conn;
    }
    const unsigned int code = mysql_errno(conn);
    Error e(ErrorKind::storage_unavailable, "cannot connect to MariaDB at " + where() + ": " + mysql_error(conn),
            static_cast<int>(code));
    mysql_close(conn);
    if (code == kErBadDb && create_db) return create_database_and_connect();
    return e;
  }

  // The database is missing: connect without one, create it, select it.
  Result<MYSQL*> create_database_and_connect() {
    const std::string database = config_.database;
    config_.database.clear();
    auto bare = open_session(false);
    config_.database = database;
    if (!bare) return bare.error();
    MYSQL* conn = *bare;
    const std::string sql = "CREATE DATABASE IF NOT EXISTS " + quote_identifier(database);
    if (mysql_real_query(conn, sql.data(), sql.size()) != 0 || mysql_select_db(conn, database.c_str()) != 0) {
      const unsigned int code = mysql_errno(conn);
      Error e(is_client_error(code) ? ErrorKind::storage_unavailable : ErrorKind::config,
              "database '" + database + "' does not exist at " + where() + " and could not be created: " +
                  mysql_error(conn),
              static_cast<int>(code));
      mysql_close(conn);
      return e;
    }
    return conn;
  }

  void set_options(MYSQL* conn) const {
    const auto connect_s = static_cast<unsigned int>(std::max(1, (config_.connect_timeout_ms + 999) / 1000));
    const my_bool no = 0;
    mysql_options(conn, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_options(conn, MYSQL_OPT_CONNECT_TIMEOUT, &connect_s);
    mysql_options(conn, MYSQL_OPT_READ_TIMEOUT, &kReadTimeoutS);
    mysql_options(conn, MYSQL_OPT_WRITE_TIMEOUT, &kWriteTimeoutS);
    mysql_options(conn, MYSQL_OPT_RECONNECT, &no);  // see the top of this file
    mysql_options(conn, MYSQL_OPT_LOCAL_INFILE, &no);
  }

  std::string where() const {
    if (!config_.unix_socket.empty()) return config_.unix_socket;
    return config_.host + ":" + std::to_string(config_.port);
  }

  // Reconnects if the previous call lost the session (only ever between calls).
  Status ensure_connected() {
    if (conn_ != nullptr && !broken_) return {};
    return connect();
  }

  Error call_error(std::string_view sql) {
    const unsigned int code = mysql_errno(conn_);
    std::string message = mysql_error(conn_);
    const std::string statement(sql.substr(0, 200));
    if (is_connection_lost(code)) {
      mark_broken();
      return Error(ErrorKind::outcome_unknown,
                   "connection to MariaDB lost during '" + statement + "' (it may or may not have run): " + message,
                   static_cast<int>(code));
    }
    if (is_client_error(code)) {
      // Some other client-side failure (out of sync, out of memory): the
      // session cannot be trusted any more.
      mark_broken();
      return Error(ErrorKind::outcome_unknown, "MariaDB client error during '" + statement + "': " + message,
                   static_cast<int>(code));
    }
    return Error(ErrorKind::sql, message + " (MariaDB " + std::to_string(code) + ")", static_cast<int>(code));
  }

  // Runs one statement (the server refuses several: no CLIENT_MULTI_STATEMENTS).
  Result<ResultSet> query(std::string_view sql) {
    if (auto st = ensure_connected(); !st) return st.error();
    if (mysql_real_query(conn_, sql.data(), sql.size()) != 0) return call_error(sql);
    Result<ResultSet> out = ResultSet{};
    MYSQL_RES* res = mysql_store_result(conn_);
    if (res != nullptr) {
      ResultGuard guard(res);
      out = read_result(res);
    } else if (mysql_field_count(conn_) > 0) {
      return call_error(sql);  // rows were due but could not be read
    } else {
      ResultSet rs;
      const auto affected = mysql_affected_rows(conn_);
      rs.rows_affected = affected == static_cast<my_ulonglong>(-1) ? 0 : affected;
      rs.last_insert_id = mysql_insert_id(conn_);
      out = std::move(rs);
    }
    // A CALL returns a trailing status result; drain anything left so that
    // the session stays usable for the next statement.
    for (int more = mysql_next_result(conn_); more == 0; more = mysql_next_result(conn_)) {
      if (MYSQL_RES* extra = mysql_store_result(conn_)) mysql_free_result(extra);
    }
    if (mysql_errno(conn_) != 0) return call_error(sql);
    return out;
  }

  // After XA PREPARE: end this session so the prepared transaction becomes
  // detached (committable from any session), then open a new one and wait
  // until the server has really finished with the old one (points 2 and 3
  // at the top). If the server cannot be reached now, the next call
  // reconnects; a server that went away has dropped the old session anyway.
  void detach_prepared() {
    const unsigned long old_thread = mysql_thread_id(conn_);
    disconnect();
    if (auto st = connect(); !st) {
      broken_ = true;
      return;
    }
    const std::string probe =
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " + std::to_string(old_thread);
    const auto deadline = Clock::now() + kDetachDeadline;
    while (Clock::now() < deadline) {
      auto rs = query(probe);
      if (!rs || rs->rows.empty() || rs->rows[0].empty()) return;
      const auto* count = std::get_if<std::int64_t>(&rs->rows[0][0]);
      if (count == nullptr || *count == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  DbConfig config_;
  MYSQL* conn_ = nullptr;
  bool broken_ = false;  // the session was lost: reconnect before the next statement
  TxnId txn_;            // the transaction begun on this session (state_ != none)
  TxnState state_ = TxnState::none;
};

}  // namespace

Result<std::unique_ptr<Storage>> open_mariadb_storage(const DbConfig& config) {
  auto storage = std::make_unique<MariadbStorage>(config);
  if (auto st = storage->connect(); !st) return st.error();
  return std::unique_ptr<Storage>(std::move(storage));
}

}  // namespace distdb
