#include "report.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace distdb::bench {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

struct Percentile {
  double percent;
  const char* key;    // in JSON
  const char* label;  // in text
};

constexpr Percentile kPercentiles[] = {
    {50, "p50", "p50"}, {90, "p90", "p90"}, {99, "p99", "p99"}, {99.9, "p99_9", "p99.9"}};

double per_second(std::uint64_t count, double seconds) {
  return seconds > 0 ? static_cast<double>(count) / seconds : 0.0;
}

LatencyHistogram all_latencies(const OpStats& stats) {
  LatencyHistogram all = stats.read_latency;
  all.merge(stats.write_latency);
  return all;
}

// One "key": value member each; the overloads keep the writing of an
// object to one line per member.
void put(JsonWriter& w, const char* key, std::uint64_t v) {
  w.Key(key);
  w.Uint64(v);
}
void put(JsonWriter& w, const char* key, std::int64_t v) {
  w.Key(key);
  w.Int64(v);
}
void put(JsonWriter& w, const char* key, double v) {
  w.Key(key);
  w.Double(v);
}
void put(JsonWriter& w, const char* key, bool v) {
  w.Key(key);
  w.Bool(v);
}
void put(JsonWriter& w, const char* key, std::string_view v) {
  w.Key(key);
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}
// Without this, a string literal would pick the bool overload.
void put(JsonWriter& w, const char* key, const char* v) {
  put(w, key, std::string_view(v));
}
void put(JsonWriter& w, const char* key, const std::vector<Endpoint>& endpoints) {
  w.Key(key);
  w.StartArray();
  for (const Endpoint& e : endpoints) {
    const std::string text = e.to_string();
    w.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  }
  w.EndArray();
}

void put_latency(JsonWriter& w, const char* key, const LatencyHistogram& h) {
  w.Key(key);
  w.StartObject();
  put(w, "count", h.count());
  put(w, "min", h.min());
  put(w, "mean", h.mean());
  for (const Percentile& p : kPercentiles) put(w, p.key, h.percentile(p.percent));
  put(w, "max", h.max());
  w.EndObject();
}

// Reads or writes alone (the mixed workload has both).
void put_kind(JsonWriter& w, const char* key, const LatencyHistogram& h, double seconds) {
  w.Key(key);
  w.StartObject();
  put(w, "ok_ops", h.count());
  put(w, "throughput_ops_s", per_second(h.count(), seconds));
  put_latency(w, "latency_us", h);
  w.EndObject();
}

void put_parameters(JsonWriter& w, const Options& o, const RunResult& run) {
  w.Key("parameters");
  w.StartObject();
  put(w, "target", to_string(o.target));
  put(w, "endpoints", run.endpoints);
  if (o.target != TargetKind::cluster) {
    put(w, "user", o.user);
    put(w, "database", o.database);
    if (o.target == TargetKind::two_phase) put(w, "servers", o.dbs);
  } else {
    put(w, "nodes", o.nodes);
    put(w, "user", o.cluster_user);
    put(w, "coordinator_only", o.coordinator_only);
  }
  put(w, "pipeline", std::int64_t{o.pipeline});
  put(w, "workload", to_string(o.workload));
  if (o.workload == WorkloadKind::mixed) put(w, "read_ratio", o.read_ratio);
  put(w, "threads", std::int64_t{o.threads});
  put(w, "seconds", o.seconds);
  put(w, "warmup", o.warmup);
  put(w, "rows", o.rows);
  put(w, "table", o.table);
  put(w, "keep", o.keep);
  put(w, "seed", o.seed);
  if (o.timeline_ms > 0) put(w, "timeline_ms", std::int64_t{o.timeline_ms});
  w.EndObject();
}

void put_counts(JsonWriter& w, const char* key, const std::vector<std::uint64_t>& counts) {
  w.Key(key);
  w.StartArray();
  for (std::uint64_t c : counts) w.Uint64(c);
  w.EndArray();
}

