// What one MariaDB database holds, read directly from each test server
// (not through distdb), so that tests can tell whether the members of a
// cluster really hold the same thing.
//
// A fingerprint is a map from a facet of a schema object ("table `t`:
// checksum", "sequence `s`: next_not_cached_value", "trigger `tr`:
// definition", ...) to its value as text. It covers:
//   - every base table: CHECKSUM TABLE, the row count, SHOW CREATE TABLE
//     (AUTO_INCREMENT=N left out) and its first rows, sorted (for the reader
//     of a diff; the checksum is what catches any difference);
//   - every view, trigger, procedure, function and event: its definition
//     (DEFINER left out), from information_schema and SHOW CREATE;
//   - every sequence: its definition and its state row (next_not_cached_value
//     and the rest, read without advancing it);
//   - the database's own SHOW CREATE DATABASE.
// distdb's bookkeeping tables (distdb_log, distdb_applied, distdb_meta) are
// left out: they are distdb's business, not the application's.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "distdb/config.hpp"
#include "distdb/storage.hpp"
#include "distdb/value.hpp"

namespace distdb::test {

struct DbFingerprint {
  std::string database;
  std::string error;  // non-empty when the fingerprint could not be taken
  std::map<std::string, std::string> facets;

  bool ok() const { return error.empty(); }
};

// A log position, as distdb_applied records it.
struct AppliedPosition {
  std::int64_t epoch = -1;
  std::int64_t seq = -1;
  bool operator==(const AppliedPosition&) const = default;
};

// One value as text: NULL, numbers, 'strings', x'blobs'.
std::string render_value(const Value& v);

// Leaves out DEFINER=`user`@`host` (and the space after it).
std::string strip_definer(const std::string& sql);
// Leaves out " AUTO_INCREMENT=N" (the table option, not the column attribute).
std::string strip_auto_increment(const std::string& sql);

// Direct connections (distdb's Storage API, MariaDB backend) to each of the
// test servers, database `mysql`; every query names its database.
class DbInspector {
 public:
  // One connection per entry of mariadb_servers() (mariadb_env.hpp).
  DbInspector();
  ~DbInspector();

  std::size_t size() const { return servers_.size(); }

  // A statement on server `index` (0-based), in autocommit mode.
  Result<ResultSet> execute(std::size_t index, const std::string& sql);

  DbFingerprint fingerprint(std::size_t index, const std::string& database);
  std::vector<DbFingerprint> fingerprint_all(const std::string& database);

  // distdb_applied of `database` on server `index` (nullopt: unreadable).
  std::optional<AppliedPosition> applied(std::size_t index, const std::string& database);

  // Polls distdb_applied on every server until all hold the same position
  // (the caller has its write's reply, so the coordinator has committed it
  // and the others have it prepared or committed: equal positions mean all
  // of them applied it). False at the deadline; `why` then lists the positions.
  bool wait_for_same_position(const std::string& database, std::chrono::milliseconds timeout,
                              std::string* why = nullptr);

  // The state of distdb's own tables on server `index`: their definitions,
  // distdb_meta's rows, distdb_log's and distdb_applied's row counts, the
  // applied position. For checking that a refused statement left them alone.
  std::map<std::string, std::string> bookkeeping(std::size_t index, const std::string& database);
  // The highest seq in distdb_log (0 when empty, nullopt when unreadable),
  // and a digest (count and CRC32 sum) of its rows up to `upto`: entries
  // once logged must stay as they are.
  std::optional<std::int64_t> log_last_seq(std::size_t index, const std::string& database);
  std::string log_digest(std::size_t index, const std::string& database, std::int64_t upto);

 private:
  Result<ResultSet> execute_on(std::size_t index, const std::string& sql);
  std::vector<DbConfig> servers_;
  std::vector<std::unique_ptr<Storage>> connections_;
};

// Compares fingerprints and describes every difference, one facet per line
// ("table `t` checksum: server 1: 123 | server 2: 456 | server 3: 123");
// empty when they are all identical. `labels` name the fingerprints (by
// default "server 1", "server 2", ...).
std::string fingerprint_diff(const std::vector<DbFingerprint>& prints,
                             const std::vector<std::string>& labels = {});

// The schema objects (other than distdb's) of `database`, in the union of
// what the fingerprints list: kind ("table", "view", "sequence", "trigger",
// "procedure", "function", "event") and name.
std::vector<std::pair<std::string, std::string>> user_objects(const std::vector<DbFingerprint>& prints);

}  // namespace distdb::test
