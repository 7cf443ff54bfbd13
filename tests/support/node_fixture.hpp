// A distdb-node process for end-to-end tests, and a raw TCP connection to
// talk to it byte by byte (as the seed's client does).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "distdb/client.hpp"
#include "process.hpp"

namespace distdb::test {

// The client account of test nodes that require a login.
inline constexpr const char* kTestUser = "tester";
inline constexpr const char* kTestPassword = "test password, not a secret";

// `"users": [...]` listing kTestUser (its verifier has 4096 iterations, so
// that tests log in quickly), for a "security" object.
const std::string& test_users_json();
// `"security": {"client_auth": "users", "users": [...]}`, a top-level member.
std::string test_security_json();
// Options of a client that logs in as kTestUser.
ClientOptions test_client_options();

// Whether a test node requires clients to log in.
enum class NodeAuth {
  off,    // "client_auth": "off": the seed's unauthenticated style
  users,  // kTestUser, by SCRAM-SHA-256
};

// Starts distdb-node ($DISTDB_NODE_BIN) on a free port with a SQLite file in
// a fresh temp dir. `extra_json` is spliced into the top-level config object
// (e.g. "\"limits\": {\"max_message_bytes\": 2048}"); unless it has its
// own "security" member, `auth` decides whether clients log in.
class NodeProcess {
 public:
  explicit NodeProcess(const std::string& extra_json = "", int id = 1, NodeAuth auth = NodeAuth::off);
  ~NodeProcess();

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  const std::string& config_path() const { return config_path_; }
  Process& process() { return *process_; }
  bool wait_ready(std::chrono::milliseconds timeout = std::chrono::seconds(15));

 private:
  std::string dir_;
  std::string config_path_;
  int port_;
  std::unique_ptr<Process> process_;
};

// A blocking TCP connection with deadlines.
class RawConnection {
 public:
  // `source`: the local address to connect from (any 127.x.y.z on Linux),
  // so that one test can be several clients; empty: the system's choice.
  explicit RawConnection(int port, const std::string& source = "");
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return fd_ >= 0; }
  bool write(const std::string& bytes);
  // Reads until the peer closes the connection (or the timeout passes).
  std::string read_until_close(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Reads `n` newline-terminated lines.
  std::vector<std::string> read_lines(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // True when the peer has closed its side (reads return end of file).
  bool closed_by_peer(std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  int fd_ = -1;
  std::string buffer_;
};

bool port_accepts(int port);
// A blocking TCP connection to 127.0.0.1:port (from `source`, when not
// empty), or -1.
int connect_loopback(int port, const std::string& source = "");

}  // namespace distdb::test
