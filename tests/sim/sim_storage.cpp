#include "sim_storage.hpp"

#include <algorithm>
#include <sstream>
#include <utility>

namespace distdb::sim {

namespace {

using Writes = std::map<std::string, std::optional<std::string>>;

std::vector<std::string> split_words(const std::string& sql) {
  std::vector<std::string> words;
  std::istringstream in(sql);
  std::string word;
  while (in >> word) words.push_back(word);
  return words;
}

std::optional<std::string> lookup(const KeyValues& data, const Writes& writes, const std::string& key) {
  if (auto w = writes.find(key); w != writes.end()) return w->second;
  if (auto d = data.find(key); d != data.end()) return d->second;
  return std::nullopt;
}

core::StatementOutcome sql_error(int code, std::string message) {
  core::StatementOutcome o;
  o.ok = false;
  o.code = code;
  o.message = std::move(message);
  return o;
}

void apply_writes(KeyValues& data, const Writes& writes) {
  for (const auto& [key, value] : writes) {
    if (value) {
      data[key] = *value;
    } else {
      data.erase(key);
    }
  }
}

bool matches_expected(const core::LoggedStatement& s, const core::StatementOutcome& o) {
  if (s.expect_ok != o.ok) return false;
  return o.ok || s.expect_code == o.code;
}

// --- snapshot encoding: length-prefixed fields, one per token.
void put(std::string& out, const std::string& field) {
  out += std::to_string(field.size());
  out += ':';
  out += field;
}
void put(std::string& out, std::uint64_t n) { put(out, std::to_string(n)); }

class Reader {
 public:
  explicit Reader(const std::string& text) : text_(text) {}
  bool get(std::string& field) {
    auto colon = text_.find(':', pos_);
    if (colon == std::string::npos) return false;
    std::size_t len = 0;
    try {
      len = std::stoull(text_.substr(pos_, colon - pos_));
    } catch (...) {
      return false;
    }
    if (colon + 1 + len > text_.size()) return false;
    field = text_.substr(colon + 1, len);
    pos_ = colon + 1 + len;
    return true;
  }
  bool get(std::uint64_t& n) {
    std::string field;
    if (!get(field)) return false;
    try {
      n = std::stoull(field);
    } catch (...) {
      return false;
    }
    return true;
  }
  bool done() const { return pos_ == text_.size(); }

 private:
  const std::string& text_;
  std::size_t pos_ = 0;
};

}  // namespace

std::string to_string(const EntryId& id) {
  return std::to_string(id.origin) + "." + std::to_string(id.seq);
}

core::StatementOutcome run_statement(const std::string& sql, const KeyValues& data, Writes& writes,
                                     const std::string* stamp) {
  const auto words = split_words(sql);
  core::StatementOutcome o;
  if (words.size() == 3 && words[0] == "INSERT") {
    if (lookup(data, writes, words[1])) {
      return sql_error(1062, "Duplicate entry '" + words[1] + "' for key 'PRIMARY'");
    }
    writes[words[1]] = words[2];
    if (stamp != nullptr) writes[words[1] + "#at"] = *stamp;
    o.rows_affected = 1;
    return o;
  }
  if (words.size() == 3 && words[0] == "UPSERT") {
    writes[words[1]] = words[2];
    o.rows_affected = 1;
    return o;
  }
  if (words.size() == 2 && words[0] == "DELETE") {
    if (lookup(data, writes, words[1])) {
      writes[words[1]] = std::nullopt;
      o.rows_affected = 1;
    }
    return o;
  }
  return sql_error(1064, "You have an error in your SQL syntax near '" + sql + "'");
}

std::string encode_effects(const Writes& writes) {
  std::string out;
  put(out, writes.size());
  for (const auto& [key, value] : writes) {
    put(out, key);
    put(out, value ? 1 : 0);
    if (value) put(out, *value);
  }
  return out;
}

bool decode_effects(const std::string& text, Writes& writes) {
  Reader r(text);
  std::uint64_t n = 0;
  Writes w;
  if (!r.get(n)) return false;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string key, value;
    std::uint64_t present = 0;
    if (!r.get(key) || !r.get(present)) return false;
    if (present != 0 && !r.get(value)) return false;
    w[key] = present != 0 ? std::optional<std::string>(value) : std::nullopt;
  }
  if (!r.done()) return false;
  writes = std::move(w);
  return true;
}

