#include "node/replication_driver.hpp"

#include <chrono>

#include "node/replication_executor.hpp"
#include "sql/statement.hpp"
#include "util/log_internal.hpp"
#include "wire/peer_codec.hpp"

namespace distdb {

namespace {

using Clock = std::chrono::steady_clock;

int ticks(int ms) { return std::max(1, ms / ReplicationDriver::kTickMs); }

core::ReplicaConfig replica_config(const Config& config) {
  core::ReplicaConfig rc;
  rc.id = config.id;
  rc.members.push_back(config.id);
  for (const auto& peer : config.peers) rc.members.push_back(peer.id);
  rc.heartbeat_interval_ticks = ticks(config.timeouts.heartbeat_interval_ms);
  rc.heartbeat_timeout_ticks = ticks(config.timeouts.heartbeat_timeout_ms);
  rc.round_timeout_ticks = ticks(config.timeouts.heartbeat_timeout_ms);
  rc.forward_timeout_ticks = ticks(config.timeouts.request_timeout_ms);
  rc.random_seed = static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
  return rc;
}

// Statements MariaDB cannot run inside an XA transaction.
bool is_ddl(const std::string& sql) {
  const auto c = sql::classify(sql);
  static const char* const ddl[] = {"CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "GRANT", "REVOKE",
                                    "ANALYZE", "OPTIMIZE", "REPAIR", "FLUSH", "INSTALL", "UNINSTALL"};
  for (const char* k : ddl) {
    if (c.first_keyword == k) return true;
  }
  return false;
}

}  // namespace

ReplicationDriver::ReplicationDriver(Config config, Callbacks callbacks)
    : config_(std::move(config)), callbacks_(std::move(callbacks)) {}

ReplicationDriver::~ReplicationDriver() { stop(); }

void ReplicationDriver::start() {
  executor_thread_ = std::thread([this] { executor_loop(); });
  core_thread_ = std::thread([this] { core_loop(); });
}

void ReplicationDriver::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  tasks_ready_.notify_all();
  if (core_thread_.joinable()) core_thread_.join();
  if (executor_thread_.joinable()) executor_thread_.join();
}

void ReplicationDriver::post(Event event) {
  {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(event));
  }
  wake_.notify_one();
}

void ReplicationDriver::on_peer_message(core::Envelope envelope) { post(std::move(envelope)); }

void ReplicationDriver::propose(core::ClientTag tag, std::string sql) { post(Propose{tag, std::move(sql)}); }

ReplicationDriver::Status ReplicationDriver::status() const {
  std::lock_guard lock(status_mutex_);
  return status_;
}

void ReplicationDriver::executor_loop() {
  // Open the storage and read where this replica stands; retry until the
  // database is there (the node serves reads meanwhile, and writes get
  // no_quorum).
  std::unique_ptr<Storage> storage;
  std::unique_ptr<Storage> reader;
  std::unique_ptr<ReplicationExecutor> executor;
  for (int attempt = 0;; ++attempt) {
    {
      std::unique_lock lock(mutex_);
      if (stopping_) return;
    }
    auto opened = open_storage(config_.storage);
    auto opened_reader = open_storage(config_.storage);
    if (opened && !opened_reader) opened = opened_reader.error();
    if (opened) {
      if (auto st = ensure_distdb_schema(**opened); st) {
        auto exec = std::make_unique<ReplicationExecutor>(**opened, **opened_reader, is_ddl,
                                                           config_.limits.log_retention_entries);
        auto recovered = exec->recover();
        if (recovered) {
          storage = std::move(*opened);
          reader = std::move(*opened_reader);
          executor = std::move(exec);
          std::lock_guard lock(mutex_);
          replica_ = std::make_unique<core::Replica>(replica_config(config_), *recovered);
          replica_ready_ = true;
          DISTDB_LOG(info) << "[*] Replication state: epoch " << recovered->promised << ", last applied entry "
                           << recovered->applied.seq << " (epoch " << recovered->applied.origin << ")"
                           << (recovered->prepared.empty() ? "" : ", in-doubt prepared transactions to resolve");
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
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stopping_; });
  }
  wake_.notify_all();
  for (;;) {
    core::StorageTask task;
    {
      std::unique_lock lock(mutex_);
      tasks_ready_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (stopping_) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    if (std::holds_alternative<core::InstallSnapshot>(task.op)) {
      // No local read may see the tables while they are replaced.
      read_gate_.begin_install();
      core::StorageDone done = executor->perform(task);
      read_gate_.end_install();
      post(std::move(done));
    } else {
      post(executor->perform(task));
    }
  }
}

void ReplicationDriver::core_loop() {
  auto next_tick = Clock::now() + std::chrono::milliseconds(kTickMs);
  for (;;) {
    std::deque<Event> batch;
    bool ready = false;
    {
      std::unique_lock lock(mutex_);
      wake_.wait_until(lock, next_tick, [this] { return stopping_ || !events_.empty(); });
      if (stopping_) return;
      batch.swap(events_);
      ready = replica_ready_;
    }
    if (!ready) {
      // No replica yet (the storage is being opened): keep writes a while,
      // drop peer traffic (peers retry).
      const auto now = Clock::now();
      for (auto& ev : batch) {
        if (auto* p = std::get_if<Propose>(&ev)) early_.push_back({std::move(*p), now});
      }
      while (!early_.empty() && now - early_.front().second > kEarlyWriteWait) {
        core::WriteResult r;
        r.tag = early_.front().first.tag;
        r.kind = core::WriteResult::no_quorum;
        r.message = "this node's storage is not available: it cannot take part in replication";
        early_.pop_front();
        callbacks_.on_result(std::move(r));
      }
      if (now >= next_tick) next_tick = now + std::chrono::milliseconds(kTickMs);
      continue;
    }
    for (auto& [p, since] : std::exchange(early_, {})) {
      replica_->propose(p.tag, std::move(p.sql));
      flush_ready();
    }
    for (auto& ev : batch) {
      if (auto* env = std::get_if<core::Envelope>(&ev)) {
        replica_->step(*env);
      } else if (auto* p = std::get_if<Propose>(&ev)) {
        replica_->propose(p->tag, std::move(p->sql));
      } else {
        replica_->storage_done(std::move(std::get<core::StorageDone>(ev)));
      }
      flush_ready();
    }
    const auto now = Clock::now();
    if (now >= next_tick) {
      replica_->tick();
      next_tick += std::chrono::milliseconds(kTickMs);
      if (next_tick < now) next_tick = now + std::chrono::milliseconds(kTickMs);  // we fell behind: do not burst
      flush_ready();
      refresh_status();
    }
  }
}

void ReplicationDriver::flush_ready() {
  if (!replica_->has_ready()) return;
  core::Ready ready = replica_->take_ready();
  if (!ready.storage.empty()) {
    {
      std::lock_guard lock(mutex_);
      for (auto& t : ready.storage) tasks_.push_back(std::move(t));
    }
    tasks_ready_.notify_one();
  }
  for (auto& m : ready.messages) callbacks_.send_to_peer(m.to, wire::encode_peer(m));
  for (auto& r : ready.results) callbacks_.on_result(std::move(r));
}

void ReplicationDriver::refresh_status() {
  Status s;
  s.running = true;
  s.role = replica_->role();
  s.coordinator = replica_->coordinator();
  s.epoch = replica_->epoch();
  s.applied = replica_->applied();
  s.can_commit = replica_->can_commit();
  s.members = replica_->members();
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
