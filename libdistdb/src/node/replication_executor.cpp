#include "node/replication_executor.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <filesystem>

#include "node/checksum.hpp"
#include "node/snapshot.hpp"
#include "node/snapshot_transfer.hpp"
#include "util/log_internal.hpp"

namespace distdb {

namespace {

using core::Entry;
using core::EntryId;
using core::StatementOutcome;
using core::StorageDone;

// The log row's statements: [sql, ok, code] each, then the automatic id
// and the checksum digest when there is either ([sql, ok, code, id, digest]).
std::string encode_statements(const Entry& entry, const std::vector<StatementOutcome>& outcomes) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartArray();
  for (std::size_t i = 0; i < entry.statements.size(); ++i) {
    const core::LoggedStatement& st = entry.statements[i];
    const bool known = i < outcomes.size();
    w.StartArray();
    w.String(st.sql.data(), static_cast<rapidjson::SizeType>(st.sql.size()));
    const bool ok = known ? outcomes[i].ok : st.expect_ok;
    const int code = known ? outcomes[i].code : st.expect_code;
    const std::uint64_t insert_id = known ? outcomes[i].last_insert_id : st.expect_insert_id;
    const std::string& digest = known ? outcomes[i].digest : st.expect_digest;
    w.Bool(ok);
    w.Int(code);
    if (insert_id != 0 || !digest.empty()) {
      w.Uint64(insert_id);
      w.String(digest.data(), static_cast<rapidjson::SizeType>(digest.size()));
    }
    w.EndArray();
  }
  w.EndArray();
  return std::string(buf.GetString(), buf.GetSize());
}

bool decode_statements(std::string_view text, Entry& entry) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsArray()) return false;
  for (const auto& item : doc.GetArray()) {
    if (!item.IsArray() || (item.Size() != 3 && item.Size() != 5) || !item[0].IsString() || !item[1].IsBool() ||
        !item[2].IsInt()) {
      return false;
    }
    core::LoggedStatement st{std::string(item[0].GetString(), item[0].GetStringLength()),
                             item[1].GetBool(),
                             item[2].GetInt(),
                             0,
                             {}};
    if (item.Size() == 5) {
      if (!item[3].IsUint64() || !item[4].IsString()) return false;
      st.expect_insert_id = item[3].GetUint64();
      st.expect_digest.assign(item[4].GetString(), item[4].GetStringLength());
    }
    entry.statements.push_back(std::move(st));
  }
  return true;
}

std::optional<std::uint64_t> as_u64(const Value& v) {
  if (auto i = std::get_if<std::int64_t>(&v); i && *i >= 0) return static_cast<std::uint64_t>(*i);
  if (auto s = std::get_if<std::string>(&v)) {
    std::uint64_t out = 0;
    auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), out);
    if (ec == std::errc() && p == s->data() + s->size()) return out;
  }
  return std::nullopt;
}

// A byte string as an SQL hexadecimal literal (X'...'), which MariaDB and
// SQLite both read back as exactly those bytes.
std::string hex_literal(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out = "X'";
  out.reserve(bytes.size() * 2 + 3);
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  out += '\'';
  return out;
}

// The distdb_effects row of entry `id`: its effects, or NULL (not known yet).
std::string effects_row_statement(const EntryId& id, const std::string* effects) {
  return "INSERT INTO distdb_effects (seq, epoch, effects) VALUES (" + std::to_string(id.seq) + ", " +
         std::to_string(id.origin) + ", " +
         (effects != nullptr ? hex_literal(*effects) : std::string("NULL")) + ")";
}

std::string as_bytes(const Value& v) {
  if (const auto* b = std::get_if<Blob>(&v)) return std::string(b->bytes.begin(), b->bytes.end());
  if (const auto* t = std::get_if<std::string>(&v)) return *t;
  return {};
}

// ER_NET_PACKET_TOO_LARGE: the code a write gets that changes more than
// row replication carries (refuse_oversized_effects).
constexpr int kErNetPacketTooLarge = 1153;

std::size_t value_size(const Value& v) {
  if (const auto* text = std::get_if<std::string>(&v)) return text->size();
  if (const auto* blob = std::get_if<Blob>(&v)) return blob->bytes.size();
  return 8;
}

StorageDone failed(const Error& e) {
  StorageDone d;
  d.ok = false;
  d.error = e;
  return d;
}

}  // namespace

std::string txn_scope_prefix(const std::string& database) {
  // FNV-1a (32 bits) of the name: ids stay short (XA allows 64 bytes) and
  // within is_valid_txn_id's characters whatever the name holds.
  std::uint32_t h = 2166136261u;
  for (unsigned char c : database) {
    h ^= c;
    h *= 16777619u;
  }
  static const char* hex = "0123456789abcdef";
  std::string out = "ddb.";
  for (int shift = 28; shift >= 0; shift -= 4) out.push_back(hex[(h >> shift) & 15]);
  out.push_back('-');
  return out;
}

TxnId txn_id_for(const EntryId& id, const std::string& prefix) {
  return prefix + std::to_string(id.seq) + "-" + std::to_string(id.origin);
}

bool parse_txn_id(const TxnId& txn, const std::string& prefix, EntryId& id) {
  std::size_t start = 0;
  if (txn.rfind(prefix, 0) == 0) {
    start = prefix.size();
  } else if (txn.rfind("ddb-", 0) == 0) {
    start = 4;  // the format before ids named their database
  } else {
    return false;
  }
  const auto dash = txn.find('-', start);
  if (dash == std::string::npos) return false;
  const char* b = txn.data();
  auto [p1, e1] = std::from_chars(b + start, b + dash, id.seq);
  auto [p2, e2] = std::from_chars(b + dash + 1, b + txn.size(), id.origin);
  return e1 == std::errc() && e2 == std::errc() && p1 == b + dash && p2 == b + txn.size();
}

void ReplicationExecutor::set_txn_scope(const std::string& database) {
  txn_prefix_ = txn_scope_prefix(database);
}

TxnId ReplicationExecutor::txn_for(const EntryId& id) const {
  const auto it = recovered_ids_.find(id);
  return it != recovered_ids_.end() ? it->second : txn_id_for(id, txn_prefix_);
}

ReplicationExecutor::ReplicationExecutor(Storage& storage, Storage& reader,
                                         std::function<bool(const std::string&)> is_ddl,
                                         std::size_t log_retention, bool rows)
    : storage_(storage),
      reader_(reader),
      is_ddl_(std::move(is_ddl)),
      log_retention_(log_retention),
      mariadb_(storage.backend_name() == "mariadb"),
      rows_(rows) {}

