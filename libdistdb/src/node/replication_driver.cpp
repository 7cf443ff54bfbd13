#include "node/replication_driver.hpp"

#include "node/checksum.hpp"

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>

#include "node/replication_executor.hpp"
#include "sql/statement.hpp"
#include "util/log_internal.hpp"
#include "wire/peer_codec.hpp"

namespace distdb {

namespace {

using Clock = std::chrono::steady_clock;

int ticks(int ms) {
  return std::max(1, ms / ReplicationDriver::kTickMs);
}

// Statements MariaDB cannot run inside an XA transaction: DDL wherever it
// stands in the text (first, in a BEGIN NOT ATOMIC body, after SET
// STATEMENT ... FOR). Read the way MariaDB reads it (the replicated text has
// its executable comments resolved already).
bool is_ddl(const std::string& sql) {
  return sql::classify(sql, sql::Dialect::mariadb, 999999).ddl;
}

// SQLite's DDL is transactional, but under row replication it is still run
// as statements by every member (a changeset holds rows, not the schema).
bool is_sqlite_ddl(const std::string& sql) {
  return sql::classify(sql, sql::Dialect::sqlite, 0).ddl;
}

std::function<bool(const std::string&)> ddl_test(const Config& config) {
  if (config.storage.backend == StorageBackend::mariadb) return is_ddl;
  return is_sqlite_ddl;
}

core::ReplicaConfig replica_config(const Config& config) {
  core::ReplicaConfig rc;
  rc.id = config.id;
  rc.members.push_back(config.id);
  for (const auto& peer : config.peers) rc.members.push_back(peer.id);
  rc.heartbeat_interval_ticks = ticks(config.timeouts.heartbeat_interval_ms);
  rc.heartbeat_timeout_ticks = ticks(config.timeouts.heartbeat_timeout_ms);
  rc.round_timeout_ticks = ticks(config.timeouts.heartbeat_timeout_ms);
  rc.forward_timeout_ticks = ticks(config.timeouts.request_timeout_ms);
  // A failed apply is retried after one heartbeat interval, then twice as
  // long each time, up to 32 intervals (6.4 s with the default 200 ms);
  // why these, in core::ReplicaConfig.
  rc.apply_retry_min_ticks = rc.heartbeat_interval_ticks;
  rc.apply_retry_max_ticks = 32 * rc.heartbeat_interval_ticks;
  rc.random_seed = static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
  rc.ship_effects = config.storage.replication == Replication::rows;
  // An entry is never half DDL (run as text by every member) and half
  // anything else: on MariaDB DDL commits by itself, and under row
  // replication the rest would have to be shipped as rows. A checksum
  // likewise digests the data between two entries.
  if (config.storage.backend == StorageBackend::mariadb || rc.ship_effects) {
    rc.runs_alone = [is_ddl = ddl_test(config)](const std::string& sql) {
      return is_checksum_statement(sql) || is_ddl(sql);
    };
  }
  return rc;
}

// Whether the completion of `op` is one the core counts as an attempt to
// apply entries here (catch_up.cpp, note_apply_failure), which this driver
// reports itself (log_apply_outcome).
bool is_apply(const core::StorageOp& op) {
  return std::holds_alternative<core::ApplyEntries>(op) ||
         std::holds_alternative<core::InstallSnapshot>(op) || std::holds_alternative<core::PrepareEntry>(op);
}

std::string entry_str(const core::EntryId& id) {
  return std::to_string(id.seq) + " (epoch " + std::to_string(id.origin) + ")";
}

// Why an apply-like task failed, or nullopt when it did not.
std::optional<std::string> apply_failure(const core::StorageOp& op, const core::StorageDone& done) {
  if (!done.ok) return done.error.message;
  if (done.diverged) return "an entry gave other outcomes than the log records: this node's data diverged";
  if (const auto* a = std::get_if<core::ApplyEntries>(&op); a != nullptr && done.applied_count == 0) {
    return "no entry was applied";
  }
  return std::nullopt;
}

// Logs an apply that failed (once per attempt: the core waits a back-off
// step before the next one, so this is at most once per step, never once
// per tick), the decision to ask for a full copy, and the first success
// after failures.
void log_apply_outcome(const core::StorageOp& op, const std::optional<std::string>& failure,
                       const core::CatchUpStatus& before, const core::CatchUpStatus& after) {
  if (!failure) {
    if (before.failed_attempts > 0 && after.failed_attempts == 0) {
      DISTDB_LOG(info) << "[*] Replication: entries apply here again after " << before.failed_attempts
                       << " failed attempt(s); last applied entry " << entry_str(after.applied);
    }
    return;
  }
  const auto retry_ms = after.retry_in_ticks * static_cast<std::uint64_t>(ReplicationDriver::kTickMs);
  const std::string attempt = "failed attempt " + std::to_string(after.failed_attempts) +
                              " in a row; next catch-up request in " + std::to_string(retry_ms) + " ms";
  if (const auto* a = std::get_if<core::ApplyEntries>(&op); a != nullptr && !a->entries.empty()) {
    DISTDB_LOG(warn) << "[!] Replication: cannot apply entry " << after.applied.seq + 1 << " (entries "
                     << entry_str(a->entries.front().id) << " to " << entry_str(a->entries.back().id)
                     << ", after entry " << entry_str(after.applied) << "): " << *failure << " (" << attempt
                     << ")";
  } else if (const auto* i = std::get_if<core::InstallSnapshot>(&op)) {
    DISTDB_LOG(warn) << "[!] Replication: cannot install the full copy of the data (up to entry "
                     << entry_str(i->applied) << "): " << *failure << " (" << attempt << ")";
  } else if (const auto* p = std::get_if<core::PrepareEntry>(&op)) {
    DISTDB_LOG(warn) << "[!] Replication: cannot prepare entry " << entry_str(p->entry.id) << " (after entry "
                     << entry_str(after.applied) << "): " << *failure
                     << "; this node votes no, leaves the view and catches up (" << attempt << ")";
  }
  if (after.needs_snapshot && !before.needs_snapshot) {
    if (after.snapshot_after_failures) {
      DISTDB_LOG(warn) << "[!] Replication: the entries after " << entry_str(after.applied) << " failed "
                       << after.failed_attempts
                       << " times in a row here; asking the coordinator for a full copy of the data instead";
    } else {
      DISTDB_LOG(warn) << "[!] Replication: asking the coordinator for a full copy of the data (after entry "
                       << entry_str(after.applied) << ")";
    }
  }
}

// Chunks of full copies fit the peer frames both ends allow (the transport
// drops a frame it sends over limits.max_peer_message_bytes; base64 makes 4
// bytes of 3, and the frame's JSON and signature add a little).
SnapshotTransfers::Options transfer_options(const Config& config) {
  SnapshotTransfers::Options o;
  const auto fits = [](std::size_t frame) {
    return std::clamp<std::size_t>(frame > 8192 ? (frame - 4096) / 4 * 3 : 1024, 1024, 1024 * 1024);
  };
  o.chunk_bytes = fits(config.limits.max_peer_message_bytes);
  // What this node accepts from a member (tcp_transport.cpp): the asker
  // asks for no more, whatever the source could send.
  o.receive_chunk_bytes =
      fits(std::max(config.limits.max_message_bytes, config.limits.max_peer_message_bytes));
  return o;
}

}  // namespace

ReplicationDriver::ReplicationDriver(Config config, Callbacks callbacks)
    : config_(std::move(config)), callbacks_(std::move(callbacks)) {}

void ReplicationDriver::use_spool(std::unique_ptr<SpoolDir> spool) {
  std::lock_guard lock(transfer_mutex_);
  spool_ = std::move(spool);
  transfers_ = std::make_unique<SnapshotTransfers>(*spool_, transfer_options(config_));
}

ReplicationDriver::~ReplicationDriver() {
  stop();
}

void ReplicationDriver::start() {
  executor_thread_ = std::thread([this] { executor_loop(); });
  ticker_thread_ = std::thread([this] { ticker_loop(); });
}

void ReplicationDriver::stop() {
  stopped_.store(true);
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
  }
  tasks_ready_.notify_all();
  ticker_wake_.notify_all();
  if (ticker_thread_.joinable()) ticker_thread_.join();
  if (executor_thread_.joinable()) executor_thread_.join();
}