std::string encode_snapshot(const KeyValues& data, const EntryId& applied, const std::map<core::Seq, Entry>& log) {
  std::string out = "distdb-sim-snapshot-2;";
  put(out, applied.seq);
  put(out, applied.origin);
  put(out, data.size());
  for (const auto& [key, value] : data) {
    put(out, key);
    put(out, value);
  }
  put(out, log.size());
  for (const auto& [seq, entry] : log) {
    put(out, entry.id.seq);
    put(out, entry.id.origin);
    put(out, entry.statements.size());
    for (const auto& s : entry.statements) {
      put(out, s.sql);
      put(out, s.expect_ok ? 1 : 0);
      put(out, static_cast<std::uint64_t>(static_cast<std::int64_t>(s.expect_code)));
    }
    put(out, entry.effects ? 1 : 0);
    if (entry.effects) put(out, *entry.effects);
  }
  return out;
}

bool decode_snapshot(const std::string& text, KeyValues& data, EntryId& applied, std::map<core::Seq, Entry>& log) {
  static const std::string magic = "distdb-sim-snapshot-2;";
  if (text.compare(0, magic.size(), magic) != 0) return false;
  const std::string body = text.substr(magic.size());
  Reader r(body);
  std::uint64_t n = 0;
  KeyValues d;
  EntryId a;
  std::map<core::Seq, Entry> l;
  if (!r.get(a.seq) || !r.get(a.origin) || !r.get(n)) return false;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string key, value;
    if (!r.get(key) || !r.get(value)) return false;
    d[key] = value;
  }
  if (!r.get(n)) return false;
  for (std::uint64_t i = 0; i < n; ++i) {
    Entry e;
    std::uint64_t count = 0;
    if (!r.get(e.id.seq) || !r.get(e.id.origin) || !r.get(count)) return false;
    for (std::uint64_t j = 0; j < count; ++j) {
      core::LoggedStatement s;
      std::uint64_t ok = 0, code = 0;
      if (!r.get(s.sql) || !r.get(ok) || !r.get(code)) return false;
      s.expect_ok = ok != 0;
      s.expect_code = static_cast<int>(static_cast<std::int64_t>(code));
      e.statements.push_back(std::move(s));
    }
    std::uint64_t has_effects = 0;
    if (!r.get(has_effects)) return false;
    if (has_effects != 0) {
      std::string effects;
      if (!r.get(effects)) return false;
      e.effects = std::move(effects);
    }
    l[e.id.seq] = std::move(e);
  }
  if (!r.done()) return false;
  data = std::move(d);
  applied = a;
  log = std::move(l);
  return true;
}

SimStorage::SimStorage(NodeId node, SimStorageOptions options) : node_(node), options_(options) {}

std::optional<EntryId> SimStorage::prepared_id() const {
  if (!prepared_) return std::nullopt;
  return prepared_->entry.id;
}

void SimStorage::note(const std::string& text) const {
  if (on_note) on_note(node_, text);
}

core::StorageDone SimStorage::execute(const core::StorageTask& task, Rng& rng) {
  if (options_.failure_ppm > 0 && rng.chance(options_.failure_ppm)) {
    // The database could not be reached: nothing ran. A prepare that fails
    // leaves nothing prepared (storage_ops.hpp), and there is no partial
    // ApplyEntries: the failure hit before the first entry.
    ++injected_failures_;
    core::StorageDone done;
    done.id = task.id;
    done.ok = false;
    done.error = Error(ErrorKind::storage_unavailable, "injected: database unreachable");
    return done;
  }
  if (refuses(task.op)) {
    ++refused_;
    core::StorageDone done;
    done.id = task.id;
    done.ok = false;
    done.error = Error(ErrorKind::sql, "injected: Deadlock found when trying to get lock", 1213);
    return done;
  }
  core::StorageDone done = run(task.op);
  done.id = task.id;
  return done;
}

bool SimStorage::refuses(const core::StorageOp& op) const {
  const bool entries =
      std::holds_alternative<core::ApplyEntries>(op) || std::holds_alternative<core::PrepareEntry>(op);
  return (refuse_entries_ && entries) ||
         (refuse_installs_ && std::holds_alternative<core::InstallSnapshot>(op));
}

