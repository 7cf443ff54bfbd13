#include "runner.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <latch>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "workload.hpp"

namespace distdb::bench {

void OpStats::record_success(bool is_read, std::uint64_t micros) {
  (is_read ? read_latency : write_latency).record(micros);
}

void OpStats::record_error(const std::string& kind, const std::string& message) {
  ErrorTally& tally = errors[kind];
  if (tally.count++ == 0) tally.first_message = message;
  ++error_count;
}

void OpStats::merge(const OpStats& other) {
  read_latency.merge(other.read_latency);
  write_latency.merge(other.write_latency);
  for (const auto& [kind, tally] : other.errors) {
    ErrorTally& mine = errors[kind];
    if (mine.count == 0) mine.first_message = tally.first_message;
    mine.count += tally.count;
  }
  error_count += other.error_count;
}

void Timeline::record(std::size_t interval, bool succeeded) {
  if (interval >= ok.size()) {
    ok.resize(interval + 1, 0);
    errors.resize(interval + 1, 0);
  }
  ++(succeeded ? ok : errors)[interval];
}

void Timeline::merge(const Timeline& other) {
  if (other.ok.size() > ok.size()) {
    ok.resize(other.ok.size(), 0);
    errors.resize(other.ok.size(), 0);
  }
  for (std::size_t i = 0; i < other.ok.size(); ++i) {
    ok[i] += other.ok[i];
    errors[i] += other.errors[i];
  }
}

namespace {

using Clock = std::chrono::steady_clock;

// How long to wait before the next statement after a connection failure: a
// dead node or server would otherwise be hammered in a tight loop, which
// also inflates the error count to no purpose.
constexpr auto kConnectionBackoff = std::chrono::milliseconds(10);
// How long setup waits for every node the threads use to hold the pre-fill.
constexpr auto kVisibilityTimeout = std::chrono::seconds(30);

std::uint64_t micros_between(Clock::time_point from, Clock::time_point to) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(to - from).count());
}

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// When the threads measure, decided once they have all connected.
struct Schedule {
  Clock::time_point start;         // when the threads start loading
  Clock::time_point measure_from;  // the end of the warmup
  Clock::time_point deadline;      // no statement starts at or after this
  // --timeline: the width of its intervals (0: no timeline).
  std::chrono::milliseconds timeline_interval{0};
};

struct Worker {
  explicit Worker(int i) : index(i) {}

  int index;
  std::unique_ptr<Connection> connection;
  std::optional<Error> connect_error;
  OpStats stats;
  Timeline timeline;
  Clock::time_point last_completion{};  // of a measured statement
  // Warmup included; read by the progress line while the thread runs.
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> failed{0};
};

// The outcome of a statement, checked against what the workload expects.
OpResult checked(OpResult result, const Statement& statement) {
  if (result.ok && result.rows != statement.expected_rows) {
    return OpResult::failure("wrong_row_count", "expected " + std::to_string(statement.expected_rows) +
                                                    " row(s), got " + std::to_string(result.rows) + ": " +
                                                    statement.sql);
  }
  return result;
}

void account(Worker& w, const Schedule& schedule, const Statement& statement, const OpResult& result,
             Clock::time_point started, Clock::time_point finished) {
  w.completed.fetch_add(1, std::memory_order_relaxed);
  if (!result.ok) w.failed.fetch_add(1, std::memory_order_relaxed);
  if (schedule.timeline_interval.count() > 0) {
    w.timeline.record(static_cast<std::size_t>((finished - schedule.start) / schedule.timeline_interval),
                      result.ok);
  }
  // A statement counts when it started after the warmup, so the warmup's
  // slow start (cold caches, connection setup on the nodes) stays out.
  if (started >= schedule.measure_from) {
    if (result.ok) {
      w.stats.record_success(statement.is_read, micros_between(started, finished));
    } else {
      w.stats.record_error(result.error_kind, result.error_message);
    }
    w.last_completion = finished;
  }
  if (result.connection_failed) std::this_thread::sleep_for(kConnectionBackoff);
}

// One statement outstanding at a time, as sysbench does: the latency is the
// statement's own round trip.
void run_one_at_a_time(Worker& w, const Schedule& schedule, StatementSource& source) {
  for (;;) {
    // Generated before the clock starts: the figures are the target's.
    const Statement statement = source.next();
    const Clock::time_point started = Clock::now();
    if (started >= schedule.deadline) return;
    const OpResult result = checked(w.connection->execute(statement.sql), statement);
    account(w, schedule, statement, result, started, Clock::now());
  }
}

