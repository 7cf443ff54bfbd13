#include "node/snapshot_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>

namespace distdb {

namespace {

constexpr std::string_view kMagic = "distdb-snapshot 1 ";

Error file_error(const std::string& what, const std::string& path) {
  return Error(ErrorKind::storage_unavailable, what + " '" + path + "': " + std::strerror(errno));
}

Error malformed(const std::string& path, const std::string& why) {
  return Error(ErrorKind::invalid_request, "the full copy in '" + path + "' is unreadable: " + why);
}

std::optional<std::uint64_t> parse_u64(std::string_view text) {
  std::uint64_t v = 0;
  if (text.empty() || text.size() > 20) return std::nullopt;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

}  // namespace

// ---------------------------------------------------------------- SHA-256

struct Sha256Stream::Impl {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Sha256Stream::Sha256Stream() : impl_(std::make_unique<Impl>()) {
  if (impl_->ctx != nullptr) EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr);
}

Sha256Stream::~Sha256Stream() = default;

void Sha256Stream::update(std::string_view data) {
  if (impl_->ctx != nullptr && !data.empty()) EVP_DigestUpdate(impl_->ctx, data.data(), data.size());
}

std::string Sha256Stream::hex_digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (impl_->ctx == nullptr || EVP_DigestFinal_ex(impl_->ctx, md, &length) != 1) return {};
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

Result<std::string> sha256_of_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return file_error("cannot open", path);
  Sha256Stream digest;
  std::string buffer(1 << 16, '\0');
  for (;;) {
    const std::size_t n = std::fread(buffer.data(), 1, buffer.size(), f);
    digest.update(std::string_view(buffer.data(), n));
    if (n < buffer.size()) break;
  }
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return file_error("cannot read", path);
  return digest.hex_digest();
}

// ---------------------------------------------------------------- writing

SnapshotSink::SnapshotSink(std::string path, std::string_view backend) : path_(std::move(path)) {
  // Owner-only from the start: the copy holds every row of the database.
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 || (file_ = ::fdopen(fd, "wb")) == nullptr) {
    status_ = file_error("cannot create the full copy", path_);
    if (fd >= 0) ::close(fd);
    return;
  }
  write(kMagic);
  write(backend);
  write("\n");
}

SnapshotSink::~SnapshotSink() {
  if (!finished_) abandon();
}

void SnapshotSink::write(std::string_view bytes) {
  if (!status_ || bytes.empty()) return;
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) {
    status_ = file_error("cannot write the full copy", path_);
    return;
  }
  digest_.update(bytes);
  bytes_ += bytes.size();
}

void SnapshotSink::add(std::string_view statement) {
  if (!status_) return;
  if (statement.size() > kMaxSnapshotStatementBytes) {
    status_ = Error(ErrorKind::invalid_request, "a statement of the full copy is larger than " +
                                                    std::to_string(kMaxSnapshotStatementBytes) + " bytes");
    return;
  }
  write(std::to_string(statement.size()));
  write("\n");
  write(statement);
  write("\n");
  ++count_;
}

Result<SnapshotFile> SnapshotSink::finish() {
  write("end " + std::to_string(count_) + "\n");
  if (status_ && (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0)) {
    status_ = file_error("cannot write the full copy", path_);
  }
  if (!status_) {
    abandon();
    return status_.error();
  }
  std::fclose(file_);
  file_ = nullptr;
  finished_ = true;
  return SnapshotFile{path_, bytes_, digest_.hex_digest()};
}

void SnapshotSink::abandon() {
  if (file_ != nullptr) std::fclose(file_);
  file_ = nullptr;
  if (!finished_) ::unlink(path_.c_str());
  finished_ = true;
}

// ---------------------------------------------------------------- reading

SnapshotSource::SnapshotSource(const std::string& path, std::string_view backend)
    : path_(path), backend_(backend) {
  file_ = std::fopen(path.c_str(), "rb");
  if (file_ == nullptr) open_error_ = file_error("cannot open the full copy", path);
}

SnapshotSource::~SnapshotSource() {
  if (file_ != nullptr) std::fclose(file_);
}

Status SnapshotSource::rewind() {
  if (!open_error_) return open_error_;
  if (std::fseek(file_, 0, SEEK_SET) != 0) return file_error("cannot read the full copy", path_);
  header_read_ = false;
  ended_ = false;
  count_ = 0;
  return {};
}

Result<std::string> SnapshotSource::read_line(std::size_t max) {
  std::string line;
  for (;;) {
    const int c = std::fgetc(file_);
    if (c == EOF) {
      if (std::ferror(file_) != 0) return file_error("cannot read the full copy", path_);
      return malformed(path_, "it ends in the middle (after " + std::to_string(count_) + " statements)");
    }
    if (c == '\n') return line;
    if (line.size() >= max) return malformed(path_, "a line is longer than expected");
    line.push_back(static_cast<char>(c));
  }
}

Result<bool> SnapshotSource::next(std::string& statement) {
  if (!open_error_) return open_error_.error();
  if (ended_) return false;
  if (!header_read_) {
    auto header = read_line(128);
    if (!header && header.error().kind != ErrorKind::invalid_request) return header.error();
    if (!header || header->rfind(kMagic, 0) != 0)
      return malformed(path_, "it is not a distdb full copy (version 1)");
    const std::string made_by = header->substr(kMagic.size());
    if (made_by != backend_) {
      return Error(ErrorKind::invalid_request,
                   "a full copy made by a " + made_by + " member cannot be installed in a " + backend_ +
                       " database: the members of a cluster must use one backend");
    }
    header_read_ = true;
  }
  auto line = read_line(32);
  if (!line) return line.error();
  if (line->rfind("end ", 0) == 0) {
    const auto count = parse_u64(std::string_view(*line).substr(4));
    if (!count || *count != count_) {
      return malformed(
          path_, "its trailer counts " + line->substr(4) + " statements, not " + std::to_string(count_));
    }
    if (std::fgetc(file_) != EOF) return malformed(path_, "bytes follow its trailer");
    ended_ = true;
    return false;
  }
  const auto length = parse_u64(*line);
  if (!length || *length > kMaxSnapshotStatementBytes) {
    return malformed(path_, "statement " + std::to_string(count_ + 1) + " has no valid length");
  }
  statement.resize(*length);
  if (*length > 0 && std::fread(statement.data(), 1, *length, file_) != *length) {
    if (std::ferror(file_) != 0) return file_error("cannot read the full copy", path_);
    return malformed(path_, "it ends in the middle of statement " + std::to_string(count_ + 1));
  }
  if (std::fgetc(file_) != '\n')
    return malformed(path_, "statement " + std::to_string(count_ + 1) + " is not closed");
  ++count_;
  return true;
}

}  // namespace distdb
