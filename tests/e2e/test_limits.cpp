// The limits that keep one client, or one address, from degrading a node
// for the others (docs/security.md), on a distdb-node process over TCP:
// connections not logged in (a deadline, counts per address and in all, a
// smaller frame), connections per address, and a client that reads none of
// its replies. Other addresses are other 127.x.y.z: Linux lets a socket
// bind any of them before it connects to 127.0.0.1.
#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "distdb/client.hpp"
#include "node_fixture.hpp"
#include "raw_requests.hpp"
#include "test_certs.hpp"

using namespace distdb;
using namespace distdb::test;
using namespace std::chrono_literals;

namespace {

const std::string kFlooder = "127.0.0.2";
const std::string kPing = std::string(R"({"type":"PING","id":1})") + "\n";

// Whether the node serves `conn` (PING needs no login): a refused
// connection gets its error line instead.
bool served(RawConnection& conn) {
  if (!conn.connected() || !conn.write(kPing)) return false;
  const auto lines = conn.read_lines(1);
  return lines.size() == 1 && decode(lines[0]).message == "PONG";
}

// What a refused connection gets: one error line, then the close.
Error refusal(RawConnection& conn) {
  const std::string answer = conn.read_until_close();
  REQUIRE_MESSAGE(!answer.empty(), "closed without an answer");
  CHECK_MESSAGE(answer.find('\n') == answer.size() - 1, "more than one line: " << answer);
  const Reply r = decode(answer.substr(0, answer.find('\n')));
  REQUIRE(r.error.has_value());
  return *r.error;
}

// A new connection from kFlooder that the node serves, once it has noticed
// that one of that address's connections closed (null if it does not
// within 10 s). Until then each attempt is refused.
std::unique_ptr<RawConnection> served_once_a_place_frees(NodeProcess& node) {
  std::unique_ptr<RawConnection> conn;
  const bool ok = wait_until(
      [&] {
        conn = std::make_unique<RawConnection>(node.port(), kFlooder);
        return served(*conn);
      },
      10s);
  return ok ? std::move(conn) : nullptr;
}

// Options of a client that logs in as kTestUser over TLS, verifying the
// node against `certs`' CA.
ClientOptions tls_options(const TestCerts& certs) {
  ClientOptions options = test_client_options();
  options.tls = certs.client_tls();
  return options;
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The node's resident memory (VmRSS of /proc/<pid>/status), in KiB.
long resident_kib(Process& process) {
  std::ifstream status("/proc/" + std::to_string(process.pid()) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  FAIL("no VmRSS for the node");
  return 0;
}

// A logged-in client of `node` runs SQL.
void serves_sql(NodeProcess& node) {
  auto client = Client::connect("127.0.0.1", static_cast<std::uint16_t>(node.port()), test_client_options());
  REQUIRE_MESSAGE(client.ok(), client.error().message);
  auto r = client->query("SELECT 6 * 7 AS answer");
  REQUIRE(r.ok());
  REQUIRE_MESSAGE(r->status == ReplyStatus::ok, r->message);
  CHECK(std::get<std::int64_t>(r->result.rows.at(0).at(0)) == 42);
}

}  // namespace

TEST_SUITE("limits") {
  TEST_CASE(
      "limits: a flood of connections not logged in from one address is refused there, logged once; "
      "other addresses log in and run SQL") {
    NodeProcess node(R"("limits": {"max_unauthenticated_per_source": 4})", 1, NodeAuth::users);
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
    std::vector<std::unique_ptr<RawConnection>> held;
    for (int i = 0; i < 4; ++i) {
      held.push_back(std::make_unique<RawConnection>(node.port(), kFlooder));
      REQUIRE(served(*held.back()));
    }
    for (int i = 0; i < 20; ++i) {
      RawConnection over(node.port(), kFlooder);
      REQUIRE(over.connected());
      const Error e = refusal(over);
      CHECK(e.kind == ErrorKind::unavailable);
      CHECK(e.message ==
            "too many connections not logged in yet from this address (limits.max_unauthenticated_per_source "
            "= 4)");
    }
    serves_sql(node);
    // Twenty refusals, one line (the next comes ten seconds later at the
    // earliest, with the count of those held back).
    const std::string line =
        "refusing a connection from 127.0.0.2: limits.max_unauthenticated_per_source (4) reached";
    REQUIRE(wait_until([&] { return node.process().output().find(line) != std::string::npos; }, 5s));
    CHECK(occurrences(node.process().output(), line) == 1);

    // A login frees a place, and so does a close: each exactly once.
    REQUIRE(scram_login(*held[0], kTestUser, kTestPassword).status == ReplyStatus::ok);
    RawConnection fifth(node.port(), kFlooder);
    REQUIRE(served(fifth));
    RawConnection sixth(node.port(), kFlooder);
    CHECK(refusal(sixth).kind == ErrorKind::unavailable);
    held[1].reset();
    const auto replacement = served_once_a_place_frees(node);
    CHECK(replacement != nullptr);
    // The logged-in one still works.
    CHECK(call(*held[0], query_request(3, "SELECT 1")).status == ReplyStatus::ok);
  }

  TEST_CASE("limits: connections not logged in count in all too, whatever their address") {
    NodeProcess node(
        R"("limits": {"max_unauthenticated_connections": 3, "max_unauthenticated_per_source": 0})", 1,
        NodeAuth::users);
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
    RawConnection a(node.port(), "127.0.0.2");
    RawConnection b(node.port(), "127.0.0.3");
    RawConnection c(node.port(), "127.0.0.4");
    REQUIRE(served(a));
    REQUIRE(served(b));
    REQUIRE(served(c));
    RawConnection d(node.port(), "127.0.0.5");
    CHECK(refusal(d).message ==
          "too many connections not logged in yet (limits.max_unauthenticated_connections = 3)");
    // Logged-in clients are not held to it.
    REQUIRE(scram_login(a, kTestUser, kTestPassword).status == ReplyStatus::ok);
    serves_sql(node);
  }

  TEST_CASE("limits: a connection that does not log in within the deadline is told so and closed") {
    NodeProcess node(R"("timeouts": {"login_timeout_ms": 300})", 1, NodeAuth::users);
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
    auto client =
        Client::connect("127.0.0.1", static_cast<std::uint16_t>(node.port()), test_client_options());
    REQUIRE_MESSAGE(client.ok(), client.error().message);
    RawConnection logged_in(node.port());
    REQUIRE(scram_login(logged_in, kTestUser, kTestPassword).status == ReplyStatus::ok);
    const auto accepted = std::chrono::steady_clock::now();
    RawConnection silent(node.port());
    REQUIRE(silent.connected());
    const Error e = refusal(silent);
    CHECK(std::chrono::steady_clock::now() - accepted >= 300ms);
    CHECK(e.kind == ErrorKind::unauthenticated);
    CHECK(e.message == "not logged in within 300 ms (timeouts.login_timeout_ms)");

    // Being busy is not being logged in: PINGs do not move the deadline.
    RawConnection chatty(node.port());
    bool told = false;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!told && std::chrono::steady_clock::now() < deadline) {
      REQUIRE(chatty.write(kPing));
      auto lines = chatty.read_lines(1, 1s);
      REQUIRE(lines.size() == 1);
      told = is_unauthenticated(decode(lines[0]));
      // A PING every 100 ms, unless the error comes first.
      if (!told) lines = chatty.read_lines(1, 100ms);
      told = told || (lines.size() == 1 && is_unauthenticated(decode(lines[0])));
    }
    CHECK(told);
    CHECK(chatty.closed_by_peer());

    // Those that logged in in time stay, past the deadline, and keep working.
    CHECK(call(logged_in, query_request(3, "SELECT 1")).status == ReplyStatus::ok);
    auto r = client->query("SELECT 2");
    REQUIRE(r.ok());
    CHECK(r->status == ReplyStatus::ok);
  }

  TEST_CASE("limits: the login deadline covers a TLS handshake never begun") {
    const TestCerts& certs = TestCerts::shared();
    // The read timeout (10 s) would close it too, much later.
    NodeProcess node(certs.security_json("1", "none", R"("client_auth": "users", )" + test_users_json()) +
                     R"(, "timeouts": {"login_timeout_ms": 300})");
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
    RawConnection silent(node.port());
    REQUIRE(silent.connected());
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(silent.closed_by_peer(5s));
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);
    auto client = Client::connect("127.0.0.1", static_cast<std::uint16_t>(node.port()), tls_options(certs));
    REQUIRE_MESSAGE(client.ok(), client.error().message);
    CHECK(client->query("SELECT 1")->status == ReplyStatus::ok);
  }

