// Replica driven step by step over a perfect network with a storage that
// always succeeds: the happy paths of election, writes and catch-up, with
// exact expectations. (Faults are the simulator's job: tests/sim.)
#include <doctest/doctest.h>

#include <map>
#include <memory>

#include "distdb/core/replica.hpp"

using namespace distdb;
using namespace distdb::core;

namespace {

// Committed entries per replica, as a trivial storage would keep them.
struct TinyStorage {
  Epoch promised = 0;
  EntryId applied;
  std::vector<Entry> log;
  std::optional<Entry> prepared;
};

class Harness {
 public:
  explicit Harness(int n) {
    for (int i = 1; i <= n; ++i) ids_.push_back(static_cast<NodeId>(i));
    for (NodeId id : ids_) start(id);
  }

  void start(NodeId id) {
    ReplicaConfig cfg;
    cfg.id = id;
    cfg.members = ids_;
    RecoveredState rec{storage_[id].promised, storage_[id].applied, {}};
    replicas_[id] = std::make_unique<Replica>(cfg, rec);
    up_[id] = true;
  }
  void crash(NodeId id) {
    replicas_.erase(id);
    storage_[id].prepared.reset();
    up_[id] = false;
  }
  Replica& r(NodeId id) { return *replicas_.at(id); }

  // Runs `ticks` ticks, delivering everything in between.
  void run(int ticks) {
    for (int t = 0; t < ticks; ++t) {
      for (auto& [id, rep] : replicas_) rep->tick();
      settle();
    }
  }

  // Runs `ticks` ticks on every replica but `lagging`, whose clock thereby
  // falls behind (messages still flow).
  void run_except(NodeId lagging, int ticks) {
    for (int t = 0; t < ticks; ++t) {
      for (auto& [id, rep] : replicas_) {
        if (id != lagging) rep->tick();
      }
      settle();
    }
  }

  std::vector<WriteResult> results;

 private:
  void settle() {
    bool progress = true;
    while (progress) {
      progress = false;
      for (auto& [id, rep] : replicas_) {
        if (!rep->has_ready()) continue;
        progress = true;
        Ready ready = rep->take_ready();
        for (auto& task : ready.storage) rep->storage_done(perform(id, task));
        for (auto& m : ready.messages) {
          auto it = replicas_.find(m.to);
          if (it != replicas_.end()) it->second->step(m);
        }
        for (auto& res : ready.results) results.push_back(res);
      }
    }
  }

  StorageDone perform(NodeId id, const StorageTask& task) {
    TinyStorage& s = storage_[id];
    StorageDone done;
    done.id = task.id;
    std::visit(
        [&](const auto& op) {
          using T = std::decay_t<decltype(op)>;
          if constexpr (std::is_same_v<T, PersistPromise>) {
            s.promised = std::max(s.promised, op.epoch);
          } else if constexpr (std::is_same_v<T, PrepareEntry>) {
            s.prepared = op.entry;
            done.outcomes.resize(op.entry.statements.size());
          } else if constexpr (std::is_same_v<T, CommitEntry>) {
            s.log.push_back(*s.prepared);
            s.applied = s.prepared->id;
            s.prepared.reset();
          } else if constexpr (std::is_same_v<T, RollbackEntry>) {
            s.prepared.reset();
          } else if constexpr (std::is_same_v<T, ApplyEntries>) {
            for (const auto& e : op.entries) s.log.push_back(e);
            s.applied = op.entries.back().id;
            done.applied_count = op.entries.size();
          } else if constexpr (std::is_same_v<T, ReadLog>) {
            for (const auto& e : s.log) {
              if (e.id.seq > op.after.seq) done.entries.push_back(e);
            }
          }
        },
        task.op);
    return done;
  }

  std::vector<NodeId> ids_;
  std::map<NodeId, std::unique_ptr<Replica>> replicas_;
  std::map<NodeId, TinyStorage> storage_;
  std::map<NodeId, bool> up_;
};

}  // namespace

TEST_CASE("the highest id becomes coordinator once a majority hears each other") {
  Harness h(3);
  h.run(40);
  CHECK(h.r(3).role() == Role::coordinator);
  CHECK(h.r(3).can_commit());
  CHECK(h.r(1).coordinator() == 3);
  CHECK(h.r(2).coordinator() == 3);
  CHECK(h.r(1).epoch() == h.r(3).epoch());
}

