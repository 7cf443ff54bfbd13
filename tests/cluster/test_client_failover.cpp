// distdb::Client::connect_cluster against three distdb-node processes (SQLite
// files): it finds the coordinator by itself, follows redirects, fails over
// when the coordinator is killed, and gives up in time when nobody answers.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "cluster_fixture.hpp"
#include "process.hpp"

using namespace distdb;
using namespace distdb::test;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;
using Seeds = std::vector<std::pair<std::string, std::uint16_t>>;

std::int64_t ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// Node 3 is coordinator and every node says so (a REDIRECT names it).
bool settled_on_3(ClusterProcesses& c) {
  return c.wait_for_coordinator(3, 20s) &&
         wait_until([&] { return c.coordinator_seen_by(1) == 3 && c.coordinator_seen_by(2) == 3; }, 20s);
}

Seeds seed(ClusterProcesses& c, int id) { return {{"127.0.0.1", static_cast<std::uint16_t>(c.port(id))}}; }

// Clients log in (the fixture's nodes require it), also after every failover.
Client must_connect(Seeds seeds, ClientOptions options = ClusterProcesses::client_options()) {
  auto client = Client::connect_cluster(std::move(seeds), options);
  REQUIRE_MESSAGE(client.ok(), (client.ok() ? "" : client.error().message));
  return std::move(*client);
}

Reply must_ok(Result<Reply> r) {
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  REQUIRE_MESSAGE(r->status == ReplyStatus::ok, r->message);
  return *r;
}

std::vector<std::int64_t> ids_on(ClusterProcesses& c, int id) { return c.teste_ids(id); }

}  // namespace

TEST_CASE("failover: a cluster client given one seed learns the members; writes run on the coordinator") {
  ClusterProcesses c(3, ClusterProcesses::Backend::sqlite, "distdb_cluster");
  REQUIRE_MESSAGE(settled_on_3(c), c.log(1) << c.log(2) << c.log(3));

  Client client = must_connect(seed(c, 1));
  CHECK(client.is_cluster());
  CHECK(client.port() == c.port(1));
  const auto members = client.members();
  REQUIRE(members.size() == 3);
  std::set<int> ports;
  for (const PeerConfig& m : members) {
    CHECK(m.ip == "127.0.0.1");
    CHECK(m.port == c.port(static_cast<int>(m.id)));
    ports.insert(m.port);
  }
  CHECK(ports.size() == 3);

  // Forwarded by node 1 (the default), executed by the coordinator.
  CHECK(must_ok(client.query("CREATE TABLE teste (id INT PRIMARY KEY)")).node == 3);
  for (int i = 1; i <= 5; ++i) {
    Reply r = must_ok(client.query("INSERT INTO teste VALUES (" + std::to_string(i) + ")"));
    CHECK(r.node == 3);
    CHECK(r.result.rows_affected == 1);
    CHECK(client.last_trace().redirects == 0);
    CHECK(client.last_trace().retries == 0);
  }
  // A definite error is returned as is, not retried.
  Result<Reply> dup = client.query("INSERT INTO teste VALUES (1)");
  REQUIRE(dup.ok());
  CHECK(dup->status == ReplyStatus::error);
  REQUIRE(dup->error.has_value());
  CHECK(dup->error->kind == ErrorKind::sql);
  CHECK(client.last_trace().retries == 0);
  // Reads run where the client is connected.
  Reply read = must_ok(client.query("SELECT COUNT(*) FROM teste"));
  CHECK(read.node == 1);

  // The pipelined API keeps working on the same connection.
  auto first = client.send("INSERT INTO teste VALUES (6)");
  auto second = client.send("INSERT INTO teste VALUES (7)");
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  CHECK(*second == *first + 1);
  Reply r6 = must_ok(client.receive());
  Reply r7 = must_ok(client.receive());
  CHECK(r6.id == *first);
  CHECK(r7.id == *second);
  CHECK(r6.node == 3);
  CHECK(r7.node == 3);
}

