// The nemesis: applies the fault schedule to the real cluster -- kill -9 and
// restart of distdb-node processes, SIGSTOP/SIGCONT, partitions through the
// proxy, kill -9 and restart of MariaDB servers -- and keeps the record the
// report and the availability figure are made from.
//
// Faults are applied one at a time, each healed before the next starts, so
// that a majority of healthy, connected nodes exists at every moment: every
// stretch without successful writes is then an availability loss of distdb,
// not an expected consequence of the faults. The nemesis still records,
// for every moment, whether a majority was up (a node is "up" when its
// process runs, is not stopped, its database server runs, and it is on the
// majority side of any partition), so that the availability figure stays
// honest should overlapping faults be added.
//
// Sleeping is this class's job: the schedule says "at +12.3 s, for 2.1 s".
// Everything that waits for the cluster (a coordinator to resolve, a node's
// port to open, a server to answer a ping) waits for a condition with a
// deadline.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "cluster_fixture.hpp"
#include "history.hpp"
#include "proxy.hpp"
#include "schedule.hpp"

namespace distdb::fault {

struct AppliedFault {
  PlannedFault planned;
  int node = 0;                  // the node hit (resolved from the role)
  std::int64_t started_ms = -1;  // actual times, from the start of the workload
  std::int64_t healed_ms = -1;
  std::string note;  // how the target was resolved, or what went wrong
};

// Whether a majority of nodes was up, from `at_ms` on (until the next change).
struct MajorityChange {
  std::int64_t at_ms = 0;
  bool majority_up = true;
};

struct UnexpectedExit {
  int node = 0;
  bool database = false;  // node's MariaDB server, rather than its distdb-node
  std::int64_t seen_ms = 0;
  std::string log_tail;
};

class Nemesis {
 public:
  Nemesis(test::ClusterProcesses& cluster, PartitionProxy& proxy, const History& clock,
          std::vector<PlannedFault> schedule, std::atomic<bool>& abort);

  // Runs the whole schedule (returns when the last fault is healed, or when
  // `abort` is set).
  void run();
  // Undoes whatever is still in effect (SIGCONT, restarts, heal): used at the
  // end of a run and on the way out after an error. Never throws.
  void heal_everything() noexcept;
  // A node process that exited although the nemesis did not kill it (a
  // crash of distdb), or a MariaDB server that stopped answering although
  // the nemesis did not kill it (a crash of MariaDB, which distdb's queries
  // can trigger too). Checked before each fault and at the end; either is
  // restarted so that the run goes on.
  void check_for_crashes();

  const std::vector<AppliedFault>& applied() const { return applied_; }
  const std::vector<MajorityChange>& majority_timeline() const { return timeline_; }
  const std::vector<UnexpectedExit>& unexpected_exits() const { return exits_; }

 private:
  struct NodeState {
    bool killed = false;  // by us
    bool paused = false;
    bool db_down = false;
  };

  int resolve_coordinator(std::string& note);
  int resolve_participant(int coordinator, int index);
  void apply(AppliedFault& fault);
  void heal(AppliedFault& fault);
  void restart_node(int id);
  void restart_database(int id);
  void record_majority();
  bool sleep_until_ms(std::int64_t at_ms);  // false when aborted

  test::ClusterProcesses& cluster_;
  PartitionProxy& proxy_;
  const History& clock_;
  std::vector<PlannedFault> schedule_;
  std::atomic<bool>& abort_;
  std::vector<NodeState> state_;  // [id], 1-based
  int isolated_ = 0;              // node cut off by the proxy, 0 for none
  std::vector<AppliedFault> applied_;
  std::vector<MajorityChange> timeline_;
  std::vector<UnexpectedExit> exits_;
};

}  // namespace distdb::fault
