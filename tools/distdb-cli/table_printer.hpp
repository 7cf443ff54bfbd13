// Rendering of values and result sets: the mariadb-style aligned table, the
// tab-separated batch format and JSON values. Pure functions, no I/O besides
// the stream they are given.
#pragma once

#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>

#include "distdb/value.hpp"

namespace distdb::cli {

enum class Format { table, tsv, json };

struct TableOptions {
  // A cell wider than this (in terminal columns) is cut and ends with "…".
  std::size_t max_cell_width = 64;
};

// Terminal columns taken by UTF-8 text (wide East Asian characters count 2,
// combining marks 0, each invalid byte 1).
std::size_t display_width(std::string_view utf8);

// Shortest text that reads back as the same double; NaN, Infinity, -Infinity.
std::string format_double(double v);

// "0x" followed by the bytes in upper-case hex.
std::string hex_blob(const Blob& blob);

// Text for the table format: control characters (newline, tab, ...) and
// invalid UTF-8 escaped as \n, \t, \xNN so that one value stays on one line,
// then cut to `max_width` columns with a trailing "…" (0: no limit).
std::string table_text(std::string_view text, std::size_t max_width);

// One value as a table cell: NULL, numbers, 0x hex for blobs, escaped text.
std::string table_cell(const Value& value, std::size_t max_width);

// One value as a tab-separated field, the way the mariadb client writes batch
// output: NULL as \N; backslash, tab, newline, carriage return and NUL escaped
// as \\ \t \n \r \0; blobs as 0x hex.
std::string tsv_field(const Value& value);
std::string tsv_escape(std::string_view text);

// JSON encodings. Blobs become {"base64": "..."}, non-finite reals the
// strings "NaN", "Infinity", "-Infinity" (the wire protocol's conventions).
std::string json_string(std::string_view text);
std::string json_value(const Value& value);
std::string base64(const Blob& blob);

// The aligned table with +---+ borders (nothing for a result without columns).
// Numeric columns (every non-NULL value an integer or a real) are right-aligned.
void print_table(std::ostream& out, const ResultSet& result, const TableOptions& options = {});

// A header line with the column names, then one line per row.
void print_tsv(std::ostream& out, const ResultSet& result);

// {"columns": [...], "rows": [[...], ...]} members, without the braces, for
// embedding in a larger object.
std::string json_rows_members(const ResultSet& result);

}  // namespace distdb::cli
