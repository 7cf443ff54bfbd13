// Node: serves client requests on one port, runs statements on the storage.
//
// Threads: the transport's network thread delivers frames; a StoragePool of
// workers runs statements. Replies go back through Transport::send, which
// any thread may call.
//
// Reads run on the node's own storage: on the network thread's event loop
// when the backend has a non-blocking client (AsyncReads, MariaDB), on the
// StoragePool otherwise. Writes go through the
// replication core (ReplicationDriver): the coordinator orders them into the
// log and every member applies them by two-phase commit; a write arriving at
// another member is forwarded to the coordinator, or answered REDIRECT when
// the client asks for that.
//
// Clients log in first (security.client_auth, node/client_auth.hpp): until
// an AUTH exchange has succeeded on a connection, every request on it but
// AUTH and PING is answered with an error of kind unauthenticated that names
// the mechanism expected. Logins are judged in the connection's order like
// any request, so a request pipelined behind a login runs only if the login
// succeeded. Peer frames are not client requests: they are authenticated by
// the cluster secret (wire/peer_auth.hpp) and never see this. The transport
// hears of every login (Transport::mark_authenticated) and of every member's
// connection (trust_as_peer): until then it holds the connection to the
// limits of connections not logged in (a deadline, smaller frames, counts
// per address and in all).
//
// Per connection, requests run one at a time, in arrival order, and replies
// leave in that order. That gives every client read-your-writes on its own
// connection and lets pipelining clients match replies by position as well
// as by id; concurrency comes from serving many connections at once.
//
// A client that does not read its replies: once those waiting to be written
// to it are over limits.max_output_bytes_per_connection
// (Transport::output_backlogged), its next request waits to start until
// they have drained (on_output_drained), and the transport reads no more of
// its input meanwhile. Without that, a client pipelining large SELECTs and
// reading nothing would make the node hold every reply in memory.
#include "distdb/node.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <unordered_map>

#include <openssl/crypto.h>

#include "distdb/transport.hpp"
#include "net/network_loop.hpp"
#include "node/async_reads.hpp"
#include "node/checksum.hpp"
#include "node/client_auth.hpp"
#include "node/replication_driver.hpp"
#include "node/storage_pool.hpp"
#include "sql/statement.hpp"
#include "util/log_internal.hpp"
#include "util/text.hpp"
#include "wire/codec.hpp"
#include "wire/peer_auth.hpp"
#include "wire/peer_codec.hpp"

namespace distdb {
namespace {

// A request waiting its turn on a connection, or a reply already known
// (a decoding error) that must still leave in order.
struct Pending {
  std::optional<std::uint64_t> id;
  std::optional<wire::Request> request;
  std::string ready_reply;
};

// One client connection's state. Its own mutex guards it: requests arrive on
// the network thread, and their answers come from pool threads, the
// replication core and the login checker; one lock for all connections
// made every read wait for every other one's (the node's main source of
// context switches under read load, docs/performance.md).
struct Session {
  std::mutex mutex;  // guards everything below
  std::deque<Pending> queue;
  bool busy = false;         // a request of this connection is running
  bool input_ended = false;  // no more requests will be read
  bool closing = false;      // close() was called
  bool peer = false;         // carries a member's replication messages
  std::uint64_t refused_peer_frames = 0;  // unauthenticated ones (logged: the first, then every 1000th)
  // Client login (node/client_auth.hpp).
  bool authenticated = false;                // may run requests (always, with client_auth off)
  std::unique_ptr<auth::ScramServer> scram;  // a SCRAM exchange waiting for its client-final
  int auth_failures = 0;
  std::string user;  // who logged in
};

std::string plural(std::uint64_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

}  // namespace

// Mutual TLS as the members' authentication: with client certificates
// required and no cluster secret, a peer message from member N is accepted
// only on a connection whose verified certificate is named distdb-node-N.
bool peers_by_certificate(const Config& config) {
  return config.security.tls && config.security.tls->client_certificates == ClientCertificates::required &&
         config.security.cluster_secret.empty();
}

std::string member_certificate_name(NodeId id) {
  return "distdb-node-" + std::to_string(id);
}

struct Node::Impl final : TransportHandler {
  explicit Impl(Config cfg)
      : config(std::move(cfg)),
        peer_auth(config.security.cluster_secret),
        by_certificate(peers_by_certificate(config)) {}

