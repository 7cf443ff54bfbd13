// Three distdb-node processes replicating to three databases: real
// processes, real TCP, and (in cluster_mariadb_tests) real MariaDB servers.
// Compiled twice: with DISTDB_CLUSTER_MARIADB against the MariaDB test
// servers, without it on SQLite files.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>

#include "cluster_fixture.hpp"
#include "distdb/core/messages.hpp"
#include "distdb/storage.hpp"
#include "node_fixture.hpp"
#include "process.hpp"
#include "test_certs.hpp"
#include "wire/peer_auth.hpp"
#include "wire/peer_codec.hpp"
#ifdef DISTDB_CLUSTER_MARIADB
#include "distdb/storage.hpp"
#include "mariadb_env.hpp"
#endif

using namespace distdb;
using namespace distdb::test;
using namespace std::chrono_literals;

namespace {

#ifdef DISTDB_CLUSTER_MARIADB
constexpr auto kBackend = ClusterProcesses::Backend::mariadb;
#else
constexpr auto kBackend = ClusterProcesses::Backend::sqlite;
#endif

// Whether this run's nodes ship rows (storage.replication "rows", set by
// tests/meson.build through DISTDB_TEST_REPLICATION; statements otherwise).
bool ships_rows() {
  const char* mode = std::getenv("DISTDB_TEST_REPLICATION");
  return mode != nullptr && std::string(mode) == "rows";
}

Reply must(Result<Reply> r) {
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  return *r;
}

Reply must_ok(Result<Reply> r) {
  Reply reply = must(std::move(r));
  REQUIRE_MESSAGE(reply.status == ReplyStatus::ok, reply.message);
  return reply;
}

std::vector<std::int64_t> ids_on(ClusterProcesses& c, int id) { return c.teste_ids(id); }

// Every running node serves the same rows (waits for followers to apply).
void expect_identical(ClusterProcesses& c, std::size_t expected_rows) {
  std::vector<std::int64_t> reference;
  const bool converged = wait_until(
      [&] {
        reference = ids_on(c, 1);
        if (reference.size() != expected_rows) return false;
        for (int id = 2; id <= c.size(); ++id) {
          if (ids_on(c, id) != reference) return false;
        }
        return true;
      },
      20s);
  if (!converged) {
    std::string counts;
    for (int id = 1; id <= c.size(); ++id) counts += " node " + std::to_string(id) + ": " + std::to_string(ids_on(c, id).size());
    FAIL_CHECK("nodes did not converge on " << expected_rows << " rows;" << counts << "\n--- node 1\n"
                                            << c.log(1) << "\n--- node 2\n" << c.log(2) << "\n--- node 3\n" << c.log(3));
  }
#ifdef DISTDB_CLUSTER_MARIADB
  // The databases themselves, checked directly: equal table checksums.
  std::vector<std::string> sums;
  for (int i = 0; i < c.size(); ++i) {
    StorageConfig sc;
    sc.backend = StorageBackend::mariadb;
    sc.db = mariadb_db_config(static_cast<std::size_t>(i), "distdb_cluster");
    auto s = open_storage(sc);
    REQUIRE(s.ok());
    auto rs = (*s)->execute("CHECKSUM TABLE teste");
    REQUIRE(rs.ok());
    const Value& v = rs->rows.at(0).at(1);
    sums.push_back(std::holds_alternative<std::int64_t>(v) ? std::to_string(std::get<std::int64_t>(v))
                                                           : std::get<std::string>(v));
  }
  CHECK(sums[0] == sums[1]);
  CHECK(sums[0] == sums[2]);
#endif
}

}  // namespace

