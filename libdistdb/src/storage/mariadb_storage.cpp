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
//   begin    XA START 'id'    (sent with the transaction's first statements)
//   prepare  XA END 'id'; XA PREPARE 'id'   (one round trip; with
//            execute_batch_and_prepare(), the same one as the statements)
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
// Hence a prepared transaction is decided ON THE SESSION THAT PREPARED IT
// (point 1 allows exactly that): prepare() sets that session aside, bound to
// its transaction, and the next statements run on another one (a spare
// session kept from an earlier commit, so that steady traffic opens no
// connections); commit() and rollback() of that id go to the bound session,
// which then becomes a spare. No other session ever decides a transaction
// whose preparing session may still be alive, so point 3 cannot happen in
// the normal path.
//
// A transaction is decided from another session only when its preparing
// session is gone: the node restarted (recover()), or the bound session was
// lost (server restart, network). For the latter, the lost session's thread
// id is remembered and such a decision first waits until the server has
// really finished with it (it has left information_schema.PROCESSLIST),
// which made all 300 of 300 commits in the experiment of point 3 correct.
// A Storage that is destroyed with transactions still bound to its sessions
// closes them and waits until they have left the server, so that another
// Storage may decide them at once. After a restart of the node itself, its
// old sessions ended with its process, normally well before the new process
// has started, connected and recovered. The exception is a session that was
// executing a request when its client was killed: the server finishes the
// request before it notices, and that request may end in XA PREPARE. Had the
// new process listed the prepared transactions before, it would not know of
// that one, which would then stay prepared with nobody to decide it, holding
// its locks (seen once in a fault test: a node killed mid-prepare). So the
// first recover() of a Storage first waits until no session opened before
// its own (a lower thread id: the server numbers sessions in order) of the
// same user on the same database is still executing a statement.
//
// Round trips. A replicated write's statements are most of its cost when
// each is a round trip of its own, so sessions are opened with
// CLIENT_MULTI_STATEMENTS and execute_batch_in() sends a run of statements
// joined by ";" in one request. That is only safe for text the server is
// certain to split back exactly at our separators: sql::single_statement()
// (sql/statement_boundary.hpp) proves it for each statement, whatever the
// session's sql_mode, and only plain INSERT/UPDATE/DELETE/REPLACE are
// joined (one result each, so results map to statements one to one). The
// server stops at the first statement that fails; the rest are sent again
// after it. Every other text goes alone, and one that is not provably a
// single statement (a client's "SELECT 1; DROP TABLE t" among them) runs
// with multi-statements switched off for that request, so the flag never
// lets a client run two statements where it could run one before.
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
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sql/statement_boundary.hpp"
#include "storage/mariadb_common.hpp"
#include "storage/mariadb_row_events.hpp"
#include "util/log_internal.hpp"