  TEST_CASE(
      "limits: on a TLS port a connection over a limit is told why after its handshake; one more than twice "
      "over gets no handshake") {
    const TestCerts& certs = TestCerts::shared();
    NodeProcess node(certs.security_json("1", "none", R"("client_auth": "users", )" + test_users_json()) +
                     R"(, "limits": {"max_unauthenticated_per_source": 1})");
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
    // Each waits in its handshake, not logged in: the first has the one
    // place, the second is over (it would be told why once its handshake is
    // done), the third is more than twice over: closed at once, long before
    // the login and read timeouts (10 s).
    RawConnection first(node.port());
    auto second = std::make_unique<RawConnection>(node.port());
    REQUIRE(first.connected());
    REQUIRE(second->connected());
    RawConnection third(node.port());
    REQUIRE(third.connected());
    CHECK(third.closed_by_peer(3s));
    CHECK_FALSE(second->closed_by_peer(200ms));
    CHECK_FALSE(first.closed_by_peer(0ms));
    // A TLS client just over the limit reads why (once the node has seen the
    // second go: until then it is a third, and closed at once).
    second.reset();
    const std::string expected =
        "too many connections not logged in yet from this address (limits.max_unauthenticated_per_source = "
        "1)";
    std::string got;
    CHECK_MESSAGE(
        wait_until(
            [&] {
              auto refused =
                  Client::connect("127.0.0.1", static_cast<std::uint16_t>(node.port()), tls_options(certs));
              got = refused.ok() ? "served" : refused.error().message;
              return !refused.ok() && refused.error().kind == ErrorKind::unavailable && got == expected;
            },
            10s),
        got);
  }