TEST_CASE("writes are replicated to every node, forwarded or redirected to the coordinator") {
  ClusterProcesses c(3, kBackend, "distdb_cluster");
  REQUIRE_MESSAGE(c.wait_for_coordinator(3, 20s), c.log(3));

  Reply created = must_ok(c.query(1, "CREATE TABLE teste (id INT PRIMARY KEY)"));
  CHECK(created.node == 3);  // forwarded by node 1, executed by the coordinator

  Reply redirect = must(c.query(2, "INSERT INTO teste VALUES (100)", true));
  CHECK(redirect.status == ReplyStatus::redirect);
  REQUIRE(redirect.coordinator.has_value());
  CHECK(redirect.coordinator->id == 3);
  CHECK(redirect.coordinator->port == c.port(3));

  for (int i = 1; i <= 20; ++i) {
    Reply r = must_ok(c.query(1 + i % 3, "INSERT INTO teste VALUES (" + std::to_string(i) + ")"));
    CHECK(r.result.rows_affected == 1);
  }
  Reply dup = must(c.query(2, "INSERT INTO teste VALUES (5)"));
  CHECK(dup.status == ReplyStatus::error);
  REQUIRE(dup.error.has_value());
  CHECK(dup.error->kind == ErrorKind::sql);

  Reply nondeterministic =
      must(c.query(1, kBackend == ClusterProcesses::Backend::mariadb
                          ? "INSERT INTO teste VALUES (UNIX_TIMESTAMP())"
                          : "INSERT INTO teste VALUES (1000 + abs(random() % 1000000))"));
  if (ships_rows()) {
    // Shipped as the row the coordinator wrote: one value, everywhere.
    CHECK(nondeterministic.status == ReplyStatus::ok);
    expect_identical(c, 21);
    // Every entry's effects are in every member's log, for catch-up; the
    // coordinator's own last one may still wait for its next transaction.
    for (int id = 1; id <= 3; ++id) {
      CAPTURE(id);
      Reply nulls = must_ok(c.query(id, "SELECT COUNT(*) FROM distdb_effects WHERE effects IS NULL"));
      Reply shipped = must_ok(c.query(id, "SELECT COUNT(*) FROM distdb_effects"));
      REQUIRE(nulls.result.rows.size() == 1);
      REQUIRE(shipped.result.rows.size() == 1);
      const auto null_count = std::get<std::int64_t>(nulls.result.rows[0][0]);
      CHECK(null_count <= (id == 3 ? 1 : 0));
      CHECK(std::get<std::int64_t>(shipped.result.rows[0][0]) >= 21);
    }
    return;
  }
  REQUIRE(nondeterministic.status == ReplyStatus::error);
  REQUIRE(nondeterministic.error.has_value());
  CHECK(nondeterministic.error->kind == ErrorKind::invalid_request);
  CHECK(nondeterministic.error->message.find(kBackend == ClusterProcesses::Backend::mariadb
                                                 ? "UNIX_TIMESTAMP"
                                                 : "RANDOM") != std::string::npos);

  expect_identical(c, 20);
}

TEST_CASE("with a cluster secret members replicate, and forged or replayed peer messages never reach the storage") {
  const std::string secret = "the cluster's secret, 32 bytes..";
  ClusterProcesses c(3, kBackend, "distdb_cluster",
                     R"("security": {"cluster_secret": ")" + secret + R"(", "client_auth": "users", )" +
                         test_users_json() + "}");
  REQUIRE_MESSAGE(c.wait_for_coordinator(3, 20s), c.log(3));
  must_ok(c.query(1, "CREATE TABLE teste (id INT PRIMARY KEY)"));
  must_ok(c.query(2, "INSERT INTO teste VALUES (1)"));
  expect_identical(c, 1);

  // What a rogue host would send node 1 in node 3's name: the Prepare and
  // Decide of the next entry, in the current epoch after node 1's last
  // entry, inserting 666 — which node 1 would apply if it believed them —
  // and a heartbeat claiming a far higher epoch.
  // Node 1's own applied position and epoch, from its STATUS.
  const auto position_of_node_1 = [&]() -> std::pair<std::uint64_t, std::uint64_t> {
    auto client = Client::connect("127.0.0.1", static_cast<std::uint16_t>(c.port(1)),
                                  ClusterProcesses::client_options());
    REQUIRE(client.ok());
    auto status = client->status();
    REQUIRE(status.ok());
    for (const Row& row : status->result.rows) {
      if (std::get<std::int64_t>(row.at(0)) != 1) continue;
      return {static_cast<std::uint64_t>(std::get<std::int64_t>(row.at(6))),
              static_cast<std::uint64_t>(std::get<std::int64_t>(row.at(7)))};
    }
    return {0, 0};
  };
  // (STATUS is refreshed on the core's ticks: wait for both entries.)
  REQUIRE(wait_until([&] { return position_of_node_1().first >= 2; }, 10s));
  const auto [seq, epoch] = position_of_node_1();
  core::Entry entry;
  entry.id = {seq + 1, epoch};
  entry.statements.push_back({"INSERT INTO teste VALUES (666)", true, 0});
  const std::vector<core::Message> forged = {
      core::Prepare{epoch, {seq, epoch}, entry},
      core::Decide{epoch, entry.id},
      core::Heartbeat{epoch + 50, 3, true, entry.id, {1, 2, 3}},
  };
  // One connection per kind: a node logs the first refusal of a connection
  // (then every 1000th), so that a flood cannot fill its log.
  wire::PeerAuth wrong_secret("not the cluster's secret at all");
  RawConnection unsigned_frames(c.port(1));
  RawConnection foreign_frames(c.port(1));
  REQUIRE(unsigned_frames.connected());
  REQUIRE(foreign_frames.connected());
  for (const core::Message& m : forged) {
    const std::string frame = wire::encode_peer(core::Envelope{3, 1, m});
    REQUIRE(unsigned_frames.write(frame + "\n"));
    REQUIRE(foreign_frames.write(wrong_secret.sign(frame) + "\n"));
  }
  // A frame signed with the right secret, played twice: only the first
  // counts (it is a harmless stale heartbeat of epoch 0 here).
  wire::PeerAuth holder(secret);
  const std::string once = holder.sign(wire::encode_peer(core::Envelope{2, 1, core::Heartbeat{}}));
  RawConnection replayer(c.port(1));
  REQUIRE(replayer.write(once + "\n"));
  REQUIRE(replayer.write(once + "\n"));

  const auto logged = [&](const char* what) { return c.log(1).find(what) != std::string::npos; };
  REQUIRE_MESSAGE(wait_until([&] { return logged("no authenticator") && logged("wrong authenticator") &&
                                          logged("a replay"); }, 10s),
                  c.log(1));
  // Nothing of it took effect: the same epoch (a believed heartbeat would
  // have made node 1 promise epoch + 50), the same coordinator, no row 666,
  // and writes go on.
  CHECK(position_of_node_1().second == epoch);
  CHECK(c.coordinator_seen_by(1) == 3);
  must_ok(c.query(1, "INSERT INTO teste VALUES (2)"));
  expect_identical(c, 2);
  CHECK(ids_on(c, 1) == std::vector<std::int64_t>{1, 2});
}

