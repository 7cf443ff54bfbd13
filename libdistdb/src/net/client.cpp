// distdb::Client over a blocking socket, with poll() for deadlines; cluster
// clients add failover on top of the one connection (see client.hpp).
//
// TLS (options.tls) is OpenSSL used directly on the same non-blocking
// socket, under the same deadlines: the connect timeout covers the
// handshake, the request timeout the reads and writes. OpenSSL's own socket
// BIO writes with write(2), which raises SIGPIPE on a connection the node
// has closed; a library must not kill its host program, so the socket is
// reached through a small BIO of ours that sends with MSG_NOSIGNAL.
#include "distdb/client.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <algorithm>
#include <deque>
#include <thread>
#include <vector>

#include "net/tls.hpp"
#include "auth/scram.hpp"
#include "wire/codec.hpp"
#include "wire/frame_splitter.hpp"

namespace distdb {
namespace {

using Clock = std::chrono::steady_clock;

// --- the socket BIO that never raises SIGPIPE (see the top)

struct SocketBioState {
  int fd = -1;
  bool eof = false;
  int first_byte = -1;  // the first byte received: tells a plaintext answer from TLS
};

SocketBioState& bio_state(BIO* bio) {
  return *static_cast<SocketBioState*>(BIO_get_data(bio));
}

int socket_bio_write(BIO* bio, const char* data, int len) {
  BIO_clear_retry_flags(bio);
  for (;;) {
    const ssize_t n = ::send(bio_state(bio).fd, data, static_cast<std::size_t>(len), MSG_NOSIGNAL);
    if (n >= 0) return static_cast<int>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(bio);
    return -1;
  }
}

int socket_bio_read(BIO* bio, char* data, int len) {
  BIO_clear_retry_flags(bio);
  for (;;) {
    const ssize_t n = ::recv(bio_state(bio).fd, data, static_cast<std::size_t>(len), 0);
    if (n > 0) {
      if (bio_state(bio).first_byte < 0) bio_state(bio).first_byte = static_cast<unsigned char>(data[0]);
      return static_cast<int>(n);
    }
    if (n == 0) {
      bio_state(bio).eof = true;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_read(bio);
    return -1;
  }
}

long socket_bio_ctrl(BIO* bio, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_EOF:
      return bio_state(bio).eof ? 1 : 0;
    case BIO_C_GET_FD:
      return bio_state(bio).fd;
    default:
      return 0;
  }
}

int socket_bio_destroy(BIO* bio) {
  delete static_cast<SocketBioState*>(BIO_get_data(bio));
  BIO_set_data(bio, nullptr);
  return 1;
}

const BIO_METHOD* socket_bio_method() {
  static const BIO_METHOD* method = [] {
    BIO_METHOD* m =
        BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "distdb socket");
    if (m == nullptr) return static_cast<BIO_METHOD*>(nullptr);
    BIO_meth_set_write(m, socket_bio_write);
    BIO_meth_set_read(m, socket_bio_read);
    BIO_meth_set_ctrl(m, socket_bio_ctrl);
    BIO_meth_set_destroy(m, socket_bio_destroy);
    return m;
  }();
  return method;
}

// A BIO on `fd` (which stays the caller's to close).
BIO* socket_bio(int fd) {
  const BIO_METHOD* method = socket_bio_method();
  BIO* bio = method != nullptr ? BIO_new(method) : nullptr;
  if (bio == nullptr) return nullptr;
  BIO_set_data(bio, new SocketBioState{fd, false, -1});
  BIO_set_init(bio, 1);
  return bio;
}

// Whether the failure OpenSSL just reported is an alert the node sent
// (authenticated: on an established connection no one else can forge one).
bool alert_received(int ssl_error) {
  return ssl_error == SSL_ERROR_SSL && ERR_GET_LIB(ERR_peek_last_error()) == ERR_LIB_SSL &&
         ERR_GET_REASON(ERR_peek_last_error()) >= SSL_AD_REASON_OFFSET;
}

// The reason for the failure OpenSSL just reported on `ssl` (`ssl_error`
// from SSL_get_error); clears OpenSSL's error queue.
std::string tls_failure(SSL* ssl, int ssl_error) {
  std::string why;
  if (ssl_error == SSL_ERROR_SSL) {
    why = tls::failure_reason(ssl, ERR_peek_last_error());
  } else if (ssl_error == SSL_ERROR_ZERO_RETURN || (ssl_error == SSL_ERROR_SYSCALL && errno == 0)) {
    why = "the node closed the connection";
  } else if (ssl_error == SSL_ERROR_SYSCALL) {
    why = std::strerror(errno);
  } else {
    why = "TLS error " + std::to_string(ssl_error);
  }
  ERR_clear_error();
  return why;
}

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// Connects with a deadline: non-blocking connect, then poll for writability.
Result<int> connect_socket(const std::string& host, std::uint16_t port, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string where = host + ":" + std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found); rc != 0) {
    return Error(ErrorKind::unavailable, "cannot resolve " + host + ": " + gai_strerror(rc));
  }
  std::string last_error = "no address";
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = poll(&p, 1, remaining_ms(deadline));
      if (rc == 0) {
        ::close(fd);
        last_error = "connection timed out";
        continue;
      }
      int so_error = 0;
      socklen_t len = sizeof so_error;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
      rc = so_error == 0 ? 0 : -1;
      errno = so_error;
    }
    if (rc != 0) {
      last_error = std::strerror(errno);
      ::close(fd);
      continue;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    freeaddrinfo(found);
    return fd;
  }
  freeaddrinfo(found);
  return Error(ErrorKind::unavailable, "cannot connect to " + where + ": " + last_error);
}