  Config config;
  // Signs what the replication core sends (its thread); checks what peers
  // send (the network thread only).
  wire::PeerAuth peer_auth;
  const bool by_certificate;  // peers_by_certificate(config)
  std::unique_ptr<Transport> transport;
  std::unique_ptr<StoragePool> pool;
  std::unique_ptr<ReplicationDriver> replication;
  std::unique_ptr<ClientAuthenticator> authenticator;
  // Declared after transport and replication: it uses the transport's event
  // loop, and its reads hold passes of the replication's read gate.
  std::unique_ptr<AsyncReads> async_reads;  // null: every read runs on the pool
  std::uint16_t bound_port = 0;

  // Writes handed to the replication core, by tag.
  struct WaitingWrite {
    ConnectionId conn = 0;  // 0: Node::execute()
    std::optional<std::uint64_t> id;
    std::shared_ptr<std::promise<Reply>> promise;  // Node::execute()
  };
  std::mutex writes_mutex;
  std::unordered_map<core::ClientTag, WaitingWrite> waiting_writes;  // guarded by writes_mutex
  // Tags must not repeat across restarts of this node: the coordinator
  // recognises a re-delivered forwarded write by (node, tag). Starting from
  // the wall clock in nanoseconds keeps them increasing from one run to the next.
  std::atomic<core::ClientTag> next_tag{static_cast<core::ClientTag>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count())};

  // The table of sessions; each session has its own mutex. sessions_mutex is
  // held only to look a session up, never while taking another lock. Lock
  // order: a session's mutex before the replication core's, writes_mutex and
  // the transport's.
  std::mutex sessions_mutex;
  std::unordered_map<ConnectionId, std::shared_ptr<Session>> sessions;  // guarded by sessions_mutex

  std::mutex lifecycle_mutex;
  std::condition_variable lifecycle_changed;
  bool running = false;  // guarded by lifecycle_mutex

  std::optional<NodeId> coordinator() const {
    if (!replication) return std::nullopt;
    const NodeId c = replication->status().coordinator;
    if (c == 0) return std::nullopt;
    return c;
  }

  // Statements are read the way this node's database reads them: its
  // dialect, and for MariaDB its version (executable comments).
  sql::Dialect dialect() const {
    return config.storage.backend == StorageBackend::mariadb ? sql::Dialect::mariadb : sql::Dialect::sqlite;
  }
  // The database server's version (Storage::server_version()), learned
  // from the pool's connections; 0 until one has opened.
  std::atomic<unsigned long> server_version{0};
  std::atomic<bool> learning_version{false};  // a pool job is learning it

  sql::Classification classify(std::string_view sql) {
    const bool mariadb = config.storage.backend == StorageBackend::mariadb;
    sql::Classification c = sql::classify(
        sql, sql::Context{dialect(), server_version.load(std::memory_order_relaxed),
                          mariadb ? std::string_view(config.storage.db.database) : std::string_view("main")});
    if (c.version_unknown && pool && !learning_version.exchange(true)) {
      // Learn it for the next request (this one is refused, and says so);
      // one such job at a time, however many requests ask.
      const bool queued = pool->submit([this](Result<Storage*> storage) {
        note_server_version(storage);
        learning_version = false;
      });
      if (!queued) learning_version = false;
    }
    return c;
  }

  void note_server_version(const Result<Storage*>& storage) {
    if (storage && (*storage)->server_version() != 0) {
      server_version.store((*storage)->server_version(), std::memory_order_relaxed);
    }
  }

  const PeerConfig* member_address(NodeId id) const {
    for (const auto& p : config.peers) {
      if (p.id == id) return &p;
    }
    return nullptr;
  }

  // The session of `conn`, created on first use (the network thread only:
  // a connection's first frame or end comes from there).
  std::shared_ptr<Session> session(ConnectionId conn) {
    std::lock_guard lock(sessions_mutex);
    auto& entry = sessions[conn];
    if (!entry) {
      entry = std::make_shared<Session>();
      entry->authenticated = authenticator->mode() == ClientAuth::off;
    }
    return entry;
  }

  // The session of `conn`, or null once the connection is gone.
  std::shared_ptr<Session> existing_session(ConnectionId conn) {
    std::lock_guard lock(sessions_mutex);
    auto it = sessions.find(conn);
    return it == sessions.end() ? nullptr : it->second;
  }

  // --- TransportHandler (network thread) ---

