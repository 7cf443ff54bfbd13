#include "checker.hpp"

#include <rapidjson/document.h>

#include <algorithm>
#include <functional>
#include <regex>
#include <sstream>

#include "distdb/storage.hpp"
#include "mariadb_env.hpp"

namespace distdb::fault {
namespace {

// Whether two members' log rows name the same decided entry: the same
// epoch, and the same statements with the same outcome (ok, error code).
// An automatic id or a digest is compared where both rows know it: a row
// written in the same round trip as its statements records the id as 0
// (not known yet), while a member that applied the coordinator's rows
// records the coordinator's (replication_executor.cpp).
bool same_logged_entry(const NodeSnapshot::LogEntry& a, const NodeSnapshot::LogEntry& b) {
  if (a.epoch != b.epoch) return false;
  if (a.statements == b.statements) return true;
  rapidjson::Document x, y;
  x.Parse(a.statements.data(), a.statements.size());
  y.Parse(b.statements.data(), b.statements.size());
  if (x.HasParseError() || y.HasParseError() || !x.IsArray() || !y.IsArray() || x.Size() != y.Size())
    return false;
  for (rapidjson::SizeType i = 0; i < x.Size(); ++i) {
    const auto& p = x[i];
    const auto& q = y[i];
    if (!p.IsArray() || !q.IsArray() || p.Size() < 3 || q.Size() < 3) return false;
    for (rapidjson::SizeType k = 0; k < 3; ++k) {
      if (p[k] != q[k]) return false;
    }
    const bool p_more = p.Size() >= 5, q_more = q.Size() >= 5;
    if (p_more && q_more) {
      if (p[3].IsUint64() && q[3].IsUint64() && p[3].GetUint64() != 0 && q[3].GetUint64() != 0 &&
          p[3].GetUint64() != q[3].GetUint64()) {
        return false;
      }
      if (p[4].IsString() && q[4].IsString() && p[4].GetStringLength() != 0 && q[4].GetStringLength() != 0 &&
          p[4] != q[4]) {
        return false;
      }
    }
  }
  return true;
}

std::string as_text(const Value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (is_null(v)) return "NULL";
  return "?";
}

std::string list(const std::vector<std::string>& items, std::size_t max = 5) {
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < max; ++i) out += (i ? "; " : "") + items[i];
  if (items.size() > max) out += "; ... (" + std::to_string(items.size()) + " in all)";
  return out;
}

std::string describe_op(const Operation& op) {
  std::ostringstream s;
  s << op_name(op.kind) << " by worker " << op.worker << " via node " << op.node << " at +" << op.invoked_ms
    << ".." << op.completed_ms << " ms: " << outcome_name(op.outcome);
  if (!op.detail.empty()) s << " (" << op.detail << ")";
  return s.str();
}

// What every node says about the cluster (STATUS), for a report that has to
// explain why the cluster did not come back.
std::string cluster_status(test::ClusterProcesses& cluster) {
  std::string out = "STATUS:";
  for (int id = 1; id <= cluster.size(); ++id) {
    ClientOptions o = test::ClusterProcesses::client_options();
    o.connect_timeout_ms = 1000;
    o.request_timeout_ms = 2000;
    auto client = Client::connect("127.0.0.1", static_cast<std::uint16_t>(cluster.port(id)), o);
    auto status = client ? client->status() : Result<Reply>(client.error());
    out += " node " + std::to_string(id) + ": ";
    if (!status) {
      out += status.error().message + ";";
      continue;
    }
    out += status->message + " [";
    for (const Row& r : status->result.rows) {
      // id, ip, port, role, alive, in_view, applied_seq, epoch
      out += " " + as_text(r.at(0)) + ":" + as_text(r.at(3)) +
             (as_text(r.at(4)) == "1" ? "/alive" : "/down") + (as_text(r.at(5)) == "1" ? "/in-view" : "") +
             "/seq " + as_text(r.at(6));
    }
    out += " ];";
  }
  return out;
}

// The SQL workload's checks (checker.hpp), same-databases included.
std::vector<CheckResult> sql_checks(const std::vector<Operation>& ops,
                                    const std::vector<NodeSnapshot>& snaps) {
  std::vector<CheckResult> out;
  std::map<std::int64_t, const Operation*> inserts;  // auto_insert and seq_insert, by key
  struct Updates {
    std::int64_t ok = 0;
    std::int64_t unknown = 0;
  };
  std::map<std::int64_t, Updates> updates;
  std::size_t acked = 0, failed = 0, acked_updates = 0;
  for (const auto& op : ops) {
    if (op.kind == OpKind::auto_insert || op.kind == OpKind::seq_insert) {
      inserts[op.key] = &op;
      acked += op.outcome == Outcome::ok;
      failed += op.outcome == Outcome::failed;
    } else if (op.kind == OpKind::audit_update) {
      if (op.outcome == Outcome::ok) {
        ++updates[op.key].ok;
        ++acked_updates;
      } else if (op.outcome == Outcome::unknown) {
        ++updates[op.key].unknown;
      }
    }
  }
  auto holds = [](const NodeSnapshot& s, const Operation& op) {
    return op.kind == OpKind::auto_insert ? s.auto_rows.count(op.key) > 0 : s.seq_rows.count(op.key) > 0;
  };
  auto table_of = [](const Operation& op) {
    return std::string(op.kind == OpKind::auto_insert ? "fault_auto" : "fault_seqrows");
  };
  {
    std::vector<std::string> missing;
    for (const auto& [key, op] : inserts) {
      if (op->outcome != Outcome::ok) continue;
      bool other_id = false;
      std::string ids;
      for (const auto& s : snaps) {
        if (!holds(s, *op)) {
          missing.push_back("key " + std::to_string(key) + " missing from " + table_of(*op) + " on node " +
                            std::to_string(s.node) + " (" + describe_op(*op) + ")");
        } else if (op->kind == OpKind::auto_insert) {
          const std::int64_t id = s.auto_rows.at(key).id;
          other_id = other_id || (op->value != 0 && id != op->value);
          ids += " node " + std::to_string(s.node) + ": " + std::to_string(id) + ";";
        }
      }
      if (other_id) {
        missing.push_back("key " + std::to_string(key) + ": its reply said id " + std::to_string(op->value) +
                          ", the nodes hold" + ids + " (" + describe_op(*op) + ")");
      }
    }
    out.push_back({"sql-acked-present", missing.empty(),
                   missing.empty()
                       ? std::to_string(acked) + " acknowledged auto-id and sequence inserts on all " +
                             std::to_string(snaps.size()) + " nodes, with the ids they were told"
                       : list(missing)});
  }
  {
    std::vector<std::string> wrong;
    for (const auto& [key, op] : inserts) {
      if (op->outcome != Outcome::failed) continue;
      for (const auto& s : snaps) {
        if (holds(s, *op))
          wrong.push_back("key " + std::to_string(key) + " present in " + table_of(*op) + " on node " +
                          std::to_string(s.node) + " (" + describe_op(*op) + ")");
      }
    }
    for (const auto& s : snaps) {
      for (const auto& [key, row] : s.auto_rows) {
        const auto it = inserts.find(key);
        if (it == inserts.end() || it->second->kind != OpKind::auto_insert)
          wrong.push_back("key " + std::to_string(key) + " in fault_auto on node " + std::to_string(s.node) +
                          " was never attempted");
      }
      for (const auto& [key, v] : s.seq_rows) {
        const auto it = inserts.find(key);
        if (it == inserts.end() || it->second->kind != OpKind::seq_insert)
          wrong.push_back("key " + std::to_string(key) + " in fault_seqrows on node " +
                          std::to_string(s.node) + " was never attempted");
      }
    }
    out.push_back({"sql-failed-absent", wrong.empty(),
                   wrong.empty() ? std::to_string(failed) +
                                       " failed inserts on no node; every key present was attempted"
                                 : list(wrong)});
  }
  {
    std::vector<std::string> wrong;
    for (const auto& s : snaps) {
      for (const auto& [key, row] : s.auto_rows) {
        const auto it = updates.find(key);
        const Updates u = it == updates.end() ? Updates{} : it->second;
        if (row.n < u.ok || row.n > u.ok + u.unknown) {
          wrong.push_back("node " + std::to_string(s.node) + " key " + std::to_string(key) +
                          ": n = " + std::to_string(row.n) + ", but " + std::to_string(u.ok) +
                          " acknowledged and " + std::to_string(u.unknown) + " unknown updates");
        }
      }
      for (const auto& [key, u] : updates) {
        if (u.ok > 0 && !s.auto_rows.count(key))
          wrong.push_back("node " + std::to_string(s.node) + " key " + std::to_string(key) +
                          ": updated (acknowledged) but absent");
      }
    }
    out.push_back({"sql-updates-explained", wrong.empty(),
                   wrong.empty() ? "every row's n explained by " + std::to_string(acked_updates) +
                                       " acknowledged updates and some unknown ones"
                                 : list(wrong)});
  }
  {
    std::vector<std::string> wrong;
    std::size_t rows = 0;
    for (const auto& s : snaps) {
      for (const auto& [key, row] : s.auto_rows) {
        ++rows;
        const auto it = s.audit.find(key);
        const NodeSnapshot::Audit a = it == s.audit.end() ? NodeSnapshot::Audit{} : it->second;
        std::vector<std::int64_t> expected;
        for (std::int64_t i = 1; i <= row.n; ++i) expected.push_back(i);
        if (a.inserts != 1 || a.updates != expected || a.others != 0) {
          std::string seen;
          for (const auto n : a.updates) seen += (seen.empty() ? "" : ",") + std::to_string(n);
          wrong.push_back("node " + std::to_string(s.node) + " key " + std::to_string(key) +
                          " (n = " + std::to_string(row.n) + "): " + std::to_string(a.inserts) +
                          " 'insert' audit rows, " + "'update' rows for n = [" + seen + "]" +
                          (a.others ? ", " + std::to_string(a.others) + " others" : ""));
        }
      }
      for (const auto& [key, a] : s.audit) {
        if (!s.auto_rows.count(key))
          wrong.push_back("node " + std::to_string(s.node) + ": audit rows for key " + std::to_string(key) +
                          ", which fault_auto does not hold");
      }
    }
    out.push_back({"trigger-audit", wrong.empty(),
                   wrong.empty()
                       ? "every row's audit trail matches (" + std::to_string(rows) + " rows checked)"
                       : list(wrong)});
  }
  {
    std::vector<std::string> wrong;
    for (const auto& s : snaps) {
      std::map<std::int64_t, std::int64_t> seen;  // v -> key
      for (const auto& [key, v] : s.seq_rows) {
        if (auto [it, fresh] = seen.emplace(v, key); !fresh)
          wrong.push_back("node " + std::to_string(s.node) + ": NEXTVAL value " + std::to_string(v) +
                          " stored for keys " + std::to_string(it->second) + " and " + std::to_string(key));
      }
      const auto pos = s.fingerprint.facets.find("sequence `fault_seq`: next_not_cached_value");
      const std::int64_t next =
          pos == s.fingerprint.facets.end() ? -1 : value_as_int(Value(pos->second)).value_or(-1);
      if (next < 0) {
        wrong.push_back("node " + std::to_string(s.node) + ": the position of fault_seq was not read");
      } else if (!seen.empty() && seen.rbegin()->first >= next) {
        wrong.push_back("node " + std::to_string(s.node) + ": value " + std::to_string(seen.rbegin()->first) +
                        " stored, but fault_seq's next value is " + std::to_string(next));
      }
    }
    out.push_back({"sequence-values", wrong.empty(),
                   wrong.empty() ? "NEXTVAL values distinct and below the sequence's position on every node"
                                 : list(wrong)});
  }
  out.push_back(compare_databases(snaps));
  return out;
}

}  // namespace

