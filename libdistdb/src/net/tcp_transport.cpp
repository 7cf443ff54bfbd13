// The TCP transport, on Asio.
//
// One thread runs the io_context; every connection's state lives on that
// thread and is touched nowhere else, except its write side (below): calls
// from other threads (close, stop) are posted to it.
//
// Replies are written by the thread that produced them. A read is answered
// on a storage-pool thread; handing the reply to the io thread to write
// costs a wake-up and a context switch per reply, which on a busy two-core
// machine was a large part of a read's cost. So send() writes the frame
// itself, with a non-blocking send(2), when the connection has nothing else
// queued or being written; otherwise (or for what the socket did not take)
// the frame joins the connection's queue and the io thread writes it with
// Asio. The WriteSide, under its own mutex, is what both sides share: the
// queue, whether the io thread owns the writing, and the descriptor — set
// to -1 under that mutex before the socket closes, so a late send() never
// writes into a descriptor number the kernel has given to someone else.
//
// Protection of the node against its clients lives here. The aim: a client
// that floods the node, or holds connections open and does nothing with them
// (slow-loris), degrades nothing but itself, and one address cannot take
// what all the others need.
//   - a frame over limits.max_message_bytes, or garbage between frames,
//     ends the connection after one error reply (the stream cannot be resynced);
//   - a frame begun but not finished within timeouts.read_timeout_ms (slow
//     or half-open clients) ends the connection the same way;
//   - a connection silent for timeouts.idle_timeout_ms is closed;
//   - past limits.max_connections, a new connection gets an error reply and
//     is closed, so the ones already served are not starved.
//
// Those alone let one address open max_connections connections that never
// log in, each kept for the read or idle timeout (10 s, 5 min): everybody
// else locked out, at the cost of a loop calling connect(). So a connection
// starts out "not logged in" (unless security.client_auth is "off") until
// the handler reports a login (mark_authenticated) or a member's frame
// (trust_as_peer), and until then:
//   - it must log in within timeouts.login_timeout_ms of its accept (a TLS
//     handshake counts against that): it then gets one error of kind
//     unauthenticated and is closed (hard, if it is still there one more
//     period later: a client that reads nothing cannot be told). Activity
//     does not move the deadline: PING is answered before a login, and a
//     client pinging forever must not hold its place forever;
//   - it counts against limits.max_unauthenticated_connections, and against
//     limits.max_unauthenticated_per_source for its address, so that one
//     address holds at most that many of them (on a TLS port up to twice
//     that, with the refused ones still in their handshake: see below) and
//     the total is left for the others (a login is a few round trips: a
//     client needs a place only briefly);
//   - its frames may be at most limits.max_unauthenticated_message_bytes
//     (an AUTH message is small), and its unsent replies are bounded the
//     same way (below): what an anonymous client can make the node hold is
//     about that much per connection, not max_message_bytes. Its input is
//     fed to the splitter in pieces no larger than that limit, the frames
//     of each handed over before the next: a login answered at once on the
//     io thread (SCRAM's last step) lifts the limit for a larger request
//     pipelined right behind it, even within one read. A member's link, too,
//     counts as not logged in until its first frame has been checked; that
//     frame must fit. It normally does: members send each other small
//     heartbeats every heartbeat interval, so a link rarely opens with
//     anything else (one that does is refused, like a lost frame, and the
//     link reconnects).
// Every connection, logged in or not, also counts against
// limits.max_connections_per_source for its address: with client_auth off
// nobody logs in, and that is what bounds a flood from one address there.
// Over any of these limits a new connection gets one error reply naming
// the limit (on a TLS port once its handshake is done, so that it can read
// it) and is closed. Refusals are logged at most once per 10 s per limit,
// with the count of those not logged: a flood must not become a flood of
// log lines. On a TLS port, a connection more than twice over a limit gets
// no handshake: the handshake costs the node far more than the client, and
// that many is a flood, not a client that went a little over.
// A refused connection counts until it is closed (at once, once its reply
// is written): counting only admitted ones would let refused TLS
// connections in their handshake pile up unbounded. Counts are per address
// as the socket reports it, IPv4-mapped IPv6 folded to IPv4; an IPv6 client
// with a /64 has many addresses, and many hosts behind one NAT share one:
// what holds whatever the addresses are are the totals.
//
// A client that reads none of its replies: what send() cannot write at once
// waits in the WriteSide's queue, and nothing else bounds it (a client
// pipelining large SELECTs and reading nothing would have the node hold
// every reply). Past limits.max_output_bytes_per_connection of unsent
// replies, the io thread reads no more of that connection's input, and the
// handler, which asks output_backlogged() before it starts a request,
// starts none until they have drained (on_output_drained). Its client waits
// on its own replies (TCP carries the back-pressure to it); nobody else
// does. One reply is never split, so the bound is exceeded by at most the
// reply that crossed it. A client that reads nothing at all is closed by the
// idle timeout, since neither its reads nor its writes make progress.
//
// Also: an accept that fails for want of descriptors or memory is retried
// after a pause rather than at once (at once, it fails again at once, in a
// loop that starves every connection already served and fills the log).
//
// Outbound links to peers (send_to_peer) are separate from the connections
// above: one PeerLink per configured peer, connected when there is something
// to send, retried with capped exponential back-off. Their queue, and the
// descriptor a sender may write to directly while the link is idle, are
// shared with the callers' threads (under peers_mutex_); everything else
// about them lives on the io thread. Each connection attempt bumps the link's
// generation, and every completion handler checks it, so a late callback of
// an abandoned socket never touches its successor.
//
// TLS (config.security.tls): the port speaks only TLS, and links to peers
// use it too. An SSL stream keeps state (sequence numbers, buffers) that two
// threads must never touch at once, so on TLS connections and links the
// direct writes above are off: every frame goes through the io thread, which
// alone owns the stream. Plaintext connections keep the direct path.
//   - Inbound, the first byte tells a TLS ClientHello (0x16) from anything
//     else: a plaintext client gets one error reply in plaintext ("this node
//     accepts TLS connections only") and is closed, logged at debug. The
//     read timeout runs from the accept, so a client that never completes
//     its handshake is closed like a slow one; a connection in its
//     handshake counts against max_connections (one over the limit is told
//     so once its handshake is done, so that it can read why).
//   - Outbound, the peer's certificate must chain to security.tls.ca and be
//     valid for the peer's configured ip (an IP address, or a DNS name), and
//     the node presents its own certificate (mutual TLS when the peer asks).
//   - Streams are held by shared pointers that every pending handler on them
//     also holds: closing a socket cancels its operations, and the stream
//     outlives their completion.
#include <sys/socket.h>
#include <asio.hpp>
#include <asio/ssl.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "distdb/transport.hpp"
#include "net/network_loop.hpp"
#include "net/tls.hpp"
#include "util/log_internal.hpp"
#include "wire/frame_splitter.hpp"

