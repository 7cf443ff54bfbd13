// distdb::Client over a blocking socket, with poll() for deadlines.
#include "distdb/client.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <vector>

#include "wire/codec.hpp"
#include "wire/frame_splitter.hpp"

namespace distdb {
namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// Connects with a deadline: non-blocking connect, then poll for writability.
Result<int> connect_socket(const std::string& host, std::uint16_t port, int timeout_ms) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string where = host + ":" + std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found); rc != 0) {
    return Error(ErrorKind::unavailable, "cannot resolve " + host + ": " + gai_strerror(rc));
  }
  std::string last_error = "no address";
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
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

}  // namespace

struct Client::Impl {
  Impl(std::string h, std::uint16_t p, ClientOptions o, int socket_fd)
      : host(std::move(h)), port(p), options(o), fd(socket_fd), splitter(o.max_reply_bytes) {}
  ~Impl() { disconnect(); }

  std::string host;
  std::uint16_t port;
  ClientOptions options;
  int fd;
  wire::FrameSplitter splitter;
  std::deque<std::string> frames;  // replies received but not yet returned
  std::uint64_t next_id = 1;
  std::size_t outstanding = 0;     // requests sent, replies not yet returned

  std::string where() const { return host + ":" + std::to_string(port); }

  void disconnect() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }

  // A broken connection is reconnected by the next request, not silently in
  // the middle of one: a request whose reply was lost has an unknown outcome.
  Status ensure_connected() {
    if (fd >= 0) return {};
    auto s = connect_socket(host, port, options.connect_timeout_ms);
    if (!s) return s.error();
    fd = *s;
    splitter = wire::FrameSplitter(options.max_reply_bytes);
    frames.clear();
    outstanding = 0;
    return {};
  }

  Error broken(ErrorKind kind, const std::string& what) {
    disconnect();
    const bool pending = outstanding > 0;
    outstanding = 0;
    return Error(pending && kind == ErrorKind::unavailable ? ErrorKind::outcome_unknown : kind,
                 "connection to " + where() + " " + what);
  }

  Status write_all(const std::string& data) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(options.request_timeout_ms);
    std::size_t done = 0;
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

  Result<std::uint64_t> send(const wire::Request& request) {
    if (auto st = ensure_connected(); !st) return st.error();
    std::string line = wire::encode_request(request);
    line.push_back('\n');
    if (auto st = write_all(line); !st) return st.error();
    ++outstanding;
    return *request.id;
  }

  Result<Reply> receive() {
    if (fd < 0) return Error(ErrorKind::unavailable, "not connected to " + where());
    if (outstanding == 0) return Error(ErrorKind::invalid_request, "no request is waiting for a reply");
    const auto deadline = Clock::now() + std::chrono::milliseconds(options.request_timeout_ms);
    std::vector<std::string> got;
    char buf[64 * 1024];
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
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

Result<Client> Client::connect(const std::string& host, std::uint16_t port, ClientOptions options) {
  auto fd = connect_socket(host, port, options.connect_timeout_ms);
  if (!fd) return fd.error();
  return Client(std::make_unique<Impl>(host, port, options, *fd));
}

Result<std::uint64_t> Client::send(std::string_view sql, bool redirect) {
  wire::Request request;
  request.id = impl_->next_id++;
  request.body = wire::ClientQuery{std::string(sql), redirect};
  return impl_->send(request);
}

Result<Reply> Client::receive() { return impl_->receive(); }

Result<Reply> Client::query(std::string_view sql, bool redirect) {
  auto id = send(sql, redirect);
  if (!id) return id.error();
  return receive();
}

Result<Reply> Client::status() {
  wire::Request request;
  request.id = impl_->next_id++;
  request.body = wire::StatusRequest{};
  if (auto id = impl_->send(request); !id) return id.error();
  return receive();
}

const std::string& Client::host() const { return impl_->host; }
std::uint16_t Client::port() const { return impl_->port; }

}  // namespace distdb
