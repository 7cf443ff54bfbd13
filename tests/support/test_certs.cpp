#include "test_certs.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>

#include "process.hpp"

namespace distdb::test {

int run_program(const std::vector<std::string>& argv, const std::string& log,
                std::chrono::milliseconds timeout) {
  std::vector<std::string> full = argv;
  if (full.at(0).front() != '/') full.insert(full.begin(), "/usr/bin/env");
  Process p(full, log);
  const auto code = p.wait_exit(timeout);
  return code ? *code : -1;
}

TestCerts::TestCerts(const std::vector<int>& ids) : dir_(make_temp_dir("distdb-certs")) {
  const char* root = std::getenv("DISTDB_SOURCE_ROOT");
  if (root == nullptr) throw std::runtime_error("DISTDB_SOURCE_ROOT is not set (run through meson test)");
  std::vector<std::string> argv{"bash", std::string(root) + "/scripts/make-test-certs.sh", dir_ + "/certs"};
  for (int id : ids) argv.push_back(std::to_string(id));
  const std::string log = dir_ + "/make-test-certs.log";
  if (run_program(argv, log) != 0) {
    std::ifstream in(log);
    const std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
    throw std::runtime_error("scripts/make-test-certs.sh failed: " + output);
  }
  dir_ += "/certs";
}

TestCerts::~TestCerts() {
  std::error_code ignored;
  std::filesystem::remove_all(std::filesystem::path(dir_).parent_path(), ignored);
}

const TestCerts& TestCerts::shared() {
  static const TestCerts certs;
  return certs;
}

std::string TestCerts::security_json(const std::string& id, const std::string& client_certificates,
                                     const std::string& extra) const {
  return R"("security": {)" + extra + (extra.empty() ? "" : ", ") + R"("tls": {"certificate": ")" + dir_ +
         "/node" + id + R"(.crt", "key": ")" + dir_ + "/node" + id + R"(.key", "ca": ")" + ca() +
         R"(", "client_certificates": ")" + client_certificates + R"("}})";
}

ClientTls TestCerts::client_tls(bool with_certificate) const {
  ClientTls t;
  t.enabled = true;
  t.ca_file = ca();
  if (with_certificate) {
    t.certificate_file = client_cert();
    t.key_file = client_key();
  }
  return t;
}

namespace {

int ms_left(std::chrono::steady_clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now())
          .count();
  return left > 0 ? static_cast<int>(left) : 0;
}

std::string openssl_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  const char* reason = code != 0 ? ERR_reason_error_string(code) : nullptr;
  return reason != nullptr ? reason : "unknown";
}

}  // namespace

TlsConnection::TlsConnection(int port, const std::string& ca, const std::string& cert,
                             const std::string& key) {
  std::signal(SIGPIPE, SIG_IGN);  // OpenSSL writes with write(2)
  ctx_ = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_load_verify_locations(ctx_, ca.c_str(), nullptr) != 1 ||
      (!cert.empty() && (SSL_CTX_use_certificate_chain_file(ctx_, cert.c_str()) != 1 ||
                         SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM) != 1))) {
    error_ = "cannot load the certificates: " + openssl_error();
    return;
  }
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    error_ = "cannot connect";
    return;
  }
  timeval tv{10, 0};  // a handshake that stalls fails the test rather than hanging it
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  SSL* ssl = SSL_new(ctx_);
  SSL_set_fd(ssl, fd_);
  if (SSL_connect(ssl) != 1) {
    error_ = "TLS handshake failed: " + openssl_error();
    SSL_free(ssl);
    return;
  }
  ssl_ = ssl;
}

TlsConnection::~TlsConnection() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  if (fd_ >= 0) ::close(fd_);
}

bool TlsConnection::write(const std::string& bytes) {
  if (ssl_ == nullptr) return false;
  std::size_t written = 0;
  return SSL_write_ex(ssl_, bytes.data(), bytes.size(), &written) == 1 && written == bytes.size();
}

std::vector<std::string> TlsConnection::read_lines(std::size_t n, std::chrono::milliseconds timeout) {
  std::vector<std::string> lines;
  if (ssl_ == nullptr) return lines;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[16384];
  for (;;) {
    std::size_t pos;
    while (lines.size() < n && (pos = buffer_.find('\n')) != std::string::npos) {
      lines.push_back(buffer_.substr(0, pos));
      buffer_.erase(0, pos + 1);
    }
    if (lines.size() >= n) break;
    if (SSL_pending(ssl_) == 0) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, ms_left(deadline)) <= 0) break;
    }
    std::size_t got = 0;
    if (SSL_read_ex(ssl_, buf, sizeof buf, &got) != 1) break;
    buffer_.append(buf, got);
  }
  return lines;
}

}  // namespace distdb::test
