// SimNetwork: the in-process network between simulated replicas.
//
// Every message gets a delivery tick (a random delay: variance reorders
// messages), may be lost or duplicated, and is dropped when a partition
// separates its ends (at send and again at delivery). All randomness comes
// from the run's Rng and all containers are ordered, so runs repeat.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "distdb/core/messages.hpp"
#include "rng.hpp"

namespace distdb::sim {

struct NetworkOptions {
  std::uint64_t min_delay = 1;     // ticks
  std::uint64_t max_delay = 3;     // ticks (variance reorders)
  std::uint64_t loss_ppm = 0;      // each message lost with this probability
  std::uint64_t duplicate_ppm = 0; // each message delivered twice with this probability
};

class SimNetwork {
 public:
  explicit SimNetwork(NetworkOptions options) : options_(options) {}

  void send(core::Envelope envelope, std::uint64_t now, Rng& rng);

  // Removes and returns the messages due at `now`, in delivery order
  // (due tick, then send order). Messages blocked by a partition are dropped.
  std::vector<core::Envelope> deliver_due(std::uint64_t now);

  // Partitions: nodes in different groups cannot talk. A node not listed in
  // any group is in a group of its own.
  void partition(const std::vector<std::vector<NodeId>>& groups);
  void heal();
  bool can_talk(NodeId a, NodeId b) const;
  bool partitioned() const { return !group_.empty(); }

  // Loss bursts: while `until` is in the future, loss is `ppm`.
  void loss_burst(std::uint64_t ppm, std::uint64_t until) { burst_ppm_ = ppm; burst_until_ = until; }

  NetworkOptions& options() { return options_; }
  std::size_t in_flight() const { return queue_.size(); }
  std::uint64_t sent() const { return sent_; }
  std::uint64_t lost() const { return lost_; }
  std::uint64_t duplicated() const { return duplicated_; }

 private:
  NetworkOptions options_;
  std::map<std::pair<std::uint64_t, std::uint64_t>, core::Envelope> queue_;  // (due, order) -> message
  std::uint64_t order_ = 0;
  std::map<NodeId, int> group_;  // empty: no partition
  std::uint64_t burst_ppm_ = 0;
  std::uint64_t burst_until_ = 0;
  std::uint64_t sent_ = 0;
  std::uint64_t lost_ = 0;
  std::uint64_t duplicated_ = 0;
};

}  // namespace distdb::sim
