#include "session.hpp"

#include <cctype>
#include <utility>

namespace distdb::cli {

namespace {

using Clock = std::chrono::steady_clock;

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// "Connection refused" -> "connection refused"; leaves "ECONNRESET"-like words alone.
std::string lower_first(std::string s) {
  if (s.size() >= 2 && std::isupper(static_cast<unsigned char>(s[0])) != 0 &&
      std::islower(static_cast<unsigned char>(s[1])) != 0) {
    s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  }
  return s;
}

}  // namespace

std::string format_address(const std::string& host, std::uint16_t port) {
  const bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string describe_transport_error(const Error& error, const std::string& address, Lang lang) {
  std::string text = error.message;
  // distdb::Client says "cannot connect to HOST:PORT: Reason" or "cannot resolve HOST: reason".
  constexpr std::string_view kConnectPrefix = "cannot connect to ";
  if (starts_with(text, kConnectPrefix)) {
    std::string reason = text.substr(kConnectPrefix.size());
    if (const auto colon = reason.rfind(": "); colon != std::string::npos) reason = reason.substr(colon + 2);
    return tr(lang, Msg::cannot_connect, {address, lower_first(reason)});
  }
  if (starts_with(text, "cannot resolve ")) return tr(lang, Msg::cannot_connect, {address, text});
  text = lower_first(text);
  if (error.kind == ErrorKind::outcome_unknown) text += " (" + tr(lang, Msg::outcome_unknown_hint) + ")";
  return text;
}

Session::Session(std::string host, std::uint16_t port, Lang lang, ClientOptions options)
    : lang_(lang), options_(options) {
  node_.host = std::move(host);
  node_.port = port;
}

void Session::set_node(std::string host, std::uint16_t port) {
  node_ = Link{};
  node_.host = std::move(host);
  node_.port = port;
}

Result<Client*> Session::open(Link& link) {
  if (link.client) return &*link.client;
  auto client = Client::connect(link.host, link.port, options_);
  const std::string where = format_address(link.host, link.port);
  if (!client) return Error(client.error().kind, describe_transport_error(client.error(), where, lang_));
  link.client.emplace(std::move(*client));
  link.last_used = Clock::now();
  return &*link.client;
}

Status Session::connect() {
  auto client = open(node_);
  if (!client) return client.error();
  return {};
}

Result<Reply> Session::query_on(Link& link, std::string_view sql) {
  const std::string where = format_address(link.host, link.port);
  auto client = open(link);
  if (!client) return client.error();
  if (Clock::now() - link.last_used > kIdleCheck) {
    // A failed check leaves the client disconnected; the query below then
    // opens a fresh connection (or reports that it cannot).
    (void)(*client)->status();
  }
  // redirect=true: a node that is not the coordinator answers a write with
  // REDIRECT (handled by run()) instead of forwarding it.
  auto reply = (*client)->query(sql, /*redirect=*/true);
  link.last_used = Clock::now();
  if (!reply) return Error(reply.error().kind, describe_transport_error(reply.error(), where, lang_));
  return reply;
}

Outcome Session::run(std::string_view sql, const std::function<void(const PeerConfig&)>& on_redirect) {
  Outcome outcome;
  const auto start = Clock::now();
  Link* link = &node_;
  for (int hop = 0;; ++hop) {
    auto reply = query_on(*link, sql);
    if (!reply) {
      outcome.failure = reply.error();
      break;
    }
    if (reply->status != ReplyStatus::redirect) {
      outcome.reply = std::move(*reply);
      break;
    }
    if (!reply->coordinator) {
      outcome.failure = Error(ErrorKind::invalid_request,
                              tr(lang_, Msg::redirect_without_coordinator, {std::to_string(reply->node)}));
      break;
    }
    const PeerConfig& coordinator = *reply->coordinator;
    if (hop >= kMaxRedirects) {
      outcome.failure =
          Error(ErrorKind::not_coordinator,
                tr(lang_, Msg::too_many_redirects,
                   {std::to_string(kMaxRedirects), std::to_string(coordinator.id),
                    format_address(coordinator.ip, coordinator.port)}));
      break;
    }
    if (on_redirect) on_redirect(coordinator);
    if (coordinator_.host != coordinator.ip || coordinator_.port != coordinator.port) {
      coordinator_ = Link{};
      coordinator_.host = coordinator.ip;
      coordinator_.port = coordinator.port;
    }
    link = &coordinator_;
  }
  outcome.elapsed_sec = std::chrono::duration<double>(Clock::now() - start).count();
  return outcome;
}

Result<Reply> Session::status() {
  auto client = open(node_);
  if (!client) return client.error();
  auto reply = (*client)->status();
  node_.last_used = Clock::now();
  if (!reply) return Error(reply.error().kind, describe_transport_error(reply.error(), address(), lang_));
  return reply;
}

}  // namespace distdb::cli
