// Scripted scenarios on the simulation fixture (no random faults): each one
// drives the cluster through a specific situation and asserts what the
// design promises; the Checker runs after every step as well, and every
// scenario ends with the full convergence + final check.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "cluster.hpp"
#include "simulation.hpp"

using namespace distdb;
using namespace distdb::sim;

namespace {

ClusterOptions quiet_options(std::size_t nodes, std::uint64_t seed = 42, bool prepare_durable = false) {
  ClusterOptions o;
  o.nodes = nodes;
  o.seed = seed;
  o.prepare_durable = prepare_durable;
  o.network.min_delay = 1;
  o.network.max_delay = 2;
  o.replica.heartbeat_interval_ticks = 2;
  o.replica.heartbeat_timeout_ticks = 12;
  o.replica.round_timeout_ticks = 15;
  o.replica.forward_timeout_ticks = 100;
  o.verbose = std::getenv("DISTDB_SIM_VERBOSE") != nullptr;  // prints the trace
  return o;
}

// Fails the test case with everything the checker found, the cluster's
// state and the last events.
void require_clean(Cluster& c) {
  if (!c.checker().failed()) return;
  std::string recent;
  for (const auto& line : c.trace().recent()) recent += "  " + line + "\n";
  FAIL_CHECK(c.checker().summary() << "cluster:\n" << c.describe() << "last events:\n" << recent);
}

// `id` can commit and every live node follows it and is in its view.
bool wait_coordinator(Cluster& c, NodeId id, std::uint64_t limit = 300) {
  return c.step_until(
      [&] {
        if (c.coordinator() != id) return false;
        for (NodeId n : c.up_ids()) {
          if (c.replica(n).coordinator() != id || !c.replica(n).in_view()) return false;
        }
        return true;
      },
      limit);
}

// `id` can commit and the nodes in `group` follow it.
bool wait_coordinator_of(Cluster& c, NodeId id, const std::vector<NodeId>& group, std::uint64_t limit = 300) {
  return c.step_until(
      [&] {
        if (c.coordinator() != id) return false;
        for (NodeId n : group) {
          if (c.replica(n).coordinator() != id) return false;
        }
        return true;
      },
      limit);
}

bool wait_answers(Cluster& c, const std::vector<core::ClientTag>& tags, std::uint64_t limit = 300) {
  return c.step_until(
      [&] {
        for (auto t : tags) {
          if (!c.answered(t)) return false;
        }
        return true;
      },
      limit);
}

// Heals and restarts everything, waits for convergence and runs the final
// check over every storage and the whole history.
void finish(Cluster& c) {
  c.heal();
  for (NodeId id : c.ids()) c.restart(id);
  const bool converged = c.step_until([&] { return c.converged(); }, 1000);
  if (!converged) FAIL_CHECK("no convergence:\n" << c.describe());
  std::vector<const SimStorage*> storages;
  for (NodeId id : c.ids()) storages.push_back(&c.storage(id));
  c.checker().check_final(storages, c.history());
  require_clean(c);
}

}  // namespace