NodeSnapshot read_snapshot(int id, const std::string& database, bool position_only, bool sql_workload) {
  NodeSnapshot snap;
  snap.node = id;
  StorageConfig sc;
  sc.backend = StorageBackend::mariadb;
  sc.db = test::mariadb_db_config(static_cast<std::size_t>(id - 1), database);
  auto storage = open_storage(sc);
  if (!storage) {
    snap.error = storage.error().message;
    return snap;
  }
  Storage& db = **storage;
  auto query = [&](const std::string& sql) -> std::optional<ResultSet> {
    auto rs = db.execute(sql);
    if (!rs) {
      if (snap.error.empty()) snap.error = sql + ": " + rs.error().message;
      return std::nullopt;
    }
    return std::move(*rs);
  };
  if (auto rs = query("SELECT seq, epoch FROM distdb_applied WHERE id = 1"); rs && !rs->rows.empty()) {
    snap.applied_seq = value_as_int(rs->rows[0].at(0)).value_or(-1);
    snap.applied_epoch = value_as_int(rs->rows[0].at(1)).value_or(-1);
  }
  if (auto rs = query("SELECT COUNT(*) FROM fault_barrier"); rs && !rs->rows.empty()) {
    snap.barrier_rows = value_as_int(rs->rows[0].at(0)).value_or(0);
  }
  if (position_only) return snap;
  if (auto rs = query("SELECT k FROM fault_append")) {
    for (const Row& r : rs->rows) snap.keys.insert(value_as_int(r.at(0)).value_or(-1));
  }
  if (auto rs = query("SELECT id, balance FROM fault_bank")) {
    for (const Row& r : rs->rows) {
      snap.balances[static_cast<int>(value_as_int(r.at(0)).value_or(-1))] = value_as_int(r.at(1)).value_or(0);
    }
  }
  for (const char* table : {"fault_append", "fault_bank"}) {
    if (auto rs = query(std::string("CHECKSUM TABLE ") + table); rs && !rs->rows.empty()) {
      snap.checksums[table] = as_text(rs->rows[0].at(1));
    }
  }
  if (auto rs = query("SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = 0");
      rs && !rs->rows.empty()) {
    snap.ownerless_transactions = value_as_int(rs->rows[0].at(0)).value_or(0);
  }
  if (auto ids = db.recover()) {
    for (const auto& txn : *ids) {
      if (txn.rfind("ddb-", 0) == 0 || txn.rfind("ddb.", 0) == 0) snap.prepared.push_back(txn);
    }
  } else if (snap.error.empty()) {
    snap.error = "XA RECOVER: " + ids.error().message;
  }
  if (auto rs = query("SELECT seq, epoch, statements FROM distdb_log ORDER BY seq")) {
    for (const Row& r : rs->rows) {
      snap.log[value_as_int(r.at(0)).value_or(-1)] = {value_as_int(r.at(1)).value_or(-1), as_text(r.at(2))};
    }
  }
  if (!sql_workload) return snap;
  if (auto rs = query("SELECT k, id, n FROM fault_auto")) {
    for (const Row& r : rs->rows) {
      snap.auto_rows[value_as_int(r.at(0)).value_or(-1)] = {value_as_int(r.at(1)).value_or(-1),
                                                            value_as_int(r.at(2)).value_or(-1)};
    }
  }
  if (auto rs = query("SELECT k, op, n FROM fault_audit ORDER BY k, n")) {
    for (const Row& r : rs->rows) {
      auto& a = snap.audit[value_as_int(r.at(0)).value_or(-1)];
      const std::string op = as_text(r.at(1));
      if (op == "insert")
        ++a.inserts;
      else if (op == "update")
        a.updates.push_back(value_as_int(r.at(2)).value_or(-1));
      else
        ++a.others;
    }
  }
  if (auto rs = query("SELECT k, v FROM fault_seqrows")) {
    for (const Row& r : rs->rows)
      snap.seq_rows[value_as_int(r.at(0)).value_or(-1)] = value_as_int(r.at(1)).value_or(-1);
  }
  if (auto rs = query("SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                      "DATABASE() AND AUTO_INCREMENT IS NOT NULL AND TABLE_NAME NOT LIKE 'distdb\\_%'")) {
    for (const Row& r : rs->rows) snap.auto_increment[as_text(r.at(0))] = as_text(r.at(1));
  }
  // The fingerprint, on a connection of its own (DbInspector's, database
  // `mysql`, every query naming the database).
  test::DbInspector inspector;
  snap.fingerprint = inspector.fingerprint(static_cast<std::size_t>(id - 1), database);
  if (!snap.fingerprint.ok() && snap.error.empty()) snap.error = "fingerprint: " + snap.fingerprint.error;
  return snap;
}

CheckResult compare_databases(const std::vector<NodeSnapshot>& snaps) {
  // The counters join the fingerprints as facets of their own, so that one
  // diff shows every difference the same way.
  std::vector<test::DbFingerprint> prints;
  std::vector<std::string> labels;
  std::size_t facets = 0;
  for (const auto& s : snaps) {
    test::DbFingerprint p = s.fingerprint;
    if (p.ok() && p.facets.empty()) p.error = "not taken";
    for (const auto& [table, counter] : s.auto_increment) {
      p.facets["table `" + table + "`: AUTO_INCREMENT counter (information_schema.TABLES)"] = counter;
    }
    facets = std::max(facets, p.facets.size());
    prints.push_back(std::move(p));
    labels.push_back("node " + std::to_string(s.node));
  }
  const std::string diff = test::fingerprint_diff(prints, labels);
  if (snaps.empty()) return {"same-databases", false, "no database read"};
  if (!diff.empty()) return {"same-databases", false, "the databases differ:\n" + diff};
  std::string counters;
  for (const auto& [table, counter] : snaps[0].auto_increment)
    counters += (counters.empty() ? "" : ", ") + table + " " + counter;
  return {"same-databases", true,
          std::to_string(facets) + " facets identical on all " + std::to_string(snaps.size()) +
              " nodes (AUTO_INCREMENT counters: " + (counters.empty() ? "none" : counters) + ")"};
}

bool wait_for_convergence(test::ClusterProcesses& cluster, const std::string& database,
                          std::chrono::milliseconds timeout, std::string& detail) {
  const auto deadline = Clock::now() + timeout;
  auto left = [&] { return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()); };
  std::vector<std::pair<std::string, std::uint16_t>> seeds;
  for (int id = 1; id <= cluster.size(); ++id)
    seeds.emplace_back("127.0.0.1", static_cast<std::uint16_t>(cluster.port(id)));
  std::string last;
  // Sends `request` (attempt number) through a cluster client until one is
  // answered OK or the deadline passes. connect_cluster retries refusals
  // and no_quorum for us.
  auto until_ok = [&](const std::function<Result<Reply>(Client&, int)>& request) {
    for (int attempt = 1; left().count() > 0; ++attempt) {
      ClientOptions o = test::ClusterProcesses::client_options();
      o.connect_timeout_ms = 1000;
      o.request_timeout_ms = 5000;
      o.retry_for_ms = static_cast<int>(std::max<std::int64_t>(left().count(), 100));
      auto client = Client::connect_cluster(seeds, o);
      if (!client) {
        last = client.error().message;
        continue;
      }
      auto r = request(*client, attempt);
      if (r && r->status == ReplyStatus::ok) return true;
      last = r ? r->message : r.error().message;
    }
    return false;
  };
  // 1. A write succeeds again; an unknown outcome is retried with a new
  // row, since only an acknowledged barrier proves the cluster is back.
  if (!until_ok([](Client& c, int attempt) {
        return c.query("INSERT INTO fault_barrier (id) VALUES (" + std::to_string(attempt) + ")");
      })) {
    detail = "no write succeeded within " + std::to_string(timeout.count() / 1000) +
             " s after the heal (last: " + last + "); " + cluster_status(cluster);
    return false;
  }
  // 1b. A checksum of every member at one position (the product's own
  // divergence check, CHECK): a member whose data differs (a counter or a
  // sequence moved by an entry it prepared and then rolled back) takes a
  // full copy. This is distdb repairing itself, which the run relies on;
  // the comparison below stays the checker's own.
  if (!until_ok([](Client& c, int) { return c.check(); })) {
    detail = "no checksum round succeeded within " + std::to_string(timeout.count() / 1000) +
             " s after the heal (last: " + last + "); " + cluster_status(cluster);
    return false;
  }
  // 2. Every node applied it, and all stand at the same position. The
  // checksum entry is the last write, so equal positions mean equal logs.
  std::vector<NodeSnapshot> snaps;
  const bool same = test::wait_until(
      [&] {
        snaps.clear();
        for (int id = 1; id <= cluster.size(); ++id) snaps.push_back(read_snapshot(id, database, true));
        for (const auto& s : snaps) {
          if (!s.error.empty() || s.barrier_rows == 0) return false;
          if (s.applied_seq != snaps[0].applied_seq || s.applied_epoch != snaps[0].applied_epoch)
            return false;
        }
        return true;
      },
      left());
  std::ostringstream d;
  for (const auto& s : snaps) {
    d << (s.node == 1 ? "" : ", ") << "node " << s.node << " at seq " << s.applied_seq << " epoch "
      << s.applied_epoch << (s.barrier_rows > 0 ? "" : " without the barrier")
      << (s.error.empty() ? "" : " (" + s.error + ")");
  }
  detail = d.str();
  if (!same) detail += "; " + cluster_status(cluster);
  return same;
}