TEST_CASE("failover: in redirect mode a write sent to node 1 is executed by node 3 after one redirect") {
  ClusterProcesses c(3, ClusterProcesses::Backend::sqlite, "distdb_cluster");
  REQUIRE_MESSAGE(settled_on_3(c), c.log(1) << c.log(2) << c.log(3));

  Client client = must_connect(seed(c, 1));
  Reply created = must_ok(client.query("CREATE TABLE teste (id INT PRIMARY KEY)", /*redirect=*/true));
  CHECK(created.node == 3);
  CHECK(client.last_trace().redirects == 1);
  CHECK(client.last_trace().retries == 0);
  CHECK(client.port() == c.port(3));  // it stays on the coordinator
  Reply inserted = must_ok(client.query("INSERT INTO teste VALUES (1)", true));
  CHECK(inserted.node == 3);
  CHECK(client.last_trace().redirects == 0);

  // follow_redirects=false: the REDIRECT reply is the answer.
  ClientOptions options = ClusterProcesses::client_options();
  options.follow_redirects = false;
  Client plain = must_connect(seed(c, 2), options);
  Result<Reply> redirect = plain.query("INSERT INTO teste VALUES (2)", true);
  REQUIRE(redirect.ok());
  CHECK(redirect->status == ReplyStatus::redirect);
  REQUIRE(redirect->coordinator.has_value());
  CHECK(redirect->coordinator->id == 3);
  CHECK(redirect->coordinator->port == c.port(3));
  CHECK(plain.port() == c.port(2));
}

TEST_CASE("failover: kill -9 of the coordinator under a write loop; writes resume on node 2 by themselves") {
  ClusterProcesses c(3, ClusterProcesses::Backend::sqlite, "distdb_cluster");
  REQUIRE_MESSAGE(settled_on_3(c), c.log(1) << c.log(2) << c.log(3));

  ClientOptions options = ClusterProcesses::client_options();
  options.connect_timeout_ms = 1000;
  options.request_timeout_ms = 10000;
  options.retry_for_ms = 10000;
  Client client = must_connect(seed(c, 1), options);
  must_ok(client.query("CREATE TABLE teste (id INT PRIMARY KEY)", true));
  REQUIRE(client.port() == c.port(3));

  // What the application was told about each write: OK (must be on every
  // surviving node), a definite error (must be nowhere), or outcome unknown.
  struct Event {
    int id;
    std::string what;
    Clock::time_point at;
  };
  std::mutex m;
  std::vector<int> acked, failed, unknown;
  std::vector<Event> not_acked;
  std::optional<Clock::time_point> first_ack_by_2;
  std::atomic<int> acked_by_2{0};
  std::atomic<int> total_acked{0};
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> longest_call_ms{0};
  std::thread writer([&] {
    for (int i = 1; !stop && i <= 100000; ++i) {
      const auto t0 = Clock::now();
      Result<Reply> r = client.query("INSERT INTO teste VALUES (" + std::to_string(i) + ")", true);
      longest_call_ms = std::max<std::int64_t>(longest_call_ms, ms_since(t0));
      std::lock_guard lock(m);
      if (r && r->status == ReplyStatus::ok) {
        acked.push_back(i);
        ++total_acked;
        if (r->node == 2 && ++acked_by_2 == 1) first_ack_by_2 = Clock::now();
        continue;
      }
      const bool is_unknown = r ? (r->error && r->error->kind == ErrorKind::outcome_unknown)
                                : (r.error().kind == ErrorKind::outcome_unknown || r.error().kind == ErrorKind::timeout);
      (is_unknown ? unknown : failed).push_back(i);
      not_acked.push_back({i, (is_unknown ? "unknown: " : "failed: ") + (r ? r->message : r.error().message), t0});
    }
  });

  REQUIRE(wait_until([&] { return total_acked >= 30; }, 20s));
  c.kill(3);
  const auto killed_at = Clock::now();
  const bool resumed = wait_until([&] { return acked_by_2 >= 1; }, std::chrono::milliseconds(options.retry_for_ms));
  if (resumed) CHECK(wait_until([&] { return acked_by_2 >= 30; }, 20s));
  stop = true;
  writer.join();
  for (const auto& e : not_acked) {
    MESSAGE("write " << e.id << " at " << std::chrono::duration_cast<std::chrono::milliseconds>(e.at - killed_at).count()
                     << " ms after the kill: " << e.what);
  }
  MESSAGE((first_ack_by_2 ? std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                *first_ack_by_2 - killed_at).count())
                          : std::string("-"))
          << " ms from kill -9 to the first write acknowledged by node 2; " << acked.size() << " acknowledged, "
          << failed.size() << " failed, " << unknown.size() << " unknown; longest call " << longest_call_ms.load()
          << " ms");
  REQUIRE_MESSAGE(resumed, "no write acknowledged by node 2 within the retry window\n--- node 1\n"
                               << c.log(1) << "\n--- node 2\n" << c.log(2) << "\n--- node 3\n" << c.log(3));

  // Only writes in flight while node 3 was dying can be unknown; from then
  // on the failover is absorbed by the client's retries: no write fails.
  CHECK(failed.empty());
  for (const auto& e : not_acked) {
    CHECK_MESSAGE(e.at < *first_ack_by_2, "write " << e.id << " was not acknowledged after the failover: " << e.what);
  }
  CHECK(client.port() == c.port(2));

  // Every acknowledged write is on both survivors; no failed one anywhere.
  std::vector<std::int64_t> rows;
  const bool converged = wait_until(
      [&] {
        rows = ids_on(c, 2);
        return rows.size() >= acked.size() && ids_on(c, 1) == rows;
      },
      20s);
  CHECK_MESSAGE(converged, "nodes 1 and 2 did not converge");
  const std::set<std::int64_t> present(rows.begin(), rows.end());
  for (int id : acked) CHECK_MESSAGE(present.count(id) == 1, "acknowledged write " << id << " is missing");
  for (int id : failed) CHECK_MESSAGE(present.count(id) == 0, "failed write " << id << " is present");
  CHECK(rows.size() <= acked.size() + unknown.size());
}

