// ReplicationExecutor against a scripted fake database: what it does when
// the database goes away in the middle of a task. Both cases were found by
// the fault test (tests/fault, docs/fault-testing.md) killing a node's
// MariaDB server while the node kept running.
#include <doctest/doctest.h>

#include <cstdio>
#include <map>
#include <set>
#include <optional>
#include <string>
#include <vector>

#include <atomic>
#include <chrono>
#include <thread>

#include "node/read_gate.hpp"
#include "node/replication_executor.hpp"

namespace {

using namespace distdb;

// A database with XA semantics reduced to what the executor relies on: a
// prepared transaction survives a lost connection, the applied position and
// the log commit with their transaction. `fail_*` make the next such call
// fail as a lost connection does, after (prepare) or before (commit) the
// server did the work.
class FakeDatabase final : public Storage {
 public:
  std::string_view backend_name() const override { return "mariadb"; }
  bool prepare_survives_crash() const override { return true; }

  Result<ResultSet> execute(std::string_view sql) override {
    if (down) return Error(ErrorKind::storage_unavailable, "down");
    ResultSet rs;
    const std::string s(sql);
    unsigned long long seq = 0;
    if (s.rfind("SELECT epoch, seq FROM distdb_applied", 0) == 0) {
      rs.columns = {"epoch", "seq"};
      rs.rows.push_back({static_cast<std::int64_t>(applied_epoch), static_cast<std::int64_t>(applied_seq)});
    } else if (std::sscanf(s.c_str(), "SELECT epoch FROM distdb_log WHERE seq = %llu", &seq) == 1) {
      rs.columns = {"epoch"};
      if (auto it = log.find(seq); it != log.end())
        rs.rows.push_back({static_cast<std::int64_t>(it->second)});
    }
    return rs;
  }

  Status begin(const TxnId& id) override {
    if (down) return Error(ErrorKind::storage_unavailable, "down");
    open = id;
    pending = {};
    pending_log.clear();
    return {};
  }

  std::vector<Result<ResultSet>> execute_batch_in(const TxnId& id,
                                                  const std::vector<std::string_view>& statements) override {
    ++batches;
    return Storage::execute_batch_in(id,
                                     statements);  // one at a time, stopping at a failure, as MariaDB does
  }

  std::vector<Result<ResultSet>> execute_batch_and_prepare(const TxnId& id,
                                                           const std::vector<std::string_view>& statements,
                                                           std::optional<Status>& prepare_status) override {
    ++batch_prepares;
    return Storage::execute_batch_and_prepare(id, statements, prepare_status);  // batch, then prepare() if all ran
  }

  Result<ResultSet> execute_in(const TxnId&, std::string_view sql) override {
    if (down) return Error(ErrorKind::outcome_unknown, "lost");
    const std::string s(sql);
    if (s.rfind("INSERT INTO t ", 0) == 0) {
      if (s.find("'dup'") != std::string::npos) return Error(ErrorKind::sql, "Duplicate entry 'dup'", 1062);
      ++rows_inserted;
    }
    if (s.rfind("INSERT INTO distdb_log", 0) == 0) last_log_row = s;
    unsigned long long epoch = 0;
    unsigned long long seq = 0;
    if (std::sscanf(s.c_str(), "UPDATE distdb_applied SET epoch = %llu, seq = %llu", &epoch, &seq) == 2) {
      pending.epoch = epoch;
      pending.seq = seq;
    } else if (std::sscanf(s.c_str(), "INSERT INTO distdb_log (seq, epoch, statements) VALUES (%llu, %llu",
                           &seq, &epoch) == 2) {
      pending_log[seq] = epoch;  // a transaction may hold several entries (catch-up)
    }
    return ResultSet{};
  }

  Status prepare(const TxnId& id) override {
    ++prepares;
    prepared[id] = pending;
    prepared_log[id] = pending_log;
    open.clear();
    if (fail_prepare) {  // the server prepared it, then the connection was lost
      fail_prepare = false;
      down = true;
      return Error(ErrorKind::outcome_unknown, "connection lost during XA PREPARE");
    }
    return {};
  }