core::StorageDone SimStorage::run(const core::StorageOp& op) {
  core::StorageDone done;
  if (const auto* p = std::get_if<core::PersistPromise>(&op)) {
    if (p->epoch < promised_) note("PersistPromise " + std::to_string(p->epoch) + " below stored promise");
    promised_ = std::max(promised_, p->epoch);
  } else if (const auto* prep = std::get_if<core::PrepareEntry>(&op)) {
    done = do_prepare(*prep);
  } else if (const auto* c = std::get_if<core::CommitEntry>(&op)) {
    done = do_commit(*c);
  } else if (const auto* rb = std::get_if<core::RollbackEntry>(&op)) {
    if (prepared_ && prepared_->entry.id == rb->id) {
      prepared_.reset();
    } else if (prepared_) {
      note("RollbackEntry " + to_string(rb->id) + " while " + to_string(prepared_->entry.id) + " is prepared");
    }
  } else if (const auto* ap = std::get_if<core::ApplyEntries>(&op)) {
    done = do_apply(*ap);
  } else if (const auto* rl = std::get_if<core::ReadLog>(&op)) {
    done = do_read_log(*rl);
  } else if (std::holds_alternative<core::ReadSnapshot>(op)) {
    done.snapshot_applied = applied_;
    done.snapshot_data = encode_snapshot(data_, applied_, log_);
  } else if (const auto* in = std::get_if<core::InstallSnapshot>(&op)) {
    done = do_install(*in);
  }
  return done;
}

core::StorageDone SimStorage::do_prepare(const core::PrepareEntry& op) {
  core::StorageDone done;
  if (prepared_) {
    // One prepared transaction at a time: a second one would wait on its
    // locks (the real backends time out) — report the error, keep the first.
    note("PrepareEntry " + to_string(op.entry.id) + " while " + to_string(prepared_->entry.id) +
         " is prepared: refused");
    done.ok = false;
    done.error = Error(ErrorKind::sql, "Lock wait timeout exceeded (another transaction is prepared)", 1205);
    return done;
  }
  Prepared p;
  p.entry = op.entry;
  if (!run_entry(op.entry, &op.outcomes, p.writes, p.outcomes)) {
    note("PrepareEntry " + to_string(op.entry.id) + ": unreadable effects");
    done.ok = false;
    done.error = Error(ErrorKind::internal, "unreadable effects");
    return done;
  }
  if (op.capture_effects && !op.entry.effects) {
    p.entry.effects = encode_effects(p.writes);
    done.effects = p.entry.effects;
  }
  done.outcomes = p.outcomes;
  prepared_ = std::move(p);
  return done;
}

bool SimStorage::run_entry(const Entry& entry, const std::vector<core::StatementOutcome>* effects_outcomes,
                           Writes& writes, std::vector<core::StatementOutcome>& outcomes) {
  writes.clear();
  outcomes.clear();
  if (entry.effects) {
    // The coordinator ran the statements; we store what it changed. The
    // outcomes are its own: those it sent, or (catch-up) the log's.
    if (!decode_effects(*entry.effects, writes)) return false;
    for (std::size_t i = 0; i < entry.statements.size(); ++i) {
      core::StatementOutcome o;
      if (effects_outcomes != nullptr && i < effects_outcomes->size()) {
        o = (*effects_outcomes)[i];
      } else {
        o.ok = entry.statements[i].expect_ok;
        o.code = entry.statements[i].expect_code;
      }
      outcomes.push_back(o);
    }
    return true;
  }
  for (const auto& s : entry.statements) {
    Writes attempt = writes;  // savepoint
    std::string stamp;
    if (options_.nondeterministic) stamp = "n" + std::to_string(node_) + "." + std::to_string(++stamps_);
    auto outcome = run_statement(s.sql, data_, attempt, options_.nondeterministic ? &stamp : nullptr);
    if (outcome.ok) writes = std::move(attempt);
    outcomes.push_back(outcome);
  }
  return true;
}

core::StorageDone SimStorage::do_commit(const core::CommitEntry& op) {
  core::StorageDone done;
  if (!prepared_ || !(prepared_->entry.id == op.id)) {
    // XAER_NOTA: no such prepared transaction.
    note("CommitEntry " + to_string(op.id) + ": no such prepared transaction");
    done.ok = false;
    done.error = Error(ErrorKind::sql, "XAER_NOTA: Unknown XID " + to_string(op.id), 1397);
    return done;
  }
  Prepared p = std::move(*prepared_);
  prepared_.reset();
  commit_entry(p.entry, p.outcomes, p.writes);
  return done;
}

