// distdb::Node: one member of a cluster, embeddable in any program.
//
// Lifecycle: construct with a Config, start(), then stop() (or destroy).
// A started node owns its threads: the network thread and a pool that runs
// statements on its storage.
//
//   auto cfg = distdb::load_config("config.json");
//   distdb::Node node(*cfg);
//   if (auto st = node.start(); !st) { ... st.error().message ... }
//   node.wait();   // until stop() is called, e.g. from a signal handler thread
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "distdb/config.hpp"
#include "distdb/error.hpp"
#include "distdb/export.hpp"
#include "distdb/value.hpp"

namespace distdb {

class DISTDB_API Node {
 public:
  explicit Node(Config config);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Opens the storage, creates distdb's bookkeeping tables, starts serving.
  // Fails (and leaves nothing running) when the port cannot be bound; a
  // database that is down does not stop the node (requests get
  // storage_unavailable until it is back).
  Status start();
  // Stops serving: in-flight statements finish, connections close. Thread-safe, idempotent.
  void stop();
  // Blocks until stop() has completed.
  void wait();

  // Runs a statement on this node as a client request would.
  Result<ResultSet> execute(std::string_view sql);

  NodeId id() const;
  // The port the node listens on (the configured one, or the one chosen for port 0).
  std::uint16_t port() const;
  // The coordinator as this node knows it.
  std::optional<NodeId> coordinator() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace distdb