TEST_SUITE("sim-storage") {
  TEST_CASE("statements: insert, duplicate key, upsert, delete, syntax") {
    SimStorage s(1, {});
    Rng rng(1);
    core::Entry e{
        {1, 1}, {{"INSERT a 1"}, {"INSERT a 2"}, {"UPSERT b 3"}, {"DELETE c"}, {"DELETE b"}, {"BOGUS"}}, {}};
    auto done = s.execute({1, core::PrepareEntry{e, {}, false}}, rng);
    REQUIRE(done.ok);
    REQUIRE(done.outcomes.size() == 6);
    CHECK(done.outcomes[0].ok);
    CHECK_FALSE(done.outcomes[1].ok);
    CHECK(done.outcomes[1].code == 1062);
    CHECK(done.outcomes[3].rows_affected == 0);
    CHECK(done.outcomes[4].rows_affected == 1);
    CHECK(done.outcomes[5].code == 1064);
    CHECK(s.data().empty());  // prepared, not committed
    REQUIRE(s.execute({2, core::CommitEntry{{1, 1}}}, rng).ok);
    CHECK(s.data() == KeyValues{{"a", "1"}});
    CHECK(s.applied() == core::EntryId{1, 1});
    // The log holds the outcomes as expectations.
    CHECK_FALSE(s.log().at(1).statements[1].expect_ok);
    CHECK(s.log().at(1).statements[1].expect_code == 1062);
  }

  TEST_CASE("crash: a prepared transaction survives only with prepare_durable") {
    for (bool durable : {false, true}) {
      SimStorage s(1, {durable, 200, 0});
      Rng rng(7);
      core::Entry e{{1, 1}, {{"INSERT a 1"}}, {}};
      REQUIRE(s.execute({1, core::PersistPromise{1}}, rng).ok);
      REQUIRE(s.execute({2, core::PrepareEntry{e, {}, false}}, rng).ok);
      s.crash(nullptr, rng);
      const auto r = s.recover();
      CHECK(r.promised == 1);
      CHECK(r.prepared.size() == (durable ? 1u : 0u));
      CHECK(s.execute({3, core::CommitEntry{{1, 1}}}, rng).ok == durable);
      CHECK(s.data().size() == (durable ? 1u : 0u));
    }
  }

  TEST_CASE("read log: entries, conflict, truncation; snapshot round trip") {
    SimStorage s(1, {false, 3, 0});
    Rng rng(3);
    std::vector<core::Entry> entries;
    for (core::Seq i = 1; i <= 5; ++i)
      entries.push_back({{i, 1}, {{"INSERT k" + std::to_string(i) + " v"}}, {}});
    auto applied = s.execute({1, core::ApplyEntries{entries}}, rng);
    REQUIRE(applied.applied_count == 5);
    auto read = s.execute({2, core::ReadLog{{3, 1}, 10, 2, false}}, rng);
    CHECK(read.entries.size() == 2);
    CHECK(s.execute({3, core::ReadLog{{3, 2}, 10, 2, false}}, rng).log_conflict);
    CHECK(s.execute({4, core::ReadLog{{6, 1}, 10, 2, false}}, rng).log_conflict);
    CHECK(s.execute({5, core::ReadLog{{1, 1}, 10, 2, false}}, rng).log_truncated);
    CHECK(s.execute({6, core::ReadLog{{0, 0}, 10, 2, false}}, rng).log_truncated);
    CHECK(s.execute({7, core::ReadLog{{5, 1}, 10, 2, false}}, rng).entries.empty());

    auto snap = s.execute({8, core::ReadSnapshot{2}}, rng);
    SimStorage t(2, {false, 3, 0});
    REQUIRE(t.execute({1, core::InstallSnapshot{snap.snapshot_applied, snap.snapshot_data}}, rng).ok);
    CHECK(t.data() == s.data());
    CHECK(t.applied() == s.applied());
    // Replaying an entry whose outcome differs is divergence.
    auto again = t.execute({2, core::ApplyEntries{{{{6, 1}, {{"INSERT k1 x", true, 0}}, {}}}}}, rng);
    CHECK(again.diverged);
    CHECK(again.applied_count == 0);
  }
}