Availability measure_availability(const std::vector<Operation>& ops,
                                  const std::vector<MajorityChange>& majority, std::int64_t end_ms) {
  Availability a;
  std::vector<std::int64_t> acks;
  for (const auto& op : ops) {
    if (op.kind != OpKind::read_total && op.outcome == Outcome::ok) acks.push_back(op.completed_ms);
  }
  std::sort(acks.begin(), acks.end());
  // Longest stretch without an acknowledged write, the run's edges included.
  std::int64_t prev = 0;
  acks.push_back(end_ms);
  for (const std::int64_t t : acks) {
    if (t - prev > a.longest_outage_ms) {
      a.longest_outage_ms = t - prev;
      a.outage_from_ms = prev;
      a.outage_to_ms = t;
    }
    prev = std::max(prev, t);
  }
  acks.pop_back();
  // A window counts when a majority was up throughout it; it is available
  // when some write was acknowledged in it.
  auto majority_throughout = [&](std::int64_t from, std::int64_t to) {
    bool up = true;
    for (const auto& c : majority) {
      if (c.at_ms <= from)
        up = c.majority_up;
      else if (c.at_ms < to && !c.majority_up)
        return false;
    }
    return up;
  };
  for (std::int64_t w = 0; w + a.window_ms <= end_ms; w += a.window_ms) {
    if (!majority_throughout(w, w + a.window_ms)) continue;
    ++a.eligible_windows;
    const auto it = std::lower_bound(acks.begin(), acks.end(), w);
    if (it != acks.end() && *it < w + a.window_ms) ++a.available_windows;
  }
  a.share = a.eligible_windows == 0
                ? 1.0
                : static_cast<double>(a.available_windows) / static_cast<double>(a.eligible_windows);
  return a;
}

