#include "node/snapshot_transfer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
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

Result<std::unique_ptr<SpoolDir>> SpoolDir::open(const std::string& configured) {
  namespace fs = std::filesystem;
  std::string path = configured;
  bool owned = false;
  if (path.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/distdb-spool-XXXXXX";
    // mkdtemp: a fresh directory, the node's user's only (0700).
    if (::mkdtemp(pattern.data()) == nullptr) {
      return Error(ErrorKind::config,
                   "cannot make a spool directory under " + pattern + ": " + std::strerror(errno));
    }
    path = pattern;
    owned = true;
  } else {
    std::error_code ec;
    fs::create_directories(path, ec);
    if (ec || !fs::is_directory(path)) {
      return Error(ErrorKind::config, "local_node.storage.spool_dir '" + path +
                                          "' is not a directory I can make: " + ec.message());
    }
    ::chmod(path.c_str(), 0700);
    // What a previous run left (copies it was making, sending or receiving).
    for (const auto& entry : fs::directory_iterator(path, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("copy-", 0) == 0 && entry.path().extension() == ".snapshot")
        fs::remove(entry.path(), ec);
    }
  }
  return std::unique_ptr<SpoolDir>(new SpoolDir(std::move(path), owned));
}

SpoolDir::~SpoolDir() {
  std::error_code ec;
  if (owned_) std::filesystem::remove_all(path_, ec);
}

std::string SpoolDir::file(const std::string& stem) {
  return path_ + "/copy-" + stem + "-" + std::to_string(++next_) + ".snapshot";
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
  if (!delivered_.empty()) ::unlink(delivered_.c_str());
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
  if (out == nullptr || out->id != request.transfer || request.offset > out->file.bytes ||
      request.offset % out->chunk != 0) {
    chunk.gone = true;
    step.send.push_back({from, std::move(chunk)});
    return step;
  }
  out->last_activity = now;
  const std::uint64_t length = std::min<std::uint64_t>(out->chunk, out->file.bytes - request.offset);
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
                                                   Clock::time_point now) {
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
  drop_incoming();
  auto in = std::make_unique<Incoming>();
  in->source = from;
  in->descriptor = *descriptor;
  in->reply = reply;
  in->reply.snapshot_data.clear();
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
  const std::uint64_t chunk = in.descriptor.chunk;
  const std::uint64_t window_end = std::min(in.descriptor.bytes, in.received + options_.window * chunk);
  while (in.asked_up_to < window_end) {
    step.send.push_back({in.source, wire::SnapshotChunkRequest{in.descriptor.transfer, in.asked_up_to}});
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
  const std::uint64_t expected =
      std::min<std::uint64_t>(in.descriptor.chunk, in.descriptor.bytes - in.received);
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
  if (!delivered_.empty() && delivered_ != in.path) ::unlink(delivered_.c_str());
  delivered_ = in.path;
  step.complete = std::move(in.reply);
  step.complete->snapshot_data = in.path;
  step.complete_from = from;
  incoming_.reset();  // the file stays: it is delivered_
  return step;
}

bool SnapshotTransfers::holds_back_catch_up(NodeId source, Clock::time_point now) const {
  return incoming_ && incoming_->source == source && now - incoming_->last_progress < options_.stall_after;
}

void SnapshotTransfers::installed(const std::string& path) {
  if (path.empty() || path != delivered_) return;
  ::unlink(path.c_str());
  delivered_.clear();
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
