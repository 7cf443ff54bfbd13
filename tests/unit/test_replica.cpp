// Replica driven step by step over a perfect network with a storage that
// always succeeds: the happy paths of election, writes and catch-up, with
// exact expectations. (Faults are the simulator's job: tests/sim.)
#include <doctest/doctest.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

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
  explicit Harness(int n, bool ship_effects = false,
                   std::function<bool(const std::string&)> runs_alone = nullptr)
      : ship_effects_(ship_effects), runs_alone_(std::move(runs_alone)) {
    for (int i = 1; i <= n; ++i) ids_.push_back(static_cast<NodeId>(i));
    for (NodeId id : ids_) start(id);
  }

  void start(NodeId id) {
    ReplicaConfig cfg;
    cfg.id = id;
    cfg.members = ids_;
    cfg.ship_effects = ship_effects_;
    cfg.runs_alone = runs_alone_;
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
  // What PrepareEntry reports as every statement's digest, per node (the
  // others report none): a node whose data differs.
  std::map<NodeId, std::string> digest_of;
  // Storage tasks performed, per node and kind.
  std::map<NodeId, std::map<std::string, int>> tasks;
  // Nodes whose storage refuses the coordinator's rows (StorageDone::effects_refused).
  std::set<NodeId> refuse_effects;
  // Every PrepareEntry performed, in order, with the node that ran it.
  std::vector<std::pair<NodeId, PrepareEntry>> prepares;
  TinyStorage& storage(NodeId id) { return storage_[id]; }

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
    ++tasks[id][storage_op_name(task.op)];
    std::visit(
        [&](const auto& op) {
          using T = std::decay_t<decltype(op)>;
          if constexpr (std::is_same_v<T, PersistPromise>) {
            s.promised = std::max(s.promised, op.epoch);
          } else if constexpr (std::is_same_v<T, PrepareEntry>) {
            prepares.emplace_back(id, op);
            if (op.entry.effects && refuse_effects.count(id) != 0) {
              // Its data lacks a row the coordinator's rows change.
              done.ok = false;
              done.error = Error(ErrorKind::sql, "Can't find record in 't'", 1032);
              done.effects_refused = true;
              return;
            }
            s.prepared = op.entry;
            done.outcomes.resize(op.entry.statements.size());
            for (auto& o : done.outcomes) o.digest = digest_of[id];
            if (op.entry.effects) {
              // Applying the coordinator's effects: its outcomes are ours.
              done.outcomes = op.outcomes;
            } else if (op.capture_effects) {
              done.effects = "effects of node " + std::to_string(id);
              s.prepared->effects = done.effects;
              for (auto& o : done.outcomes) o.last_insert_id = 40 + id;  // what only this run chose
            }
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
          } else if constexpr (std::is_same_v<T, ReadSnapshot>) {
            done.snapshot_applied = s.applied;
            done.snapshot_data = "copy";
          } else if constexpr (std::is_same_v<T, InstallSnapshot>) {
            s.applied = op.applied;
          }
        },
        task.op);
    return done;
  }

  bool ship_effects_ = false;
  std::function<bool(const std::string&)> runs_alone_;
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

TEST_CASE(
    "shipping effects: the coordinator prepares first, then the others apply its effects and outcomes") {
  Harness h(3, true);
  h.run(40);
  REQUIRE(h.r(3).role() == Role::coordinator);
  h.r(3).propose(7, "INSERT 1");
  h.r(3).propose(8, "INSERT 2");
  h.run(5);
  REQUIRE(h.results.size() == 2);
  for (const auto& res : h.results) {
    CHECK(res.kind == WriteResult::committed);
    CHECK(res.outcome.last_insert_id == 43);  // the coordinator's run
  }
  // One round per write (the second waits for the first).
  REQUIRE(h.prepares.size() == 6);
  for (std::size_t round = 0; round < 2; ++round) {
    CAPTURE(round);
    // The coordinator's own run comes first and captures; the others get
    // the effects it captured and its outcomes, not a run of their own.
    const auto& [first, own] = h.prepares[3 * round];
    CHECK(first == 3);
    CHECK(own.capture_effects);
    CHECK_FALSE(own.entry.effects.has_value());
    for (std::size_t i = 3 * round + 1; i < 3 * round + 3; ++i) {
      CAPTURE(i);
      const auto& [node, op] = h.prepares[i];
      CHECK(node != 3);
      CHECK_FALSE(op.capture_effects);
      REQUIRE(op.entry.effects.has_value());
      CHECK(*op.entry.effects == "effects of node 3");
      REQUIRE(op.outcomes.size() == 1);
      CHECK(op.outcomes[0].last_insert_id == 43);
      CHECK(op.entry.statements[0].expect_insert_id == 43);
    }
  }
  // Every log holds the effects, so that a catch-up from any member applies them too.
  for (NodeId id : {1u, 2u, 3u}) {
    REQUIRE(h.storage(id).log.size() == 2);
    for (const auto& e : h.storage(id).log)
      CHECK(e.effects == std::optional<std::string>("effects of node 3"));
  }
}