template <class Step>
std::vector<core::WriteResult> ReplicationDriver::drive(Step&& step) {
  std::vector<core::WriteResult> results;
  std::lock_guard lock(core_mutex_);
  if (replica_ == nullptr) return results;
  step(*replica_);
  perform_ready_locked(results);
  return results;
}

void ReplicationDriver::perform_ready_locked(std::vector<core::WriteResult>& results) {
  if (!replica_->has_ready()) return;
  core::Ready ready = replica_->take_ready();
  if (!ready.storage.empty()) {
    {
      std::lock_guard lock(queue_mutex_);
      for (auto& t : ready.storage) tasks_.push_back(std::move(t));
    }
    tasks_ready_.notify_one();
  }
  // Under core_mutex_, so that the messages of successive steps leave in
  // the order the core produced them.
  for (auto& m : ready.messages) {
    if (auto* reply = std::get_if<core::CatchUpReply>(&m.message); reply != nullptr && reply->snapshot) {
      // The copy is in a file: the reply goes out with a descriptor of the
      // transfer, and the asker pulls the file in chunks.
      std::lock_guard lock(transfer_mutex_);
      const distdb::Status st = transfers_ ? transfers_->offer(m.to, *reply, Clock::now())
                                           : distdb::Status(Error(ErrorKind::internal, "no spool directory"));
      if (!st) {
        DISTDB_LOG(warn) << "replication: cannot offer a full copy to node " << m.to << ": "
                         << st.error().message;
        continue;  // the asker asks again
      }
      DISTDB_LOG(info) << "[*] Replication: sending node " << m.to << " a full copy of the data (up to entry "
                       << entry_str(reply->snapshot_applied) << ")";
    } else if (std::holds_alternative<core::CatchUpRequest>(m.message)) {
      std::lock_guard lock(transfer_mutex_);
      if (transfers_ && transfers_->holds_back_catch_up(m.to, Clock::now()))
        continue;  // its copy is on the way
    }
    callbacks_.send_to_peer(m.to, wire::encode_peer(m));
  }
  for (auto& r : ready.results) results.push_back(std::move(r));
}

