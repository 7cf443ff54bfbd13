// Client logins on a node (security.client_auth; docs/security.md): who the
// configured users are, the made-up accounts that hide who they are not,
// the checks of MariaDB logins (on a thread of their own: each opens a
// connection to the database), and a log of failures that a flood cannot
// fill.
//
// The per-connection state (an exchange half done, failures so far) stays
// with the node's sessions; this class holds what is shared.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "auth/scram.hpp"
#include "distdb/config.hpp"
#include "distdb/error.hpp"

namespace distdb {

class ClientAuthenticator {
 public:
  // Failed logins on one connection before the node closes it.
  static constexpr int kMaxFailuresPerConnection = 3;
  // Database logins waiting to be checked, at most.
  static constexpr std::size_t kMaxPendingChecks = 64;

  // Errors (kind config): users mode without users or with a malformed
  // verifier, database mode without MariaDB storage.
  static Result<std::unique_ptr<ClientAuthenticator>> create(const Config& config);
  ~ClientAuthenticator();
  ClientAuthenticator(const ClientAuthenticator&) = delete;
  ClientAuthenticator& operator=(const ClientAuthenticator&) = delete;

  ClientAuth mode() const { return mode_; }
  // What a client must use: "SCRAM-SHA-256", "PLAIN", or "off".
  std::string_view mechanism() const;

  // The account of `user` for a SCRAM exchange: its verifier, or a made-up
  // one (salt and iteration count stable for that name, keys no password
  // matches) with known = false.
  auth::ScramServer::Account lookup(std::string_view user) const;

  // Database mode: checks `user`/`password` by logging in to the node's
  // MariaDB, on the checker thread, which then calls `done` (OK, or kind
  // unauthenticated / storage_unavailable). False, without calling `done`,
  // when kMaxPendingChecks are already waiting or the checker has stopped.
  bool check_database_login(std::string user, std::string password, std::function<void(Status)> done);

  // Logs a failed login at warn: at most kLogBurst lines per kLogWindow
  // across the node, then one line saying how many were left out.
  void log_failure(std::uint64_t connection, std::string_view user, const std::string& why);

  // Stops the checker thread; checks still waiting are dropped.
  void stop();

 private:
  explicit ClientAuthenticator(const Config& config);

  static constexpr int kLogBurst = 10;
  static constexpr std::chrono::seconds kLogWindow{10};

  struct Check {
    std::string user;
    std::string password;
    std::function<void(Status)> done;
  };
  void run_checks();

  ClientAuth mode_;
  StorageConfig storage_;
  std::map<std::string, auth::Verifier, std::less<>> users_;
  auth::Key made_up_key_{};  // keys the made-up accounts
  int made_up_iterations_ = auth::kDefaultIterations;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Check> checks_;  // guarded by mutex_
  bool stopping_ = false;     // guarded by mutex_
  std::thread checker_;

  std::mutex log_mutex_;
  std::chrono::steady_clock::time_point log_window_start_{};  // guarded by log_mutex_
  int logged_in_window_ = 0;                                  // guarded by log_mutex_
  std::uint64_t left_out_ = 0;                                // guarded by log_mutex_
};

}  // namespace distdb