ReplicationExecutor::~ReplicationExecutor() {
  record_effects_now();
}

core::StorageDone ReplicationExecutor::perform(const core::StorageTask& task) {
  // The driver reports failed attempts to apply entries itself, with the
  // position and the core's back-off (replication_driver.cpp,
  // log_apply_outcome): here they are only details.
  const bool driver_reports = std::holds_alternative<core::ApplyEntries>(task.op) ||
                              std::holds_alternative<core::InstallSnapshot>(task.op) ||
                              std::holds_alternative<core::PrepareEntry>(task.op);
  if (auto st = resolve_in_doubt(); !st) {
    StorageDone done = failed(st.error());
    done.id = task.id;
    if (driver_reports) {
      DISTDB_LOG(debug) << "replication storage: " << core::storage_op_name(task.op)
                        << " not attempted: " << done.error.message;
    } else {
      DISTDB_LOG(warn) << "replication storage: " << core::storage_op_name(task.op)
                       << " not attempted: " << done.error.message;
    }
    return done;
  }
  StorageDone done = std::visit(
      [&](const auto& op) -> StorageDone {
        using T = std::decay_t<decltype(op)>;
        if constexpr (std::is_same_v<T, core::PersistPromise>)
          return persist_promise(op);
        else if constexpr (std::is_same_v<T, core::PrepareEntry>)
          return prepare_entry(op);
        else if constexpr (std::is_same_v<T, core::CommitEntry>)
          return commit_entry(op);
        else if constexpr (std::is_same_v<T, core::RollbackEntry>)
          return rollback_entry(op);
        else if constexpr (std::is_same_v<T, core::ApplyEntries>)
          return apply_entries(op);
        else if constexpr (std::is_same_v<T, core::ReadLog>)
          return read_log(op);
        else if constexpr (std::is_same_v<T, core::ReadSnapshot>)
          return read_snapshot();
        else
          return install_snapshot(op);
      },
      task.op);
  done.id = task.id;
  if (!done.ok && driver_reports) {
    DISTDB_LOG(debug) << "replication storage: " << core::storage_op_name(task.op)
                      << " failed: " << done.error.message;
  } else if (!done.ok) {
    DISTDB_LOG(warn) << "replication storage: " << core::storage_op_name(task.op)
                     << " failed: " << done.error.message;
  }
  return done;
}

void ReplicationExecutor::note_failed_prepare(const TxnId& txn, const Error& error) {
  // An SQL error is a definite answer (nothing prepared); only a lost or
  // unreachable connection leaves the outcome open. SQLite never gets here
  // with a surviving prepare: its prepared state dies with the connection.
  if (error.kind == ErrorKind::sql || !storage_.prepare_survives_crash()) return;
  if (std::find(in_doubt_.begin(), in_doubt_.end(), txn) == in_doubt_.end()) in_doubt_.push_back(txn);
}

Status ReplicationExecutor::resolve_in_doubt() {
  if (in_doubt_.empty()) return {};
  // XA RECOVER is the authority on what is prepared: XA ROLLBACK answers
  // "unknown XID" also for a transaction still attached to a session the
  // server has not finished tearing down (mariadb_storage.cpp, point 2).
  auto listed = storage_.recover();
  if (!listed) return listed.error();
  for (auto it = in_doubt_.begin(); it != in_doubt_.end();) {
    if (std::find(listed->begin(), listed->end(), *it) == listed->end()) {
      it = in_doubt_.erase(it);  // never prepared, or already resolved
      continue;
    }
    if (auto st = storage_.rollback(*it); !st) return st;
    DISTDB_LOG(info)
        << "[*] Rolled back transaction " << *it
        << ", prepared before the database connection was lost (its prepare had been reported failed)";
    ++it;  // dropped once XA RECOVER no longer lists it
  }
  if (in_doubt_.empty()) return {};
  auto again = storage_.recover();
  if (!again) return again.error();
  std::erase_if(in_doubt_, [&](const TxnId& txn) {
    return std::find(again->begin(), again->end(), txn) == again->end();
  });
  if (in_doubt_.empty()) return {};
  return Error(ErrorKind::storage_unavailable,
               "transaction " + in_doubt_.front() +
                   " may be prepared on the database and could not be rolled back yet (its session is still "
                   "being torn down)");
}

Result<core::RecoveredState> ReplicationExecutor::recover() {
  core::RecoveredState state;
  auto promised = storage_.execute("SELECT value FROM distdb_meta WHERE name = 'promised_epoch'");
  if (!promised) return promised.error();
  if (!promised->rows.empty()) state.promised = as_u64(promised->rows[0][0]).value_or(0);
  auto applied = read_applied(storage_);
  if (!applied) return applied.error();
  state.applied = *applied;
  auto installing = storage_.execute("SELECT value FROM distdb_meta WHERE name = 'full_copy'");
  if (!installing) return installing.error();
  state.needs_snapshot = !installing->rows.empty();
  auto prepared = storage_.recover();
  if (!prepared) return prepared.error();
  recovered_ids_.clear();
  for (const TxnId& txn : *prepared) {
    EntryId id;
    if (!parse_txn_id(txn, txn_prefix_, id)) continue;  // another database's, or not distdb's
    state.prepared.push_back(id);
    recovered_ids_[id] = txn;
  }
  return state;
}

Result<EntryId> ReplicationExecutor::read_applied(Storage& from) {
  auto rs = from.execute("SELECT epoch, seq FROM distdb_applied WHERE id = 1");
  if (!rs) return rs.error();
  if (rs->rows.empty()) return EntryId{};
  return EntryId{as_u64(rs->rows[0][1]).value_or(0), as_u64(rs->rows[0][0]).value_or(0)};
}

StorageDone ReplicationExecutor::persist_promise(const core::PersistPromise& op) {
  if (open_txn_) {
    // On SQLite a prepared entry is an open transaction on this connection,
    // and the promise cannot wait for its decision (a vote waits on the
    // promise). Roll it back, as a crash would: the core never counts on a
    // prepare surviving there, and a later commit of it fails as unknown,
    // which makes the core catch up instead.
    (void)storage_.rollback(*open_txn_);
    open_txn_.reset();
  }
  auto rs = storage_.execute("UPDATE distdb_meta SET value = '" + std::to_string(op.epoch) +
                             "' WHERE name = 'promised_epoch'");
  if (!rs) return failed(rs.error());
  return {};
}

