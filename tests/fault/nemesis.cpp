#include "nemesis.hpp"

#include <signal.h>

#include <algorithm>
#include <map>
#include <thread>

#include "mariadb_env.hpp"
#include "node_fixture.hpp"

namespace distdb::fault {
namespace {

std::string tail(const std::string& text, std::size_t lines) {
  std::size_t pos = text.size();
  for (std::size_t i = 0; i <= lines && pos > 0; ++i) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) return text;
  }
  return text.substr(pos + 1);
}

}  // namespace

Nemesis::Nemesis(test::ClusterProcesses& cluster, PartitionProxy& proxy, const History& clock,
                 std::vector<PlannedFault> schedule, std::atomic<bool>& abort)
    : cluster_(cluster),
      proxy_(proxy),
      clock_(clock),
      schedule_(std::move(schedule)),
      abort_(abort),
      state_(static_cast<std::size_t>(cluster.size() + 1)) {
  timeline_.push_back({0, true});
}

bool Nemesis::sleep_until_ms(std::int64_t at_ms) {
  // In short slices, so that an abort (SIGINT, SIGTERM from meson's
  // timeout) is noticed promptly.
  while (!abort_) {
    const std::int64_t left = at_ms - clock_.now_ms();
    if (left <= 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min<std::int64_t>(left, 50)));
  }
  return false;
}

void Nemesis::run() {
  for (const PlannedFault& planned : schedule_) {
    if (!sleep_until_ms(planned.at_ms)) return;
    check_for_crashes();
    AppliedFault fault;
    fault.planned = planned;
    apply(fault);
    applied_.push_back(fault);
    // The fault lasts its planned duration from when it actually started
    // (a restart before it may have made it late).
    if (!sleep_until_ms(applied_.back().started_ms + planned.duration_ms)) return;
    heal(applied_.back());
  }
}

int Nemesis::resolve_coordinator(std::string& note) {
  // Ask every node that can answer; the coordinator most of them name wins.
  // Between faults an election may still be under way, hence the wait.
  int found = 0;
  test::wait_until(
      [&] {
        std::map<int, int> votes;
        for (int id = 1; id <= cluster_.size(); ++id) {
          const NodeState& s = state_[static_cast<std::size_t>(id)];
          if (s.killed || s.paused || !cluster_.running(id)) continue;
          if (const int c = cluster_.coordinator_seen_by(id); c != 0) ++votes[c];
        }
        int best = 0;
        for (const auto& [id, count] : votes) {
          if (best == 0 || count > votes[best]) best = id;
        }
        found = best;
        return found != 0;
      },
      std::chrono::seconds(5));
  if (found != 0) return found;
  note = "no coordinator known after 5 s; hit the highest id";
  return cluster_.size();
}

int Nemesis::resolve_participant(int coordinator, int index) {
  std::vector<int> others;
  for (int id = 1; id <= cluster_.size(); ++id) {
    if (id != coordinator) others.push_back(id);
  }
  return others.at(static_cast<std::size_t>(index) % others.size());
}

void Nemesis::apply(AppliedFault& fault) {
  const FaultKind kind = fault.planned.kind;
  const bool on_coordinator = kind == FaultKind::kill_coordinator || kind == FaultKind::pause_coordinator ||
                              kind == FaultKind::partition_coordinator;
  if (kind == FaultKind::kill_database) {
    fault.node = fault.planned.target_index;
  } else {
    const int coordinator = resolve_coordinator(fault.note);
    fault.node = on_coordinator ? coordinator : resolve_participant(coordinator, fault.planned.target_index);
  }
  NodeState& s = state_[static_cast<std::size_t>(fault.node)];
  fault.started_ms = clock_.now_ms();
  switch (kind) {
    case FaultKind::kill_coordinator:
    case FaultKind::kill_participant:
      cluster_.kill(fault.node);
      s.killed = true;
      break;
    case FaultKind::pause_coordinator:
    case FaultKind::pause_participant:
      cluster_.signal(fault.node, SIGSTOP);
      s.paused = true;
      break;
    case FaultKind::partition_coordinator:
    case FaultKind::partition_minority:
      proxy_.isolate(fault.node);
      isolated_ = fault.node;
      break;
    case FaultKind::kill_database:
      if (const int rc = test::mariadb_ctl("kill", static_cast<std::size_t>(fault.node - 1)); rc != 0) {
        fault.note = "kill of the MariaDB server failed (status " + std::to_string(rc) + ")";
      }
      s.db_down = true;
      break;
  }
  record_majority();
}

