// Outbound peer links of the TCP transport (Transport::send_to_peer): two
// transports in one process, A sending to B over real TCP while B comes and
// goes.
#include <doctest/doctest.h>

#include <asio.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "distdb/log.hpp"
#include "distdb/transport.hpp"
#include "process.hpp"
#include "test_certs.hpp"
#include "wire/peer_codec.hpp"

using namespace distdb;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

// Records what a transport delivers; answers every frame, to check that the
// sender ignores (and drains) what comes back on its outbound connection.
class Recorder final : public TransportHandler {
 public:
  Transport* transport = nullptr;  // set before start(); answers go through it
  bool answer = false;

  void on_frame(ConnectionId conn, std::string frame) override {
    auto envelope = wire::decode_peer(frame);
    // As a node does with a member's frame: the connection counts as logged
    // in, and the login deadline no longer applies to it.
    if (envelope && transport != nullptr) transport->trust_as_peer(conn);
    {
      std::lock_guard lock(mutex_);
      if (transport != nullptr) {
        // What the transport says about the connection (TLS, and whose certificate).
        tls_.push_back(transport->is_tls(conn));
        names_.push_back(transport->verified_peer_name(conn).value_or("(none)"));
      }
      if (!envelope) {
        errors_.push_back(envelope.error().message);
      } else if (const auto* w = std::get_if<core::ForwardedWrite>(&envelope->message)) {
        seqs_.push_back(w->epoch);
      } else {
        errors_.push_back("unexpected message");
      }
    }
    changed_.notify_all();
    if (answer && transport != nullptr)
      transport->send(conn, R"({"status":"OK","note":"ignored by the sender"})");
  }
  void on_input_end(ConnectionId, const Error* error) override {
    if (error == nullptr) return;
    std::lock_guard lock(mutex_);
    errors_.push_back(error->message);
  }
  void on_closed(ConnectionId) override {}

  // Waits until `done(seqs)` holds, or `timeout` passes; returns whether it held.
  bool wait_until(const std::function<bool(const std::vector<std::uint64_t>&)>& done,
                  std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return done(seqs_); });
  }
  bool wait_for_seq(std::uint64_t seq, std::chrono::milliseconds timeout) {
    return wait_until([seq](const auto& s) { return !s.empty() && s.back() >= seq; }, timeout);
  }
  std::vector<std::uint64_t> seqs() {
    std::lock_guard lock(mutex_);
    return seqs_;
  }
  std::vector<std::string> errors() {
    std::lock_guard lock(mutex_);
    return errors_;
  }
  std::vector<bool> tls() {
    std::lock_guard lock(mutex_);
    return tls_;
  }
  std::vector<std::string> names() {
    std::lock_guard lock(mutex_);
    return names_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::uint64_t> seqs_;
  std::vector<std::string> errors_;
  std::vector<bool> tls_;
  std::vector<std::string> names_;
};