bool ReplicationExecutor::entry_has_ddl(const Entry& entry) const {
  if (!is_ddl_) return false;
  for (const auto& st : entry.statements) {
    if (is_ddl_(st.sql)) return true;
  }
  return false;
}

bool ReplicationExecutor::entry_commits_by_itself(const Entry& entry) const {
  return mariadb_ && entry_has_ddl(entry);
}

std::string ReplicationExecutor::quote(const std::string& text) const {
  return sql_string_literal(text, mariadb_);
}

namespace {

// MariaDB errors after which the server has rolled back the whole
// transaction (or marked the XA branch rollback-only), not just the
// statement: the entry cannot go on, on any node.
bool ends_transaction(int mariadb_code) {
  switch (mariadb_code) {
    case 1205:  // lock wait timeout (the whole transaction with innodb_rollback_on_timeout)
    case 1213:  // deadlock
    case 1399:  // XAER_RMFAIL: the branch is not in a state to run statements
    case 1402:  // XA_RBROLLBACK
    case 1613:  // XA_RBTIMEOUT
    case 1614:  // XA_RBDEADLOCK
      return true;
    default:
      return false;
  }
}

}  // namespace

StatementOutcome ReplicationExecutor::outcome_of(const Result<ResultSet>& rs, bool& usable,
                                                 Error& error) const {
  StatementOutcome outcome;
  usable = true;
  if (rs) {
    outcome.rows_affected = rs->rows_affected;
    outcome.last_insert_id = rs->last_insert_id;
  } else if (rs.error().kind == ErrorKind::sql && !(mariadb_ && ends_transaction(rs.error().code))) {
    outcome.ok = false;
    outcome.code = rs.error().code;
    outcome.message = rs.error().message;
  } else {
    usable = false;
    error = rs.error();
  }
  return outcome;
}

bool ReplicationExecutor::store_entry(const TxnId& txn, const Entry& entry, bool expected,
                                      std::vector<StatementOutcome>& outcomes, bool& diverged, Error& error,
                                      std::optional<Status>* prepared) {
  // A statement that fails must leave no trace, identically everywhere, and
  // the entry's other statements go on. InnoDB already guarantees the first
  // (a failed statement is rolled back by itself, the transaction stays), so
  // on MariaDB statements run bare: a savepoint around each would cost two
  // more round trips per statement, most of a replicated write's time. An
  // error that takes the whole transaction with it fails the entry instead.
  // SQLite keeps the savepoint: there, an ON CONFLICT ROLLBACK clause can end
  // the transaction, and in-process savepoints cost next to nothing.
  if (!mariadb_) {
    for (const auto& st : entry.statements) {
      if (auto sp = storage_.execute_in(txn, "SAVEPOINT distdb_statement"); !sp) {
        error = sp.error();
        return false;
      }
      bool usable = true;
      StatementOutcome outcome;
      if (is_checksum_statement(st.sql)) {
        if (!checksum_outcome(txn, entry, outcome, error)) return false;
      } else {
        outcome = outcome_of(storage_.execute_in(txn, st.sql), usable, error);
      }
      if (!usable) return false;
      if (!outcome.ok) {
        if (auto back = storage_.execute_in(txn, "ROLLBACK TO SAVEPOINT distdb_statement"); !back) {
          error = back.error();
          return false;
        }
      }
      if (expected && !st.expected(outcome)) {
        note_divergence(entry, st, outcome);
        diverged = true;
        return true;
      }
      outcomes.push_back(std::move(outcome));
    }
    for (const auto& sql : record_statements(entry, outcomes)) {
      if (auto rs = storage_.execute_in(txn, sql); !rs) {
        error = rs.error();
        return false;
      }
    }
    if (prepared != nullptr) *prepared = storage_.prepare(txn);
    return true;
  }
  // MariaDB: the statements, then the bookkeeping, then (with `prepared`)
  // XA END and XA PREPARE, go in one batch (one round trip when the text
  // allows it; XA START leads it too, see mariadb_storage.cpp). The server
  // stops at a failing statement; the batch is sent again from the
  // statement after it. The
  // log row, last in the batch, is built from the outcomes known so far
  // and "OK" for the statements not yet run, so it only ever runs once
  // every outcome before it is known and as written.
  const std::size_t count = entry.statements.size();
  for (std::size_t next = outcomes.size();;) {
    // A checksum statement is not SQL for the server: it is taken here,
    // between two batches, in the same transaction.
    if (next < count && is_checksum_statement(entry.statements[next].sql)) {
      StatementOutcome outcome;
      if (!checksum_outcome(txn, entry, outcome, error)) return false;
      const auto& st = entry.statements[next];
      if (expected && !st.expected(outcome)) {
        note_divergence(entry, st, outcome);
        diverged = true;
        return true;
      }
      outcomes.push_back(std::move(outcome));
      ++next;
      continue;
    }
    std::size_t stop = next;
    while (stop < count && !is_checksum_statement(entry.statements[stop].sql)) ++stop;
    const bool last = stop == count;  // the bookkeeping (and the prepare) go with the last batch
    const std::vector<std::string> bookkeeping = last ? record_statements(entry, outcomes) : std::vector<std::string>{};
    std::vector<std::string_view> batch;
    batch.reserve(stop - next + bookkeeping.size());
    for (std::size_t i = next; i < stop; ++i) batch.push_back(entry.statements[i].sql);
    for (const auto& sql : bookkeeping) batch.push_back(sql);
    const auto results = last && prepared != nullptr ? storage_.execute_batch_and_prepare(txn, batch, *prepared)
                                                     : storage_.execute_batch_in(txn, batch);
    if (results.empty()) {
      error = Error(ErrorKind::internal, "the storage answered an empty batch");
      return false;
    }
    for (std::size_t k = 0; k < results.size(); ++k) {
      const std::size_t index = next + k;
      if (index >= count) {  // bookkeeping
        if (!results[k]) {
          error = results[k].error();
          return false;
        }
        continue;
      }
      bool usable = true;
      StatementOutcome outcome = outcome_of(results[k], usable, error);
      if (!usable) return false;
      const auto& st = entry.statements[index];
      if (expected && !st.expected(outcome)) {
        note_divergence(entry, st, outcome);
        diverged = true;
        return true;
      }
      outcomes.push_back(std::move(outcome));
    }
    if (results.size() == batch.size() && results.back()) {
      if (last) return true;
      next = stop;
      continue;
    }
    next += results.size();
  }
}