  Status commit(const TxnId& id) override {
    if (down) return Error(ErrorKind::storage_unavailable, "down");
    if (fail_commit_of == id) {
      down = true;
      return Error(ErrorKind::outcome_unknown, "connection lost before XA COMMIT");
    }
    auto it = prepared.find(id);
    if (it == prepared.end()) return Error(ErrorKind::sql, "XAER_NOTA: Unknown XID", 1397);
    applied_epoch = it->second.epoch;
    applied_seq = it->second.seq;
    for (const auto& [seq, epoch] : prepared_log[id]) log[seq] = epoch;
    prepared_log.erase(id);
    prepared.erase(it);
    if (lose_commit_answer) {  // committed, then the connection was lost
      lose_commit_answer = false;
      down = true;
      return Error(ErrorKind::outcome_unknown, "connection lost during XA COMMIT");
    }
    return {};
  }

  Status rollback(const TxnId& id) override {
    if (open == id) open.clear();
    if (down) return {};  // what MariadbStorage says for a transaction open on a lost connection
    prepared.erase(id);
    ++rollbacks;
    return {};
  }

  Result<std::vector<TxnId>> recover() override {
    if (down) return Error(ErrorKind::storage_unavailable, "down");
    std::vector<TxnId> ids;
    for (const auto& [id, position] : prepared) ids.push_back(id);
    return ids;
  }

  Status ping() override { return {}; }
  unsigned long server_version() const override { return 0; }

  struct Position {
    std::uint64_t epoch = 0;
    std::uint64_t seq = 0;
  };
  bool down = false;
  bool fail_prepare = false;
  bool lose_commit_answer = false;
  TxnId fail_commit_of;
  TxnId open;
  Position pending;
  std::map<TxnId, Position> prepared;
  std::map<std::uint64_t, std::uint64_t> pending_log;  // seq -> epoch, in the open transaction
  std::map<TxnId, std::map<std::uint64_t, std::uint64_t>> prepared_log;
  std::uint64_t applied_epoch = 0;
  std::uint64_t applied_seq = 0;
  std::map<std::uint64_t, std::uint64_t> log;  // seq -> epoch
  int rollbacks = 0;
  int batches = 0;           // execute_batch_in() calls
  int batch_prepares = 0;    // execute_batch_and_prepare() calls
  int prepares = 0;          // prepare() calls
  int rows_inserted = 0;     // successful INSERT INTO t statements (rolled back ones included)
  std::string last_log_row;  // the last INSERT INTO distdb_log statement
};

core::Entry entry(std::uint64_t seq, std::uint64_t epoch) {
  core::Entry e;
  e.id = {seq, epoch};
  e.statements.push_back({"INSERT INTO t VALUES (" + std::to_string(seq) + ")", true, 0});
  return e;
}

core::StorageDone perform(ReplicationExecutor& executor, core::StorageOp op) {
  return executor.perform(core::StorageTask{1, std::move(op)});
}

}  // namespace

TEST_CASE("executor: a prepare whose answer was lost is rolled back before the next task") {
  FakeDatabase db;
  ReplicationExecutor executor(db, db, nullptr, 1000);
  db.fail_prepare = true;
  auto done = perform(executor, core::PrepareEntry{entry(1, 1), {}, false});
  CHECK_FALSE(done.ok);
  REQUIRE(db.prepared.count("ddb-1-1") == 1);  // the server kept it: it holds its locks

  // While the server is down, nothing else runs (and it stays remembered).
  done = perform(executor, core::PersistPromise{2});
  CHECK_FALSE(done.ok);
  CHECK(db.prepared.count("ddb-1-1") == 1);

  db.down = false;  // the server is back, the transaction prepared again
  done = perform(executor, core::PersistPromise{2});
  CHECK(done.ok);
  CHECK(db.prepared.empty());
  CHECK(db.rollbacks == 1);

  // Once resolved, it is not looked at again.
  done = perform(executor, core::PersistPromise{3});
  CHECK(done.ok);
  CHECK(db.rollbacks == 1);
}