TEST_SUITE("sim-scenarios") {
  TEST_CASE("the highest id is elected with all nodes up") {
    for (std::size_t n : {3u, 5u}) {
      Cluster c(quiet_options(n));
      REQUIRE(wait_coordinator(c, static_cast<NodeId>(n)));
      CHECK(c.step_until(
          [&] {
            for (NodeId id : c.ids()) {
              if (c.replica(id).coordinator() != n || !c.replica(id).in_view()) return false;
            }
            return true;
          },
          200));
      finish(c);
    }
  }

  TEST_CASE("writes replicate to every node, forwarded ones too") {
    Cluster c(quiet_options(3));
    REQUIRE(wait_coordinator(c, 3));
    std::vector<core::ClientTag> tags;
    for (int i = 0; i < 12; ++i) tags.push_back(c.propose_insert(static_cast<NodeId>(1 + i % 3)));
    REQUIRE(wait_answers(c, tags));
    for (auto t : tags) CHECK(c.committed_ok(t));
    REQUIRE(c.step_until([&] { return c.converged(); }, 300));
    for (NodeId id : c.ids()) CHECK(c.storage(id).data().size() == 12);
    finish(c);
  }

  TEST_CASE("a duplicate key fails alone, identically everywhere") {
    Cluster c(quiet_options(3));
    REQUIRE(wait_coordinator(c, 3));
    auto first = c.propose(3, "INSERT dup a");
    auto second = c.propose(3, "INSERT dup b");
    auto third = c.propose(2, "INSERT other c");
    REQUIRE(wait_answers(c, {first, second, third}));
    CHECK(c.committed_ok(first));
    REQUIRE(c.write(second).result->kind == core::WriteResult::committed);
    CHECK_FALSE(c.write(second).result->outcome.ok);
    CHECK(c.write(second).result->outcome.code == 1062);
    CHECK(c.committed_ok(third));
    REQUIRE(c.step_until([&] { return c.converged(); }, 300));
    for (NodeId id : c.ids()) CHECK(c.storage(id).data() == KeyValues{{"dup", "a"}, {"other", "c"}});
    finish(c);
  }

  TEST_CASE("coordinator crash: the next highest takes over, no acknowledged write lost") {
    for (bool durable : {false, true}) {
      CAPTURE(durable);
      Cluster c(quiet_options(3, 7, durable));
      REQUIRE(wait_coordinator(c, 3));
      std::vector<core::ClientTag> before;
      for (int i = 0; i < 5; ++i) before.push_back(c.propose_insert(3));
      REQUIRE(wait_answers(c, before));
      // Crash in the middle of more writes.
      for (int i = 0; i < 3; ++i) c.propose_insert(3);
      c.step();
      c.crash(3);
      REQUIRE(wait_coordinator(c, 2));
      auto after = c.propose_insert(2);
      REQUIRE(wait_answers(c, {after}));
      CHECK(c.committed_ok(after));
      for (auto t : before) {
        if (c.committed_ok(t)) {
          for (NodeId id : {1u, 2u}) CHECK(c.storage(id).data().count(c.write(t).key) == 1);
        }
      }
      finish(c);
    }
  }

  TEST_CASE("participant crash: the majority goes on; the node restarts and catches up") {
    Cluster c(quiet_options(3, 11));
    REQUIRE(wait_coordinator(c, 3));
    REQUIRE(wait_answers(c, {c.propose_insert(3)}));
    c.crash(1);
    std::vector<core::ClientTag> tags;
    for (int i = 0; i < 6; ++i) tags.push_back(c.propose_insert(i % 2 ? 2 : 3));
    REQUIRE(wait_answers(c, tags, 400));
    for (auto t : tags) CHECK(c.committed_ok(t));
    c.restart(1);
    REQUIRE(c.step_until([&] { return c.converged(); }, 500));
    CHECK(c.storage(1).data() == c.storage(3).data());
    CHECK(c.storage(1).data().size() == 7);
    finish(c);
  }

  TEST_CASE(
      "shipping effects: members store what the coordinator's run wrote, even where statements would "
      "differ") {
    // Every INSERT also writes a value of the node's own (a NOW(6) column,
    // as it were). Run as statements on each member, the data differs —
    // the checker must see that, or the second half proves nothing; shipped
    // as effects, it is the same everywhere, for the members in the rounds
    // and for one that crashed and catches up from the log.
    for (bool ship : {false, true}) {
      CAPTURE(ship);
      auto o = quiet_options(3, 23);
      o.nondeterministic = true;
      o.replica.ship_effects = ship;
      Cluster c(o);
      REQUIRE(wait_coordinator(c, 3));
      std::vector<core::ClientTag> tags;
      for (int i = 0; i < 4; ++i) tags.push_back(c.propose_insert(static_cast<NodeId>(1 + i % 3)));
      REQUIRE(wait_answers(c, tags));
      c.crash(1);
      for (int i = 0; i < 4; ++i) tags.push_back(c.propose_insert(3));
      REQUIRE(wait_answers(c, tags, 400));
      for (auto t : tags) CHECK(c.committed_ok(t));
      c.restart(1);
      REQUIRE(c.step_until([&] { return c.converged(); }, 500));
      CHECK(c.storage(3).data().count(c.write(tags.front()).key + "#at") == 1);
      if (!ship) {
        CHECK(c.storage(1).data() != c.storage(3).data());
        CHECK(c.storage(2).data() != c.storage(3).data());
        std::vector<const SimStorage*> storages;
        for (NodeId id : c.ids()) storages.push_back(&c.storage(id));
        c.checker().check_final(storages, c.history());
        CHECK(c.checker().failed());
        continue;
      }
      CHECK(c.storage(1).data() == c.storage(3).data());
      CHECK(c.storage(2).data() == c.storage(3).data());
      CHECK(c.storage(1).data().size() == 16);
      finish(c);
    }
  }

  TEST_CASE("a node far behind the log window catches up from a snapshot") {
    auto o = quiet_options(3, 5);
    o.log_retention = 4;
    Cluster c(o);
    REQUIRE(wait_coordinator(c, 3));
    c.crash(1);
    std::vector<core::ClientTag> tags;
    for (int i = 0; i < 20; ++i) {
      tags.push_back(c.propose_insert(3));
      c.run(3);  // separate rounds, so that the log moves past the window
    }
    REQUIRE(wait_answers(c, tags, 500));
    c.restart(1);
    REQUIRE(c.step_until([&] { return c.converged(); }, 500));
    CHECK(c.storage(1).data() == c.storage(3).data());
    CHECK(c.storage(1).snapshot_installs() >= 1);
    finish(c);
  }

  TEST_CASE("a member whose database refuses entries for a while backs off, and converges once it stops") {
    // Node 1's database refuses every entry (and, in the second run, every
    // full copy too) for 600 ticks while writes go on. It must not retry in
    // a loop: every attempt waits a back-off that doubles up to its cap (64
    // ticks here), and after three refusals at one position it asks for a
    // full copy. It says it is stale whenever it is out of the view. Once
    // the database takes entries again, it converges within a back-off or
    // two.
    for (bool installs : {false, true}) {
      CAPTURE(installs);
      Cluster c(quiet_options(3, 23));
      REQUIRE(wait_coordinator(c, 3));
      c.crash(1);
      std::vector<core::ClientTag> tags;
      for (int i = 0; i < 6; ++i) {
        tags.push_back(c.propose_insert(3));
        c.run(3);
      }
      REQUIRE(wait_answers(c, tags, 400));
      c.storage(1).refuse_entries(true, installs);
      c.restart(1);
      int ticks = 0;
      int stale_ticks = 0;
      for (int i = 0; i < 60; ++i) {
        tags.push_back(c.propose_insert(i % 2 ? 2 : 3));
        for (int t = 0; t < 10; ++t) {
          c.step();
          ++ticks;
          core::Replica& r = c.replica(1);
          if (r.stale()) ++stale_ticks;
          if (!r.in_view()) CHECK(r.stale());
        }
      }
      require_clean(c);
      const std::uint64_t refused = c.storage(1).refused();
      MESSAGE("refused attempts: " << refused << ", stale for " << stale_ticks << " of " << ticks
                                   << " ticks");
      CHECK(refused >= 3);
      // 2 + 4 + ... + 64, then one every 64 ticks: about 15 in 600 ticks.
      // Retrying at once gave one every few ticks.
      CHECK(refused <= 25);
      CHECK(stale_ticks >= ticks * 9 / 10);
      if (!installs) CHECK(c.storage(1).snapshot_installs() >= 1);
      c.storage(1).refuse_entries(false);
      REQUIRE(wait_answers(c, tags, 400));
      for (auto t : tags) CHECK(c.committed_ok(t));
      REQUIRE(c.step_until([&] { return c.converged(); }, 400));
      CHECK_FALSE(c.replica(1).stale());
      CHECK(c.storage(1).data() == c.storage(3).data());
      finish(c);
    }
  }

  TEST_CASE("a minority partition cannot commit; the majority can") {
    Cluster c(quiet_options(5, 13));
    REQUIRE(wait_coordinator(c, 5));
    c.partition({{4, 5}, {1, 2, 3}});
    c.run(40);
    CHECK_FALSE(c.replica(5).can_commit());
    auto minority = c.propose_insert(5);
    auto minority_fwd = c.propose_insert(4);
    REQUIRE(wait_coordinator_of(c, 3, {1, 2, 3}));
    auto majority = c.propose_insert(1);
    REQUIRE(wait_answers(c, {minority, minority_fwd, majority}, 300));
    CHECK_FALSE(c.committed_ok(minority));
    CHECK_FALSE(c.committed_ok(minority_fwd));
    CHECK(c.write(minority).result->kind != core::WriteResult::committed);
    CHECK(c.committed_ok(majority));
    finish(c);
  }

  TEST_CASE("an isolated coordinator steps aside; after the heal the highest id takes over again") {
    Cluster c(quiet_options(3, 17));
    REQUIRE(wait_coordinator(c, 3));
    c.isolate(3);
    REQUIRE(wait_coordinator_of(c, 2, {1, 2}));
    CHECK_FALSE(c.replica(3).can_commit());
    auto w = c.propose_insert(1);
    REQUIRE(wait_answers(c, {w}));
    CHECK(c.committed_ok(w));
    c.heal();
    REQUIRE(c.step_until([&] { return c.coordinator() == 3 && c.converged(); }, 600));
    CHECK(c.storage(3).data().count(c.write(w).key) == 1);
    finish(c);
  }

  TEST_CASE("a higher-id node returning catches up, then takes over") {
    Cluster c(quiet_options(3, 19));
    REQUIRE(wait_coordinator(c, 3));
    c.crash(3);
    REQUIRE(wait_coordinator(c, 2));
    std::vector<core::ClientTag> tags;
    for (int i = 0; i < 8; ++i) tags.push_back(c.propose_insert(i % 2 ? 1 : 2));
    REQUIRE(wait_answers(c, tags, 400));
    for (auto t : tags) CHECK(c.committed_ok(t));
    c.restart(3);
    REQUIRE(c.step_until([&] { return c.coordinator() == 3 && c.converged(); }, 800));
    CHECK(c.storage(3).data().size() == 8);
    auto w = c.propose_insert(3);
    REQUIRE(wait_answers(c, {w}));
    CHECK(c.committed_ok(w));
    finish(c);
  }
}

TEST_SUITE("sim-determinism") {
  TEST_CASE("the same seed gives the same trace; another seed another one") {
    SimParams p;
    p.seed = 12345;
    p.ticks = 1500;
    const auto a = run_simulation(p);
    const auto b = run_simulation(p);
    CHECK(a.trace_events > 1000);
    CHECK(a.trace_hash == b.trace_hash);
    CHECK(a.trace_events == b.trace_events);
    p.seed = 12346;
    CHECK(run_simulation(p).trace_hash != a.trace_hash);
  }
}