bool ReplicationExecutor::checksum_outcome(const TxnId& txn, const Entry& entry, StatementOutcome& outcome,
                                           Error& error) {
  auto digest = database_digest(storage_, txn);
  if (!digest) {
    error = digest.error();
    error.message = "taking the checksum of entry " + std::to_string(entry.id.seq) + ": " + error.message;
    return false;
  }
  outcome = StatementOutcome{};
  outcome.digest = std::move(*digest);
  return true;
}

void ReplicationExecutor::note_divergence(const Entry& entry, const core::LoggedStatement& st,
                                          const StatementOutcome& got) const {
  if (is_checksum_statement(st.sql)) {
    DISTDB_LOG(error) << "[!] DIVERGED: this member's data differs from the cluster's at entry " << entry.id.seq
                      << " (epoch " << entry.id.origin << "): checksum " << got.digest << ", the cluster's "
                      << st.expect_digest << ". It takes a full copy of the data.";
    return;
  }
  DISTDB_LOG(warn) << "[!] replaying entry " << entry.id.seq << " (epoch " << entry.id.origin
                   << ") gave another outcome than the cluster's (" << (got.ok ? "OK" : "error " + std::to_string(got.code))
                   << ", automatic id " << got.last_insert_id << "; expected "
                   << (st.expect_ok ? "OK" : "error " + std::to_string(st.expect_code)) << ", automatic id "
                   << st.expect_insert_id << "): this member diverged and takes a full copy";
}

std::vector<std::string> ReplicationExecutor::record_statements(
    const Entry& entry, const std::vector<StatementOutcome>& outcomes) {
  const std::string seq = std::to_string(entry.id.seq);
  const std::string origin = std::to_string(entry.id.origin);
  std::vector<std::string> sql = {
      "UPDATE distdb_applied SET epoch = " + origin + ", seq = " + seq + " WHERE id = 1",
      "DELETE FROM distdb_log WHERE seq >= " +
          seq,  // a stale tail (after a snapshot) must not block the insert
      log_row_statement(entry, outcomes),
  };
  if (entry.effects || capturing_) {
    sql.push_back("DELETE FROM distdb_effects WHERE seq >= " + seq);
    sql.push_back(effects_row_statement(entry.id, entry.effects ? &*entry.effects : nullptr));
  }
  if (unrecorded_ && unrecorded_->first.seq < entry.id.seq) {
    sql.push_back("UPDATE distdb_effects SET effects = " + hex_literal(unrecorded_->second) +
                  " WHERE seq = " + std::to_string(unrecorded_->first.seq) +
                  " AND epoch = " + std::to_string(unrecorded_->first.origin));
    carrying_ = entry.id;
  }
  // Trim now and then (not in every transaction): every 64 entries, or more
  // often when less is kept.
  const std::size_t trim_every = std::max<std::size_t>(1, std::min<std::size_t>(64, log_retention_));
  if (entry.id.seq > log_retention_ && entry.id.seq % trim_every == 0) {
    sql.push_back("DELETE FROM distdb_log WHERE seq <= " + std::to_string(entry.id.seq - log_retention_));
    sql.push_back("DELETE FROM distdb_effects WHERE seq <= " + std::to_string(entry.id.seq - log_retention_));
  }
  return sql;
}

std::string ReplicationExecutor::log_row_statement(const Entry& entry,
                                                   const std::vector<StatementOutcome>& outcomes) const {
  return "INSERT INTO distdb_log (seq, epoch, statements) VALUES (" + std::to_string(entry.id.seq) + ", " +
         std::to_string(entry.id.origin) + ", " + quote(encode_statements(entry, outcomes)) + ")";
}

Status ReplicationExecutor::record_entry_autocommit(const Entry& entry,
                                                    const std::vector<StatementOutcome>& outcomes) {
  for (const auto& sql : record_statements(entry, outcomes)) {
    if (auto rs = storage_.execute(sql); !rs) return rs.error();
  }
  return {};
}

StorageDone ReplicationExecutor::prepare_entry(const core::PrepareEntry& op) {
  if (diverged_) {
    return failed(Error(ErrorKind::internal,
                        "this replica diverged (an abandoned DDL entry was applied): "
                        "it needs a full copy"));
  }
  // DDL runs as statements everywhere: no effects, whatever was asked (on
  // MariaDB it is not in a transaction, so there is nothing to capture; a
  // changeset of SQLite's holds rows, never the schema they fit).
  if (entry_commits_by_itself(op.entry)) return prepare_autocommit(op.entry);
  if (op.entry.effects) return prepare_effects(op);
  const bool ddl = (rows_ || op.capture_effects) && entry_has_ddl(op.entry);
  if (rows_ && !op.capture_effects && !ddl) {
    return failed(Error(ErrorKind::invalid_request,
                        "entry " + std::to_string(op.entry.id.seq) +
                            " came as statements, but this member replicates rows: every member needs the "
                            "same storage.replication"));
  }
  const TxnId txn = txn_for(op.entry.id);
  const bool capture = op.capture_effects && !ddl && storage_.captures_effects();
  if (capture) {
    // Before the transaction begins: its changes must come after the
    // point the capture reads from.
    if (auto st = storage_.start_capture(); !st) return failed(st.error());
  } else {
    storage_.stop_capture();  // what this writes is not the next captured entry's
  }
  if (auto st = storage_.begin(txn); !st) return failed(st.error());
  StorageDone done;
  bool diverged = false;
  Error error;
  std::optional<Status> prepared;
  capturing_ = capture;
  const bool stored = store_entry(txn, op.entry, false, done.outcomes, diverged, error, &prepared);
  capturing_ = false;
  if (!stored) {
    (void)storage_.rollback(txn);
    return failed(error);
  }
  if (auto why = prepare_failure(txn, prepared)) return failed(*why);
  if (capture) {
    auto effects = storage_.captured_effects(txn);
    if (!effects && effects.error().kind == ErrorKind::sql) {
      // The entry changed what cannot be shipped as rows (a table without a
      // key, on SQLite): a refusal of the write, not a failure of this member.
      return refuse_entry(op.entry, txn, effects.error().code, effects.error().message);
    }
    if (!effects) {
      // Prepared, but the others cannot be told what it changed: the entry
      // cannot go on (the core steps down on its own failed prepare).
      Error e = effects.error();
      e.message = "capturing what entry " + std::to_string(op.entry.id.seq) + " changed: " + e.message;
      (void)storage_.rollback(txn);
      return failed(e);
    }
    if (effects->size() > max_effects_bytes())
      return refuse_oversized_effects(op.entry, txn, effects->size());
    captured_ = std::make_pair(op.entry.id, *effects);
    done.effects = std::move(*effects);
  }
  if (!storage_.prepare_survives_crash()) open_txn_ = txn;
  return done;
}