TEST_CASE("failing statements batched with others leave no trace, and the others apply, on every node") {
  ClusterProcesses c(3, kBackend, "distdb_cluster");
  REQUIRE_MESSAGE(c.wait_for_coordinator(3, 20s), c.log(3));
  must_ok(c.query(3, "CREATE TABLE teste (id INT PRIMARY KEY)"));
  must_ok(c.query(3, "INSERT INTO teste VALUES (1)"));
  // Four clients at once, so that the coordinator puts several statements in
  // one entry: good inserts, duplicates, and multi-row inserts that fail on
  // their last row (the whole statement must be undone, its first rows too).
  constexpr int kClients = 4;
  constexpr int kPerClient = 40;
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::atomic<int> other{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&, t] {
      auto client = Client::connect("127.0.0.1", static_cast<std::uint16_t>(c.port(1 + t % 3)),
                                    ClusterProcesses::client_options());
      if (!client) {
        other += kPerClient;
        return;
      }
      for (int i = 0; i < kPerClient; ++i) {
        const int base = 1000 * (t + 1) + i;
        std::string sql;
        switch (i % 3) {
          case 0:
            sql = "INSERT INTO teste VALUES (" + std::to_string(base) + ")";
            break;
          case 1:
            sql = "INSERT INTO teste VALUES (1)";
            break;  // duplicate
          default:
            sql = "INSERT INTO teste VALUES (" + std::to_string(base + 500) + "), (1)";
            break;
        }
        auto r = client->query(sql);
        if (r && r->status == ReplyStatus::ok) {
          ++ok;
        } else if (r && r->status == ReplyStatus::error && r->error && r->error->kind == ErrorKind::sql) {
          ++failed;
        } else {
          ++other;
        }
      }
    });
  }
  for (auto& th : clients) th.join();
  CHECK(other.load() == 0);
  const int good_per_client = (kPerClient + 2) / 3;  // i % 3 == 0
  CHECK(ok.load() == kClients * good_per_client);
  CHECK(failed.load() == kClients * kPerClient - ok.load());
  expect_identical(c, 1 + static_cast<std::size_t>(kClients * good_per_client));
  for (std::int64_t id : ids_on(c, 2)) CHECK((id == 1 || id % 1000 < 500));  // no first row of a failed multi-row insert
}

#ifndef DISTDB_CLUSTER_MARIADB
// Every row of `table` as served by node `id`, sorted, as text.
std::string rows_text(ClusterProcesses& c, int id, const std::string& table) {
  auto r = c.query(id, "SELECT * FROM " + table + " ORDER BY 1");
  if (!r || r->status != ReplyStatus::ok) return "(unreadable)";
  std::string out;
  for (const Row& row : r->result.rows) {
    for (const Value& v : row) {
      if (const auto* i = std::get_if<std::int64_t>(&v)) out += std::to_string(*i);
      if (const auto* t = std::get_if<std::string>(&v)) out += *t;
      out += "|";
    }
    out += "\n";
  }
  return out;
}

// Waits until the three nodes serve the same rows of every table in
// `tables`; fails with what differs otherwise.
void expect_same_tables(ClusterProcesses& c, const std::vector<std::string>& tables) {
  std::string diff;
  const bool same = wait_until(
      [&] {
        diff.clear();
        for (const auto& table : tables) {
          const std::string reference = rows_text(c, 3, table);
          for (int id = 1; id <= 2; ++id) {
            const std::string mine = rows_text(c, id, table);
            if (mine != reference)
              diff += table + " on node " + std::to_string(id) + ":\n" + mine + "node 3:\n" + reference;
          }
        }
        return diff.empty();
      },
      20s);
  CHECK_MESSAGE(same, diff);
}