void ReplicationDriver::deliver(std::vector<core::WriteResult> results) {
  for (auto& r : results) callbacks_.on_result(std::move(r));
}

void ReplicationDriver::defer(std::vector<core::WriteResult> results) {
  if (results.empty()) return;
  {
    std::lock_guard lock(queue_mutex_);
    for (auto& r : results) deferred_.push_back(std::move(r));
  }
  ticker_wake_.notify_one();
}

void ReplicationDriver::on_peer_message(const core::Envelope& envelope) {
  if (stopped_.load()) return;
  if (const auto* reply = std::get_if<core::CatchUpReply>(&envelope.message);
      reply != nullptr && reply->snapshot) {
    // Held back until the copy it describes has arrived whole.
    bool from_coordinator = false;
    {
      std::lock_guard lock(core_mutex_);  // before transfer_mutex_, never inside it
      from_coordinator = replica_ != nullptr && replica_->coordinator() == envelope.from;
    }
    SnapshotTransfers::Step step;
    {
      std::lock_guard lock(transfer_mutex_);
      if (!transfers_) return;
      step = transfers_->receive(envelope.from, *reply, Clock::now(), from_coordinator);
    }
    perform_transfer_step(std::move(step));
    return;
  }
  deliver(drive([&](core::Replica& r) { r.step(envelope); }));
}