// The TLS handshake on the connected `fd`, until `deadline`. The SSL
// returned reads and writes through `fd`, which stays the caller's.
Result<SSL*> tls_handshake(SSL_CTX* ctx, const ClientTls& options, int fd, const std::string& host,
                           std::uint16_t port, Clock::time_point deadline) {
  const std::string where = host + ":" + std::to_string(port);
  const auto failed = [&where](const std::string& why) {
    return Error(ErrorKind::unavailable, "TLS handshake with " + where + " failed: " + why);
  };
  SSL* ssl = SSL_new(ctx);
  BIO* bio = ssl != nullptr ? socket_bio(fd) : nullptr;
  if (bio == nullptr) {
    SSL_free(ssl);
    ERR_clear_error();
    return Error(ErrorKind::internal, "cannot set up TLS for " + where + ": out of memory");
  }
  SSL_set_bio(ssl, bio, bio);
  SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  const std::string& name = options.server_name.empty() ? host : options.server_name;
  if (options.verify && !tls::expect_name(ssl, name)) {
    SSL_free(ssl);
    return Error(ErrorKind::config, "TLS: cannot check a certificate against the name '" + name + "'");
  }
  if (!options.verify) {
    // No check, but a DNS name still goes as SNI (an address never does).
    in6_addr ignored{};
    if (inet_pton(AF_INET, name.c_str(), &ignored) != 1 && inet_pton(AF_INET6, name.c_str(), &ignored) != 1) {
      tls::set_server_name(ssl, name);
    }
  }
  for (;;) {
    ERR_clear_error();
    errno = 0;
    const int rc = SSL_connect(ssl);
    if (rc == 1) return ssl;
    const int err = SSL_get_error(ssl, rc);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      std::string why = tls_failure(ssl, err);
      // A node without TLS answers a ClientHello with a JSON error: it
      // starts with '{', which no TLS record does.
      if (bio_state(SSL_get_rbio(ssl)).first_byte == '{') {
        why = "the node answered in plaintext (it is not configured for TLS)";
      }
      SSL_free(ssl);
      return failed(why);
    }
    pollfd p{fd, static_cast<short>(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
    const int ready = poll(&p, 1, remaining_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      SSL_free(ssl);
      return Error(ErrorKind::unavailable, "TLS handshake with " + where + " timed out");
    }
  }
}

// How long a connection attempt (or the STATUS that follows it) may take
// within a retry window: never past the connect timeout, and at least a
// short while even when the window is about to close.
int bounded_ms(int limit_ms, Clock::time_point deadline) {
  return std::min(limit_ms, std::max(remaining_ms(deadline), 100));
}

bool same_address(const PeerConfig& a, const std::string& host, std::uint16_t port) {
  return a.ip == host && a.port == port;
}

// Whether the other end of `fd` is a loopback address (127.0.0.0/8, ::1, or
// ::ffff:127.x.y.z): traffic that never leaves the machine.
bool peer_is_loopback(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return false;
  if (address.ss_family == AF_INET) {
    sockaddr_in v4{};
    std::memcpy(&v4, &address, sizeof v4);
    return (ntohl(v4.sin_addr.s_addr) >> 24) == 127;
  }
  if (address.ss_family == AF_INET6) {
    sockaddr_in6 v6{};
    std::memcpy(&v6, &address, sizeof v6);
    if (IN6_IS_ADDR_LOOPBACK(&v6.sin6_addr)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr) && v6.sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

}  // namespace

struct Client::Impl {
  Impl(std::string h, std::uint16_t p, ClientOptions o, tls::Context context)
      : host(std::move(h)),
        port(p),
        options(std::move(o)),
        tls_context(std::move(context)),
        splitter(options.max_reply_bytes) {}
  ~Impl() { disconnect(); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  std::string host;
  std::uint16_t port;
  ClientOptions options;
  tls::Context tls_context;  // with options.tls.enabled
  int fd = -1;
  SSL* ssl = nullptr;         // the TLS session on fd, with options.tls.enabled
  bool tls_answered = false;  // the node has sent data on this TLS connection
  wire::FrameSplitter splitter;
  std::deque<std::string> frames;  // replies received but not yet returned
  std::uint64_t next_id = 1;
  std::size_t outstanding = 0;     // requests sent, replies not yet returned

  // Cluster clients only.
  bool cluster = false;
  std::vector<PeerConfig> seeds;
  std::vector<PeerConfig> known;   // the members; never empty for a cluster client
  std::size_t current = 0;         // index in `known` of host:port
  QueryTrace trace;

  // Logins: the mechanism the nodes asked for last, and the keys derived
  // from the password for the salt and count they sent (auth/scram.hpp).
  std::string_view mechanism = auth::kScramSha256;
  auth::ClientKeys scram_keys;

  std::string where() const { return host + ":" + std::to_string(port); }

  // Whether the connection is encrypted (and the node's certificate was
  // checked, unless ClientTls::verify is off).
  bool is_tls() const { return ssl != nullptr; }

  void disconnect() {
    if (ssl != nullptr) {
      // A close_notify if the socket takes it at once; never waits.
      SSL_shutdown(ssl);
      SSL_free(ssl);
      ERR_clear_error();
      ssl = nullptr;
    }
    if (fd >= 0) ::close(fd);
    fd = -1;
  }

  void attach(int socket_fd, SSL* session) {
    fd = socket_fd;
    ssl = session;
    tls_answered = false;
    splitter = wire::FrameSplitter(options.max_reply_bytes);
    frames.clear();
    outstanding = 0;
  }

  // A broken connection is reconnected by the next request, not silently in
  // the middle of one: a request whose reply was lost has an unknown outcome.
  Status ensure_connected() { return ensure_connected(options.connect_timeout_ms); }

  // Connects (and with TLS, completes the handshake) within timeout_ms.
  Status ensure_connected(int timeout_ms) {
    if (fd >= 0) return {};
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    auto s = connect_socket(host, port, deadline);
    if (!s) return s.error();
    SSL* session = nullptr;
    if (tls_context) {
      auto handshake = tls_handshake(tls_context.get(), options.tls, *s, host, port, deadline);
      if (!handshake) {
        ::close(*s);
        return handshake.error();
      }
      session = *handshake;
    }
    attach(*s, session);
    if (auto st = authenticate(); !st) {
      disconnect();
      return st;
    }
    return {};
  }

  // --- login (see client.hpp) ---

  // One AUTH request and its reply on a fresh connection. A transport
  // failure is `unavailable`: no request of the caller's was sent.
  Result<Reply> auth_exchange(wire::AuthRequest login) {
    wire::Request request;
    request.id = next_id++;
    request.body = std::move(login);
    std::string line = wire::encode_request(request);
    line.push_back('\n');
    std::size_t written = 0;
    auto sent = write_all(line, written);
    auto& sent_login = std::get<wire::AuthRequest>(request.body);
    std::fill(sent_login.password.begin(), sent_login.password.end(), '\0');
    std::fill(line.begin(), line.end(), '\0');
    if (!sent) return Error(ErrorKind::unavailable, sent.error().message + " (while logging in)");
    ++outstanding;
    auto reply = receive(options.request_timeout_ms);
    if (!reply) {
      disconnect();
      outstanding = 0;
      return Error(ErrorKind::unavailable, reply.error().message + " (while logging in)");
    }
    if (reply->id && *reply->id != *request.id) {
      return Error(ErrorKind::invalid_request, "reply from " + where() + " answers request " +
                                                   std::to_string(*reply->id) + " while logging in");
    }
    return reply;
  }

  // The node's refusal as an Error; a node that expects another mechanism
  // (and names one we know) gets `switch_to`.
  static Error refusal(const Reply& reply, std::string_view& switch_to) {
    const Error e = reply.error ? *reply.error : Error(ErrorKind::internal, reply.message);
    if (e.kind == ErrorKind::unauthenticated) {
      if (reply.auth_mechanism == auth::kScramSha256) switch_to = auth::kScramSha256;
      if (reply.auth_mechanism == auth::kPlain) switch_to = auth::kPlain;
    }
    return e;
  }

  Status authenticate() {
    if (options.user.empty()) return {};
    // At most one change of mechanism: the node names the one it expects.
    for (int round = 0; round < 2; ++round) {
      std::string_view switch_to;
      Status result = mechanism == auth::kPlain ? login_plain(switch_to) : login_scram(switch_to);
      if (result || switch_to.empty() || switch_to == mechanism) return result;
      mechanism = switch_to;
    }
    return Error(ErrorKind::unauthenticated, where() + " keeps changing the login it expects");
  }

  Status login_scram(std::string_view& switch_to) {
    auth::ScramClient scram(options.user, options.password);
    auto first = scram.first_message();
    if (!first) return first.error();
    auto reply = auth_exchange({std::string(auth::kScramSha256), std::move(*first), {}, {}});
    if (!reply) return reply.error();
    if (reply->status != ReplyStatus::ok) return refusal(*reply, switch_to);
    if (reply->auth_mechanism == "off") return {};  // the node authenticates nobody
    auto final = scram.final_message(reply->message, &scram_keys);
    if (!final)
      return Error(ErrorKind::unauthenticated, "login to " + where() + " failed: " + final.error().message);
    reply = auth_exchange({std::string(auth::kScramSha256), std::move(*final), {}, {}});
    if (!reply) return reply.error();
    if (reply->status != ReplyStatus::ok) return refusal(*reply, switch_to);
    if (auto st = scram.verify_server_final(reply->message); !st) {
      return Error(ErrorKind::unauthenticated, "login to " + where() + " failed: " + st.error().message);
    }
    return {};
  }

  Status login_plain(std::string_view& switch_to) {
    if (!is_tls() && !peer_is_loopback(fd) && !options.allow_cleartext_password) {
      return Error(ErrorKind::unauthenticated,
                   where() +
                       " expects the password itself (PLAIN: its logins are checked by its database), and "
                       "this connection is neither TLS nor to a loopback address; the password was not sent "
                       "(ClientOptions::allow_cleartext_password sends it anyway)");
    }
    auto reply = auth_exchange({std::string(auth::kPlain), {}, options.user, options.password});
    if (!reply) return reply.error();
    if (reply->status != ReplyStatus::ok) return refusal(*reply, switch_to);
    return {};
  }

  // The node refused this TLS connection after the handshake looked done on
  // this side (TLS 1.3: a client certificate it does not accept): nothing
  // sent on it was read, so the request did not run.
  Error tls_refused(const std::string& why) {
    disconnect();
    outstanding = 0;
    return Error(ErrorKind::unavailable, "TLS handshake with " + where() + " failed: " + why);
  }

  Error broken(ErrorKind kind, const std::string& what) {
    disconnect();
    const bool pending = outstanding > 0;
    outstanding = 0;
    return Error(pending && kind == ErrorKind::unavailable ? ErrorKind::outcome_unknown : kind,
                 "connection to " + where() + " " + what);
  }

  // `done` counts the bytes the kernel accepted, also when it fails.
  Status write_all(const std::string& data, std::size_t& done) {
    if (ssl != nullptr) return tls_write_all(data, done);
    const auto deadline = Clock::now() + std::chrono::milliseconds(options.request_timeout_ms);
    done = 0;
    while (done < data.size()) {
      const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pollfd p{fd, POLLOUT, 0};
        if (poll(&p, 1, remaining_ms(deadline)) <= 0) return broken(ErrorKind::timeout, "timed out sending");
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      return broken(ErrorKind::unavailable, std::string("failed: ") + std::strerror(errno));
    }
    return {};
  }

  // With TLS, `done` counts the bytes whose records were all sent: the node
  // cannot read a part of a record, so with 0 it has read nothing.
  Status tls_write_all(const std::string& data, std::size_t& done) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(options.request_timeout_ms);
    done = 0;
    while (done < data.size()) {
      ERR_clear_error();
      errno = 0;
      std::size_t n = 0;
      const int rc = SSL_write_ex(ssl, data.data() + done, data.size() - done, &n);
      if (rc == 1) {
        done += n;
        continue;
      }
      const int err = SSL_get_error(ssl, rc);
      if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
        pollfd p{fd, static_cast<short>(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
        const int ready = poll(&p, 1, remaining_ms(deadline));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) return broken(ErrorKind::timeout, "timed out sending");
        continue;
      }
      std::string why = tls_failure(ssl, err);
      if (!tls_answered && done == 0) {
        // Maybe the node refused the handshake and closed: its alert says why.
        if (auto alert = pending_alert()) return tls_refused(*alert);
      }
      return broken(ErrorKind::unavailable, "failed: " + why);
    }
    return {};
  }

  // A TLS alert the node sent before closing, if one is waiting to be read.
  std::optional<std::string> pending_alert() {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) return std::nullopt;
    char byte = 0;
    std::size_t n = 0;
    ERR_clear_error();
    const int rc = SSL_read_ex(ssl, &byte, 1, &n);
    if (rc == 1) return std::nullopt;
    const int err = SSL_get_error(ssl, rc);
    if (!alert_received(err)) {
      ERR_clear_error();
      return std::nullopt;
    }
    return tls_failure(ssl, err);
  }

  Result<std::uint64_t> send(const wire::Request& request) {
    // A connection the node closed while idle (it stopped or was killed) is
    // replaced before anything is written on it: otherwise the request
    // would leave into a dead socket and its outcome would look unknown.
    if (idle_connection_lost()) disconnect();
    if (auto st = ensure_connected(); !st) return st.error();
    std::string line = wire::encode_request(request);
    line.push_back('\n');
    std::size_t written = 0;
    if (auto st = write_all(line, written); !st) return st.error();
    ++outstanding;
    return *request.id;
  }

  Result<Reply> receive() { return receive(options.request_timeout_ms); }

  Result<Reply> receive(int timeout_ms) {
    if (fd < 0) return Error(ErrorKind::unavailable, "not connected to " + where());
    if (outstanding == 0) return Error(ErrorKind::invalid_request, "no request is waiting for a reply");
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    std::vector<std::string> got;
    char buf[64 * 1024];
    if (ssl != nullptr) {
      if (auto st = tls_receive(deadline); !st) return st.error();
    }
    while (frames.empty()) {
      pollfd p{fd, POLLIN, 0};
      const int rc = poll(&p, 1, remaining_ms(deadline));
      if (rc == 0) return broken(ErrorKind::timeout, "timed out waiting for a reply");
      if (rc < 0 && errno == EINTR) continue;
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n == 0) return broken(ErrorKind::unavailable, "closed by the node");
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
        return broken(ErrorKind::unavailable, std::string("failed: ") + std::strerror(errno));
      }
      got.clear();
      const Status st = splitter.feed(std::string_view(buf, static_cast<std::size_t>(n)), got);
      for (auto& f : got) frames.push_back(std::move(f));
      if (!st && frames.empty()) return broken(st.error().kind, "sent an unreadable reply: " + st.error().message);
    }
    std::string frame = std::move(frames.front());
    frames.pop_front();
    --outstanding;
    auto reply = wire::decode_reply(frame);
    if (!reply) return Error(ErrorKind::invalid_request, "unreadable reply from " + where() + ": " + reply.error().message);
    return reply;
  }

  // Reads until a frame is complete. OpenSSL may hold decrypted bytes the
  // socket no longer shows, so it is read first, and polled only when it
  // asks to be.
  Status tls_receive(Clock::time_point deadline) {
    char buf[16 * 1024];
    std::vector<std::string> got;
    while (frames.empty()) {
      ERR_clear_error();
      errno = 0;
      std::size_t n = 0;
      const int rc = SSL_read_ex(ssl, buf, sizeof buf, &n);
      if (rc == 1) {
        tls_answered = true;
        got.clear();
        const Status st = splitter.feed(std::string_view(buf, n), got);
        for (auto& f : got) frames.push_back(std::move(f));
        if (!st && frames.empty())
          return broken(st.error().kind, "sent an unreadable reply: " + st.error().message);
        continue;
      }
      const int err = SSL_get_error(ssl, rc);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        pollfd p{fd, static_cast<short>(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
        const int ready = poll(&p, 1, remaining_ms(deadline));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) return broken(ErrorKind::timeout, "timed out waiting for a reply");
        continue;
      }
      const bool refused = !tls_answered && alert_received(err);
      std::string why = tls_failure(ssl, err);
      if (refused) return tls_refused(why);
      if (err == SSL_ERROR_ZERO_RETURN ||
          (err == SSL_ERROR_SYSCALL && why == "the node closed the connection")) {
        return broken(ErrorKind::unavailable, "closed by the node");
      }
      return broken(ErrorKind::unavailable, "failed: " + why);
    }
    return {};
  }

  // --- cluster clients ---

  // One try of a request on the current connection.
  struct Attempt {
    Result<Reply> result;
    bool safe_to_retry = false;  // nothing was done: the request never left, or the node says so
  };

  // True when an idle connection can no longer carry a request: the node
  // closed or reset it (it stopped, or was killed, since the last reply), or
  // sent something nobody asked for. Nothing was sent on it since the last
  // reply, so dropping it and going elsewhere is safe.
  bool idle_connection_lost() {
    if (fd < 0 || outstanding > 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) return false;
    if (ssl == nullptr) return true;
    // TLS: what arrived may be a message of the protocol itself, which
    // leaves the connection as it was.
    char byte = 0;
    std::size_t n = 0;
    ERR_clear_error();
    const int rc = SSL_read_ex(ssl, &byte, 1, &n);
    const bool fine = rc != 1 && SSL_get_error(ssl, rc) == SSL_ERROR_WANT_READ;
    ERR_clear_error();
    return !fine;
  }

  Attempt attempt(const wire::RequestBody& body, int reply_timeout_ms) {
    // Asking again is safe: a status, or one more checksum.
    const bool harmless =
        std::holds_alternative<wire::StatusRequest>(body) || std::holds_alternative<wire::ChecksumRequest>(body);
    wire::Request request;
    request.id = next_id++;
    request.body = body;
    std::string line = wire::encode_request(request);
    line.push_back('\n');
    std::size_t written = 0;
    if (auto st = write_all(line, written); !st) {
      if (written == 0 || harmless) return {Error(ErrorKind::unavailable, st.error().message), true};
      // Part of the request left: the node may have read all of it.
      return {Error(ErrorKind::outcome_unknown, st.error().message), false};
    }
    ++outstanding;
    auto reply = receive(reply_timeout_ms);
    if (!reply) {
      if (harmless) return {Error(ErrorKind::unavailable, reply.error().message), true};
      return {std::move(reply), false};  // outcome_unknown, timeout, or an unreadable reply
    }
    if (reply->id && *reply->id != *request.id) {
      disconnect();
      outstanding = 0;
      return {Error(ErrorKind::invalid_request, "reply from " + where() + " answers request " +
                                                    std::to_string(*reply->id) + ", not " +
                                                    std::to_string(*request.id)),
              harmless};
    }
    const bool nothing_done =
        reply->status == ReplyStatus::error && reply->error &&
        (reply->error->kind == ErrorKind::no_quorum || reply->error->kind == ErrorKind::not_coordinator);
    return {std::move(reply), nothing_done};
  }

  // Points the client at member `i` (connected by the next attempt).
  void select(std::size_t i) {
    disconnect();
    current = i;
    host = known[i].ip;
    port = known[i].port;
  }

  std::size_t find_or_add(const PeerConfig& member) {
    for (std::size_t i = 0; i < known.size(); ++i) {
      if (same_address(known[i], member.ip, member.port)) {
        if (member.id != 0) known[i].id = member.id;
        return i;
      }
    }
    known.push_back(member);
    return known.size() - 1;
  }

  // The members as a STATUS reply lists them (id, ip, port), then any seed
  // it does not list; the current node keeps its place as `current`.
  void learn(const Reply& status) {
    const auto& columns = status.result.columns;
    auto column = [&](std::string_view name) -> std::optional<std::size_t> {
      for (std::size_t i = 0; i < columns.size(); ++i) {
        if (columns[i] == name) return i;
      }
      return std::nullopt;
    };
    const auto id_col = column("id");
    const auto ip_col = column("ip");
    const auto port_col = column("port");
    if (!id_col || !ip_col || !port_col) return;
    std::vector<PeerConfig> learned;
    for (const Row& row : status.result.rows) {
      if (row.size() <= std::max({*id_col, *ip_col, *port_col})) continue;
      const auto* id = std::get_if<std::int64_t>(&row[*id_col]);
      const auto* ip = std::get_if<std::string>(&row[*ip_col]);
      const auto* p = std::get_if<std::int64_t>(&row[*port_col]);
      if (id == nullptr || ip == nullptr || p == nullptr || ip->empty() || *p <= 0 || *p > 65535) continue;
      learned.push_back(PeerConfig{static_cast<NodeId>(*id), *ip, static_cast<std::uint16_t>(*p)});
    }
    if (learned.empty()) return;
    known = std::move(learned);
    for (const PeerConfig& seed : seeds) find_or_add(seed);
    current = find_or_add(PeerConfig{status.node, host, port});
  }

  Error out_of_time(const Error& last, int attempts) const {
    return Error(ErrorKind::unavailable, "no member of the cluster could take the request within " +
                                             std::to_string(options.retry_for_ms) + " ms (" +
                                             std::to_string(attempts) + " attempts); last: " + last.message);
  }

  // query() and status() of a cluster client: see client.hpp.
  Result<Reply> cluster_request(const wire::RequestBody& body) {
    if (outstanding > 0) {
      return Error(ErrorKind::invalid_request, "pipelined replies are outstanding: receive() them first");
    }
    trace = {};
    const bool is_status = std::holds_alternative<wire::StatusRequest>(body);
    const auto deadline = Clock::now() + std::chrono::milliseconds(std::max(options.retry_for_ms, 0));
    auto backoff = std::chrono::milliseconds(50);
    constexpr auto kMaxBackoff = std::chrono::milliseconds(500);
    int hops = 0;
    int attempts = 0;
    bool refresh = false;  // learn the members again once connected somewhere
    for (;;) {
      ++attempts;
      if (idle_connection_lost()) disconnect();
      std::optional<Attempt> a;
      if (fd < 0) {
        if (auto st = ensure_connected(bounded_ms(options.connect_timeout_ms, deadline)); !st) {
          // A refused login would be refused by the next member too.
          if (st.error().kind == ErrorKind::unauthenticated) return st.error();
          a = Attempt{st.error(), true};
        }
      }
      if (!a && refresh && !is_status) {
        Attempt s = attempt(wire::StatusRequest{}, bounded_ms(options.request_timeout_ms, deadline));
        if (s.result && s.result->status == ReplyStatus::ok) {
          learn(*s.result);
          refresh = false;
        } else if (s.result) {
          a = Attempt{Error(ErrorKind::unavailable, "unexpected STATUS answer from " + where()), true};
        } else {
          a = std::move(s);
        }
      }
      if (!a) {
        a = attempt(body, is_status ? bounded_ms(options.request_timeout_ms, deadline) : options.request_timeout_ms);
        if (is_status && a->result && a->result->status == ReplyStatus::ok) learn(*a->result);
      }

      if (a->result && a->result->status == ReplyStatus::redirect && options.follow_redirects) {
        const auto& coordinator = a->result->coordinator;
        if (!coordinator || coordinator->ip.empty() || coordinator->port == 0) {
          return Error(ErrorKind::invalid_request,
                       "node " + std::to_string(a->result->node) + " answered REDIRECT without naming a coordinator");
        }
        if (hops < Client::kMaxRedirects) {
          ++hops;
          ++trace.redirects;
          select(find_or_add(*coordinator));
          continue;
        }
        a = Attempt{Error(ErrorKind::not_coordinator,
                          "more than " + std::to_string(Client::kMaxRedirects) +
                              " redirects in a row; last named node " + std::to_string(coordinator->id) + " at " +
                              coordinator->ip + ":" + std::to_string(coordinator->port)),
                    true};
      }
      if (!a->safe_to_retry) return std::move(a->result);

      // Nothing was done: try again, on the next member, after a pause.
      hops = 0;
      const auto now = Clock::now();
      if (now >= deadline) {
        if (a->result) return std::move(a->result);  // the node's no_quorum / not_coordinator reply
        if (a->result.error().kind == ErrorKind::not_coordinator) return a->result.error();
        return out_of_time(a->result.error(), attempts);
      }
      std::this_thread::sleep_for(std::min<Clock::duration>(backoff, deadline - now));
      backoff = std::min(backoff * 2, kMaxBackoff);
      select((current + 1) % known.size());
      refresh = true;
      ++trace.retries;
    }
  }
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

