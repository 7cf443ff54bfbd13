// distdb::Client: a connection to a node, for programs that talk to a
// cluster (distdb-cli, distdb-bench, applications).
//
// One Client is one persistent TCP connection (TLS when options.tls.enabled)
// carrying requests with ids;
// it is not thread-safe (use one per thread). Transport failures (refused,
// dropped, timed out) are returned as errors; an SQL error is a Reply with
// status ReplyStatus::error.
//
// Authentication (docs/security.md): with ClientOptions::user set, the
// client logs in right after every connection it opens (the first, each
// reconnection, each failover), before anything else is sent on it. A
// refused login is ErrorKind::unauthenticated with the node's message; it is
// never retried on another member. Without a user, nothing changes: a node
// that requires a login answers every request with that error kind.
//
// Two ways to get one:
//
// - Client::connect(host, port): bound to that one node. query() returns
//   REDIRECT replies and transport errors as they come; follow_redirects and
//   retry_for_ms are ignored. A connection the node closed while idle is
//   noticed before the next request and reopened; if the node cannot be
//   reached, the request fails with ErrorKind::unavailable and nothing of it
//   was sent. distdb-cli and the tests use this.
//
// - Client::connect_cluster(seeds): for applications that should not need to
//   know the topology. It connects to any reachable seed, learns the members
//   (ip/port) from STATUS, and refreshes them whenever it has to change node
//   after a failure. query() and status() then:
//
//   * follow REDIRECT replies (when follow_redirects): reconnect to the
//     coordinator the reply names and re-send, at most kMaxRedirects hops in
//     a row; the connection then stays on the coordinator;
//   * retry, with back-off (50 ms doubling up to 500 ms), on the next known
//     member, until retry_for_ms has passed, when nothing was done:
//       - the connection was refused, could not be opened, or was found
//         closed before the request was written (no byte of it was sent);
//       - the node answered with error kind no_quorum or not_coordinator;
//       - more than kMaxRedirects redirects in a row (a view in flux);
//     and then gives up with ErrorKind::unavailable (no node reachable) or the
//     last no_quorum / not_coordinator reply;
//   * NEVER retry a statement whose outcome is unknown: a reply with error
//     kind outcome_unknown, or a connection that dropped (outcome_unknown) or
//     timed out (timeout) after the request was sent and before its reply
//     arrived. The write may or may not have been applied; the application
//     decides (e.g. check with a read, or re-run an idempotent statement).
//     The next call reconnects, and fails over, as usual.
//
//   The client does not parse SQL, so reads and writes get the same rules.
//   Pipelined send()/receive() keep their single-connection semantics: they
//   use the current connection (reconnecting to the current member if it is
//   closed) and neither retry nor follow redirects.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "distdb/error.hpp"
#include "distdb/export.hpp"
#include "distdb/reply.hpp"

namespace distdb {

// TLS to the node (its config has security.tls). The node's certificate is
// verified by default: it must chain to ca_file (or, without one, to the
// system's trust store) and be valid for the host connected to (its IP
// address, or its DNS name), or for server_name when given. Failures are
// ErrorKind::unavailable ("TLS handshake with HOST:PORT failed: ..."); bad
// files are ErrorKind::config, from connect() and connect_cluster().
struct ClientTls {
  bool enabled = false;
  std::string ca_file;           // PEM bundle; empty: the system's trust store
  std::string certificate_file;  // PEM: a client certificate, for nodes that ask for one (with key_file)
  std::string key_file;          // PEM: its private key, not encrypted
  std::string server_name;       // the name the certificate must be valid for; empty: the host connected to
  bool verify = true;            // false: accept any certificate (INSECURE: no protection against impostors)
};

struct ClientOptions {
  int connect_timeout_ms = 5000;  // connecting, the TLS handshake included
  int request_timeout_ms = 30000;
  std::size_t max_reply_bytes = 256 * 1024 * 1024;
  // Cluster clients (connect_cluster) only; see above.
  bool follow_redirects = true;  // follow REDIRECT replies to the coordinator
  int retry_for_ms = 10000;      // how long safe-to-retry failures are retried (also bounds each connect)
  ClientTls tls;                 // the same for every member of a cluster client

  // The login (see above). The node says which mechanism it expects:
  //   SCRAM-SHA-256 (security.client_auth "users"): the password never
  //     leaves the client, and the node must prove that it holds the
  //     user's verifier, or the login fails;
  //   PLAIN (client_auth "database"): the password itself, which the client
  //     sends only over TLS or to a loopback address, unless
  //     allow_cleartext_password says it may cross the network in clear.
  std::string user;
  std::string password;
  bool allow_cleartext_password = false;
};

// What the last query() or status() of a cluster client went through.
struct QueryTrace {
  int redirects = 0;  // REDIRECT replies followed
  int retries = 0;    // attempts repeated after a safe-to-retry failure
};

class DISTDB_API Client {
 public:
  // Connects to host:port.
  static Result<Client> connect(const std::string& host, std::uint16_t port, ClientOptions options = {});

  // Connects to the first seed that answers STATUS (trying them in turn,
  // with back-off, for up to options.retry_for_ms; then fails with
  // ErrorKind::unavailable) and learns the members from its answer.
  static Result<Client> connect_cluster(std::vector<std::pair<std::string, std::uint16_t>> seeds,
                                        ClientOptions options = {});

  static constexpr int kMaxRedirects = 3;

  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  // Runs one statement and waits for its reply. With `redirect`, a
  // non-coordinator answers a write with REDIRECT instead of forwarding it.
  Result<Reply> query(std::string_view sql, bool redirect = false);
  // Asks the node for its status (Reply::result: one row per member).
  Result<Reply> status();
  // Has every member take a checksum of its data at the same log position
  // (docs/design.md, "Divergence is detected and repaired"). OK with the
  // coordinator's checksum (Reply::message, and the one row of column
  // "checksum"); a member whose checksum differs leaves the coordinator's
  // view and takes a full copy (status() shows it out of the view).
  Result<Reply> check();

  // Pipelining: send() queues a request and returns its id; receive()
  // returns the next reply, in request order.
  Result<std::uint64_t> send(std::string_view sql, bool redirect = false);
  // A CHECK request (see check()), pipelined like send().
  Result<std::uint64_t> send_check();
  Result<Reply> receive();

  // The node this client is (or will next be) connected to.
  const std::string& host() const;
  std::uint16_t port() const;

  // Cluster clients: the members known (id 0 for a seed not yet seen in a
  // STATUS answer), and what the last query()/status() went through.
  // A client from connect() lists its one node.
  bool is_cluster() const;
  std::vector<PeerConfig> members() const;
  const QueryTrace& last_trace() const;

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace distdb
