// A fault-injecting TCP proxy for the links between nodes: how the runner
// makes network partitions on loopback without root, namespaces or iptables.
//
// Every directed pair of nodes (i -> j) gets its own listening port here.
// Node i's config lists member j at that port instead of j's real one (see
// ClusterProcesses::PeerPort), so everything i sends to j flows through the
// proxy, which forwards it to j's real port. This works because a node
// identifies a peer by the `from` id inside each PEER frame
// (Node::Impl::on_frame), never by the address the connection came from, and
// because peer links are one-way: i's outbound connection only carries i's
// frames to j (TcpTransport's PeerLink; j never answers on it), so cutting
// "i -> j" and "j -> i" separately is exactly a directed link failure.
//
// A cut link is black-holed, not refused: the proxy stops reading, writing
// and accepting on it. The sender's kernel accepts bytes until its buffers
// fill, its connect()s complete (the listen backlog does the handshake) and
// nothing arrives -- which is what a real partition looks like to TCP. A
// refused connection would instead tell the sender at once that the peer is
// unreachable, a signal a real partition never gives. At the heal the cut
// connections either resume (their buffered frames arrive late, as after a
// short real partition) or are reset (their bytes are lost), as the fault
// asks.
//
// Clients do not go through the proxy: they connect to the nodes' real ports.
// A partition in this runner is therefore between nodes only, which is the
// case the replication protocol must handle (clients on both sides).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace distdb::fault {

class PartitionProxy {
 public:
  // Binds one listener per directed pair among nodes 1..n (ports chosen by
  // the kernel); forwarding starts with start().
  explicit PartitionProxy(int nodes);
  ~PartitionProxy();  // stops the thread, closes every socket
  PartitionProxy(const PartitionProxy&) = delete;
  PartitionProxy& operator=(const PartitionProxy&) = delete;

  // The port node `from` must use to reach node `to`.
  int port(int from, int to) const;
  // Starts forwarding; `real_port(to)` is node `to`'s own port.
  void start(std::vector<int> real_ports);

  // Cuts both directions between `node` and every other node.
  void isolate(int node);
  // Restores every link; with `reset`, the connections that were cut are
  // closed (RST) first, so whatever they buffered is lost.
  void heal(bool reset);

  // Bytes forwarded so far (for the report: the proxy really carried the traffic).
  std::uint64_t forwarded_bytes() const { return forwarded_.load(); }

 private:
  struct Link;
  void run();

  int nodes_;
  std::map<std::pair<int, int>, int> listeners_;  // (from, to) -> listening fd
  std::map<std::pair<int, int>, int> ports_;
  std::vector<int> real_ports_;
  int wake_[2] = {-1, -1};  // self-pipe: a change of the cut set wakes the poll loop

  mutable std::mutex mutex_;
  std::vector<std::vector<bool>> cut_;            // [from][to], guarded by mutex_
  bool reset_pending_ = false;                    // guarded by mutex_
  std::vector<std::pair<int, int>> reset_pairs_;  // guarded by mutex_

  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> forwarded_{0};
  std::thread thread_;
};

}  // namespace distdb::fault
