// The client workload: threads that keep writing through distdb::Client
// while the nemesis breaks things, each operation recorded in the History.
//
// Two workloads, because they catch different failures:
//
// - append: each operation inserts a key nobody else ever inserts
//   (INSERT INTO fault_append (k, w) VALUES (<unique>, <worker>)). Unique keys
//   make every write individually checkable afterwards: an acknowledged key
//   must be on every node, a failed one on none, and no key may appear that
//   was never attempted. This is what catches lost or resurrected writes.
//
// - bank: transfers between a few accounts. Each transfer is ONE statement,
//     UPDATE fault_bank SET balance = balance + CASE id WHEN a THEN -x WHEN b THEN x END
//     WHERE id IN (a, b)
//   so it is atomic by construction: distdb replicates a request as one
//   statement in one log entry (several statements per request, or
//   BEGIN..COMMIT across requests, are refused -- docs/design.md, "Known
//   limits"), and the statement is deterministic (the node refuses NOW(),
//   RAND() and the like). Money can then be neither created nor destroyed by
//   any interleaving of committed transfers, so a changed total anywhere
//   means a transfer was applied partially, twice, or on some nodes only.
//   Balances may go negative; only the sum is an invariant. Few accounts
//   means the transfers conflict on rows all the time, on purpose.
//   A reader thread also sums the balances on random nodes during the run:
//   reads are local, but each node's committed state must still be a
//   consistent set of whole transfers.
//
// - sql (on by default; --sql-workload off leaves it out): what makes a
//   statement mean more than its text, each of which a member could
//   evaluate differently. Setup creates, through the cluster, fault_auto
//   (an AUTO_INCREMENT primary key, columns with constant DEFAULTs),
//   fault_audit (its own AUTO_INCREMENT key) filled by two triggers with
//   BEGIN ... END bodies (AFTER INSERT and AFTER UPDATE on fault_auto), a
//   NOCACHE sequence fault_seq and fault_seqrows. Each operation is one of
//     auto_insert   INSERT INTO fault_auto (k, w) VALUES (<unique>, <worker>)
//                   -- the id is the server's, n and note their defaults;
//     seq_insert    INSERT INTO fault_seqrows (k, v, w)
//                   VALUES (<unique>, NEXTVAL(fault_seq), <worker>);
//     audit_update  UPDATE fault_auto SET n = n + 1, note = 'updated'
//                   WHERE k = <a key this worker inserted>.
//   Unique keys make each write checkable as the appends are; the
//   checker also compares the databases as a whole (table checksums,
//   sequence position, trigger definitions, AUTO_INCREMENT counters) and
//   checks that the audit rows match what the triggers were asked to do.
//
// Clients connect to a random node's real port for every operation (one
// cached connection per node per thread), so writes arrive at the
// coordinator and at followers (which forward them), on both sides of
// partitions, and at paused or dead nodes.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "history.hpp"
#include "rng.hpp"

namespace distdb::fault {

struct WorkloadOptions {
  std::vector<int> ports;  // real client ports of nodes 1..n
  int append_workers = 3;
  int bank_workers = 2;
  int bank_readers = 1;
  int sql_workers = 2;  // 0: no SQL-rich workload (nor its tables)
  int accounts = 8;
  std::int64_t initial_balance = 1000;
  int connect_timeout_ms = 1000;
  int request_timeout_ms = 6000;  // a reply later than this counts as unknown
  std::uint64_t seed = 1;         // for the clients' choices (not part of the fault schedule)
};

// The tables the workload uses, as DDL and seed statements (run by the
// runner through the cluster before the workload starts).
std::vector<std::string> workload_setup_statements(const WorkloadOptions& options);

class Workload {
 public:
  Workload(WorkloadOptions options, History& history);
  ~Workload();  // stops and joins
  void start();
  void stop();  // asks the threads to finish their current operation, and joins them

  std::int64_t expected_total() const {
    return static_cast<std::int64_t>(options_.accounts) * options_.initial_balance;
  }

 private:
  void run_worker(int worker, OpKind kind);
  // The SQL statement for `op` (whose kind, worker and node are set); may
  // choose the kind (sql workers) and fill in the key. `inserted` holds the
  // keys this worker's auto_inserts were acknowledged for.
  std::string make_statement(Operation& op, sim::Rng& rng, const std::vector<std::int64_t>& inserted);

  WorkloadOptions options_;
  History& history_;
  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> next_key_{1};
  std::vector<std::thread> threads_;
};

}  // namespace distdb::fault