TEST_CASE(
    "SQLite: values each member would compute for itself (random(), a trigger, AUTOINCREMENT, a cascade) "
    "are stored identically under row replication, and refused under statements") {
  ClusterProcesses c(3, kBackend, "distdb_cluster");
  REQUIRE_MESSAGE(c.wait_for_coordinator(3, 20s), c.log(3));
  for (const std::string sql :
       {"CREATE TABLE parent (id INTEGER PRIMARY KEY, code INT UNIQUE, note TEXT)",
        "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INT REFERENCES parent(id) ON DELETE CASCADE)",
        "CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, what TEXT)",
        "CREATE TABLE teste (id INT PRIMARY KEY)", "CREATE TABLE keyless (a INT)"}) {
    must_ok(c.query(3, sql));
  }
  const std::string trigger =
      "CREATE TRIGGER parent_audit AFTER INSERT ON parent BEGIN "
      "INSERT INTO audit (what) VALUES ('parent ' || new.id || ' ' || random()); END";
  const std::string random_insert = "INSERT INTO parent VALUES (1, 1, hex(randomblob(8)))";
  if (!ships_rows()) {
    // Each member would compute its own random(): refused, as a trigger
    // body that would.
    for (const auto& sql : {trigger, random_insert}) {
      Reply r = must(c.query(1, sql));
      CHECK(r.status == ReplyStatus::error);
      CHECK(r.message.find("RANDOM") != std::string::npos);
    }
    return;
  }
  must_ok(c.query(1, trigger));
  must_ok(c.query(1, random_insert));
  must_ok(c.query(2, "INSERT INTO parent VALUES (2, 2, hex(randomblob(8))), (3, 3, 'three')"));
  must_ok(c.query(3, "INSERT INTO child VALUES (10, 1), (20, 2), (30, 1)"));
  must_ok(
      c.query(1, "DELETE FROM parent WHERE id = 1"));  // the cascade, shipped as the child rows it removed
  must_ok(c.query(2, "INSERT INTO parent VALUES (4, 1, 'takes code 1 over')"));
  must_ok(c.query(1, "INSERT INTO audit (what) VALUES ('moves the counter')"));
  must_ok(c.query(1, "DELETE FROM audit WHERE what = 'moves the counter'"));
  must_ok(c.query(2, "INSERT INTO teste VALUES (1), (2)"));
  const std::vector<std::string> tables = {"parent", "child", "audit", "teste", "sqlite_sequence"};
  expect_same_tables(c, tables);
  CHECK(rows_text(c, 1, "child") == "20|2|\n");

  // What a session cannot record is refused, says why, and the coordinator stays.
  Reply keyless = must(c.query(1, "INSERT INTO keyless VALUES (1)"));
  CHECK(keyless.status == ReplyStatus::error);
  CHECK(keyless.message.find("'keyless' has no PRIMARY KEY") != std::string::npos);
  Reply null_key = must(c.query(2, "INSERT INTO teste VALUES (NULL)"));
  CHECK(null_key.status == ReplyStatus::error);
  REQUIRE(null_key.error.has_value());
  CHECK(null_key.error->code == 1299);
  CHECK(rows_text(c, 3, "keyless").empty());

  // A member that was down catches up from the log: it applies the rows,
  // never the statements (its own random() would differ).
  c.kill(1);
  for (int i = 5; i < 15; ++i) {
    must_ok(c.query(3, "INSERT INTO parent VALUES (" + std::to_string(i) + ", " + std::to_string(i) +
                           ", hex(randomblob(4)))"));
  }
  c.start(1);
  expect_same_tables(c, tables);
  CHECK(rows_text(c, 1, "audit").find("parent 14 ") != std::string::npos);
  for (int id = 1; id <= 3; ++id) {
    CAPTURE(id);
    CHECK(c.log(id).find("DIVERGED") == std::string::npos);
    CHECK(c.log(id).find("Installed a full copy") == std::string::npos);
  }
  CHECK(c.log(3).find("stopped being the coordinator") == std::string::npos);
  // The checksum every member takes at one position agrees.
  Reply checked = must(c.check(1));
  CHECK_MESSAGE(checked.status == ReplyStatus::ok, checked.message);
  for (int id = 1; id <= 3; ++id) CHECK(c.log(id).find("DIVERGED") == std::string::npos);
}
#endif

TEST_CASE("kill -9 of the coordinator: writes resume on the new one; it returns, catches up, takes over") {
  ClusterProcesses c(3, kBackend, "distdb_cluster");
  REQUIRE_MESSAGE(c.wait_for_coordinator(3, 20s), c.log(3));
  must_ok(c.query(3, "CREATE TABLE teste (id INT PRIMARY KEY)"));
  for (int i = 1; i <= 10; ++i) must_ok(c.query(3, "INSERT INTO teste VALUES (" + std::to_string(i) + ")"));

  c.kill(3);
  const auto killed_at = std::chrono::steady_clock::now();
  REQUIRE_MESSAGE(c.wait_for_coordinator(2, 20s), c.log(2));
  bool resumed = wait_until(
      [&] {
        auto r = c.query(1, "INSERT INTO teste VALUES (11)");
        return r && r->status == ReplyStatus::ok;
      },
      20s);
  REQUIRE_MESSAGE(resumed, c.log(2));
  MESSAGE("first write on the new coordinator "
          << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed_at).count()
          << " ms after kill -9");
  for (int i = 12; i <= 20; ++i) must_ok(c.query(1, "INSERT INTO teste VALUES (" + std::to_string(i) + ")"));

  c.start(3);
  REQUIRE_MESSAGE(c.wait_for_coordinator(3, 30s), c.log(3));
  must_ok(c.query(2, "INSERT INTO teste VALUES (21)"));
  expect_identical(c, 21);
}

