// Client authentication on a distdb-node process (SQLite storage), spoken
// to over TCP byte by byte and through distdb::Client: nothing runs before a
// login, failures say one thing whatever the cause, the third one closes the
// connection, unknown users look like known ones, and the seed's one-shot
// style works only with "client_auth": "off".
#include <doctest/doctest.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "auth/scram.hpp"
#include "distdb/client.hpp"
#include "node_fixture.hpp"
#include "raw_requests.hpp"
#include "util/text.hpp"
#include "wire/codec.hpp"

using namespace distdb;
using namespace distdb::test;
using namespace std::chrono_literals;

namespace {

// "r=...,s=<salt>,i=<n>" -> ",s=<salt>,i=<n>"
std::string salt_and_count(const std::string& server_first) {
  return server_first.substr(server_first.find(",s="));
}

}  // namespace

TEST_SUITE("auth") {
  TEST_CASE(
      "auth: before a login nothing runs, STATUS is refused, PING answers; the reply names the mechanism") {
    NodeProcess node("", 1, NodeAuth::users);
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
    RawConnection conn(node.port());
    REQUIRE(conn.connected());

    const Reply refused = call(conn, query_request(1, "CREATE TABLE secret (id INT)"));
    REQUIRE(is_unauthenticated(refused));
    CHECK(refused.id == 1u);
    CHECK(refused.auth_mechanism == "SCRAM-SHA-256");
    CHECK(refused.error->message.find("SCRAM-SHA-256") != std::string::npos);
    const Reply status = call(conn, R"({"type":"STATUS","id":2})");
    CHECK(is_unauthenticated(status));
    CHECK(status.result.rows.empty());
    const Reply pong = call(conn, R"({"type":"PING","id":3})");
    CHECK(pong.status == ReplyStatus::ok);
    CHECK(pong.message == "PONG");
    CHECK_FALSE(conn.closed_by_peer(200ms));  // refusals do not end the connection

    // The statement never ran: a logged-in client does not see the table.
    auto client =
        Client::connect("127.0.0.1", static_cast<std::uint16_t>(node.port()), test_client_options());
    REQUIRE_MESSAGE(client.ok(), client.error().message);
    auto tables = client->query("SELECT name FROM sqlite_master WHERE name = 'secret'");
    REQUIRE(tables.ok());
    REQUIRE(tables->status == ReplyStatus::ok);
    CHECK(tables->result.rows.empty());

    // A client without a user gets the node's answer, not a transport error.
    auto anonymous = Client::connect("127.0.0.1", static_cast<std::uint16_t>(node.port()));
    REQUIRE(anonymous.ok());
    auto r = anonymous->query("SELECT 1");
    REQUIRE(r.ok());
    CHECK(is_unauthenticated(*r));
  }

  TEST_CASE(
      "auth: the right password logs in, queries and pipelining work; the node proves it holds the "
      "verifier") {
    NodeProcess node("", 1, NodeAuth::users);
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
    RawConnection conn(node.port());
    std::string server_first;
    const Reply ok = scram_login(conn, kTestUser, kTestPassword, &server_first);
    REQUIRE_MESSAGE(ok.status == ReplyStatus::ok, ok.message);
    CHECK(ok.message.rfind("v=", 0) == 0);
    CHECK(server_first.find(",i=4096") != std::string::npos);
    CHECK(call(conn, query_request(3, "CREATE TABLE t (id INT)")).status == ReplyStatus::ok);
    CHECK(call(conn, R"({"type":"STATUS","id":4})").status == ReplyStatus::ok);
    // A second login on the same connection is refused; the first one stands.
    const Reply again = call(conn, auth_request(5, "SCRAM-SHA-256", "n,,n=tester,r=abc"));
    CHECK(again.error->kind == ErrorKind::invalid_request);
    CHECK(call(conn, query_request(6, "INSERT INTO t VALUES (1)")).status == ReplyStatus::ok);

    auto client =
        Client::connect("127.0.0.1", static_cast<std::uint16_t>(node.port()), test_client_options());
    REQUIRE_MESSAGE(client.ok(), client.error().message);
    for (int i = 0; i < 20; ++i) REQUIRE(client->send("SELECT " + std::to_string(i)).ok());
    for (int i = 0; i < 20; ++i) {
      auto r = client->receive();
      REQUIRE(r.ok());
      REQUIRE(r->status == ReplyStatus::ok);
      CHECK(std::get<std::int64_t>(r->result.rows.at(0).at(0)) == i);
    }
    CHECK(client->status()->status == ReplyStatus::ok);
  }

  TEST_CASE(
      "auth: a wrong password and an unknown user get the same answer; the third failure closes the "
      "connection") {
    NodeProcess node("", 1, NodeAuth::users);
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
    RawConnection conn(node.port());
    std::string known_first;
    std::string unknown_first;
    const Reply wrong = scram_login(conn, kTestUser, "not the password", &known_first);
    const Reply unknown = scram_login(conn, "nobody", "not the password", &unknown_first);
    REQUIRE(is_unauthenticated(wrong));
    REQUIRE(is_unauthenticated(unknown));
    CHECK(wrong.error->message == "authentication failed for user 'tester'");
    CHECK(unknown.error->message == "authentication failed for user 'nobody'");
    CHECK(wrong.auth_mechanism == unknown.auth_mechanism);
    // The unknown user got a salt and count like a real one's.
    const std::string unknown_params = salt_and_count(unknown_first);
    const std::string salt_text = unknown_params.substr(3, unknown_params.find(",i=") - 3);
    const auto salt = text::base64_decode(salt_text);
    REQUIRE(salt.has_value());
    CHECK(salt->size() == auth::kSaltBytes);
    CHECK(unknown_params.find(",i=4096") != std::string::npos);
    CHECK(unknown_params != salt_and_count(known_first));
    CHECK_FALSE(conn.closed_by_peer(200ms));
    // Third failure: answered, then the connection ends.
    const Reply third = scram_login(conn, kTestUser, "still wrong");
    REQUIRE(is_unauthenticated(third));
    CHECK(third.error->message.find("authentication failed for user 'tester'") == 0);
    CHECK(third.error->message.find("closing the connection") != std::string::npos);
    CHECK(conn.closed_by_peer());

    // The unknown user's salt is the same on every attempt (and after a
    // restart): asking again tells nothing.
    RawConnection again(node.port());
    std::string again_first;
    CHECK(is_unauthenticated(scram_login(again, "nobody", "x", &again_first)));
    CHECK(salt_and_count(again_first) == unknown_params);
    node.process().signal(SIGKILL);
    REQUIRE(node.process().wait_exit(10s).has_value());
    Process restarted({std::getenv("DISTDB_NODE_BIN"), node.config_path()}, node.dir() + "/node2.log");
    REQUIRE(wait_until([&] { return port_accepts(node.port()); }, 15s));
    RawConnection after(node.port());
    std::string after_first;
    CHECK(is_unauthenticated(scram_login(after, "nobody", "x", &after_first)));
    CHECK(salt_and_count(after_first) == unknown_params);

    // The log says who failed and why, never what was sent.
    const std::string log = node.process().output();
    CHECK_MESSAGE(log.find("authentication failed for user 'tester': wrong password") != std::string::npos,
                  log);
    CHECK(log.find("authentication failed for user 'nobody': unknown user") != std::string::npos);
    CHECK(log.find("closing the connection") != std::string::npos);
    CHECK(log.find("not the password") == std::string::npos);
    CHECK(log.find("still wrong") == std::string::npos);
  }

  TEST_CASE("auth: malformed, out-of-order and wrong-mechanism logins") {
    NodeProcess node("", 1, NodeAuth::users);
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
    SUBCASE("another mechanism is answered with the expected one, and does not count as a failure") {
      RawConnection conn(node.port());
      for (int i = 0; i < 4; ++i) {
        const Reply plain = call(conn, auth_request(1, "PLAIN", "", kTestUser, kTestPassword));
        REQUIRE(is_unauthenticated(plain));
        CHECK(plain.auth_mechanism == "SCRAM-SHA-256");
        CHECK(plain.error->message.find("'PLAIN' is not accepted") != std::string::npos);
      }
      CHECK(scram_login(conn, kTestUser, kTestPassword).status == ReplyStatus::ok);
    }
    SUBCASE("a request in the middle of an exchange is refused, and the exchange abandoned") {
      RawConnection conn(node.port());
      auth::ScramClient scram(kTestUser, kTestPassword);
      const Reply first = call(conn, auth_request(1, "SCRAM-SHA-256", *scram.first_message()));
      REQUIRE(first.status == ReplyStatus::ok);
      const Reply between = call(conn, query_request(2, "SELECT 1"));
      REQUIRE(is_unauthenticated(between));
      CHECK(between.error->message.find("a login was in progress") != std::string::npos);
      const Reply late = call(conn, auth_request(3, "SCRAM-SHA-256", *scram.final_message(first.message)));
      CHECK(is_unauthenticated(late));
      CHECK(is_unauthenticated(call(conn, query_request(4, "SELECT 1"))));
    }
    SUBCASE("malformed SCRAM messages are failures, oversized fields invalid requests, nothing echoed") {
      RawConnection conn(node.port());
      const Reply bad = call(conn, auth_request(1, "SCRAM-SHA-256", "y,,n=tester,r=abc"));
      CHECK(is_unauthenticated(bad));
      CHECK(bad.error->message == "authentication failed");
      const Reply big = call(conn, auth_request(2, "PLAIN", "", "u", "secret-" + std::string(2000, 'x')));
      CHECK(big.error->kind == ErrorKind::invalid_request);
      CHECK(big.error->message.find("secret-") == std::string::npos);
      CHECK(scram_login(conn, kTestUser, kTestPassword).status == ReplyStatus::ok);
    }
  }

  TEST_CASE("auth: the seed's one-shot style is refused unless client_auth is off") {
    const std::string seed = R"({"type": "CLIENT_QUERY", "payload": {"query": "SELECT 1 AS one"}})";
    NodeProcess secured("", 1, NodeAuth::users);
    NodeProcess open("", 2, NodeAuth::off);
    REQUIRE_MESSAGE(secured.wait_ready(), secured.process().output());
    REQUIRE_MESSAGE(open.wait_ready(), open.process().output());
    {
      RawConnection conn(secured.port());
      REQUIRE(conn.write(seed));
      const std::string answer = conn.read_until_close();  // answered, then closed
      const Reply r = decode(answer.substr(0, answer.find('\n')));
      CHECK(is_unauthenticated(r));
      CHECK(answer.find("\"rows\"") == std::string::npos);
    }
    {
      RawConnection conn(open.port());
      REQUIRE(conn.write(seed));
      const std::string answer = conn.read_until_close();
      CHECK(answer.find(R"("result":[{"one":1}])") != std::string::npos);
    }
    // "off" says so at startup; a client with credentials still works there.
    CHECK(wait_until(
        [&] {
          return open.process().output().find("Clients are not authenticated: anyone who can reach port " +
                                              std::to_string(open.port()) + " can run SQL") !=
                 std::string::npos;
        },
        10s));
    CHECK(secured.process().output().find("Clients are not authenticated") == std::string::npos);
    auto client =
        Client::connect("127.0.0.1", static_cast<std::uint16_t>(open.port()), test_client_options());
    REQUIRE_MESSAGE(client.ok(), client.error().message);
    CHECK(client->query("SELECT 1")->status == ReplyStatus::ok);
    RawConnection conn(open.port());
    const Reply off = call(conn, auth_request(1, "SCRAM-SHA-256", "n,,n=x,r=abc"));
    CHECK(off.status == ReplyStatus::ok);
    CHECK(off.auth_mechanism == "off");
  }

  TEST_CASE(
      "auth: distdb::Client with a wrong password fails with the node's message, and a refused login is "
      "final") {
    NodeProcess node("", 1, NodeAuth::users);
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
    ClientOptions wrong = test_client_options();
    wrong.password = "wrong";
    auto single = Client::connect("127.0.0.1", static_cast<std::uint16_t>(node.port()), wrong);
    REQUIRE_FALSE(single.ok());
    CHECK(single.error().kind == ErrorKind::unauthenticated);
    CHECK(single.error().message == "authentication failed for user 'tester'");
    wrong.retry_for_ms = 5000;
    const auto t0 = std::chrono::steady_clock::now();
    auto cluster = Client::connect_cluster({{"127.0.0.1", static_cast<std::uint16_t>(node.port())}}, wrong);
    REQUIRE_FALSE(cluster.ok());
    CHECK(cluster.error().kind == ErrorKind::unauthenticated);
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);  // not retried for retry_for_ms
  }

  TEST_CASE("auth: distdb-node --hash-password prints a verifier that logs in, never the password") {
    const std::string dir = make_temp_dir("distdb-hash");
    const char* bin = std::getenv("DISTDB_NODE_BIN");
    REQUIRE(bin != nullptr);
    Process hash(
        {"/bin/sh", "-c", "printf '%s\\n' 'hash-me-please' | \"$0\" --hash-password --iterations 4096", bin},
        dir + "/hash.log");
    REQUIRE(hash.wait_exit(20s) == std::optional<int>(0));
    const std::string out = hash.output();
    CHECK(out.find("hash-me-please") == std::string::npos);
    const std::string verifier = out.substr(0, out.find('\n'));
    REQUIRE_MESSAGE(auth::parse_verifier(verifier).ok(), out);
    CHECK(verifier.rfind("SCRAM-SHA-256$4096:", 0) == 0);
    // Another run: another salt.
    Process again({"/bin/sh", "-c", "printf '%s\\n' 'hash-me-please' | \"$0\" --hash-password", bin},
                  dir + "/again.log");
    REQUIRE(again.wait_exit(20s) == std::optional<int>(0));
    const std::string other = again.output().substr(0, again.output().find('\n'));
    CHECK(other.rfind("SCRAM-SHA-256$" + std::to_string(auth::kDefaultIterations) + ":", 0) == 0);
    CHECK(other != verifier);

    NodeProcess node(R"("security": {"users": [{"name": "ops", "password": ")" + verifier + R"("}]})");
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
    ClientOptions o;
    o.user = "ops";
    o.password = "hash-me-please";
    auto client = Client::connect("127.0.0.1", static_cast<std::uint16_t>(node.port()), o);
    REQUIRE_MESSAGE(client.ok(), client.error().message);
    CHECK(client->query("SELECT 1")->status == ReplyStatus::ok);
  }
}
