#include "checker.hpp"

#include <set>

namespace distdb::sim {

const char* kind_name(core::WriteResult::Kind kind) {
  switch (kind) {
    case core::WriteResult::committed: return "committed";
    case core::WriteResult::not_coordinator: return "not_coordinator";
    case core::WriteResult::no_quorum: return "no_quorum";
    case core::WriteResult::outcome_unknown: return "outcome_unknown";
  }
  return "?";
}

void Checker::attach(SimStorage& storage) {
  storage.on_commit = [this](NodeId node, const EntryId& before, const Entry& entry) {
    on_commit(node, before, entry);
  };
  const SimStorage* s = &storage;
  storage.on_snapshot = [this, s](NodeId node, const EntryId& applied) { on_snapshot(node, applied, *s); };
}

bool Checker::same_entry(const Entry& a, const Entry& b) {
  if (!(a.id == b.id) || a.statements.size() != b.statements.size()) return false;
  for (std::size_t i = 0; i < a.statements.size(); ++i) {
    const auto& x = a.statements[i];
    const auto& y = b.statements[i];
    if (x.sql != y.sql || x.expect_ok != y.expect_ok || x.expect_code != y.expect_code) return false;
  }
  return true;
}

void Checker::on_commit(NodeId node, const EntryId& before, const Entry& entry) {
  if (entry.id.seq != before.seq + 1) {
    safety_violation("node " + std::to_string(node) + " committed " + to_string(entry.id) + " on top of " +
                     to_string(before) + " (a hole or a rewrite in its log)");
  }
  auto& at_seq = committed_[entry.id.seq];
  auto [it, inserted] = at_seq.try_emplace(entry.id.origin, Committed{entry, {}});
  if (!inserted && !same_entry(it->second.entry, entry)) {
    safety_violation("node " + std::to_string(node) + " committed " + to_string(entry.id) + " with " +
                     std::to_string(entry.statements.size()) + " statements, another node with " +
                     std::to_string(it->second.entry.statements.size()) + " (one id, two entries)");
  }
  it->second.nodes.insert(node);
  if (inserted && at_seq.size() > 1) ++overwritten_;
  const std::size_t majority = cluster_size_ / 2 + 1;
  std::vector<EntryId> on_majority;
  for (const auto& [origin, c] : at_seq) {
    if (c.nodes.size() >= majority) on_majority.push_back(c.entry.id);
  }
  if (on_majority.size() > 1) {
    std::string ids;
    for (const auto& id : on_majority) ids += " " + to_string(id);
    safety_violation("seq " + std::to_string(entry.id.seq) + " has different entries each committed on a majority:" +
                     ids + " (latest: node " + std::to_string(node) + ")");
  }
}

void Checker::on_snapshot(NodeId node, const EntryId& applied, const SimStorage& storage) {
  auto known = [this](const Entry& e) {
    auto s = committed_.find(e.id.seq);
    if (s == committed_.end()) return false;
    auto c = s->second.find(e.id.origin);
    return c != s->second.end() && same_entry(c->second.entry, e);
  };
  if (applied.seq > 0) {
    auto s = committed_.find(applied.seq);
    if (s == committed_.end() || s->second.count(applied.origin) == 0) {
      safety_violation("node " + std::to_string(node) + " installed a snapshot at " + to_string(applied) +
                       " which no storage committed");
    }
  }
  for (const auto& [seq, entry] : storage.log()) {
    if (!known(entry)) {
      safety_violation("node " + std::to_string(node) + " installed a snapshot whose log holds " +
                       to_string(entry.id) + ", which no storage committed");
    }
  }
}

void Checker::observe(const core::Replica& replica, const SimStorage& storage) {
  const NodeId node = replica.id();
  if (replica.role() == core::Role::coordinator && replica.can_commit()) {
    auto [it, inserted] = coordinator_of_.emplace(replica.epoch(), node);
    if (!inserted && it->second != node) {
      safety_violation("two coordinators in epoch " + std::to_string(replica.epoch()) + ": " +
                       std::to_string(it->second) + " and " + std::to_string(node));
    }
  }
  observe_durable(storage);
  auto [it, fresh] = seen_.try_emplace(node);
  Seen& seen = it->second;
  if (!fresh) {
    if (replica.epoch() < seen.epoch) {
      safety_violation("node " + std::to_string(node) + " went back from epoch " + std::to_string(seen.epoch) +
                       " to " + std::to_string(replica.epoch()));
    }
    if (replica.applied().seq < seen.applied && storage.snapshot_installs() == seen.snapshot_installs) {
      safety_violation("node " + std::to_string(node) + " went back from applied seq " +
                       std::to_string(seen.applied) + " to " + to_string(replica.applied()) +
                       " without a snapshot");
    }
  }
  seen.epoch = replica.epoch();
  seen.applied = replica.applied().seq;
  seen.snapshot_installs = storage.snapshot_installs();
  if (storage.promised() < replica.epoch()) {
    // The replica acts on an epoch its storage has not made durable: fine
    // for a candidate's own epoch only once persisted, so never for a
    // coordinator.
    if (replica.role() == core::Role::coordinator) {
      safety_violation("node " + std::to_string(node) + " is coordinator of epoch " +
                       std::to_string(replica.epoch()) + " but its storage promised only " +
                       std::to_string(storage.promised()));
    }
  }
}

void Checker::restarted(NodeId node) {
  // The replica's in-memory mirrors may have run ahead of its storage (a
  // promise observed but not yet persisted): a new incarnation starts from
  // the durable values, so the delta check starts over. The durable values
  // themselves are checked in observe_durable().
  seen_.erase(node);
}

void Checker::observe_durable(const SimStorage& storage) {
  auto [it, fresh] = durable_.try_emplace(storage.node());
  if (!fresh) {
    if (storage.promised() < it->second.epoch) {
      safety_violation("node " + std::to_string(storage.node()) + " storage went back from promise " +
                       std::to_string(it->second.epoch) + " to " + std::to_string(storage.promised()));
    }
    if (storage.applied().seq < it->second.applied && storage.snapshot_installs() == it->second.snapshot_installs) {
      safety_violation("node " + std::to_string(storage.node()) + " storage went back from applied seq " +
                       std::to_string(it->second.applied) + " to " + to_string(storage.applied()) +
                       " without a snapshot");
    }
  }
  it->second.epoch = storage.promised();
  it->second.applied = storage.applied().seq;
  it->second.snapshot_installs = storage.snapshot_installs();
}

void Checker::on_send(const core::Envelope& env, const SimStorage& storage) {
  // Persist before send: what a message claims must already be durable.
  const std::string who = "node " + std::to_string(env.from);
  if (const auto* v = std::get_if<core::VoteReply>(&env.message)) {
    if (v->granted && storage.promised() < v->epoch) {
      safety_violation(who + " granted epoch " + std::to_string(v->epoch) + " to " + std::to_string(env.to) +
                       " before its promise was durable (stored " + std::to_string(storage.promised()) + ")");
    }
  } else if (const auto* p = std::get_if<core::PrepareReply>(&env.message)) {
    const auto prepared = storage.prepared_id();
    const bool durable = (prepared && *prepared == p->entry) || storage.applied().seq >= p->entry.seq;
    if (p->yes && !durable) {
      safety_violation(who + " voted yes for " + to_string(p->entry) + " but has not prepared it");
    }
  } else if (const auto* d = std::get_if<core::DecideReply>(&env.message)) {
    if (d->ok && storage.applied().seq < d->entry.seq) {
      safety_violation(who + " acknowledged the commit of " + to_string(d->entry) + " but has applied only " +
                       to_string(storage.applied()));
    }
  }
}

void Checker::on_result(const WriteRecord& record, const core::WriteResult& result) {
  if (!record.result) return;
  const auto& first = *record.result;
  const bool first_definite = first.kind != core::WriteResult::outcome_unknown;
  const bool second_definite = result.kind != core::WriteResult::outcome_unknown;
  if (first_definite && second_definite &&
      (first.kind != result.kind || !first.outcome.same_effect(result.outcome))) {
    safety_violation("write " + std::to_string(record.tag) + " (" + record.sql + ") answered " +
                     kind_name(first.kind) + " then " + kind_name(result.kind));
  }
}

void Checker::check_final(const std::vector<const SimStorage*>& storages,
                          const std::map<core::ClientTag, WriteRecord>& history) {
  if (storages.empty()) return;
  const SimStorage& ref = *storages.front();
  for (const SimStorage* s : storages) {
    if (!(s->applied() == ref.applied())) {
      safety_violation("final: node " + std::to_string(s->node()) + " applied " + to_string(s->applied()) +
                       ", node " + std::to_string(ref.node()) + " applied " + to_string(ref.applied()));
    }
    if (s->data() != ref.data()) {
      std::string diff;
      for (const auto& [k, v] : ref.data()) {
        auto it = s->data().find(k);
        if (it == s->data().end() || it->second != v) {
          diff = k + "=" + v + " vs " + (it == s->data().end() ? std::string("(none)") : it->second);
          break;
        }
      }
      if (diff.empty()) {
        for (const auto& [k, v] : s->data()) {
          if (!ref.data().count(k)) {
            diff = k + " only on node " + std::to_string(s->node());
            break;
          }
        }
      }
      safety_violation("final: data of node " + std::to_string(s->node()) + " (" +
                       std::to_string(s->data().size()) + " rows) differs from node " +
                       std::to_string(ref.node()) + " (" + std::to_string(ref.data().size()) + " rows): " + diff);
    }
  }
  std::vector<std::set<std::string>> values;
  for (const SimStorage* s : storages) {
    std::set<std::string> v;
    for (const auto& [key, value] : s->data()) v.insert(value);
    values.push_back(std::move(v));
  }
  for (const auto& [tag, w] : history) {
    if (!w.result || w.key.empty()) continue;
    const auto& r = *w.result;
    const bool acked_ok = r.kind == core::WriteResult::committed && r.outcome.ok;
    const bool failed = r.kind == core::WriteResult::not_coordinator || r.kind == core::WriteResult::no_quorum ||
                        (r.kind == core::WriteResult::committed && !r.outcome.ok);
    for (std::size_t i = 0; i < storages.size(); ++i) {
      const SimStorage& s = *storages[i];
      if (acked_ok) {
        auto it = s.data().find(w.key);
        if (it == s.data().end() || it->second != w.value) {
          safety_violation("final: write " + std::to_string(tag) + " (" + w.sql + ") was acknowledged at t=" +
                           std::to_string(w.answered_at) + " but node " + std::to_string(s.node()) + " has " +
                           (it == s.data().end() ? std::string("no ") + w.key : w.key + "=" + it->second));
          break;
        }
      } else if (failed && values[i].count(w.value)) {
        safety_violation("final: write " + std::to_string(tag) + " (" + w.sql + ") was answered " +
                         kind_name(r.kind) + (r.outcome.ok ? "" : " (SQL error " + std::to_string(r.outcome.code) + ")") +
                         " at t=" + std::to_string(w.answered_at) + " but node " + std::to_string(s.node()) +
                         " holds its value " + w.value);
        break;
      }
    }
  }
}

void Checker::safety_violation(const std::string& what) {
  if (safety_.size() < 20) safety_.push_back(what);
}

void Checker::liveness_violation(const std::string& what) {
  if (liveness_.size() < 20) liveness_.push_back(what);
}

std::string Checker::summary() const {
  std::string out;
  for (const auto& s : safety_) out += "  SAFETY: " + s + "\n";
  for (const auto& l : liveness_) out += "  LIVENESS: " + l + "\n";
  return out;
}

}  // namespace distdb::sim