TEST_CASE("shipping effects: a coordinator whose rows a majority refuses steps down for a full copy") {
  // One member refusing: it is the odd one out and leaves the view.
  {
    Harness h(3, true);
    h.run(40);
    h.refuse_effects = {1};
    h.r(3).propose(7, "INSERT 1");
    h.run(5);
    REQUIRE(h.results.size() == 1);
    CHECK(h.results[0].kind == WriteResult::committed);
    CHECK(h.r(3).role() == Role::coordinator);
    CHECK(h.r(3).staleness() == Staleness::current);
  }
  // Both others refusing: the coordinator's data is the one that differs.
  {
    Harness h(3, true);
    h.run(40);
    h.refuse_effects = {1, 2};
    h.r(3).propose(7, "INSERT 1");
    h.run(5);
    CHECK(h.r(3).role() != Role::coordinator);
    CHECK(h.r(3).staleness() == Staleness::needs_snapshot);
    h.refuse_effects.clear();
    h.run(200);
    // The old coordinator takes a full copy from one of the others (the
    // majority's data wins), and may lead again once it has it.
    CHECK(h.tasks[3]["InstallSnapshot"] >= 1);
    CHECK(h.tasks[1]["ReadSnapshot"] + h.tasks[2]["ReadSnapshot"] >= 1);
    CHECK(h.tasks[3]["ReadSnapshot"] == 0);
    CHECK(h.tasks[1]["InstallSnapshot"] == 0);
    CHECK(h.tasks[2]["InstallSnapshot"] == 0);
    for (NodeId id : {1u, 2u, 3u}) CHECK(h.r(id).staleness() == Staleness::current);
  }
}

TEST_CASE("a statement that runs alone gets an entry of its own") {
  Harness h(3, false, [](const std::string& sql) { return sql.rfind("DDL", 0) == 0; });
  h.run(40);
  // The first write starts a round at once; the rest wait and are batched.
  h.r(3).propose(1, "INSERT 1");
  h.r(3).propose(2, "INSERT 2");
  h.r(3).propose(3, "INSERT 3");
  h.r(3).propose(4, "DDL a");
  h.r(3).propose(5, "DDL b");
  h.r(3).propose(6, "INSERT 4");
  h.r(3).propose(7, "INSERT 5");
  h.run(10);
  REQUIRE(h.results.size() == 7);
  std::vector<std::vector<std::string>> entries;
  for (const auto& e : h.storage(3).log) {
    entries.emplace_back();
    for (const auto& st : e.statements) entries.back().push_back(st.sql);
  }
  const std::vector<std::vector<std::string>> expected = {
      {"INSERT 1"}, {"INSERT 2", "INSERT 3"}, {"DDL a"}, {"DDL b"}, {"INSERT 4", "INSERT 5"}};
  CHECK(entries == expected);
}

TEST_CASE("without shipping effects every member runs the statements at once") {
  Harness h(3);
  h.run(40);
  h.r(3).propose(7, "INSERT 1");
  h.run(5);
  REQUIRE(h.results.size() == 1);
  REQUIRE(h.prepares.size() == 3);
  for (const auto& [node, op] : h.prepares) {
    CAPTURE(node);
    CHECK_FALSE(op.capture_effects);
    CHECK_FALSE(op.entry.effects.has_value());
  }
}

