// TLS on a real distdb-node process (security.tls), spoken to by distdb-cli
// and distdb::Client over loopback: what is verified, what is refused and
// how it reads, that TLS and plaintext never hang on each other, and that
// what crosses the network is not the SQL in clear. Certificates come from
// scripts/make-test-certs.sh (tests/support/test_certs.hpp).
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "distdb/client.hpp"
#include "node_fixture.hpp"
#include "process.hpp"
#include "test_certs.hpp"

using namespace distdb;
using namespace distdb::test;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

struct CliResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
  std::chrono::milliseconds took{0};
};

// distdb-cli ($DISTDB_CLI_BIN) with `args`, standard input from /dev/null.
CliResult cli(const std::vector<std::string>& args) {
  const char* bin = std::getenv("DISTDB_CLI_BIN");
  if (bin == nullptr) throw std::runtime_error("DISTDB_CLI_BIN is not set (run through meson test)");
  const std::string dir = make_temp_dir("distdb-tls-cli");
  std::vector<std::string> argv{bin};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto start = Clock::now();
  CliResult r;
  {
    Process p(argv, dir + "/cli.log");
    const auto code = p.wait_exit(30s);
    r.exit_code = code ? *code : -1;
    r.output = p.output();
  }
  r.took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return r;
}

std::vector<std::string> cli_args(int port, std::vector<std::string> more,
                                  const std::string& host = "127.0.0.1") {
  std::vector<std::string> args{"-h", host, "-P", std::to_string(port), "--format", "tsv"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

ClientOptions tls_options(ClientTls tls) {
  ClientOptions o;
  o.connect_timeout_ms = 5000;
  o.request_timeout_ms = 10000;
  o.tls = std::move(tls);
  return o;
}

std::uint16_t port16(int port) {
  return static_cast<std::uint16_t>(port);
}

// A TCP proxy on loopback that forwards to `target_port` and keeps every
// byte it carries, both ways: what an eavesdropper on the path would see.
class RecordingProxy {
 public:
  explicit RecordingProxy(int target_port) : target_(target_port) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(listen_fd_, 8) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 || pipe(wake_) != 0) {
      throw std::runtime_error("proxy: cannot listen");
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~RecordingProxy() {
    const char byte = 0;
    (void)!::write(wake_[1], &byte, 1);
    thread_.join();
    ::close(listen_fd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
  }
  RecordingProxy(const RecordingProxy&) = delete;
  RecordingProxy& operator=(const RecordingProxy&) = delete;

  int port() const { return port_; }
  std::string captured() {
    std::lock_guard lock(mutex_);
    return captured_;
  }

 private:
  static bool send_all(int fd, const char* data, std::size_t n) {
    while (n > 0) {
      const ssize_t sent = ::send(fd, data, n, MSG_NOSIGNAL);
      if (sent <= 0) return false;
      data += sent;
      n -= static_cast<std::size_t>(sent);
    }
    return true;
  }

  void run() {
    std::vector<std::pair<int, int>> pairs;  // client side, node side
    for (;;) {
      std::vector<pollfd> fds{{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
      for (const auto& [a, b] : pairs) {
        fds.push_back({a, POLLIN, 0});
        fds.push_back({b, POLLIN, 0});
      }
      if (poll(fds.data(), fds.size(), -1) < 0) continue;
      if (fds[0].revents != 0) break;
      if (fds[1].revents != 0) {
        const int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        const int node = client >= 0 ? connect_loopback(target_) : -1;
        if (node >= 0) {
          pairs.emplace_back(client, node);
        } else if (client >= 0) {
          ::close(client);
        }
        continue;  // the pollfds no longer match the pairs
      }
      std::vector<std::size_t> done;
      for (std::size_t i = 0; i < pairs.size(); ++i) {
        for (int side = 0; side < 2; ++side) {
          const pollfd& p = fds[2 + 2 * i + static_cast<std::size_t>(side)];
          if (p.revents == 0) continue;
          const int from = side == 0 ? pairs[i].first : pairs[i].second;
          const int to = side == 0 ? pairs[i].second : pairs[i].first;
          char buf[16384];
          const ssize_t n = ::recv(from, buf, sizeof buf, 0);
          if (n > 0) {
            {
              std::lock_guard lock(mutex_);
              captured_.append(buf, static_cast<std::size_t>(n));
            }
            if (send_all(to, buf, static_cast<std::size_t>(n))) continue;
          }
          done.push_back(i);
          break;
        }
      }
      for (auto it = done.rbegin(); it != done.rend(); ++it) {
        ::close(pairs[*it].first);
        ::close(pairs[*it].second);
        pairs.erase(pairs.begin() + static_cast<std::ptrdiff_t>(*it));
      }
    }
    for (const auto& [a, b] : pairs) {
      ::close(a);
      ::close(b);
    }
  }

  int target_;
  int listen_fd_ = -1;
  int port_ = 0;
  int wake_[2] = {-1, -1};
  std::mutex mutex_;
  std::string captured_;
  std::thread thread_;
};

}  // namespace

TEST_SUITE("tls") {
  TEST_CASE(
      "distdb-cli over TLS: --tls-ca runs statements; the system store, another CA: verification fails") {
    const TestCerts& certs = TestCerts::shared();
    const TestCerts other({1});  // another CA, and a node 1 certificate of its own
    NodeProcess node(certs.security_json("1"));
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());

    CliResult r = cli(cli_args(node.port(), {"--tls-ca", certs.ca(), "-e",
                                             "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (7); "
                                             "SELECT id FROM t"}));
    CHECK_MESSAGE(r.exit_code == 0, r.output);
    CHECK(contains(r.output, "id\n7\n"));
    // By name: the certificate carries DNS:localhost too.
    r = cli(cli_args(node.port(), {"--tls-ca", certs.ca(), "-e", "SELECT id FROM t"}, "localhost"));
    CHECK_MESSAGE(r.exit_code == 0, r.output);
    CHECK(contains(r.output, "id\n7\n"));

    const std::string where = "127.0.0.1:" + std::to_string(node.port());
    // --tls alone: the system's trust store, which does not know the test CA.
    r = cli(cli_args(node.port(), {"--tls", "-e", "SELECT id FROM t"}));
    CHECK(r.exit_code == 2);
    CHECK_MESSAGE(contains(r.output, "TLS handshake with " + where + " failed: certificate verify failed ("),
                  r.output);
    CHECK_FALSE(contains(r.output, "id\n7"));
    // Another CA.
    r = cli(cli_args(node.port(), {"--tls-ca", other.ca(), "-e", "SELECT id FROM t"}));
    CHECK(r.exit_code == 2);
    CHECK_MESSAGE(contains(r.output, "TLS handshake with " + where + " failed: certificate verify failed ("),
                  r.output);
    // Explicitly unverified: works, with a warning.
    r = cli(cli_args(node.port(), {"--tls-no-verify", "-e", "SELECT id FROM t"}));
    CHECK_MESSAGE(r.exit_code == 0, r.output);
    CHECK(contains(r.output, "id\n7\n"));
    CHECK(contains(r.output, "warning: --tls-no-verify: the node's certificate is not checked"));
    // A CA file that is not one: a clear usage or option error.
    r = cli(cli_args(node.port(), {"--tls-ca", certs.key(1), "-e", "SELECT 1"}));
    CHECK(r.exit_code == 2);
    CHECK_MESSAGE(contains(r.output, "--tls-ca: " + certs.key(1) + ": no PEM certificate in it"), r.output);
    CHECK_FALSE(contains(r.output, "PRIVATE KEY"));
    r = cli(cli_args(node.port(), {"--tls-cert", certs.client_cert(), "-e", "SELECT 1"}));
    CHECK(r.exit_code == 2);
    CHECK(contains(r.output, "--tls-key"));
  }

  TEST_CASE("TLS and plaintext never mix: a clear error each way, well within the deadlines") {
    const TestCerts& certs = TestCerts::shared();
    NodeProcess tls_node(certs.security_json("1"));
    NodeProcess plain_node;
    REQUIRE_MESSAGE(tls_node.wait_ready(), tls_node.process().output());
    REQUIRE_MESSAGE(plain_node.wait_ready(), plain_node.process().output());

    // Plaintext client, TLS node: the node says so, in plaintext, and closes.
    CliResult r = cli(cli_args(tls_node.port(), {"-e", "SELECT 1"}));
    CHECK(r.exit_code == 2);
    CHECK_MESSAGE(contains(r.output, "cannot connect to 127.0.0.1:" + std::to_string(tls_node.port()) +
                                         ": this node accepts TLS connections only"),
                  r.output);
    CHECK(r.took < 10s);
    RawConnection seed_style(tls_node.port());  // the prototype's client: one object, no newline
    REQUIRE(seed_style.connected());
    REQUIRE(seed_style.write(R"({"type": "CLIENT_QUERY", "payload": {"query": "SELECT 1"}})"));
    CHECK(contains(seed_style.read_until_close(10s), "this node accepts TLS connections only"));
    auto plain_client = Client::connect("127.0.0.1", port16(tls_node.port()), tls_options({}));
    REQUIRE(plain_client.ok());
    auto reply = plain_client->query("SELECT 1");
    REQUIRE(reply.ok());
    CHECK(reply->status == ReplyStatus::error);
    CHECK(contains(reply->message + (reply->error ? reply->error->message : ""),
                   "this node accepts TLS connections only"));

    // TLS client, plaintext node: refused in the handshake, said plainly.
    const std::string where = "127.0.0.1:" + std::to_string(plain_node.port());
    r = cli(cli_args(plain_node.port(), {"--tls-ca", certs.ca(), "-e", "SELECT 1"}));
    CHECK(r.exit_code == 2);
    CHECK_MESSAGE(
        contains(r.output, "TLS handshake with " + where +
                               " failed: the node answered in plaintext (it is not configured for TLS)"),
        r.output);
    CHECK(r.took < 10s);
    const auto start = Clock::now();
    auto tls_client =
        Client::connect("127.0.0.1", port16(plain_node.port()), tls_options(certs.client_tls()));
    REQUIRE_FALSE(tls_client.ok());
    CHECK(tls_client.error().kind == ErrorKind::unavailable);
    CHECK(contains(tls_client.error().message, "the node answered in plaintext"));
    CHECK(Clock::now() - start < 5s);
    // Both nodes are fine afterwards.
    CHECK(Client::connect("127.0.0.1", port16(tls_node.port()), tls_options(certs.client_tls()))
              ->query("SELECT 1")
              ->status == ReplyStatus::ok);
    CHECK(
        Client::connect("127.0.0.1", port16(plain_node.port()), tls_options({}))->query("SELECT 1")->status ==
        ReplyStatus::ok);
  }

  TEST_CASE(
      "distdb::Client over TLS: queries, pipelining, cluster clients; names the certificate lacks are "
      "refused") {
    const TestCerts& certs = TestCerts::shared();
    const TestCerts other({1});
    NodeProcess node(certs.security_json("1"));
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
    const std::string where = "127.0.0.1:" + std::to_string(node.port());

    auto client = Client::connect("127.0.0.1", port16(node.port()), tls_options(certs.client_tls()));
    REQUIRE_MESSAGE(client.ok(), client.error().message);
    REQUIRE(client->query("CREATE TABLE p (id INT PRIMARY KEY, v TEXT)")->status == ReplyStatus::ok);
    // Pipelined: many requests in flight, replies larger than one TLS record.
    const std::string big(40000, 'x');
    for (int i = 0; i < 30; ++i)
      REQUIRE(client->send("INSERT INTO p VALUES (" + std::to_string(i) + ", '" + big + "')").ok());
    for (int i = 0; i < 30; ++i) {
      auto r = client->receive();
      REQUIRE_MESSAGE(r.ok(), r.error().message);
      CHECK(r->status == ReplyStatus::ok);
    }
    auto all = client->query("SELECT id, v FROM p ORDER BY id");
    REQUIRE(all.ok());
    REQUIRE(all->result.rows.size() == 30);
    CHECK(std::get<std::string>(all->result.rows[29][1]) == big);
    CHECK(client->status()->status == ReplyStatus::ok);

    auto cluster =
        Client::connect_cluster({{"127.0.0.1", port16(node.port())}}, tls_options(certs.client_tls()));
    REQUIRE_MESSAGE(cluster.ok(), cluster.error().message);
    CHECK(cluster->query("SELECT COUNT(*) FROM p")->status == ReplyStatus::ok);

    const auto refused = [&](ClientTls tls, const std::string& expected) {
      auto c = Client::connect("127.0.0.1", port16(node.port()), tls_options(std::move(tls)));
      REQUIRE_FALSE(c.ok());
      CHECK(c.error().kind == ErrorKind::unavailable);
      CHECK_MESSAGE(c.error().message.rfind(expected, 0) == 0, c.error().message);
    };
    ClientTls wrong_ca = certs.client_tls();
    wrong_ca.ca_file = other.ca();
    refused(wrong_ca, "TLS handshake with " + where + " failed: certificate verify failed (");
    ClientTls wrong_name = certs.client_tls();
    wrong_name.server_name = "db.example.com";
    refused(wrong_name,
            "TLS handshake with " + where + " failed: certificate verify failed (hostname mismatch)");
    ClientTls system_store = certs.client_tls();
    system_store.ca_file.clear();
    refused(system_store, "TLS handshake with " + where + " failed: certificate verify failed (");
    // The right name given explicitly, and no verification at all: served.
    ClientTls by_name = certs.client_tls();
    by_name.server_name = "localhost";
    CHECK(Client::connect("127.0.0.1", port16(node.port()), tls_options(by_name)).ok());
    ClientTls unverified = wrong_name;
    unverified.ca_file = other.ca();
    unverified.verify = false;
    auto insecure = Client::connect("127.0.0.1", port16(node.port()), tls_options(unverified));
    REQUIRE(insecure.ok());
    CHECK(insecure->query("SELECT 1")->status == ReplyStatus::ok);
  }

  TEST_CASE("client certificates required: refused without one or with another CA's, served with one") {
    const TestCerts& certs = TestCerts::shared();
    const TestCerts other({1});
    NodeProcess node(certs.security_json("1", "required"));
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
    const std::string where = "127.0.0.1:" + std::to_string(node.port());

    CliResult r = cli(cli_args(node.port(), {"--tls-ca", certs.ca(), "-e", "SELECT 1 AS one"}));
    CHECK(r.exit_code == 2);
    CHECK_MESSAGE(contains(r.output, "TLS handshake with " + where + " failed: "), r.output);
    CHECK(contains(r.output, "certificate required"));
    r = cli(cli_args(node.port(), {"--tls-ca", certs.ca(), "--tls-cert", other.client_cert(), "--tls-key",
                                   other.client_key(), "-e", "SELECT 1 AS one"}));
    CHECK(r.exit_code == 2);
    CHECK_MESSAGE(contains(r.output, "TLS handshake with " + where + " failed: "), r.output);
    r = cli(cli_args(node.port(), {"--tls-ca", certs.ca(), "--tls-cert", certs.client_cert(), "--tls-key",
                                   certs.client_key(), "-e", "SELECT 1 AS one"}));
    CHECK_MESSAGE(r.exit_code == 0, r.output);
    CHECK(contains(r.output, "one\n1\n"));

    // The library: refused as unavailable (nothing ran), never "outcome unknown".
    ClientOptions without = tls_options(certs.client_tls());
    auto bare = Client::connect("127.0.0.1", port16(node.port()), without);
    if (bare.ok()) {  // TLS 1.3: the refusal comes just after the handshake
      auto reply = bare->query("CREATE TABLE must_not_exist (id INT)");
      REQUIRE_FALSE(reply.ok());
      CHECK(reply.error().kind == ErrorKind::unavailable);
      CHECK_MESSAGE(contains(reply.error().message, "certificate required"), reply.error().message);
    } else {
      CHECK(bare.error().kind == ErrorKind::unavailable);
    }
    auto with = Client::connect("127.0.0.1", port16(node.port()), tls_options(certs.client_tls(true)));
    REQUIRE(with.ok());
    auto tables = with->query("SELECT name FROM sqlite_master WHERE name = 'must_not_exist'");
    REQUIRE(tables.ok());
    CHECK(tables->result.rows.empty());
    // A node's certificate is a client certificate too (mutual TLS between members).
    ClientTls as_node = certs.client_tls();
    as_node.certificate_file = certs.cert(2);
    as_node.key_file = certs.key(2);
    CHECK(
        Client::connect("127.0.0.1", port16(node.port()), tls_options(as_node))->query("SELECT 1")->status ==
        ReplyStatus::ok);
  }

  TEST_CASE(
      "client certificates optional: served with or without one, refused with one that does not verify") {
    const TestCerts& certs = TestCerts::shared();
    const TestCerts other({1});
    NodeProcess node(certs.security_json("1", "optional"));
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
    CHECK(Client::connect("127.0.0.1", port16(node.port()), tls_options(certs.client_tls()))
              ->query("SELECT 1")
              ->status == ReplyStatus::ok);
    CHECK(Client::connect("127.0.0.1", port16(node.port()), tls_options(certs.client_tls(true)))
              ->query("SELECT 1")
              ->status == ReplyStatus::ok);
    ClientTls foreign = certs.client_tls();
    foreign.certificate_file = other.client_cert();
    foreign.key_file = other.client_key();
    auto c = Client::connect("127.0.0.1", port16(node.port()), tls_options(foreign));
    if (c.ok()) {
      auto reply = c->query("SELECT 1");
      REQUIRE_FALSE(reply.ok());
      CHECK(reply.error().kind == ErrorKind::unavailable);
    }
  }

  TEST_CASE(
      "a TLS handshake that never completes is cut by the read timeout, and counts against max_connections") {
    const TestCerts& certs = TestCerts::shared();
    NodeProcess node(certs.security_json("1") +
                     R"(, "timeouts": {"read_timeout_ms": 1000}, "limits": {"max_connections": 1})");
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());

    // A ClientHello that never comes, after its first bytes.
    RawConnection stalled(node.port());
    REQUIRE(stalled.connected());
    REQUIRE(stalled.write(std::string("\x16\x03\x01", 3)));
    const auto start = Clock::now();
    // Meanwhile the only connection allowed is taken: a TLS client is told so.
    {
      auto client = Client::connect("127.0.0.1", port16(node.port()), tls_options(certs.client_tls()));
      REQUIRE_MESSAGE(client.ok(), client.error().message);
      auto reply = client->query("SELECT 1");
      REQUIRE(reply.ok());
      CHECK(reply->status == ReplyStatus::error);
      CHECK_MESSAGE(
          contains(reply->message + (reply->error ? reply->error->message : ""), "too many connections"),
          reply->message);
    }
    CHECK(stalled.closed_by_peer(10s));
    CHECK(Clock::now() - start >= 900ms);
    // A connection that sends nothing at all goes the same way.
    RawConnection silent(node.port());
    REQUIRE(silent.connected());
    CHECK(silent.closed_by_peer(10s));
    // And the node serves again.
    CHECK(wait_until(
        [&] {
          auto c = Client::connect("127.0.0.1", port16(node.port()), tls_options(certs.client_tls()));
          if (!c) return false;
          auto r = c->query("SELECT 1");
          return r && r->status == ReplyStatus::ok;
        },
        10s));
  }

  TEST_CASE("what crosses the network over TLS is not the SQL in clear (and without TLS it is)") {
    const TestCerts& certs = TestCerts::shared();
    const std::string marker = "distdb-marker-3f9a1c";
    const std::string sql = "SELECT '" + marker + "' AS m";

    NodeProcess tls_node(certs.security_json("1"));
    REQUIRE_MESSAGE(tls_node.wait_ready(), tls_node.process().output());
    RecordingProxy tls_path(tls_node.port());
    CliResult r = cli(cli_args(tls_path.port(), {"--tls-ca", certs.ca(), "-e", sql}));
    CHECK_MESSAGE(r.exit_code == 0, r.output);
    CHECK(contains(r.output, "m\n" + marker + "\n"));  // the statement went through the proxy and back
    const std::string seen = tls_path.captured();
    CHECK(seen.size() > 500);  // a handshake and records went by
    CHECK_FALSE(contains(seen, marker));
    CHECK_FALSE(contains(seen, "SELECT"));

    // The same through the same kind of proxy to a plaintext node: the proxy
    // does see it, so the check above is a real one.
    NodeProcess plain_node;
    REQUIRE_MESSAGE(plain_node.wait_ready(), plain_node.process().output());
    RecordingProxy plain_path(plain_node.port());
    r = cli(cli_args(plain_path.port(), {"-e", sql}));
    CHECK_MESSAGE(r.exit_code == 0, r.output);
    CHECK(contains(plain_path.captured(), marker));
  }
}