TEST_CASE("kill -9 of a participant in the middle of the write stream; it restarts and catches up") {
  ClusterProcesses c(3, kBackend, "distdb_cluster");
  REQUIRE_MESSAGE(c.wait_for_coordinator(3, 20s), c.log(3));
  must_ok(c.query(3, "CREATE TABLE teste (id INT PRIMARY KEY)"));

  // What the client was told about each write: OK (must be everywhere),
  // failed (must be nowhere), or unknown (either, but the same everywhere).
  std::atomic<int> acknowledged{0};
  std::atomic<bool> stop{false};
  std::vector<int> acked, failed, unknown;
  std::mutex outcome_mutex;
  std::thread writer([&] {
    auto client = Client::connect("127.0.0.1", static_cast<std::uint16_t>(c.port(3)),
                                  ClusterProcesses::client_options());
    if (!client) return;
    for (int i = 1; !stop && i <= 100000; ++i) {
      auto r = client->query("INSERT INTO teste VALUES (" + std::to_string(i) + ")");
      std::lock_guard lock(outcome_mutex);
      if (r && r->status == ReplyStatus::ok) {
        acked.push_back(i);
        ++acknowledged;
      } else if (r && r->error && r->error->kind != ErrorKind::outcome_unknown) {
        failed.push_back(i);
      } else {
        unknown.push_back(i);
      }
    }
  });
  REQUIRE(wait_until([&] { return acknowledged >= 30; }, 20s));
  c.kill(1);
  const int at_kill = acknowledged;
  CHECK(wait_until([&] { return acknowledged >= at_kill + 30; }, 20s));  // the majority goes on
  c.start(1);
  CHECK(wait_until([&] { return acknowledged >= at_kill + 60; }, 20s));
  stop = true;
  writer.join();

  // Every acknowledged write is on every node; no failed one is anywhere.
  const auto rows = ids_on(c, 3);
  expect_identical(c, rows.size());
  const std::set<std::int64_t> present(rows.begin(), rows.end());
  for (int id : acked) CHECK_MESSAGE(present.count(id) == 1, "acknowledged write " << id << " is missing");
  for (int id : failed) CHECK_MESSAGE(present.count(id) == 0, "failed write " << id << " is present");
  CHECK(rows.size() >= acked.size());
  CHECK(rows.size() <= acked.size() + unknown.size());
  MESSAGE(acked.size() << " acknowledged, " << failed.size() << " failed, " << unknown.size() << " unknown");
}

TEST_CASE("a node too far behind the retained log gets a full copy, larger than a client message") {
  // Keep 10 entries only, and allow clients 4 KiB messages: the copy is bigger.
  ClusterProcesses c(3, kBackend, "distdb_cluster",
                     R"("limits": {"log_retention_entries": 10, "max_message_bytes": 4096})");
  REQUIRE_MESSAGE(c.wait_for_coordinator(3, 20s), c.log(3));
  must_ok(c.query(3, "CREATE TABLE teste (id INT PRIMARY KEY)"));
  must_ok(c.query(3, "CREATE TABLE padding (id INT PRIMARY KEY, pad VARCHAR(200))"));
  must_ok(c.query(3, "INSERT INTO teste VALUES (0)"));
  REQUIRE(c.wait_for_value(1, "SELECT COUNT(*) FROM teste", 1, 20s));

  c.kill(1);
  const std::string pad(150, 'x');
  for (int i = 1; i <= 60; ++i) {
    must_ok(c.query(3, "INSERT INTO teste VALUES (" + std::to_string(i) + ")"));
    must_ok(c.query(3, "INSERT INTO padding VALUES (" + std::to_string(i) + ", '" + pad + "')"));
  }
  c.start(1);
  REQUIRE_MESSAGE(c.wait_for_value(1, "SELECT COUNT(*) FROM padding", 60, 30s), c.log(1));
  expect_identical(c, 61);
  CHECK(c.log(1).find("[*] Installed a full copy of the data") != std::string::npos);  // not a log replay
}

TEST_CASE("a full copy many times larger than a peer message arrives in chunks") {
  // Peer messages of 64 KiB at most: the copy (about 400 KiB) travels as
  // chunks of about 46 KiB, pulled by the member that needs it.
  ClusterProcesses c(3, kBackend, "distdb_cluster",
                     R"("limits": {"log_retention_entries": 5, "max_peer_message_bytes": 65536})");
  REQUIRE_MESSAGE(c.wait_for_coordinator(3, 20s), c.log(3));
  must_ok(c.query(3, "CREATE TABLE padding (id INT PRIMARY KEY, pad TEXT)"));
  REQUIRE(c.wait_for_value(1, "SELECT COUNT(*) FROM padding", 0, 20s));
  c.kill(1);
  for (int i = 1; i <= 80; ++i) {
    const std::string pad(5000, static_cast<char>('a' + i % 26));
    must_ok(c.query(3, "INSERT INTO padding VALUES (" + std::to_string(i) + ", '" + pad + "')"));
  }
  c.start(1);
  const bool arrived = c.wait_for_value(1, "SELECT COUNT(*) FROM padding", 80, 30s);
  if (!arrived) MESSAGE("node 3: " << c.log(3));
  REQUIRE_MESSAGE(arrived, c.log(1));
  CHECK(c.log(1).find("a full copy of the data arrived from node 3") != std::string::npos);
  CHECK(c.log(1).find("[*] Installed a full copy of the data") != std::string::npos);
  CHECK(c.log(3).find("sending node 1 a full copy") != std::string::npos);
  CHECK(c.log(1).find("dropped: over limits.max_peer_message_bytes") == std::string::npos);
  CHECK(c.log(3).find("dropped: over limits.max_peer_message_bytes") == std::string::npos);
  const auto sums = [&](int id) { return c.query(id, "SELECT SUM(LENGTH(pad)), SUM(id) FROM padding"); };
  CHECK(must_ok(sums(1)).result.rows == must_ok(sums(3)).result.rows);
}

