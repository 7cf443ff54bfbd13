#include "report.hpp"

#include <cstdio>
#include <map>

namespace distdb::fault {
namespace {

std::string secs(std::int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000.0);
  return buf;
}

std::string at(std::int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "+%6.1fs", static_cast<double>(ms) / 1000.0);
  return buf;
}

}  // namespace

void print_schedule(std::ostream& out, std::uint64_t seed, const std::vector<PlannedFault>& schedule) {
  out << "fault schedule (seed " << seed << ", " << schedule.size() << " faults):\n";
  for (const auto& f : schedule) out << "  " << at(f.at_ms) << "  " << describe(f) << "\n";
  out.flush();
}

void print_report(std::ostream& out, const ReportInputs& in) {
  const auto& ops = *in.ops;
  out << "\n=== distdb fault test report ===\n";
  out << "seed " << in.seed << ", mode " << in.mode << ", " << secs(in.workload_ms)
      << " of workload, 3 distdb-node processes on MariaDB " << in.servers << "\n";

  out << "faults applied (" << in.faults->size() << "):\n";
  for (const auto& f : *in.faults) {
    out << "  " << at(f.started_ms) << " .. " << at(f.healed_ms) << "  " << describe(f.planned) << " -> node "
        << f.node << (f.note.empty() ? "" : " [" + f.note + "]") << "\n";
  }

  std::map<OpKind, std::map<Outcome, std::size_t>> counts;
  for (const auto& op : ops) ++counts[op.kind][op.outcome];
  out << "operations (" << ops.size() << "):\n";
  for (const auto kind : {OpKind::append, OpKind::transfer, OpKind::read_total, OpKind::auto_insert,
                          OpKind::seq_insert, OpKind::audit_update}) {
    if (kind >= OpKind::auto_insert && !counts.count(kind)) continue;  // the SQL workload was off
    auto& c = counts[kind];
    char buf[160];
    std::snprintf(buf, sizeof buf, "  %-12s ok %6zu   failed %5zu   unknown %5zu\n", op_name(kind),
                  c[Outcome::ok], c[Outcome::failed], c[Outcome::unknown]);
    out << buf;
  }
  // The most common reasons, so that a CI log shows what the clients hit.
  std::map<std::string, std::size_t> reasons;
  for (const auto& op : ops) {
    if (op.outcome == Outcome::ok || op.detail.empty()) continue;
    std::string r = op.detail.substr(0, op.detail.find(':'));
    ++reasons[std::string(outcome_name(op.outcome)) + " " + r];
  }
  if (!reasons.empty()) {
    out << "  not ok, by error kind:";
    for (const auto& [r, n] : reasons) out << " " << r << "=" << n;
    out << "\n";
  }
  out << "longest write outage: " << secs(in.availability.longest_outage_ms) << " ("
      << at(in.availability.outage_from_ms) << " .. " << at(in.availability.outage_to_ms) << ")\n";
  char buf[160];
  std::snprintf(buf, sizeof buf, "availability: %.1f%% (%d of %d windows of %lld ms with a majority up)\n",
                in.availability.share * 100.0, in.availability.available_windows,
                in.availability.eligible_windows, static_cast<long long>(in.availability.window_ms));
  out << buf;
  out << "proxied between nodes: " << in.proxied_bytes / 1024 << " KiB\n";

  bool all = true;
  out << "checks:\n";
  for (const auto& c : *in.checks) {
    all = all && c.passed;
    out << "  " << (c.passed ? "PASS " : "FAIL ") << c.name << ": " << c.detail << "\n";
  }
  if (!in.logs_kept_in.empty()) out << "node logs kept in " << in.logs_kept_in << "\n";
  out << "result: " << (all ? "PASS" : "FAIL (violation)") << "\n";
  out << "repro: " << in.repro << "\n";
  out.flush();
}

}  // namespace distdb::fault