// Collects the transport's log lines.
class LogCapture {
 public:
  LogCapture() {
    previous_ = log_level();
    set_log_level(LogLevel::debug);
    set_log_sink([this](LogLevel, std::string_view line) {
      std::lock_guard lock(mutex_);
      lines_.emplace_back(line);
    });
  }
  ~LogCapture() {
    set_log_sink(nullptr);
    set_log_level(previous_);
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  bool contains(const std::string& text) { return count(text) > 0; }
  std::size_t count(const std::string& text) {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (const auto& line : lines_) {
      if (line.find(text) != std::string::npos) ++n;
    }
    return n;
  }
  std::string all() {
    std::lock_guard lock(mutex_);
    std::string out;
    for (const auto& line : lines_) out += line + "\n";
    return out;
  }

 private:
  LogLevel previous_ = LogLevel::info;
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

Config node_config(NodeId id, std::uint16_t port) {
  Config c;
  c.id = id;
  c.ip = "127.0.0.1";
  c.port = port;
  return c;
}

// A port free for B: bound once by a transport, released again.
std::uint16_t free_port() {
  Recorder unused;
  auto probe = make_tcp_transport(node_config(2, 0));
  REQUIRE(probe->start(unused).ok());
  const std::uint16_t port = probe->local_port();
  probe->stop();
  return port;
}

// Node 1, with node 2 at `peer_port`.
Config sender_config(std::uint16_t peer_port) {
  Config c = node_config(1, 0);
  c.peers.push_back(PeerConfig{2, "127.0.0.1", peer_port});
  return c;
}

std::string peer_frame(std::uint64_t seq, std::size_t padding = 0) {
  return wire::encode_peer({1, 2, core::ForwardedWrite{seq, 0, std::string(padding, 'x')}});
}

// Strictly increasing: nothing reordered, nothing duplicated.
bool strictly_increasing(const std::vector<std::uint64_t>& seqs) {
  for (std::size_t i = 1; i < seqs.size(); ++i) {
    if (seqs[i] <= seqs[i - 1]) return false;
  }
  return true;
}

// Starts a receiving transport on `port`.
std::unique_ptr<Transport> start_receiver(std::uint16_t port, Recorder& recorder) {
  auto t = make_tcp_transport(node_config(2, port));
  recorder.transport = t.get();
  const Status st = t->start(recorder);
  REQUIRE_MESSAGE(st.ok(), st.error().message);
  return t;
}

}  // namespace

TEST_CASE(
    "peer link: frames queued before the peer listens arrive in order; delivery resumes after a restart") {
  LogCapture log;
  const std::uint16_t port = free_port();
  Recorder a_handler;
  auto a = make_tcp_transport(sender_config(port));
  REQUIRE(a->start(a_handler).ok());

  // B does not exist yet: the frames wait while A retries.
  for (std::uint64_t i = 0; i < 10; ++i) a->send_to_peer(2, peer_frame(i));

  Recorder b1_handler;
  b1_handler.answer = true;  // A must read and ignore whatever comes back
  auto b1 = start_receiver(port, b1_handler);
  REQUIRE(b1_handler.wait_until([](const auto& s) { return s.size() >= 10; }, 10s));
  CHECK(b1_handler.seqs() == std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  // Steady state on the open connection: everything arrives, in order.
  for (std::uint64_t i = 10; i < 110; ++i) a->send_to_peer(2, peer_frame(i, 100));
  REQUIRE(b1_handler.wait_for_seq(109, 10s));
  CHECK(b1_handler.seqs().size() == 110);
  CHECK(strictly_increasing(b1_handler.seqs()));
  CHECK(b1_handler.errors().empty());
  CHECK(log.contains("peer 2: connected to 127.0.0.1:" + std::to_string(port)));

  // B goes away; what A sends meanwhile may be lost, never reordered.
  b1->stop();
  b1.reset();
  for (std::uint64_t i = 110; i < 120; ++i) a->send_to_peer(2, peer_frame(i));

  Recorder b2_handler;
  auto b2 = start_receiver(port, b2_handler);
  // A may not have noticed yet that its old connection is dead: keep
  // sending until something gets through, then everything must.
  std::uint64_t next = 120;
  const auto deadline = Clock::now() + 15s;
  bool resumed = false;
  while (!resumed && Clock::now() < deadline) {
    a->send_to_peer(2, peer_frame(next++));
    resumed = b2_handler.wait_until([](const auto& s) { return !s.empty(); }, 100ms);
  }
  REQUIRE_MESSAGE(resumed, "no frame reached the restarted peer");
  const std::uint64_t first_of_batch = next;
  for (int i = 0; i < 20; ++i) a->send_to_peer(2, peer_frame(next++));
  REQUIRE(b2_handler.wait_for_seq(next - 1, 10s));

  const auto got = b2_handler.seqs();
  CHECK(strictly_increasing(got));
  CHECK(got.front() >= 110);  // nothing B1 already had
  std::size_t batch = 0;
  for (const auto seq : got) batch += seq >= first_of_batch ? 1 : 0;
  CHECK(batch == 20);  // once through, nothing is lost on a healthy connection
  CHECK(b2_handler.errors().empty());
  CHECK(log.contains("peer 2: disconnected"));

  a->stop();
  b2->stop();
}

TEST_CASE("peer link: the queue is bounded in bytes while the peer is down; the newest frames survive") {
  const std::uint16_t port = free_port();
  Config config = sender_config(port);
  config.limits.max_message_bytes = 1000;  // the queue holds 4000 bytes
  config.limits.max_peer_message_bytes = 1000;
  Recorder a_handler;
  auto a = make_tcp_transport(config);
  REQUIRE(a->start(a_handler).ok());

  const std::string sample = peer_frame(100, 150);
  const std::size_t frame_bytes = sample.size() + 1;  // and its newline
  constexpr std::uint64_t kSent = 500;
  for (std::uint64_t i = 100; i < 100 + kSent; ++i) a->send_to_peer(2, peer_frame(i, 150));
  a->send_to_peer(2, peer_frame(1, 2000));  // over max_peer_message_bytes: dropped, not sent
  a->send_to_peer(3, peer_frame(2));        // not a peer: dropped

  Recorder b_handler;
  auto b = start_receiver(port, b_handler);
  REQUIRE(b_handler.wait_for_seq(100 + kSent - 1, 10s));
  const auto got = b_handler.seqs();
  CHECK(got.size() <= 4000 / frame_bytes);
  CHECK(got.size() >= 4000 / frame_bytes - 1);
  // A contiguous run ending with the last frame sent: the oldest were dropped.
  REQUIRE_FALSE(got.empty());
  CHECK(got.back() == 100 + kSent - 1);
  for (std::size_t i = 1; i < got.size(); ++i) CHECK(got[i] == got[i - 1] + 1);
  a->stop();
  b->stop();
}

TEST_CASE("peer link: the queue is bounded in frames while the peer is down") {
  const std::uint16_t port = free_port();
  Recorder a_handler;
  auto a = make_tcp_transport(sender_config(port));  // 4 MiB frames: the frame count binds first
  REQUIRE(a->start(a_handler).ok());
  constexpr std::uint64_t kSent = 5000;
  for (std::uint64_t i = 0; i < kSent; ++i) a->send_to_peer(2, peer_frame(i));

  Recorder b_handler;
  auto b = start_receiver(port, b_handler);
  REQUIRE(b_handler.wait_for_seq(kSent - 1, 10s));
  const auto got = b_handler.seqs();
  CHECK(got.size() == 4096);
  CHECK(got.front() == kSent - 4096);
  CHECK(strictly_increasing(got));
  a->stop();
  b->stop();
}

TEST_CASE("peer link: stop() is prompt while links are retrying, and later sends are dropped") {
  const std::uint16_t port = free_port();
  Config config = node_config(1, 0);
  config.peers.push_back(PeerConfig{2, "localhost", port});  // a name: resolved at each attempt
  // An address that does not answer (or is unreachable at once).
  config.peers.push_back(PeerConfig{3, "10.255.255.1", 9});
  // A port nobody listens on: refused, retried with back-off.
  config.peers.push_back(PeerConfig{4, "127.0.0.1", free_port()});
  Recorder a_handler;
  auto a = make_tcp_transport(config);
  // Frames sent before start() wait for it.
  a->send_to_peer(2, peer_frame(7));
  REQUIRE(a->start(a_handler).ok());
  for (std::uint64_t i = 0; i < 5; ++i) {
    a->send_to_peer(3, peer_frame(i));
    a->send_to_peer(4, peer_frame(i));
  }
  Recorder b_handler;
  auto b = start_receiver(port, b_handler);
  REQUIRE(b_handler.wait_for_seq(7, 10s));
  CHECK(b_handler.seqs() == std::vector<std::uint64_t>{7});

  const auto before = Clock::now();
  a->stop();
  CHECK(Clock::now() - before < 1500ms);
  a->send_to_peer(2, peer_frame(8));  // after stop: dropped, no crash
  a->stop();                          // idempotent
  // Nothing more arrives at B.
  CHECK_FALSE(b_handler.wait_until([](const auto& s) { return s.size() > 1; }, 200ms));
  b->stop();
}

TEST_CASE("peer link: a peer that hangs up at once is retried with back-off, not in a loop") {
  // A listener that accepts and closes straight away, counting connections.
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  Recorder a_handler;
  auto a = make_tcp_transport(sender_config(acceptor.local_endpoint().port()));
  REQUIRE(a->start(a_handler).ok());
  int accepted = 0;
  std::function<void()> accept_next = [&] {
    acceptor.async_accept([&](asio::error_code ec, asio::ip::tcp::socket socket) {
      if (ec) return;
      ++accepted;
      asio::error_code ignored;
      socket.close(ignored);
      accept_next();
    });
  };
  accept_next();
  // Something to send all the time, so that A always wants to reconnect.
  asio::steady_timer pace(io);
  std::uint64_t sent = 0;
  std::function<void()> send_next = [&] {
    a->send_to_peer(2, peer_frame(sent++));
    pace.expires_after(10ms);
    pace.async_wait([&](asio::error_code ec) {
      if (!ec) send_next();
    });
  };
  send_next();
  io.run_for(1500ms);  // attempts at about 0, 50, 150, 350, 750 and 1550 ms
  CHECK(accepted >= 2);
  CHECK(accepted <= 10);
  a->stop();
}

// ------------------------------------------------------------ TLS links

namespace {

TlsConfig tls_of(const test::TestCerts& certs, int id, ClientCertificates mode = ClientCertificates::none) {
  return TlsConfig{certs.cert(id), certs.key(id), certs.ca(), mode};
}

}  // namespace

TEST_CASE(
    "TLS peer link: frames arrive in order over mutual TLS; the receiver knows the sender's certificate") {
  const test::TestCerts& certs = test::TestCerts::shared();
  LogCapture log;
  const std::uint16_t port = free_port();
  Config a_config = sender_config(port);
  a_config.security.tls = tls_of(certs, 1);
  Recorder a_handler;
  auto a = make_tcp_transport(a_config);
  REQUIRE(a->start(a_handler).ok());
  for (std::uint64_t i = 0; i < 10; ++i) a->send_to_peer(2, peer_frame(i));  // queued: B is not there yet

  Config b_config = node_config(2, port);
  b_config.security.tls = tls_of(certs, 2, ClientCertificates::required);
  Recorder b_handler;
  auto b = make_tcp_transport(b_config);
  b_handler.transport = b.get();
  REQUIRE(b->start(b_handler).ok());
  REQUIRE_MESSAGE(b_handler.wait_until([](const auto& s) { return s.size() >= 10; }, 10s), log.all());
  // Frames larger than a TLS record, many at a time: the io thread's gathered writes.
  for (std::uint64_t i = 10; i < 60; ++i) a->send_to_peer(2, peer_frame(i, 40000));
  REQUIRE_MESSAGE(b_handler.wait_for_seq(59, 10s), log.all());
  CHECK(b_handler.seqs().size() == 60);
  CHECK(strictly_increasing(b_handler.seqs()));
  CHECK(b_handler.errors().empty());
  for (const bool tls : b_handler.tls()) CHECK(tls);
  for (const auto& name : b_handler.names()) CHECK(name == "distdb-node-1");
  CHECK(log.contains("peer 2: connected to 127.0.0.1:" + std::to_string(port) + " (TLS)"));
  a->stop();
  b->stop();
}

TEST_CASE(
    "TLS peer link: a certificate not valid for the peer's address, or of another CA, lets nothing through") {
  const test::TestCerts& certs = test::TestCerts::shared();
  const test::TestCerts other({1, 2});
  LogCapture log;
  const auto nothing_arrives = [](Recorder& r) { return r.seqs().empty(); };

  SUBCASE("the peer's certificate does not name the address it is reached at") {
    const std::uint16_t port = free_port();
    Config b_config = node_config(2, port);
    b_config.listen_ip = "0.0.0.0";
    b_config.security.tls = tls_of(certs, 2);
    Recorder b_handler;
    auto b = make_tcp_transport(b_config);
    REQUIRE(b->start(b_handler).ok());
    Config a_config = node_config(1, 0);
    a_config.peers.push_back(PeerConfig{2, "127.0.0.2", port});  // loopback too, but not in the certificate
    a_config.security.tls = tls_of(certs, 1);
    Recorder a_handler;
    auto a = make_tcp_transport(a_config);
    REQUIRE(a->start(a_handler).ok());
    const std::string failure = "[!] peer 2: TLS handshake with 127.0.0.2:" + std::to_string(port) +
                                " failed: certificate verify failed (IP address mismatch) (retrying)";
    // Retried with back-off; said once at warn.
    REQUIRE_MESSAGE(test::wait_until(
                        [&] {
                          a->send_to_peer(2, peer_frame(1));
                          return log.count("peer 2: cannot connect to 127.0.0.2") >= 3;
                        },
                        10s),
                    log.all());
    CHECK_MESSAGE(log.count(failure) == 1, log.all());
    CHECK(nothing_arrives(b_handler));
    a->stop();
    b->stop();
  }
  SUBCASE("the peer's certificate is of another CA") {
    const std::uint16_t port = free_port();
    Config b_config = node_config(2, port);
    b_config.security.tls = tls_of(other, 2);
    Recorder b_handler;
    auto b = make_tcp_transport(b_config);
    REQUIRE(b->start(b_handler).ok());
    Config a_config = sender_config(port);
    a_config.security.tls = tls_of(certs, 1);
    Recorder a_handler;
    auto a = make_tcp_transport(a_config);
    REQUIRE(a->start(a_handler).ok());
    REQUIRE_MESSAGE(test::wait_until(
                        [&] {
                          a->send_to_peer(2, peer_frame(1));
                          return log.contains("[!] peer 2: TLS handshake with 127.0.0.1:" +
                                              std::to_string(port) + " failed: certificate verify failed (");
                        },
                        10s),
                    log.all());
    CHECK(nothing_arrives(b_handler));
    a->stop();
    b->stop();
  }
  SUBCASE("this node's certificate is of another CA, and the peer requires a good one") {
    const std::uint16_t port = free_port();
    Config b_config = node_config(2, port);
    b_config.security.tls = tls_of(certs, 2, ClientCertificates::required);
    Recorder b_handler;
    auto b = make_tcp_transport(b_config);
    REQUIRE(b->start(b_handler).ok());
    Config a_config = sender_config(port);
    a_config.security.tls = TlsConfig{other.cert(1), other.key(1), certs.ca(), ClientCertificates::none};
    Recorder a_handler;
    auto a = make_tcp_transport(a_config);
    REQUIRE(a->start(a_handler).ok());
    REQUIRE_MESSAGE(
        test::wait_until(
            [&] {
              a->send_to_peer(2, peer_frame(1));
              return log.contains("[!] peer 2: TLS link to 127.0.0.1:" + std::to_string(port) +
                                  " failed: ") ||
                     log.contains("[!] peer 2: TLS handshake with 127.0.0.1:" + std::to_string(port));
            },
            10s),
        log.all());
    CHECK(nothing_arrives(b_handler));
    a->stop();
    b->stop();
  }
}

TEST_CASE("TLS transport: files that do not load make start() fail, naming the field and the file") {
  const test::TestCerts& certs = test::TestCerts::shared();
  Config config = node_config(1, 0);
  config.security.tls = tls_of(certs, 1);
  config.security.tls->key = certs.key(2);
  Recorder handler;
  auto t = make_tcp_transport(config);
  const Status st = t->start(handler);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().kind == ErrorKind::config);
  CHECK(st.error().message == "security.tls.key: " + certs.key(2) +
                                  ": not the private key of the certificate in " + certs.cert(1) +
                                  " (security.tls.certificate)");
  config.security.tls = tls_of(certs, 1);
  config.security.tls->ca = certs.dir() + "/missing.crt";
  config.peers.push_back(PeerConfig{2, "127.0.0.1", 1});
  auto t2 = make_tcp_transport(config);
  const Status st2 = t2->start(handler);
  REQUIRE_FALSE(st2.ok());
  CHECK(st2.error().message ==
        "security.tls.ca: " + certs.dir() + "/missing.crt: cannot read: No such file or directory");
}