TEST_CASE("a member whose outcomes differ from the coordinator's leaves the view and gets a full copy") {
  Harness h(3);
  h.run(40);
  h.digest_of[1] = "other data";  // member 1's checksum differs
  h.r(3).propose(7, "/* checksum */");
  h.run(5);
  REQUIRE(h.results.size() == 1);
  CHECK(h.results[0].kind == WriteResult::committed);  // members 2 and 3 agree: a majority
  // Member 1 catches up: the coordinator reads a full copy for it, though
  // it asked only for entries, and member 1 installs it.
  h.digest_of.erase(1);
  h.run(60);
  CHECK(h.tasks[3]["ReadSnapshot"] >= 1);
  CHECK(h.tasks[1]["InstallSnapshot"] >= 1);
  CHECK(h.tasks[1]["ApplyEntries"] == 0);
  CHECK(h.r(1).applied() == h.r(3).applied());
  // Members that agreed are not sent copies.
  CHECK(h.tasks[2]["InstallSnapshot"] == 0);
}

TEST_CASE("a coordinator outvoted on outcomes steps down, gets a full copy, and only then leads again") {
  Harness h(3);
  h.run(40);
  REQUIRE(h.r(3).role() == Role::coordinator);
  h.digest_of[3] = "other data";  // the coordinator's own data differs from the two others'
  h.r(3).propose(7, "/* checksum */");
  h.run(2);
  // Members 1 and 2 agree with each other: node 3 steps down, and is not
  // elected while it waits for its copy; node 2 takes over.
  CHECK(h.r(3).role() != Role::coordinator);
  h.digest_of.erase(3);
  h.run(80);
  CHECK(h.tasks[3]["InstallSnapshot"] >= 1);
  CHECK(h.tasks[2]["ReadSnapshot"] >= 1);
  // Once repaired it is the highest eligible member again and takes over.
  h.run(200);
  CHECK(h.r(3).role() == Role::coordinator);
  h.r(3).propose(8, "INSERT 2");
  h.run(10);
  bool committed = false;
  for (const auto& r : h.results) committed = committed || (r.tag == 8 && r.kind == WriteResult::committed);
  CHECK(committed);
  for (NodeId id : {1u, 2u}) CHECK(h.r(id).applied() == h.r(3).applied());
}