namespace distdb {

TransportHandler::~TransportHandler() = default;
void TransportHandler::on_output_drained(ConnectionId) {}
Transport::~Transport() = default;
void Transport::mark_authenticated(ConnectionId) {}
bool Transport::output_backlogged(ConnectionId) {
  return false;
}
bool Transport::is_tls(ConnectionId) const {
  return false;
}
std::optional<std::string> Transport::verified_peer_name(ConnectionId) const {
  return std::nullopt;
}

namespace {

using asio::ip::tcp;
using Millis = std::chrono::milliseconds;
using TlsStream = asio::ssl::stream<tcp::socket>;
using Clock = std::chrono::steady_clock;

constexpr unsigned char kTlsHandshakeRecord = 0x16;  // the first byte of every ClientHello

// Why a TLS operation failed, for the log: OpenSSL's reason (with the
// certificate problem when verification failed), or the socket's error.
std::string describe_tls(const asio::error_code& ec, TlsStream* stream) {
  if (ec.category() == asio::error::get_ssl_category()) {
    // (Asio keeps OpenSSL's unsigned error code in an int.)
    return tls::failure_reason(stream != nullptr ? stream->native_handle() : nullptr,
                               static_cast<unsigned long>(static_cast<unsigned int>(ec.value())));
  }
  if (ec == asio::ssl::error::stream_truncated || ec == asio::error::eof) return "closed by the other end";
  return ec.message();
}

bool end_of_stream(const asio::error_code& ec) {
  return ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
}

// The address a connection counts against: an IPv4 client of a node that
// listens on IPv6 arrives as ::ffff:a.b.c.d, and is the same client.
asio::ip::address source_address(const tcp::endpoint& remote) {
  const asio::ip::address a = remote.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  return a;
}

// The limits a new connection is held to, in the order they are checked:
// the narrowest first, so that a flooding address is told about its own
// limit rather than a total it may have filled itself.
enum class Limit { per_source, unauthenticated_per_source, unauthenticated, total };
constexpr std::size_t kLimits = 4;

struct LimitName {
  const char* key;     // the config field, for the log and the reply
  const char* reason;  // what the refused client is told
};

constexpr LimitName kLimitNames[kLimits] = {
    {"limits.max_connections_per_source", "too many connections from this address"},
    {"limits.max_unauthenticated_per_source", "too many connections not logged in yet from this address"},
    {"limits.max_unauthenticated_connections", "too many connections not logged in yet"},
    {"limits.max_connections", "too many connections"},
};

struct Refusal {
  Limit limit;
  int value;   // the configured limit
  bool flood;  // more than twice the limit: refused without a TLS handshake
};

// At most one log line per interval for one kind of event, with how many
// were held back: a flood of connections must not become a flood of lines.
class RateLimitedLog {
 public:
  static constexpr std::chrono::seconds kInterval{10};

  // Whether a line is due now; if so, `held_back` gets how many events went
  // unlogged since the last one (they are counted, not lost).
  bool due(std::uint64_t& held_back) {
    const auto now = Clock::now();
    if (logged_ && now - last_ < kInterval) {
      ++held_back_;
      return false;
    }
    logged_ = true;
    last_ = now;
    held_back = std::exchange(held_back_, 0);
    return true;
  }

 private:
  bool logged_ = false;
  Clock::time_point last_;
  std::uint64_t held_back_ = 0;
};

// After an accept failed for want of descriptors or memory, the pause before
// the next attempt: at once, it would fail again at once, in a loop that
// takes the io thread from the connections already served.
constexpr Millis kAcceptRetry{100};

class TcpTransport;

// What other threads may touch of a connection (see the top), and what
// they may ask about it.
struct WriteSide {
  std::mutex mutex;
  int fd = -1;                     // -1 once the connection is closing or closed
  bool direct = true;              // send() may write to fd itself (never on a TLS connection)
  bool io_owned = false;           // the io thread has frames to write: send() must queue behind them
  std::deque<std::string> queued;  // frames (newline included) waiting for the io thread
  std::size_t unsent_bytes = 0;    // in `queued` and in the io thread's write in progress
  std::size_t output_bound = 0;    // unsent bytes past which the connection is backlogged
  bool drain_wanted = false;       // output_backlogged() said so: on_output_drained() is owed
  bool tls = false;                // the TLS handshake completed
  std::optional<std::string> verified_name;  // the CN of the client's verified certificate
};

struct Connection {
  Connection(asio::io_context& io, tcp::socket s, ConnectionId conn_id, std::size_t max_frame)
      : id(conn_id),
        socket(std::move(s)),
        splitter(max_frame),
        idle_timer(io),
        read_timer(io),
        login_timer(io) {}

  // Where a connection to a TLS port stands: its first byte not yet seen,
  // then its handshake; `open` carries frames (and is where plaintext
  // connections start).
  enum class Phase { sniffing, handshaking, open };

  ConnectionId id;
  tcp::socket socket;              // the connection, until a TLS handshake begins
  std::unique_ptr<TlsStream> tls;  // from then on, the stream (owning the socket)
  Phase phase = Phase::open;
  std::optional<Error> refusal;  // over a limit on a TLS port: said once the handshake is done
  wire::FrameSplitter splitter;
  std::array<char, 64 * 1024> read_buffer{};
  std::shared_ptr<WriteSide> write_side = std::make_shared<WriteSide>();
  std::vector<std::string> writing; // frames handed to the in-flight async_write
  std::size_t writing_bytes = 0;    // their size
  bool reading = true;              // false once input ended or the stream broke
  bool read_paused = false;         // not reading while its replies are backlogged (see flush())
  bool close_requested = false;     // close once everything queued is written
  bool closed = false;
  asio::steady_timer idle_timer;
  asio::steady_timer read_timer;
  bool read_timer_armed = false;

  // Logins (see the top). The address is the peer's, IPv4-mapped IPv6
  // addresses shown as IPv4, so that one client counts once however the
  // node listens.
  asio::ip::address source;
  bool authenticated = false;  // logged in or a member's: no longer counted as not logged in
  bool peer = false;           // trust_as_peer(): peer-sized frames
  asio::steady_timer login_timer;
  bool login_deadline_passed = false;  // the error is on its way; the next expiry closes

  tcp::socket& lowest() { return tls ? tls->next_layer() : socket; }
};

// Outbound links to peers.
constexpr Millis kInitialBackoff{50};
constexpr Millis kMaxBackoff{1000};
constexpr Millis kConnectTimeout{2000};
constexpr std::size_t kMaxPeerQueueFrames = 4096;
constexpr std::size_t kMaxPeerWriteBytes = 256 * 1024;  // per write (at least one frame): bounds its duration
constexpr std::size_t kPeerQueueMessages = 4;           // the byte bound, in limits.max_message_bytes

struct PeerLink {
  PeerLink(asio::io_context& io, PeerConfig peer)
      : config(std::move(peer)), socket(io), resolver(io), retry_timer(io), deadline(io) {}

  const PeerConfig config;

  // Guarded by TcpTransport::peers_mutex_: filled by any thread, emptied by
  // the io thread.
  std::deque<std::string> queued;  // frames, newline included
  std::size_t queued_bytes = 0;
  std::uint64_t dropped = 0;  // frames dropped for the bound, not yet logged
  bool kick_posted = false;   // a kick() is on its way to the io thread
  // The connected socket while the io thread is not writing on it and
  // nothing is queued: send_to_peer() then writes the frame itself, saving
  // a hand-off to the io thread on every protocol message (two per round
  // on the coordinator and on each member). -1 otherwise; set to -1 before
  // the socket closes.
  int direct_fd = -1;