TEST_CASE("a write is replicated to every member and answered once committed on a majority") {
  Harness h(3);
  h.run(40);
  h.r(3).propose(7, "INSERT 1");
  h.run(5);
  REQUIRE(h.results.size() == 1);
  CHECK(h.results[0].tag == 7);
  CHECK(h.results[0].kind == WriteResult::committed);
  CHECK(h.results[0].executed_by == 3);
  for (NodeId id : {1u, 2u, 3u}) CHECK(h.r(id).applied().seq == 1);
}

TEST_CASE("a write sent to a follower is forwarded to the coordinator") {
  Harness h(3);
  h.run(40);
  h.r(1).propose(9, "INSERT 2");
  h.run(5);
  REQUIRE(h.results.size() == 1);
  CHECK(h.results[0].tag == 9);
  CHECK(h.results[0].kind == WriteResult::committed);
  CHECK(h.results[0].executed_by == 3);
}

TEST_CASE("a forwarded write delivered twice runs once") {
  Harness h(3);
  h.run(40);
  h.r(1).propose(9, "INSERT 2");
  h.run(5);
  REQUIRE(h.results.size() == 1);
  REQUIRE(h.r(3).applied().seq == 1);
  // The network delivers the forward again, after it was answered: the
  // coordinator answers from what it kept, and nothing runs a second time.
  Envelope again{1, 3, ForwardedWrite{h.r(3).epoch(), 9, "INSERT 2"}};
  h.r(3).step(again);
  h.run(5);
  CHECK(h.r(3).applied().seq == 1);
  CHECK(h.r(1).applied().seq == 1);
  CHECK(h.results.size() == 1);  // and the forwarder, already answered, reports nothing new
}

TEST_CASE("the coordinator dies: the next highest takes over and writes resume") {
  Harness h(3);
  h.run(40);
  h.r(3).propose(1, "INSERT a");
  h.run(5);
  h.crash(3);
  h.run(60);
  CHECK(h.r(2).role() == Role::coordinator);
  CHECK(h.r(2).can_commit());
  h.r(1).propose(2, "INSERT b");
  h.run(5);
  REQUIRE(h.results.size() == 2);
  CHECK(h.results[1].kind == WriteResult::committed);
  CHECK(h.r(1).applied().seq == 2);

  // The old coordinator returns: it catches up, then takes over again.
  h.start(3);
  h.run(80);
  CHECK(h.r(3).applied().seq == 2);
  CHECK(h.r(3).role() == Role::coordinator);
  h.r(2).propose(3, "INSERT c");
  h.run(5);
  REQUIRE(h.results.size() == 3);
  CHECK(h.results[2].kind == WriteResult::committed);
  CHECK(h.results[2].executed_by == 3);
  for (NodeId id : {1u, 2u, 3u}) CHECK(h.r(id).applied().seq == 3);
}

TEST_CASE("a candidate refused only because a voter still hears the dead coordinator retries soon") {
  // The voter's failure detector lags the candidate's by a little (they
  // started counting at different messages): the first vote request meets
  // a voter that still hears node 3. The candidate must not then wait out a
  // whole back-off (a heartbeat timeout or more) before asking again.
  Harness h(3);
  h.run(40);
  REQUIRE(h.r(3).role() == Role::coordinator);
  h.crash(3);
  h.run_except(1, 3);  // node 1's clock runs 3 ticks behind node 2's
  int ticks = 0;
  while (h.r(2).role() == Role::follower && ticks < 100) {
    h.run(1);
    ++ticks;
  }
  REQUIRE(h.r(2).role() == Role::candidate);  // refused by node 1, still a candidate
  REQUIRE(h.r(1).coordinator() == 3);  // which still hears node 3
  int more = 0;
  while (h.r(2).role() != Role::coordinator && more < 100) {
    h.run(1);
    ++more;
  }
  CHECK(h.r(2).role() == Role::coordinator);
  ReplicaConfig defaults;
  CHECK(more <= 2 * defaults.heartbeat_interval_ticks + 1);
  CHECK(more < defaults.heartbeat_timeout_ticks);
}

TEST_CASE("without a majority there is no coordinator and writes get no_quorum") {
  Harness h(3);
  h.run(40);
  h.crash(3);
  h.crash(2);
  h.run(40);
  CHECK(h.r(1).role() != Role::coordinator);
  h.r(1).propose(5, "INSERT x");
  h.run(5);
  CHECK(h.results.empty());  // it waits a little for an election...
  h.run(20);
  REQUIRE(h.results.size() == 1);  // ...then gives up
  CHECK(h.results[0].kind == WriteResult::no_quorum);
}
