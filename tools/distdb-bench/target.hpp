// What the benchmark talks to: one MariaDB server directly (the baseline),
// or a distdb cluster. A Target hands out one Connection per benchmark
// thread; the runner only ever sees this interface, so both targets run the
// exact same loop and their figures can be compared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "distdb/error.hpp"
#include "options.hpp"

namespace distdb::bench {

// The outcome of one statement.
struct OpResult {
  bool ok = false;
  std::uint64_t rows = 0;  // rows returned by a query, rows affected by a write
  // When !ok: a short kind used to count errors ("sql", "connection", or
  // distdb's error kinds: "no_quorum", "outcome_unknown", ...) and the
  // message that came with it.
  std::string error_kind;
  std::string error_message;
  // The connection itself failed (not the statement): the runner backs off
  // a little before the next statement instead of spinning on a dead link.
  bool connection_failed = false;

  static OpResult success(std::uint64_t rows) {
    OpResult r;
    r.ok = true;
    r.rows = rows;
    return r;
  }
  static OpResult failure(std::string kind, std::string message, bool connection_failed = false) {
    OpResult r;
    r.error_kind = std::move(kind);
    r.error_message = std::move(message);
    r.connection_failed = connection_failed;
    return r;
  }
};

// One persistent connection, used by one thread only.
class Connection {
 public:
  virtual ~Connection() = default;

  // Runs one statement and waits for its outcome.
  virtual OpResult execute(const std::string& sql) = 0;

  // Pipelining, only where Target::supports_pipelining(): send() writes a
  // statement without waiting for it; receive() waits for the outcome of
  // the oldest statement sent and not yet received.
  virtual Status send(const std::string& sql);
  virtual OpResult receive();
};

class Target {
 public:
  virtual ~Target() = default;

  // Once, before any connect(): whatever the target needs first (create the
  // database, find the coordinator).
  virtual Status prepare() = 0;
  // Where connections go ("host:port"), after prepare(). Thread i connects to
  // endpoints()[i % size].
  virtual const std::vector<Endpoint>& endpoints() const = 0;
  virtual Result<std::unique_ptr<Connection>> connect(std::size_t endpoint) = 0;
  virtual bool supports_pipelining() const = 0;
  // Whether each endpoint holds a table of its own (direct over several
  // servers), so that the table is set up, and dropped, on every one of
  // them; false when they serve one database (a cluster's nodes).
  virtual bool independent_endpoints() const { return false; }
};

// An error of kind `config` when this distdb-bench was built without
// MariaDB Connector/C.
Result<std::unique_ptr<Target>> make_direct_target(const Options& options);
std::unique_ptr<Target> make_cluster_target(const Options& options);
// Two-phase commit run by the benchmark itself across options.dbs: the floor
// under a replicated write (two_phase_target.cpp).
Result<std::unique_ptr<Target>> make_two_phase_target(const Options& options);

}  // namespace distdb::bench