std::size_t ReplicationExecutor::max_effects_bytes() {
  // An entry's effects are written (as hex, twice their size) into
  // distdb_effects by one statement, which the server takes only under its
  // max_allowed_packet, and they travel in one Prepare (as base64, 4/3 of
  // their size) under limits.max_peer_message_bytes. A megabyte of each is
  // left for the rest of the request or message.
  constexpr std::size_t kMargin = 1024 * 1024;
  // SQLite takes far larger statements, but rows of many megabytes in one
  // peer message hold up the heartbeats behind it for longer than a member
  // waits: its bound is MariaDB's default.
  if (!max_allowed_packet_) {
    max_allowed_packet_ = 16 * 1024 * 1024;
    if (mariadb_) {
      auto rs = storage_.execute("SELECT @@max_allowed_packet");
      if (rs && !rs->rows.empty())
        max_allowed_packet_ = as_u64(rs->rows[0][0]).value_or(*max_allowed_packet_);
    }
  }
  const std::size_t packet = *max_allowed_packet_;
  const std::size_t by_packet = packet > 2 * kMargin ? (packet - kMargin) / 2 : kMargin / 2;
  const std::size_t by_message =
      peer_message_limit_ > 2 * kMargin ? (peer_message_limit_ - kMargin) / 4 * 3 : peer_message_limit_ / 2;
  return std::min(by_packet, by_message);
}

StorageDone ReplicationExecutor::refuse_oversized_effects(const Entry& entry, const TxnId& txn,
                                                          std::size_t bytes) {
  const std::size_t limit = max_effects_bytes();
  DISTDB_LOG(warn) << "[!] Replication: entry " << entry.id.seq << " changes " << bytes
                   << " bytes of rows, more than one write may change under row replication (" << limit
                   << "); it is refused";
  return refuse_entry(entry, txn, kErNetPacketTooLarge,
                      "this write changes " + std::to_string(bytes) +
                          " bytes of rows, more than row replication carries for one write (" +
                          std::to_string(limit) +
                          " bytes, from the server's max_allowed_packet and limits.max_peer_message_bytes); "
                          "nothing was changed: split it into smaller writes");
}

StorageDone ReplicationExecutor::refuse_entry(const Entry& entry, const TxnId& txn, int code,
                                              const std::string& message) {
  // The entry ran and is prepared here, but what it changed cannot be
  // shipped. Rather than fail the prepare (which would depose this
  // coordinator, and the next one would meet the same write), undo it and
  // commit the entry as a write that failed: every member records the same
  // failed outcome and changes nothing, and the client is told what to
  // change.
  (void)storage_.rollback(txn);
  storage_.stop_capture();  // what this writes is not the next captured entry's
  StorageDone done;
  StatementOutcome refused;
  refused.ok = false;
  refused.code = code;
  refused.message = message;
  done.outcomes.assign(entry.statements.size(), refused);
  Entry recorded = entry;
  recorded.effects = std::string();
  if (auto st = storage_.begin(txn); !st) return failed(st.error());
  const std::vector<std::string> bookkeeping = record_statements(recorded, done.outcomes);
  const std::vector<std::string_view> batch(bookkeeping.begin(), bookkeeping.end());
  std::optional<Status> prepared;
  for (const auto& rs : storage_.execute_batch_and_prepare(txn, batch, prepared)) {
    if (!rs) {
      (void)storage_.rollback(txn);
      return failed(rs.error());
    }
  }
  if (auto why = prepare_failure(txn, prepared)) return failed(*why);
  done.effects = std::string();
  return done;
}

StorageDone ReplicationExecutor::prepare_effects(const core::PrepareEntry& op) {
  storage_.stop_capture();  // what this writes is not the next captured entry's
  const TxnId txn = txn_for(op.entry.id);
  if (auto st = storage_.begin(txn); !st) return failed(st.error());
  StorageDone done;
  bool diverged = false;
  Error error;
  if (!apply_effects(txn, op.entry, &op.outcomes, false, done.outcomes, diverged, error)) {
    (void)storage_.rollback(txn);
    StorageDone refused = failed(error);
    refused.effects_refused = storage_.refuses_effects(error);
    return refused;
  }
  const std::vector<std::string> bookkeeping = record_statements(op.entry, done.outcomes);
  const std::vector<std::string_view> batch(bookkeeping.begin(), bookkeeping.end());
  std::optional<Status> prepared;
  const auto results = storage_.execute_batch_and_prepare(txn, batch, prepared);
  for (const auto& rs : results) {
    if (!rs) {
      (void)storage_.rollback(txn);
      return failed(rs.error());
    }
  }
  if (auto why = prepare_failure(txn, prepared)) return failed(*why);
  if (!storage_.prepare_survives_crash()) open_txn_ = txn;
  return done;
}

std::optional<Error> ReplicationExecutor::prepare_failure(const TxnId& txn,
                                                          const std::optional<Status>& prepared) {
  if (!prepared) {
    (void)storage_.rollback(txn);
    return Error(ErrorKind::internal, "the entry was stored but not prepared");
  }
  if (const Status& st = *prepared; !st) {
    (void)storage_.rollback(txn);
    note_failed_prepare(txn, st.error());
    return st.error();
  }
  return std::nullopt;
}

bool ReplicationExecutor::apply_effects(const TxnId& txn, const Entry& entry,
                                        const std::vector<StatementOutcome>* given, bool expected,
                                        std::vector<StatementOutcome>& outcomes, bool& diverged,
                                        Error& error) {
  if (!entry.effects->empty()) {
    if (auto st = storage_.apply_effects_in(txn, *entry.effects); !st) {
      error = st.error();
      error.message = "applying what entry " + std::to_string(entry.id.seq) +
                      " changed on the coordinator: " + error.message;
      if (expected && storage_.refuses_effects(error)) {
        // The database refused the coordinator's rows (a row to change is
        // missing, a key already taken): its data is not the cluster's.
        // (Other errors — a lock wait, a missing privilege — are failures
        // to retry, not evidence.)
        DISTDB_LOG(error) << "[!] DIVERGED: " << error.message << ". It takes a full copy of the data.";
        diverged = true;
        return true;
      }
      return false;
    }
  }
  // The statements' outcomes are the coordinator's. A checksum statement's
  // digest is of this database once the whole entry is applied (the
  // coordinator puts a checksum statement in an entry of its own, so that
  // is also where the coordinator took it).
  outcomes.clear();
  for (std::size_t i = 0; i < entry.statements.size(); ++i) {
    const core::LoggedStatement& st = entry.statements[i];
    StatementOutcome outcome;
    if (is_checksum_statement(st.sql)) {
      if (!checksum_outcome(txn, entry, outcome, error)) return false;
      if (expected && !st.expected(outcome)) {
        note_divergence(entry, st, outcome);
        diverged = true;
        return true;
      }
    } else if (given != nullptr && i < given->size()) {
      outcome = (*given)[i];
    } else {
      outcome.ok = st.expect_ok;
      outcome.code = st.expect_code;
      outcome.last_insert_id = st.expect_insert_id;
    }
    outcomes.push_back(std::move(outcome));
  }
  return true;
}