namespace {

// The TLS context options.tls asks for (none without TLS); bad options and
// files are errors of kind config.
Result<tls::Context> client_tls_context(const ClientOptions& options) {
  const ClientTls& t = options.tls;
  if (!t.enabled) {
    if (!t.ca_file.empty() || !t.certificate_file.empty() || !t.key_file.empty() || !t.server_name.empty()) {
      return Error(ErrorKind::config, "TLS options are set but tls.enabled is false");
    }
    return tls::Context();
  }
  return tls::make_client_context(t);
}

}  // namespace

Result<Client> Client::connect(const std::string& host, std::uint16_t port, ClientOptions options) {
  auto context = client_tls_context(options);
  if (!context) return context.error();
  auto impl = std::make_unique<Impl>(host, port, std::move(options), std::move(*context));
  if (auto st = impl->ensure_connected(); !st) return st.error();
  return Client(std::move(impl));
}

Result<Client> Client::connect_cluster(std::vector<std::pair<std::string, std::uint16_t>> seeds,
                                       ClientOptions options) {
  if (seeds.empty()) return Error(ErrorKind::config, "connect_cluster: no seed address given");
  auto context = client_tls_context(options);
  if (!context) return context.error();
  auto impl = std::make_unique<Impl>(seeds.front().first, seeds.front().second, std::move(options),
                                     std::move(*context));
  impl->cluster = true;
  for (auto& [seed_host, seed_port] : seeds) {
    PeerConfig seed{0, std::move(seed_host), seed_port};
    impl->find_or_add(seed);
    impl->seeds.push_back(std::move(seed));
  }
  impl->select(0);
  auto status = impl->cluster_request(wire::StatusRequest{});
  if (!status) return status.error();
  return Client(std::move(impl));
}

