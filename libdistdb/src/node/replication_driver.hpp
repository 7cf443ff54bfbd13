// Drives a node's replication core (core::Replica) with real time, real
// storage and the network: the sans-IO core's "thin driver".
//
// The core has no thread of its own. It is a state machine guarded by one
// mutex, and it is stepped by whichever thread has an input for it:
//   - the network thread steps it with peer messages and client writes,
//     as they arrive;
//   - the executor thread, which owns the Storage connection and performs
//     storage tasks one at a time, in order (the contract of
//     core/storage_ops.hpp), steps it with each completion;
//   - a ticker thread feeds it a tick every kTickMs and refreshes Status.
// Each step's outputs are performed on the spot, still under the mutex:
// storage tasks join the executor's queue (so they keep the core's order),
// and messages go to the transport (which writes them at once when the link
// is idle). Write results are handed to the node after the mutex is released.
//
// Why not a core thread: on the critical path of a replicated write every
// input used to cross from the network or executor thread to the core thread
// and back, a thread wake-up per protocol step on each node (docs/
// performance.md). Stepping the core where the input is costs a mutex that is
// held for microseconds.
//
// Until the storage is reachable at start (to read the promised epoch and the
// last applied entry), the replica does not exist: writes wait a while
// (kEarlyWriteWait) and are then refused with no_quorum; peer messages are
// dropped (peers retry); reads are unaffected.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "distdb/config.hpp"
#include "distdb/core/replica.hpp"
#include "distdb/storage.hpp"
#include "node/read_gate.hpp"
#include "node/snapshot_transfer.hpp"
#include "wire/peer_codec.hpp"

namespace distdb {

class ReplicationDriver {
 public:
  struct Callbacks {
    // Called with the core's mutex held, from the thread that stepped the
    // core; it must not call back into the driver.
    std::function<void(NodeId to, std::string frame)> send_to_peer;
    // Called with no lock of the driver held, on the network, executor or
    // ticker thread; never on the thread that called propose() from within
    // that call, so the caller may hold its own locks around propose().
    std::function<void(core::WriteResult)> on_result;
  };

  // What the node shows in STATUS and the startup log.
  struct Status {
    bool running = false;  // the replica exists (storage was reachable)
    core::Role role = core::Role::follower;
    NodeId coordinator = 0;
    core::Epoch epoch = 0;
    core::EntryId applied;
    bool can_commit = false;
    std::vector<core::MemberView> members;
    // Whether this node knows that its data may lack committed entries, and
    // why (core::Staleness, replica_core.hpp): no coordinator known, out of
    // the coordinator's view, catching up, waiting for a full copy, its
    // last apply failed (it retries after a back-off), or the commit of a
    // decided entry failed. True until the replica runs (the storage has
    // not answered yet: nothing is known).
    //
    // The node's read path refuses reads while a member knows it cannot
    // catch up by itself (apply_failed, needs_snapshot, commit_failed:
    // Node::Impl::broken_replica()); the ordinary states of a member that
    // is catching up or in an election still serve what it has committed
    // (docs/design.md, "Known limits"; consistency levels are issue 15's).
    // It is refreshed every
    // tick (kTickMs), so it can lag the core by that much; a read that needs
    // the exact moment takes it from the core under its mutex instead.
    bool stale = true;
    core::Staleness staleness = core::Staleness::no_coordinator;
    int failed_applies = 0;        // failed attempts in a row to apply here since entries last ran
    bool needs_full_copy = false;  // the next catch-up request asks for a full copy
  };

  static constexpr int kTickMs = 10;

  ReplicationDriver(Config config, Callbacks callbacks);
  ~ReplicationDriver();
  ReplicationDriver(const ReplicationDriver&) = delete;
  ReplicationDriver& operator=(const ReplicationDriver&) = delete;

  // Where full copies are written and received (node/snapshot_transfer.hpp).
  // Before start(); until then full copies offered or asked for are
  // ignored (the peers ask again).
  void use_spool(std::unique_ptr<SpoolDir> spool);
  void start();
  // Joins the executor and ticker threads. Writes proposed afterwards are
  // not answered (the caller answers what it still waits for); peer
  // messages are dropped.
  void stop();

