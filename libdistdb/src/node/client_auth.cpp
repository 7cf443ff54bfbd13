#include "node/client_auth.hpp"

#include <openssl/crypto.h>

#include "storage/login_check.hpp"
#include "util/log_internal.hpp"
#include "util/text.hpp"

namespace distdb {
namespace {

void cleanse(std::string& s) {
  OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

}  // namespace

Result<std::unique_ptr<ClientAuthenticator>> ClientAuthenticator::create(const Config& config) {
  const SecurityConfig& security = config.security;
  if (security.client_auth == ClientAuth::users) {
    if (security.users.empty()) {
      return Error(ErrorKind::config,
                   "client authentication is \"users\" but no user is configured (security.users); set "
                   "client_auth to \"off\" for a local demo");
    }
    for (const ClientUser& user : security.users) {
      if (!auth::is_valid_user_name(user.name)) {
        return Error(ErrorKind::config, "security.users: a user name must be 1 to " +
                                            std::to_string(auth::kMaxUserBytes) +
                                            " bytes of UTF-8 without control characters");
      }
      if (auto v = auth::parse_verifier(user.verifier); !v) {
        return Error(ErrorKind::config,
                     "security.users: user " + text::quote_for_message(user.name) + ": " + v.error().message);
      }
    }
  }
  if (security.client_auth == ClientAuth::database && config.storage.backend != StorageBackend::mariadb) {
    return Error(ErrorKind::config,
                 "client authentication is \"database\" but the node keeps its data in SQLite, which has no "
                 "logins; configure security.users instead");
  }
  return std::unique_ptr<ClientAuthenticator>(new ClientAuthenticator(config));
}

ClientAuthenticator::ClientAuthenticator(const Config& config)
    : mode_(config.security.client_auth), storage_(config.storage) {
  if (mode_ == ClientAuth::users) {
    // The made-up accounts are keyed by the real users' ServerKeys: secret
    // (whoever has them can pose as the node anyway), and the same on every
    // member listing the same users and across restarts, so that asking
    // several members, or one member twice, shows the same salt for a name
    // that does not exist, as it would for one that does.
    std::string material = "distdb made-up SCRAM accounts";
    bool first = true;
    for (const ClientUser& user : config.security.users) {
      auto v = auth::parse_verifier(user.verifier);  // checked by create()
      if (!v) continue;
      if (first) made_up_iterations_ = v->iterations;
      first = false;
      material.append(reinterpret_cast<const char*>(v->server_key.data()), v->server_key.size());
      users_.insert_or_assign(user.name, std::move(*v));
    }
    made_up_key_ = auth::sha256(reinterpret_cast<const std::uint8_t*>(material.data()), material.size());
    OPENSSL_cleanse(material.data(), material.size());
  }
  if (mode_ == ClientAuth::database) checker_ = std::thread([this] { run_checks(); });
}

ClientAuthenticator::~ClientAuthenticator() {
  stop();
}

std::string_view ClientAuthenticator::mechanism() const {
  switch (mode_) {
    case ClientAuth::users:
      return auth::kScramSha256;
    case ClientAuth::database:
      return auth::kPlain;
    case ClientAuth::off:
      return "off";
  }
  return "off";
}

auth::ScramServer::Account ClientAuthenticator::lookup(std::string_view user) const {
  if (auto it = users_.find(user); it != users_.end()) return {it->second, true};
  auth::ScramServer::Account made_up;
  const auto derive = [&](std::string_view label) {
    return auth::hmac_sha256(made_up_key_.data(), made_up_key_.size(),
                             std::string(label) + std::string(user));
  };
  const auth::Key salt = derive("salt:");
  made_up.verifier.salt.assign(salt.begin(), salt.begin() + auth::kSaltBytes);
  made_up.verifier.iterations = made_up_iterations_;
  made_up.verifier.stored_key = derive("stored:");
  made_up.verifier.server_key = derive("server:");
  made_up.known = false;
  return made_up;
}

bool ClientAuthenticator::check_database_login(std::string user, std::string password,
                                               std::function<void(Status)> done) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || !checker_.joinable() || checks_.size() >= kMaxPendingChecks) {
      cleanse(password);
      return false;
    }
    checks_.push_back(Check{std::move(user), std::move(password), std::move(done)});
  }
  wake_.notify_one();
  return true;
}

void ClientAuthenticator::run_checks() {
  for (;;) {
    Check check;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !checks_.empty(); });
      if (stopping_) return;
      check = std::move(checks_.front());
      checks_.pop_front();
    }
    Status result = distdb::check_database_login(storage_, check.user, check.password);
    cleanse(check.password);
    check.done(std::move(result));
  }
}

void ClientAuthenticator::log_failure(std::uint64_t connection, std::string_view user,
                                      const std::string& why) {
  std::uint64_t left_out = 0;
  {
    std::lock_guard lock(log_mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (now - log_window_start_ >= kLogWindow) {
      log_window_start_ = now;
      logged_in_window_ = 0;
    }
    if (logged_in_window_ >= kLogBurst) {
      ++left_out_;
      return;
    }
    ++logged_in_window_;
    left_out = std::exchange(left_out_, 0);
  }
  DISTDB_LOG(warn) << "[!] connection " << connection << ": authentication failed"
                   << (user.empty() ? std::string() : " for user " + text::quote_for_message(user)) << ": "
                   << why
                   << (left_out > 0 ? " (" + std::to_string(left_out) + " more failures were not logged)"
                                    : "");
}

void ClientAuthenticator::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    for (Check& c : checks_) cleanse(c.password);
    checks_.clear();
  }
  wake_.notify_all();
  if (checker_.joinable()) checker_.join();
}

}  // namespace distdb
