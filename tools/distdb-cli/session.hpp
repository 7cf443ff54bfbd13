// The shell's connections: the node the user chose, plus a cached one to the
// last coordinator a REDIRECT named. Follows redirects (at most kMaxRedirects
// hops) and turns transport failures into one readable line.
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
#include "messages.hpp"
#include "outcome.hpp"

namespace distdb::cli {

// "host:port", with brackets around IPv6 addresses.
std::string format_address(const std::string& host, std::uint16_t port);

// A transport error from distdb::Client as one line for the user, e.g.
// "cannot connect to 127.0.0.1:5000: connection refused".
std::string describe_transport_error(const Error& error, const std::string& address, Lang lang);

class Session {
 public:
  static constexpr int kMaxRedirects = 3;

  // A connection silent for longer than this is checked (STATUS) before a
  // statement is sent on it, so that a connection the node closed meanwhile
  // is replaced instead of failing the statement with an unknown outcome.
  static constexpr std::chrono::seconds kIdleCheck{20};

  Session(std::string host, std::uint16_t port, Lang lang, ClientOptions options = {});

  // Points the session at another node; the next request connects to it.
  void set_node(std::string host, std::uint16_t port);
  const std::string& host() const { return node_.host; }
  std::uint16_t port() const { return node_.port; }
  std::string address() const { return format_address(node_.host, node_.port); }

  // Connects now if not connected; the error is readable.
  Status connect();

  // Runs one statement, following REDIRECT replies; `on_redirect` is called
  // before each hop with the coordinator the reply named.
  Outcome run(std::string_view sql, const std::function<void(const PeerConfig&)>& on_redirect);

  // The node's STATUS reply (members, roles), or a readable error.
  Result<Reply> status();

 private:
  struct Link {
    std::string host;
    std::uint16_t port = 0;
    std::optional<Client> client;
    std::chrono::steady_clock::time_point last_used{};
  };

  Result<Client*> open(Link& link);
  Result<Reply> query_on(Link& link, std::string_view sql);

  Lang lang_;
  ClientOptions options_;
  Link node_;
  Link coordinator_;
};

}  // namespace distdb::cli
