// Certificates for the TLS tests, made by scripts/make-test-certs.sh into a
// temp dir: the tests use the script users are told to use, so a script
// that stopped making certificates distdb accepts fails them too. Also a
// TLS connection at the byte level, for tests that must send exactly what
// they want (peer frames in someone else's name).
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <string>
#include <vector>

#include "distdb/client.hpp"

namespace distdb::test {

class TestCerts {
 public:
  // A fresh CA in a fresh temp dir, with certificates for nodes `ids`
  // (CN distdb-node-<id>, IP 127.0.0.1 and DNS localhost) and a client
  // (CN distdb-client). Throws if the script fails ($DISTDB_SOURCE_ROOT
  // must name the source tree, as meson test sets it).
  explicit TestCerts(const std::vector<int>& ids = {1, 2, 3});
  ~TestCerts();  // removes the directory
  TestCerts(const TestCerts&) = delete;
  TestCerts& operator=(const TestCerts&) = delete;

  // Made once per test program (a CA and nodes 1, 2, 3).
  static const TestCerts& shared();

  const std::string& dir() const { return dir_; }
  std::string ca() const { return dir_ + "/ca.crt"; }
  std::string cert(int id) const { return dir_ + "/node" + std::to_string(id) + ".crt"; }
  std::string key(int id) const { return dir_ + "/node" + std::to_string(id) + ".key"; }
  std::string client_cert() const { return dir_ + "/client.crt"; }
  std::string client_key() const { return dir_ + "/client.key"; }

  // The "security" member of node `id`'s config (`id` may be "{id}", for
  // ClusterProcesses), e.g. "security": {"tls": {..., "client_certificates": "required"}}.
  // `extra`: its other members; by default clients are not authenticated,
  // as in the single-node fixtures.
  std::string security_json(const std::string& id, const std::string& client_certificates = "none",
                            const std::string& extra = R"("client_auth": "off")") const;

  // Client options that verify against this CA (and present the client
  // certificate when `with_certificate`).
  ClientTls client_tls(bool with_certificate = false) const;

 private:
  std::string dir_;
};

// Runs a program (absolute path, or found by /usr/bin/env) and returns its
// exit status; its output goes to `log`.
int run_program(const std::vector<std::string>& argv, const std::string& log,
                std::chrono::milliseconds timeout = std::chrono::seconds(30));

// A blocking TLS connection to 127.0.0.1:port, verifying the node against
// `ca` and presenting `cert`/`key` when given. Not for production: tests only.
class TlsConnection {
 public:
  TlsConnection(int port, const std::string& ca, const std::string& cert = "", const std::string& key = "");
  ~TlsConnection();
  TlsConnection(const TlsConnection&) = delete;
  TlsConnection& operator=(const TlsConnection&) = delete;

  bool connected() const { return ssl_ != nullptr; }
  const std::string& error() const { return error_; }  // why it is not connected
  bool write(const std::string& bytes);
  // Reads `n` newline-terminated lines (fewer if the deadline passes or the connection ends).
  std::vector<std::string> read_lines(std::size_t n,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::string error_;
  std::string buffer_;
};

}  // namespace distdb::test