void ReplicationExecutor::note_committed(const EntryId& id) {
  if (carrying_ && *carrying_ == id) {
    unrecorded_.reset();  // recorded by this transaction
    carrying_.reset();
  }
  if (!captured_ || !(captured_->first == id)) return;
  if (unrecorded_) record_effects_now();  // not carried (e.g. an older one): now, before it is replaced
  unrecorded_ = std::move(captured_);
  captured_.reset();
}

void ReplicationExecutor::record_effects_now() {
  if (!unrecorded_) return;
  const EntryId& id = unrecorded_->first;
  const std::string sql = "UPDATE distdb_effects SET effects = " + hex_literal(unrecorded_->second) +
                          " WHERE seq = " + std::to_string(id.seq) +
                          " AND epoch = " + std::to_string(id.origin);
  if (auto rs = storage_.execute(sql); !rs) {
    // The row stays NULL: a catch-up from this member gets a full copy
    // from that entry on (read_log). Nothing is lost: every member that
    // committed the entry holds its effects.
    DISTDB_LOG(warn) << "replication storage: could not record the effects of entry " << id.seq << ": "
                     << rs.error().message;
  }
  unrecorded_.reset();
  carrying_.reset();
}

StorageDone ReplicationExecutor::prepare_autocommit(const Entry& entry) {
  storage_.stop_capture();  // DDL (and any write it runs) is not the next captured entry's
  record_effects_now();     // no transaction to carry them
  StorageDone done;
  for (const auto& st : entry.statements) {
    StatementOutcome outcome;
    if (is_checksum_statement(st.sql)) {
      Error error;
      if (!checksum_outcome({}, entry, outcome, error)) return failed(error);
      done.outcomes.push_back(std::move(outcome));
      continue;
    }
    auto rs = storage_.execute(st.sql);
    if (rs) {
      outcome.rows_affected = rs->rows_affected;
    } else if (rs.error().kind == ErrorKind::sql) {
      outcome.ok = false;
      outcome.code = rs.error().code;
      outcome.message = rs.error().message;
    } else {
      return failed(rs.error());
    }
    done.outcomes.push_back(std::move(outcome));
  }
  if (auto st = record_entry_autocommit(entry, done.outcomes); !st) return failed(st.error());
  autocommitted_ = entry.id;
  return done;
}

StorageDone ReplicationExecutor::commit_entry(const core::CommitEntry& op) {
  if (autocommitted_ && *autocommitted_ == op.id) {
    autocommitted_.reset();  // applied when "prepared"
    return {};
  }
  if (auto st = storage_.commit(txn_for(op.id)); !st) {
    if (already_committed(op.id, st.error())) {
      open_txn_.reset();
      note_committed(op.id);
      return {};
    }
    return failed(st.error());
  }
  open_txn_.reset();
  recovered_ids_.erase(op.id);
  note_committed(op.id);
  return {};
}

bool ReplicationExecutor::already_committed(const EntryId& id, const Error& commit_error) {
  // An XA COMMIT whose answer was lost (the server crashed right after
  // committing) is retried by the core, and the retry is told "unknown XID"
  // (1397) for ever: the transaction is gone because it committed. Its
  // distdb_log row, written in the same transaction, says so; the same
  // position with the same epoch is the same entry (I1). Found by
  // tests/fault: a coordinator whose database was killed during XA COMMIT
  // retried it until another node was elected.
  constexpr int kXaerNota = 1397;
  if (!mariadb_ || commit_error.kind != ErrorKind::sql || commit_error.code != kXaerNota) return false;
  auto rs = storage_.execute("SELECT epoch FROM distdb_log WHERE seq = " + std::to_string(id.seq));
  return rs && !rs->rows.empty() && as_u64(rs->rows[0][0]).value_or(0) == id.origin;
}

StorageDone ReplicationExecutor::rollback_entry(const core::RollbackEntry& op) {
  if (autocommitted_ && *autocommitted_ == op.id) {
    // An entry that could not be undone was abandoned: this database no
    // longer matches any log. Refuse to prepare anything until a full copy
    // replaces it (catch-up sees the recorded position and asks for one).
    autocommitted_.reset();
    diverged_ = true;
    return {};
  }
  if (auto st = storage_.rollback(txn_for(op.id)); !st) return failed(st.error());
  if (open_txn_ && *open_txn_ == txn_for(op.id)) open_txn_.reset();
  recovered_ids_.erase(op.id);
  if (captured_ && captured_->first == op.id) captured_.reset();
  if (carrying_ && *carrying_ == op.id) carrying_.reset();  // unrecorded_ waits for the next one
  return {};
}