TEST_CASE("executor: a catch-up that fails part-way reports the entries it committed") {
  FakeDatabase db;
  ReplicationExecutor executor(db, db, nullptr, 1000);
  // Two transactions: the first kCatchUpBatch entries, then two more whose
  // commit loses the connection.
  constexpr std::uint64_t kFirst = ReplicationExecutor::kCatchUpBatch;
  std::vector<core::Entry> entries;
  for (std::uint64_t seq = 1; seq <= kFirst + 2; ++seq) entries.push_back(entry(seq, 1));
  db.fail_commit_of = "ddb-" + std::to_string(kFirst + 1) + "-1";
  auto done = perform(executor, core::ApplyEntries{entries});
  CHECK_FALSE(done.ok);
  CHECK(done.applied_count == kFirst);
  CHECK(db.applied_seq == kFirst);
  // The second transaction was prepared when the connection went: it must
  // not stay so, and the rest is applied on the next try.
  db.down = false;
  db.fail_commit_of.clear();
  done = perform(executor, core::ApplyEntries{{entry(kFirst + 1, 1), entry(kFirst + 2, 1)}});
  CHECK(done.ok);
  CHECK(done.applied_count == 2);
  CHECK(db.applied_seq == kFirst + 2);
  CHECK(db.prepared.empty());
  CHECK(db.log.size() == kFirst + 2);  // every entry's log row, not only each transaction's last
}

TEST_CASE("executor: catch-up skips entries the database already holds, and only those") {
  FakeDatabase db;
  ReplicationExecutor executor(db, db, nullptr, 1000);
  REQUIRE(perform(executor, core::ApplyEntries{{entry(1, 1), entry(2, 1)}}).ok);

  // The core lost the answer and asks again from entry 1: nothing is applied
  // twice, and the batch counts as applied.
  auto done = perform(executor, core::ApplyEntries{{entry(1, 1), entry(2, 1), entry(3, 2)}});
  CHECK(done.ok);
  CHECK_FALSE(done.diverged);
  CHECK(done.applied_count == 3);
  CHECK(db.applied_seq == 3);

  // The same position with another epoch is another entry: a divergence.
  done = perform(executor, core::ApplyEntries{{entry(3, 5), entry(4, 5)}});
  CHECK(done.diverged);
  CHECK(done.applied_count == 0);
  CHECK(db.applied_seq == 3);
}

TEST_CASE("executor: a commit retried after its answer was lost succeeds, and only if it went through") {
  FakeDatabase db;
  ReplicationExecutor executor(db, db, nullptr, 1000);
  REQUIRE(perform(executor, core::PrepareEntry{entry(1, 1), {}, false}).ok);
  db.lose_commit_answer = true;
  CHECK_FALSE(perform(executor, core::CommitEntry{{1, 1}}).ok);
  db.down = false;
  // The retry finds no such transaction: its log row shows it committed.
  CHECK(perform(executor, core::CommitEntry{{1, 1}}).ok);
  // A transaction that is unknown and not in the log did not commit.
  CHECK_FALSE(perform(executor, core::CommitEntry{{2, 1}}).ok);
}