#ifdef DISTDB_CLUSTER_MARIADB
TEST_CASE(
    "a write that changes more rows than one peer message carries: refused under row replication, the "
    "coordinator stays") {
  // Peer messages of 2 MiB: a write's rows may take about 768 KiB.
  ClusterProcesses c(3, kBackend, "distdb_cluster", R"("limits": {"max_peer_message_bytes": 2097152})");
  REQUIRE_MESSAGE(c.wait_for_coordinator(3, 20s), c.log(3));
  must_ok(c.query(3, "CREATE TABLE big (id INT PRIMARY KEY, pad MEDIUMTEXT)"));
  must_ok(c.query(1, "INSERT INTO big SELECT seq, REPEAT('s', 1000) FROM seq_1_to_100"));  // 100 KB: fine
  Reply large = must(c.query(2, "INSERT INTO big SELECT seq, REPEAT('x', 1000) FROM seq_1001_to_2500"));
  const bool rows = ships_rows();
  if (rows) {
    REQUIRE(large.status == ReplyStatus::error);
    REQUIRE(large.error.has_value());
    CHECK(large.error->message.find("split it into smaller writes") != std::string::npos);
    CHECK(large.error->code == 1153);
  } else {
    CHECK(large.status == ReplyStatus::ok);  // statements are small whatever they change
  }
  // The coordinator is still node 3, it takes the next write, and the three agree.
  must_ok(c.query(1, "INSERT INTO big VALUES (9999, 'after')"));
  const std::int64_t expected = rows ? 101 : 1601;
  for (int id = 1; id <= 3; ++id) {
    CAPTURE(id);
    REQUIRE(c.wait_for_value(id, "SELECT COUNT(*) FROM big", expected, 20s));
  }
  CHECK(c.log(3).find("stopped being the coordinator") == std::string::npos);

  // A member that missed twelve writes of 300 KB catches up from the log:
  // the entries come in several replies, each under a peer message.
  c.kill(1);
  for (int i = 0; i < 12; ++i) {
    must_ok(c.query(3, "INSERT INTO big VALUES (" + std::to_string(20000 + i) + ", REPEAT('y', 300000))"));
  }
  c.start(1);
  REQUIRE_MESSAGE(c.wait_for_value(1, "SELECT COUNT(*) FROM big", expected + 12, 30s), c.log(1));
  CHECK(c.log(1).find("Installed a full copy") == std::string::npos);  // from the log, not a copy
  CHECK(c.log(3).find("dropped: over limits.max_peer_message_bytes") == std::string::npos);
  const auto sums = [&](int id) { return c.query(id, "SELECT SUM(LENGTH(pad)), SUM(id) FROM big"); };
  CHECK(must_ok(sums(1)).result.rows == must_ok(sums(3)).result.rows);
  CHECK(must_ok(sums(2)).result.rows == must_ok(sums(3)).result.rows);
}
#endif

