// distdb-node: runs one node of a distdb cluster.
//
//   distdb-node config.json [--log-level debug]
//   distdb-node --hash-password [--iterations N]   a password entry for security.users
//
// Exit status: 0 after a clean stop (SIGINT/SIGTERM), 1 when the node cannot
// start (port in use, ...), 2 for a bad command line or configuration.
#include <CLI/CLI.hpp>

#include <pthread.h>
#include <unistd.h>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "auth/scram.hpp"
#include "distdb/distdb.hpp"
#include "terminal.hpp"
#include "translation.hpp"
#include "util/log_internal.hpp"

namespace {

using distdb::tools::translate;

constexpr int kExitStartFailed = 1;
constexpr int kExitUsage = 2;

// The prototype printed its startup lines in Portuguese; its users get them
// that way again under a Portuguese locale (po/pt.po). The rest of the log
// stays English: it is read by operators' tools and by search engines.
std::string startup_line(const char* pattern, const std::vector<std::string>& args) {
  return distdb::tools::fill_placeholders(translate(pattern), args);
}

std::string coordinator_line(const distdb::Node& node) {
  if (auto c = node.coordinator()) return startup_line(N_("[*] Current coordinator: Node {0}"), {std::to_string(*c)});
  return translate(N_("[*] Current coordinator: none yet (waiting for an election)"));
}

// --hash-password: reads a password (twice, without echo, on a terminal;
// one line otherwise) and prints its SCRAM-SHA-256 verifier, with a fresh
// random salt, for security.users.
int hash_password(int iterations) {
  const bool terminal = isatty(STDIN_FILENO) == 1;
  auto password =
      distdb::tools::read_secret_line(STDIN_FILENO, std::cerr, terminal ? translate(N_("Password: ")) : "");
  if (!password) {
    std::fprintf(stderr, "distdb-node: --hash-password: no password read\n");
    return kExitUsage;
  }
  if (terminal) {
    auto again = distdb::tools::read_secret_line(STDIN_FILENO, std::cerr, translate(N_("Password again: ")));
    if (!again || *again != *password) {
      std::fprintf(stderr, "%s\n",
                   translate(N_("distdb-node: the two passwords differ; nothing was printed")));
      return kExitUsage;
    }
  }
  if (password->empty() || password->size() > distdb::auth::kMaxPasswordBytes) {
    std::fprintf(stderr, "distdb-node: --hash-password: the password must be 1 to %zu bytes\n",
                 distdb::auth::kMaxPasswordBytes);
    return kExitUsage;
  }
  auto verifier = distdb::auth::hash_password(*password, iterations);
  if (!verifier) {
    std::fprintf(stderr, "distdb-node: --hash-password: %s\n", verifier.error().message.c_str());
    return kExitStartFailed;
  }
  std::printf("%s\n", verifier->c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  distdb::tools::init_translation();
  CLI::App app{"distdb-node: one node of a distdb cluster"};
  std::string config_path;
  std::string log_level_text;
  bool hash = false;
  int iterations = distdb::auth::kDefaultIterations;
  app.add_option("config", config_path, "Path to the node's config.json");
  app.add_option("--log-level", log_level_text, "trace, debug, info, warn, error or off (overrides the config)");
  app.add_flag(
      "--hash-password", hash,
      "Read a password from standard input (asked twice, hidden, on a terminal) and print the entry for "
      "security.users: its SCRAM-SHA-256 verifier, with a fresh random salt");
  app.add_option("--iterations", iterations,
                 "--hash-password: PBKDF2 iterations (default " +
                     std::to_string(distdb::auth::kDefaultIterations) + ")")
      ->check(CLI::Range(distdb::auth::kMinIterations, distdb::auth::kMaxIterations));
  app.set_version_flag("--version", std::string("distdb-node ") + DISTDB_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  if (hash) return hash_password(iterations);
  if (config_path.empty()) {
    std::fprintf(stderr,
                 "distdb-node: a config file is required (distdb-node config.json; --help for more)\n");
    return kExitUsage;
  }

  auto config = distdb::load_config(config_path);
  if (!config) {
    std::fprintf(stderr, "distdb-node: %s\n", config.error().message.c_str());
    return kExitUsage;
  }
  if (!log_level_text.empty()) {
    auto level = distdb::parse_log_level(log_level_text);
    if (!level) {
      std::fprintf(stderr, "distdb-node: --log-level: unknown level '%s' (trace, debug, info, warn, error, off)\n",
                   log_level_text.c_str());
      return kExitUsage;
    }
    config->log_level = *level;
  }
  distdb::set_log_level(config->log_level);
  for (const auto& warning : config->warnings) DISTDB_LOG(warn) << config_path << ": " << warning;

  // Block the stop signals in every thread (the node's threads inherit this
  // mask) and wait for them here, so that shutdown runs in plain code rather
  // than in a signal handler.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  distdb::Node node(*config);
  if (auto st = node.start(); !st) {
    std::fprintf(stderr, "distdb-node: cannot start node %u: %s\n", config->id, st.error().message.c_str());
    return kExitStartFailed;
  }
  DISTDB_LOG(info) << startup_line(N_("[*] Node {0} started on {1}"),
                                   {std::to_string(node.id()), config->ip + ":" + std::to_string(node.port())});
  DISTDB_LOG(info) << coordinator_line(node);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  DISTDB_LOG(info) << "[*] Received " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ", stopping";
  node.stop();
  DISTDB_LOG(info) << "[*] Node " << node.id() << " stopped";
  return 0;
}