// `depth` statements outstanding: a statement is sent as soon as an earlier
// one is answered. The latency runs from sending to the answer, so it
// includes the wait behind the statements ahead of it on the connection.
void run_pipelined(Worker& w, const Schedule& schedule, StatementSource& source, int depth) {
  struct InFlight {
    Statement statement;
    Clock::time_point sent;
  };
  std::deque<InFlight> in_flight;
  for (;;) {
    while (in_flight.size() < static_cast<std::size_t>(depth)) {
      Statement statement = source.next();
      const Clock::time_point now = Clock::now();
      if (now >= schedule.deadline) break;
      if (auto sent = w.connection->send(statement.sql); !sent) {
        account(w, schedule, statement,
                OpResult::failure(to_string(sent.error().kind), sent.error().message, true), now,
                Clock::now());
        break;
      }
      in_flight.push_back({std::move(statement), now});
    }
    if (in_flight.empty()) {
      if (Clock::now() >= schedule.deadline) return;
      continue;  // every send failed; account() has backed off
    }
    const OpResult result = w.connection->receive();
    const Clock::time_point finished = Clock::now();
    InFlight done = std::move(in_flight.front());
    in_flight.pop_front();
    account(w, schedule, done.statement, checked(result, done.statement), done.sent, finished);
  }
}

void run_worker(Worker& w, Target& target, const Options& options, const Schedule& schedule,
                std::latch& connected, std::latch& go) {
  // Connecting happens before the start barrier, so that no thread's
  // connection setup is timed and all threads start loading together.
  auto connection = target.connect(static_cast<std::size_t>(w.index));
  if (connection) {
    w.connection = std::move(*connection);
  } else {
    w.connect_error = connection.error();
  }
  connected.count_down();
  go.wait();
  if (!w.connection) return;
  StatementSource source(options, w.index);
  if (options.pipeline > 1) {
    run_pipelined(w, schedule, source, options.pipeline);
  } else {
    run_one_at_a_time(w, schedule, source);
  }
}

Status run_setup(Connection& connection, const std::string& sql, const char* what) {
  const OpResult result = connection.execute(sql);
  if (result.ok) return {};
  return Error(ErrorKind::sql,
               std::string("cannot ") + what + ": " + result.error_kind + ": " + result.error_message);
}

// Creates the table afresh (`created` says whether it got that far, so
// that a failed setup knows whether there is anything to drop) and
// pre-fills it: through endpoint 0, or on each endpoint when they hold a
// table each.
Status set_up_table(const Options& options, Target& target, bool& created, double& prefill_seconds) {
  const std::size_t tables = target.independent_endpoints() ? target.endpoints().size() : 1;
  const Clock::time_point start = Clock::now();
  for (std::size_t e = 0; e < tables; ++e) {
    auto connection = target.connect(e);
    if (!connection) return connection.error();
    Connection& c = **connection;
    if (auto s = run_setup(c, drop_table_sql(options.table), "drop the old table"); !s) return s;
    if (auto s = run_setup(c, create_table_sql(options.table), "create the table"); !s) return s;
    created = true;
    if (!needs_prefill(options.workload)) continue;
    // The same rows everywhere: every copy is filled from the same seed.
    std::mt19937_64 rng(thread_seed(options.seed, -1));
    for (std::int64_t first = 1; first <= options.rows; first += kPrefillBatch) {
      const std::int64_t count = std::min(kPrefillBatch, options.rows - first + 1);
      if (auto s = run_setup(c, insert_rows_sql(options.table, first, count, rng), "pre-fill the table"); !s)
        return s;
    }
  }
  if (needs_prefill(options.workload)) prefill_seconds = seconds_between(start, Clock::now());
  return {};
}

