// A node's local reads, run without a thread per read.
//
// On the storage pool (node/storage_pool.hpp) a read costs two thread
// hand-offs and a blocking wait: the network thread wakes a pool thread,
// which sends the statement and sleeps in poll() until the database
// answers, then wakes the client's side again. On a two-core machine those
// wake-ups, not the work, were most of a read's cost (docs/performance.md).
// An AsyncReads runs reads on the network thread's own event loop instead:
// it sends the statement and returns to the loop; the database's answer is
// one more ready descriptor among the clients', and the reply leaves from
// the same thread. Under load one epoll_wait serves many of them.
//
// Only backends with a non-blocking client have one (MariaDB, through
// Connector/C's non-blocking API: node/mariadb_reads.cpp). SQLite's reads
// are calls into a library on a local file and stay on the pool, as do
// Node::execute()'s and reads that arrive while a full copy of the data is
// being installed (node/read_gate.hpp).
#pragma once

#include <asio/io_context.hpp>

#include <functional>
#include <memory>
#include <string>

#include "distdb/config.hpp"
#include "distdb/error.hpp"
#include "distdb/value.hpp"

namespace distdb {

class AsyncReads {
 public:
  using Done = std::function<void(Result<ResultSet>)>;

  virtual ~AsyncReads();

  // Runs `sql`, one statement that only reads, and calls `done` with its
  // result on the loop's thread, never from inside submit() (its caller may
  // hold locks that `done` takes). Any thread. Returns false once stop() has
  // been called: `done` is then never called (nor kept).
  virtual bool submit(std::string sql, Done done) = 0;

  // Refuses further reads and, on the loop's thread, answers every read
  // still queued or running with an error of kind unavailable and closes
  // the sessions. Any thread; call it before the loop stops, so that the
  // loop runs it (the transport's stop() waits for the loop to run out of
  // work, and an open session's wait would keep it busy).
  virtual void stop() = 0;
};

// The storage's AsyncReads on `loop`, with at most `config.pool_size`
// sessions; null when the backend has none (see the top).
std::unique_ptr<AsyncReads> make_async_reads(asio::io_context& loop, const StorageConfig& config);

}  // namespace distdb