void ReplicationDriver::on_transfer_message(const wire::TransferEnvelope& envelope) {
  if (stopped_.load()) return;
  SnapshotTransfers::Step step;
  {
    std::lock_guard lock(transfer_mutex_);
    if (!transfers_) return;
    if (const auto* request = std::get_if<wire::SnapshotChunkRequest>(&envelope.message)) {
      step = transfers_->serve(envelope.from, *request, Clock::now());
    } else {
      step =
          transfers_->on_chunk(envelope.from, std::get<wire::SnapshotChunk>(envelope.message), Clock::now());
    }
  }
  perform_transfer_step(std::move(step));
}

void ReplicationDriver::perform_transfer_step(SnapshotTransfers::Step step) {
  for (const auto& line : step.log) DISTDB_LOG(warn) << "[!] Replication: " << line;
  for (auto& out : step.send) {
    callbacks_.send_to_peer(out.to, wire::encode_transfer({config_.id, out.to, std::move(out.message)}));
  }
  if (step.complete) {
    DISTDB_LOG(info) << "[*] Replication: a full copy of the data arrived from node " << step.complete_from
                     << "; installing it";
    core::Envelope envelope{step.complete_from, config_.id, std::move(*step.complete)};
    deliver(drive([&](core::Replica& r) { r.step(envelope); }));
  }
}

void ReplicationDriver::propose(core::ClientTag tag, std::string sql) {
  if (stopped_.load()) {
    // Nothing will run it, and no thread is left to deliver an answer. Not
    // answered from here either: the caller may hold the lock that
    // on_result takes (a pool thread pumping its connection's next request
    // while the node stops). The node answers the writes it still waits
    // for once everything has stopped (Node::stop).
    return;
  }
  std::vector<core::WriteResult> results;
  {
    std::lock_guard lock(core_mutex_);
    if (replica_ == nullptr) {
      // No replica yet (the storage is being opened): keep the write a while.
      early_.push_back({tag, std::move(sql), Clock::now()});
      return;
    }
    replica_->propose(tag, std::move(sql));
    perform_ready_locked(results);
  }
  // The caller may hold its own locks (the node's session table), and
  // on_result takes them: answers found right away (no coordinator, no
  // quorum) go out from the ticker thread instead.
  defer(std::move(results));
}

ReplicationDriver::Status ReplicationDriver::status() const {
  std::lock_guard lock(status_mutex_);
  return status_;
}

