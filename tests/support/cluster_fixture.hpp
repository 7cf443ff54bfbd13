// A cluster of distdb-node processes for end-to-end tests: each node runs
// as its own process, on its own port, in front of its own database (a
// SQLite file, or a database on one of the MariaDB test servers).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "distdb/client.hpp"
#include "process.hpp"

namespace distdb::test {

class ClusterProcesses {
 public:
  enum class Backend { sqlite, mariadb };

  // The port node `from` lists for member `to` in its config (its `peers`
  // entry). By default `to`'s own port; the fault runner (tests/fault) points
  // each directed pair at its own proxy, so that it can cut links. Node
  // identity on peer links is the `from` id inside each frame, not the
  // address, which is what makes this work.
  using PeerPort = std::function<int(int from, int to)>;

  // `database` names the MariaDB database each node uses (dropped first), or
  // is ignored for SQLite. Nodes get ids 1..n.
  // `extra_json` is spliced into every node's top-level config object, with
  // "{id}" replaced by the node's id (e.g. in the names of its TLS files).
  // Clients log in as kTestUser (node_fixture.hpp) unless `extra_json` has
  // its own "security" member; the fixture's own clients (query(), the
  // waits) send those credentials unless use_client_options() says
  // otherwise (a node with client_auth "off" accepts them).
  ClusterProcesses(int n, Backend backend, const std::string& database, std::string extra_json = "",
                   PeerPort peer_port = {});
  ~ClusterProcesses();

  // The options of every connection the helpers below open (e.g. TLS);
  // client_options() until this is called.
  void use_client_options(ClientOptions options) { client_options_ = std::move(options); }

  int size() const { return static_cast<int>(ports_.size()); }
  int port(int id) const { return ports_.at(static_cast<std::size_t>(id - 1)); }
  void start(int id);
  void kill(int id);  // SIGKILL
  void signal(int id, int sig);  // any signal (SIGSTOP/SIGCONT for pauses)
  bool running(int id);
  std::string log(int id) const;
  // Where the configs and the node logs (node<id>.log, appended across restarts) live.
  const std::string& dir() const { return dir_; }

  // Options of a client that logs in as kTestUser.
  static ClientOptions client_options();

  // Polls STATUS on `via` until `coordinator` is coordinator and every
  // running node is in its view (or the deadline passes).
  bool wait_for_coordinator(int coordinator, std::chrono::milliseconds timeout);
  // The coordinator `via` reports (0 if none or unreachable).
  int coordinator_seen_by(int via);

  // One statement through node `id` (a fresh connection).
  Result<Reply> query(int id, const std::string& sql, bool redirect = false);
  // A CHECK request (every member's checksum at one position) through node `id`.
  Result<Reply> check(int id);
  // The ids in table `teste`, in order, as node `id` serves them ({-1} when it cannot).
  std::vector<std::int64_t> teste_ids(int id);
  // Polls `sql` (a read) on node `id` until its first cell equals `expected`.
  bool wait_for_value(int id, const std::string& sql, std::int64_t expected, std::chrono::milliseconds timeout);

 private:
  std::string config_json(int id) const;

  Backend backend_;
  std::string database_;
  std::string extra_json_;
  PeerPort peer_port_;
  ClientOptions client_options_;
  std::string dir_;
  std::vector<int> ports_;
  std::vector<std::unique_ptr<Process>> processes_;
};

}  // namespace distdb::test
