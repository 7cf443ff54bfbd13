// Typed values and result sets, as every storage backend returns them.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace distdb {

// Binary data (BLOB, BINARY columns): kept apart from text so that it can be
// encoded safely on the JSON wire.
struct Blob {
  std::vector<std::uint8_t> bytes;
  bool operator==(const Blob&) const = default;
};

// One SQL value. NULL is std::monostate, distinct from the empty string.
// Integers that do not fit in int64 (BIGINT UNSIGNED above 2^63-1) and exact
// decimals (DECIMAL) are kept as text so that no precision is lost.
using Value = std::variant<std::monostate, std::int64_t, double, std::string, Blob>;

inline bool is_null(const Value& v) { return std::holds_alternative<std::monostate>(v); }

using Row = std::vector<Value>;

// What one statement produced. A statement that returns rows (SELECT, SHOW,
// ...) has columns (possibly with zero rows); one that does not has no
// columns, and rows_affected / last_insert_id say what it did.
struct ResultSet {
  std::vector<std::string> columns;
  std::vector<Row> rows;
  std::uint64_t rows_affected = 0;
  std::uint64_t last_insert_id = 0;

  bool has_rows() const { return !columns.empty(); }
};

}  // namespace distdb
