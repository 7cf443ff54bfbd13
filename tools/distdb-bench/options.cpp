#include "options.hpp"

#include <charconv>

namespace distdb::bench {

const char* to_string(TargetKind kind) {
  switch (kind) {
    case TargetKind::direct:
      return "direct";
    case TargetKind::cluster:
      return "cluster";
    case TargetKind::two_phase:
      return "two-phase";
  }
  return "?";
}

const char* to_string(WorkloadKind kind) {
  switch (kind) {
    case WorkloadKind::insert:
      return "insert";
    case WorkloadKind::point_select:
      return "point-select";
    case WorkloadKind::mixed:
      return "mixed";
  }
  return "?";
}

std::optional<Endpoint> parse_endpoint(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535) {
    return std::nullopt;
  }
  return Endpoint{std::string(text.substr(0, colon)), static_cast<std::uint16_t>(port)};
}

}  // namespace distdb::bench
