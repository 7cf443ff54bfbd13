// A fixed set of worker threads, each owning one Storage connection.
//
// The pool serves reads, so its connections are read-only
// (StorageAccess::read_only): a statement taken for a read that would
// change anything is refused by the database itself. distdb's own tables
// are created once, before the first job, through a short-lived read-write
// connection.
//
// Storage calls block (a MariaDB round trip, an fsync), so they never run on
// the network thread. Each worker opens its own connection lazily and
// reopens it after it failed to open: a database that is down when the node
// starts, or that goes away later, only fails the jobs that run meanwhile.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "distdb/config.hpp"
#include "distdb/storage.hpp"

namespace distdb {

class StoragePool {
 public:
  // A job gets the worker's storage, or the error that kept it from opening.
  using Job = std::function<void(Result<Storage*>)>;

  StoragePool(StorageConfig config, int workers);
  ~StoragePool();  // stop()
  StoragePool(const StoragePool&) = delete;
  StoragePool& operator=(const StoragePool&) = delete;

  // Queues a job; jobs start in submission order on the first free worker.
  // Returns false once stopping (the job is dropped).
  bool submit(Job job);

  // Runs the jobs already queued, then joins the workers. Idempotent.
  void stop();

 private:
  void run_worker();
  Status ensure_schema_once();

  StorageConfig config_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  std::mutex schema_mutex_;
  bool schema_ready_ = false;  // guarded by schema_mutex_
};

}  // namespace distdb
