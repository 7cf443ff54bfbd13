#include "workload.hpp"

#include <map>
#include <optional>
#include <string>

#include "node_fixture.hpp"
#include "rng.hpp"

namespace distdb::fault {
std::vector<std::string> workload_setup_statements(const WorkloadOptions& options) {
  std::string rows;
  for (int a = 1; a <= options.accounts; ++a) {
    rows += (a == 1 ? "" : ", ") + std::string("(") + std::to_string(a) + ", " +
            std::to_string(options.initial_balance) + ")";
  }
  std::vector<std::string> statements = {
      "CREATE TABLE fault_append (k BIGINT PRIMARY KEY, w INT NOT NULL)",
      "CREATE TABLE fault_bank (id INT PRIMARY KEY, balance BIGINT NOT NULL)",
      // The convergence barrier's table (see checker.hpp).
      "CREATE TABLE fault_barrier (id INT PRIMARY KEY)",
      "INSERT INTO fault_bank (id, balance) VALUES " + rows,
  };
  if (options.sql_workers <= 0) return statements;
  for (const char* sql : {
           "CREATE TABLE fault_auto (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, k BIGINT NOT NULL "
           "UNIQUE, "
           "w INT NOT NULL, n INT NOT NULL DEFAULT 0, note VARCHAR(16) NOT NULL DEFAULT 'fresh')",
           "CREATE TABLE fault_audit (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, k BIGINT NOT NULL, "
           "op VARCHAR(8) NOT NULL, n INT NOT NULL, KEY (k))",
           "CREATE SEQUENCE fault_seq START WITH 1 INCREMENT BY 1 NOCACHE",
           "CREATE TABLE fault_seqrows (k BIGINT PRIMARY KEY, v BIGINT NOT NULL, w INT NOT NULL)",
           "CREATE TRIGGER fault_auto_ai AFTER INSERT ON fault_auto FOR EACH ROW BEGIN "
           "INSERT INTO fault_audit (k, op, n) VALUES (NEW.k, 'insert', NEW.n); END",
           "CREATE TRIGGER fault_auto_au AFTER UPDATE ON fault_auto FOR EACH ROW BEGIN "
           "IF NEW.n <> OLD.n THEN INSERT INTO fault_audit (k, op, n) VALUES (NEW.k, 'update', NEW.n); "
           "END IF; END",
       }) {
    statements.emplace_back(sql);
  }
  return statements;
}

Workload::Workload(WorkloadOptions options, History& history)
    : options_(std::move(options)), history_(history) {}

Workload::~Workload() {
  stop();
}

void Workload::start() {
  int worker = 0;
  for (int i = 0; i < options_.append_workers; ++i) {
    threads_.emplace_back([this, w = worker++] { run_worker(w, OpKind::append); });
  }
  for (int i = 0; i < options_.bank_workers; ++i) {
    threads_.emplace_back([this, w = worker++] { run_worker(w, OpKind::transfer); });
  }
  for (int i = 0; i < options_.bank_readers; ++i) {
    threads_.emplace_back([this, w = worker++] { run_worker(w, OpKind::read_total); });
  }
  // An SQL worker picks one of auto_insert, seq_insert, audit_update per operation.
  for (int i = 0; i < options_.sql_workers; ++i) {
    threads_.emplace_back([this, w = worker++] { run_worker(w, OpKind::auto_insert); });
  }
}

void Workload::stop() {
  stop_ = true;
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

std::string Workload::make_statement(Operation& op, sim::Rng& rng,
                                     const std::vector<std::int64_t>& inserted) {
  const std::string w = std::to_string(op.worker);
  if (op.kind == OpKind::auto_insert || op.kind == OpKind::seq_insert || op.kind == OpKind::audit_update) {
    // An SQL worker: 40 % automatic ids, 30 % sequence values, 30 % updates
    // (of a row this worker inserted; an insert until there is one).
    const std::uint64_t pick = rng.below(10);
    op.kind = pick < 4 ? OpKind::auto_insert : pick < 7 ? OpKind::seq_insert : OpKind::audit_update;
    if (op.kind == OpKind::audit_update && inserted.empty()) op.kind = OpKind::auto_insert;
  }
  switch (op.kind) {
    case OpKind::append:
      op.key = next_key_++;
      return "INSERT INTO fault_append (k, w) VALUES (" + std::to_string(op.key) + ", " + w + ")";
    case OpKind::transfer: {
      op.from = 1 + static_cast<int>(rng.below(static_cast<std::uint64_t>(options_.accounts)));
      op.to = 1 + static_cast<int>(rng.below(static_cast<std::uint64_t>(options_.accounts - 1)));
      if (op.to >= op.from) ++op.to;
      op.amount = 1 + static_cast<std::int64_t>(rng.below(50));
      const std::string a = std::to_string(op.from);
      const std::string b = std::to_string(op.to);
      const std::string x = std::to_string(op.amount);
      return "UPDATE fault_bank SET balance = balance + CASE id WHEN " + a + " THEN -" + x + " WHEN " + b +
             " THEN " + x + " END WHERE id IN (" + a + ", " + b + ")";
    }
    case OpKind::read_total:
      return "SELECT SUM(balance) AS total, COUNT(*) AS n FROM fault_bank";
    case OpKind::auto_insert:
      op.key = next_key_++;
      return "INSERT INTO fault_auto (k, w) VALUES (" + std::to_string(op.key) + ", " + w + ")";
    case OpKind::seq_insert:
      op.key = next_key_++;
      return "INSERT INTO fault_seqrows (k, v, w) VALUES (" + std::to_string(op.key) +
             ", NEXTVAL(fault_seq), " + w + ")";
    case OpKind::audit_update:
      op.key = inserted[rng.below(inserted.size())];
      return "UPDATE fault_auto SET n = n + 1, note = 'updated' WHERE k = " + std::to_string(op.key);
  }
  return {};
}

void Workload::run_worker(int worker, OpKind kind) {
  // The clients' own randomness: seeded, but the interleaving with the
  // cluster is not reproducible anyway; only the fault schedule is.
  sim::Rng rng(options_.seed * 7919 + static_cast<std::uint64_t>(worker) + 1);
  const int n = static_cast<int>(options_.ports.size());
  std::map<int, Client> clients;  // node id -> open connection
  ClientOptions copts = test::test_client_options();
  copts.connect_timeout_ms = options_.connect_timeout_ms;
  copts.request_timeout_ms = options_.request_timeout_ms;

  std::vector<std::int64_t> inserted;  // sql workers: keys of acknowledged auto_inserts
  while (!stop_) {
    Operation op;
    op.kind = kind;
    op.worker = worker;
    op.node = 1 + static_cast<int>(rng.below(static_cast<std::uint64_t>(n)));
    const std::string sql = make_statement(op, rng, inserted);

    op.invoked_ms = history_.now_ms();
    Result<Reply> reply = Error(ErrorKind::unavailable, "not connected");
    auto it = clients.find(op.node);
    if (it == clients.end()) {
      auto c = Client::connect(
          "127.0.0.1", static_cast<std::uint16_t>(options_.ports.at(static_cast<std::size_t>(op.node - 1))),
          copts);
      if (c)
        it = clients.emplace(op.node, std::move(*c)).first;
      else
        reply = c.error();
    }
    if (it != clients.end()) reply = it->second.query(sql);
    op.completed_ms = history_.now_ms();
    // A transport error leaves the connection unusable (or stale after a
    // kill): reconnect next time.
    if (!reply && it != clients.end()) clients.erase(it);

    if (kind == OpKind::read_total) {
      if (reply && reply->status == ReplyStatus::ok && !reply->result.rows.empty() &&
          reply->result.rows[0].size() >= 2) {
        const auto total = value_as_int(reply->result.rows[0][0]);
        const auto count = value_as_int(reply->result.rows[0][1]);
        op.outcome = Outcome::ok;
        op.value = total.value_or(-1);
        if (!total || count.value_or(-1) != options_.accounts) {
          // Not a state any sequence of whole transfers produces (e.g. a
          // table read while a full copy was being installed).
          op.detail = "SUM(balance) " + (total ? std::to_string(*total) : std::string("NULL")) + " over " +
                      (count ? std::to_string(*count) : std::string("?")) + " accounts";
          op.value = -1;
        }
      } else {
        op.outcome = Outcome::failed;  // reads change nothing: failed and unknown are the same to the checker
        // "kind: message", as for writes, so the report can count by kind.
        const Error error = !reply         ? reply.error()
                            : reply->error ? *reply->error
                                           : Error(ErrorKind::internal, reply->message);
        op.detail = std::string(to_string(error.kind)) + ": " + error.message;
      }
    } else {
      op.outcome = classify_write(reply, op.detail);
      if (op.kind == OpKind::auto_insert && op.outcome == Outcome::ok) {
        op.value = static_cast<std::int64_t>(reply->result.last_insert_id);
        inserted.push_back(op.key);
      }
    }
    history_.add(std::move(op));
    if (!reply) {
      // The node is probably down or paused: do not spin on refused
      // connections (the next operation picks a node at random again).
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } else if (kind == OpKind::read_total) {
      // Local reads are far cheaper than replicated writes: pace them so the
      // history is not mostly reads (about 100 per second is plenty).
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

}  // namespace distdb::fault
