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
// Protection of the node against its clients lives here:
//   - a frame over limits.max_message_bytes, or garbage between frames,
//     ends the connection after one error reply (the stream cannot be resynced);
//   - a frame begun but not finished within timeouts.read_timeout_ms (slow
//     or half-open clients) ends the connection the same way;
//   - a connection silent for timeouts.idle_timeout_ms is closed;
//   - past limits.max_connections, a new connection gets an error reply and
//     is closed, so the ones already served are not starved.
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
#include <cerrno>
#include <array>
#include <chrono>
#include <deque>
#include <limits>
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
Transport::~Transport() = default;
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

class TcpTransport;

// What other threads may touch of a connection (see the top), and what
// they may ask about it.
struct WriteSide {
  std::mutex mutex;
  int fd = -1;                     // -1 once the connection is closing or closed
  bool direct = true;              // send() may write to fd itself (never on a TLS connection)
  bool io_owned = false;           // the io thread has frames to write: send() must queue behind them
  std::deque<std::string> queued;  // frames (newline included) waiting for the io thread
  bool tls = false;                // the TLS handshake completed
  std::optional<std::string> verified_name;  // the CN of the client's verified certificate
};

struct Connection {
  Connection(asio::io_context& io, tcp::socket s, ConnectionId conn_id, std::size_t max_frame)
      : id(conn_id), socket(std::move(s)), splitter(max_frame), idle_timer(io), read_timer(io) {}

  // Where a connection to a TLS port stands: its first byte not yet seen,
  // then its handshake; `open` carries frames (and is where plaintext
  // connections start).
  enum class Phase { sniffing, handshaking, open };

  ConnectionId id;
  tcp::socket socket;              // the connection, until a TLS handshake begins
  std::unique_ptr<TlsStream> tls;  // from then on, the stream (owning the socket)
  Phase phase = Phase::open;
  bool refuse_after_handshake = false;  // over max_connections on a TLS port
  wire::FrameSplitter splitter;
  std::array<char, 64 * 1024> read_buffer{};
  std::shared_ptr<WriteSide> write_side = std::make_shared<WriteSide>();
  std::vector<std::string> writing; // frames handed to the in-flight async_write
  bool reading = true;              // false once input ended or the stream broke
  bool close_requested = false;     // close once everything queued is written
  bool closed = false;
  asio::steady_timer idle_timer;
  asio::steady_timer read_timer;
  bool read_timer_armed = false;

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
  explicit TcpTransport(const Config& config) : config_(config), acceptor_(io_) {
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
    asio::post(io_, [this, conn] {
      auto it = connections_.find(conn);
      if (it == connections_.end()) return;
      it->second->splitter.set_max_frame_bytes(
          std::max(config_.limits.max_message_bytes, config_.limits.max_peer_message_bytes));
    });
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
        DISTDB_LOG(warn) << "accept failed: " << ec.message();
        accept_next();
        return;
      }
      on_accept(std::move(socket));
      accept_next();
    });
  }

  void on_accept(tcp::socket socket) {
    asio::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    const ConnectionId id = next_id_++;
    auto conn = std::make_shared<Connection>(io_, std::move(socket), id, config_.limits.max_message_bytes);
    connections_.emplace(id, conn);
    conn->write_side->fd = conn->socket.native_handle();
    conn->write_side->direct = !server_tls_;
    {
      std::lock_guard lock(write_sides_mutex_);
      write_sides_.emplace(id, conn->write_side);
    }
    const bool over_limit = static_cast<int>(connections_.size()) > config_.limits.max_connections;
    if (over_limit) {
      DISTDB_LOG(warn) << "refusing connection: limit of " << config_.limits.max_connections << " reached";
    }
    if (server_tls_) {
      conn->refuse_after_handshake = over_limit;
      arm_idle_timer(conn);
      arm_read_timer(conn);  // the handshake must be over within the read timeout
      sniff(conn);
      return;
    }
    if (over_limit) {
      refuse(conn, Error(ErrorKind::unavailable, "too many connections"));
      return;
    }
    arm_idle_timer(conn);
    read_next(conn);
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
      if (conn->refuse_after_handshake) {
        refuse(conn, Error(ErrorKind::unavailable, "too many connections"));
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
    std::vector<std::string> frames;
    const Status st = conn->splitter.feed(bytes, frames);
    for (auto& frame : frames) {
      handler_->on_frame(conn->id, std::move(frame));
      if (conn->closed) return;
    }
    if (!st) {
      conn->reading = false;
      disarm_read_timer(conn);
      DISTDB_LOG(debug) << "connection " << conn->id << ": " << st.error().message;
      handler_->on_input_end(conn->id, &st.error());
      return;
    }
    if (conn->splitter.mid_frame()) {
      arm_read_timer(conn);
    } else {
      disarm_read_timer(conn);
    }
    read_next(conn);
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
      conn->reading = false;
      // Stop reading: cancel the pending read without closing the socket,
      // which still carries the error reply.
      asio::error_code ignored;
      conn->lowest().shutdown(tcp::socket::shutdown_receive, ignored);
      const Error error(ErrorKind::timeout, "message not completed within " +
                                                std::to_string(config_.timeouts.read_timeout_ms) + " ms");
      handler_->on_input_end(conn->id, &error);
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
      if (conn->closed) return;
      if (ec) {
        teardown(conn->id);
        return;
      }
      arm_idle_timer(conn);
      flush(conn);
    };
    if (conn->tls) {
      asio::async_write(*conn->tls, buffers, std::move(on_written));
    } else {
      asio::async_write(conn->socket, buffers, std::move(on_written));
    }
  }

  void teardown(ConnectionId id) {
    auto it = connections_.find(id);
    if (it == connections_.end()) return;
    auto conn = it->second;
    connections_.erase(it);
    conn->closed = true;
    {
      std::lock_guard lock(write_sides_mutex_);
      write_sides_.erase(id);
    }
    {
      // Waits for a send() writing on another thread; none writes after this.
      std::lock_guard lock(conn->write_side->mutex);
      conn->write_side->fd = -1;
      conn->write_side->queued.clear();
    }
    asio::error_code ignored;
    conn->idle_timer.cancel();
    conn->read_timer.cancel();
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
  mutable std::mutex write_sides_mutex_;
  std::unordered_map<ConnectionId, std::shared_ptr<WriteSide>> write_sides_;  // open connections' write sides
  std::thread thread_;
  TransportHandler* handler_ = nullptr;
  std::unordered_map<ConnectionId, std::shared_ptr<Connection>> connections_;
  ConnectionId next_id_ = 1;
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
