// distdb::Client: a connection to a node, for programs that talk to a
// cluster (distdb-cli, distdb-bench, applications).
//
// One Client is one persistent TCP connection carrying requests with ids;
// it is not thread-safe (use one per thread). Transport failures (refused,
// dropped, timed out) are returned as errors; an SQL error is a Reply with
// status ReplyStatus::error.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "distdb/error.hpp"
#include "distdb/export.hpp"
#include "distdb/reply.hpp"

namespace distdb {

struct ClientOptions {
  int connect_timeout_ms = 5000;
  int request_timeout_ms = 30000;
  std::size_t max_reply_bytes = 256 * 1024 * 1024;
};

class DISTDB_API Client {
 public:
  // Connects to host:port.
  static Result<Client> connect(const std::string& host, std::uint16_t port, ClientOptions options = {});

  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  // Runs one statement and waits for its reply. With `redirect`, a
  // non-coordinator answers a write with REDIRECT instead of forwarding it.
  Result<Reply> query(std::string_view sql, bool redirect = false);
  // Asks the node for its status (Reply::result: one row per member).
  Result<Reply> status();

  // Pipelining: send() queues a request and returns its id; receive()
  // returns the next reply, in request order.
  Result<std::uint64_t> send(std::string_view sql, bool redirect = false);
  Result<Reply> receive();

  const std::string& host() const;
  std::uint16_t port() const;

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace distdb
