#include "node/snapshot_transfer.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <system_error>

namespace distdb {

namespace {

std::optional<std::uint64_t> parse_u64(std::string_view text) {
  std::uint64_t v = 0;
  if (text.empty()) return std::nullopt;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

bool is_sha256_hex(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string wire_descriptor(std::uint64_t transfer, const SnapshotFile& file, std::size_t chunk) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("transfer");
  w.Uint64(transfer);
  w.Key("bytes");
  w.Uint64(file.bytes);
  w.Key("sha256");
  w.String(file.sha256.c_str());
  w.Key("chunk");
  w.Uint64(chunk);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

struct WireDescriptor {
  std::uint64_t transfer = 0;
  std::uint64_t bytes = 0;
  std::string sha256;
  std::uint64_t chunk = 0;
};

std::optional<WireDescriptor> parse_wire_descriptor(const std::string& text) {
  if (text.size() > 1024) return std::nullopt;
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
  WireDescriptor d;
  const auto u64 = [&](const char* key, std::uint64_t& out) {
    const auto it = doc.FindMember(key);
    if (it == doc.MemberEnd() || !it->value.IsUint64()) return false;
    out = it->value.GetUint64();
    return true;
  };
  const auto sha = doc.FindMember("sha256");
  if (!u64("transfer", d.transfer) || !u64("bytes", d.bytes) || !u64("chunk", d.chunk) ||
      sha == doc.MemberEnd() || !sha->value.IsString()) {
    return std::nullopt;
  }
  d.sha256.assign(sha->value.GetString(), sha->value.GetStringLength());
  if (!is_sha256_hex(d.sha256) || d.chunk == 0 || d.chunk > wire::kMaxSnapshotChunkBytes) return std::nullopt;
  return d;
}

}  // namespace

// ---------------------------------------------------------------- descriptors

std::string local_descriptor(const SnapshotFile& file) {
  return std::to_string(file.bytes) + " " + file.sha256 + " " + file.path;
}

std::optional<SnapshotFile> parse_local_descriptor(const std::string& text) {
  const auto first = text.find(' ');
  if (first == std::string::npos) return std::nullopt;
  const auto second = text.find(' ', first + 1);
  if (second == std::string::npos) return std::nullopt;
  auto bytes = parse_u64(std::string_view(text).substr(0, first));
  SnapshotFile f{text.substr(second + 1), bytes.value_or(0), text.substr(first + 1, second - first - 1)};
  if (!bytes || !is_sha256_hex(f.sha256) || f.path.empty()) return std::nullopt;
  return f;
}

// ---------------------------------------------------------------- the spool

Result<std::unique_ptr<SpoolDir>> SpoolDir::open(const std::string& configured, NodeId node,
                                                 std::uint16_t port) {
  namespace fs = std::filesystem;
  std::string parent = configured;
  if (parent.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    parent = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  } else {
    // The configured directory is made if missing (for this user only), and
    // left as it is otherwise: it may be shared.
    std::error_code ec;
    if (!fs::exists(parent, ec)) {
      fs::create_directories(parent, ec);
      if (!ec) ::chmod(parent.c_str(), 0700);
    }
    if (ec || !fs::is_directory(parent, ec)) {
      return Error(ErrorKind::config, "local_node.storage.spool_dir '" + parent + "' is not a directory" +
                                          (ec ? ": " + ec.message() : ""));
    }
  }
  const std::string path = parent + "/distdb-spool-" + std::to_string(::geteuid()) + "-node" +
                           std::to_string(node) + "-" + std::to_string(port);
  const auto refuse = [&](const std::string& why) {
    return Error(ErrorKind::config,
                 "the spool directory '" + path + "' (for full copies of the data) " + why);
  };
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
    return refuse(std::string("cannot be made: ") + std::strerror(errno));
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return refuse(std::string("cannot be read: ") + std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) return refuse("is not a directory (a link or a file is in its place): remove it");
  if (st.st_uid != ::geteuid())
    return refuse("belongs to another user: remove it, or set local_node.storage.spool_dir");
  if ((st.st_mode & 077) != 0) return refuse("is open to other users: chmod 700 it, or remove it");
  const std::string lock = path + "/lock";
  const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return refuse(std::string("cannot hold its lock file: ") + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return refuse("is in use by another running node (the same id and port on this host)");
  }
  // What an earlier run of this node left (it crashed, or was killed).
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(path, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("copy-", 0) == 0 && entry.path().extension() == ".snapshot") fs::remove(entry.path(), ec);
  }
  return std::unique_ptr<SpoolDir>(new SpoolDir(path, fd));
}

SpoolDir::~SpoolDir() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(path_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("copy-", 0) == 0) std::filesystem::remove(entry.path(), ec);
  }
  ::unlink((path_ + "/lock").c_str());
  ::rmdir(path_.c_str());  // unless something else was put there
  ::close(lock_fd_);
}

