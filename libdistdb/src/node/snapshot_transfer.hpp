// Moves full copies of the data between members in chunks, below the
// replication protocol.
//
// Why here and not in the core: a full copy can be larger than any one
// message should be (than memory, than limits.max_peer_message_bytes). The
// core (core/catch_up.cpp) sees it as one CatchUpReply, and the simulator
// moves it whole; on a real node the driver moves it with this class, the
// way TCP moves a large write as segments:
//
//   source  The executor writes the copy to a file in the spool directory
//           (node/snapshot.hpp), and ReadSnapshot's result carries a *local*
//           descriptor of it (local_descriptor(): size, SHA-256, path). When
//           the core sends its CatchUpReply, offer() registers the file
//           under a fresh transfer id, and the reply leaves with a *wire*
//           descriptor in snapshot_data instead:
//             {"transfer": id, "bytes": n, "sha256": hex, "chunk": c}
//           It then answers SnapshotChunkRequests from the file (serve()).
//   asker   receive() holds that reply back from the core and starts pulling
//           the file: at most kWindow chunks asked for at once, written in
//           order to a file of its own spool directory and hashed as they
//           come. Once every byte is in and the SHA-256 matches, the held
//           reply goes to the core with snapshot_data = the local path;
//           InstallSnapshot reads it from there and the driver removes it.
//
// Memory: a few chunks on each side, whatever the size of the copy.
//
// Failures: a chunk that does not come within resend_after is asked for
// again; a transfer that makes no progress for stall_after is dropped on
// both sides (a source also drops one replaced by a newer offer to the
// same member, or answers `gone` for one it does not know). Nothing reaches
// the core then: its catch-up request times out and is sent again, and a
// new copy is made. While a transfer progresses, the asker's catch-up
// requests to its source are held back (holds_back_catch_up()): the core
// asks again after two round timeouts, far less than a large copy takes,
// and each request would have the source write a new copy.
//
// A peer's descriptor and chunks are checked (sizes, offsets, the transfer
// they belong to, the digest at the end): what does not check is dropped,
// never written past the announced size, never handed to the core.
//
// No thread, socket or clock of its own: the driver calls it with the time,
// under its own mutex, and sends what it returns.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "distdb/core/messages.hpp"
#include "distdb/error.hpp"
#include "node/snapshot_file.hpp"
#include "wire/peer_codec.hpp"

namespace distdb {

// What ReadSnapshot's StorageDone.snapshot_data holds on a real node.
std::string local_descriptor(const SnapshotFile& file);
std::optional<SnapshotFile> parse_local_descriptor(const std::string& text);

// The directory full copies are written to: a directory of this node's
// own, "distdb-spool-<uid>-node<id>-<port>", made in the configured
// spool_dir (itself made if missing, never changed otherwise) or in $TMPDIR.
// Its name is the same at every start, so what a crashed run left there
// (copies it was making, sending or receiving: each as large as the data)
// is removed at the next start; it is removed at a clean stop. It must be a
// real directory (not a link) owned by this user with no access for others
// (0700), or the node refuses to start: in a shared /tmp anyone could have
// made it first. A lock file in it keeps a second running node from using
// it (two nodes with the same id and port on one host).
class SpoolDir {
 public:
  static Result<std::unique_ptr<SpoolDir>> open(const std::string& configured, NodeId node,
                                                std::uint16_t port);
  ~SpoolDir();
  SpoolDir(const SpoolDir&) = delete;
  SpoolDir& operator=(const SpoolDir&) = delete;

  const std::string& path() const { return path_; }
  // A fresh file name in the directory, e.g. ".../copy-out-3.snapshot"
  // (thread-safe).
  std::string file(const std::string& stem);
  // Bytes free for this user on the directory's file system.
  std::uint64_t free_bytes() const;

 private:
  SpoolDir(std::string path, int lock_fd) : path_(std::move(path)), lock_fd_(lock_fd) {}
  std::string path_;
  int lock_fd_;
  std::atomic<std::uint64_t> next_{0};
};

class SnapshotTransfers {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    std::size_t chunk_bytes = 1024 * 1024;  // the most this node sends in one chunk (its frames' limit)
    std::size_t receive_chunk_bytes = 1024 * 1024;  // the most it asks for (the frames it accepts)
    std::size_t window = 4;                 // chunks asked for at once
    std::chrono::milliseconds resend_after{2000};
    std::chrono::milliseconds stall_after{30000};
  };

  // A message to send.
  struct Out {
    NodeId to = 0;
    wire::TransferMessage message;
  };

  // What an input produced: messages to send, and, once a copy has arrived
  // whole, the CatchUpReply for the core (snapshot_data: the local path).
  struct Step {
    std::vector<Out> send;
    std::optional<core::CatchUpReply> complete;
    NodeId complete_from = 0;
    std::vector<std::string> log;  // what an operator should read (warnings)
  };

  SnapshotTransfers(SpoolDir& spool, Options options);
  explicit SnapshotTransfers(SpoolDir& spool) : SnapshotTransfers(spool, Options()) {}
  ~SnapshotTransfers();
  SnapshotTransfers(const SnapshotTransfers&) = delete;
  SnapshotTransfers& operator=(const SnapshotTransfers&) = delete;

  // --- source ---
  // `reply` is about to be sent to `to` with a local descriptor in
  // snapshot_data: registers the file and puts the wire descriptor there.
  // An error (the file is gone) means the reply must not be sent.
  Status offer(NodeId to, core::CatchUpReply& reply, Clock::time_point now);
  // A member asks for a chunk.
  Step serve(NodeId from, const wire::SnapshotChunkRequest& request, Clock::time_point now);

  // --- asker ---
  // A CatchUpReply with a snapshot arrived from `from`: held back, and the
  // pulling starts. An older transfer from `from` is dropped; one from
  // another member that still makes progress is kept (and this offer
  // ignored) unless `from` is now the coordinator (the other one failed
  // over while its copy was on its way).
  Step receive(NodeId from, const core::CatchUpReply& reply, Clock::time_point now,
               bool from_coordinator = false);
  Step on_chunk(NodeId from, const wire::SnapshotChunk& chunk, Clock::time_point now);
  // True while a transfer from `source` makes progress: the core's catch-up
  // requests to it are not sent.
  bool holds_back_catch_up(NodeId source, Clock::time_point now) const;
  // The executor starts installing the copy at `path`, and is done with it
  // (installed or not): until then that file is never removed.
  void installing(const std::string& path);
  void installed(const std::string& path);

  // Both sides: resends and expiry.
  Step tick(Clock::time_point now);

  std::size_t outgoing_count() const { return outgoing_.size(); }
  bool receiving() const { return incoming_ != nullptr; }

 private:
  struct Outgoing;
  struct Incoming;
  void ask(Step& step, Clock::time_point now);
  void drop_incoming();
  void forget_delivered(bool all);

  SpoolDir& spool_;
  Options options_;
  std::uint64_t next_transfer_;
  std::map<NodeId, std::unique_ptr<Outgoing>> outgoing_;  // one per asker
  std::unique_ptr<Incoming> incoming_;                    // at most one
  std::vector<std::string> delivered_;  // files handed to the core, until an install is done
  std::string installing_;              // the one being installed
};

}  // namespace distdb