Result<std::uint64_t> Client::send(std::string_view sql, bool redirect) {
  wire::Request request;
  request.id = impl_->next_id++;
  request.body = wire::ClientQuery{std::string(sql), redirect};
  return impl_->send(request);
}

Result<Reply> Client::receive() { return impl_->receive(); }

Result<Reply> Client::query(std::string_view sql, bool redirect) {
  if (impl_->cluster) return impl_->cluster_request(wire::ClientQuery{std::string(sql), redirect});
  auto id = send(sql, redirect);
  if (!id) return id.error();
  return receive();
}

Result<Reply> Client::status() {
  if (impl_->cluster) return impl_->cluster_request(wire::StatusRequest{});
  wire::Request request;
  request.id = impl_->next_id++;
  request.body = wire::StatusRequest{};
  if (auto id = impl_->send(request); !id) return id.error();
  return receive();
}

Result<std::uint64_t> Client::send_check() {
  wire::Request request;
  request.id = impl_->next_id++;
  request.body = wire::ChecksumRequest{};
  return impl_->send(request);
}

Result<Reply> Client::check() {
  if (impl_->cluster) return impl_->cluster_request(wire::ChecksumRequest{});
  wire::Request request;
  request.id = impl_->next_id++;
  request.body = wire::ChecksumRequest{};
  if (auto id = impl_->send(request); !id) return id.error();
  return receive();
}

const std::string& Client::host() const { return impl_->host; }
std::uint16_t Client::port() const { return impl_->port; }

bool Client::is_cluster() const { return impl_->cluster; }

std::vector<PeerConfig> Client::members() const {
  if (impl_->cluster) return impl_->known;
  return {PeerConfig{0, impl_->host, impl_->port}};
}

const QueryTrace& Client::last_trace() const { return impl_->trace; }

}  // namespace distdb
