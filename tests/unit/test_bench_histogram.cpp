// distdb-bench's latency histogram: its bucket layout, its percentiles
// against the exact ones of a sorted copy of the data, merging, and the
// edge cases (empty, one value, zero, the largest values).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "histogram.hpp"

using distdb::bench::LatencyHistogram;

namespace {

constexpr double kPercents[] = {0, 0.1, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100};

// The exact percentile: the value of rank ceil(p/100 * n) (at least 1) in
// sorted order, the same definition the histogram approximates.
std::uint64_t oracle(const std::vector<std::uint64_t>& sorted, double percent) {
  const double exact_rank = percent / 100.0 * static_cast<double>(sorted.size());
  auto rank = static_cast<std::size_t>(std::ceil(exact_rank - 1e-9));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

// The histogram may only report a value of the same bucket as the exact
// one, at or above it: never less, and at most 1/128 more.
void check_against_oracle(const LatencyHistogram& h, std::vector<std::uint64_t> values) {
  std::sort(values.begin(), values.end());
  REQUIRE(h.count() == values.size());
  CHECK(h.min() == values.front());
  CHECK(h.max() == values.back());
  for (double p : kPercents) {
    const std::uint64_t exact = oracle(values, p);
    const std::uint64_t got = h.percentile(p);
    CAPTURE(p);
    CAPTURE(exact);
    CAPTURE(got);
    CHECK(got >= exact);
    CHECK(static_cast<double>(got - exact) <= static_cast<double>(exact) / 128.0);
    CHECK(LatencyHistogram::bucket_index(got) == LatencyHistogram::bucket_index(exact));
  }
}

}  // namespace

TEST_CASE("bucket layout: exact below 256, then 128 buckets per doubling, no gaps") {
  for (std::uint64_t v = 0; v < 256; ++v) {
    CHECK(LatencyHistogram::bucket_index(v) == v);
    CHECK(LatencyHistogram::bucket_lowest(v) == v);
    CHECK(LatencyHistogram::bucket_highest(v) == v);
  }
  CHECK(LatencyHistogram::bucket_index(256) == 256);
  CHECK(LatencyHistogram::bucket_index(257) == 256);  // [256, 257] share a bucket 2 wide
  CHECK(LatencyHistogram::bucket_index(258) == 257);
  CHECK(LatencyHistogram::bucket_index(512) == 384);
  // Every bucket starts right after the previous one ends, and holds exactly
  // the values between its bounds.
  for (std::size_t i = 1; i < LatencyHistogram::kBucketCount; ++i) {
    CAPTURE(i);
    REQUIRE(LatencyHistogram::bucket_lowest(i) == LatencyHistogram::bucket_highest(i - 1) + 1);
    REQUIRE(LatencyHistogram::bucket_index(LatencyHistogram::bucket_lowest(i)) == i);
    REQUIRE(LatencyHistogram::bucket_index(LatencyHistogram::bucket_highest(i)) == i);
    const double width =
        static_cast<double>(LatencyHistogram::bucket_highest(i) - LatencyHistogram::bucket_lowest(i));
    REQUIRE(width <= static_cast<double>(LatencyHistogram::bucket_lowest(i)) / 128.0);
  }
  const std::uint64_t top = std::numeric_limits<std::uint64_t>::max();
  CHECK(LatencyHistogram::bucket_index(top) == LatencyHistogram::kBucketCount - 1);
  CHECK(LatencyHistogram::bucket_highest(LatencyHistogram::kBucketCount - 1) == top);
}

TEST_CASE("percentiles match a sorted-vector oracle on random data") {
  std::mt19937_64 rng(20261126);
  SUBCASE("uniform microseconds") {
    std::uniform_int_distribution<std::uint64_t> dist(0, 1000000);
    for (std::size_t n : {1U, 2U, 3U, 10U, 999U, 1000U, 100000U}) {
      LatencyHistogram h;
      std::vector<std::uint64_t> values;
      for (std::size_t i = 0; i < n; ++i) values.push_back(dist(rng));
      for (auto v : values) h.record(v);
      CAPTURE(n);
      check_against_oracle(h, values);
    }
  }
  SUBCASE("log-normal, like real latencies: a body and a long tail") {
    std::lognormal_distribution<double> dist(6.5, 1.2);  // median ~ 665 us
    LatencyHistogram h;
    std::vector<std::uint64_t> values;
    for (int i = 0; i < 200000; ++i) values.push_back(static_cast<std::uint64_t>(dist(rng)));
    for (auto v : values) h.record(v);
    check_against_oracle(h, values);
  }
  SUBCASE("many repeats of few values") {
    LatencyHistogram h;
    std::vector<std::uint64_t> values;
    for (int i = 0; i < 5000; ++i) values.push_back(i % 7 == 0 ? 123456 : 42);
    for (auto v : values) h.record(v);
    check_against_oracle(h, values);
    CHECK(h.percentile(50) == 42);  // exact below 256
  }
}

TEST_CASE("merging equals recording everything in one histogram") {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(8.0, 1.5);
  LatencyHistogram merged;
  LatencyHistogram all;
  std::vector<std::uint64_t> values;
  for (int part = 0; part < 4; ++part) {
    LatencyHistogram h;
    for (int i = 0; i < 10000 * (part + 1); ++i) {
      const auto v = static_cast<std::uint64_t>(dist(rng));
      h.record(v);
      all.record(v);
      values.push_back(v);
    }
    merged.merge(h);
  }
  merged.merge(LatencyHistogram{});  // merging an empty one changes nothing
  CHECK(merged.count() == all.count());
  CHECK(merged.min() == all.min());
  CHECK(merged.max() == all.max());
  CHECK(merged.mean() == doctest::Approx(all.mean()));
  for (double p : kPercents) CHECK(merged.percentile(p) == all.percentile(p));
  check_against_oracle(merged, values);

  LatencyHistogram empty;
  empty.merge(all);  // into an empty one: min comes from the other side
  CHECK(empty.min() == all.min());
  CHECK(empty.percentile(99) == all.percentile(99));
}

TEST_CASE("edge cases") {
  SUBCASE("empty: every figure is 0") {
    const LatencyHistogram h;
    CHECK(h.count() == 0);
    CHECK(h.min() == 0);
    CHECK(h.max() == 0);
    CHECK(h.mean() == 0.0);
    for (double p : kPercents) CHECK(h.percentile(p) == 0);
  }
  SUBCASE("one value: every percentile is that value, even in a wide bucket") {
    LatencyHistogram h;
    h.record(1000001);
    for (double p : kPercents) CHECK(h.percentile(p) == 1000001);
    CHECK(h.mean() == doctest::Approx(1000001.0));
  }
  SUBCASE("zero is a value like any other") {
    LatencyHistogram h;
    h.record(0);
    h.record(0);
    h.record(5);
    CHECK(h.min() == 0);
    CHECK(h.percentile(50) == 0);
    CHECK(h.percentile(100) == 5);
  }
  SUBCASE("the largest values") {
    LatencyHistogram h;
    const std::uint64_t top = std::numeric_limits<std::uint64_t>::max();
    h.record(top);
    h.record(top - 1);
    h.record(1);
    CHECK(h.max() == top);
    CHECK(h.percentile(100) == top);
    CHECK(h.percentile(1) == 1);
  }
  SUBCASE("percent outside 0..100 is clamped") {
    LatencyHistogram h;
    for (std::uint64_t v = 1; v <= 100; ++v) h.record(v);
    CHECK(h.percentile(-5) == 1);
    CHECK(h.percentile(250) == 100);
    CHECK(h.percentile(99.9) == 100);
    CHECK(h.percentile(50) == 50);
  }
}