  void on_frame(ConnectionId conn, std::string frame) override {
    if (wire::is_peer_frame(frame)) {
      // Authenticated first (with a cluster secret), before anything in the
      // frame is believed: a refused frame goes no further.
      wire::PeerAuth::Token token;
      auto verified = peer_auth.verify(frame, token);
      if (!verified) {
        refuse_peer_frame(conn, verified.error());
        return;
      }
      auto frame_decoded = wire::decode_peer_frame(*verified);
      if (!frame_decoded) {
        DISTDB_LOG(warn) << "connection " << conn << ": bad peer message: " << frame_decoded.error().message;
        return;
      }
      const auto [from, to] =
          std::visit([](const auto& e) { return std::pair<NodeId, NodeId>(e.from, e.to); }, *frame_decoded);
      if (to != config.id || member_address(from) == nullptr) {
        DISTDB_LOG(warn) << "connection " << conn << ": peer message from " << from << " to " << to
                         << " ignored (not a member, or not for this node)";
        return;
      }
      if (by_certificate) {
        const std::string expected = member_certificate_name(from);
        const auto name = transport->verified_peer_name(conn);
        if (name != expected) {
          refuse_peer_frame(conn, Error(ErrorKind::invalid_request,
                                        "peer message in the name of node " + std::to_string(from) +
                                            " refused: the connection's certificate is " +
                                            (name ? "'" + *name + "'" : std::string("not a verified one")) +
                                            ", not " + expected));
          return;
        }
      }
      if (auto fresh = peer_auth.accept(from, token); !fresh) {
        refuse_peer_frame(conn, fresh.error());
        return;
      }
      {
        const auto session_ptr = session(conn);
        std::lock_guard lock(session_ptr->mutex);
        if (!session_ptr->peer) {
          session_ptr->peer = true;
          transport->trust_as_peer(conn);
        }
      }
      if (auto* transfer = std::get_if<wire::TransferEnvelope>(&*frame_decoded)) {
        replication->on_transfer_message(*transfer);
      } else {
        replication->on_peer_message(std::get<core::Envelope>(*frame_decoded));
      }
      return;
    }
    std::optional<std::uint64_t> id;
    auto request = wire::decode_request(frame, id);
    const auto session_ptr = session(conn);
    std::lock_guard lock(session_ptr->mutex);
    Session& s = *session_ptr;
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

  // Logs a refused peer frame: the first of a connection, then every
  // 1000th, so that a flood cannot fill the log.
  void refuse_peer_frame(ConnectionId conn, const Error& why) {
    std::uint64_t count = 0;
    {
      const auto session_ptr = session(conn);
      std::lock_guard lock(session_ptr->mutex);
      count = ++session_ptr->refused_peer_frames;
    }
    if (count == 1 || count % 1000 == 0) {
      DISTDB_LOG(warn) << "[!] connection " << conn << ": " << why.message
                       << (count > 1 ? " (" + std::to_string(count) + " so far on this connection)" : "");
    }
  }

  void on_input_end(ConnectionId conn, const Error* error) override {
    const auto session_ptr = session(conn);
    std::lock_guard lock(session_ptr->mutex);
    Session& s = *session_ptr;
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

  void on_output_drained(ConnectionId conn) override {
    const auto session_ptr = existing_session(conn);
    if (!session_ptr) return;
    std::lock_guard lock(session_ptr->mutex);
    pump(conn, *session_ptr);
  }

  // --- request handling ---

  // Sends every reply that is ready, starts the next request, and closes the
  // connection once it has nothing left to do. Called with the session's
  // mutex held.
  void pump(ConnectionId conn, Session& s) {
    while (!s.busy && !s.queue.empty()) {
      // Held back while the client's unread replies are over the bound
      // (on_output_drained() resumes).
      if (transport->output_backlogged(conn)) return;
      Pending p = std::move(s.queue.front());
      s.queue.pop_front();
      if (!p.request) {
        transport->send(conn, std::move(p.ready_reply));
        continue;
      }
      if (auto* login = std::get_if<wire::AuthRequest>(&p.request->body)) {
        authenticate(conn, s, p.id, *login);
        OPENSSL_cleanse(login->password.data(), login->password.size());
        continue;
      }
      if (!s.authenticated && !std::holds_alternative<wire::Ping>(p.request->body)) {
        const bool abandoned = s.scram != nullptr;
        s.scram.reset();
        transport->send(conn,
                        unauthenticated_reply(p.id, abandoned ? "a login was in progress on this connection: "
                                                                "finish it before any other request"
                                                              : "log in first"));
        continue;
      }
      if (auto* query = std::get_if<wire::ClientQuery>(&p.request->body)) {
        s.busy = true;
        start_query(conn, s, p.id, std::move(*query));
      } else if (std::holds_alternative<wire::ChecksumRequest>(p.request->body)) {
        s.busy = true;
        start_checksum(conn, p.id);
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

  // --- client login ---

  // An error of kind unauthenticated naming the mechanism the node expects.
  std::string unauthenticated_reply(std::optional<std::uint64_t> id, const std::string& what) const {
    const std::string mechanism(authenticator->mechanism());
    Reply r;
    r.id = id;
    r.node = config.id;
    r.status = ReplyStatus::error;
    r.message = what + " (this node requires " + mechanism + " authentication)";
    r.error = Error(ErrorKind::unauthenticated, r.message);
    r.auth_mechanism = mechanism;
    return wire::encode_reply(r);
  }

  std::string auth_ok_reply(std::optional<std::uint64_t> id, std::string message,
                            std::string mechanism = {}) const {
    Reply r;
    r.id = id;
    r.node = config.id;
    r.message = std::move(message);
    r.auth_mechanism = std::move(mechanism);
    return wire::encode_reply(r);
  }

  // One AUTH request, in the connection's turn. Called with the session's
  // mutex held, from pump(); a database check leaves the session busy until it
  // is answered.
  void authenticate(ConnectionId conn, Session& s, std::optional<std::uint64_t> id,
                    wire::AuthRequest& login) {
    if (authenticator->mode() == ClientAuth::off) {
      transport->send(conn, auth_ok_reply(id, "client authentication is off on this node", "off"));
      return;
    }
    if (s.authenticated) {
      transport->send(conn, error_reply(id, Error(ErrorKind::invalid_request,
                                                  "this connection is already authenticated (as " +
                                                      text::quote_for_message(s.user) + ")")));
      return;
    }
    const std::string_view expected = authenticator->mechanism();
    if (login.mechanism != expected) {
      // Not a failed login: the client learns what to use.
      s.scram.reset();
      transport->send(conn,
                      unauthenticated_reply(
                          id, "mechanism " + text::quote_for_message(login.mechanism) + " is not accepted"));
      return;
    }
    if (authenticator->mode() == ClientAuth::users) {
      scram_step(conn, s, id, login.message);
      return;
    }
    // PLAIN, checked against the database.
    if (!auth::is_valid_user_name(login.user) || login.password.empty()) {
      login_failed(conn, s, id, login.user, "no user name or no password given");
      return;
    }
    std::string user = login.user;
    const bool queued = authenticator->check_database_login(
        login.user, login.password,
        [this, conn, id, user](Status result) { finish_database_login(conn, id, user, result); });
    if (!queued) {
      transport->send(conn, error_reply(id, Error(ErrorKind::unavailable,
                                                  "too many logins are being checked; try again shortly")));
      return;
    }
    s.busy = true;
  }

  void scram_step(ConnectionId conn, Session& s, std::optional<std::uint64_t> id,
                  const std::string& message) {
    if (!s.scram) {
      s.scram = std::make_unique<auth::ScramServer>(
          [this](std::string_view user) { return authenticator->lookup(user); });
      auto server_first = s.scram->first(message);
      if (!server_first) {
        const std::string user = s.scram->user();
        s.scram.reset();
        login_failed(conn, s, id, user, server_first.error().message);
        return;
      }
      transport->send(conn, auth_ok_reply(id, std::move(*server_first)));
      return;
    }
    std::unique_ptr<auth::ScramServer> scram = std::move(s.scram);
    auto server_final = scram->final(message);
    if (!server_final) {
      login_failed(conn, s, id, scram->user(), server_final.error().message);
      return;
    }
    s.authenticated = true;
    s.user = scram->user();
    transport->mark_authenticated(conn);
    DISTDB_LOG(debug) << "connection " << conn << ": authenticated as " << text::quote_for_message(s.user);
    transport->send(conn, auth_ok_reply(id, std::move(*server_final)));
  }

  // The answer of the database to a PLAIN login (checker thread).
  void finish_database_login(ConnectionId conn, std::optional<std::uint64_t> id, const std::string& user,
                             const Status& result) {
    const auto session_ptr = existing_session(conn);
    if (!session_ptr) return;  // the client went away meanwhile
    std::lock_guard lock(session_ptr->mutex);
    Session& s = *session_ptr;
    s.busy = false;
    if (result) {
      s.authenticated = true;
      s.user = user;
      transport->mark_authenticated(conn);
      DISTDB_LOG(debug) << "connection " << conn << ": authenticated as " << text::quote_for_message(user);
      transport->send(conn, auth_ok_reply(id, "authenticated as " + text::quote_for_message(user)));
    } else if (result.error().kind == ErrorKind::unauthenticated) {
      login_failed(conn, s, id, user, result.error().message);
    } else {
      // Not the client's fault, and not a failed attempt.
      DISTDB_LOG(warn) << "[!] connection " << conn << ": cannot check the login of "
                       << text::quote_for_message(user) << ": " << result.error().message;
      transport->send(conn,
                      error_reply(id, Error(ErrorKind::storage_unavailable,
                                            "the node's database cannot be reached to check the login")));
    }
    pump(conn, s);
  }

  // A failed login: one message whatever the cause (the cause goes to the
  // log only), and the connection is closed after the last allowed failure.
  void login_failed(ConnectionId conn, Session& s, std::optional<std::uint64_t> id, const std::string& user,
                    const std::string& why) {
    ++s.auth_failures;
    const bool last = s.auth_failures >= ClientAuthenticator::kMaxFailuresPerConnection;
    authenticator->log_failure(conn, user, why + (last ? "; closing the connection" : ""));
    std::string message = user.empty() ? "authentication failed"
                                       : "authentication failed for user " + text::quote_for_message(user);
    if (last) message += "; too many failures, closing the connection";
    Reply r;
    r.id = id;
    r.node = config.id;
    r.status = ReplyStatus::error;
    r.message = message;
    r.error = Error(ErrorKind::unauthenticated, message);
    r.auth_mechanism = std::string(authenticator->mechanism());
    transport->send(conn, wire::encode_reply(r));
    if (last) {
      s.input_ended = true;
      s.queue.clear();  // what was pipelined behind it is not answered: the connection ends
    }
  }

  // Why this member must not answer reads as if it were current: it knows
  // its data is behind the cluster and it cannot catch up by itself for
  // now (an entry it fails to apply, a full copy it waits for, a decided
  // entry it fails to commit). Nullopt when it may serve reads.
  std::optional<std::string> broken_replica() const {
    switch (replication->staleness()) {
      case core::Staleness::apply_failed:
        return "this member failed to apply the entries after position " +
               std::to_string(replication->applied_seq()) + " and retries after a back-off";
      case core::Staleness::needs_snapshot:
        return "this member diverged or keeps failing to apply entries, and waits for a full copy of the data";
      case core::Staleness::commit_failed:
        return "this member failed to commit a decided entry and retries";
      default:
        return std::nullopt;
    }
  }

  // The error a read gets while broken_replica() holds.
  // Writes are replicated as the rows they change (storage.replication).
  bool rows_shipped() const { return config.storage.replication == Replication::rows; }

  std::optional<Error> read_refusal() const {
    auto why = broken_replica();
    if (!why) return std::nullopt;
    return Error(ErrorKind::unavailable, "read refused: " + *why +
                                             ", so its data is behind the cluster; read from another member, or "
                                             "retry shortly");
  }

  void start_query(ConnectionId conn, Session& s, std::optional<std::uint64_t> id, wire::ClientQuery query) {
    if (is_checksum_statement(query.query)) {
      // distdb's own statement: a client asks for a checksum with CHECK.
      answer_running_request(conn, s,
                             error_reply(id, Error(ErrorKind::invalid_request,
                                                   "this text is reserved for distdb's checksum entries; send a "
                                                   "CHECK request (distdb-cli :check) to compare the members")));
      return;
    }
    sql::Classification c = classify(query.query);
    if (c.kind == sql::StatementKind::read && !c.multiple_statements) {
      if (auto refused = read_refusal()) {
        answer_running_request(conn, s, error_reply(id, *refused));
        return;
      }
      start_read(conn, id, std::move(query.query));
      return;
    }
    if (auto refusal = sql::replication_refusal(c, rows_shipped())) {
      answer_running_request(conn, s, error_reply(id, Error(ErrorKind::invalid_request, *refusal)));
      return;
    }
    if (query.redirect) {
      // With no coordinator known yet (an election under way), the write
      // goes to the core, which holds it briefly and forwards it once one is
      // elected: better than a redirect to nowhere.
      const auto coord = coordinator();
      if (coord && *coord != config.id) {
        answer_running_request(conn, s, wire::encode_reply(redirect_reply(id, *coord)));
        return;
      }
    }
    const core::ClientTag tag = next_tag++;
    {
      std::lock_guard lock(writes_mutex);
      waiting_writes[tag] = WaitingWrite{conn, id, nullptr};
    }
    // Replicated as this node's server reads it (executable comments
    // resolved), so that every member runs the same statement.
    replication->propose(tag, c.effective_sql.empty() ? std::move(query.query) : std::move(c.effective_sql));
  }

  // A CHECK request: a checksum entry, replicated like a write (a member
  // that is not the coordinator forwards it); its reply is the
  // coordinator's checksum (node/checksum.hpp).
  //
  // A checksum reads the whole database on every member, inside the write
  // path, so requests that arrive while one is running share its answer
  // rather than queue rounds of their own. (One after another, each costs a
  // round, as a write that touches every row would.)
  struct ChecksumWaiter {
    ConnectionId conn;
    std::optional<std::uint64_t> id;
  };
  std::mutex checksum_mutex;
  std::optional<core::ClientTag> checksum_tag;   // guarded by checksum_mutex: the one running
  std::vector<ChecksumWaiter> checksum_waiters;  // guarded by checksum_mutex

  // Called from pump(), with the session's mutex held.
  void start_checksum(ConnectionId conn, std::optional<std::uint64_t> id) {
    core::ClientTag tag = 0;
    {
      std::lock_guard lock(checksum_mutex);
      checksum_waiters.push_back({conn, id});
      if (checksum_tag) return;
      tag = next_tag++;
      checksum_tag = tag;
    }
    replication->propose(tag, std::string(kChecksumStatement));
  }

  // The answer to the running checksum (any thread; no lock of ours held).
  void finish_checksum(const core::WriteResult& result) {
    std::vector<ChecksumWaiter> waiters;
    {
      std::lock_guard lock(checksum_mutex);
      waiters.swap(checksum_waiters);
      checksum_tag.reset();
    }
    for (const auto& w : waiters) finish_query(w.conn, wire::encode_reply(write_reply(w.id, result)));
  }

  // Answers the request of `conn` that pump() just started, without running
  // it (a refusal, a redirect). Called with the session's mutex held, from
  // pump(), which then goes on with the connection's next request.
  void answer_running_request(ConnectionId conn, Session& s, std::string reply) {
    transport->send(conn, std::move(reply));
    s.busy = false;
  }

  Reply redirect_reply(std::optional<std::uint64_t> id, NodeId coord) const {
    Reply r;
    r.id = id;
    r.node = config.id;
    r.status = ReplyStatus::redirect;
    // The transport's port, not bound_port: this runs on the network
    // thread, which may serve a client before start() has stored bound_port.
    PeerConfig where{coord, config.ip, transport->local_port()};
    if (const PeerConfig* p = member_address(coord)) where = *p;
    r.coordinator = where;
    r.message = "writes go to the coordinator, node " + std::to_string(coord);
    return r;
  }

  void start_read(ConnectionId conn, std::optional<std::uint64_t> id, std::string sql) {
    // On the event loop when it can run now; during a full copy's install
    // (no pass), on the pool, whose threads may wait for the install.
    if (async_reads) {
      if (ReadGate::Pass pass = replication->read_gate().try_pass()) {
        const bool queued =
            async_reads->submit(std::move(sql), [this, conn, id, pass](Result<ResultSet> result) {
              finish_query(conn, wire::encode_reply(read_reply(id, std::move(result))));
            });
        if (!queued) {
          DISTDB_LOG(debug) << "connection " << conn << ": request dropped, node stopping";
        }
        return;
      }
    }
    const bool queued = pool->submit([this, conn, id, sql = std::move(sql)](Result<Storage*> storage) {
      note_server_version(storage);
      Reply reply;
      {
        ReadGate::Read read(replication->read_gate());  // not during a full copy's install
        reply = read_reply(id, storage ? (*storage)->execute(sql) : Result<ResultSet>(storage.error()));
      }
      finish_query(conn, wire::encode_reply(reply));
    });
    if (!queued) {
      // Stopping: the transport is closing every connection anyway.
      DISTDB_LOG(debug) << "connection " << conn << ": request dropped, node stopping";
    }
  }

  // The replication core answered a write (network, executor or ticker
  // thread; never with a lock of ours held).
  void on_write_result(core::WriteResult result) {
    {
      std::unique_lock lock(checksum_mutex);
      if (checksum_tag && *checksum_tag == result.tag) {
        lock.unlock();
        finish_checksum(result);
        return;
      }
    }
    WaitingWrite waiting;
    {
      std::lock_guard lock(writes_mutex);
      auto it = waiting_writes.find(result.tag);
      if (it == waiting_writes.end()) return;
      waiting = std::move(it->second);
      waiting_writes.erase(it);
    }
    Reply reply = write_reply(waiting.id, result);
    if (waiting.promise) {
      waiting.promise->set_value(std::move(reply));
    } else {
      finish_query(waiting.conn, wire::encode_reply(reply));
    }
  }

  Reply write_reply(std::optional<std::uint64_t> id, const core::WriteResult& r) const {
    Reply reply;
    reply.id = id;
    reply.node = r.executed_by != 0 ? r.executed_by : config.id;
    reply.message = r.message;
    switch (r.kind) {
      case core::WriteResult::committed:
        if (r.outcome.ok && !r.outcome.digest.empty()) {
          reply.result.columns = {"checksum"};
          reply.result.rows = {Row{r.outcome.digest}};
          reply.message = "CHECKSUM " + r.outcome.digest +
                          ": the same on every member in the coordinator's view (a member whose checksum "
                          "differed left it and takes a full copy)";
        } else if (r.outcome.ok) {
          reply.result.rows_affected = r.outcome.rows_affected;
          reply.result.last_insert_id = r.outcome.last_insert_id;
          reply.message = "SUCCESS: " + plural(r.outcome.rows_affected, "row") +
                          " affected, replicated to the cluster";
        } else {
          reply.status = ReplyStatus::error;
          reply.error = Error(ErrorKind::sql, r.outcome.message, r.outcome.code);
          reply.message = r.outcome.message;
        }
        break;
      case core::WriteResult::not_coordinator:
        reply.status = ReplyStatus::error;
        reply.error = Error(ErrorKind::not_coordinator, r.message);
        break;
      case core::WriteResult::no_quorum:
        reply.status = ReplyStatus::error;
        reply.error = Error(ErrorKind::no_quorum, r.message);
        break;
      case core::WriteResult::outcome_unknown:
        reply.status = ReplyStatus::error;
        reply.error = Error(ErrorKind::outcome_unknown, r.message);
        break;
    }
    return reply;
  }

  void finish_query(ConnectionId conn, std::string reply) {
    const auto session_ptr = existing_session(conn);
    if (!session_ptr) return;  // the client went away meanwhile
    std::lock_guard lock(session_ptr->mutex);
    transport->send(conn, std::move(reply));
    session_ptr->busy = false;
    pump(conn, *session_ptr);
  }

  Reply read_reply(std::optional<std::uint64_t> id, Result<ResultSet> result) const {
    Reply reply;
    reply.id = id;
    reply.node = config.id;
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
    reply.result.columns = {"id", "ip", "port", "role", "alive", "in_view", "applied_seq", "epoch"};
    const ReplicationDriver::Status st = replication->status();
    auto address = [&](NodeId member) -> std::pair<std::string, std::int64_t> {
      if (member == config.id) return {config.ip, transport->local_port()};  // see redirect_reply()
      const PeerConfig* p = member_address(member);
      return p ? std::pair<std::string, std::int64_t>{p->ip, p->port} : std::pair<std::string, std::int64_t>{"", 0};
    };
    std::vector<core::MemberView> members = st.members;
    if (members.empty()) {  // replication not started yet: list the configured members
      members.push_back({config.id, true, false, {}});
      for (const auto& p : config.peers) members.push_back({p.id, false, false, {}});
    }
    for (const auto& m : members) {
      const auto [ip, port] = address(m.id);
      const std::string role = m.id == st.coordinator ? "coordinator" : "member";
      Row row{static_cast<std::int64_t>(m.id), ip, port, role, static_cast<std::int64_t>(m.alive ? 1 : 0),
              static_cast<std::int64_t>(m.in_view ? 1 : 0)};
      if (st.running) {
        row.emplace_back(static_cast<std::int64_t>(m.applied.seq));
      } else {
        row.emplace_back(std::monostate{});
      }
      row.emplace_back(static_cast<std::int64_t>(st.epoch));
      reply.result.rows.push_back(std::move(row));
    }
    reply.message = plural(reply.result.rows.size(), "member") + ", epoch " + std::to_string(st.epoch) +
                    (st.coordinator != 0 ? ", coordinator " + std::to_string(st.coordinator) : ", no coordinator");
    return reply;
  }
};

Node::Node(Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}

Node::~Node() { stop(); }

Status Node::start() {
  std::lock_guard lock(impl_->lifecycle_mutex);
  if (impl_->running) return Error(ErrorKind::internal, "node already started");
  const Config& cfg = impl_->config;
  auto authenticator = ClientAuthenticator::create(cfg);
  if (!authenticator) return authenticator.error();
  impl_->authenticator = std::move(*authenticator);
  impl_->pool = std::make_unique<StoragePool>(cfg.storage, std::max(1, cfg.storage.pool_size));
  impl_->async_reads.reset();  // of an earlier start(): on the transport replaced next
  impl_->transport = make_tcp_transport(cfg);
  if (asio::io_context* loop = network_loop(*impl_->transport)) {
    impl_->async_reads = make_async_reads(*loop, cfg.storage);
  }
  Impl* impl = impl_.get();
  impl_->replication = std::make_unique<ReplicationDriver>(
      cfg, ReplicationDriver::Callbacks{
               [impl](NodeId to, std::string frame) {
                 impl->transport->send_to_peer(to, impl->peer_auth.sign(std::move(frame)));
               },
               [impl](core::WriteResult r) { impl->on_write_result(std::move(r)); }});
  // Undoes the above when the start fails part-way.
  const auto abandon = [this](bool listening) {
    if (listening) impl_->transport->stop();
    impl_->pool->stop();
    impl_->pool.reset();
    impl_->async_reads.reset();
    impl_->transport.reset();
    impl_->replication.reset();
    impl_->authenticator.reset();
  };
  if (auto st = impl_->transport->start(*impl_); !st) {
    abandon(false);
    return st;
  }
  // After the port (a second node on the same config hears "cannot listen"
  // first): the directory is named for the node's id and port, and locked.
  auto spool = SpoolDir::open(cfg.storage.spool_dir, cfg.id, cfg.port);
  if (!spool) {
    abandon(true);
    return spool.error();
  }
  impl_->replication->use_spool(std::move(*spool));
  impl_->bound_port = impl_->transport->local_port();
  if (!impl_->peer_auth.enabled() && !impl_->by_certificate && !cfg.peers.empty()) {
    DISTDB_LOG(warn)
        << "[!] Peer messages are not authenticated: anyone who reaches this port can speak for a "
           "member. Set security.cluster_secret on every member, or security.tls with "
           "client_certificates \"required\" (docs/security.md).";
  } else if (impl_->by_certificate && !cfg.peers.empty()) {
    DISTDB_LOG(info)
        << "[*] Peer messages are accepted only from connections with a verified certificate named "
           "distdb-node-<sender id>";
  }
  if (cfg.security.client_auth == ClientAuth::off) {
    DISTDB_LOG(warn)
        << "[!] Clients are not authenticated: anyone who can reach port " << impl_->bound_port
        << " can run SQL (security.client_auth is \"off\"; for local demos only, docs/security.md).";
  }
  impl_->replication->start();
  impl_->running = true;
  // Open the storage now, so that the log says at once whether it is there.
  impl_->pool->submit([impl, backend = cfg.storage.backend](Result<Storage*> storage) {
    impl->note_server_version(storage);
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
  // Network first, so that no new work arrives; then let running statements
  // finish. The reads on the network thread are answered and their sessions
  // closed by the loop before the transport's teardown: the transport's
  // stop() waits for the loop to run out of work.
  if (impl_->async_reads) impl_->async_reads->stop();
  impl_->transport->stop();
  impl_->replication->stop();
  impl_->pool->stop();
  impl_->authenticator->stop();
  {
    // Writes still waiting for the core will not be answered by it any more.
    std::lock_guard writes_lock(impl_->writes_mutex);
    for (auto& [tag, waiting] : impl_->waiting_writes) {
      if (!waiting.promise) continue;
      Reply reply;
      reply.status = ReplyStatus::error;
      reply.error = Error(ErrorKind::outcome_unknown, "the node stopped while the write was being replicated");
      waiting.promise->set_value(std::move(reply));
    }
    impl_->waiting_writes.clear();
  }
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
  if (is_checksum_statement(sql)) {
    return Error(ErrorKind::invalid_request, "this text is reserved for distdb's checksum entries");
  }
  sql::Classification c = impl_->classify(sql);
  if (c.kind == sql::StatementKind::read && !c.multiple_statements) {
    if (auto refused = impl_->read_refusal()) return *refused;
  }
  if (c.kind != sql::StatementKind::read || c.multiple_statements) {
    if (auto refusal = sql::replication_refusal(c, impl_->rows_shipped()))
      return Error(ErrorKind::invalid_request, *refusal);
    // A write: replicated like a client's, and answered once committed.
    auto promise = std::make_shared<std::promise<Reply>>();
    auto future = promise->get_future();
    const core::ClientTag tag = impl_->next_tag++;
    {
      std::lock_guard lock(impl_->writes_mutex);
      impl_->waiting_writes[tag] = Impl::WaitingWrite{0, std::nullopt, promise};
    }
    impl_->replication->propose(tag, c.effective_sql.empty() ? std::string(sql) : std::move(c.effective_sql));
    Reply reply = future.get();
    if (reply.error) return *reply.error;
    return std::move(reply.result);
  }
  auto promise = std::make_shared<std::promise<Result<ResultSet>>>();
  auto future = promise->get_future();
  ReplicationDriver* replication = impl_->replication.get();
  const bool queued =
      impl_->pool->submit([promise, replication, sql = std::string(sql)](Result<Storage*> storage) {
        ReadGate::Read read(replication->read_gate());  // not during a full copy's install
        promise->set_value(storage ? (*storage)->execute(sql) : Result<ResultSet>(storage.error()));
      });
  if (!queued) return Error(ErrorKind::unavailable, "node is stopping");
  return future.get();
}

NodeId Node::id() const { return impl_->config.id; }

std::uint16_t Node::port() const { return impl_->bound_port; }

std::optional<NodeId> Node::coordinator() const { return impl_->coordinator(); }

}  // namespace distdb