TEST_CASE("read gate: an install waits for running reads, and new reads wait for the install") {
  ReadGate gate;
  std::atomic<int> step{0};
  gate.enter_read();  // a read is running
  std::thread installer([&] {
    gate.begin_install();
    step = 1;  // only once the read has left
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    step = 2;
    gate.end_install();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(step == 0);
  gate.leave_read();
  while (step == 0) std::this_thread::yield();
  {
    ReadGate::Read read(gate);  // waits for the install to end
    CHECK(step == 2);
  }
  installer.join();
}

TEST_CASE(
    "executor: an entry's statements, bookkeeping and prepare go as one batch, resumed after a failed statement") {
  FakeDatabase db;
  ReplicationExecutor executor(db, db, nullptr, 1000);
  core::Entry e = entry(1, 1);
  e.statements.push_back({"INSERT INTO t VALUES ('dup')", true, 0});
  e.statements.push_back({"INSERT INTO t VALUES (3)", true, 0});
  auto done = perform(executor, core::PrepareEntry{e, {}, false});
  REQUIRE(done.ok);
  REQUIRE(done.outcomes.size() == 3);
  CHECK(done.outcomes[0].ok);
  CHECK_FALSE(done.outcomes[1].ok);
  CHECK(done.outcomes[1].code == 1062);
  CHECK(done.outcomes[2].ok);
  CHECK(db.rows_inserted == 2);
  // Two batches: the first stopped at the failed statement, the second ran
  // the rest and the bookkeeping, whose log row holds the real outcomes.
  CHECK(db.batches == 2);
  // Both asked for the prepare to ride along; it ran once, after the last.
  CHECK(db.batch_prepares == 2);
  CHECK(db.prepares == 1);
  CHECK(db.last_log_row.find("[\"INSERT INTO t VALUES (''dup'')\",false,1062]") != std::string::npos);
  CHECK(db.last_log_row.find("[\"INSERT INTO t VALUES (3)\",true,0]") != std::string::npos);
}

TEST_CASE("executor: catch-up sends a run of entries as one batch and checks every logged outcome") {
  FakeDatabase db;
  ReplicationExecutor executor(db, db, nullptr, 1000);
  std::vector<core::Entry> entries;
  for (std::uint64_t seq = 1; seq <= 10; ++seq) entries.push_back(entry(seq, 1));
  entries[4].statements.push_back({"INSERT INTO t VALUES ('dup')", false, 1062});  // failed everywhere
  auto done = perform(executor, core::ApplyEntries{entries});
  REQUIRE(done.ok);
  CHECK_FALSE(done.diverged);
  CHECK(done.applied_count == 10);
  CHECK(db.applied_seq == 10);
  CHECK(db.log.size() == 10);
  CHECK(db.rows_inserted == 10);
  CHECK(db.batches == 2);  // resumed once, after the statement logged as failed

  // A statement that fails here but succeeded in the log: a divergence,
  // and nothing of the run is kept.
  std::vector<core::Entry> more = {entry(11, 1), entry(12, 1)};
  more[1].statements.push_back({"INSERT INTO t VALUES ('dup')", true, 0});
  done = perform(executor, core::ApplyEntries{more});
  CHECK(done.diverged);
  CHECK(done.applied_count == 0);
  CHECK(db.applied_seq == 10);
  CHECK(db.prepared.empty());
}

TEST_CASE("executor: transaction ids name the database; recovery takes its own and older-format ones only") {
  FakeDatabase db;
  db.down = false;
  ReplicationExecutor executor(db, db, nullptr, 1000);
  executor.set_txn_scope("app");
  const std::string ours = txn_scope_prefix("app");
  const std::string theirs = txn_scope_prefix("other_app");
  REQUIRE(ours != theirs);
  CHECK(ours.rfind("ddb.", 0) == 0);
  CHECK(is_valid_txn_id(ours + "18446744073709551615-18446744073709551615"));
  CHECK(is_valid_txn_id(txn_scope_prefix("naïve `db` name; with spaces") + "1-1"));

  auto done = perform(executor, core::PrepareEntry{entry(1, 1), {}, false});
  REQUIRE(done.ok);
  CHECK(db.prepared.count(ours + "1-1") == 1);
  REQUIRE(perform(executor, core::CommitEntry{{1, 1}}).ok);

  // After a crash the server lists: an entry of ours, one left prepared by an
  // older version (no database in its id), another cluster's, and someone
  // else's XA transaction.
  db.prepared[ours + "3-2"] = {};
  db.prepared["ddb-2-2"] = {};
  db.prepared[theirs + "3-2"] = {};
  db.prepared["payments-77"] = {};
  ReplicationExecutor restarted(db, db, nullptr, 1000);
  restarted.set_txn_scope("app");
  auto state = restarted.recover();
  REQUIRE(state.ok());
  REQUIRE(state->prepared.size() == 2);
  CHECK(std::count(state->prepared.begin(), state->prepared.end(), core::EntryId{2, 2}) == 1);
  CHECK(std::count(state->prepared.begin(), state->prepared.end(), core::EntryId{3, 2}) == 1);
  // Each is decided under the id it was prepared with; the others are untouched.
  REQUIRE(perform(restarted, core::RollbackEntry{{2, 2}}).ok);
  REQUIRE(perform(restarted, core::CommitEntry{{3, 2}}).ok);
  CHECK(db.prepared.count("ddb-2-2") == 0);
  CHECK(db.prepared.count(ours + "3-2") == 0);
  CHECK(db.prepared.count(theirs + "3-2") == 1);
  CHECK(db.prepared.count("payments-77") == 1);
}