TEST_CASE(
    "a node that stopped while installing a full copy serves no reads after a restart, and takes a new "
    "copy") {
  ClusterProcesses c(3, kBackend, "distdb_cluster");
  REQUIRE_MESSAGE(c.wait_for_coordinator(3, 20s), c.log(3));
  must_ok(c.query(3, "CREATE TABLE teste (id INT PRIMARY KEY)"));
  must_ok(c.query(3, "INSERT INTO teste VALUES (1), (2), (3)"));
  REQUIRE(c.wait_for_value(1, "SELECT COUNT(*) FROM teste", 3, 20s));
  c.kill(1);
  // What an install cut short leaves on node 1's database: the mark it sets
  // first, and part of the data.
  StorageConfig sc;
#ifdef DISTDB_CLUSTER_MARIADB
  sc.backend = StorageBackend::mariadb;
  sc.db = mariadb_db_config(0, "distdb_cluster");
#else
  sc.backend = StorageBackend::sqlite;
  sc.sqlite_path = c.dir() + "/node1.db";
#endif
  {
    auto s = open_storage(sc);
    REQUIRE(s.ok());
    REQUIRE((*s)->execute("INSERT INTO distdb_meta (name, value) VALUES ('full_copy', 'installing')").ok());
    REQUIRE((*s)->execute("DELETE FROM teste WHERE id > 1").ok());
  }
  must_ok(c.query(3, "INSERT INTO teste VALUES (4)"));
  c.start(1);
  // Once it has read its state (the log says so), its reads are refused
  // until the copy is in, never answered from the partial data. (Before
  // that — the moment between the start and the storage's first answer —
  // reads are served: docs/design.md, "Known limits".)
  REQUIRE(wait_until(
      [&] {
        return c.log(1).find("a full copy was being installed when the node stopped") != std::string::npos;
      },
      20s));
  bool refused = false;
  bool served_partial = false;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = c.query(1, "SELECT COUNT(*) FROM teste");
    if (r.ok() && r->status == ReplyStatus::error && r->error &&
        r->error->message.find("waits for a full copy") != std::string::npos) {
      refused = true;
    } else if (r.ok() && r->status == ReplyStatus::ok) {
      const auto n = std::get<std::int64_t>(r->result.rows.at(0).at(0));
      if (n == 4) break;
      served_partial = true;
    }
    std::this_thread::sleep_for(20ms);
  }
  CHECK_FALSE(served_partial);
  CHECK(refused);
  REQUIRE_MESSAGE(c.wait_for_value(1, "SELECT COUNT(*) FROM teste", 4, 20s), c.log(1));
  CHECK(c.log(1).find("[*] Installed a full copy of the data") != std::string::npos);
  auto mark = c.query(1, "SELECT COUNT(*) FROM distdb_meta WHERE name = 'full_copy'");
  REQUIRE(mark.ok());
  CHECK(std::get<std::int64_t>(mark->result.rows.at(0).at(0)) == 0);
}

TEST_CASE(
    "TLS between members and clients (mutual): writes replicate to all three; kill -9 of the coordinator") {
  const TestCerts& certs = TestCerts::shared();
  // Members must show certificates of the CA: every peer link is mutual TLS,
  // and (no cluster secret) a peer message counts only on a connection
  // whose certificate is its sender's.
  ClusterProcesses c(3, kBackend, "distdb_cluster",
                     certs.security_json("{id}", "required", R"("client_auth": "users", )" + test_users_json()));
  ClientOptions options = ClusterProcesses::client_options();  // logs in, over TLS
  options.tls = certs.client_tls(/*with_certificate=*/true);
  c.use_client_options(options);
  REQUIRE_MESSAGE(c.wait_for_coordinator(3, 20s), c.log(3));
  for (int id = 1; id <= 3; ++id) {
    CHECK_MESSAGE(c.log(id).find("(TLS)") != std::string::npos,
                  c.log(id));  // "peer N: connected to ... (TLS)"
    CHECK(c.log(id).find("Peer messages are accepted only from connections with a verified certificate") !=
          std::string::npos);
  }

  Reply created = must_ok(c.query(1, "CREATE TABLE teste (id INT PRIMARY KEY)"));
  CHECK(created.node == 3);  // forwarded over a TLS peer link
  for (int i = 1; i <= 10; ++i)
    must_ok(c.query(1 + i % 3, "INSERT INTO teste VALUES (" + std::to_string(i) + ")"));
  expect_identical(c, 10);

  // A client certificate of the CA, or a member's certificate used in
  // another member's name, does not make a connection a member's.
  const auto [seq, epoch] = [&]() -> std::pair<std::uint64_t, std::uint64_t> {
    auto client = Client::connect("127.0.0.1", static_cast<std::uint16_t>(c.port(1)), options);
    REQUIRE(client.ok());
    auto status = client->status();
    REQUIRE(status.ok());
    for (const Row& row : status->result.rows) {
      if (std::get<std::int64_t>(row.at(0)) != 1) continue;
      return {static_cast<std::uint64_t>(std::get<std::int64_t>(row.at(6))),
              static_cast<std::uint64_t>(std::get<std::int64_t>(row.at(7)))};
    }
    return {0, 0};
  }();
  const std::string forged_heartbeat =
      wire::encode_peer(core::Envelope{3, 1, core::Heartbeat{epoch + 50, 3, true, {seq, epoch}, {1, 2, 3}}});
  TlsConnection as_client(c.port(1), certs.ca(), certs.client_cert(), certs.client_key());
  REQUIRE_MESSAGE(as_client.connected(), as_client.error());
  REQUIRE(as_client.write(forged_heartbeat + "\n"));
  TlsConnection as_node_2(c.port(1), certs.ca(), certs.cert(2), certs.key(2));
  REQUIRE_MESSAGE(as_node_2.connected(), as_node_2.error());
  REQUIRE(as_node_2.write(forged_heartbeat + "\n"));
  const auto logged = [&](const std::string& what) { return c.log(1).find(what) != std::string::npos; };
  REQUIRE_MESSAGE(
      wait_until(
          [&] {
            return logged("refused: the connection's certificate is 'distdb-client', not distdb-node-3") &&
                   logged("refused: the connection's certificate is 'distdb-node-2', not distdb-node-3");
          },
          10s),
      c.log(1));
  CHECK(c.coordinator_seen_by(1) == 3);  // the forged heartbeat of a higher epoch was not believed

  // kill -9 of the coordinator: node 2 takes over over TLS, then 3 returns and catches up.
  c.kill(3);
  REQUIRE_MESSAGE(c.wait_for_coordinator(2, 20s), c.log(2));
  REQUIRE(wait_until(
      [&] {
        auto r = c.query(1, "INSERT INTO teste VALUES (11)");
        return r && r->status == ReplyStatus::ok;
      },
      20s));
  for (int i = 12; i <= 15; ++i) must_ok(c.query(1, "INSERT INTO teste VALUES (" + std::to_string(i) + ")"));
  c.start(3);
  REQUIRE_MESSAGE(c.wait_for_coordinator(3, 30s), c.log(3));
  must_ok(c.query(2, "INSERT INTO teste VALUES (16)"));
  expect_identical(c, 16);
}

