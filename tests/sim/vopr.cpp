// distdb-sim: the deterministic simulator's command line (VOPR-style).
//
//   distdb-sim --seed S [--nodes 3|5] [--ticks T] [--prepare-durable 0|1] [--ship-effects 0|1] [--verbose]
//   distdb-sim --seeds N [--from S] [...]
//
// Every fault rate comes from the seed (printed on failure with the exact
// command that reproduces the run). Exit codes: 0 all runs passed, 1 usage,
// 2 crash (an exception or an abort in the system under test), 3 safety
// violation, 4 liveness violation.
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>

#include "simulation.hpp"

using namespace distdb::sim;

namespace {

// What to print if the process aborts (an assert in the core) mid-run.
char g_abort_message[1024];

extern "C" void on_fatal_signal(int sig) {
  const char* what = sig == SIGABRT ? "\nCRASH (abort) in " : "\nCRASH (fatal signal) in ";
  (void)!write(2, what, std::strlen(what));
  (void)!write(2, g_abort_message, std::strlen(g_abort_message));
  _exit(kCrash);
}

void set_abort_message(const std::string& text) {
  std::snprintf(g_abort_message, sizeof g_abort_message, "%s\n", text.c_str());
}

void usage() {
  std::fprintf(stderr,
               "usage: distdb-sim (--seed S | --seeds N [--from S]) [--nodes 3|5] [--ticks T]\n"
               "                  [--prepare-durable 0|1] [--ship-effects 0|1] [--verbose] [--twice]\n"
               "                  [--no-duplicates]\n"
               "  --twice          run each seed twice and compare the trace hashes (determinism)\n"
               "  --no-duplicates  the network never duplicates a message\n");
}

bool parse_u64(const char* text, std::uint64_t& out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0') return false;
  out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string program = argv[0];
  std::uint64_t seed = 1, count = 1;
  bool many = false, twice = false;
  SimParams base;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](std::uint64_t& out) {
      if (i + 1 >= argc || !parse_u64(argv[i + 1], out)) {
        std::fprintf(stderr, "distdb-sim: %s needs a number\n", arg.c_str());
        std::exit(kUsage);
      }
      ++i;
    };
    std::uint64_t v = 0;
    if (arg == "--seed") {
      value(seed);
    } else if (arg == "--seeds") {
      value(count);
      many = true;
    } else if (arg == "--from") {
      value(seed);
    } else if (arg == "--nodes") {
      value(v);
      if (v != 3 && v != 5) {
        std::fprintf(stderr, "distdb-sim: --nodes must be 3 or 5\n");
        return kUsage;
      }
      base.nodes = v;
    } else if (arg == "--ticks") {
      value(base.ticks);
    } else if (arg == "--prepare-durable") {
      value(v);
      base.prepare_durable = v != 0 ? 1 : 0;
    } else if (arg == "--ship-effects") {
      value(v);
      base.ship_effects = v != 0 ? 1 : 0;
    } else if (arg == "--verbose") {
      base.verbose = true;
    } else if (arg == "--no-duplicates") {
      base.no_duplicates = true;
    } else if (arg == "--twice") {
      twice = true;
    } else if (arg == "--help" || arg == "-h") {
      usage();
      return kOk;
    } else {
      usage();
      return kUsage;
    }
  }
  if (!many) count = 1;

  std::signal(SIGABRT, on_fatal_signal);
  std::signal(SIGSEGV, on_fatal_signal);

  std::uint64_t passed = 0, writes = 0, acked = 0;
  int worst = kOk;
  for (std::uint64_t n = 0; n < count; ++n) {
    SimParams params = base;
    params.seed = seed + n;
    {
      distdb::sim::Rng rng(params.seed);
      const FaultParams f = derive_faults(params, rng);
      set_abort_message("seed " + std::to_string(params.seed) + ": " + f.describe() +
                        "\n  reproduce: " + repro_command(program, params, f));
    }
    SimResult r = run_simulation(params);
    if (r.code == kOk && twice) {
      SimParams quiet = params;
      quiet.verbose = false;
      const SimResult again = run_simulation(quiet);
      if (again.trace_hash != r.trace_hash || again.trace_events != r.trace_events) {
        r.code = kCrash;
        r.message = "non-deterministic: trace hash " + std::to_string(r.trace_hash) + " then " +
                    std::to_string(again.trace_hash);
      }
    }
    writes += r.writes;
    acked += r.acked;
    if (r.code == kOk) {
      ++passed;
      if (!many || params.verbose) {
        std::printf("seed %llu: ok (%s) ticks=%llu writes=%llu acked=%llu failed=%llu unknown=%llu "
                    "unanswered=%llu crashes=%llu partitions=%llu trace=%016llx events=%llu\n",
                    static_cast<unsigned long long>(params.seed), r.faults.describe().c_str(),
                    static_cast<unsigned long long>(r.ticks), static_cast<unsigned long long>(r.writes),
                    static_cast<unsigned long long>(r.acked), static_cast<unsigned long long>(r.failed),
                    static_cast<unsigned long long>(r.unknown), static_cast<unsigned long long>(r.unanswered),
                    static_cast<unsigned long long>(r.crashes), static_cast<unsigned long long>(r.partitions),
                    static_cast<unsigned long long>(r.trace_hash),
                    static_cast<unsigned long long>(r.trace_events));
      }
      continue;
    }
    const char* kind = r.code == kCrash ? "CRASH" : r.code == kSafety ? "SAFETY VIOLATION" : "LIVENESS VIOLATION";
    std::printf("seed %llu: %s\n  faults: %s\n%s\n  last events:\n%s  cluster at t=%llu:\n%s  reproduce: %s\n",
                static_cast<unsigned long long>(params.seed), kind, r.faults.describe().c_str(), r.message.c_str(),
                r.recent_trace.c_str(), static_cast<unsigned long long>(r.ticks), r.cluster_state.c_str(),
                repro_command(program, params, r.faults).c_str());
    std::fflush(stdout);
    if (worst == kOk) worst = r.code;
  }
  if (many) {
    std::printf("%llu/%llu seeds passed (from %llu); %llu writes, %llu acknowledged\n",
                static_cast<unsigned long long>(passed), static_cast<unsigned long long>(count),
                static_cast<unsigned long long>(seed), static_cast<unsigned long long>(writes),
                static_cast<unsigned long long>(acked));
  }
  return worst;
}