std::vector<CheckResult> run_checks(const CheckInputs& in) {
  const auto& ops = *in.ops;
  const auto& snaps = *in.snapshots;
  std::vector<CheckResult> out;

  out.push_back({"converged", in.converged, in.convergence_detail});

  std::vector<std::string> unreadable;
  for (const auto& s : snaps) {
    if (!s.error.empty()) unreadable.push_back("node " + std::to_string(s.node) + ": " + s.error);
  }
  if (!unreadable.empty()) out.push_back({"databases-readable", false, list(unreadable)});

  // --- appends ---
  std::map<std::int64_t, const Operation*> appends;
  std::size_t acked = 0;
  std::size_t failed = 0;
  for (const auto& op : ops) {
    if (op.kind != OpKind::append) continue;
    appends[op.key] = &op;
    acked += op.outcome == Outcome::ok;
    failed += op.outcome == Outcome::failed;
  }
  {
    std::vector<std::string> missing;
    for (const auto& [key, op] : appends) {
      if (op->outcome != Outcome::ok) continue;
      for (const auto& s : snaps) {
        if (!s.keys.count(key))
          missing.push_back("key " + std::to_string(key) + " missing on node " + std::to_string(s.node) +
                            " (" + describe_op(*op) + ")");
      }
    }
    out.push_back({"acked-present", missing.empty(),
                   missing.empty() ? std::to_string(acked) + " acknowledged appends on all " +
                                         std::to_string(snaps.size()) + " nodes"
                                   : list(missing)});
  }
  {
    std::vector<std::string> present;
    for (const auto& [key, op] : appends) {
      if (op->outcome != Outcome::failed) continue;
      for (const auto& s : snaps) {
        if (s.keys.count(key))
          present.push_back("key " + std::to_string(key) + " present on node " + std::to_string(s.node) +
                            " (" + describe_op(*op) + ")");
      }
    }
    out.push_back({"failed-absent", present.empty(),
                   present.empty() ? std::to_string(failed) + " failed appends on no node" : list(present)});
  }
  {
    std::vector<std::string> phantoms;
    for (const auto& s : snaps) {
      for (const std::int64_t key : s.keys) {
        if (!appends.count(key))
          phantoms.push_back("key " + std::to_string(key) + " on node " + std::to_string(s.node));
      }
    }
    out.push_back({"no-phantoms", phantoms.empty(),
                   phantoms.empty() ? "every key present was attempted" : list(phantoms)});
  }

  // --- bank ---
  const std::int64_t expected_total = static_cast<std::int64_t>(in.accounts) * in.initial_balance;
  {
    std::vector<std::string> wrong;
    for (const auto& s : snaps) {
      std::int64_t total = 0;
      for (const auto& [id, b] : s.balances) total += b;
      if (total != expected_total || static_cast<int>(s.balances.size()) != in.accounts) {
        wrong.push_back("node " + std::to_string(s.node) + ": " + std::to_string(s.balances.size()) +
                        " accounts, total " + std::to_string(total));
      }
    }
    out.push_back(
        {"bank-total", wrong.empty(),
         wrong.empty() ? "total " + std::to_string(expected_total) + " on every node" : list(wrong)});
  }
  {
    // Per account: final = initial + (acknowledged deltas) + (a subset of the
    // unknown deltas). A subset sum lies between the sum of the negative and
    // the sum of the positive unknown deltas; outside that, a failed
    // transfer was applied or an acknowledged one lost.
    std::map<int, std::int64_t> base;
    std::map<int, std::int64_t> lo;
    std::map<int, std::int64_t> hi;
    std::size_t ok = 0;
    std::size_t unknown = 0;
    for (const auto& op : ops) {
      if (op.kind != OpKind::transfer || op.outcome == Outcome::failed) continue;
      if (op.outcome == Outcome::ok) {
        ++ok;
        base[op.from] -= op.amount;
        base[op.to] += op.amount;
      } else {
        ++unknown;
        lo[op.from] -= op.amount;
        hi[op.to] += op.amount;
      }
    }
    std::vector<std::string> wrong;
    for (const auto& s : snaps) {
      for (int a = 1; a <= in.accounts; ++a) {
        const auto it = s.balances.find(a);
        if (it == s.balances.end()) continue;  // bank-total reports it
        const std::int64_t diff = it->second - (in.initial_balance + base[a]);
        if (diff < lo[a] || diff > hi[a]) {
          wrong.push_back("node " + std::to_string(s.node) + " account " + std::to_string(a) + ": balance " +
                          std::to_string(it->second) + ", acknowledged transfers give " +
                          std::to_string(in.initial_balance + base[a]) + ", unknown ones allow " +
                          std::to_string(lo[a]) + ".." + std::to_string(hi[a]) + " more");
        }
      }
    }
    out.push_back({"bank-explained", wrong.empty(),
                   wrong.empty()
                       ? "balances explained by " + std::to_string(ok) + " acknowledged and up to " +
                             std::to_string(unknown) + " unknown transfers"
                       : list(wrong)});
  }
  {
    std::vector<std::string> wrong;
    std::size_t reads = 0;
    for (const auto& op : ops) {
      if (op.kind != OpKind::read_total || op.outcome != Outcome::ok) continue;
      ++reads;
      if (op.value != expected_total) {
        wrong.push_back("read " + std::to_string(op.value) + " (" + describe_op(op) + ")");
      }
    }
    out.push_back({"bank-reads", wrong.empty(),
                   wrong.empty() ? std::to_string(reads) + " reads during the run, all " +
                                       std::to_string(expected_total)
                                 : list(wrong)});
  }

  if (in.sql_workload) {
    for (auto& c : sql_checks(ops, snaps)) out.push_back(std::move(c));
  }

  // --- replicas agree ---
  {
    std::vector<std::string> diffs;
    std::string summary;
    for (const auto& s : snaps) {
      if (s.checksums != snaps[0].checksums)
        diffs.push_back("node " + std::to_string(s.node) + " differs from node " +
                        std::to_string(snaps[0].node));
    }
    for (const auto& [table, sum] :
         snaps.empty() ? std::map<std::string, std::string>{} : snaps[0].checksums) {
      summary += (summary.empty() ? "" : ", ") + table + " " + sum;
    }
    std::string all;
    for (const auto& s : snaps) {
      all += "; node " + std::to_string(s.node) + ":";
      for (const auto& [table, sum] : s.checksums) all += " " + table + "=" + sum;
    }
    out.push_back({"checksums", diffs.empty() && !summary.empty(),
                   diffs.empty() ? summary + " on every node" : list(diffs) + all});
  }
  {
    bool equal = !snaps.empty();
    std::string d;
    for (const auto& s : snaps) {
      equal = equal && s.applied_seq == snaps[0].applied_seq && s.applied_epoch == snaps[0].applied_epoch;
      d += (d.empty() ? "" : ", ") + std::string("node ") + std::to_string(s.node) + " seq " +
           std::to_string(s.applied_seq) + " epoch " + std::to_string(s.applied_epoch);
    }
    out.push_back({"applied-equal", equal, d});
  }
  {
    std::vector<std::string> problems;
    std::map<std::int64_t, std::vector<const NodeSnapshot*>> holders;
    for (const auto& s : snaps) {
      std::int64_t prev_seq = -1;
      std::int64_t prev_epoch = -1;
      for (const auto& [seq, entry] : s.log) {
        holders[seq].push_back(&s);
        if (prev_seq >= 0 && seq != prev_seq + 1) {
          problems.push_back("node " + std::to_string(s.node) + ": log jumps from seq " +
                             std::to_string(prev_seq) + " to " + std::to_string(seq));
        }
        if (entry.epoch < prev_epoch) {
          problems.push_back("node " + std::to_string(s.node) + ": seq " + std::to_string(seq) +
                             " has epoch " + std::to_string(entry.epoch) + " after epoch " +
                             std::to_string(prev_epoch));
        }
        prev_seq = seq;
        prev_epoch = entry.epoch;
      }
      if (!s.log.empty() && s.log.rbegin()->first != s.applied_seq) {
        problems.push_back("node " + std::to_string(s.node) + ": log ends at seq " +
                           std::to_string(s.log.rbegin()->first) + " but applied seq is " +
                           std::to_string(s.applied_seq));
      }
    }
    std::size_t compared = 0;
    for (const auto& [seq, nodes] : holders) {
      if (nodes.size() < 2) continue;
      ++compared;
      const auto& first = nodes[0]->log.at(seq);
      for (std::size_t i = 1; i < nodes.size(); ++i) {
        const auto& other = nodes[i]->log.at(seq);
        if (!same_logged_entry(other, first)) {
          problems.push_back("seq " + std::to_string(seq) + ": node " + std::to_string(nodes[0]->node) +
                             " has epoch " + std::to_string(first.epoch) + " " +
                             first.statements.substr(0, 120) + ", node " + std::to_string(nodes[i]->node) +
                             " has epoch " + std::to_string(other.epoch) + " " +
                             other.statements.substr(0, 120));
        }
      }
    }
    out.push_back({"log-agreement", problems.empty(),
                   problems.empty()
                       ? std::to_string(compared) + " sequence numbers compared across nodes, identical"
                       : list(problems)});
  }
  {
    std::vector<std::string> left;
    for (const auto& s : snaps) {
      for (const auto& txn : s.prepared) {
        left.push_back(txn + " on node " + std::to_string(s.node) + "'s server");
      }
      if (s.ownerless_transactions > static_cast<std::int64_t>(s.prepared.size())) {
        left.push_back(
            std::to_string(s.ownerless_transactions - static_cast<std::int64_t>(s.prepared.size())) +
            " transaction(s) on node " + std::to_string(s.node) +
            "'s server that no session owns and XA RECOVER does not list (locks held by a commit "
            "that did not happen?)");
      }
    }
    out.push_back({"none-prepared", left.empty(),
                   left.empty() ? "no prepared XA transaction left on any server" : list(left)});
  }
  {
    // "[*] This node is now the coordinator (epoch N)": the driver logs it
    // once per term (libdistdb/src/node/replication_driver.cpp).
    static const std::regex line(R"(This node is now the coordinator \(epoch ([0-9]+)\))");
    std::map<std::int64_t, std::set<int>> by_epoch;
    for (const auto& [id, text] : in.node_logs) {
      for (std::sregex_iterator it(text.begin(), text.end(), line), end; it != end; ++it) {
        by_epoch[std::stoll((*it)[1].str())].insert(id);
      }
    }
    std::vector<std::string> doubles;
    std::string terms;
    std::size_t shown = 0;
    for (const auto& [epoch, nodes] : by_epoch) {
      std::string who;
      for (const int n : nodes) who += (who.empty() ? "" : "+") + std::to_string(n);
      // The first terms are enough to read; a long run has a hundred.
      if (++shown <= 12) terms += (terms.empty() ? "" : " ") + std::to_string(epoch) + ":" + who;
      if (shown == 13) terms += " ...";
      if (nodes.size() > 1) doubles.push_back("epoch " + std::to_string(epoch) + " had coordinators " + who);
    }
    // Every epoch that ordered an entry must have had a coordinator we saw.
    std::set<std::int64_t> log_epochs;
    for (const auto& s : snaps) {
      for (const auto& [seq, entry] : s.log) log_epochs.insert(entry.epoch);
    }
    for (const std::int64_t e : log_epochs) {
      if (!by_epoch.count(e))
        doubles.push_back("epoch " + std::to_string(e) +
                          " ordered entries, but no node logged becoming its coordinator");
    }
    out.push_back({"one-coordinator", doubles.empty() && !by_epoch.empty(),
                   doubles.empty()
                       ? (by_epoch.empty() ? "no coordinator found in the node logs"
                                           : std::to_string(by_epoch.size()) + " terms (epoch:node) " + terms)
                       : list(doubles)});
  }
  {
    std::vector<std::string> crashes;
    std::vector<std::string> db_crashes;
    for (const auto& e : *in.exits) {
      if (e.database) {
        db_crashes.push_back("node " + std::to_string(e.node) +
                             "'s MariaDB server stopped answering by itself (seen at +" +
                             std::to_string(e.seen_ms) + " ms) " + e.log_tail);
      } else {
        crashes.push_back("node " + std::to_string(e.node) + " exited by itself (seen at +" +
                          std::to_string(e.seen_ms) + " ms); last log lines:\n" + e.log_tail);
      }
    }
    out.push_back(
        {"databases-up", db_crashes.empty(),
         db_crashes.empty() ? "every MariaDB server outage was a kill by the nemesis" : list(db_crashes)});
    out.push_back({"no-crash", crashes.empty(),
                   crashes.empty() ? "every exit was a kill by the nemesis" : list(crashes)});
  }
  {
    char buf[200];
    std::snprintf(
        buf, sizeof buf,
        "%.1f%% of %d windows of %lld ms with a majority up had an acknowledged write (required %.0f%%)",
        in.availability.share * 100.0, in.availability.eligible_windows,
        static_cast<long long>(in.availability.window_ms), in.min_availability * 100.0);
    out.push_back({"availability", in.availability.share >= in.min_availability, buf});
  }
  return out;
}

}  // namespace distdb::fault
