#include "histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace distdb::bench {

// A value v >= kExactLimit is reduced to its top kMantissaBits bits:
// shift = bit_width(v) - kMantissaBits, top = v >> shift, which lies in
// [kSubBuckets, 2 * kSubBuckets). Its bucket is shift * kSubBuckets + top.
// For shift = 0 (v below kExactLimit) the same formula gives v itself, and
// consecutive shifts tile the index range without gaps:
//   shift 0: [0, 256)   shift 1: [256, 384)   shift 2: [384, 512) ...
std::size_t LatencyHistogram::bucket_index(std::uint64_t value) {
  const int width = std::bit_width(value);
  const int shift = std::max(0, width - kMantissaBits);
  const std::uint64_t top = value >> shift;
  return static_cast<std::size_t>(static_cast<std::uint64_t>(shift) * kSubBuckets + top);
}

std::uint64_t LatencyHistogram::bucket_lowest(std::size_t index) {
  if (index < kExactLimit) return index;
  const std::uint64_t shift = index / kSubBuckets - 1;
  const std::uint64_t top = index - shift * kSubBuckets;
  return top << shift;
}

std::uint64_t LatencyHistogram::bucket_highest(std::size_t index) {
  if (index < kExactLimit) return index;
  if (index + 1 == kBucketCount) return std::numeric_limits<std::uint64_t>::max();
  return bucket_lowest(index + 1) - 1;
}

void LatencyHistogram::record(std::uint64_t micros) {
  ++counts_[bucket_index(micros)];
  ++count_;
  min_ = std::min(min_, micros);
  max_ = std::max(max_, micros);
  sum_ += static_cast<long double>(micros);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (std::size_t i = 0; i < kBucketCount; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

double LatencyHistogram::mean() const {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_ / static_cast<long double>(count_));
}

std::uint64_t LatencyHistogram::percentile(double percent) const {
  if (count_ == 0) return 0;
  const double clamped = std::clamp(percent, 0.0, 100.0);
  // ceil() of a product that should be a whole number can land one above
  // it (99.9% of 1000 is 999.0000000000001); the small slack keeps such
  // ranks where a sorted-array reader would put them.
  const double exact_rank = clamped / 100.0 * static_cast<double>(count_);
  auto rank = static_cast<std::uint64_t>(std::ceil(exact_rank - 1e-9));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBucketCount; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(bucket_highest(i), max_);
  }
  return max_;  // unreachable: the counts add up to count_
}

}  // namespace distdb::bench
