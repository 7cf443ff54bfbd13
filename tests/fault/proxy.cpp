#include "proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <string>

namespace distdb::fault {
namespace {

// Beyond this many bytes waiting in one direction the proxy stops reading
// from the sender, so the back-pressure reaches it as it would through a
// slow network rather than piling up here.
constexpr std::size_t kMaxBuffered = 1 << 20;

void set_nonblocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
}

sockaddr_in loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  return addr;
}

// Every descriptor here is close-on-exec. The runner forks distdb-node
// processes and runs the MariaDB control script (which starts mariadbd) while
// the proxy runs: a proxied socket inherited by one of them stays open after
// the proxy closes it, so its peer never sees the close -- a link that looks
// connected and goes nowhere, forever (the first version of this runner
// wedged clusters exactly so).
int listen_on_free_port(int& port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("proxy: socket failed");
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr = loopback(0);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 64) != 0) {
    close(fd);
    throw std::runtime_error("proxy: cannot listen on 127.0.0.1");
  }
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  set_nonblocking(fd);
  return fd;
}

// Connects to the node's real port. Blocking is fine on loopback: the
// answer (accepted by the backlog, or refused) is immediate even when the
// node is SIGSTOPped.
int connect_to(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr = loopback(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  set_nonblocking(fd);
  return fd;
}

// Closes with an RST: the peer's pending data is discarded and it learns at
// once that the connection is gone.
void abort_socket(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

}  // namespace

// One proxied connection: the sender (a node's outbound peer link) on
// `client`, the receiving node's real port on `server`.
struct PartitionProxy::Link {
  int from = 0;
  int to = 0;
  int client = -1;
  int server = -1;
  std::string to_server;  // read from client, not yet written to server
  std::string to_client;
  bool client_eof = false;
  bool done = false;
};

PartitionProxy::PartitionProxy(int nodes) : nodes_(nodes) {
  cut_.assign(static_cast<std::size_t>(nodes + 1),
              std::vector<bool>(static_cast<std::size_t>(nodes + 1), false));
  if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("proxy: pipe failed");
  for (int from = 1; from <= nodes; ++from) {
    for (int to = 1; to <= nodes; ++to) {
      if (from == to) continue;
      int port = 0;
      listeners_[{from, to}] = listen_on_free_port(port);
      ports_[{from, to}] = port;
    }
  }
}

PartitionProxy::~PartitionProxy() {
  stop_ = true;
  const char c = 0;
  (void)!write(wake_[1], &c, 1);
  if (thread_.joinable()) thread_.join();
  for (auto& [pair, fd] : listeners_) close(fd);
  close(wake_[0]);
  close(wake_[1]);
}

int PartitionProxy::port(int from, int to) const {
  return ports_.at({from, to});
}

void PartitionProxy::start(std::vector<int> real_ports) {
  real_ports_ = std::move(real_ports);
  thread_ = std::thread([this] { run(); });
}

void PartitionProxy::isolate(int node) {
  {
    std::lock_guard lock(mutex_);
    for (int other = 1; other <= nodes_; ++other) {
      if (other == node) continue;
      cut_[static_cast<std::size_t>(node)][static_cast<std::size_t>(other)] = true;
      cut_[static_cast<std::size_t>(other)][static_cast<std::size_t>(node)] = true;
    }
  }
  const char c = 0;
  (void)!write(wake_[1], &c, 1);
}

void PartitionProxy::heal(bool reset) {
  {
    std::lock_guard lock(mutex_);
    for (int from = 1; from <= nodes_; ++from) {
      for (int to = 1; to <= nodes_; ++to) {
        auto&& cell = cut_[static_cast<std::size_t>(from)][static_cast<std::size_t>(to)];
        if (cell && reset) reset_pairs_.emplace_back(from, to);
        cell = false;
      }
    }
    reset_pending_ = reset_pending_ || reset;
  }
  const char c = 0;
  (void)!write(wake_[1], &c, 1);
}

void PartitionProxy::run() {
  std::vector<std::unique_ptr<Link>> links;
  auto close_link = [](Link& l, bool abort) {
    if (l.client >= 0) abort ? abort_socket(l.client) : static_cast<void>(close(l.client));
    if (l.server >= 0) abort ? abort_socket(l.server) : static_cast<void>(close(l.server));
    l.client = l.server = -1;
    l.done = true;
  };
  std::vector<pollfd> fds;
  std::vector<std::pair<int, int>> listener_pairs;
  while (!stop_) {
    // One consistent view of the cut set per iteration; a reset requested
    // by heal() is applied here, before anything is forwarded again.
    std::vector<std::vector<bool>> cut;
    std::vector<std::pair<int, int>> resets;
    {
      std::lock_guard lock(mutex_);
      cut = cut_;
      if (reset_pending_) {
        resets.swap(reset_pairs_);
        reset_pending_ = false;
      }
    }
    auto is_cut = [&](int from, int to) {
      return cut[static_cast<std::size_t>(from)][static_cast<std::size_t>(to)];
    };
    for (const auto& [from, to] : resets) {
      for (auto& l : links) {
        if (!l->done && l->from == from && l->to == to) close_link(*l, true);
      }
      // Connections the sender opened during the cut wait in the backlog:
      // they belong to the same lost flows.
      for (;;) {
        const int fd = accept4(listeners_.at({from, to}), nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) break;
        abort_socket(fd);
      }
    }
    std::erase_if(links, [](const std::unique_ptr<Link>& l) { return l->done; });

    fds.clear();
    listener_pairs.clear();
    fds.push_back({wake_[0], POLLIN, 0});
    for (const auto& [pair, fd] : listeners_) {
      // A cut pair is not accepted: the sender's connect() still completes
      // (backlog) and its bytes go nowhere, as in a real partition.
      fds.push_back({is_cut(pair.first, pair.second) ? -1 : fd, POLLIN, 0});
      listener_pairs.push_back(pair);
    }
    const std::size_t first_link = fds.size();
    for (const auto& l : links) {
      const bool active = !is_cut(l->from, l->to);
      short client_events = 0;
      short server_events = 0;
      if (!l->client_eof && l->to_server.size() < kMaxBuffered) client_events |= POLLIN;
      if (!l->to_client.empty()) client_events |= POLLOUT;
      if (l->to_client.size() < kMaxBuffered) server_events |= POLLIN;
      if (!l->to_server.empty()) server_events |= POLLOUT;
      fds.push_back({active ? l->client : -1, client_events, 0});
      fds.push_back({active ? l->server : -1, server_events, 0});
    }
    if (poll(fds.data(), fds.size(), 200) < 0) continue;

    if (fds[0].revents != 0) {
      char drain[64];
      while (read(wake_[0], drain, sizeof drain) > 0) {
      }
    }
    for (std::size_t i = 0; i < listener_pairs.size(); ++i) {
      if ((fds[1 + i].revents & POLLIN) == 0) continue;
      const auto [from, to] = listener_pairs[i];
      for (;;) {
        const int client = accept4(fds[1 + i].fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (client < 0) break;
        const int server = connect_to(real_ports_.at(static_cast<std::size_t>(to - 1)));
        if (server < 0) {  // the node is down: the sender sees its connection closed
          close(client);
          continue;
        }
        auto l = std::make_unique<Link>();
        l->from = from;
        l->to = to;
        l->client = client;
        l->server = server;
        links.push_back(std::move(l));
      }
    }
    char buf[64 * 1024];
    const std::size_t polled_links = (fds.size() - first_link) / 2;
    for (std::size_t k = 0; k < polled_links; ++k) {
      Link& l = *links[k];
      const short cr = fds[first_link + 2 * k].revents;
      const short sr = fds[first_link + 2 * k + 1].revents;
      if (cr & (POLLIN | POLLHUP | POLLERR)) {
        const ssize_t n = recv(l.client, buf, sizeof buf, 0);
        if (n > 0) {
          l.to_server.append(buf, static_cast<std::size_t>(n));
        } else if (n == 0) {
          l.client_eof = true;
        } else if (errno != EAGAIN && errno != EINTR) {
          close_link(l, true);
          continue;
        }
      }
      if (sr & (POLLIN | POLLHUP | POLLERR)) {
        const ssize_t n = recv(l.server, buf, sizeof buf, 0);
        if (n > 0) {
          l.to_client.append(buf, static_cast<std::size_t>(n));
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
          // The receiving node went away (killed): the sender must learn it.
          close_link(l, true);
          continue;
        }
      }
      if ((sr & POLLOUT) && !l.to_server.empty()) {
        const ssize_t n = send(l.server, l.to_server.data(), l.to_server.size(), MSG_NOSIGNAL);
        if (n > 0) {
          forwarded_ += static_cast<std::uint64_t>(n);
          l.to_server.erase(0, static_cast<std::size_t>(n));
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
          close_link(l, true);
          continue;
        }
      }
      if ((cr & POLLOUT) && !l.to_client.empty()) {
        const ssize_t n = send(l.client, l.to_client.data(), l.to_client.size(), MSG_NOSIGNAL);
        if (n > 0) {
          l.to_client.erase(0, static_cast<std::size_t>(n));
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
          close_link(l, true);
          continue;
        }
      }
      // The sender closed its side and everything it sent has been passed
      // on: the flow is over.
      if (l.client_eof && l.to_server.empty()) close_link(l, false);
    }
  }
  for (auto& l : links) {
    if (!l->done) close_link(*l, true);
  }
}

}  // namespace distdb::fault