#ifdef DISTDB_CLUSTER_MARIADB
// client_auth "database": a node checks a client's user and password by
// logging in to its own MariaDB with them. The client library switches to
// PLAIN when the node asks for it, and sends the password only to a
// loopback address (or over TLS, or when the application allows it).
TEST_CASE(
    "database logins: a MariaDB user logs in and runs SQL; wrong passwords are refused; no password is "
    "logged") {
  const std::string app_password = "App-Pass-123";
  const std::string other_password = "Other-Pass-456";
  const std::string wrong_password = "Wr0ng-Pass-789";
  StorageConfig admin_config;
  admin_config.backend = StorageBackend::mariadb;
  admin_config.db = mariadb_db_config(0, "mysql");
  auto admin = open_storage(admin_config);
  REQUIRE_MESSAGE(admin.ok(), admin.error().message);
  // Every host form a loopback TCP connection may be matched as.
  for (const char* host : {"%", "localhost", "127.0.0.1"}) {
    const std::string at = std::string("@'") + host + "'";
    REQUIRE(
        (*admin)
            ->execute("CREATE OR REPLACE USER 'distdb_app'" + at + " IDENTIFIED BY '" + app_password + "'")
            .ok());
    REQUIRE((*admin)->execute("GRANT ALL ON `distdb_dbauth`.* TO 'distdb_app'" + at).ok());
    // A real account, without access to the node's database.
    REQUIRE((*admin)
                ->execute("CREATE OR REPLACE USER 'distdb_other'" + at + " IDENTIFIED BY '" + other_password +
                          "'")
                .ok());
  }

  ClusterProcesses c(1, ClusterProcesses::Backend::mariadb, "distdb_dbauth",
                     R"("security": {"client_auth": "database"})");
  ClientOptions app;
  app.user = "distdb_app";
  app.password = app_password;
  app.connect_timeout_ms = 2000;
  const auto login = [&](const std::string& user, const std::string& password) {
    ClientOptions o = app;
    o.user = user;
    o.password = password;
    return Client::connect("127.0.0.1", static_cast<std::uint16_t>(c.port(1)), o);
  };
  // Ready once the node has created its database.
  REQUIRE_MESSAGE(wait_until(
                      [&] {
                        auto client = login("distdb_app", app_password);
                        return client.ok() && client->query("SELECT 1").ok();
                      },
                      30s),
                  c.log(1));

  auto client = login("distdb_app", app_password);
  REQUIRE_MESSAGE(client.ok(), client.error().message);
  must_ok(client->query("CREATE TABLE teste (id INT PRIMARY KEY)"));
  must_ok(client->query("INSERT INTO teste VALUES (1)"));
  CHECK(must_ok(client->query("SELECT id FROM teste")).result.rows.size() == 1);

  for (const auto& [user, password] : std::vector<std::pair<std::string, std::string>>{
           {"distdb_app", wrong_password},     // wrong password
           {"distdb_other", other_password},   // right password, no access to the node's database
           {"distdb_nobody", wrong_password},  // no such account
           {"root", ""}}) {                    // an empty password is never accepted
    auto refused = login(user, password);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().kind == ErrorKind::unauthenticated);
    CHECK(refused.error().message == "authentication failed for user '" + user + "'");
  }

  // Before a login, the node names the mechanism it expects.
  auto anonymous = Client::connect("127.0.0.1", static_cast<std::uint16_t>(c.port(1)));
  REQUIRE(anonymous.ok());
  auto r = anonymous->query("SELECT 1");
  REQUIRE(r.ok());
  REQUIRE(r->error.has_value());
  CHECK(r->error->kind == ErrorKind::unauthenticated);
  CHECK(r->auth_mechanism == "PLAIN");

  const std::string log = c.log(1);
  CHECK_MESSAGE(log.find("authentication failed for user 'distdb_app'") != std::string::npos, log);
  CHECK(log.find("refused the login") != std::string::npos);
  for (const std::string& secret : {app_password, other_password, wrong_password}) {
    CHECK_MESSAGE(log.find(secret) == std::string::npos, "the node's log holds a password: " << secret);
  }
  for (const char* host : {"%", "localhost", "127.0.0.1"}) {
    (void)(*admin)->execute(std::string("DROP USER IF EXISTS 'distdb_app'@'") + host + "'");
    (void)(*admin)->execute(std::string("DROP USER IF EXISTS 'distdb_other'@'") + host + "'");
  }
}
#endif