void put_timeline(JsonWriter& w, const Options& o, const RunResult& run) {
  w.Key("timeline");
  w.StartObject();
  put(w, "interval_ms", std::int64_t{o.timeline_ms});
  put(w, "start_unix_ms", run.start_unix_ms);
  put_counts(w, "ok", run.timeline.ok);
  put_counts(w, "errors", run.timeline.errors);
  w.EndObject();
}

void print_latency_line(std::FILE* out, const char* label, const LatencyHistogram& h, double seconds) {
  std::fprintf(out, "  %-8s %10.1f ops/s  latency ms:", label, per_second(h.count(), seconds));
  for (const Percentile& p : kPercentiles) {
    std::fprintf(out, " %s %.3f", p.label, static_cast<double>(h.percentile(p.percent)) / 1000.0);
  }
  std::fprintf(out, " max %.3f mean %.3f\n", static_cast<double>(h.max()) / 1000.0, h.mean() / 1000.0);
}

}  // namespace

bool run_succeeded(const RunResult& run) {
  return run.ran && run.stats.ok_count() > 0;
}

void print_text(std::FILE* out, const Options& o, const RunResult& run) {
  std::string where;
  for (const Endpoint& e : run.endpoints) where += (where.empty() ? "" : ",") + e.to_string();
  std::fprintf(out, "distdb-bench: %s on %s %s, %d thread(s)%s, %g s after a %g s warmup\n",
               to_string(o.workload), to_string(o.target), where.c_str(), o.threads,
               o.pipeline > 1 ? (", pipeline " + std::to_string(o.pipeline)).c_str() : "", o.seconds,
               o.warmup);
  if (!run.ran) {
    std::fprintf(out, "  run failed: %s\n", run.failure.c_str());
    return;
  }
  const OpStats& s = run.stats;
  if (run.prefill_seconds > 0) {
    std::fprintf(out, "  pre-fill %lld rows in %.2f s\n", static_cast<long long>(o.rows),
                 run.prefill_seconds);
  }
  std::fprintf(out, "  ops      %llu in %.2f s (%llu ok, %llu errors)\n",
               static_cast<unsigned long long>(s.op_count()), run.measured_seconds,
               static_cast<unsigned long long>(s.ok_count()), static_cast<unsigned long long>(s.error_count));
  print_latency_line(out, "all", all_latencies(s), run.measured_seconds);
  if (s.read_latency.count() > 0 && s.write_latency.count() > 0) {
    print_latency_line(out, "reads", s.read_latency, run.measured_seconds);
    print_latency_line(out, "writes", s.write_latency, run.measured_seconds);
  }
  for (const auto& [kind, tally] : s.errors) {
    std::fprintf(out, "  error    %s: %llu, first: %s\n", kind.c_str(),
                 static_cast<unsigned long long>(tally.count), tally.first_message.c_str());
  }
}

std::string to_json(const Options& o, const RunResult& run) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  const OpStats& s = run.stats;
  w.StartObject();
  put(w, "tool", "distdb-bench");
  put(w, "version", DISTDB_VERSION);
  put_parameters(w, o, run);
  put(w, "success", run_succeeded(run));
  if (!run.ran) put(w, "failure", run.failure);
  put(w, "prefill_s", run.prefill_seconds);
  put(w, "duration_s", run.measured_seconds);
  put(w, "ops", s.op_count());
  put(w, "ok_ops", s.ok_count());
  put(w, "errors", s.error_count);
  put(w, "throughput_ops_s", per_second(s.ok_count(), run.measured_seconds));
  put_latency(w, "latency_us", all_latencies(s));
  put_kind(w, "reads", s.read_latency, run.measured_seconds);
  put_kind(w, "writes", s.write_latency, run.measured_seconds);
  w.Key("errors_by_kind");
  w.StartObject();
  for (const auto& [kind, tally] : s.errors) {
    w.Key(kind.data(), static_cast<rapidjson::SizeType>(kind.size()));
    w.StartObject();
    put(w, "count", tally.count);
    put(w, "first_message", tally.first_message);
    w.EndObject();
  }
  w.EndObject();
  if (o.timeline_ms > 0 && run.ran) put_timeline(w, o, run);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

}  // namespace distdb::bench
