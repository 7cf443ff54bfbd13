// Text helpers shared by the wire codecs: UTF-8 validation (JSON strings
// must be valid UTF-8) and base64 (how bytes travel in JSON).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace distdb::text {

// Length of the well-formed UTF-8 sequence starting at s[i], or 0 when it is
// not one (truncated, overlong, a surrogate, above U+10FFFF).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i);
bool is_valid_utf8(std::string_view s);
// `s` with every byte that is not part of valid UTF-8 replaced by U+FFFD.
std::string to_valid_utf8(std::string_view s);

// Untrusted text quoted for an error message: printable ASCII only, bounded.
std::string quote_for_message(std::string_view s);

std::string base64_encode(const std::uint8_t* data, std::size_t size);
inline std::string base64_encode(std::string_view bytes) {
  return base64_encode(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}
// Strict: padded to a multiple of four, padding only at the end.
std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view s);

}  // namespace distdb::text
