// The history: every client operation the workload attempted, with when it
// was invoked, when it returned, and what the client could conclude.
//
// The outcome is what a careful application could know, not what happened:
//   ok       the node said the write committed (or the read returned rows);
//   failed   the write certainly did not take effect: the node refused it
//            before ordering it (no_quorum, not_coordinator, invalid
//            request, ...), the database rejected it (kind sql: the
//            statement was rolled back under its savepoint everywhere), or
//            the request never left the client (connection refused);
//   unknown  it may or may not have taken effect: the node said
//            outcome_unknown, or the connection dropped or timed out after
//            the request was sent.
// The checker holds the system to exactly these promises: ok must be
// durable everywhere, failed must be nowhere, unknown may go either way.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "distdb/client.hpp"

namespace distdb::fault {

using Clock = std::chrono::steady_clock;

// The SQL-rich workload (workload.hpp) adds auto_insert (an INSERT that
// takes an AUTO_INCREMENT id, firing an audit trigger), seq_insert (a value
// from NEXTVAL of a NOCACHE sequence) and audit_update (an UPDATE of an
// auto_insert row, firing the other audit trigger).
enum class OpKind { append, transfer, read_total, auto_insert, seq_insert, audit_update };
enum class Outcome { ok, failed, unknown };

const char* op_name(OpKind kind);
const char* outcome_name(Outcome outcome);

struct Operation {
  OpKind kind = OpKind::append;
  int worker = 0;
  int node = 0;          // the node the client sent it to
  std::int64_t key =
      0;  // append, auto_insert, seq_insert: the unique key inserted; audit_update: the key updated
  int from = 0, to = 0;  // transfer: accounts
  std::int64_t amount = 0;
  std::int64_t value = 0;  // read_total: the total read; auto_insert: the id the reply reported (0: none)
  std::int64_t invoked_ms = 0;  // since the start of the workload
  std::int64_t completed_ms = 0;
  Outcome outcome = Outcome::unknown;
  std::string detail;  // the error, when not ok
};

// An integer cell: BIGINT, or the text MariaDB uses for DECIMAL (SUM() of a
// BIGINT column) and large unsigned values.
std::optional<std::int64_t> value_as_int(const Value& v);

// What a reply (or a transport error) means for a write; see above.
Outcome classify_write(const Result<Reply>& reply, std::string& detail);

class History {
 public:
  explicit History(Clock::time_point start) : start_(start) {}

  std::int64_t now_ms() const;
  void add(Operation op);
  std::vector<Operation> snapshot() const;

 private:
  Clock::time_point start_;
  mutable std::mutex mutex_;
  std::vector<Operation> ops_;
};

}  // namespace distdb::fault
