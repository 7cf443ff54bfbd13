// Node: serves client requests on one port, runs statements on the storage.
//
// Threads: the transport's network thread delivers frames; a StoragePool of
// workers runs statements. Replies go back through Transport::send, which
// any thread may call.
//
// Per connection, requests run one at a time, in arrival order, and replies
// leave in that order. That gives every client read-your-writes on its own
// connection and lets pipelining clients match replies by position as well
// as by id; concurrency comes from serving many connections at once.
#include "distdb/node.hpp"

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <unordered_map>

#include "distdb/transport.hpp"
#include "node/storage_pool.hpp"
#include "util/log_internal.hpp"
#include "wire/codec.hpp"

namespace distdb {
namespace {

// A request waiting its turn on a connection, or a reply already known
// (a decoding error) that must still leave in order.
struct Pending {
  std::optional<std::uint64_t> id;
  std::optional<wire::Request> request;
  std::string ready_reply;
};

struct Session {
  std::deque<Pending> queue;
  bool busy = false;         // a request of this connection is running
  bool input_ended = false;  // no more requests will be read
  bool closing = false;      // close() was called
};

std::string plural(std::uint64_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

}  // namespace

struct Node::Impl final : TransportHandler {
  explicit Impl(Config cfg) : config(std::move(cfg)) {}

  Config config;
  std::unique_ptr<Transport> transport;
  std::unique_ptr<StoragePool> pool;
  std::uint16_t bound_port = 0;

  std::mutex sessions_mutex;
  std::unordered_map<ConnectionId, Session> sessions;  // guarded by sessions_mutex

  std::mutex lifecycle_mutex;
  std::condition_variable lifecycle_changed;
  bool running = false;  // guarded by lifecycle_mutex

  std::optional<NodeId> coordinator() const {
    // Until elections run (cluster mode), only a node without peers can
    // order writes by itself.
    if (config.peers.empty()) return config.id;
    return std::nullopt;
  }

  // --- TransportHandler (network thread) ---

  void on_frame(ConnectionId conn, std::string frame) override {
    std::optional<std::uint64_t> id;
    auto request = wire::decode_request(frame, id);
    std::lock_guard lock(sessions_mutex);
    Session& s = sessions[conn];
    if (s.input_ended) return;
    if (static_cast<int>(s.queue.size()) >= config.limits.max_pending_per_connection) {
      // The client does not read its replies fast enough: answer once and
      // stop reading, so that one connection cannot hold unbounded memory.
      s.queue.push_back({id, std::nullopt,
                         error_reply(id, Error(ErrorKind::unavailable,
                                               "too many pending requests on this connection (limit " +
                                                   std::to_string(config.limits.max_pending_per_connection) +
                                                   ")"))});
      s.input_ended = true;
    } else if (!request) {
      s.queue.push_back({id, std::nullopt, error_reply(id, request.error())});
    } else {
      // A request without an id is the seed's one-shot style: it is
      // answered, then the connection is closed.
      if (!request->id) s.input_ended = true;
      s.queue.push_back({request->id, std::move(*request), {}});
    }
    pump(conn, s);
  }

  void on_input_end(ConnectionId conn, const Error* error) override {
    std::lock_guard lock(sessions_mutex);
    Session& s = sessions[conn];
    if (error != nullptr && !s.input_ended) {
      DISTDB_LOG(debug) << "connection " << conn << ": " << error->message;
      s.queue.push_back({std::nullopt, std::nullopt, error_reply(std::nullopt, *error)});
    }
    s.input_ended = true;
    pump(conn, s);
  }

  void on_closed(ConnectionId conn) override {
    std::lock_guard lock(sessions_mutex);
    sessions.erase(conn);
  }

  // --- request handling ---

  // Sends every reply that is ready, starts the next request, and closes the
  // connection once it has nothing left to do. Called with sessions_mutex held.
  void pump(ConnectionId conn, Session& s) {
    while (!s.busy && !s.queue.empty()) {
      Pending p = std::move(s.queue.front());
      s.queue.pop_front();
      if (!p.request) {
        transport->send(conn, std::move(p.ready_reply));
        continue;
      }
      if (auto* query = std::get_if<wire::ClientQuery>(&p.request->body)) {
        s.busy = true;
        start_query(conn, p.id, std::move(query->query));
      } else if (std::holds_alternative<wire::StatusRequest>(p.request->body)) {
        transport->send(conn, wire::encode_reply(status_reply(p.id)));
      } else {
        Reply pong;
        pong.id = p.id;
        pong.node = config.id;
        pong.message = "PONG";
        transport->send(conn, wire::encode_reply(pong));
      }
    }
    if (!s.busy && s.queue.empty() && s.input_ended && !s.closing) {
      s.closing = true;
      transport->close(conn);
    }
  }

  void start_query(ConnectionId conn, std::optional<std::uint64_t> id, std::string sql) {
    const bool queued = pool->submit([this, conn, id, sql = std::move(sql)](Result<Storage*> storage) {
      Reply reply = run_query(id, sql, storage);
      finish_query(conn, wire::encode_reply(reply));
    });
    if (!queued) {
      // Stopping: the transport is closing every connection anyway.
      DISTDB_LOG(debug) << "connection " << conn << ": request dropped, node stopping";
    }
  }

