// The event trace of a run: every event the fixture performs, as one line.
// The lines are hashed (FNV-1a) so that two runs of a seed can be compared
// byte for byte; they are printed only when verbose, and the last few are
// kept to show what led to a failure.
#pragma once

#include <cstdint>
#include <cstdio>
#include <deque>
#include <string>

namespace distdb::sim {

class Trace {
 public:
  explicit Trace(bool verbose = false) : verbose_(verbose) {}

  void add(std::uint64_t now, const std::string& text) {
    std::string line = "t=" + std::to_string(now) + " " + text;
    for (unsigned char c : line) mix(c);
    mix('\n');
    ++events_;
    if (verbose_) std::printf("%s\n", line.c_str());
    recent_.push_back(std::move(line));
    if (recent_.size() > kRecent) recent_.pop_front();
  }

  bool verbose() const { return verbose_; }
  std::uint64_t hash() const { return hash_; }
  std::uint64_t events() const { return events_; }
  const std::deque<std::string>& recent() const { return recent_; }

 private:
  static constexpr std::size_t kRecent = 60;
  void mix(unsigned char c) {
    hash_ ^= c;
    hash_ *= 0x100000001b3ULL;
  }

  bool verbose_;
  std::uint64_t hash_ = 0xcbf29ce484222325ULL;
  std::uint64_t events_ = 0;
  std::deque<std::string> recent_;
};

}  // namespace distdb::sim