void Nemesis::heal(AppliedFault& fault) {
  NodeState& s = state_[static_cast<std::size_t>(fault.node)];
  switch (fault.planned.kind) {
    case FaultKind::kill_coordinator:
    case FaultKind::kill_participant:
      restart_node(fault.node);
      break;
    case FaultKind::pause_coordinator:
    case FaultKind::pause_participant:
      cluster_.signal(fault.node, SIGCONT);
      s.paused = false;
      break;
    case FaultKind::partition_coordinator:
    case FaultKind::partition_minority:
      proxy_.heal(fault.planned.reset_on_heal);
      isolated_ = 0;
      break;
    case FaultKind::kill_database:
      restart_database(fault.node);
      break;
  }
  fault.healed_ms = clock_.now_ms();
  record_majority();
}

void Nemesis::restart_node(int id) {
  cluster_.start(id);  // returns once the port accepts (or after 15 s)
  state_[static_cast<std::size_t>(id)].killed = false;
}

void Nemesis::restart_database(int id) {
  // "start" returns once the server answers a ping (mariadb-sandbox.sh).
  if (const int rc = test::mariadb_ctl("start", static_cast<std::size_t>(id - 1)); rc == 0) {
    state_[static_cast<std::size_t>(id)].db_down = false;
  }
}

void Nemesis::heal_everything() noexcept {
  try {
    for (int id = 1; id <= cluster_.size(); ++id) {
      NodeState& s = state_[static_cast<std::size_t>(id)];
      if (s.paused) {
        cluster_.signal(id, SIGCONT);
        s.paused = false;
      }
      if (s.db_down) restart_database(id);
      if (s.killed) restart_node(id);
    }
    proxy_.heal(false);
    isolated_ = 0;
    for (auto& f : applied_) {
      if (f.healed_ms < 0) f.healed_ms = clock_.now_ms();
    }
    record_majority();
  } catch (...) {
    // Best effort on the way out: the caller reports the original error.
  }
}

void Nemesis::check_for_crashes() {
  const auto servers = test::mariadb_servers();
  for (int id = 1; id <= cluster_.size(); ++id) {
    NodeState& s = state_[static_cast<std::size_t>(id)];
    if (!s.db_down && !test::port_accepts(servers.at(static_cast<std::size_t>(id - 1)).port)) {
      exits_.push_back({id, true, clock_.now_ms(), "(see the server's error log in the sandbox directory)"});
      s.db_down = true;
      restart_database(id);
    }
    if (s.killed || cluster_.running(id)) continue;
    exits_.push_back({id, false, clock_.now_ms(), tail(cluster_.log(id), 30)});
    // Keep the run going (the check fails anyway): a dead node would turn
    // every later fault into a two-node outage.
    restart_node(id);
  }
}

void Nemesis::record_majority() {
  const int n = cluster_.size();
  int up_with_isolated = 0;
  int up_elsewhere = 0;
  for (int id = 1; id <= n; ++id) {
    const NodeState& s = state_[static_cast<std::size_t>(id)];
    if (s.killed || s.paused || s.db_down) continue;
    (id == isolated_ ? up_with_isolated : up_elsewhere)++;
  }
  const bool majority = std::max(up_with_isolated, up_elsewhere) >= n / 2 + 1;
  if (timeline_.back().majority_up != majority) timeline_.push_back({clock_.now_ms(), majority});
}

}  // namespace distdb::fault