  void finish_query(ConnectionId conn, std::string reply) {
    std::lock_guard lock(sessions_mutex);
    auto it = sessions.find(conn);
    if (it == sessions.end()) return;  // the client went away meanwhile
    transport->send(conn, std::move(reply));
    it->second.busy = false;
    pump(conn, it->second);
  }

  Reply run_query(std::optional<std::uint64_t> id, const std::string& sql, Result<Storage*>& storage) {
    Reply reply;
    reply.id = id;
    reply.node = config.id;
    Result<ResultSet> result = storage ? (*storage)->execute(sql) : Result<ResultSet>(storage.error());
    if (!result) {
      DISTDB_LOG(debug) << "statement failed: " << result.error().message;
      reply.status = ReplyStatus::error;
      reply.error = result.error();
      reply.message = result.error().message;
      return reply;
    }
    reply.result = std::move(*result);
    if (reply.result.has_rows()) {
      reply.message = plural(reply.result.rows.size(), "row");
    } else {
      reply.message = "SUCCESS: " + plural(reply.result.rows_affected, "row") + " affected";
    }
    return reply;
  }

  std::string error_reply(std::optional<std::uint64_t> id, const Error& error) const {
    return wire::encode_error_reply(id, config.id, error);
  }

  // The members as this node knows them, one row each.
  Reply status_reply(std::optional<std::uint64_t> id) const {
    Reply reply;
    reply.id = id;
    reply.node = config.id;
    reply.result.columns = {"id", "ip", "port", "role", "alive", "applied_seq"};
    const auto coord = coordinator();
    auto role = [&](NodeId member) -> std::string {
      return coord && *coord == member ? "coordinator" : "member";
    };
    reply.result.rows.push_back({static_cast<std::int64_t>(config.id), config.ip,
                                 static_cast<std::int64_t>(bound_port), role(config.id),
                                 static_cast<std::int64_t>(1), std::monostate{}});
    for (const auto& peer : config.peers) {
      // Liveness of peers is known once heartbeats run (cluster mode).
      reply.result.rows.push_back({static_cast<std::int64_t>(peer.id), peer.ip,
                                   static_cast<std::int64_t>(peer.port), role(peer.id), std::monostate{},
                                   std::monostate{}});
    }
    reply.message = plural(reply.result.rows.size(), "member");
    return reply;
  }
};

Node::Node(Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}

Node::~Node() { stop(); }

Status Node::start() {
  std::lock_guard lock(impl_->lifecycle_mutex);
  if (impl_->running) return Error(ErrorKind::internal, "node already started");
  const Config& cfg = impl_->config;
  impl_->pool = std::make_unique<StoragePool>(cfg.storage, std::max(1, cfg.storage.pool_size));
  impl_->transport = make_tcp_transport(cfg);
  if (auto st = impl_->transport->start(*impl_); !st) {
    impl_->pool->stop();
    impl_->pool.reset();
    impl_->transport.reset();
    return st;
  }
  impl_->bound_port = impl_->transport->local_port();
  impl_->running = true;
  // Open the storage now, so that the log says at once whether it is there.
  impl_->pool->submit([backend = cfg.storage.backend](Result<Storage*> storage) {
    if (storage) {
      DISTDB_LOG(info) << "[*] Storage ready (" << to_string(backend) << ")";
    } else {
      DISTDB_LOG(warn) << "[!] Storage not available yet: " << storage.error().message
                       << " (requests fail until it is back)";
    }
  });
  return {};
}

void Node::stop() {
  std::unique_lock lock(impl_->lifecycle_mutex);
  if (!impl_->running) return;
  // Network first, so that no new work arrives; then let running statements finish.
  impl_->transport->stop();
  impl_->pool->stop();
  impl_->running = false;
  lock.unlock();
  impl_->lifecycle_changed.notify_all();
}

void Node::wait() {
  std::unique_lock lock(impl_->lifecycle_mutex);
  impl_->lifecycle_changed.wait(lock, [this] { return !impl_->running; });
}

Result<ResultSet> Node::execute(std::string_view sql) {
  {
    std::lock_guard lock(impl_->lifecycle_mutex);
    if (!impl_->running) return Error(ErrorKind::unavailable, "node is not running");
  }
  auto promise = std::make_shared<std::promise<Result<ResultSet>>>();
  auto future = promise->get_future();
  const bool queued = impl_->pool->submit([promise, sql = std::string(sql)](Result<Storage*> storage) {
    promise->set_value(storage ? (*storage)->execute(sql) : Result<ResultSet>(storage.error()));
  });
  if (!queued) return Error(ErrorKind::unavailable, "node is stopping");
  return future.get();
}

NodeId Node::id() const { return impl_->config.id; }

std::uint16_t Node::port() const { return impl_->bound_port; }

std::optional<NodeId> Node::coordinator() const { return impl_->coordinator(); }

}  // namespace distdb
