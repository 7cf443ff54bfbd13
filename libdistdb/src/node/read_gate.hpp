// Holds a node's local reads back while a full copy of the data is being
// installed.
//
// Installing a snapshot drops and re-creates every user table, statement by
// statement in autocommit mode (node/snapshot.cpp; MariaDB cannot do DDL in
// a transaction). A read running meanwhile on another connection would see
// tables missing, empty or half filled: a state this node never committed,
// against docs/design.md's promise that a member serves what it has
// committed. (Found by tests/fault: SUM(balance) read as NULL over 0
// accounts.) So the executor closes the gate for the install: new reads wait,
// the install waits for the reads already running, and reads resume on the
// complete copy. The installer has priority, so steady read traffic cannot
// starve it; reads wait as long as the install takes.
//
// Reads that must not block their thread (those run on the network thread,
// node/async_reads.hpp) ask with try_pass() instead: while an install
// runs they get no pass and take the pool's blocking path, which waits here.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>

namespace distdb {

class ReadGate {
 public:
  // Around every local read (any thread).
  void enter_read() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return !installing_; });
    ++readers_;
  }
  void leave_read() {
    std::lock_guard lock(mutex_);
    if (--readers_ == 0) changed_.notify_all();
  }

  // Around an install (the executor thread: one at a time).
  void begin_install() {
    std::unique_lock lock(mutex_);
    installing_ = true;
    changed_.wait(lock, [this] { return readers_ == 0; });
  }
  void end_install() {
    {
      std::lock_guard lock(mutex_);
      installing_ = false;
    }
    changed_.notify_all();
  }

  // Admits a read at once, or refuses (null) while an install runs. The
  // read is left when the last copy of the pass goes: whoever ends up
  // holding it (a completion handler, or a queue destroyed with it) cannot
  // forget to leave, so an install never waits for a read that will not
  // finish.
  using Pass = std::shared_ptr<void>;
  Pass try_pass() {
    {
      std::lock_guard lock(mutex_);
      if (installing_) return nullptr;
      ++readers_;
    }
    return Pass(this, [](ReadGate* gate) { gate->leave_read(); });
  }

  class Read {
   public:
    explicit Read(ReadGate& gate) : gate_(gate) { gate_.enter_read(); }
    ~Read() { gate_.leave_read(); }
    Read(const Read&) = delete;
    Read& operator=(const Read&) = delete;

   private:
    ReadGate& gate_;
  };

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool installing_ = false;  // guarded by mutex_
  int readers_ = 0;          // guarded by mutex_
};

}  // namespace distdb