TEST_CASE("three members, three digests: the coordinator's data gives way, and the cluster converges") {
  Harness h(3);
  h.run(40);
  REQUIRE(h.r(3).role() == Role::coordinator);
  h.digest_of[1] = "data one";
  h.digest_of[2] = "data two";
  h.digest_of[3] = "data three";
  h.r(3).propose(7, "/* checksum */");
  h.run(5);
  // No vote can say whose data is right. Without a rule the coordinator
  // stepped down for want of a majority and was elected again, for ever;
  // now it gives way: it waits for a full copy, from node 2, which takes
  // over meanwhile.
  CHECK(h.r(3).role() != Role::coordinator);
  h.digest_of[3] = h.digest_of[2];  // what its copy will hold
  h.run(80);
  CHECK(h.tasks[3]["InstallSnapshot"] >= 1);
  CHECK(h.tasks[2]["ReadSnapshot"] >= 1);
  // The next checksum, whoever coordinates: nodes 2 and 3 agree, node 1
  // does not, and is repaired from a full copy.
  const NodeId leader = h.r(3).role() == Role::coordinator ? 3 : 2;
  REQUIRE(h.r(leader).role() == Role::coordinator);
  h.r(leader).propose(8, "/* checksum */");
  h.run(10);
  bool committed = false;
  for (const auto& r : h.results) committed = committed || (r.tag == 8 && r.kind == WriteResult::committed);
  CHECK(committed);
  h.digest_of[1] = h.digest_of[2];
  h.run(80);
  CHECK(h.tasks[1]["InstallSnapshot"] >= 1);
  // The three hold the same data again, and node 3 leads.
  h.run(200);
  CHECK(h.r(3).role() == Role::coordinator);
  h.r(3).propose(9, "/* checksum */");
  h.run(10);
  committed = false;
  for (const auto& r : h.results) committed = committed || (r.tag == 9 && r.kind == WriteResult::committed);
  CHECK(committed);
  for (NodeId id : {1u, 2u}) CHECK(h.r(id).applied() == h.r(3).applied());
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

// --- A member whose storage fails to apply: back-off, full copy, staleness.
//
// Node 1 of three, driven by hand: the test plays coordinator 3 (its
// heartbeats, its answers to catch-up requests, its Prepares) and the
// storage, which answers every task at once except the attempts to apply
// entries (ApplyEntries, InstallSnapshot, PrepareEntry): those wait for the
// test to say how they end.

namespace {

bool is_apply(const StorageOp& op) {
  return std::holds_alternative<ApplyEntries>(op) || std::holds_alternative<InstallSnapshot>(op) ||
         std::holds_alternative<PrepareEntry>(op);
}

Error deadlock() {
  return Error(ErrorKind::sql, "Deadlock found when trying to get lock", 1213);
}
Error unreachable() {
  return Error(ErrorKind::storage_unavailable, "Can't connect to server");
}

class Member {
 public:
  static constexpr Epoch kEpoch = 1;

  Member() {
    cfg_.id = 1;
    cfg_.members = {1, 2, 3};
    replica_ = std::make_unique<Replica>(cfg_, RecoveredState{0, EntryId{5, 1}, {}});
    heartbeat();  // coordinator 3 of epoch 1, with us outside its view
  }

  Replica& r() { return *replica_; }
  const ReplicaConfig& config() const { return cfg_; }

  // What the coordinator announces in its heartbeats.
  EntryId coordinator_applied{10, 1};
  std::vector<NodeId> view{2, 3};

  struct Sent {
    std::uint64_t tick;
    CatchUpRequest request;
  };
  std::vector<Sent> requests;       // CatchUpRequests to the coordinator, with the tick they left
  std::vector<PrepareReply> votes;  // PrepareReplies to the coordinator
  std::deque<StorageTask> held;     // storage tasks waiting for the test's answer, in order
  std::uint64_t now = 0;

  void heartbeat() {
    Heartbeat hb;
    hb.epoch = kEpoch;
    hb.coordinator = 3;
    hb.is_coordinator = true;
    hb.applied = coordinator_applied;
    hb.view = view;
    deliver(hb);
  }

  // One tick, with a heartbeat from the coordinator before it (so that it
  // never times out).
  void tick() {
    ++now;
    heartbeat();
    replica_->tick();
    pump();
  }

  // Ticks until a catch-up request leaves (or `limit` ticks); the number of
  // ticks it took, or -1.
  int ticks_until_request(int limit = 1000) {
    const std::size_t before = requests.size();
    for (int t = 1; t <= limit; ++t) {
      tick();
      if (requests.size() > before) return t;
    }
    return -1;
  }

  void deliver(Message m) {
    replica_->step(Envelope{3, 1, std::move(m)});
    pump();
  }

  // The coordinator answers the last request with entries after our position.
  void reply_entries(std::size_t count = 5) {
    CatchUpReply reply;
    reply.epoch = kEpoch;
    reply.last = coordinator_applied;
    const EntryId at = replica_->applied();
    for (std::size_t i = 1; i <= count; ++i) {
      reply.entries.push_back(Entry{EntryId{at.seq + i, 1}, {{"INSERT x" + std::to_string(at.seq + i)}}, {}});
    }
    deliver(reply);
  }

  void reply_snapshot() {
    CatchUpReply reply;
    reply.epoch = kEpoch;
    reply.last = coordinator_applied;
    reply.snapshot = true;
    reply.snapshot_applied = coordinator_applied;
    reply.snapshot_data = "a full copy";
    deliver(reply);
  }

  void reply_joined() {
    CatchUpReply reply;
    reply.epoch = kEpoch;
    reply.last = coordinator_applied;
    reply.joined = true;
    deliver(reply);
  }

  void prepare_next() {
    Prepare p;
    p.epoch = kEpoch;
    p.previous = replica_->applied();
    p.entry = Entry{EntryId{p.previous.seq + 1, kEpoch}, {{"INSERT y"}}, {}};
    deliver(p);
  }

  // Ends the first held task.
  void fail(Error error) {
    StorageDone done;
    done.ok = false;
    done.error = std::move(error);
    finish(std::move(done));
  }
  void diverge() {
    StorageDone done;
    done.diverged = true;
    finish(std::move(done));
  }
  void succeed() {
    REQUIRE_FALSE(held.empty());
    StorageDone done;
    if (const auto* a = std::get_if<ApplyEntries>(&held.front().op)) done.applied_count = a->entries.size();
    if (const auto* p = std::get_if<PrepareEntry>(&held.front().op)) {
      done.outcomes.resize(p->entry.statements.size());
    }
    finish(std::move(done));
  }

  // Ends the first held task as `done` says.
  void answer(StorageDone done) { finish(std::move(done)); }

  template <class Op>
  bool holds() const {
    return !held.empty() && std::holds_alternative<Op>(held.front().op);
  }

 private:
  void finish(StorageDone done) {
    REQUIRE_FALSE(held.empty());
    done.id = held.front().id;
    held.pop_front();
    replica_->storage_done(std::move(done));
    pump();
  }

  void pump() {
    while (replica_->has_ready()) {
      Ready ready = replica_->take_ready();
      for (auto& task : ready.storage) {
        // In order: once one waits, everything after it waits too.
        if (!held.empty() || is_apply(task.op)) {
          held.push_back(std::move(task));
        } else {
          StorageDone done;
          done.id = task.id;
          replica_->storage_done(std::move(done));
        }
      }
      for (auto& m : ready.messages) {
        if (m.to != 3) continue;
        if (const auto* c = std::get_if<CatchUpRequest>(&m.message)) requests.push_back({now, *c});
        if (const auto* v = std::get_if<PrepareReply>(&m.message)) votes.push_back(*v);
      }
    }
    // Answer what no longer waits behind a held task.
    while (!held.empty() && !is_apply(held.front().op)) {
      StorageDone done;
      done.id = held.front().id;
      held.pop_front();
      replica_->storage_done(std::move(done));
    }
  }

  ReplicaConfig cfg_;
  std::unique_ptr<Replica> replica_;
};

}  // namespace

TEST_CASE("a failed catch-up apply is retried after a growing back-off, then a full copy is asked for") {
  Member m;
  REQUIRE(m.config().apply_retry_min_ticks == 2);  // the gaps below assume the defaults
  REQUIRE(m.config().snapshot_after_failed_applies == 3);
  REQUIRE(m.ticks_until_request() == 1);
  CHECK_FALSE(m.requests.back().request.snapshot);

  std::vector<int> gaps;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    CAPTURE(attempt);
    m.reply_entries();
    REQUIRE(m.holds<ApplyEntries>());
    const std::size_t sent = m.requests.size();
    m.fail(deadlock());
    // Not asked again in the same step, as it used to be (a hot loop).
    CHECK(m.requests.size() == sent);
    CHECK(m.r().staleness() == (attempt < 3 ? Staleness::apply_failed : Staleness::needs_snapshot));
    CHECK(m.r().catch_up_status().failed_attempts == attempt);
    gaps.push_back(m.ticks_until_request());
    REQUIRE(gaps.back() > 0);
    // Entries are asked for until the third failure; then a full copy.
    CHECK(m.requests.back().request.snapshot == (attempt >= 3));
    CHECK(m.requests.back().request.applied == EntryId{5, 1});
  }
  CHECK(gaps == std::vector<int>{2, 4, 8});

  // The copy comes and installs: the member asks to join at once, and is
  // current once it has.
  m.reply_snapshot();
  REQUIRE(m.holds<InstallSnapshot>());
  const std::size_t before_install = m.requests.size();
  m.succeed();
  CHECK(m.r().applied() == m.coordinator_applied);
  CHECK_FALSE(m.r().catch_up_status().needs_snapshot);
  REQUIRE(m.requests.size() == before_install + 1);
  CHECK(m.requests.back().request.join);
  CHECK_FALSE(m.requests.back().request.snapshot);
  CHECK(m.r().staleness() == Staleness::catching_up);  // not in the view yet
  // The back-off is not reset by the copy alone (entries have not run here
  // since the failures)...
  CHECK(m.r().catch_up_status().failed_attempts == 3);
  m.reply_joined();
  m.view = {1, 2, 3};
  m.tick();
  CHECK(m.r().in_view());
  CHECK_FALSE(m.r().stale());
  CHECK(m.r().staleness() == Staleness::current);
  // ...but is once an entry runs.
  m.prepare_next();
  m.succeed();
  CHECK(m.r().catch_up_status().failed_attempts == 0);
}