namespace distdb {
namespace {

using mariadb::init_library_once;
using mariadb::is_client_error;
using mariadb::is_connection_lost;
using mariadb::read_result;
using mariadb::ResultGuard;

using Clock = std::chrono::steady_clock;

// A client's login checked against the server (check_mariadb_login) waits
// no longer than this for each step.
constexpr int kLoginCheckTimeoutS = 5;

// How long a decision from another session waits for a lost preparing
// session to disappear from the server (point 3 at the top).
constexpr auto kDepartureDeadline = std::chrono::seconds(10);
// How long the first recover() waits for sessions of an earlier process
// still executing (see the top): a statement waiting for a row lock gives up
// after InnoDB's lock wait timeout, 50 s by default.
constexpr auto kEarlierSessionsDeadline = std::chrono::seconds(60);
// Idle sessions kept for reuse after their transaction was decided.
constexpr std::size_t kMaxSpareSessions = 2;

// The most statement text execute_batch_in() joins into one request (well
// under max_allowed_packet, 16 MiB by default in 10.11).
constexpr std::size_t kMaxJoinedBytes = 1 << 20;
constexpr std::string_view kSeparator = "\n;\n";

// Server error codes (mysqld_error.h has them, but not every version of it
// has every name).
constexpr unsigned int kErBadDb = 1049;
constexpr unsigned int kErXaerNota = 1397;
constexpr unsigned int kErXaRbrollback = 1402;
constexpr unsigned int kErXaRbtimeout = 1613;
constexpr unsigned int kErXaRbdeadlock = 1614;

// XA_RB*: the server rolled the transaction back itself (for XA ROLLBACK,
// the outcome asked for).
bool is_xa_rolled_back(unsigned int code) {
  return code == kErXaRbrollback || code == kErXaRbtimeout || code == kErXaRbdeadlock;
}

// The first word of a statement, uppercased, after blanks and /* */
// comments; empty when it starts otherwise.
std::string leading_keyword(std::string_view sql) {
  std::size_t i = 0;
  for (;;) {
    while (i < sql.size() && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r')) ++i;
    if (sql.substr(i, 2) != "/*") break;
    const auto close = sql.find("*/", i + 2);
    if (close == std::string_view::npos) return {};
    i = close + 2;
  }
  std::string word;
  while (i < sql.size() && ((sql[i] >= 'a' && sql[i] <= 'z') || (sql[i] >= 'A' && sql[i] <= 'Z'))) {
    word += static_cast<char>(sql[i] >= 'a' ? sql[i] - 'a' + 'A' : sql[i]);
    ++i;
  }
  return word;
}

// A statement execute_batch_in() may join with others: provably one
// statement (see the top of the file), giving exactly one result.
std::optional<std::string_view> joinable(std::string_view sql) {
  auto text = sql::single_statement(sql);
  if (!text) return std::nullopt;
  const std::string keyword = leading_keyword(*text);
  if (keyword != "INSERT" && keyword != "UPDATE" && keyword != "DELETE" && keyword != "REPLACE") return std::nullopt;
  return text;
}

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


// --- The connection -----------------------------------------------------------

class MariadbStorage final : public Storage {
 public:
  MariadbStorage(DbConfig config, StorageAccess access)
      : config_(std::move(config)), read_only_(access == StorageAccess::read_only) {}
  // Closing a session that holds a prepared transaction leaves the
  // transaction prepared on the server, for whoever opens the database next
  // (recover()); that one may decide it as soon as this returns, because
  // the closed sessions are waited for (point 3 at the top).
  ~MariadbStorage() override {
    for (auto& held : held_) {
      departed_threads_.push_back(mysql_thread_id(held.conn));
      mysql_close(held.conn);
    }
    held_.clear();
    // Whoever decides those transactions next (another Storage, the next
    // process) must not do it while the server is still tearing their
    // sessions down (point 3 at the top): wait here until they have left,
    // on any session at hand (after prepare() there is no current one).
    if (!departed_threads_.empty()) {
      if (conn_ == nullptr || broken_) {
        disconnect();
        if (!spare_.empty()) {
          conn_ = spare_.back();
          spare_.pop_back();
        } else if (auto opened = open_session(false)) {
          conn_ = *opened;
        }
      }
      if (conn_ != nullptr) wait_for_departed_sessions();
    }
    disconnect();
    for (MYSQL* spare : spare_) mysql_close(spare);
  }
  MariadbStorage(const MariadbStorage&) = delete;
  MariadbStorage& operator=(const MariadbStorage&) = delete;

  Status connect() {
    disconnect();
    // A read-only session never creates the database (it could not).
    auto conn = open_session(!read_only_);
    if (!conn) return conn.error();
    conn_ = *conn;
    server_version_ = mysql_get_server_version(conn_);
    if (first_thread_id_ == 0) first_thread_id_ = mysql_thread_id(conn_);
    return {};
  }

  std::string_view backend_name() const override { return "mariadb"; }
  bool prepare_survives_crash() const override { return true; }
  unsigned long server_version() const override { return server_version_; }

  Result<ResultSet> execute(std::string_view sql) override {
    if (state_ != TxnState::none) {
      return Error(ErrorKind::invalid_request,
                   "execute() while transaction '" + txn_ + "' is open on this connection");
    }
    return query(sql);
  }

  Status scan(std::string_view sql, const RowVisitor& on_row) override {
    if (state_ != TxnState::none) {
      return Error(ErrorKind::invalid_request,
                   "scan() while transaction '" + txn_ + "' is open on this connection");
    }
    if (!sql::single_statement(sql)) return Error(ErrorKind::invalid_request, "scan() runs one statement");
    if (auto st = ensure_connected(); !st) return st;
    if (mysql_real_query(conn_, sql.data(), sql.size()) != 0) return call_error(sql);
    // mysql_use_result: rows are read from the socket as they are fetched,
    // never all at once.
    MYSQL_RES* res = mysql_use_result(conn_);
    if (res == nullptr) {
      if (mysql_field_count(conn_) > 0) return call_error(sql);
      return {};
    }
    Status result;
    {
      mariadb::ResultGuard guard(res);  // frees (and drains) what is left
      const unsigned int nfields = mysql_num_fields(res);
      const MYSQL_FIELD* fields = mysql_fetch_fields(res);
      Row out;
      while (MYSQL_ROW row = mysql_fetch_row(res)) {
        const unsigned long* lengths = mysql_fetch_lengths(res);
        out.clear();
        for (unsigned int i = 0; i < nfields; ++i)
          out.push_back(mariadb::field_value(fields[i], row[i], lengths[i]));
        if (result = on_row(out); !result) break;
      }
      if (result && mysql_errno(conn_) != 0) result = call_error(sql);  // the stream broke off
    }
    if (conn_ != nullptr && !broken_) {
      for (int more = mysql_next_result(conn_); more == 0; more = mysql_next_result(conn_)) {
        if (MYSQL_RES* extra = mysql_store_result(conn_)) mysql_free_result(extra);
      }
    }
    return result;
  }

  Status begin(const TxnId& id) override {
    if (!is_valid_txn_id(id)) return invalid_id(id);
    if (state_ != TxnState::none) {
      return Error(ErrorKind::invalid_request,
                   "begin('" + id + "'): transaction '" + txn_ + "' is already open on this connection");
    }
    // No round trip yet: XA START leads the transaction's first request.
    txn_ = id;
    state_ = TxnState::starting;
    return {};
  }

  Result<ResultSet> execute_in(const TxnId& id, std::string_view sql) override {
    if (auto st = check_active(id, "execute_in"); !st) return st.error();
    if (auto st = start_alone(); !st) return st.error();
    return query(sql);
  }

  std::vector<Result<ResultSet>> execute_batch_in(const TxnId& id,
                                                  const std::vector<std::string_view>& statements) override {
    std::vector<Result<ResultSet>> results;
    if (auto st = check_active(id, "execute_in"); !st) {
      results.emplace_back(st.error());
      return results;
    }
    results.reserve(statements.size());
    std::vector<std::string_view> run;
    std::size_t i = 0;
    while (i < statements.size()) {
      // The longest run of joinable statements from i (one at least).
      run.clear();
      std::size_t bytes = 0;
      while (i + run.size() < statements.size()) {
        auto text = joinable(statements[i + run.size()]);
        if (!text || (!run.empty() && bytes + text->size() > kMaxJoinedBytes)) break;
        bytes += text->size() + kSeparator.size();
        run.push_back(*text);
      }
      if (run.size() < 2) {
        if (auto st = start_alone(); !st) {
          results.emplace_back(st.error());
          break;
        }
        results.push_back(query(statements[i]));
        ++i;
      } else {
        query_joined_in_txn(run, results);
        i += run.size();
      }
      if (!results.back()) break;
    }
    return results;
  }

  std::vector<Result<ResultSet>> execute_batch_and_prepare(const TxnId& id,
                                                           const std::vector<std::string_view>& statements,
                                                           std::optional<Status>& prepared) override {
    prepared.reset();
    // XA END and XA PREPARE ride along only when the whole batch can be
    // joined; otherwise this is execute_batch_in() then prepare().
    bool all_joinable = !statements.empty();
    std::size_t bytes = 0;
    std::vector<std::string_view> run;
    run.reserve(statements.size() + 2);
    for (const std::string_view sql : statements) {
      auto text = joinable(sql);
      if (!text || bytes + text->size() > kMaxJoinedBytes) {
        all_joinable = false;
        break;
      }
      bytes += text->size() + kSeparator.size();
      run.push_back(*text);
    }
    if (!all_joinable || !check_active(id, "execute_in").ok()) {
      return Storage::execute_batch_and_prepare(id, statements, prepared);
    }
    const std::string end = xa("END", id);
    const std::string prepare = xa("PREPARE", id);
    run.push_back(end);
    run.push_back(prepare);
    std::vector<Result<ResultSet>> results;
    query_joined_in_txn(run, results);
    const std::size_t n = statements.size();
    if (results.size() > n) {
      prepared = settle_prepare(id, results, n);
      results.erase(results.begin() + static_cast<std::ptrdiff_t>(n), results.end());
    }
    return results;
  }

  Status prepare(const TxnId& id) override {
    if (auto st = check_active(id, "prepare"); !st) return st;
    if (state_ == TxnState::idle) {
      auto prepared = query(xa("PREPARE", id));
      if (!prepared) return prepared.error();
      hold_prepared(id);
      return {};
    }
    const std::string end = xa("END", id);
    const std::string prepare = xa("PREPARE", id);
    std::vector<Result<ResultSet>> results;
    query_joined_in_txn({end, prepare}, results);
    return settle_prepare(id, results, 0);
  }

  Status commit(const TxnId& id) override {
    if (!is_valid_txn_id(id)) return invalid_id(id);
    if (state_ != TxnState::none) {
      return Error(ErrorKind::invalid_request, "commit('" + id + "'): transaction '" + txn_ +
                                                   "' is open on this connection and not prepared");
    }
    if (HeldSession* held = find_held(id)) return decide_on_held(*held, "COMMIT");
    return decide_detached(id, "COMMIT");
  }

  Status rollback(const TxnId& id) override {
    if (!is_valid_txn_id(id)) return invalid_id(id);
    if (state_ != TxnState::none && txn_ != id) {
      return Error(ErrorKind::invalid_request, "rollback('" + id + "'): transaction '" + txn_ +
                                                   "' is open on this connection");
    }
    if (HeldSession* held = find_held(id)) {
      Status st = decide_on_held(*held, "ROLLBACK");
      if (st || st.error().kind != ErrorKind::sql) return st;
      const auto code = static_cast<unsigned int>(st.error().code);
      if (code == kErXaerNota || is_xa_rolled_back(code)) return {};
      return st;
    }
    const bool was_open = state_ != TxnState::none;
    if (!was_open) return decide_detached(id, "ROLLBACK");
    if (state_ == TxnState::starting) {
      forget_txn();  // XA START was never sent: nothing on the server
      return {};
    }
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
        (code == kErXaerNota || is_xa_rolled_back(code))) {
      return {};  // unknown, or already rolled back: the outcome asked for
    }
    // A transaction that was never prepared dies with its session, so a
    // lost connection still means "rolled back"; a prepared one may remain.
    if (was_open && (e.kind == ErrorKind::outcome_unknown || e.kind == ErrorKind::storage_unavailable)) return {};
    return e;
  }

  Result<std::vector<TxnId>> recover() override {
    if (!earlier_sessions_waited_) {
      if (auto st = wait_for_earlier_sessions(); !st) return st.error();
      earlier_sessions_waited_ = true;
    }
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

  // --- Effects (mariadb_row_events.hpp): the binary log's row events.

  bool captures_effects() const override { return !read_only_; }

  Status start_capture() override {
    if (tap_) return {};
    // The dump registers as a replica with an id of its own, above the ids
    // servers use (4,000,000,000 and up), drawn at random: a server drops
    // an older dump that registered the same id, and process ids repeat
    // (every node of a set of containers may be pid 1).
    static std::mt19937 rng{std::random_device{}()};
    static std::mutex rng_mutex;
    std::uint32_t dump_id = 0;
    {
      std::lock_guard lock(rng_mutex);
      dump_id = 4'000'000'000u + static_cast<std::uint32_t>(rng() % 294'967'000u);
    }
    auto tap = mariadb::RowEventTap::open(config_, dump_id);
    if (!tap) return tap.error();
    tap_ = std::move(*tap);
    return {};
  }

  void stop_capture() override { tap_.reset(); }

  Result<std::string> captured_effects(const TxnId& id) override {
    if (!tap_) return Error(ErrorKind::internal, "captured_effects('" + id + "'): no capture running");
    auto effects = tap_->effects_of(id);
    // A tap that failed is broken for good: the next start_capture() opens
    // a new one (the transactions prepared meanwhile cannot be captured, and
    // their callers roll them back).
    if (!effects && effects.error().kind != ErrorKind::sql) tap_.reset();
    return effects;
  }

  // BINLOG's refusals that say this database does not hold the
  // coordinator's data: a row to change or delete is missing (1032), a key
  // (1062) or a foreign key (1451, 1452) does not fit.
  bool refuses_effects(const Error& e) const override {
    return e.kind == ErrorKind::sql && (e.code == 1032 || e.code == 1062 || e.code == 1451 || e.code == 1452);
  }

  Status apply_effects_in(const TxnId& id, std::string_view effects) override {
    if (auto st = check_active(id, "execute_in"); !st) return st;
    if (effects.empty()) return {};
    auto parsed = mariadb::parse_effects(effects);
    if (!parsed) return parsed.error();
    // Checked before the server sees them: they come from the network, and
    // BINLOG applies rows without checking table privileges. A coordinator
    // of this cluster captures rows of its own database only (the
    // classifier refuses writes to others) and never of distdb's tables;
    // anything else is refused. The rows name the coordinator's database,
    // which on this member may be called otherwise.
    std::string from;
    for (const auto& event : *parsed) {
      if (event.table.empty()) continue;
      const auto dot = event.table.find('.');
      const std::string db = event.table.substr(0, dot);
      const std::string table = dot == std::string::npos ? std::string() : event.table.substr(dot + 1);
      if (from.empty()) from = db;
      if (db != from) {
        return Error(ErrorKind::invalid_request, "the effects hold rows of two databases ('" + from +
                                                     "' and '" + db +
                                                     "'): refused (a cluster replicates one database)");
      }
      if (table.rfind("distdb_", 0) == 0) {
        return Error(ErrorKind::invalid_request,
                     "the effects hold rows of distdb's own table '" + table + "': refused");
      }
    }
    for (const char* system : {"mysql", "information_schema", "performance_schema", "sys"}) {
      if (from == system) {
        return Error(ErrorKind::invalid_request,
                     "the effects hold rows of the system schema '" + from + "': refused");
      }
    }
    std::string renamed;
    if (!from.empty() && from != config_.database) {
      auto r = mariadb::rename_database(effects, from, config_.database);
      if (!r) return r.error();
      renamed = std::move(*r);
      effects = renamed;
    }
    auto statements = mariadb::apply_statements(effects, kMaxApplyStatementBytes);
    if (!statements) return statements.error();
    if (auto st = start_alone(); !st) return st;
    // Each BINLOG statement alone in its request: one carrying row events
    // must be the last of a request (mariadb_row_events.hpp).
    for (const std::string& sql : *statements) {
      auto rs = query(sql);
      if (!rs) return rs.error();
    }
    return {};
  }

 private:
  // A BINLOG statement is cut below this (the server's max_allowed_packet
  // is 16 MiB by default; base64 adds a third).
  static constexpr std::size_t kMaxApplyStatementBytes = 4u << 20;

  enum class TxnState {
    none,      // no transaction begun on this session
    starting,  // begun; XA START goes with the first statements
    active,    // XA START done
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

  // Sends XA START alone, for a transaction whose first statement cannot be
  // joined with it.
  Status start_alone() {
    if (state_ != TxnState::starting) return {};
    auto started = query(xa("START", txn_));
    if (!started) return start_failed(started.error());
    if (state_ == TxnState::starting) state_ = TxnState::active;
    return {};
  }

  // An XA START that failed. The transaction does not exist on the server.
  // A refusal by the server is no statement's outcome (the executor would
  // take an SQL error for the first statement's): it is reported as an
  // internal error.
  Error start_failed(Error error) {
    if (error.kind == ErrorKind::sql) {
      error.kind = ErrorKind::internal;
      error.message = "XA START '" + txn_ + "' refused: " + error.message;
    }
    if (state_ == TxnState::starting) forget_txn();
    return error;
  }

  // query_joined() for statements of the open transaction; while XA START is
  // still to be sent, it leads the request: a round trip less per
  // transaction.
  void query_joined_in_txn(const std::vector<std::string_view>& statements,
                           std::vector<Result<ResultSet>>& results) {
    if (state_ != TxnState::starting) {
      query_joined(statements, results);
      return;
    }
    const std::string start = xa("START", txn_);
    std::vector<std::string_view> with_start;
    with_start.reserve(statements.size() + 1);
    with_start.push_back(start);
    with_start.insert(with_start.end(), statements.begin(), statements.end());
    const std::size_t at = results.size();
    query_joined(with_start, results);
    Result<ResultSet> started = std::move(results[at]);
    results.erase(results.begin() + static_cast<std::ptrdiff_t>(at));
    if (!started) {
      results.emplace_back(start_failed(started.error()));
      return;
    }
    if (state_ == TxnState::starting) state_ = TxnState::active;  // not if the session broke meanwhile
  }

  // Reads the answers to XA END and XA PREPARE, at `at` in `results`, and on
  // success hands the session to the prepared transaction.
  Status settle_prepare(const TxnId& id, const std::vector<Result<ResultSet>>& results, std::size_t at) {
    if (results.size() <= at) return Error(ErrorKind::internal, "MariaDB did not answer XA END");
    if (!results[at]) return results[at].error();
    if (state_ == TxnState::active) state_ = TxnState::idle;  // not if the session broke meanwhile
    if (results.size() <= at + 1) return Error(ErrorKind::internal, "MariaDB did not answer XA PREPARE");
    if (!results[at + 1]) return results[at + 1].error();
    hold_prepared(id);
    return {};
  }

  // This session now belongs to the prepared transaction `id` (point 1 at
  // the top) until commit() or rollback(); the next statement takes another.
  void hold_prepared(const TxnId& id) {
    forget_txn();
    held_.push_back(HeldSession{id, conn_});
    conn_ = nullptr;
    broken_ = false;
  }

  // A session bound to the prepared transaction `txn` (see the top).
  struct HeldSession {
    TxnId txn;
    MYSQL* conn;
  };

  HeldSession* find_held(const TxnId& id) {
    for (HeldSession& held : held_) {
      if (held.txn == id) return &held;
    }
    return nullptr;
  }

  // XA COMMIT or XA ROLLBACK of a held transaction, on its own session. On
  // success, or an answer that settles it, the session becomes a spare. If
  // the session is lost, the transaction may stay prepared on the server:
  // the error says the outcome is unknown, and a retry decides it from
  // another session once this one has left the server.
  Status decide_on_held(HeldSession& held, std::string_view verb) {
    const std::string sql = xa(verb, held.txn);
    MYSQL* conn = held.conn;
    const bool ok = mysql_real_query(conn, sql.data(), sql.size()) == 0;
    const unsigned int code = ok ? 0 : mysql_errno(conn);
    const std::string message = ok ? std::string() : mysql_error(conn);
    if (ok) {
      if (MYSQL_RES* res = mysql_store_result(conn)) mysql_free_result(res);
    }
    const bool lost = !ok && (is_connection_lost(code) || is_client_error(code));
    const bool settled = ok || code == kErXaerNota || is_xa_rolled_back(code);
    if (lost) {
      departed_threads_.push_back(mysql_thread_id(conn));
      mysql_close(conn);
      release_held(held, nullptr);
      return Error(ErrorKind::outcome_unknown,
                   "connection to MariaDB lost during '" + sql + "' (it may or may not have run): " + message,
                   static_cast<int>(code));
    }
    if (settled) {
      release_held(held, conn);
      if (ok) return {};
    }
    return Error(ErrorKind::sql, message + " (MariaDB " + std::to_string(code) + ")", static_cast<int>(code));
  }

  // Forgets `held`; its session, when still usable, is kept as a spare.
  void release_held(HeldSession& held, MYSQL* reusable) {
    held_.erase(held_.begin() + (&held - held_.data()));
    if (reusable == nullptr) return;
    if (spare_.size() < kMaxSpareSessions) {
      spare_.push_back(reusable);
    } else {
      mysql_close(reusable);
    }
  }

  // Before a transaction is decided from a session other than the one that
  // prepared it: waits until every lost preparing session has left the
  // server (point 3 at the top).
  void wait_for_departed_sessions() {
    if (departed_threads_.empty()) return;
    const auto deadline = Clock::now() + kDepartureDeadline;
    while (!departed_threads_.empty() && Clock::now() < deadline) {
      const std::string probe = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " +
                                std::to_string(departed_threads_.back());
      auto rs = query(probe);
      if (!rs) return;  // the caller's own statement will report the trouble
      const auto* count = rs->rows.empty() || rs->rows[0].empty() ? nullptr : std::get_if<std::int64_t>(&rs->rows[0][0]);
      if (count == nullptr || *count == 0) {
        departed_threads_.pop_back();
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    departed_threads_.clear();
  }

  // See the top of the file: waits (up to kEarlierSessionsDeadline) until
  // no session opened before this Storage's first one, of the same user on
  // the same database, is executing a statement.
  Status wait_for_earlier_sessions() {
    if (auto st = ensure_connected(); !st) return st;
    if (first_thread_id_ == 0 || config_.database.empty()) return {};
    // A server numbers sessions from 1 again after a restart: a session of
    // ours below the first one means it restarted since, and a restarted
    // server has no session of an earlier process left to wait for.
    if (mysql_thread_id(conn_) < first_thread_id_) return {};
    const std::string probe =
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = " + quote_literal(config_.user) +
        " AND DB = " + quote_literal(config_.database) + " AND ID < " + std::to_string(first_thread_id_) +
        " AND ID <> CONNECTION_ID() AND COMMAND NOT IN ('Sleep', 'Daemon')";
    const auto deadline = Clock::now() + kEarlierSessionsDeadline;
    bool reported = false;
    for (;;) {
      auto rs = query(probe);
      if (!rs) return rs.error();
      const auto* count = rs->rows.empty() || rs->rows[0].empty() ? nullptr : std::get_if<std::int64_t>(&rs->rows[0][0]);
      if (count == nullptr || *count == 0) return {};
      if (Clock::now() >= deadline) {
        DISTDB_LOG(warn) << "[!] " << *count << " earlier session(s) on database '" << config_.database
                         << "' still executing after "
                         << std::chrono::duration_cast<std::chrono::seconds>(kEarlierSessionsDeadline).count()
                         << " s; recovering without waiting for them";
        return {};
      }
      if (!reported) {
        DISTDB_LOG(info) << "[*] Waiting for " << *count << " earlier session(s) on database '" << config_.database
                         << "' to finish before recovering prepared transactions";
        reported = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  std::string quote_literal(const std::string& text) {
    std::string out(text.size() * 2 + 1, '\0');
    out.resize(mysql_real_escape_string(conn_, out.data(), text.data(), text.size()));
    return "'" + out + "'";
  }

  bool still_prepared(const TxnId& id) {
    auto listed = recover();
    return listed && std::find(listed->begin(), listed->end(), id) != listed->end();
  }

  // XA COMMIT or XA ROLLBACK of a prepared transaction that no session of
  // this storage holds: one left by an earlier process, or whose session
  // was lost. Its old session may not have finished leaving the server:
  // the server then answers XAER_NOTA although XA RECOVER lists the id
  // (point 2 at the top), and the decision is retried until the transaction
  // is detached. XAER_NOTA for an id that is not listed means it was
  // decided already: success for a rollback, an error for a commit (the
  // caller knows whether its commit went through before).
  Status decide_detached(const TxnId& id, std::string_view verb) {
    wait_for_departed_sessions();
    const bool is_rollback = verb == "ROLLBACK";
    const auto deadline = Clock::now() + kDepartureDeadline;
    for (;;) {
      auto rs = query(xa(verb, id));
      if (rs) return {};
      Error e = rs.error();
      const auto code = static_cast<unsigned int>(e.code);
      if (e.kind != ErrorKind::sql) return e;
      if (is_rollback && is_xa_rolled_back(code)) return {};
      if (code != kErXaerNota) return e;
      if (!still_prepared(id)) {
        if (is_rollback) return {};  // unknown: the outcome asked for
        return e;
      }
      if (Clock::now() >= deadline) {
        e.message = "XA " + std::string(verb) + " '" + id +
                    "': the transaction is prepared but still attached to another live session; retry once that "
                    "session has ended (" + e.message + ")";
        return e;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
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
    // Multi-statements are on for execute_batch_in(); query() switches
    // them off for any text that is not provably one statement.
    if (mysql_real_connect(conn, config_.host.c_str(), config_.user.c_str(), config_.password.c_str(), database,
                           config_.port, socket, CLIENT_MULTI_STATEMENTS) != nullptr) {
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
    mariadb::set_session_options(conn, config_,
                                 read_only_ ? StorageAccess::read_only : StorageAccess::read_write);
  }

  std::string where() const { return mariadb::server_address(config_); }

  // Reconnects if the previous call lost the session (only ever between calls).
  Status ensure_connected() {
    if (conn_ != nullptr && !broken_) return {};
    if (conn_ == nullptr && !spare_.empty()) {
      conn_ = spare_.back();
      spare_.pop_back();
      return {};
    }
    return connect();
  }

  Error call_error(std::string_view sql) {
    bool broken = false;
    Error e = mariadb::call_error(conn_, sql, broken);
    if (broken) mark_broken();
    return e;
  }

  // Runs one statement. Text that is not provably a single statement runs
  // with multi-statements off, so the server refuses a second one in it as
  // it would on a session opened without them.
  Result<ResultSet> query(std::string_view sql) {
    if (auto st = ensure_connected(); !st) return st.error();
    const bool single = sql::single_statement(sql).has_value();
    if (!single && mysql_set_server_option(conn_, MYSQL_OPTION_MULTI_STATEMENTS_OFF) != 0) return call_error(sql);
    Result<ResultSet> out = run_query(sql);
    if (!single && conn_ != nullptr && !broken_ &&
        mysql_set_server_option(conn_, MYSQL_OPTION_MULTI_STATEMENTS_ON) != 0) {
      // The statement's own result stands; the session, unusable for
      // batches now, is replaced before the next call (an open transaction
      // on it is lost, as with any broken session).
      mark_broken();
    }
    return out;
  }

  Result<ResultSet> run_query(std::string_view sql) {
    if (mysql_real_query(conn_, sql.data(), sql.size()) != 0) return call_error(sql);
    Result<ResultSet> out = current_result(sql);
    if (!out) return out;
    // A CALL returns a trailing status result; drain anything left so that
    // the session stays usable for the next statement.
    for (int more = mysql_next_result(conn_); more == 0; more = mysql_next_result(conn_)) {
      if (MYSQL_RES* extra = mysql_store_result(conn_)) mysql_free_result(extra);
    }
    if (mysql_errno(conn_) != 0) return call_error(sql);
    return out;
  }

  // The result of the statement the session has just answered.
  Result<ResultSet> current_result(std::string_view sql) {
    bool broken = false;
    Result<ResultSet> out = mariadb::result_of(conn_, mysql_store_result(conn_), sql, broken);
    if (broken) mark_broken();
    return out;
  }

  // Sends `statements` (each provably one statement giving one result)
  // joined in one request and appends one result per statement the server
  // ran: it stops at the first that fails, whose error is the last result.
  void query_joined(const std::vector<std::string_view>& statements, std::vector<Result<ResultSet>>& results) {
    if (auto st = ensure_connected(); !st) {
      results.emplace_back(st.error());
      return;
    }
    std::string text;
    for (const std::string_view sql : statements) {
      if (!text.empty()) text += kSeparator;
      text += sql;
    }
    if (mysql_real_query(conn_, text.data(), text.size()) != 0) {
      results.emplace_back(call_error(statements[0]));
      return;
    }
    for (std::size_t k = 0;; ++k) {
      results.push_back(current_result(statements[k]));
      if (!results.back()) return;
      const int more = mysql_next_result(conn_);
      if (more > 0) {  // the next statement failed (or the connection went)
        if (k + 1 < statements.size()) {
          results.emplace_back(call_error(statements[k + 1]));
        } else {
          results.back() = call_error(statements[k]);
        }
        return;
      }
      if (k + 1 == statements.size()) {
        if (more == 0) {
          // More results than statements: the text did not split as
          // proven. Never expected; the session's state is unknown.
          mark_broken();
          results.back() = Error(ErrorKind::internal, "MariaDB returned more results than statements sent");
        }
        return;
      }
      if (more < 0) {
        results.emplace_back(Error(ErrorKind::internal, "MariaDB returned fewer results than statements sent"));
        return;
      }
    }
  }

  DbConfig config_;
  const bool read_only_;              // StorageAccess::read_only: every transaction READ ONLY
  unsigned long server_version_ = 0;  // of the last session opened by connect()
  MYSQL* conn_ = nullptr;
  bool broken_ = false;  // the session was lost: reconnect before the next statement
  TxnId txn_;            // the transaction begun on this session (state_ != none)
  TxnState state_ = TxnState::none;
  std::vector<HeldSession> held_;               // prepared, awaiting their decision
  std::vector<MYSQL*> spare_;                   // idle sessions for the next statements
  std::vector<unsigned long> departed_threads_;  // lost preparing sessions, maybe still on the server
  unsigned long first_thread_id_ = 0;            // of this Storage's first session
  bool earlier_sessions_waited_ = false;         // by the first recover()
  std::unique_ptr<mariadb::RowEventTap> tap_;    // start_capture(): the binary log's row events
};

}  // namespace

Status check_mariadb_login(const DbConfig& config, const std::string& user, const std::string& password) {
  init_library_once();
  MYSQL* conn = mysql_init(nullptr);
  if (conn == nullptr) return Error(ErrorKind::storage_unavailable, "mysql_init: out of memory");
  // Over TCP, never the local socket: on a socket, MariaDB's unix_socket
  // plugin would accept an account of the node's own operating-system user
  // whatever password the client gave. And only plugins that check a
  // password (not, say, a dialog that could ask anything).
  const unsigned int tcp = MYSQL_PROTOCOL_TCP;
  const unsigned int connect_s =
      static_cast<unsigned int>(std::clamp((config.connect_timeout_ms + 999) / 1000, 1, kLoginCheckTimeoutS));
  const unsigned int io_s = kLoginCheckTimeoutS;
  const my_bool no = 0;
  mysql_options(conn, MYSQL_OPT_PROTOCOL, &tcp);
  mysql_options(conn, MYSQL_OPT_CONNECT_TIMEOUT, &connect_s);
  mysql_options(conn, MYSQL_OPT_READ_TIMEOUT, &io_s);
  mysql_options(conn, MYSQL_OPT_WRITE_TIMEOUT, &io_s);
  mysql_options(conn, MYSQL_OPT_LOCAL_INFILE, &no);
  mysql_options(conn, MARIADB_OPT_RESTRICTED_AUTH,
                "mysql_native_password,client_ed25519,caching_sha2_password");
  const char* database = config.database.empty() ? nullptr : config.database.c_str();
  const std::string where = config.host + ":" + std::to_string(config.port);
  if (mysql_real_connect(conn, config.host.c_str(), user.c_str(), password.c_str(), database, config.port,
                         nullptr, 0) != nullptr) {
    mysql_close(conn);
    return {};
  }
  const unsigned int code = mysql_errno(conn);
  const std::string message = mysql_error(conn);
  mysql_close(conn);
  // The server could not be asked; anything else (access denied, no
  // access to the database, a locked or expired account, a plugin not
  // allowed) is a refusal.
  // (A missing database is the node's business, not the client's.)
  const bool unreachable =
      code == 2002 || code == 2003 || code == 2005 || is_connection_lost(code) || code == kErBadDb;
  if (unreachable) {
    return Error(ErrorKind::storage_unavailable, "cannot reach MariaDB at " + where + ": " + message,
                 static_cast<int>(code));
  }
  return Error(ErrorKind::unauthenticated, "MariaDB at " + where + " refused the login: " + message,
               static_cast<int>(code));
}

Result<std::unique_ptr<Storage>> open_mariadb_storage(const DbConfig& config, StorageAccess access) {
  auto storage = std::make_unique<MariadbStorage>(config, access);
  if (auto st = storage->connect(); !st) return st.error();
  return std::unique_ptr<Storage>(std::move(storage));
}

}  // namespace distdb