StorageDone ReplicationExecutor::apply_entries(const core::ApplyEntries& op) {
  storage_.stop_capture();
  record_effects_now();  // before entries that may replace the tail of the log
  StorageDone done;
  auto applied = read_applied(storage_);
  if (!applied) return failed(applied.error());
  // `at`: the position committed here. Consecutive entries are applied in
  // one transaction (up to kCatchUpBatch of them): they are decided
  // already, so nothing is gained by preparing each alone, and a
  // transaction per entry (four round trips and two log flushes) is what
  // made catch-up slow. The position is recorded inside that transaction,
  // so a crash keeps all of it or none.
  EntryId at = *applied;
  std::vector<const Entry*> run;  // consecutive entries after `at`, not yet applied
  // A failure part-way must still say how many entries were committed:
  // they are durable, and a core that believes it is further behind than
  // its database asks for entries the database already holds, which then
  // look like a divergence (found by tests/fault: a database server killed
  // during catch-up left its node unable to rejoin).
  auto fail = [&done](const Error& e) {
    StorageDone f = failed(e);
    f.applied_count = done.applied_count;
    return f;
  };
  // Applies `run` in one transaction; false when it could not (`done` then
  // says why: an error, or diverged).
  Error error;
  auto apply_run = [&]() -> bool {
    if (run.empty()) return true;
    const TxnId txn = txn_for(run.front()->id);
    if (auto st = storage_.begin(txn); !st) {
      error = st.error();
      return false;
    }
    bool diverged = false;
    const bool replayed = replay_run(txn, run, diverged, error);
    if (!replayed || diverged) {
      (void)storage_.rollback(txn);
      done.diverged = replayed;
      run.clear();
      return false;
    }
    Status st = storage_.prepare(txn);
    if (st) st = storage_.commit(txn);
    if (!st) {
      // A prepare or commit whose answer was lost may have gone through.
      (void)storage_.rollback(txn);
      note_failed_prepare(txn, st.error());
      error = st.error();
      run.clear();
      return false;
    }
    done.applied_count += run.size();
    at = run.back()->id;
    run.clear();
    return true;
  };
  for (const Entry& entry : op.entries) {
    const EntryId tail = run.empty() ? at : run.back()->id;
    if (entry.id.seq <= tail.seq) {
      if (!apply_run()) return done.diverged ? done : fail(error);
      // Already committed here by an earlier ApplyEntries whose answer was
      // lost (the connection dropped after a commit went through): the same
      // position holding the same entry id is the same entry, since only
      // one coordinator ever ordered entries in an epoch (I1).
      auto rs = storage_.execute("SELECT epoch FROM distdb_log WHERE seq = " + std::to_string(entry.id.seq));
      if (!rs) return fail(rs.error());
      if (rs->rows.empty() || as_u64(rs->rows[0][0]).value_or(0) != entry.id.origin) {
        done.diverged = true;  // not an entry we hold: a full copy sorts it out
        return done;
      }
      ++done.applied_count;
      continue;
    }
    if (entry.id.seq != tail.seq + 1) {
      // Our recorded position is not where the log continues (e.g. a DDL
      // entry applied for a coordinator that was then deposed).
      if (!apply_run()) return done.diverged ? done : fail(error);
      done.diverged = true;
      return done;
    }
    if (entry_commits_by_itself(entry)) {
      // DDL commits by itself on MariaDB: what came before goes first.
      if (!apply_run()) return done.diverged ? done : fail(error);
      for (const auto& st : entry.statements) {
        StatementOutcome outcome;
        if (is_checksum_statement(st.sql)) {
          Error checksum_error;
          if (!checksum_outcome({}, entry, outcome, checksum_error)) return fail(checksum_error);
        } else {
          bool usable = true;
          Error statement_error;
          outcome = outcome_of(storage_.execute(st.sql), usable, statement_error);
          if (!usable) return fail(statement_error);
        }
        // DDL reports no automatic id: only the error and the digest count.
        outcome.last_insert_id = st.expect_insert_id;
        if (!st.expected(outcome)) {
          note_divergence(entry, st, outcome);
          done.diverged = true;
          return done;
        }
      }
      if (auto st = record_entry_autocommit(entry, {}); !st) return fail(st.error());
      at = entry.id;
      ++done.applied_count;
      continue;
    }
    run.push_back(&entry);
    if (run.size() >= kCatchUpBatch && !apply_run()) return done.diverged ? done : fail(error);
  }
  if (!apply_run()) return done.diverged ? done : fail(error);
  return done;
}

bool ReplicationExecutor::replay_run(const TxnId& txn, const std::vector<const Entry*>& run, bool& diverged,
                                     Error& error) {
  const bool any_effects =
      std::any_of(run.begin(), run.end(), [](const Entry* e) { return e->effects.has_value(); });
  if (!mariadb_ || any_effects) {
    // One entry at a time (an entry's effects go alone to the server, see
    // Storage::apply_effects_in), each with its own bookkeeping.
    for (const Entry* entry : run) {
      std::vector<StatementOutcome> outcomes;
      if (entry->effects) {
        if (!apply_effects(txn, *entry, nullptr, true, outcomes, diverged, error)) return false;
        if (diverged) return true;
        for (const auto& sql : record_statements(*entry, outcomes)) {
          if (auto rs = storage_.execute_in(txn, sql); !rs) {
            error = rs.error();
            return false;
          }
        }
        continue;
      }
      if (!store_entry(txn, *entry, true, outcomes, diverged, error)) return false;
      if (diverged) return true;
    }
    return true;
  }
  // MariaDB: the whole run in as few round trips as the text allows. Each
  // entry's log row; the stale-tail DELETE before the first and the
  // position after the last, once for the run (the same transaction holds
  // them all, so they commit together or not at all).
  const std::string first_seq = std::to_string(run.front()->id.seq);
  const EntryId& last = run.back()->id;
  std::vector<std::string> bookkeeping;
  bookkeeping.push_back("DELETE FROM distdb_log WHERE seq >= " + first_seq);
  for (const Entry* entry : run) bookkeeping.push_back(log_row_statement(*entry, {}));
  bookkeeping.push_back("UPDATE distdb_applied SET epoch = " + std::to_string(last.origin) +
                        ", seq = " + std::to_string(last.seq) + " WHERE id = 1");
  if (last.seq > log_retention_) {
    bookkeeping.push_back("DELETE FROM distdb_log WHERE seq <= " + std::to_string(last.seq - log_retention_));
  }
  // The batch: the stale-tail DELETE, then each entry's statements and log
  // row, then the position (and trim). `expect[i]` is the outcome statement
  // i must have, or null for bookkeeping.
  // `owner[i]` is the entry statement i belongs to.
  std::vector<std::string_view> batch;
  std::vector<const core::LoggedStatement*> expect;
  std::vector<const Entry*> owner;
  auto add = [&](std::string_view sql, const core::LoggedStatement* st, const Entry* entry) {
    batch.push_back(sql);
    expect.push_back(st);
    owner.push_back(entry);
  };
  add(bookkeeping[0], nullptr, run.front());
  for (std::size_t e = 0; e < run.size(); ++e) {
    for (const auto& st : run[e]->statements) add(st.sql, &st, run[e]);
    add(bookkeeping[1 + e], nullptr, run[e]);
  }
  for (std::size_t b = 1 + run.size(); b < bookkeeping.size(); ++b) add(bookkeeping[b], nullptr, run.back());

  for (std::size_t next = 0; next < batch.size();) {
    if (expect[next] != nullptr && is_checksum_statement(expect[next]->sql)) {
      StatementOutcome outcome;
      if (!checksum_outcome(txn, *owner[next], outcome, error)) return false;
      if (!expect[next]->expected(outcome)) {
        note_divergence(*owner[next], *expect[next], outcome);
        diverged = true;
        return true;
      }
      ++next;
      continue;
    }
    std::size_t stop = next;
    while (stop < batch.size() && !(expect[stop] != nullptr && is_checksum_statement(expect[stop]->sql))) ++stop;
    const std::vector<std::string_view> rest(batch.begin() + static_cast<std::ptrdiff_t>(next),
                                             batch.begin() + static_cast<std::ptrdiff_t>(stop));
    const auto results = storage_.execute_batch_in(txn, rest);
    if (results.empty()) {
      error = Error(ErrorKind::internal, "the storage answered an empty batch");
      return false;
    }
    for (std::size_t k = 0; k < results.size(); ++k) {
      const core::LoggedStatement* st = expect[next + k];
      if (st == nullptr) {
        if (!results[k]) {
          error = results[k].error();
          return false;
        }
        continue;
      }
      bool usable = true;
      const StatementOutcome outcome = outcome_of(results[k], usable, error);
      if (!usable) return false;
      if (!st->expected(outcome)) {
        note_divergence(*owner[next + k], *st, outcome);
        diverged = true;
        return true;
      }
    }
    next += results.size();
  }
  return true;
}

