// distdb-bench-relay: the cheapest middleware there can be, for scripts/bench.sh.
//
//   distdb-bench-relay LISTEN_PORT UPSTREAM_HOST:PORT
//
// Accepts connections on 127.0.0.1:LISTEN_PORT and copies bytes between each
// one and a connection of its own to the upstream server, and does nothing
// else: one thread, one epoll set, no parsing, no copy beyond one buffer.
// A load sent through it, next to the same load sent straight to the
// server, measures what one more process in the path costs on this machine
// (every request and answer is read and written once more, and the relay
// needs CPU to do it): the floor under any middleware's read throughput.
// Not installed; runs until SIGTERM or SIGINT.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fcntl.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <unordered_map>

#include "options.hpp"

namespace {

volatile std::sig_atomic_t stop_requested = 0;

void on_signal(int) {
  stop_requested = 1;
}

int fail(const std::string& what) {
  std::fprintf(stderr, "distdb-bench-relay: %s: %s\n", what.c_str(), std::strerror(errno));
  return 1;
}

void set_nodelay(int fd) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int connect_upstream(const distdb::bench::Endpoint& upstream) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(upstream.host.c_str(), std::to_string(upstream.port).c_str(), &hints, &found) != 0)
    return -1;
  int fd = -1;
  for (addrinfo* ai = found; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  return fd;
}

// Writes all of buf to fd (non-blocking), waiting for room when the kernel
// has none: requests and answers here are small, so that is rare.
bool write_all(int fd, const char* buf, std::size_t len) {
  while (len > 0) {
    const ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
    if (n > 0) {
      buf += n;
      len -= static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, 10000) <= 0) return false;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: distdb-bench-relay LISTEN_PORT UPSTREAM_HOST:PORT\n");
    return 2;
  }
  const auto listen_port = distdb::bench::parse_endpoint(std::string("127.0.0.1:") + argv[1]);
  const auto upstream = distdb::bench::parse_endpoint(argv[2]);
  if (!listen_port || !upstream) {
    std::fprintf(stderr, "distdb-bench-relay: expected a port and HOST:PORT\n");
    return 2;
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);

  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener < 0) return fail("socket");
  const int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(listen_port->port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return fail("bind");
  if (listen(listener, SOMAXCONN) != 0) return fail("listen");
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return fail("epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listener;
  epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);

  std::unordered_map<int, int> peer;  // each relayed fd -> the other end
  auto drop = [&](int fd) {
    const auto it = peer.find(fd);
    if (it == peer.end()) return;
    const int other = it->second;
    peer.erase(fd);
    peer.erase(other);
    close(fd);
    close(other);
  };
  static char buf[64 * 1024];
  epoll_event events[256];
  while (stop_requested == 0) {
    const int n = epoll_wait(ep, events, 256, 500);
    if (n < 0 && errno != EINTR) return fail("epoll_wait");
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listener) {
        for (;;) {
          const int client = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (client < 0) break;
          const int server = connect_upstream(*upstream);
          if (server < 0) {
            close(client);
            continue;
          }
          fcntl(server, F_SETFL, O_NONBLOCK);
          set_nodelay(client);
          set_nodelay(server);
          peer[client] = server;
          peer[server] = client;
          for (int end : {client, server}) {
            epoll_event e{};
            e.events = EPOLLIN;
            e.data.fd = end;
            epoll_ctl(ep, EPOLL_CTL_ADD, end, &e);
          }
        }
        continue;
      }
      const auto it = peer.find(fd);
      if (it == peer.end()) continue;  // dropped earlier in this batch
      const ssize_t got = recv(fd, buf, sizeof buf, 0);
      if (got > 0) {
        if (!write_all(it->second, buf, static_cast<std::size_t>(got))) drop(fd);
      } else if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        drop(fd);
      }
    }
  }
  return 0;
}