  TEST_CASE("limits: connections per address, with client_auth off (where nobody logs in)") {
    // With "off" every connection counts as logged in: the limits of those
    // not logged in, and the deadline, do not apply.
    NodeProcess node(R"("limits": {"max_connections_per_source": 3, "max_unauthenticated_per_source": 1,
                                   "max_unauthenticated_connections": 1},
                        "timeouts": {"login_timeout_ms": 100})");
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
    std::vector<std::unique_ptr<RawConnection>> held;
    for (int i = 0; i < 3; ++i) {
      held.push_back(std::make_unique<RawConnection>(node.port(), kFlooder));
      REQUIRE(served(*held.back()));
    }
    RawConnection over(node.port(), kFlooder);
    CHECK(refusal(over).message ==
          "too many connections from this address (limits.max_connections_per_source = 3)");
    // Another address is served, SQL included.
    RawConnection local(node.port());
    REQUIRE(served(local));
    const Reply r = call(local, query_request(2, "SELECT 5 AS five"));
    REQUIRE(r.status == ReplyStatus::ok);
    CHECK(std::get<std::int64_t>(r.result.rows.at(0).at(0)) == 5);
    // Past the login deadline, the three are still served.
    CHECK_FALSE(held[0]->closed_by_peer(300ms));
    for (auto& conn : held) CHECK(served(*conn));
    // One closes: its place is free again.
    held.pop_back();
    CHECK(served_once_a_place_frees(node) != nullptr);
  }

  TEST_CASE("limits: before a login frames are smaller; after it, up to max_message_bytes") {
    NodeProcess node(R"("limits": {"max_unauthenticated_message_bytes": 2048, "max_message_bytes": 16384})",
                     1, NodeAuth::users);
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
    const std::string big = query_request(7, "SELECT '" + std::string(4096, 'x') + "' AS x");

    RawConnection before(node.port());
    REQUIRE(before.write(big + "\n"));
    const Error e = refusal(before);
    CHECK(e.kind == ErrorKind::message_too_large);
    CHECK(e.message ==
          "message exceeds the limit of 2048 bytes before login (limits.max_unauthenticated_message_bytes); "
          "log in "
          "first");

    RawConnection after(node.port());
    REQUIRE(scram_login(after, kTestUser, kTestPassword).status == ReplyStatus::ok);
    const Reply r = call(after, big);
    REQUIRE_MESSAGE(r.status == ReplyStatus::ok, r.message);
    CHECK(std::get<std::string>(r.result.rows.at(0).at(0)).size() == 4096);

    // Sent right behind the login's last message, in the same write: the
    // login is answered first, so the request meets the larger limit.
    RawConnection pipelined(node.port());
    auth::ScramClient scram(kTestUser, kTestPassword);
    const Reply first = call(pipelined, auth_request(1, "SCRAM-SHA-256", *scram.first_message()));
    REQUIRE(first.status == ReplyStatus::ok);
    REQUIRE(pipelined.write(auth_request(2, "SCRAM-SHA-256", *scram.final_message(first.message)) + "\n" +
                            big + "\n"));
    const auto lines = pipelined.read_lines(2);
    REQUIRE(lines.size() == 2);
    CHECK(decode(lines[0]).status == ReplyStatus::ok);
    CHECK(decode(lines[1]).status == ReplyStatus::ok);

    // max_message_bytes still holds after the login.
    REQUIRE(after.write(query_request(8, "SELECT '" + std::string(20000, 'x') + "'") + "\n"));
    const Error too_large = refusal(after);
    CHECK(too_large.kind == ErrorKind::message_too_large);
    CHECK(too_large.message == "message exceeds the limit of 16384 bytes");
  }

  TEST_CASE(
      "limits: a client that reads none of its replies holds a bounded amount of the node's memory, and gets "
      "them all once it reads") {
    NodeProcess node(R"("limits": {"max_output_bytes_per_connection": 65536})");
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
    RawConnection other(node.port());
    REQUIRE(call(other, query_request(1, "SELECT hex(zeroblob(50000)) AS x")).status == ReplyStatus::ok);
    const long before = resident_kib(node.process());

    // 1000 requests of 50 bytes, for 100 kB each: 100 MB of replies. The
    // kernel's socket buffers take some 10 MB of it; without a bound the
    // node would hold the rest.
    constexpr int kRequests = 1000;
    std::string batch;
    for (int i = 0; i < kRequests; ++i) batch += query_request(i, "SELECT hex(zeroblob(50000)) AS x") + "\n";
    RawConnection reader(node.port());
    REQUIRE(reader.write(batch));
    // (The failure this guards against shows within a second or two.)
    constexpr long kBoundKib = 48 * 1024;
    CHECK_FALSE(wait_until([&] { return resident_kib(node.process()) - before > kBoundKib; }, 3s));
    // Meanwhile the node serves others.
    const Reply r = call(other, query_request(2, "SELECT 1 AS one"));
    CHECK(r.status == ReplyStatus::ok);

    // The client reads: every reply comes, in order.
    const auto lines = reader.read_lines(kRequests, 60s);
    REQUIRE(lines.size() == kRequests);
    for (int i = 0; i < kRequests; i += 97) {
      const Reply reply = decode(lines[static_cast<std::size_t>(i)]);
      CHECK(reply.id == static_cast<std::uint64_t>(i));
      CHECK(std::get<std::string>(reply.result.rows.at(0).at(0)).size() == 100000);
    }
    CHECK(decode(lines.back()).id == static_cast<std::uint64_t>(kRequests - 1));
    CHECK(resident_kib(node.process()) - before < kBoundKib);
  }
}
