// The file a full copy of the data travels in (node/snapshot.hpp makes and
// installs it; node/snapshot_transfer.hpp moves it between members).
//
// A full copy is a sequence of SQL statements, any of which may hold any
// bytes (a BLOB's, a routine body's), so each one is framed by its length:
//
//   distdb-snapshot 1 <backend>\n        backend: "mariadb" or "sqlite"
//   <decimal length>\n<statement bytes>\n   once per statement
//   end <number of statements>\n
//
// The trailer makes a file cut short recognisable, and the header a copy
// from a member of another backend. Neither side ever holds more than one
// statement in memory (a full copy closes its INSERTs at about 1 MiB; one
// statement may not exceed kMaxSnapshotStatementBytes).
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "distdb/error.hpp"

namespace distdb {

inline constexpr std::uint64_t kMaxSnapshotStatementBytes = 1024ull * 1024 * 1024;

// SHA-256 over data given piece by piece (OpenSSL's EVP digest).
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;

  void update(std::string_view data);
  // The digest of everything given, in lowercase hex; the stream is spent.
  std::string hex_digest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The SHA-256 of a whole file, in lowercase hex.
Result<std::string> sha256_of_file(const std::string& path);

// A finished snapshot file: where it is, its size and its SHA-256 (hex).
struct SnapshotFile {
  std::string path;
  std::uint64_t bytes = 0;
  std::string sha256;
};

// Writes a snapshot file statement by statement. The first failure (the
// file cannot be created, the disk is full) sticks: status() reports it and
// add() does nothing more. The file is created readable by its owner only
// (it holds every row of the database).
class SnapshotSink {
 public:
  SnapshotSink(std::string path, std::string_view backend);
  ~SnapshotSink();  // removes the file unless finish() succeeded
  SnapshotSink(const SnapshotSink&) = delete;
  SnapshotSink& operator=(const SnapshotSink&) = delete;

  void add(std::string_view statement);
  Status status() const { return status_; }
  // Writes the trailer and flushes the file to disk.
  Result<SnapshotFile> finish();
  // Stops and removes the file.
  void abandon();

 private:
  void write(std::string_view bytes);

  std::string path_;
  std::FILE* file_ = nullptr;
  Status status_;
  Sha256Stream digest_;
  std::uint64_t bytes_ = 0;
  std::uint64_t count_ = 0;
  bool finished_ = false;
};

// Reads a snapshot file statement by statement, checking its framing as it
// goes: a wrong header (another backend, another format), a length out of
// bounds, a file cut short or with bytes after the trailer are errors of
// kind invalid_request that say which.
class SnapshotSource {
 public:
  SnapshotSource(const std::string& path, std::string_view backend);
  ~SnapshotSource();
  SnapshotSource(const SnapshotSource&) = delete;
  SnapshotSource& operator=(const SnapshotSource&) = delete;

  // The next statement into `statement`: true, or false at the (checked)
  // end of the file.
  Result<bool> next(std::string& statement);
  // Back to the first statement (the same open file: a second pass reads
  // what the first checked, even if the file was removed meanwhile).
  Status rewind();

 private:
  Result<std::string> read_line(std::size_t max);

  std::string path_;
  std::string backend_;
  std::FILE* file_ = nullptr;
  bool header_read_ = false;
  bool ended_ = false;
  std::uint64_t count_ = 0;
  Status open_error_;
};

}  // namespace distdb