TEST_CASE("a diverged catch-up and an apply that applied nothing back off as failures") {
  Member m;
  REQUIRE(m.ticks_until_request() == 1);
  m.reply_entries();
  const std::size_t sent = m.requests.size();
  m.diverge();
  CHECK(m.requests.size() == sent);
  CHECK(m.r().staleness() == Staleness::needs_snapshot);
  CHECK(m.ticks_until_request() == 2);
  CHECK(m.requests.back().request.snapshot);  // a divergence asks for a copy at once

  Member n;
  REQUIRE(n.ticks_until_request() == 1);
  n.reply_entries();
  REQUIRE(n.holds<ApplyEntries>());
  const std::size_t asked = n.requests.size();
  n.answer(StorageDone{});  // "ok", but not one entry applied
  CHECK(n.requests.size() == asked);
  CHECK(n.r().staleness() == Staleness::apply_failed);
  CHECK(n.ticks_until_request() == 2);
  CHECK_FALSE(n.requests.back().request.snapshot);
}

TEST_CASE("an unreachable database: the back-off grows to its cap, and no full copy is asked for") {
  Member m;
  REQUIRE(m.ticks_until_request() == 1);
  std::vector<int> gaps;
  for (int attempt = 1; attempt <= 8; ++attempt) {
    m.reply_entries();
    REQUIRE(m.holds<ApplyEntries>());
    m.fail(unreachable());
    gaps.push_back(m.ticks_until_request());
    CHECK_FALSE(m.requests.back().request.snapshot);  // a copy would not install either
  }
  CHECK(gaps == std::vector<int>{2, 4, 8, 16, 32, 64, 64, 64});
  CHECK(m.r().staleness() == Staleness::apply_failed);
}

