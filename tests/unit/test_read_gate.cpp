// The read gate (node/read_gate.hpp): an install waits for the reads already
// admitted, blocking or not, and a read that must not block is refused while
// an install runs.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "node/read_gate.hpp"

using distdb::ReadGate;

TEST_CASE("a pass is refused during an install and held reads delay the next install") {
  ReadGate gate;
  ReadGate::Pass pass = gate.try_pass();
  REQUIRE(pass != nullptr);
  ReadGate::Pass copy = pass;  // handed on, as a read's completion handler does

  std::atomic<bool> installing{false};
  auto install = std::async(std::launch::async, [&] {
    gate.begin_install();
    installing = true;
  });
  // The install waits for the pass, however many copies of it there are.
  CHECK(install.wait_for(std::chrono::milliseconds(100)) == std::future_status::timeout);
  pass.reset();
  CHECK(install.wait_for(std::chrono::milliseconds(100)) == std::future_status::timeout);
  CHECK_FALSE(installing);
  copy.reset();
  REQUIRE(install.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK(installing);

  // While it installs, no pass: such a read goes to the blocking path.
  CHECK(gate.try_pass() == nullptr);
  gate.end_install();
  CHECK(gate.try_pass() != nullptr);
}
