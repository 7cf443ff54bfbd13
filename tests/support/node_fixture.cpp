#include "node_fixture.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <utility>

#include "auth/scram.hpp"

namespace distdb::test {

const std::string& test_users_json() {
  static const std::string json = [] {
    const std::string verifier = auth::format_verifier(
        auth::derive_verifier(kTestPassword, auth::Bytes(16, 0x5a), auth::kMinIterations));
    return R"("users": [{"name": ")" + std::string(kTestUser) + R"(", "password": ")" + verifier + R"("}])";
  }();
  return json;
}

std::string test_security_json() {
  return R"("security": {"client_auth": "users", )" + test_users_json() + "}";
}

ClientOptions test_client_options() {
  ClientOptions o;
  o.user = kTestUser;
  o.password = kTestPassword;
  return o;
}

namespace {

int ms_left(std::chrono::steady_clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

}  // namespace

int connect_loopback(int port, const std::string& source) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (!source.empty()) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    if (inet_pton(AF_INET, source.c_str(), &local.sin_addr) != 1 ||
        ::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
      ::close(fd);
      return -1;
    }
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool port_accepts(int port) {
  const int fd = connect_loopback(port);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

NodeProcess::NodeProcess(const std::string& extra_json, int id, NodeAuth auth)
    : dir_(make_temp_dir("distdb-e2e")), config_path_(dir_ + "/config.json"), port_(free_port()) {
  std::string security;
  if (extra_json.find("\"security\"") == std::string::npos) {
    security = auth == NodeAuth::users ? test_security_json() : R"("security": {"client_auth": "off"})";
  }
  std::ofstream(config_path_) << "{\n"
                              << "  \"local_node\": {\"id\": " << id
                              << ", \"ip\": \"127.0.0.1\", \"port\": " << port_
                              << ", \"storage\": {\"backend\": \"sqlite\", \"path\": \"node.db\", \"spool_dir\": \"spool\"}},\n"
                              << "  \"peers\": []" << (extra_json.empty() ? "" : ",\n  " + extra_json)
                              << (security.empty() ? "" : ",\n  " + security) << "\n}\n";
  const char* bin = std::getenv("DISTDB_NODE_BIN");
  if (bin == nullptr) throw std::runtime_error("DISTDB_NODE_BIN is not set (run through meson test)");
  process_ = std::make_unique<Process>(std::vector<std::string>{bin, config_path_}, dir_ + "/node.log");
}

NodeProcess::~NodeProcess() {
  process_.reset();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

bool NodeProcess::wait_ready(std::chrono::milliseconds timeout) {
  return wait_until([this] { return !process_->running() || port_accepts(port_); }, timeout) &&
         process_->running();
}

RawConnection::RawConnection(int port, const std::string& source) : fd_(connect_loopback(port, source)) {}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConnection::write(const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

std::string RawConnection::read_until_close(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  for (;;) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, ms_left(deadline)) <= 0) break;
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) break;
    buffer_.append(buf, static_cast<std::size_t>(n));
  }
  return std::exchange(buffer_, {});
}

std::vector<std::string> RawConnection::read_lines(std::size_t n, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::string> lines;
  char buf[65536];
  for (;;) {
    std::size_t pos;
    while (lines.size() < n && (pos = buffer_.find('\n')) != std::string::npos) {
      lines.push_back(buffer_.substr(0, pos));
      buffer_.erase(0, pos + 1);
    }
    if (lines.size() >= n) break;
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, ms_left(deadline)) <= 0) break;
    const ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
    if (got <= 0) break;
    buffer_.append(buf, static_cast<std::size_t>(got));
  }
  return lines;
}

bool RawConnection::closed_by_peer(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, ms_left(deadline)) <= 0) return false;
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
    buffer_.append(buf, static_cast<std::size_t>(n));
  }
}

}  // namespace distdb::test