TEST_CASE("progress resets the back-off") {
  Member m;
  m.coordinator_applied = EntryId{20, 1};
  REQUIRE(m.ticks_until_request() == 1);
  for (int attempt = 1; attempt <= 2; ++attempt) {
    m.reply_entries();
    m.fail(deadlock());
    REQUIRE(m.ticks_until_request() == 2 * attempt);
  }
  // Five entries apply: the next request leaves at once, in the same step.
  m.reply_entries();
  const std::size_t sent = m.requests.size();
  m.succeed();
  CHECK(m.r().applied() == EntryId{10, 1});
  CHECK(m.requests.size() == sent + 1);
  CHECK(m.r().catch_up_status().failed_attempts == 0);
  CHECK(m.r().staleness() == Staleness::catching_up);
  // And the next failure starts from the minimum again, with a fresh count
  // towards the full copy.
  for (int attempt = 1; attempt <= 2; ++attempt) {
    m.reply_entries();
    m.fail(deadlock());
    CHECK(m.ticks_until_request() == 2 * attempt);
    CHECK_FALSE(m.requests.back().request.snapshot);
  }
  // Some entries applied, then a failure: progress, then the first failure
  // at the new position.
  m.reply_entries(4);
  REQUIRE(m.holds<ApplyEntries>());
  StorageDone partial;
  partial.ok = false;
  partial.error = deadlock();
  partial.applied_count = 2;
  m.answer(partial);
  CHECK(m.r().applied() == EntryId{12, 1});
  CHECK(m.r().catch_up_status().failed_attempts == 1);
  CHECK(m.ticks_until_request() == 2);
}