void SimStorage::commit_entry(const Entry& entry, const std::vector<core::StatementOutcome>& outcomes,
                              const Writes& writes) {
  const EntryId before = applied_;
  apply_writes(data_, writes);
  applied_ = entry.id;
  Entry logged = entry;
  for (std::size_t i = 0; i < logged.statements.size() && i < outcomes.size(); ++i) {
    logged.statements[i].expect_ok = outcomes[i].ok;
    logged.statements[i].expect_code = outcomes[i].ok ? 0 : outcomes[i].code;
  }
  log_[logged.id.seq] = logged;
  while (log_.size() > options_.log_retention) log_.erase(log_.begin());
  if (on_commit) on_commit(node_, before, logged);
}

core::StorageDone SimStorage::do_apply(const core::ApplyEntries& op) {
  core::StorageDone done;
  if (prepared_) {
    note("ApplyEntries while " + to_string(prepared_->entry.id) + " is prepared");
  }
  for (const auto& entry : op.entries) {
    Writes writes;
    std::vector<core::StatementOutcome> outcomes;
    bool same = run_entry(entry, nullptr, writes, outcomes);
    for (std::size_t i = 0; same && i < entry.statements.size(); ++i) {
      same = i < outcomes.size() && matches_expected(entry.statements[i], outcomes[i]);
    }
    if (!same) {
      done.diverged = true;
      break;
    }
    commit_entry(entry, outcomes, writes);
    ++done.applied_count;
  }
  return done;
}

core::StorageDone SimStorage::do_read_log(const core::ReadLog& op) const {
  core::StorageDone done;
  const auto& after = op.after;
  if (after.seq > applied_.seq) {
    done.log_conflict = true;
    return done;
  }
  if (after.seq == applied_.seq) {
    if (!(after == applied_)) done.log_conflict = true;
    return done;
  }
  // after.seq < applied_.seq: we need the entry at after.seq (to check it)
  // and every entry after it.
  const core::Seq first = log_.empty() ? applied_.seq + 1 : log_.begin()->first;
  if (after.seq == 0) {
    if (first > 1) {
      done.log_truncated = true;
      return done;
    }
  } else {
    auto at = log_.find(after.seq);
    if (after.seq < first || at == log_.end()) {
      done.log_truncated = true;
      return done;
    }
    if (!(at->second.id == after)) {
      done.log_conflict = true;
      return done;
    }
  }
  for (auto it = log_.upper_bound(after.seq); it != log_.end() && done.entries.size() < op.max; ++it) {
    done.entries.push_back(it->second);
  }
  return done;
}

core::StorageDone SimStorage::do_install(const core::InstallSnapshot& op) {
  core::StorageDone done;
  KeyValues data;
  EntryId applied;
  std::map<core::Seq, Entry> log;
  if (!decode_snapshot(op.data, data, applied, log)) {
    done.ok = false;
    done.error = Error(ErrorKind::internal, "malformed snapshot");
    note("InstallSnapshot: malformed snapshot");
    return done;
  }
  if (!(applied == op.applied)) {
    note("InstallSnapshot: applied " + to_string(op.applied) + " but the snapshot holds " + to_string(applied));
  }
  if (prepared_) {
    note("InstallSnapshot drops prepared " + to_string(prepared_->entry.id));
    prepared_.reset();
  }
  data_ = std::move(data);
  applied_ = applied;
  log_ = std::move(log);
  while (log_.size() > options_.log_retention) log_.erase(log_.begin());
  ++snapshot_installs_;
  if (on_snapshot) on_snapshot(node_, applied_);
  return done;
}

void SimStorage::crash(const core::StorageTask* executing, Rng& rng) {
  if (executing != nullptr && rng.chance(500'000) && !refuses(executing->op)) {
    // It reached the disk before the crash; nobody will hear of it.
    if (const auto* ap = std::get_if<core::ApplyEntries>(&executing->op)) {
      // Each entry is its own transaction: a prefix may have committed.
      core::ApplyEntries prefix;
      const auto n = rng.below(ap->entries.size() + 1);
      prefix.entries.assign(ap->entries.begin(), ap->entries.begin() + static_cast<std::ptrdiff_t>(n));
      (void)run(prefix);
    } else {
      (void)run(executing->op);
    }
  }
  if (!options_.prepare_durable && prepared_) prepared_.reset();  // SQLite: an open transaction is lost
}

core::RecoveredState SimStorage::recover() const {
  core::RecoveredState r;
  r.promised = promised_;
  r.applied = applied_;
  if (prepared_) r.prepared.push_back(prepared_->entry.id);
  return r;
}

}  // namespace distdb::sim
