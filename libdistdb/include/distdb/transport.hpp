// The transport interface: moves frames (one JSON object each) between a node
// and the clients and peers connected to it.
//
// The transport knows framing, connections, size limits and timeouts; it
// knows nothing of what the frames mean. TcpTransport (Asio) is the network
// backend; the simulator in tests/ delivers frames in-process.
//
// Threading: handler callbacks run on the transport's own thread, one at a
// time. send(), close(), send_to_peer(), mark_authenticated(),
// trust_as_peer() and output_backlogged() may be called from any thread.
//
// Logins: unless config.security.client_auth is "off", a connection starts
// out not logged in. Until the handler calls mark_authenticated() (or
// trust_as_peer()) for it, the transport holds it to the limits for such
// connections (limits.max_unauthenticated_*, timeouts.login_timeout_ms): an
// application that embeds a Transport with client logins on must report
// them, or its clients are cut off after the login timeout.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "distdb/config.hpp"
#include "distdb/error.hpp"
#include "distdb/export.hpp"

namespace distdb {

using ConnectionId = std::uint64_t;

class DISTDB_API TransportHandler {
 public:
  virtual ~TransportHandler();
  // A complete frame arrived on `conn`.
  virtual void on_frame(ConnectionId conn, std::string frame) = 0;
  // No more frames will come from `conn`: the peer finished sending (end of
  // input; `error` is null), or the stream broke (`error` says why: a frame
  // too large, garbage between frames, a message not completed within the
  // read timeout, no login within the login timeout, a connection limit
  // reached). Replies owed for frames already
  // delivered may still be sent, then an error reply if wanted; the handler
  // calls close() when it is done with the connection.
  virtual void on_input_end(ConnectionId conn, const Error* error) = 0;
  // `conn` is gone (closed by either side, timed out, transport stopping).
  // No frame for it follows; sends to it are dropped.
  virtual void on_closed(ConnectionId conn) = 0;
  // The replies waiting for `conn` have drained to the bound again, after
  // Transport::output_backlogged() said they were over it: requests held
  // back for that may start. The default does nothing.
  virtual void on_output_drained(ConnectionId conn);
};

class DISTDB_API Transport {
 public:
  virtual ~Transport();

  // Starts accepting connections; listening when it returns OK.
  virtual Status start(TransportHandler& handler) = 0;
  // Stops accepting, closes every connection (inbound, and outbound to
  // peers, dropping what is still queued for them), joins the transport's
  // thread. Idempotent.
  virtual void stop() = 0;

  // Queues `frame` (a newline is appended on the wire) for `conn`. Frames to
  // one connection leave in the order of the calls.
  virtual void send(ConnectionId conn, std::string frame) = 0;
  // Marks `conn` as a member's connection (its frames came from a
  // configured peer): its frames may then be as large as
  // limits.max_peer_message_bytes, where a full copy of the data travels.
  // It counts as logged in too (see mark_authenticated()).
  virtual void trust_as_peer(ConnectionId conn) = 0;
  // `conn` has logged in: the login deadline no longer applies, it leaves
  // the counts of connections not logged in, and its frames may be as large
  // as limits.max_message_bytes. Called from the transport's thread (as the
  // handler's callbacks are) it takes effect before the next bytes of
  // `conn` are read; from another thread, shortly after. The default does
  // nothing (a transport without such limits).
  virtual void mark_authenticated(ConnectionId conn);
  // Whether the replies queued for `conn` but not yet written are over
  // limits.max_output_bytes_per_connection (a client that does not read
  // them). When it answers true, the transport calls
  // TransportHandler::on_output_drained(conn) once they are back under the
  // bound, so that a handler may hold back the requests of that connection
  // meanwhile. The default: never.
  virtual bool output_backlogged(ConnectionId conn);
  // Closes `conn` once everything queued for it has been written.
  virtual void close(ConnectionId conn) = 0;

  // Sends `frame` (a newline is appended on the wire) to the peer `peer` of
  // config.peers. Best effort: the replication protocol tolerates loss.
  //   - Frames to one peer leave in the order of the calls, over one
  //     persistent outbound connection, opened when there is something to
  //     send to the address in config.peers. The peer receives them like any
  //     client's frames (TransportHandler::on_frame on its side); it never
  //     answers on that connection, whatever comes back is read and ignored.
  //   - A connection that cannot be opened, or that drops, is retried with a
  //     capped exponential back-off (50 ms doubling to 1 s). Frames being
  //     written when it drops are lost, never sent twice: what a peer
  //     receives is a subsequence of what was sent, in order.
  //   - While the connection is down or slow, frames wait in a queue bounded
  //     to 4096 frames and 4 × limits.max_message_bytes bytes; beyond that
  //     the oldest are dropped.
  //   - A frame over limits.max_message_bytes (which the peer would refuse),
  //     a peer not in config.peers, and frames sent once stop() has begun are
  //     dropped.
  // May be called from any thread, also before start() (frames then wait,
  // within the bound, until it runs).
  virtual void send_to_peer(NodeId peer, std::string frame) = 0;

  // The port actually bound (useful when the configured port is 0).
  virtual std::uint16_t local_port() const = 0;

  // Whether `conn` (open) came in over TLS. The default: never.
  virtual bool is_tls(ConnectionId conn) const;
  // The subject common name of the certificate the other end of `conn`
  // presented in the TLS handshake, when it verified against
  // security.tls.ca; nullopt for plaintext, no certificate, or a closed
  // connection. The default: nullopt. With client_certificates "required"
  // and certificates named after the members (distdb-node-<id>, as
  // scripts/make-test-certs.sh makes them), this is what can bind a peer
  // connection to a member id: the basis for authenticating members by
  // mutual TLS instead of security.cluster_secret (docs/security.md).
  // Any thread.
  virtual std::optional<std::string> verified_peer_name(ConnectionId conn) const;
};

// The TCP backend, on Asio. Binds config.listen_ip:config.port and applies
// config.limits and config.timeouts; with config.security.tls, the port
// speaks only TLS and links to peers use it too (their certificates verified
// against security.tls.ca and their configured ip). start() fails with a
// clear error when the TLS files do not load.
DISTDB_API std::unique_ptr<Transport> make_tcp_transport(const Config& config);

}  // namespace distdb