std::string SpoolDir::file(const std::string& stem) {
  return path_ + "/copy-" + stem + "-" + std::to_string(++next_) + ".snapshot";
}

std::uint64_t SpoolDir::free_bytes() const {
  struct statvfs vfs {};
  if (::statvfs(path_.c_str(), &vfs) != 0) return 0;
  return static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

// ---------------------------------------------------------------- transfers

struct SnapshotTransfers::Outgoing {
  std::uint64_t id = 0;
  SnapshotFile file;
  std::size_t chunk = 0;
  int fd = -1;
  Clock::time_point last_activity;
  ~Outgoing() {
    if (fd >= 0) ::close(fd);
    ::unlink(file.path.c_str());
  }
};

struct SnapshotTransfers::Incoming {
  NodeId source = 0;
  WireDescriptor descriptor;
  core::CatchUpReply reply;  // held back until the copy is whole
  std::string path;
  int fd = -1;
  std::uint64_t chunk = 0;        // bytes asked for at a time: what both ends' frames carry
  std::uint64_t received = 0;     // bytes written, in order
  std::uint64_t asked_up_to = 0;  // bytes asked for
  Sha256Stream digest;
  Clock::time_point started;
  Clock::time_point last_progress;
  Clock::time_point last_ask;
  ~Incoming() {
    if (fd >= 0) ::close(fd);
  }
};

SnapshotTransfers::SnapshotTransfers(SpoolDir& spool, Options options) : spool_(spool), options_(options) {
  options_.chunk_bytes = std::clamp<std::size_t>(options_.chunk_bytes, 1, wire::kMaxSnapshotChunkBytes);
  options_.window = std::max<std::size_t>(options_.window, 1);
  // Transfer ids are not reused across restarts of this node: a stale
  // request then finds nothing, never another copy's bytes.
  std::random_device rd;
  next_transfer_ = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

SnapshotTransfers::~SnapshotTransfers() {
  drop_incoming();
  forget_delivered(true);
}

Status SnapshotTransfers::offer(NodeId to, core::CatchUpReply& reply, Clock::time_point now) {
  auto file = parse_local_descriptor(reply.snapshot_data);
  if (!file) return Error(ErrorKind::invalid_request, "a full copy without a readable descriptor");
  auto out = std::make_unique<Outgoing>();
  out->id = ++next_transfer_;
  out->file = *file;
  out->chunk = options_.chunk_bytes;
  out->last_activity = now;
  out->fd = ::open(file->path.c_str(), O_RDONLY | O_CLOEXEC);
  if (out->fd < 0) {
    return Error(ErrorKind::storage_unavailable,
                 "cannot open the full copy '" + file->path + "': " + std::strerror(errno));
  }
  reply.snapshot_data = wire_descriptor(out->id, *file, out->chunk);
  outgoing_[to] = std::move(out);  // a newer copy for the same member replaces the older one
  return {};
}

SnapshotTransfers::Step SnapshotTransfers::serve(NodeId from, const wire::SnapshotChunkRequest& request,
                                                 Clock::time_point now) {
  Step step;
  wire::SnapshotChunk chunk;
  chunk.transfer = request.transfer;
  chunk.offset = request.offset;
  const auto it = outgoing_.find(from);
  Outgoing* out = it == outgoing_.end() ? nullptr : it->second.get();
  if (out == nullptr || out->id != request.transfer || request.offset >= out->file.bytes ||
      request.length == 0 || request.length > out->chunk) {
    chunk.gone = true;
    step.send.push_back({from, std::move(chunk)});
    return step;
  }
  out->last_activity = now;
  const std::uint64_t length = std::min<std::uint64_t>(request.length, out->file.bytes - request.offset);
  chunk.data.resize(length);
  std::size_t done = 0;
  while (done < length) {
    const ssize_t n =
        ::pread(out->fd, chunk.data.data() + done, length - done, static_cast<off_t>(request.offset + done));
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      step.log.push_back("cannot read the full copy for node " + std::to_string(from) + ": " +
                         (n < 0 ? std::strerror(errno) : "the file is shorter than it was"));
      outgoing_.erase(it);
      chunk.data.clear();
      chunk.gone = true;
      step.send.push_back({from, std::move(chunk)});
      return step;
    }
    done += static_cast<std::size_t>(n);
  }
  step.send.push_back({from, std::move(chunk)});
  return step;
}

SnapshotTransfers::Step SnapshotTransfers::receive(NodeId from, const core::CatchUpReply& reply,
                                                   Clock::time_point now, bool from_coordinator) {
  Step step;
  auto descriptor = parse_wire_descriptor(reply.snapshot_data);
  if (!descriptor || descriptor->bytes == 0) {  // a real copy has a header at least
    step.log.push_back("a full copy offered by node " + std::to_string(from) +
                       " has no valid descriptor; ignored");
    return step;
  }
  if (incoming_ && incoming_->source == from && incoming_->descriptor.transfer == descriptor->transfer) {
    return step;  // the same offer again
  }
  if (incoming_ && incoming_->source != from && !from_coordinator &&
      now - incoming_->last_progress < options_.stall_after) {
    // One copy at a time: the one on its way is not given up for another
    // member's (a catch-up retry that crossed it, or a stale offer).
    step.log.push_back("a full copy offered by node " + std::to_string(from) + " is ignored: one from node " +
                       std::to_string(incoming_->source) + " is on its way");
    return step;
  }
  constexpr std::uint64_t kSpareBytes = 64 * 1024 * 1024;
  if (const std::uint64_t free = spool_.free_bytes(); descriptor->bytes + kSpareBytes > free) {
    step.log.push_back("the full copy offered by node " + std::to_string(from) + " needs " +
                       std::to_string(descriptor->bytes) + " bytes, and " + spool_.path() + " has " +
                       std::to_string(free) + " free (with 64 MiB to spare): make room, or set " +
                       "local_node.storage.spool_dir to a larger disk");
    return step;
  }
  drop_incoming();
  auto in = std::make_unique<Incoming>();
  in->source = from;
  in->descriptor = *descriptor;
  in->reply = reply;
  in->reply.snapshot_data.clear();
  in->chunk = std::min<std::uint64_t>(descriptor->chunk, options_.receive_chunk_bytes);
  in->path = spool_.file("in");
  in->fd = ::open(in->path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (in->fd < 0) {
    step.log.push_back("cannot create '" + in->path + "' for a full copy: " + std::strerror(errno));
    return step;
  }
  in->started = in->last_progress = now;
  incoming_ = std::move(in);
  ask(step, now);
  return step;
}

void SnapshotTransfers::ask(Step& step, Clock::time_point now) {
  Incoming& in = *incoming_;
  const std::uint64_t chunk = in.chunk;
  const std::uint64_t window_end = std::min(in.descriptor.bytes, in.received + options_.window * chunk);
  while (in.asked_up_to < window_end) {
    step.send.push_back(
        {in.source, wire::SnapshotChunkRequest{in.descriptor.transfer, in.asked_up_to, chunk}});
    in.last_ask = now;
    in.asked_up_to = std::min(in.descriptor.bytes, in.asked_up_to + chunk);
  }
}

SnapshotTransfers::Step SnapshotTransfers::on_chunk(NodeId from, const wire::SnapshotChunk& chunk,
                                                    Clock::time_point now) {
  Step step;
  if (!incoming_ || incoming_->source != from || incoming_->descriptor.transfer != chunk.transfer)
    return step;
  Incoming& in = *incoming_;
  if (chunk.gone) {
    step.log.push_back("node " + std::to_string(from) +
                       " no longer has the full copy it offered; a new one will be asked for");
    drop_incoming();
    return step;
  }
  // In order only: a chunk after a lost one is dropped and asked for again.
  if (chunk.offset != in.received) return step;
  const std::uint64_t expected = std::min<std::uint64_t>(in.chunk, in.descriptor.bytes - in.received);
  if (chunk.data.size() != expected) {
    step.log.push_back("node " + std::to_string(from) + " sent a chunk of " +
                       std::to_string(chunk.data.size()) + " bytes at offset " +
                       std::to_string(chunk.offset) + " of a full copy, not " + std::to_string(expected) +
                       "; the transfer is dropped");
    drop_incoming();
    return step;
  }
  std::size_t done = 0;
  while (done < chunk.data.size()) {
    const ssize_t n = ::write(in.fd, chunk.data.data() + done, chunk.data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      step.log.push_back("cannot write the full copy to '" + in.path + "': " + std::strerror(errno));
      drop_incoming();
      return step;
    }
    done += static_cast<std::size_t>(n);
  }
  in.digest.update(chunk.data);
  in.received += chunk.data.size();
  in.last_progress = now;
  if (in.received < in.descriptor.bytes) {
    ask(step, now);
    return step;
  }
  // Whole: check it, then hand it to the core.
  if (in.digest.hex_digest() != in.descriptor.sha256) {
    step.log.push_back("the full copy from node " + std::to_string(from) +
                       " does not match its SHA-256; the transfer is dropped");
    drop_incoming();
    return step;
  }
  ::close(in.fd);
  in.fd = -1;
  delivered_.push_back(in.path);  // removed once an install is done (installed())
  step.complete = std::move(in.reply);
  step.complete->snapshot_data = in.path;
  step.complete_from = from;
  incoming_.reset();  // the file stays: it is delivered_
  return step;
}

bool SnapshotTransfers::holds_back_catch_up(NodeId source, Clock::time_point now) const {
  return incoming_ && incoming_->source == source && now - incoming_->last_progress < options_.stall_after;
}

void SnapshotTransfers::installing(const std::string& path) {
  installing_ = path;
}

void SnapshotTransfers::installed(const std::string& path) {
  if (installing_ == path) installing_.clear();
  // This copy, and any other that arrived meanwhile: the core takes one
  // copy at a time and ignored those (a copy is never removed while its
  // InstallSnapshot may still be queued: the core queues one only when
  // no other is running, and this one has just finished).
  forget_delivered(false);
}

void SnapshotTransfers::forget_delivered(bool all) {
  // Never the file being installed: the executor reads it.
  std::erase_if(delivered_, [&](const std::string& path) {
    if (!all && path == installing_) return false;
    ::unlink(path.c_str());
    return true;
  });
}

SnapshotTransfers::Step SnapshotTransfers::tick(Clock::time_point now) {
  Step step;
  for (auto it = outgoing_.begin(); it != outgoing_.end();) {
    if (now - it->second->last_activity >= options_.stall_after) {
      it = outgoing_.erase(it);
    } else {
      ++it;
    }
  }
  if (!incoming_) return step;
  Incoming& in = *incoming_;
  if (now - in.last_progress >= options_.stall_after) {
    step.log.push_back("the full copy from node " + std::to_string(in.source) + " made no progress for " +
                       std::to_string(options_.stall_after.count()) + " ms (" + std::to_string(in.received) +
                       " of " + std::to_string(in.descriptor.bytes) + " bytes); a new one will be asked for");
    drop_incoming();
    return step;
  }
  if (now - in.last_ask >= options_.resend_after && now - in.last_progress >= options_.resend_after) {
    in.asked_up_to = in.received;  // what was asked and not received is asked again
    ask(step, now);
  }
  return step;
}

void SnapshotTransfers::drop_incoming() {
  if (!incoming_) return;
  if (incoming_->fd >= 0) ::close(incoming_->fd);
  incoming_->fd = -1;
  ::unlink(incoming_->path.c_str());
  incoming_.reset();
}

}  // namespace distdb