  // Local reads pass through this gate; it is closed while a full copy of
  // the data is installed (read_gate.hpp).
  ReadGate& read_gate() { return read_gate_; }

  // Thread-safe; both step the core on the calling thread.
  void on_peer_message(const core::Envelope& envelope);
  // A piece of a full copy on its way (node/snapshot_transfer.hpp).
  void on_transfer_message(const wire::TransferEnvelope& envelope);
  void propose(core::ClientTag tag, std::string sql);
  Status status() const;
  // The `staleness` (and `applied` seq) of status(), without its copy and
  // lock: read on every local read.
  core::Staleness staleness() const { return staleness_.load(std::memory_order_relaxed); }
  core::Seq applied_seq() const { return applied_seq_.load(std::memory_order_relaxed); }

 private:
  using Clock = std::chrono::steady_clock;
  struct EarlyWrite {
    core::ClientTag tag;
    std::string sql;
    Clock::time_point since;
  };

  void executor_loop();
  void ticker_loop();
  // Runs `step` on the replica (when it exists) under core_mutex_, performs
  // the outputs, and returns the write results for the caller to deliver
  // once the mutex is released.
  template <class Step>
  std::vector<core::WriteResult> drive(Step&& step);
  void perform_ready_locked(std::vector<core::WriteResult>& results);
  void deliver(std::vector<core::WriteResult> results);
  void defer(std::vector<core::WriteResult> results);
  std::vector<core::WriteResult> expire_early_writes_locked(Clock::time_point now);
  // On the coordinator, every timeouts.checksum_interval_ms: a checksum
  // entry (node/checksum.hpp). Under core_mutex_.
  void maybe_propose_checksum_locked(Clock::time_point now);
  void refresh_status_locked();
  // Sends and logs what the transfers produced; steps the core with a copy
  // that has arrived whole. Takes core_mutex_ for that: call it without.
  void perform_transfer_step(SnapshotTransfers::Step step);

  Config config_;
  Callbacks callbacks_;

  // The core. Lock order: core_mutex_ before queue_mutex_.
  std::mutex core_mutex_;
  std::unique_ptr<core::Replica> replica_;  // guarded by core_mutex_; created once the storage answers
  Clock::time_point next_checksum_{};   // guarded by core_mutex_
  std::set<NodeId> reported_diverged_;    // guarded by core_mutex_: logged diverged members
  std::uint64_t own_tags_ = 0;            // guarded by core_mutex_
  static constexpr core::ClientTag kOwnTagBit = core::ClientTag{1} << 63;
  std::deque<EarlyWrite> early_;            // guarded by core_mutex_: writes that came before the replica

  // The executor's queue, the results propose() produced, and stopping.
  std::mutex queue_mutex_;
  std::condition_variable tasks_ready_;      // the executor waits on it
  std::condition_variable ticker_wake_;      // the ticker waits on it
  std::deque<core::StorageTask> tasks_;      // guarded by queue_mutex_
  std::vector<core::WriteResult> deferred_;  // guarded by queue_mutex_; delivered by the ticker
  bool stopping_ = false;                    // guarded by queue_mutex_
  std::atomic<bool> stopped_{false};         // stop() has begun: the core takes no more input

  ReadGate read_gate_;

  // Full copies on their way in and out. Lock order: core_mutex_ before
  // transfer_mutex_ (perform_ready_locked offers the copies the core sends).
  std::unique_ptr<SpoolDir> spool_;
  std::mutex transfer_mutex_;
  std::unique_ptr<SnapshotTransfers> transfers_;  // guarded by transfer_mutex_; set by use_spool()

  mutable std::mutex status_mutex_;
  Status status_;  // guarded by status_mutex_
  std::atomic<core::Staleness> staleness_{core::Staleness::no_coordinator};  // status_.staleness
  std::atomic<core::Seq> applied_seq_{0};                                    // status_.applied.seq

  static constexpr std::chrono::milliseconds kEarlyWriteWait{5000};

  std::thread executor_thread_;
  std::thread ticker_thread_;
};

}  // namespace distdb