StorageDone ReplicationExecutor::read_log(const core::ReadLog& op) {
  StorageDone done;
  if (op.after.seq > 0) {
    auto rs = reader_.execute("SELECT epoch FROM distdb_log WHERE seq = " + std::to_string(op.after.seq));
    if (!rs) return failed(rs.error());
    if (rs->rows.empty()) {
      done.log_truncated = true;
      return done;
    }
    if (as_u64(rs->rows[0][0]).value_or(0) != op.after.origin) {
      done.log_conflict = true;
      return done;
    }
  }
  auto rs = reader_.execute(
      "SELECT l.seq, l.epoch, l.statements, e.seq IS NOT NULL, e.effects FROM distdb_log l "
      "LEFT JOIN distdb_effects e ON e.seq = l.seq AND e.epoch = l.epoch WHERE l.seq > " +
      std::to_string(op.after.seq) + " ORDER BY l.seq LIMIT " + std::to_string(op.max));
  if (!rs) return failed(rs.error());
  // One reply must fit a peer message: entries stop at half of one (the
  // first is always sent; an entry larger than a message could never be).
  const std::size_t budget = peer_message_limit_ / 2;
  std::size_t bytes = 0;
  for (const Row& row : rs->rows) {
    const std::size_t row_bytes = value_size(row[2]) + value_size(row[4]) * 4 / 3;
    if (!done.entries.empty() && bytes + row_bytes > budget) break;
    bytes += row_bytes;
    Entry entry;
    entry.id.seq = as_u64(row[0]).value_or(0);
    entry.id.origin = as_u64(row[1]).value_or(0);
    const std::string* text = std::get_if<std::string>(&row[2]);
    if (text == nullptr || !decode_statements(*text, entry))
      return failed(Error(ErrorKind::internal, "unreadable distdb_log row"));
    if (as_u64(row[3]).value_or(0) != 0) {
      if (!std::holds_alternative<std::monostate>(row[4])) {
        entry.effects = as_bytes(row[4]);
      } else if (unrecorded_ && unrecorded_->first == entry.id) {
        entry.effects = unrecorded_->second;  // committed, not yet recorded
      } else {
        // Shipped as effects, which this member failed to record (it
        // crashed between the commit and the update): the entry cannot be
        // served from here, and neither can the ones after it. The asker
        // gets the entries before it, or a full copy.
        if (done.entries.empty()) done.log_truncated = true;
        return done;
      }
    }
    if (done.entries.empty() && entry.id.seq != op.after.seq + 1) {
      done.log_truncated = true;  // the next entry is no longer retained
      return done;
    }
    done.entries.push_back(std::move(entry));
  }
  return done;
}

StorageDone ReplicationExecutor::read_snapshot() {
  // Through the reader connection: committed data only. No entry commits
  // meanwhile (this thread is the database's only writer), so position and
  // rows agree.
  StorageDone done;
  if (spool_ == nullptr)
    return failed(Error(ErrorKind::invalid_request, "no directory to write full copies to"));
  auto applied = read_applied(reader_);
  if (!applied) return failed(applied.error());
  auto file = write_snapshot(reader_, spool_->file("out"));
  if (!file) return failed(file.error());
  done.snapshot_applied = *applied;
  done.snapshot_data = local_descriptor(*file);
  return done;
}

StorageDone ReplicationExecutor::install_snapshot(const core::InstallSnapshot& op) {
  storage_.stop_capture();
  // Mark the position unknown first: a crash in the middle leaves a replica
  // that asks for a full copy again, never one that believes it is whole.
  // And say so: a node restarted after a crash in the middle finds the
  // mark (recover()) and waits for a full copy, serving no reads from the
  // half-installed data.
  const std::vector<std::string> reset = {
      "DELETE FROM distdb_meta WHERE name = 'full_copy'",
      "INSERT INTO distdb_meta (name, value) VALUES ('full_copy', 'installing')",
      "UPDATE distdb_applied SET epoch = 0, seq = 0 WHERE id = 1", "DELETE FROM distdb_log",
      "DELETE FROM distdb_effects"};
  captured_.reset();
  unrecorded_.reset();
  carrying_.reset();
  for (const auto& s : reset) {
    if (auto rs = storage_.execute(s); !rs) return failed(rs.error());
  }
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(op.data, ec);
  if (auto st = restore_snapshot(storage_, op.data); !st) return failed(st.error());
  if (auto rs = storage_.execute("UPDATE distdb_applied SET epoch = " + std::to_string(op.applied.origin) +
                                 ", seq = " + std::to_string(op.applied.seq) + " WHERE id = 1");
      !rs) {
    return failed(rs.error());
  }
  if (auto rs = storage_.execute("DELETE FROM distdb_meta WHERE name = 'full_copy'"); !rs)
    return failed(rs.error());
  diverged_ = false;
  DISTDB_LOG(info) << "[*] Installed a full copy of the data (" << (ec ? 0 : bytes) << " bytes, up to entry "
                   << op.applied.seq << " of epoch " << op.applied.origin << ")";
  return {};
}

}  // namespace distdb
