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
#include <asio.hpp>
#include <sys/socket.h>

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
#include "util/log_internal.hpp"
#include "wire/frame_splitter.hpp"

namespace distdb {

TransportHandler::~TransportHandler() = default;
Transport::~Transport() = default;

namespace {

using asio::ip::tcp;
using Millis = std::chrono::milliseconds;

class TcpTransport;

// What other threads may touch of a connection (see the top).
struct WriteSide {
  std::mutex mutex;
  int fd = -1;                     // -1 once the connection is closing or closed
  bool io_owned = false;           // the io thread has frames to write: send() must queue behind them
  std::deque<std::string> queued;  // frames (newline included) waiting for the io thread
};

struct Connection {
  Connection(asio::io_context& io, tcp::socket s, ConnectionId conn_id, std::size_t max_frame)
      : id(conn_id), socket(std::move(s)), splitter(max_frame), idle_timer(io), read_timer(io) {}

  ConnectionId id;
  tcp::socket socket;
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
  tcp::socket socket;
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

  Status start(TransportHandler& handler) override {
    handler_ = &handler;
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
      if (!side->io_owned) {
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

 private:
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
    disarm_deadline(link);
    link->state = PeerLink::State::connected;
    link->connected_at = std::chrono::steady_clock::now();
    asio::error_code ignored;
    link->socket.set_option(tcp::no_delay(true), ignored);
    DISTDB_LOG(debug) << "peer " << link->config.id << ": connected to " << endpoint;
    drain(link, gen);
    service(link);
  }

  // The peer never answers on this connection; reading keeps its socket
  // from filling should it ever do, and notices the close at once.
  void drain(const std::shared_ptr<PeerLink>& link, std::uint64_t gen) {
    link->socket.async_read_some(
        asio::buffer(link->drain_buffer), [this, link, gen](asio::error_code ec, std::size_t) {
          if (stopping_ || gen != link->generation) return;
          if (ec) {
            on_link_lost(link, ec == asio::error::eof ? "closed by the peer" : ec.message());
            return;
          }
          drain(link, gen);
        });
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
      // Idle and connected: the next frame may be written by its sender.
      link->direct_fd = batch->empty() ? link->socket.native_handle() : -1;
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
    asio::async_write(link->socket, buffers, [this, link, gen, batch](asio::error_code ec, std::size_t) {
      if (stopping_ || gen != link->generation) return;
      link->write_in_flight = false;
      disarm_deadline(link);
      if (ec) {
        on_link_lost(link, ec.message());
        return;
      }
      service(link);
    });
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
    {
      std::lock_guard lock(write_sides_mutex_);
      write_sides_.emplace(id, conn->write_side);
    }
    if (static_cast<int>(connections_.size()) > config_.limits.max_connections) {
      DISTDB_LOG(warn) << "refusing connection: limit of " << config_.limits.max_connections << " reached";
      conn->reading = false;
      const Error error(ErrorKind::unavailable, "too many connections");
      handler_->on_input_end(id, &error);
      return;
    }
    arm_idle_timer(conn);
    read_next(conn);
  }

  void read_next(const std::shared_ptr<Connection>& conn) {
    conn->socket.async_read_some(
        asio::buffer(conn->read_buffer), [this, conn](asio::error_code ec, std::size_t n) {
          if (conn->closed || !conn->reading) return;
          if (ec) {
            if (ec == asio::error::eof) {
              // The client has finished sending (maybe a half-close after its
              // request): replies may still be owed, so the socket stays open
              // until the handler closes it.
              conn->reading = false;
              disarm_read_timer(conn);
              handler_->on_input_end(conn->id, nullptr);
              return;
            }
            if (ec != asio::error::operation_aborted) teardown(conn->id);
            return;
          }
          on_bytes(conn, std::string_view(conn->read_buffer.data(), n));
        });
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
      conn->reading = false;
      // Stop reading: cancel the pending read without closing the socket,
      // which still carries the error reply.
      asio::error_code ignored;
      conn->socket.shutdown(tcp::socket::shutdown_receive, ignored);
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
    if (conn->closed || !conn->writing.empty()) return;
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
    asio::async_write(conn->socket, buffers, [this, conn](asio::error_code ec, std::size_t) {
      conn->writing.clear();
      if (conn->closed) return;
      if (ec) {
        teardown(conn->id);
        return;
      }
      arm_idle_timer(conn);
      flush(conn);
    });
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
    conn->socket.shutdown(tcp::socket::shutdown_both, ignored);
    conn->socket.close(ignored);
    handler_->on_closed(id);
  }

  Config config_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::mutex write_sides_mutex_;
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

}  // namespace distdb
