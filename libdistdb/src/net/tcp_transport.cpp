// The TCP transport, on Asio.
//
// One thread runs the io_context; every connection's state lives on that
// thread and is touched nowhere else, so there are no locks here: calls from
// other threads (send, close, stop) are posted to it.
//
// Protection of the node against its clients lives here:
//   - a frame over limits.max_message_bytes, or garbage between frames,
//     ends the connection after one error reply (the stream cannot be resynced);
//   - a frame begun but not finished within timeouts.read_timeout_ms (slow
//     or half-open clients) ends the connection the same way;
//   - a connection silent for timeouts.idle_timeout_ms is closed;
//   - past limits.max_connections, a new connection gets an error reply and
//     is closed, so the ones already served are not starved.
#include <asio.hpp>

#include <array>
#include <deque>
#include <memory>
#include <thread>
#include <unordered_map>
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

struct Connection {
  Connection(asio::io_context& io, tcp::socket s, ConnectionId conn_id, std::size_t max_frame)
      : id(conn_id), socket(std::move(s)), splitter(max_frame), idle_timer(io), read_timer(io) {}

  ConnectionId id;
  tcp::socket socket;
  wire::FrameSplitter splitter;
  std::array<char, 64 * 1024> read_buffer{};
  std::deque<std::string> queued;   // frames waiting to be written
  std::vector<std::string> writing; // frames handed to the in-flight async_write
  bool reading = true;              // false once input ended or the stream broke
  bool close_requested = false;     // close once everything queued is written
  bool closed = false;
  asio::steady_timer idle_timer;
  asio::steady_timer read_timer;
  bool read_timer_armed = false;
};

class TcpTransport final : public Transport {
 public:
  explicit TcpTransport(const Config& config) : config_(config), acceptor_(io_) {}
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
    return {};
  }

  void stop() override {
    if (!thread_.joinable()) return;
    asio::post(io_, [this] {
      asio::error_code ignored;
      acceptor_.close(ignored);
      std::vector<ConnectionId> ids;
      for (auto& [id, conn] : connections_) ids.push_back(id);
      for (ConnectionId id : ids) teardown(id);
    });
    // The teardown above cancels every pending operation; run() returns once
    // their handlers have completed.
    thread_.join();
  }

  void send(ConnectionId conn, std::string frame) override {
    asio::post(io_, [this, conn, frame = std::move(frame)]() mutable {
      auto it = connections_.find(conn);
      if (it == connections_.end() || it->second->closed) return;
      frame.push_back('\n');
      it->second->queued.push_back(std::move(frame));
      flush(it->second);
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

  std::uint16_t local_port() const override { return port_; }

 private:
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
    if (conn->queued.empty()) {
      if (conn->close_requested) teardown(conn->id);
      return;
    }
    std::vector<asio::const_buffer> buffers;
    while (!conn->queued.empty()) {
      conn->writing.push_back(std::move(conn->queued.front()));
      conn->queued.pop_front();
    }
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
  std::thread thread_;
  TransportHandler* handler_ = nullptr;
  std::unordered_map<ConnectionId, std::shared_ptr<Connection>> connections_;
  ConnectionId next_id_ = 1;
  std::uint16_t port_ = 0;
};

}  // namespace

std::unique_ptr<Transport> make_tcp_transport(const Config& config) {
  return std::make_unique<TcpTransport>(config);
}

}  // namespace distdb