  // The io thread only.
  enum class State { idle, connecting, connected, backing_off };
  State state = State::idle;
  tcp::socket socket;               // until a TLS handshake begins
  std::shared_ptr<TlsStream> tls;   // then the stream, owning the socket (TLS links only)
  bool tls_failure_logged = false;  // a TLS failure was logged at warn since the link last held
  tcp::resolver resolver;
  asio::steady_timer retry_timer;
  asio::steady_timer deadline;  // the connect timeout, then the write stall timeout
  std::uint64_t deadline_armed = 0;
  std::uint64_t generation = 0;
  bool write_in_flight = false;
  Millis backoff = kInitialBackoff;
  std::chrono::steady_clock::time_point connected_at;
  std::array<char, 4096> drain_buffer{};
};

class TcpTransport final : public Transport {
 public:
  explicit TcpTransport(const Config& config)
      : config_(config),
        acceptor_(io_),
        accept_retry_(io_),
        logins_(config_.security.client_auth != ClientAuth::off),
        login_frame_bytes_(
            std::min(config_.limits.max_unauthenticated_message_bytes, config_.limits.max_message_bytes)),
        login_output_bytes_(std::min(config_.limits.max_output_bytes_per_connection, login_frame_bytes_)) {
    const std::size_t max_message = std::max<std::size_t>(config_.limits.max_message_bytes, 1);
    peer_queue_bytes_ = max_message > std::numeric_limits<std::size_t>::max() / kPeerQueueMessages
                            ? std::numeric_limits<std::size_t>::max()
                            : max_message * kPeerQueueMessages;
    for (const PeerConfig& peer : config_.peers) {
      if (peer.id == config_.id) continue;
      links_.emplace(peer.id, std::make_shared<PeerLink>(io_, peer));
    }
  }
  ~TcpTransport() override { stop(); }

  asio::io_context& loop() { return io_; }

