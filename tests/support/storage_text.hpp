// Small helpers for storage tests that compare what two databases hold:
// every value as exact text, every row of a query as one line.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

#include "distdb/storage.hpp"

namespace distdb::test {

// The result, or the test stops with the error.
inline ResultSet must(Result<ResultSet> r) {
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  return std::move(r).value();
}

// A value as text that tells every value apart: doubles with every bit
// (RAND()), blobs in hex, NULL as NULL.
inline std::string value_text(const Value& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&v)) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", *d);
    return buf;
  }
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (is_null(v)) return "NULL";
  std::string hex = "0x";
  for (const std::uint8_t b : std::get<Blob>(v).bytes) {
    hex += "0123456789abcdef"[b >> 4];
    hex += "0123456789abcdef"[b & 15];
  }
  return hex;
}

// Every row of `sql`, one line each, values separated by '|'.
inline std::string rows_text(Storage& s, const std::string& sql) {
  std::string out;
  for (const Row& row : must(s.execute(sql)).rows) {
    for (const Value& v : row) out += value_text(v) + "|";
    out += "\n";
  }
  return out;
}

}  // namespace distdb::test
