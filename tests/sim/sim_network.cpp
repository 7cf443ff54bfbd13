#include "sim_network.hpp"

#include <algorithm>

namespace distdb::sim {

void SimNetwork::send(core::Envelope envelope, std::uint64_t now, Rng& rng) {
  ++sent_;
  // Draw every random number the message needs up front, whatever the fate
  // of the message, so that the RNG stream does not depend on partitions.
  const std::uint64_t loss = now < burst_until_ ? std::max(burst_ppm_, options_.loss_ppm) : options_.loss_ppm;
  const bool lose = rng.chance(loss);
  const bool duplicate = rng.chance(options_.duplicate_ppm);
  const std::uint64_t delay = rng.between(options_.min_delay, options_.max_delay);
  const std::uint64_t delay2 = rng.between(options_.min_delay, options_.max_delay * 2);
  if (lose || !can_talk(envelope.from, envelope.to)) {
    ++lost_;
    return;
  }
  if (duplicate) {
    ++duplicated_;
    queue_.emplace(std::make_pair(now + delay2, order_++), envelope);
  }
  queue_.emplace(std::make_pair(now + delay, order_++), std::move(envelope));
}

std::vector<core::Envelope> SimNetwork::deliver_due(std::uint64_t now) {
  std::vector<core::Envelope> due;
  while (!queue_.empty() && queue_.begin()->first.first <= now) {
    auto node = queue_.extract(queue_.begin());
    if (can_talk(node.mapped().from, node.mapped().to)) {
      due.push_back(std::move(node.mapped()));
    } else {
      ++lost_;
    }
  }
  return due;
}

void SimNetwork::partition(const std::vector<std::vector<NodeId>>& groups) {
  group_.clear();
  int g = 1;
  for (const auto& members : groups) {
    for (NodeId n : members) group_[n] = g;
    ++g;
  }
}

void SimNetwork::heal() { group_.clear(); }

bool SimNetwork::can_talk(NodeId a, NodeId b) const {
  if (group_.empty() || a == b) return true;
  auto ga = group_.find(a);
  auto gb = group_.find(b);
  if (ga == group_.end() || gb == group_.end()) return false;
  return ga->second == gb->second;
}

}  // namespace distdb::sim