TEST_CASE("failover: with every seed down, connect_cluster and query give up after retry_for_ms") {
  ClientOptions options = ClusterProcesses::client_options();
  options.connect_timeout_ms = 1000;
  options.retry_for_ms = 1500;

  // Nobody listens on these ports.
  const Seeds dead{{"127.0.0.1", static_cast<std::uint16_t>(free_port())},
                   {"127.0.0.1", static_cast<std::uint16_t>(free_port())}};
  auto t0 = Clock::now();
  auto none = Client::connect_cluster(dead, options);
  const auto connect_ms = ms_since(t0);
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().kind == ErrorKind::unavailable);
  MESSAGE("connect_cluster gave up after " << connect_ms << " ms: " << none.error().message);
  CHECK(connect_ms >= options.retry_for_ms);
  CHECK(connect_ms < options.retry_for_ms + 1000);

  // A cluster that dies after the client connected: the idle connection is
  // found closed, nothing was sent, so it is retried until the window closes.
  ClusterProcesses c(3, ClusterProcesses::Backend::sqlite, "distdb_cluster");
  REQUIRE_MESSAGE(settled_on_3(c), c.log(1) << c.log(2) << c.log(3));
  Client client = must_connect(seed(c, 2), options);
  must_ok(client.query("CREATE TABLE teste (id INT PRIMARY KEY)"));
  for (int id = 1; id <= 3; ++id) c.kill(id);
  t0 = Clock::now();
  Result<Reply> r = client.query("INSERT INTO teste VALUES (1)");
  const auto query_ms = ms_since(t0);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind == ErrorKind::unavailable);
  MESSAGE("query gave up after " << query_ms << " ms, " << client.last_trace().retries
                                 << " retries: " << r.error().message);
  CHECK(query_ms >= options.retry_for_ms);
  CHECK(query_ms < options.retry_for_ms + 1000);
  CHECK(client.last_trace().retries >= 3);
}
