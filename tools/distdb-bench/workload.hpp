// The SQL a benchmark run sends: its own table, the pre-fill, and each
// thread's stream of statements.
//
// Every value is generated here, on the client, and written into the SQL as
// a literal: the cluster refuses non-deterministic functions (RAND(),
// NOW(), UUID(), ...) in writes, since each member would compute a different
// value, and the direct target must run the very same statements.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "options.hpp"

namespace distdb::bench {

struct Statement {
  std::string sql;
  bool is_read = false;
  // Every statement of the benchmark reads or changes exactly one row; a
  // different count is an error worth reporting (a point-select that finds
  // nothing on a member that has not applied the pre-fill, say).
  std::uint64_t expected_rows = 1;
};

// Rows per multi-row INSERT of the pre-fill: large enough that the pre-fill
// of a cluster is a few dozen replication rounds, small enough to stay far
// below the nodes' message size limit (about 70 bytes a row).
constexpr std::int64_t kPrefillBatch = 500;

// Statements about the table as a whole. The SQL is plain enough for both
// MariaDB and SQLite (a cluster may run on either).
std::string drop_table_sql(const std::string& table);
std::string create_table_sql(const std::string& table);
// One multi-row INSERT of ids first .. first + count - 1.
std::string insert_rows_sql(const std::string& table, std::int64_t first, std::int64_t count,
                            std::mt19937_64& rng);
// A read that finds the row `id` (one row) once it is there.
std::string select_row_sql(const std::string& table, std::int64_t id);

// Whether the workload reads rows that must exist first.
bool needs_prefill(WorkloadKind workload);

// One thread's statements:
//   insert        INSERT of a new row; ids are 1 + n * threads + thread, so
//                 no two threads ever collide;
//   point-select  SELECT of a random existing id (1 .. rows);
//   mixed         a point-select with probability read_ratio, otherwise an
//                 UPDATE of a random existing row (so the table keeps its
//                 size and every read still finds its row).
class StatementSource {
 public:
  StatementSource(const Options& options, int thread_index);
  Statement next();

 private:
  Statement insert();
  Statement point_select();
  Statement update();
  std::int64_t random_id();

  std::string table_;
  WorkloadKind workload_;
  double read_ratio_;
  std::int64_t rows_;
  std::int64_t next_insert_id_;
  std::int64_t id_stride_;
  std::mt19937_64 rng_;
};

// A seed for thread `thread_index` (or for the pre-fill, -1) derived from the
// run's seed, so that a run can be repeated statement for statement.
std::uint64_t thread_seed(std::uint64_t run_seed, int thread_index);

}  // namespace distdb::bench