// Waits until every endpoint the threads use serves the whole table. On a
// cluster a write is acknowledged once a majority has committed it, and
// reads are served locally, so a member may still be applying the last
// pre-fill batch; a point-select there would find nothing. Members apply
// entries in one order, so holding the last row means holding them all. For
// the insert workload this only checks that the table exists everywhere.
Status wait_until_visible(const Options& options, Target& target) {
  const std::size_t used = std::min(target.endpoints().size(), static_cast<std::size_t>(options.threads));
  const bool prefilled = needs_prefill(options.workload);
  const Statement probe{select_row_sql(options.table, prefilled ? options.rows : 0), true,
                        prefilled ? 1U : 0U};
  const Clock::time_point deadline = Clock::now() + kVisibilityTimeout;
  for (std::size_t e = 0; e < used; ++e) {
    auto connection = target.connect(e);
    if (!connection) return connection.error();
    for (;;) {
      const OpResult result = checked((*connection)->execute(probe.sql), probe);
      if (result.ok) break;
      if (Clock::now() >= deadline) {
        return Error(ErrorKind::timeout,
                     target.endpoints()[e].to_string() + " does not serve the table after " +
                         std::to_string(kVisibilityTimeout.count()) + " s: " + result.error_message);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  return {};
}

void drop_table(const Options& options, Target& target) {
  const std::size_t tables = target.independent_endpoints() ? target.endpoints().size() : 1;
  for (std::size_t e = 0; e < tables; ++e) {
    auto connection = target.connect(e);
    Status dropped = connection ? run_setup(**connection, drop_table_sql(options.table), "drop the table")
                                : Status(connection.error());
    if (!dropped) std::fprintf(stderr, "distdb-bench: warning: %s\n", dropped.error().message.c_str());
  }
}

// One line a second while the threads run: completions per second over the
// last second, all threads together, warmup included.
void show_progress(const std::vector<std::unique_ptr<Worker>>& workers, const Schedule& schedule,
                   Clock::time_point start) {
  std::uint64_t previous = 0;
  Clock::time_point previous_at = start;
  for (int second = 1;; ++second) {
    const Clock::time_point tick = std::min(start + std::chrono::seconds(second), schedule.deadline);
    std::this_thread::sleep_until(tick);
    std::uint64_t completed = 0;
    std::uint64_t failed = 0;
    for (const auto& w : workers) {
      completed += w->completed.load(std::memory_order_relaxed);
      failed += w->failed.load(std::memory_order_relaxed);
    }
    const double elapsed = seconds_between(previous_at, tick);
    const double rate = elapsed > 0 ? static_cast<double>(completed - previous) / elapsed : 0.0;
    std::fprintf(stderr, "distdb-bench: [%4.0fs]%s %10.1f ops/s, %llu errors\n", seconds_between(start, tick),
                 tick <= schedule.measure_from ? " warmup" : "", rate,
                 static_cast<unsigned long long>(failed));
    previous = completed;
    previous_at = tick;
    if (tick >= schedule.deadline) return;
  }
}

}  // namespace

RunResult run_benchmark(const Options& options, Target& target, bool progress) {
  RunResult run;
  run.endpoints = target.endpoints();
  if (auto prepared = target.prepare(); !prepared) {
    run.failure = prepared.error().message;
    return run;
  }
  run.endpoints = target.endpoints();  // --coordinator-only: now the coordinator
  bool created = false;
  Status ready = set_up_table(options, target, created, run.prefill_seconds);
  if (ready) ready = wait_until_visible(options, target);
  if (!ready) {
    run.failure = ready.error().message;
    if (created && !options.keep) drop_table(options, target);
    return run;
  }

  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < options.threads; ++i) workers.push_back(std::make_unique<Worker>(i));
  Schedule schedule;
  std::latch connected(options.threads);
  std::latch go(1);
  std::vector<std::thread> threads;
  for (auto& w : workers) {
    threads.emplace_back(run_worker, std::ref(*w), std::ref(target), std::cref(options), std::cref(schedule),
                         std::ref(connected), std::ref(go));
  }
  connected.wait();
  const Clock::time_point start = Clock::now();
  run.start_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  schedule.start = start;
  schedule.timeline_interval = std::chrono::milliseconds(options.timeline_ms);
  const auto failed =
      std::find_if(workers.begin(), workers.end(), [](const auto& w) { return w->connect_error; });
  if (failed != workers.end()) {
    run.failure = "thread " + std::to_string((*failed)->index) +
                  " cannot connect: " + (*failed)->connect_error->message;
    schedule.deadline = start;  // the connected threads stop at once
  } else {
    schedule.measure_from =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.warmup));
    schedule.deadline = schedule.measure_from + std::chrono::duration_cast<Clock::duration>(
                                                    std::chrono::duration<double>(options.seconds));
  }
  // The schedule is written before the latch opens and only read after it:
  // the latch orders the two.
  go.count_down();
  if (progress && failed == workers.end()) show_progress(workers, schedule, start);
  for (auto& t : threads) t.join();

  if (failed == workers.end()) {
    run.ran = true;
    Clock::time_point last = schedule.measure_from;
    for (const auto& w : workers) {
      run.stats.merge(w->stats);
      run.timeline.merge(w->timeline);
      last = std::max(last, w->last_completion);
    }
    run.measured_seconds = seconds_between(schedule.measure_from, last);
  }
  workers.clear();  // closes the threads' connections before the table is dropped
  if (!options.keep) drop_table(options, target);
  return run;
}

}  // namespace distdb::bench
