// The shell's connections: the node the user chose, plus a cached one to the
// last coordinator a REDIRECT named. Follows redirects (at most kMaxRedirects
// hops) and turns transport failures into one readable line.
//
// Failures: the members of the cluster are learned from STATUS (at connect,
// at every idle check and every status() call). When the current node cannot
// be reached and nothing of the statement was sent, the session moves to the
// first other known member that answers STATUS (telling the notifier) and
// runs the statement there. A reply saying a failover is in progress
// (no_quorum, not_coordinator) is retried for up to kFailoverRetry, then
// reported as one line. A statement whose outcome is unknown is never re-run.
//
// Logins: every connection the session opens (the node, the coordinator a
// redirect names, a member it fails over to, a node chosen with :node) logs
// in with the same user and password (ClientOptions), when there is a user.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "distdb/client.hpp"
#include "distdb/config.hpp"
#include "distdb/error.hpp"
#include "distdb/reply.hpp"
#include "cluster_status.hpp"
#include "messages.hpp"
#include "outcome.hpp"

namespace distdb::cli {

// A transport error from distdb::Client as one line for the user, e.g.
// "cannot connect to 127.0.0.1:5000: connection refused".
std::string describe_transport_error(const Error& error, const std::string& address);

class Session {
 public:
  static constexpr int kMaxRedirects = 3;

  // A connection silent for longer than this is checked (STATUS) before a
  // statement is sent on it, so that a connection the node closed meanwhile
  // is replaced instead of failing the statement with an unknown outcome.
  // One second: in an interactive session nearly every statement is checked,
  // so a node that died since the last one is noticed (and the statement goes
  // to another member) instead of failing with an unknown outcome.
  static constexpr std::chrono::seconds kIdleCheck{1};

  // How long replies saying a failover is in progress are retried.
  static constexpr std::chrono::milliseconds kFailoverRetry{3000};

  Session(std::string host, std::uint16_t port, ClientOptions options = {});

  // The login of every connection from now on; the open ones are dropped,
  // so that the next request connects and logs in with it.
  void set_credentials(std::string user, std::string password);
  const std::string& user() const { return options_.user; }

  // Points the session at another node; the next request connects to it.
  void set_node(std::string host, std::uint16_t port);
  const std::string& host() const { return node_.host; }
  std::uint16_t port() const { return node_.port; }
  std::string address() const { return format_address(node_.host, node_.port); }

  // Connects now if not connected; the error is readable. A node that
  // requires a login this session has not given (or refused it) is an
  // error of kind unauthenticated.
  Status connect();

  // Runs one statement, following REDIRECT replies; `on_redirect` is called
  // before each hop with the coordinator the reply named.
  Outcome run(std::string_view sql, const std::function<void(const PeerConfig&)>& on_redirect);

  // The node's STATUS reply (members, roles), or a readable error.
  Result<Reply> status();
  // A CHECK request (every member's checksum at one log position) on the current node.
  Result<Reply> check();

  // Members learned from the last STATUS answer (empty before one).
  const std::vector<PeerConfig>& members() const { return members_; }

  // Called with one line for the user when the session moves to another node.
  void set_notifier(std::function<void(const std::string&)> notify) { notify_ = std::move(notify); }

 private:
  struct Link {
    std::string host;
    std::uint16_t port = 0;
    std::optional<Client> client;
    std::chrono::steady_clock::time_point last_used{};
  };

  Result<Client*> open(Link& link);
  Result<Reply> query_on(Link& link, std::string_view sql);
  // One try, following redirects; `coordinator_failed` says whether a
  // failure happened on the coordinator's link rather than the node's.
  Result<Reply> run_once(std::string_view sql, const std::function<void(const PeerConfig&)>& on_redirect,
                         bool& coordinator_failed);
  void learn_members(const Reply& status);
  // Moves node_ to another known member that answers STATUS; false if none does.
  bool fail_over();

  ClientOptions options_;
  Link node_;
  Link coordinator_;
  std::vector<PeerConfig> members_;
  std::function<void(const std::string&)> notify_;
};

}  // namespace distdb::cli
