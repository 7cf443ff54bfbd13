// The figures of a run, for people (text) or for programs (one JSON object).
#pragma once

#include <cstdio>
#include <string>

#include "options.hpp"
#include "runner.hpp"

namespace distdb::bench {

// Whether the run counts as a success: it took place and at least one
// statement succeeded (errors alongside successes are reported, not fatal).
bool run_succeeded(const RunResult& run);

void print_text(std::FILE* out, const Options& options, const RunResult& run);

// One JSON object, on one line: the parameters, and every figure (latencies
// in microseconds).
std::string to_json(const Options& options, const RunResult& run);

}  // namespace distdb::bench
