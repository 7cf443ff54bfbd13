#include "session.hpp"

#include <algorithm>
#include <cctype>
#include <thread>
#include <utility>

namespace distdb::cli {

namespace {

using Clock = std::chrono::steady_clock;

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// A reply meaning "nothing was done, the cluster is changing coordinator".
bool failover_reply(const Reply& reply) {
  return reply.status == ReplyStatus::error && reply.error &&
         (reply.error->kind == ErrorKind::no_quorum || reply.error->kind == ErrorKind::not_coordinator);
}

// "Connection refused" -> "connection refused"; leaves "ECONNRESET"-like words alone.
std::string lower_first(std::string s) {
  if (s.size() >= 2 && std::isupper(static_cast<unsigned char>(s[0])) != 0 &&
      std::islower(static_cast<unsigned char>(s[1])) != 0) {
    s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  }
  return s;
}

}  // namespace

std::string describe_transport_error(const Error& error, const std::string& address) {
  std::string text = error.message;
  if (error.kind == ErrorKind::config) {
    // distdb::Client names its TLS options; the user gave them as flags.
    for (const auto& [option, flag] :
         {std::pair<std::string_view, std::string_view>{"tls.ca_file", "--tls-ca"},
          {"tls.certificate_file", "--tls-cert"},
          {"tls.key_file", "--tls-key"}}) {
      for (auto at = text.find(option); at != std::string::npos; at = text.find(option, at + flag.size())) {
        text.replace(at, option.size(), flag);
      }
    }
    return text;
  }
  // distdb::Client says "cannot connect to HOST:PORT: Reason" or "cannot resolve HOST: reason".
  constexpr std::string_view kConnectPrefix = "cannot connect to ";
  if (starts_with(text, kConnectPrefix)) {
    std::string reason = text.substr(kConnectPrefix.size());
    if (const auto colon = reason.rfind(": "); colon != std::string::npos) reason = reason.substr(colon + 2);
    return tr(Msg::cannot_connect, {address, lower_first(reason)});
  }
  if (starts_with(text, "cannot resolve ")) return tr(Msg::cannot_connect, {address, text});
  text = lower_first(text);
  if (error.kind == ErrorKind::outcome_unknown) text += " (" + tr(Msg::outcome_unknown_hint) + ")";
  return text;
}

Session::Session(std::string host, std::uint16_t port, ClientOptions options)
    : options_(options) {
  node_.host = std::move(host);
  node_.port = port;
}

void Session::set_credentials(std::string user, std::string password) {
  options_.user = std::move(user);
  options_.password = std::move(password);
  node_.client.reset();
  coordinator_ = Link{};
}

void Session::set_node(std::string host, std::uint16_t port) {
  node_ = Link{};
  node_.host = std::move(host);
  node_.port = port;
  members_.clear();  // maybe another cluster: learned again at connect
}

void Session::learn_members(const Reply& status) {
  if (status.status != ReplyStatus::ok) return;
  std::vector<PeerConfig> learned;
  for (const MemberStatus& m : parse_status(status.result)) {
    if (m.has_address()) learned.push_back(m.peer());
  }
  if (!learned.empty()) members_ = std::move(learned);
}

bool Session::fail_over() {
  const std::string gone = address();
  for (const PeerConfig& member : members_) {
    if (member.ip == node_.host && member.port == node_.port) continue;
    auto client = Client::connect(member.ip, member.port, options_);
    if (!client) continue;
    auto reply = client->status();
    if (!reply || reply->status != ReplyStatus::ok) continue;
    const PeerConfig chosen = member;  // members_ is replaced below
    node_ = Link{};
    node_.host = chosen.ip;
    node_.port = chosen.port;
    node_.client.emplace(std::move(*client));
    node_.last_used = Clock::now();
    learn_members(*reply);
    if (notify_) {
      notify_(tr(Msg::moved_to_member,
                 {gone, std::to_string(chosen.id), format_address(chosen.ip, chosen.port)}));
    }
    return true;
  }
  return false;
}

Result<Client*> Session::open(Link& link) {
  if (link.client) return &*link.client;
  auto client = Client::connect(link.host, link.port, options_);
  const std::string where = format_address(link.host, link.port);
  if (!client) return Error(client.error().kind, describe_transport_error(client.error(), where));
  link.client.emplace(std::move(*client));
  link.last_used = Clock::now();
  return &*link.client;
}

Status Session::connect() {
  const bool fresh = !node_.client;
  auto client = open(node_);
  if (!client) return client.error();
  if (fresh) {
    // Learn the members now, so that a node gone later can be replaced.
    auto reply = (*client)->status();
    if (reply && reply->status == ReplyStatus::error && reply->error &&
        reply->error->kind == ErrorKind::unavailable) {
      // The node turned the connection away ("too many connections", "this
      // node accepts TLS connections only") and closes it: say so now.
      node_.client.reset();
      return Error(ErrorKind::unavailable, tr(Msg::cannot_connect, {address(), reply->error->message}));
    }
    if (reply && reply->status == ReplyStatus::error && reply->error &&
        reply->error->kind == ErrorKind::unauthenticated) {
      node_.client.reset();
      return *reply->error;
    }
    if (reply) {
      learn_members(*reply);
    } else if (options_.tls.enabled && reply.error().kind == ErrorKind::unavailable) {
      // Over TLS 1.3 a node that refuses the client's certificate (or its
      // absence) says so just after the handshake: this is where it shows.
      node_.client.reset();
      return Error(ErrorKind::unavailable, describe_transport_error(reply.error(), address()));
    }
  }
  return {};
}

Result<Reply> Session::query_on(Link& link, std::string_view sql) {
  const std::string where = format_address(link.host, link.port);
  auto client = open(link);
  if (!client) return client.error();
  if (Clock::now() - link.last_used > kIdleCheck) {
    // A failed check leaves the client disconnected; the query below then
    // opens a fresh connection (or reports that it cannot).
    // A successful check refreshes the members.
    if (auto check = (*client)->status()) learn_members(*check);
  }
  // redirect=true: a node that is not the coordinator answers a write with
  // REDIRECT (handled by run()) instead of forwarding it.
  auto reply = (*client)->query(sql, /*redirect=*/true);
  link.last_used = Clock::now();
  if (!reply) return Error(reply.error().kind, describe_transport_error(reply.error(), where));
  return reply;
}

Result<Reply> Session::run_once(std::string_view sql, const std::function<void(const PeerConfig&)>& on_redirect,
                                bool& coordinator_failed) {
  Link* link = &node_;
  for (int hop = 0;; ++hop) {
    auto reply = query_on(*link, sql);
    if (!reply) {
      coordinator_failed = link == &coordinator_;
      return reply;
    }
    if (reply->status != ReplyStatus::redirect) return reply;
    if (!reply->coordinator) {
      return Error(ErrorKind::invalid_request,
                   tr(Msg::redirect_without_coordinator, {std::to_string(reply->node)}));
    }
    const PeerConfig& coordinator = *reply->coordinator;
    if (hop >= kMaxRedirects) {
      return Error(ErrorKind::not_coordinator,
                   tr(Msg::too_many_redirects,
                      {std::to_string(kMaxRedirects), std::to_string(coordinator.id),
                       format_address(coordinator.ip, coordinator.port)}));
    }
    if (on_redirect) on_redirect(coordinator);
    if (coordinator_.host != coordinator.ip || coordinator_.port != coordinator.port) {
      coordinator_ = Link{};
      coordinator_.host = coordinator.ip;
      coordinator_.port = coordinator.port;
    }
    link = &coordinator_;
  }
}

Outcome Session::run(std::string_view sql, const std::function<void(const PeerConfig&)>& on_redirect) {
  Outcome outcome;
  const auto start = Clock::now();
  const auto retry_until = start + kFailoverRetry;
  auto backoff = std::chrono::milliseconds(100);
  bool failed_over = false;
  bool retried = false;
  // Waits before another try while the retry window lasts; false when it is over.
  auto wait_and_retry = [&] {
    if (Clock::now() + backoff >= retry_until) return false;
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
    retried = true;
    return true;
  };
  for (;;) {
    bool coordinator_failed = false;
    auto reply = run_once(sql, on_redirect, coordinator_failed);
    if (!reply) {
      // ErrorKind::unavailable from query_on: nothing of the statement was sent.
      if (reply.error().kind == ErrorKind::unavailable) {
        if (coordinator_failed) {
          // The coordinator went away: ask the node again (it redirects to
          // the next coordinator once one is elected).
          coordinator_ = Link{};
          if (wait_and_retry()) continue;
        } else if (!failed_over && members_.size() > 1) {
          failed_over = true;
          if (fail_over()) continue;
          outcome.failure = Error(ErrorKind::unavailable, tr(Msg::no_member_reachable, {reply.error().message}));
          break;
        }
      }
      outcome.failure = reply.error();
      break;
    }
    if (failover_reply(*reply)) {
      if (wait_and_retry()) continue;
      if (retried) {
        const Error& e = *reply->error;
        const auto secs = std::chrono::duration_cast<std::chrono::seconds>(kFailoverRetry).count();
        outcome.failure = Error(e.kind, tr(Msg::failover_in_progress, {e.message, std::to_string(secs)}));
        break;
      }
    }
    outcome.reply = std::move(*reply);
    break;
  }
  outcome.elapsed_sec = std::chrono::duration<double>(Clock::now() - start).count();
  return outcome;
}

Result<Reply> Session::status() {
  auto client = open(node_);
  if (!client) return client.error();
  auto reply = (*client)->status();
  node_.last_used = Clock::now();
  if (reply) learn_members(*reply);
  if (!reply) return Error(reply.error().kind, describe_transport_error(reply.error(), address()));
  return reply;
}

Result<Reply> Session::check() {
  auto client = open(node_);
  if (!client) return client.error();
  auto reply = (*client)->check();
  node_.last_used = Clock::now();
  if (!reply) return Error(reply.error().kind, describe_transport_error(reply.error(), address()));
  return reply;
}

}  // namespace distdb::cli
