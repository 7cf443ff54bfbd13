// A latency histogram with log-linear buckets, in the manner of HdrHistogram.
//
// Values are whole microseconds. Below 2^kMantissaBits every value has its own
// bucket (exact); above, each power-of-two range [2^e, 2^(e+1)) is split into
// 2^(kMantissaBits-1) equal buckets, so a bucket is never wider than 1/128 of
// its lower bound: every percentile is within 0.8% of the true value, over
// the whole 64-bit range, in a fixed 58 KiB array. Recording is one
// increment (no allocation, no lock), so each benchmark thread keeps its own
// histogram and they are merged once the threads have stopped.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace distdb::bench {

class LatencyHistogram {
 public:
  static constexpr int kMantissaBits = 8;
  static constexpr std::uint64_t kExactLimit = std::uint64_t{1} << kMantissaBits;        // 256: exact below
  static constexpr std::uint64_t kSubBuckets = std::uint64_t{1} << (kMantissaBits - 1);  // 128 per doubling
  static constexpr std::size_t kBucketCount = (64 - kMantissaBits + 1) * kSubBuckets + kSubBuckets;

  void record(std::uint64_t micros);
  // Adds every value recorded in `other`, as if recorded here.
  void merge(const LatencyHistogram& other);

  std::uint64_t count() const { return count_; }
  // 0 when empty.
  std::uint64_t min() const { return count_ == 0 ? 0 : min_; }
  std::uint64_t max() const { return max_; }
  double mean() const;

  // The value below or at which `percent` (0..100) of the recorded values
  // lie: the highest value of the bucket holding the value of that rank
  // (rank = ceil(percent/100 * count), at least 1), never above max().
  // So it never under-reports, and over-reports by less than 1/128. 0 when
  // empty.
  std::uint64_t percentile(double percent) const;

  // The bucket layout, public for the tests.
  static std::size_t bucket_index(std::uint64_t value);
  static std::uint64_t bucket_lowest(std::size_t index);
  static std::uint64_t bucket_highest(std::size_t index);

 private:
  std::array<std::uint64_t, kBucketCount> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t min_ = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t max_ = 0;
  // A long double keeps the mean exact enough even for billions of samples.
  long double sum_ = 0;
};

}  // namespace distdb::bench
