// Drives a node's replication core (core::Replica) with real time, real
// storage and the network: the sans-IO core's "thin driver".
//
// Two threads:
//   - the core thread owns the Replica. It feeds it ticks (every tick_ms),
//     peer messages, client writes and storage completions, and performs
//     the outputs: messages go to the transport, storage tasks to the
//     executor thread, write results to the node.
//   - the executor thread owns one Storage connection and performs storage
//     tasks one at a time, in order (the contract of core/storage_ops.hpp).
// Until the storage is reachable at start (to read the promised epoch and the
// last applied entry), the replica does not exist and writes are refused
// with no_quorum; reads are unaffected.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <variant>
#include <vector>

#include "distdb/config.hpp"
#include "distdb/core/replica.hpp"
#include "distdb/storage.hpp"
#include "node/read_gate.hpp"

namespace distdb {

class ReplicationDriver {
 public:
  struct Callbacks {
    std::function<void(NodeId to, std::string frame)> send_to_peer;
    std::function<void(core::WriteResult)> on_result;  // called on the core thread
  };

  // What the node shows in STATUS and the startup log.
  struct Status {
    bool running = false;      // the replica exists (storage was reachable)
    core::Role role = core::Role::follower;
    NodeId coordinator = 0;
    core::Epoch epoch = 0;
    core::EntryId applied;
    bool can_commit = false;
    std::vector<core::MemberView> members;
  };

  static constexpr int kTickMs = 10;

  ReplicationDriver(Config config, Callbacks callbacks);
  ~ReplicationDriver();
  ReplicationDriver(const ReplicationDriver&) = delete;
  ReplicationDriver& operator=(const ReplicationDriver&) = delete;

  void start();
  void stop();

  // Local reads pass through this gate; it is closed while a full copy of
  // the data is installed (read_gate.hpp).
  ReadGate& read_gate() { return read_gate_; }

  // Thread-safe.
  void on_peer_message(core::Envelope envelope);
  void propose(core::ClientTag tag, std::string sql);
  Status status() const;

 private:
  struct Propose {
    core::ClientTag tag;
    std::string sql;
  };
  using Event = std::variant<core::Envelope, Propose, core::StorageDone>;

  void core_loop();
  void executor_loop();
  void post(Event event);
  void flush_ready();
  void refresh_status();

  Config config_;
  Callbacks callbacks_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Event> events_;                 // guarded by mutex_
  bool stopping_ = false;                    // guarded by mutex_
  std::deque<core::StorageTask> tasks_;      // guarded by mutex_
  ReadGate read_gate_;
  std::condition_variable tasks_ready_;
  std::unique_ptr<core::Replica> replica_;   // created by the executor thread, then used by the core thread only
  bool replica_ready_ = false;               // guarded by mutex_

  mutable std::mutex status_mutex_;
  Status status_;                            // guarded by status_mutex_

  // Writes that arrived before the replica existed (core thread only).
  static constexpr std::chrono::milliseconds kEarlyWriteWait{5000};
  std::deque<std::pair<Propose, std::chrono::steady_clock::time_point>> early_;

  std::thread core_thread_;
  std::thread executor_thread_;
};

}  // namespace distdb