void ReplicationDriver::executor_loop() {
  // Open the storage and read where this replica stands; retry until the
  // database is there (the node serves reads meanwhile, and writes wait).
  std::unique_ptr<Storage> storage;
  std::unique_ptr<Storage> reader;
  std::unique_ptr<ReplicationExecutor> executor;
  for (int attempt = 0;; ++attempt) {
    {
      std::unique_lock lock(queue_mutex_);
      if (stopping_) return;
    }
    auto opened = open_storage(config_.storage);
    auto opened_reader = open_storage(config_.storage);
    if (opened && !opened_reader) opened = opened_reader.error();
    if (opened) {
      // Row replication needs the server's binary log: until it is set up
      // as it must be, this member takes no part in writes (it would fail
      // every entry it coordinates or receives), and says why.
      std::vector<std::string> warnings;
      if (auto st = check_replication_support(config_.storage, &warnings); !st) {
        if (attempt % 10 == 0) {
          DISTDB_LOG(error) << "replication waits for the database to be set up for row replication: "
                            << st.error().message;
        }
        std::unique_lock lock(queue_mutex_);
        tasks_ready_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stopping_; });
        continue;
      }
      if (attempt == 0) {
        for (const auto& w : warnings) DISTDB_LOG(warn) << "replication: " << w;
      }
    }
    if (opened) {
      if (auto st = ensure_distdb_schema(**opened); st) {
        auto exec = std::make_unique<ReplicationExecutor>(**opened, **opened_reader, ddl_test(config_),
                                                          config_.limits.log_retention_entries,
                                                          config_.storage.replication == Replication::rows);
        exec->write_full_copies_to(spool_.get());
        exec->set_peer_message_limit(config_.limits.max_peer_message_bytes);
        if (config_.storage.backend == StorageBackend::mariadb)
          exec->set_txn_scope(config_.storage.db.database);
        auto recovered = exec->recover();
        if (recovered) {
          storage = std::move(*opened);
          reader = std::move(*opened_reader);
          executor = std::move(exec);
          DISTDB_LOG(info) << "[*] Replication state: epoch " << recovered->promised
                           << ", last applied entry " << recovered->applied.seq << " (epoch "
                           << recovered->applied.origin << ")"
                           << (recovered->prepared.empty() ? ""
                                                           : ", in-doubt prepared transactions to resolve")
                           << (recovered->needs_snapshot
                                   ? "; a full copy was being installed when the node stopped: it asks for "
                                     "another and serves no reads until then"
                                   : "");
          std::vector<core::WriteResult> results;
          {
            std::lock_guard lock(core_mutex_);
            replica_ = std::make_unique<core::Replica>(replica_config(config_), *recovered);
            refresh_status_locked();  // now, not at the next tick: reads see a waiting copy at once
            for (auto& w : std::exchange(early_, {})) {
              replica_->propose(w.tag, std::move(w.sql));
              perform_ready_locked(results);
            }
          }
          deliver(std::move(results));
          break;
        }
        if (attempt % 10 == 0) {
          DISTDB_LOG(warn) << "replication: cannot read state: " << recovered.error().message;
        }
      } else if (attempt % 10 == 0) {
        DISTDB_LOG(warn) << "replication: " << st.error().message;
      }
    } else if (attempt % 10 == 0) {
      DISTDB_LOG(warn) << "replication waits for the storage: " << opened.error().message;
    }
    std::unique_lock lock(queue_mutex_);
    tasks_ready_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stopping_; });
  }
  for (;;) {
    core::StorageTask task;
    {
      std::unique_lock lock(queue_mutex_);
      tasks_ready_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (stopping_) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    core::StorageDone done;
    if (const auto* install = std::get_if<core::InstallSnapshot>(&task.op)) {
      {
        std::lock_guard lock(transfer_mutex_);
        if (transfers_) transfers_->installing(install->data);  // not removed while it is read
      }
      // No local read may see the tables while they are replaced.
      read_gate_.begin_install();
      done = executor->perform(task);
      read_gate_.end_install();
      std::lock_guard lock(transfer_mutex_);
      if (transfers_) transfers_->installed(install->data);  // its file is no longer needed
    } else {
      done = executor->perform(task);
    }
    if (!is_apply(task.op)) {
      deliver(drive([&](core::Replica& r) { r.storage_done(std::move(done)); }));
      continue;
    }
    // What the core made of an attempt to apply entries here: logged after
    // the core's mutex is released.
    const std::optional<std::string> failure = apply_failure(task.op, done);
    core::CatchUpStatus before;
    core::CatchUpStatus after;
    bool stepped = false;
    deliver(drive([&](core::Replica& r) {
      before = r.catch_up_status();
      r.storage_done(std::move(done));
      after = r.catch_up_status();
      stepped = true;
    }));
    if (stepped) log_apply_outcome(task.op, failure, before, after);
  }
}

void ReplicationDriver::ticker_loop() {
  auto next_tick = Clock::now() + std::chrono::milliseconds(kTickMs);
  for (;;) {
    std::vector<core::WriteResult> answers;
    {
      std::unique_lock lock(queue_mutex_);
      ticker_wake_.wait_until(lock, next_tick, [this] { return stopping_ || !deferred_.empty(); });
      if (stopping_) return;
      answers.swap(deferred_);
    }
    deliver(std::move(answers));
    const auto now = Clock::now();
    if (now < next_tick) continue;
    next_tick += std::chrono::milliseconds(kTickMs);
    if (next_tick < now)
      next_tick = now + std::chrono::milliseconds(kTickMs);  // we fell behind: do not burst
    std::vector<core::WriteResult> results;
    {
      std::lock_guard lock(core_mutex_);
      if (replica_ == nullptr) {
        results = expire_early_writes_locked(now);
      } else {
        replica_->tick();
        perform_ready_locked(results);
        maybe_propose_checksum_locked(now);
        perform_ready_locked(results);
        refresh_status_locked();
      }
    }
    deliver(std::move(results));
    SnapshotTransfers::Step transfer_step;
    {
      std::lock_guard lock(transfer_mutex_);
      if (transfers_) transfer_step = transfers_->tick(now);
    }
    perform_transfer_step(std::move(transfer_step));
  }
}

