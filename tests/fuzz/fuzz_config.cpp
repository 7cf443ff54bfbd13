// The config parser, fed arbitrary bytes: it must return an error or a
// config, never crash. Beyond that, what config.hpp and
// docs/configuration.md promise is checked: errors are of kind config and
// name the source first, and an accepted config has what the node relies on
// (ids, ports and addresses set and unique, heartbeat timeout above the
// interval).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "distdb/config.hpp"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto parsed = distdb::parse_config(text, "fuzz");
  if (!parsed) {
    check(parsed.error().kind == distdb::ErrorKind::config);
    check(parsed.error().message.starts_with("fuzz:"));
    return 0;
  }

  const distdb::Config& c = *parsed;
  check(c.id != 0 && c.port != 0 && !c.ip.empty() && !c.listen_ip.empty());
  check(c.timeouts.heartbeat_timeout_ms > c.timeouts.heartbeat_interval_ms);
  check(c.storage.pool_size > 0);
  // The transport's limits: a 0 could refuse every connection or stall every reply.
  check(c.timeouts.login_timeout_ms > 0 && c.limits.max_connections > 0 &&
        c.limits.max_unauthenticated_connections > 0 && c.limits.max_connections_per_source >= 0 &&
        c.limits.max_unauthenticated_per_source >= 0 && c.limits.max_unauthenticated_message_bytes >= 1024 &&
        c.limits.max_output_bytes_per_connection >= 1024);
  for (std::size_t i = 0; i < c.peers.size(); ++i) {
    const distdb::PeerConfig& p = c.peers[i];
    check(p.id != 0 && p.port != 0 && !p.ip.empty());
    check(p.id != c.id && !(p.ip == c.ip && p.port == c.port));
    for (std::size_t j = 0; j < i; ++j) {
      check(c.peers[j].id != p.id && !(c.peers[j].ip == p.ip && c.peers[j].port == p.port));
    }
  }
  return 0;
}
