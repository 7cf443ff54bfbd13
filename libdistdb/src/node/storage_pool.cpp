#include "node/storage_pool.hpp"

#include "util/log_internal.hpp"

namespace distdb {

StoragePool::StoragePool(StorageConfig config, int workers) : config_(std::move(config)) {
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { run_worker(); });
}

StoragePool::~StoragePool() { stop(); }

bool StoragePool::submit(Job job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

void StoragePool::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

Status StoragePool::ensure_schema_once() {
  // One worker creates distdb's tables while the others wait, so that two
  // connections never race to seed the same rows.
  std::lock_guard lock(schema_mutex_);
  if (schema_ready_) return {};
  auto writer = open_storage(config_, StorageAccess::read_write);
  if (!writer) return writer.error();
  if (auto st = ensure_distdb_schema(**writer); !st) {
    DISTDB_LOG(warn) << "cannot create distdb's tables: " << st.error().message;
    return st;
  }
  schema_ready_ = true;
  return {};
}

void StoragePool::run_worker() {
  std::unique_ptr<Storage> storage;
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, and nothing left to run
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    // The schema first: its read-write connection also creates a MariaDB
    // database that does not exist yet, which a read-only one cannot.
    if (auto st = ensure_schema_once(); !st) {
      job(st.error());
      continue;
    }
    if (!storage) {
      auto opened = open_storage(config_, StorageAccess::read_only);
      if (!opened) {
        DISTDB_LOG(warn) << "storage unavailable: " << opened.error().message;
        job(opened.error());
        continue;
      }
      storage = std::move(*opened);
    }
    job(storage.get());
  }
}

}  // namespace distdb