  Status start(TransportHandler& handler) override {
    handler_ = &handler;
    if (const auto& tls = config_.security.tls) {
      auto server = tls::make_server_context(*tls);
      if (!server) return server.error();
      server_tls_.emplace(server->release());
      if (!links_.empty()) {
        auto peer = tls::make_peer_context(*tls);
        if (!peer) return peer.error();
        peer_tls_.emplace(peer->release());
      }
    }
    asio::error_code ec;
    const std::string& host = config_.listen_ip.empty() ? config_.ip : config_.listen_ip;
    auto address = asio::ip::make_address(host, ec);
    if (ec) {
      // A host name rather than an address: resolve it.
      tcp::resolver resolver(io_);
      auto results = resolver.resolve(host, std::to_string(config_.port), ec);
      if (ec || results.empty()) {
        return Error(ErrorKind::io, "cannot resolve listen address '" + host + "': " + ec.message());
      }
      address = results.begin()->endpoint().address();
    }
    const tcp::endpoint endpoint(address, config_.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Error(ErrorKind::io, "cannot listen on " + host + ":" + std::to_string(config_.port) + ": " +
                                      ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    accept_next();
    thread_ = std::thread([this] { io_.run(); });
    // Frames sent to peers before start() waited for the io thread.
    std::vector<std::shared_ptr<PeerLink>> waiting;
    {
      std::lock_guard lock(peers_mutex_);
      peers_started_ = true;
      for (auto& [peer_id, link] : links_) {
        if (!link->queued.empty() && !link->kick_posted) {
          link->kick_posted = true;
          waiting.push_back(link);
        }
      }
    }
    for (auto& link : waiting) asio::post(io_, [this, link] { kick(link); });
    return {};
  }

  void stop() override {
    {
      std::lock_guard lock(peers_mutex_);
      peers_stopped_ = true;
    }
    if (!thread_.joinable()) return;
    asio::post(io_, [this] {
      stopping_ = true;
      asio::error_code ignored;
      acceptor_.close(ignored);
      accept_retry_.cancel();
      std::vector<ConnectionId> ids;
      for (auto& [id, conn] : connections_) ids.push_back(id);
      for (ConnectionId id : ids) teardown(id);
      for (auto& [peer_id, link] : links_) {
        if (link->state == PeerLink::State::connected) {
          DISTDB_LOG(debug) << "peer " << peer_id << ": disconnecting, transport stopping";
        }
        reset_link_socket(*link);
        link->retry_timer.cancel();
        link->state = PeerLink::State::idle;
      }
    });
    // The teardown above cancels every pending operation; run() returns once
    // their handlers have completed.
    thread_.join();
  }

  void send(ConnectionId conn, std::string frame) override {
    std::shared_ptr<WriteSide> side;
    {
      std::lock_guard lock(write_sides_mutex_);
      auto it = write_sides_.find(conn);
      if (it == write_sides_.end()) return;  // closed
      side = it->second;
    }
    frame.push_back('\n');
    {
      std::lock_guard lock(side->mutex);
      if (side->fd < 0) return;
      if (!side->io_owned && side->direct) {
        // Nothing ahead of this frame: write it here, as much as the socket takes.
        const ssize_t n = ::send(side->fd, frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n == static_cast<ssize_t>(frame.size())) return;
        // The rest, or all of it after an error, goes to the io thread:
        // its write meets the same error and tears the connection down.
        if (n > 0) frame.erase(0, static_cast<std::size_t>(n));
      }
      side->unsent_bytes += frame.size();
      side->queued.push_back(std::move(frame));
      if (side->io_owned) return;  // the io thread takes it after what it is writing
      side->io_owned = true;
    }
    asio::post(io_, [this, conn] {
      auto it = connections_.find(conn);
      if (it != connections_.end()) flush(it->second);
    });
  }

  void close(ConnectionId conn) override {
    asio::post(io_, [this, conn] {
      auto it = connections_.find(conn);
      if (it == connections_.end()) return;
      it->second->close_requested = true;
      flush(it->second);
    });
  }

  void trust_as_peer(ConnectionId conn) override {
    on_io_thread(conn, [this](const std::shared_ptr<Connection>& c) { logged_in(c, true); });
  }

  void mark_authenticated(ConnectionId conn) override {
    on_io_thread(conn, [this](const std::shared_ptr<Connection>& c) { logged_in(c, false); });
  }

  bool output_backlogged(ConnectionId conn) override {
    const auto side = write_side(conn);
    if (!side) return false;
    std::lock_guard lock(side->mutex);
    if (side->fd < 0 || side->unsent_bytes <= side->output_bound) return false;
    side->drain_wanted = true;  // output_written() calls on_output_drained() once under the bound
    return true;
  }

  void send_to_peer(NodeId peer, std::string frame) override {
    const auto it = links_.find(peer);
    if (it == links_.end()) {
      DISTDB_LOG(debug) << "frame for node " << peer << " dropped: not a configured peer";
      return;
    }
    if (frame.size() > config_.limits.max_peer_message_bytes) {
      DISTDB_LOG(warn) << "frame of " << frame.size() << " bytes for peer " << peer
                       << " dropped: over limits.max_peer_message_bytes (" << config_.limits.max_peer_message_bytes
                       << ")";
      return;
    }
    frame.push_back('\n');
    const std::shared_ptr<PeerLink>& link = it->second;
    bool post = false;
    bool started_dropping = false;
    {
      std::lock_guard lock(peers_mutex_);
      if (peers_stopped_) return;
      if (link->direct_fd >= 0 && link->queued.empty()) {
        const ssize_t n = ::send(link->direct_fd, frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n == static_cast<ssize_t>(frame.size())) return;
        // The rest goes first in the queue, for the io thread; after an
        // error, its write fails the same way and the link reconnects.
        if (n > 0) frame.erase(0, static_cast<std::size_t>(n));
        link->direct_fd = -1;
      }
      link->queued_bytes += frame.size();
      link->queued.push_back(std::move(frame));
      // The newest frame always stays, whatever its size.
      while (link->queued.size() > kMaxPeerQueueFrames ||
             (link->queued.size() > 1 && link->queued_bytes > peer_queue_bytes_)) {
        link->queued_bytes -= link->queued.front().size();
        link->queued.pop_front();
        started_dropping = link->dropped++ == 0;
      }
      if (peers_started_ && !link->kick_posted) {
        link->kick_posted = true;
        post = true;
      }
    }
    if (started_dropping) {
      DISTDB_LOG(debug) << "peer " << peer << ": queue full, dropping the oldest frames";
    }
    if (post) asio::post(io_, [this, link] { kick(link); });
  }

  std::uint16_t local_port() const override { return port_; }

  bool is_tls(ConnectionId conn) const override {
    const auto side = write_side(conn);
    if (!side) return false;
    std::lock_guard lock(side->mutex);
    return side->tls && side->fd >= 0;
  }

  std::optional<std::string> verified_peer_name(ConnectionId conn) const override {
    const auto side = write_side(conn);
    if (!side) return std::nullopt;
    std::lock_guard lock(side->mutex);
    if (side->fd < 0) return std::nullopt;
    return side->verified_name;
  }

 private:
  std::shared_ptr<WriteSide> write_side(ConnectionId conn) const {
    std::lock_guard lock(write_sides_mutex_);
    const auto it = write_sides_.find(conn);
    return it == write_sides_.end() ? nullptr : it->second;
  }

  // Runs `f` on the open connection `conn` on the io thread: at once when
  // called there (from a handler callback), so that it holds before the
  // connection's next bytes are read, as a login pipelined with the next
  // request needs; otherwise posted.
  template <class F>
  void on_io_thread(ConnectionId conn, F f) {
    auto run = [this, conn, f = std::move(f)] {
      const auto it = connections_.find(conn);
      if (it != connections_.end()) f(it->second);
    };
    if (io_.get_executor().running_in_this_thread()) {
      run();
    } else {
      asio::post(io_, std::move(run));
    }
  }

  // `conn` logged in, or showed it is a member's (`as_peer`): the limits of
  // connections not logged in stop applying to it.
  void logged_in(const std::shared_ptr<Connection>& conn, bool as_peer) {
    conn->peer = conn->peer || as_peer;
    conn->splitter.set_max_frame_bytes(
        conn->peer ? std::max(config_.limits.max_message_bytes, config_.limits.max_peer_message_bytes)
                   : config_.limits.max_message_bytes);
    if (conn->authenticated) return;
    conn->authenticated = true;
    SourceCount& from = sources_.at(conn->source);
    --from.unauthenticated;
    --unauthenticated_;
    conn->login_timer.cancel();
    bool under = false;
    {
      WriteSide& side = *conn->write_side;
      std::lock_guard lock(side.mutex);
      side.output_bound = config_.limits.max_output_bytes_per_connection;
      under = side.unsent_bytes <= side.output_bound;
    }
    if (under) resume_reading(conn);
  }

  // ------------------------------------------------------------ peer links
  // Everything below runs on the io thread.

  void kick(const std::shared_ptr<PeerLink>& link) {
    {
      std::lock_guard lock(peers_mutex_);
      link->kick_posted = false;
    }
    service(link);
  }

  // Moves the link forward: writes what is queued when connected, connects
  // when idle with something to send; otherwise the frames wait.
  void service(const std::shared_ptr<PeerLink>& link) {
    if (stopping_) return;
    if (link->state == PeerLink::State::connected) {
      if (!link->write_in_flight) write_queued(link);
    } else if (link->state == PeerLink::State::idle) {
      bool pending = false;
      {
        std::lock_guard lock(peers_mutex_);
        pending = !link->queued.empty();
      }
      if (pending) begin_connect(link);
    }
  }

  void begin_connect(const std::shared_ptr<PeerLink>& link) {
    link->state = PeerLink::State::connecting;
    const std::uint64_t gen = ++link->generation;
    arm_deadline(link, kConnectTimeout, "connection timed out");
    asio::error_code ec;
    const auto address = asio::ip::make_address(link->config.ip, ec);
    if (!ec) {
      connect_to(link, gen, {tcp::endpoint(address, link->config.port)});
      return;
    }
    // A host name: resolve it (again at every attempt: it may move).
    link->resolver.async_resolve(
        link->config.ip, std::to_string(link->config.port),
        [this, link, gen](asio::error_code resolve_ec, const tcp::resolver::results_type& results) {
          if (stopping_ || gen != link->generation) return;
          if (resolve_ec || results.empty()) {
            on_connect_failed(link, "cannot resolve '" + link->config.ip + "': " +
                                        (resolve_ec ? resolve_ec.message() : std::string("no address")));
            return;
          }
          std::vector<tcp::endpoint> endpoints;
          for (const auto& entry : results) endpoints.push_back(entry.endpoint());
          connect_to(link, gen, std::move(endpoints));
        });
  }

  void connect_to(const std::shared_ptr<PeerLink>& link, std::uint64_t gen,
                  std::vector<tcp::endpoint> endpoints) {
    asio::async_connect(link->socket, endpoints,
                        [this, link, gen](asio::error_code ec, const tcp::endpoint& endpoint) {
                          if (stopping_ || gen != link->generation) return;
                          if (ec) {
                            on_connect_failed(link, ec.message());
                            return;
                          }
                          on_connected(link, gen, endpoint);
                        });
  }

  void on_connected(const std::shared_ptr<PeerLink>& link, std::uint64_t gen, const tcp::endpoint& endpoint) {
    asio::error_code ignored;
    link->socket.set_option(tcp::no_delay(true), ignored);
    if (peer_tls_) {
      handshake(link, gen, endpoint);
      return;
    }
    established(link, gen, endpoint);
  }

  // TLS to the peer, within the connect deadline still armed: its
  // certificate must chain to security.tls.ca and be valid for its address.
  void handshake(const std::shared_ptr<PeerLink>& link, std::uint64_t gen, const tcp::endpoint& endpoint) {
    auto stream = std::make_shared<TlsStream>(std::move(link->socket), *peer_tls_);
    link->tls = stream;
    if (!tls::expect_name(stream->native_handle(), link->config.ip)) {
      on_tls_failed(link, "cannot check a certificate against the name '" + link->config.ip + "'");
      return;
    }
    stream->async_handshake(asio::ssl::stream_base::client,
                            [this, link, gen, endpoint, stream](asio::error_code ec) {
                              if (stopping_ || gen != link->generation) return;
                              if (ec) {
                                on_tls_failed(link, describe_tls(ec, stream.get()));
                                return;
                              }
                              established(link, gen, endpoint);
                            });
  }

  void established(const std::shared_ptr<PeerLink>& link, std::uint64_t gen, const tcp::endpoint& endpoint) {
    disarm_deadline(link);
    link->state = PeerLink::State::connected;
    link->connected_at = std::chrono::steady_clock::now();
    DISTDB_LOG(debug) << "peer " << link->config.id << ": connected to " << endpoint
                      << (link->tls ? " (TLS)" : "");
    drain(link, gen);
    service(link);
  }

  // A certificate the peer does not accept, or one of its that does not
  // verify, will not fix itself: said once at warn (until the link holds
  // again), then at debug with every retry.
  void on_tls_failed(const std::shared_ptr<PeerLink>& link, const std::string& why) {
    if (!link->tls_failure_logged) {
      link->tls_failure_logged = true;
      DISTDB_LOG(warn) << "[!] peer " << link->config.id << ": TLS handshake with " << link->config.ip << ":"
                       << link->config.port << " failed: " << why << " (retrying)";
    }
    on_connect_failed(link, "TLS handshake failed: " + why);
  }

  // The peer never answers on this connection; reading keeps its socket
  // from filling should it ever do, and notices the close at once.
  // On TLS the reads also take in what the protocol itself sends (an alert
  // from a peer refusing this node's certificate ends the link here).
  void drain(const std::shared_ptr<PeerLink>& link, std::uint64_t gen) {
    auto on_read = [this, link, gen, stream = link->tls](asio::error_code ec, std::size_t) {
      if (stopping_ || gen != link->generation) return;
      if (ec) {
        if (end_of_stream(ec)) {
          on_link_lost(link, "closed by the peer");
        } else if (ec.category() == asio::error::get_ssl_category()) {
          const std::string why = describe_tls(ec, stream.get());
          if (!link->tls_failure_logged) {
            link->tls_failure_logged = true;
            DISTDB_LOG(warn) << "[!] peer " << link->config.id << ": TLS link to " << link->config.ip << ":"
                             << link->config.port << " failed: " << why << " (retrying)";
          }
          on_link_lost(link, "TLS: " + why);
        } else {
          on_link_lost(link, ec.message());
        }
        return;
      }
      drain(link, gen);
    };
    if (link->tls) {
      link->tls->async_read_some(asio::buffer(link->drain_buffer), std::move(on_read));
    } else {
      link->socket.async_read_some(asio::buffer(link->drain_buffer), std::move(on_read));
    }
  }

  // Writes what is queued (up to kMaxPeerWriteBytes) in one gathered write.
  // A batch whose write fails is dropped, not retried: part of it may have
  // arrived, and the peer must never see a frame twice.
  void write_queued(const std::shared_ptr<PeerLink>& link) {
    auto batch = std::make_shared<std::vector<std::string>>();
    std::uint64_t dropped = 0;
    {
      std::lock_guard lock(peers_mutex_);
      std::size_t batch_bytes = 0;
      while (!link->queued.empty() &&
             (batch->empty() || batch_bytes + link->queued.front().size() <= kMaxPeerWriteBytes)) {
        batch_bytes += link->queued.front().size();
        link->queued_bytes -= link->queued.front().size();
        batch->push_back(std::move(link->queued.front()));
        link->queued.pop_front();
      }
      dropped = std::exchange(link->dropped, 0);
      // Idle and connected: the next frame may be written by its sender
      // (never into an SSL stream: that is the io thread's alone).
      link->direct_fd = batch->empty() && !link->tls ? link->socket.native_handle() : -1;
    }
    if (dropped > 0) {
      DISTDB_LOG(debug) << "peer " << link->config.id << ": " << dropped << " frames dropped (queue full)";
    }
    if (batch->empty()) return;
    std::vector<asio::const_buffer> buffers;
    buffers.reserve(batch->size());
    for (const auto& frame : *batch) buffers.emplace_back(asio::buffer(frame));
    link->write_in_flight = true;
    // A frame not completed within the peer's read timeout would be refused
    // by it anyway: a write stalled that long means the link is dead.
    arm_deadline(link, Millis(std::max(config_.timeouts.read_timeout_ms, 100)), "write stalled");
    const std::uint64_t gen = link->generation;
    auto on_written = [this, link, gen, batch, stream = link->tls](asio::error_code ec, std::size_t) {
      if (stopping_ || gen != link->generation) return;
      link->write_in_flight = false;
      disarm_deadline(link);
      if (ec) {
        on_link_lost(link, stream ? describe_tls(ec, stream.get()) : ec.message());
        return;
      }
      service(link);
    };
    if (link->tls) {
      asio::async_write(*link->tls, buffers, std::move(on_written));
    } else {
      asio::async_write(link->socket, buffers, std::move(on_written));
    }
  }

  // One deadline per link at a time; `deadline_armed` tells a stale expiry
  // (already queued when the timer was re-armed) from the current one.
  void arm_deadline(const std::shared_ptr<PeerLink>& link, Millis after, const char* what) {
    const std::uint64_t armed = ++link->deadline_armed;
    const std::uint64_t gen = link->generation;
    link->deadline.expires_after(after);
    link->deadline.async_wait([this, link, gen, armed, what](asio::error_code ec) {
      if (ec || stopping_ || gen != link->generation || armed != link->deadline_armed) return;
      if (link->state == PeerLink::State::connecting) {
        on_connect_failed(link, what);
      } else if (link->state == PeerLink::State::connected) {
        on_link_lost(link, what);
      }
    });
  }

  void disarm_deadline(const std::shared_ptr<PeerLink>& link) {
    ++link->deadline_armed;
    link->deadline.cancel();
  }

  void on_connect_failed(const std::shared_ptr<PeerLink>& link, const std::string& why) {
    DISTDB_LOG(debug) << "peer " << link->config.id << ": cannot connect to " << link->config.ip << ":"
                      << link->config.port << ": " << why << "; retrying in " << link->backoff.count()
                      << " ms";
    reset_link_socket(*link);
    back_off(link);
  }

  void on_link_lost(const std::shared_ptr<PeerLink>& link, const std::string& why) {
    DISTDB_LOG(debug) << "peer " << link->config.id << ": disconnected: " << why;
    reset_link_socket(*link);
    // A connection that held for a while was healthy: reconnect at once (if
    // there is something to send). One that dropped right away may be
    // refused again: keep backing off, so that it cannot loop.
    if (std::chrono::steady_clock::now() - link->connected_at >= kMaxBackoff) {
      link->tls_failure_logged = false;
      link->backoff = kInitialBackoff;
      link->state = PeerLink::State::idle;
      service(link);
    } else {
      back_off(link);
    }
  }

  void back_off(const std::shared_ptr<PeerLink>& link) {
    link->state = PeerLink::State::backing_off;
    const std::uint64_t gen = link->generation;
    link->retry_timer.expires_after(link->backoff);
    link->retry_timer.async_wait([this, link, gen](asio::error_code ec) {
      if (ec || stopping_ || gen != link->generation || link->state != PeerLink::State::backing_off) return;
      link->state = PeerLink::State::idle;
      service(link);
    });
    link->backoff = std::min(link->backoff * 2, kMaxBackoff);
  }

  // Abandons the link's current socket: every handler still pending for it
  // sees a newer generation and returns.
  void reset_link_socket(PeerLink& link) {
    {
      std::lock_guard lock(peers_mutex_);
      link.direct_fd = -1;  // no sender writes into the descriptor once closed (and maybe reused)
    }
    ++link.generation;
    ++link.deadline_armed;
    link.write_in_flight = false;
    asio::error_code ignored;
    link.resolver.cancel();
    link.deadline.cancel();
    if (link.tls) {
      // Pending handlers hold the stream until they have run.
      link.tls->next_layer().close(ignored);
      link.tls.reset();
    }
    link.socket.close(ignored);
  }

  // ------------------------------------------------------------ inbound
  void accept_next() {
    acceptor_.async_accept([this](asio::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
        std::uint64_t held_back = 0;
        if (accept_failures_.due(held_back)) {
          DISTDB_LOG(warn) << "accept failed: " << ec.message()
                           << (held_back > 0
                                   ? " (" + std::to_string(held_back) + " more failures since the last line)"
                                   : std::string());
        }
        const bool exhausted = ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
                               ec == asio::error::no_memory ||
                               ec == asio::error_code(ENFILE, asio::system_category());
        if (!exhausted) {
          accept_next();
          return;
        }
        accept_retry_.expires_after(kAcceptRetry);
        accept_retry_.async_wait([this](asio::error_code wait_ec) {
          if (!wait_ec && !stopping_) accept_next();
        });
        return;
      }
      on_accept(std::move(socket));
      accept_next();
    });
  }

  void on_accept(tcp::socket socket) {
    asio::error_code ec;
    const tcp::endpoint remote = socket.remote_endpoint(ec);
    if (ec) return;  // reset before it was accepted: nothing to count, the socket closes here
    socket.set_option(tcp::no_delay(true), ec);
    const ConnectionId id = next_id_++;
    auto conn = std::make_shared<Connection>(io_, std::move(socket), id,
                                             logins_ ? login_frame_bytes_ : config_.limits.max_message_bytes);
    conn->source = source_address(remote);
    conn->authenticated = !logins_;
    connections_.emplace(id, conn);
    count_in(*conn);
    conn->write_side->fd = conn->socket.native_handle();
    conn->write_side->direct = !server_tls_;
    conn->write_side->output_bound =
        logins_ ? login_output_bytes_ : config_.limits.max_output_bytes_per_connection;
    {
      std::lock_guard lock(write_sides_mutex_);
      write_sides_.emplace(id, conn->write_side);
    }
    // A refused connection stays counted until it is closed, which is as
    // soon as its error is written (a TLS one: its handshake done, within
    // the login and read timeouts): it takes a place only briefly.
    std::optional<Error> refusal;
    if (const auto over = over_limit(*conn)) {
      log_refusal(*conn, *over);
      if (server_tls_ && over->flood) {
        // A handshake costs the node far more than the client; past twice
        // the limit this is no client that went a little over but a flood,
        // and it is not worth one.
        teardown(id);
        return;
      }
      const LimitName& name = kLimitNames[static_cast<std::size_t>(over->limit)];
      refusal = Error(ErrorKind::unavailable,
                      std::string(name.reason) + " (" + name.key + " = " + std::to_string(over->value) + ")");
    }
    if (!conn->authenticated) arm_login_timer(conn);
    if (server_tls_) {
      conn->refusal = std::move(refusal);
      arm_idle_timer(conn);
      arm_read_timer(conn);  // the handshake must be over within the read timeout
      sniff(conn);
      return;
    }
    if (refusal) {
      refuse(conn, *refusal);
      return;
    }
    arm_idle_timer(conn);
    read_next(conn);
  }

  void count_in(const Connection& conn) {
    SourceCount& from = sources_[conn.source];
    ++from.open;
    if (!conn.authenticated) {
      ++from.unauthenticated;
      ++unauthenticated_;
    }
  }

  // Once per connection, from teardown().
  void count_out(const Connection& conn) {
    const auto it = sources_.find(conn.source);
    --it->second.open;
    if (!conn.authenticated) {
      --it->second.unauthenticated;
      --unauthenticated_;
    }
    if (it->second.open == 0) sources_.erase(it);  // open >= unauthenticated: both are 0
  }

  // The first limit `conn` (counted already) is over, if any. A limit per
  // source of 0 is none.
  std::optional<Refusal> over_limit(const Connection& conn) const {
    const SourceCount& from = sources_.at(conn.source);
    const LimitConfig& l = config_.limits;
    const bool pending = !conn.authenticated;
    const struct {
      Limit limit;
      int count;
      int value;
    } checks[] = {
        {Limit::per_source, from.open, l.max_connections_per_source},
        {Limit::unauthenticated_per_source, pending ? from.unauthenticated : 0,
         l.max_unauthenticated_per_source},
        {Limit::unauthenticated, pending ? unauthenticated_ : 0, l.max_unauthenticated_connections},
        {Limit::total, static_cast<int>(connections_.size()), l.max_connections},
    };
    for (const auto& c : checks) {
      if (c.value > 0 && c.count > c.value) return Refusal{c.limit, c.value, c.count > 2 * c.value};
    }
    return std::nullopt;
  }

  void log_refusal(const Connection& conn, const Refusal& over) {
    const auto index = static_cast<std::size_t>(over.limit);
    std::uint64_t held_back = 0;
    if (!refusal_logs_[index].due(held_back)) return;
    DISTDB_LOG(warn) << "[!] refusing a connection from " << conn.source << ": " << kLimitNames[index].key
                     << " (" << over.value << ") reached"
                     << (held_back > 0 ? "; " + std::to_string(held_back) +
                                             " more refused for this limit since the last such line"
                                       : std::string());
  }

  // No more input is read from `conn`; the handler answers `why` and closes it.
  void refuse(const std::shared_ptr<Connection>& conn, const Error& why) {
    conn->reading = false;
    disarm_read_timer(conn);
    handler_->on_input_end(conn->id, &why);
  }

  // Waits for the first byte of a connection to the TLS port.
  void sniff(const std::shared_ptr<Connection>& conn) {
    conn->phase = Connection::Phase::sniffing;
    conn->socket.async_wait(tcp::socket::wait_read, [this, conn](asio::error_code ec) {
      if (conn->closed) return;
      if (ec) {
        teardown(conn->id);
        return;
      }
      unsigned char first = 0;
      asio::error_code peek_ec;
      conn->socket.non_blocking(true, peek_ec);
      const std::size_t n =
          peek_ec ? 0 : conn->socket.receive(asio::buffer(&first, 1), tcp::socket::message_peek, peek_ec);
      if (peek_ec == asio::error::would_block || peek_ec == asio::error::try_again) {
        sniff(conn);
        return;
      }
      if (peek_ec || n == 0) {
        DISTDB_LOG(debug) << "connection " << conn->id << ": closed before its TLS handshake";
        teardown(conn->id);
        return;
      }
      if (first != kTlsHandshakeRecord) {
        refuse_plaintext(conn);
        return;
      }
      start_handshake(conn);
    });
  }

  // Not TLS (the prototype's client, or distdb-cli without --tls): one error
  // reply it can read, in plaintext, then the connection closes. What the
  // client already sent is read and dropped first, so that the close is an
  // orderly one and does not reset the reply away.
  void refuse_plaintext(const std::shared_ptr<Connection>& conn) {
    DISTDB_LOG(debug) << "connection " << conn->id << ": not a TLS client; refused";
    conn->phase = Connection::Phase::open;
    std::array<char, 4096> scratch{};
    asio::error_code ec;
    for (std::size_t dropped = 0; !ec && dropped < 64 * 1024;) {
      dropped += conn->socket.receive(asio::buffer(scratch), 0, ec);
    }
    refuse(conn, Error(ErrorKind::unavailable, "this node accepts TLS connections only"));
  }

  void start_handshake(const std::shared_ptr<Connection>& conn) {
    conn->phase = Connection::Phase::handshaking;
    conn->tls = std::make_unique<TlsStream>(std::move(conn->socket), *server_tls_);
    conn->tls->async_handshake(asio::ssl::stream_base::server, [this, conn](asio::error_code ec) {
      if (conn->closed) return;
      if (ec) {
        DISTDB_LOG(debug) << "connection " << conn->id
                          << ": TLS handshake failed: " << describe_tls(ec, conn->tls.get());
        teardown(conn->id);
        return;
      }
      conn->phase = Connection::Phase::open;
      disarm_read_timer(conn);
      auto name = tls::verified_subject_cn(conn->tls->native_handle());
      DISTDB_LOG(debug) << "connection " << conn->id << ": TLS established"
                        << (name ? ", client certificate of '" + *name + "'" : std::string());
      {
        std::lock_guard lock(conn->write_side->mutex);
        conn->write_side->tls = true;
        conn->write_side->verified_name = std::move(name);
      }
      arm_idle_timer(conn);
      if (conn->refusal) {
        refuse(conn, *conn->refusal);
        return;
      }
      read_next(conn);
      flush(conn);  // nothing is expected yet; should anything be queued, it goes now
    });
  }

  void read_next(const std::shared_ptr<Connection>& conn) {
    auto on_read = [this, conn](asio::error_code ec, std::size_t n) {
      if (conn->closed || !conn->reading) return;
      if (ec) {
        if (end_of_stream(ec)) {
          // The client has finished sending (maybe a half-close after its
          // request): replies may still be owed, so the socket stays open
          // until the handler closes it.
          conn->reading = false;
          disarm_read_timer(conn);
          handler_->on_input_end(conn->id, nullptr);
          return;
        }
        if (conn->tls && ec.category() == asio::error::get_ssl_category()) {
          DISTDB_LOG(debug) << "connection " << conn->id << ": TLS: " << describe_tls(ec, conn->tls.get());
        }
        if (ec != asio::error::operation_aborted) teardown(conn->id);
        return;
      }
      on_bytes(conn, std::string_view(conn->read_buffer.data(), n));
    };
    if (conn->tls) {
      conn->tls->async_read_some(asio::buffer(conn->read_buffer), std::move(on_read));
    } else {
      conn->socket.async_read_some(asio::buffer(conn->read_buffer), std::move(on_read));
    }
  }

  void on_bytes(const std::shared_ptr<Connection>& conn, std::string_view bytes) {
    arm_idle_timer(conn);
    Status st;
    while (st && !bytes.empty()) {
      // Before a login, fed no more than the frame limit at a time, and the
      // frames of each piece delivered before the next is fed: a login that
      // one piece completes (a SCRAM one is answered at once, on this
      // thread) lifts the limit for a larger request pipelined right behind
      // it, even within the same read.
      const std::size_t n = conn->authenticated ? bytes.size() : std::min(bytes.size(), login_frame_bytes_);
      std::vector<std::string> frames;
      st = conn->splitter.feed(bytes.substr(0, n), frames);
      bytes.remove_prefix(n);
      for (auto& frame : frames) {
        handler_->on_frame(conn->id, std::move(frame));
        if (conn->closed) return;
      }
    }
    if (!st) {
      conn->reading = false;
      disarm_read_timer(conn);
      Error error = st.error();
      if (error.kind == ErrorKind::message_too_large && !conn->authenticated &&
          login_frame_bytes_ < config_.limits.max_message_bytes) {
        error.message += " before login (limits.max_unauthenticated_message_bytes); log in first";
      }
      DISTDB_LOG(debug) << "connection " << conn->id << ": " << error.message;
      handler_->on_input_end(conn->id, &error);
      return;
    }
    if (conn->splitter.mid_frame()) {
      arm_read_timer(conn);
    } else {
      disarm_read_timer(conn);
    }
    if (output_over_bound(*conn)) {
      // Its client does not read its replies: read no more of its requests
      // until it has (output_written() resumes).
      conn->read_paused = true;
      return;
    }
    read_next(conn);
  }

  bool output_over_bound(const Connection& conn) const {
    WriteSide& side = *conn.write_side;
    std::lock_guard lock(side.mutex);
    return side.unsent_bytes > side.output_bound;
  }

  void resume_reading(const std::shared_ptr<Connection>& conn) {
    if (!conn->read_paused || !conn->reading || conn->closed) return;
    conn->read_paused = false;
    read_next(conn);
  }

  // Stops reading `conn` and hands `why` to the handler, which answers and
  // closes: the pending read is cancelled without closing the socket, which
  // still carries the error reply.
  void end_input(const std::shared_ptr<Connection>& conn, const Error& why) {
    conn->reading = false;
    conn->read_paused = false;
    disarm_read_timer(conn);
    asio::error_code ignored;
    conn->lowest().shutdown(tcp::socket::shutdown_receive, ignored);
    handler_->on_input_end(conn->id, &why);
  }

  // The login deadline, from the accept: a TLS handshake counts against it.
  // At the first expiry the handler is told (it answers with the error, then
  // closes); a connection still open at the second (its client reads
  // nothing, so the error cannot be written), or one that could not be told
  // (no TLS yet, or its input already over), is closed.
  void arm_login_timer(const std::shared_ptr<Connection>& conn) {
    conn->login_timer.expires_after(Millis(config_.timeouts.login_timeout_ms));
    conn->login_timer.async_wait([this, conn](asio::error_code ec) {
      if (ec || conn->closed || conn->authenticated) return;
      const std::string within =
          "not logged in within " + std::to_string(config_.timeouts.login_timeout_ms) + " ms";
      if (conn->login_deadline_passed || !conn->reading || conn->phase != Connection::Phase::open) {
        DISTDB_LOG(debug) << "connection " << conn->id << ": " << within << "; closed";
        teardown(conn->id);
        return;
      }
      DISTDB_LOG(debug) << "connection " << conn->id << ": " << within;
      conn->login_deadline_passed = true;
      end_input(conn, Error(ErrorKind::unauthenticated, within + " (timeouts.login_timeout_ms)"));
      if (!conn->closed) arm_login_timer(conn);
    });
  }

  void arm_idle_timer(const std::shared_ptr<Connection>& conn) {
    conn->idle_timer.expires_after(Millis(config_.timeouts.idle_timeout_ms));
    conn->idle_timer.async_wait([this, conn](asio::error_code ec) {
      if (ec || conn->closed) return;
      DISTDB_LOG(debug) << "connection " << conn->id << ": idle timeout";
      teardown(conn->id);
    });
  }

  void arm_read_timer(const std::shared_ptr<Connection>& conn) {
    if (conn->read_timer_armed) return;  // the deadline counts from the frame's first byte
    conn->read_timer_armed = true;
    conn->read_timer.expires_after(Millis(config_.timeouts.read_timeout_ms));
    conn->read_timer.async_wait([this, conn](asio::error_code ec) {
      if (ec || conn->closed || !conn->read_timer_armed) return;
      if (conn->phase != Connection::Phase::open) {
        // No TLS yet, so no way to send an error: just close.
        DISTDB_LOG(debug) << "connection " << conn->id << ": TLS handshake not completed within "
                          << config_.timeouts.read_timeout_ms << " ms";
        teardown(conn->id);
        return;
      }
      end_input(conn,
                Error(ErrorKind::timeout, "message not completed within " +
                                              std::to_string(config_.timeouts.read_timeout_ms) + " ms"));
    });
  }

  void disarm_read_timer(const std::shared_ptr<Connection>& conn) {
    if (!conn->read_timer_armed) return;
    conn->read_timer_armed = false;
    conn->read_timer.cancel();
  }

  // Starts writing whatever is queued, all of it in one gathered write, or
  // closes the connection when asked to and nothing is left to write.
  void flush(const std::shared_ptr<Connection>& conn) {
    // (Nothing is sent before a TLS handshake completes: no frame has been
    // delivered yet, so the handler owes no reply.)
    if (conn->closed || !conn->writing.empty() || conn->phase != Connection::Phase::open) return;
    {
      WriteSide& side = *conn->write_side;
      std::lock_guard lock(side.mutex);
      while (!side.queued.empty()) {
        conn->writing_bytes += side.queued.front().size();
        conn->writing.push_back(std::move(side.queued.front()));
        side.queued.pop_front();
      }
      // With nothing left, send() may write directly again.
      side.io_owned = !conn->writing.empty();
    }
    if (conn->writing.empty()) {
      if (conn->close_requested) teardown(conn->id);
      return;
    }
    std::vector<asio::const_buffer> buffers;
    buffers.reserve(conn->writing.size());
    for (const auto& f : conn->writing) buffers.emplace_back(asio::buffer(f));
    auto on_written = [this, conn](asio::error_code ec, std::size_t) {
      conn->writing.clear();
      const std::size_t written = std::exchange(conn->writing_bytes, 0);
      if (conn->closed) return;
      if (ec) {
        teardown(conn->id);
        return;
      }
      arm_idle_timer(conn);
      output_written(conn, written);
      flush(conn);
    };
    if (conn->tls) {
      asio::async_write(*conn->tls, buffers, std::move(on_written));
    } else {
      asio::async_write(conn->socket, buffers, std::move(on_written));
    }
  }

  // Replies were written. Back under the bound, the connection is read
  // again, and a handler that asked (output_backlogged()) hears that the
  // requests it held back may go on. (Its sends meanwhile join the queue:
  // io_owned is still set, and flush() takes them next.)
  void output_written(const std::shared_ptr<Connection>& conn, std::size_t written) {
    bool under = false;
    bool drained = false;
    {
      WriteSide& side = *conn->write_side;
      std::lock_guard lock(side.mutex);
      side.unsent_bytes -= written;
      under = side.unsent_bytes <= side.output_bound;
      drained = under && std::exchange(side.drain_wanted, false);
    }
    if (!under) return;
    resume_reading(conn);
    if (drained) handler_->on_output_drained(conn->id);
  }

  void teardown(ConnectionId id) {
    auto it = connections_.find(id);
    if (it == connections_.end()) return;
    auto conn = it->second;
    connections_.erase(it);
    conn->closed = true;
    count_out(*conn);
    {
      std::lock_guard lock(write_sides_mutex_);
      write_sides_.erase(id);
    }
    {
      // Waits for a send() writing on another thread; none writes after this.
      std::lock_guard lock(conn->write_side->mutex);
      conn->write_side->fd = -1;
      conn->write_side->queued.clear();
      conn->write_side->unsent_bytes = 0;
      conn->write_side->drain_wanted = false;
    }
    asio::error_code ignored;
    conn->idle_timer.cancel();
    conn->read_timer.cancel();
    conn->login_timer.cancel();
    conn->lowest().shutdown(tcp::socket::shutdown_both, ignored);
    conn->lowest().close(ignored);
    handler_->on_closed(id);
  }

  Config config_;
  // Before io_: the streams that handlers still pending at its destruction
  // hold were made from these.
  std::optional<asio::ssl::context> server_tls_;  // the port's, with security.tls
  std::optional<asio::ssl::context> peer_tls_;    // the links to peers', with security.tls and peers
  asio::io_context io_;
  tcp::acceptor acceptor_;
  asio::steady_timer accept_retry_;  // the pause after an accept failed for want of resources
  RateLimitedLog accept_failures_;
  mutable std::mutex write_sides_mutex_;
  std::unordered_map<ConnectionId, std::shared_ptr<WriteSide>> write_sides_;  // open connections' write sides
  std::thread thread_;
  TransportHandler* handler_ = nullptr;
  std::unordered_map<ConnectionId, std::shared_ptr<Connection>> connections_;
  ConnectionId next_id_ = 1;

  // Logins, and the limits of connections per source and not logged in
  // (the io thread only). A connection counts from its accept to its
  // teardown, refused ones included.
  struct SourceCount {
    int open = 0;
    int unauthenticated = 0;
  };
  const bool logins_;                     // client_auth is not "off": connections start not logged in
  const std::size_t login_frame_bytes_;   // the frame limit until then
  const std::size_t login_output_bytes_;  // the bound of unsent replies until then
  std::map<asio::ip::address, SourceCount> sources_;  // addresses with a connection open
  int unauthenticated_ = 0;
  std::array<RateLimitedLog, kLimits> refusal_logs_;
  std::uint16_t port_ = 0;

  std::unordered_map<NodeId, std::shared_ptr<PeerLink>> links_;  // fixed once constructed
  std::size_t peer_queue_bytes_ = 0;
  std::mutex peers_mutex_;
  bool peers_started_ = false;  // guarded by peers_mutex_: kicks may be posted
  bool peers_stopped_ = false;  // guarded by peers_mutex_: frames are dropped
  bool stopping_ = false;       // io thread: stop() has begun
};

}  // namespace

std::unique_ptr<Transport> make_tcp_transport(const Config& config) {
  return std::make_unique<TcpTransport>(config);
}

asio::io_context* network_loop(Transport& transport) {
  auto* tcp = dynamic_cast<TcpTransport*>(&transport);
  return tcp != nullptr ? &tcp->loop() : nullptr;
}

}  // namespace distdb