void ReplicationDriver::maybe_propose_checksum_locked(Clock::time_point now) {
  const int interval_ms = config_.timeouts.checksum_interval_ms;
  // The first check comes one interval after this node became a coordinator
  // that can commit: a member does not check what it is still recovering.
  if (interval_ms <= 0 || replica_->role() != core::Role::coordinator || !replica_->can_commit()) {
    next_checksum_ = now + std::chrono::milliseconds(std::max(interval_ms, 0));
    return;
  }
  if (now < next_checksum_) return;
  next_checksum_ = now + std::chrono::milliseconds(interval_ms);
  // Tags with the top bit set are the driver's own (a node's client tags
  // count nanoseconds since 1970, far below it); nobody waits for their
  // answer (the node ignores unknown tags).
  replica_->propose(kOwnTagBit | ++own_tags_, std::string(kChecksumStatement));
}

std::vector<core::WriteResult> ReplicationDriver::expire_early_writes_locked(Clock::time_point now) {
  std::vector<core::WriteResult> expired;
  while (!early_.empty() && now - early_.front().since > kEarlyWriteWait) {
    core::WriteResult r;
    r.tag = early_.front().tag;
    r.kind = core::WriteResult::no_quorum;
    r.message = "this node's storage is not available: it cannot take part in replication";
    early_.pop_front();
    expired.push_back(std::move(r));
  }
  return expired;
}

void ReplicationDriver::refresh_status_locked() {
  Status s;
  s.running = true;
  s.role = replica_->role();
  s.coordinator = replica_->coordinator();
  s.epoch = replica_->epoch();
  s.applied = replica_->applied();
  s.can_commit = replica_->can_commit();
  s.members = replica_->members();
  const core::CatchUpStatus catch_up = replica_->catch_up_status();
  s.stale = catch_up.stale();
  s.staleness = catch_up.staleness;
  s.failed_applies = catch_up.failed_attempts;
  s.needs_full_copy = catch_up.needs_snapshot;
  // Loudly, once per member and finding: a member's data differs.
  for (const NodeId m : replica_->diverged_members()) {
    if (reported_diverged_.insert(m).second) {
      DISTDB_LOG(error) << "[!] DIVERGED: the outcomes of node " << m
                        << " (an automatic id, a checksum of its data, ...) differ from the coordinator's: it "
                           "leaves the view and takes a full copy of the data";
    }
  }
  for (auto it = reported_diverged_.begin(); it != reported_diverged_.end();) {
    it = replica_->diverged_members().count(*it) == 0 ? reported_diverged_.erase(it) : std::next(it);
  }
  staleness_.store(s.staleness, std::memory_order_relaxed);
  applied_seq_.store(s.applied.seq, std::memory_order_relaxed);
  std::lock_guard lock(status_mutex_);
  // The transitions an operator wants to see, in the seed's words.
  if (s.coordinator != status_.coordinator || s.epoch != status_.epoch) {
    if (s.coordinator != 0) {
      DISTDB_LOG(info) << "[*] Current coordinator: Node " << s.coordinator << " (epoch " << s.epoch << ")";
    } else if (status_.coordinator != 0) {
      DISTDB_LOG(warn) << "[!] Coordinator " << status_.coordinator << " lost; waiting for an election";
    }
  }
  if (s.role != status_.role && s.role == core::Role::coordinator) {
    DISTDB_LOG(info) << "[*] This node is now the coordinator (epoch " << s.epoch << ")";
  } else if (s.role != status_.role && status_.role == core::Role::coordinator) {
    DISTDB_LOG(warn) << "[!] This node stopped being the coordinator: " << replica_->last_step_down_reason();
  }
  status_ = std::move(s);
}

}  // namespace distdb