TEST_CASE("a full copy that fails to install is asked for again after a growing back-off") {
  Member m;
  REQUIRE(m.ticks_until_request() == 1);
  std::vector<int> gaps;
  for (int attempt = 1; attempt <= 4; ++attempt) {
    m.reply_snapshot();
    REQUIRE(m.holds<InstallSnapshot>());
    const std::size_t sent = m.requests.size();
    m.fail(Error(ErrorKind::sql, "Table 'accounts' is read only", 1036));
    CHECK(m.requests.size() == sent);
    CHECK(m.r().staleness() == Staleness::needs_snapshot);
    gaps.push_back(m.ticks_until_request());
    // A copy that failed part-way may have dropped tables: only another
    // whole copy will do.
    CHECK(m.requests.back().request.snapshot);
  }
  CHECK(gaps == std::vector<int>{2, 4, 8, 16});
  m.reply_snapshot();
  m.succeed();
  CHECK(m.r().applied() == m.coordinator_applied);
  CHECK_FALSE(m.r().catch_up_status().needs_snapshot);
  CHECK(m.r().staleness() == Staleness::catching_up);  // asking to join

  // A database that takes copies but refuses every entry after them: the
  // wait keeps growing, rather than a copy every few heartbeats.
  m.coordinator_applied = EntryId{20, 1};
  m.tick();
  m.reply_entries();
  REQUIRE(m.holds<ApplyEntries>());
  m.fail(deadlock());
  CHECK(m.r().catch_up_status().failed_attempts == 5);
  CHECK(m.ticks_until_request() == 32);
  CHECK_FALSE(m.requests.back().request.snapshot);  // the count towards a copy starts again
}

TEST_CASE("a member whose prepares fail leaves the view at once and rejoins after the same back-off") {
  Member m;
  m.coordinator_applied = EntryId{5, 1};  // nothing to catch up: it joins
  REQUIRE(m.ticks_until_request() == 1);
  CHECK(m.requests.back().request.join);
  m.reply_joined();
  m.view = {1, 2, 3};
  m.tick();
  REQUIRE(m.r().in_view());
  REQUIRE_FALSE(m.r().stale());

  std::vector<int> gaps;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    CAPTURE(attempt);
    m.prepare_next();
    REQUIRE(m.holds<PrepareEntry>());
    const std::size_t votes = m.votes.size();
    m.fail(deadlock());
    REQUIRE(m.votes.size() == votes + 1);
    CHECK_FALSE(m.votes.back().yes);
    // It knows it has left the view (its no vote takes it out), before the
    // coordinator's next heartbeat says so.
    CHECK_FALSE(m.r().in_view());
    CHECK(m.r().stale());
    m.view = {2, 3};
    gaps.push_back(m.ticks_until_request());
    REQUIRE(gaps.back() > 0);
    if (attempt < 3) {
      CHECK_FALSE(m.requests.back().request.snapshot);
      m.reply_joined();
      m.view = {1, 2, 3};
      m.tick();
      REQUIRE(m.r().in_view());
      CHECK_FALSE(m.r().stale());
    } else {
      // Three prepares refused at the same position: a full copy.
      CHECK(m.requests.back().request.snapshot);
    }
  }
  CHECK(gaps == std::vector<int>{2, 4, 8});
}

TEST_CASE("a prepare that works ends the back-off and the need for a copy asked for by failures") {
  Member m;
  m.coordinator_applied = EntryId{5, 1};
  REQUIRE(m.ticks_until_request() == 1);
  m.reply_joined();
  m.view = {1, 2, 3};
  m.tick();
  m.prepare_next();
  m.fail(deadlock());
  REQUIRE(m.r().catch_up_status().failed_attempts == 1);
  m.view = {2, 3};
  REQUIRE(m.ticks_until_request() == 2);
  m.reply_joined();
  m.view = {1, 2, 3};
  m.tick();
  m.prepare_next();
  REQUIRE(m.holds<PrepareEntry>());
  m.succeed();
  CHECK(m.votes.back().yes);
  CHECK(m.r().catch_up_status().failed_attempts == 0);
  CHECK_FALSE(m.r().stale());
}

TEST_CASE("staleness: no coordinator, out of the view, catching up, current") {
  ReplicaConfig cfg;
  cfg.id = 1;
  cfg.members = {1, 2, 3};
  Replica alone(cfg, RecoveredState{});
  CHECK(alone.staleness() == Staleness::no_coordinator);
  CHECK(alone.stale());

  Member m;
  CHECK(m.r().staleness() == Staleness::out_of_view);
  REQUIRE(m.ticks_until_request() == 1);
  CHECK(m.r().staleness() == Staleness::catching_up);
  m.reply_entries();
  CHECK(m.r().staleness() == Staleness::catching_up);  // applying
  m.succeed();
  CHECK(m.r().staleness() == Staleness::catching_up);  // and asking to join
  CHECK(std::string(to_string(Staleness::needs_snapshot)) == "waiting for a full copy of the data");
}
