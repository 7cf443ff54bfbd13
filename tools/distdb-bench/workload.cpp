#include "workload.hpp"

#include <utility>

namespace distdb::bench {
namespace {

// The table keeps ints in k and short ASCII text in v: values that every
// SQL dialect writes the same way and that need no escaping.
std::string random_k(std::mt19937_64& rng) {
  return std::to_string(std::uniform_int_distribution<std::int32_t>(0, 2147483647)(rng));
}

std::string random_v(std::mt19937_64& rng) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::uniform_int_distribution<std::size_t> pick(0, sizeof kAlphabet - 2);
  std::string v(32, ' ');
  for (char& c : v) c = kAlphabet[pick(rng)];
  return v;
}

void append_row(std::string& sql, std::int64_t id, std::mt19937_64& rng) {
  sql += "(" + std::to_string(id) + ", " + random_k(rng) + ", '" + random_v(rng) + "')";
}

}  // namespace

std::string drop_table_sql(const std::string& table) {
  return "DROP TABLE IF EXISTS " + table;
}

std::string create_table_sql(const std::string& table) {
  return "CREATE TABLE " + table + " (id BIGINT PRIMARY KEY, k INT NOT NULL, v VARCHAR(64) NOT NULL)";
}

std::string insert_rows_sql(const std::string& table, std::int64_t first, std::int64_t count,
                            std::mt19937_64& rng) {
  std::string sql = "INSERT INTO " + table + " (id, k, v) VALUES ";
  for (std::int64_t id = first; id < first + count; ++id) {
    if (id != first) sql += ", ";
    append_row(sql, id, rng);
  }
  return sql;
}

std::string select_row_sql(const std::string& table, std::int64_t id) {
  return "SELECT id, k, v FROM " + table + " WHERE id = " + std::to_string(id);
}

bool needs_prefill(WorkloadKind workload) {
  return workload != WorkloadKind::insert;
}

std::uint64_t thread_seed(std::uint64_t run_seed, int thread_index) {
  // splitmix64 of (seed, thread): nearby seeds and threads get unrelated streams.
  std::uint64_t z = run_seed + 0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(thread_index + 2);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

StatementSource::StatementSource(const Options& options, int thread_index)
    : table_(options.table),
      workload_(options.workload),
      read_ratio_(options.read_ratio),
      rows_(options.rows),
      next_insert_id_(1 + thread_index),
      id_stride_(options.threads),
      rng_(thread_seed(options.seed, thread_index)) {}

Statement StatementSource::next() {
  switch (workload_) {
    case WorkloadKind::insert:
      return insert();
    case WorkloadKind::point_select:
      return point_select();
    case WorkloadKind::mixed:
      break;
  }
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < read_ratio_ ? point_select() : update();
}

Statement StatementSource::insert() {
  std::string sql = "INSERT INTO " + table_ + " (id, k, v) VALUES ";
  append_row(sql, next_insert_id_, rng_);
  next_insert_id_ += id_stride_;
  return {std::move(sql), false, 1};
}

Statement StatementSource::point_select() {
  return {select_row_sql(table_, random_id()), true, 1};
}

Statement StatementSource::update() {
  const std::int64_t id = random_id();
  return {"UPDATE " + table_ + " SET k = " + random_k(rng_) + ", v = '" + random_v(rng_) +
              "' WHERE id = " + std::to_string(id),
          false, 1};
}

std::int64_t StatementSource::random_id() {
  return std::uniform_int_distribution<std::int64_t>(1, rows_)(rng_);
}

}  // namespace distdb::bench
