#include "util/text.hpp"

namespace distdb::text {

namespace {

constexpr char kBase64Alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_digit(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

// ---------------------------------------------------------------- UTF-8

// Length of the well-formed UTF-8 sequence starting at s[i], or 0 when it is
// not one (truncated, overlong, a surrogate, above U+10FFFF).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto lead = static_cast<unsigned char>(s[i]);
  if (lead < 0x80) return 1;
  struct Shape {
    unsigned char mask, marker, payload;
    std::size_t len;
    std::uint32_t min;  // smallest code point needing this length (shorter is overlong)
  };
  static constexpr Shape kShapes[] = {
      {0xE0, 0xC0, 0x1F, 2, 0x80}, {0xF0, 0xE0, 0x0F, 3, 0x800}, {0xF8, 0xF0, 0x07, 4, 0x10000}};
  const Shape* shape = nullptr;
  for (const Shape& candidate : kShapes) {
    if ((lead & candidate.mask) == candidate.marker) shape = &candidate;
  }
  if (shape == nullptr) return 0;
  const std::size_t len = shape->len;
  const std::uint32_t min = shape->min;
  std::uint32_t cp = lead & shape->payload;
  if (s.size() - i < len) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0u) != 0x80u) return 0;
    cp = (cp << 6) | (b & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

bool is_valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t len = utf8_sequence_length(s, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

// For human-readable strings (messages, column names): a database may hand
// us an error message in latin1; replacing bad bytes with U+FFFD keeps the
// reply valid JSON at the cost of those characters.
std::string to_valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t len = utf8_sequence_length(s, i);
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.data() + i, len);
      i += len;
    }
  }
  return out;
}

// ---------------------------------------------------------------- base64

std::string base64_encode(const std::uint8_t* data, std::size_t size) {
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const std::uint32_t v = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8) | data[i + 2];
    out += kBase64Alphabet[(v >> 18) & 0x3F];
    out += kBase64Alphabet[(v >> 12) & 0x3F];
    out += kBase64Alphabet[(v >> 6) & 0x3F];
    out += kBase64Alphabet[v & 0x3F];
  }
  const std::size_t rest = size - i;
  if (rest > 0) {
    std::uint32_t v = std::uint32_t{data[i]} << 16;
    if (rest == 2) v |= std::uint32_t{data[i + 1]} << 8;
    out += kBase64Alphabet[(v >> 18) & 0x3F];
    out += kBase64Alphabet[(v >> 12) & 0x3F];
    out += rest == 2 ? kBase64Alphabet[(v >> 6) & 0x3F] : '=';
    out += '=';
  }
  return out;
}


// Strict: padded to a multiple of four, padding only at the end.
std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view s) {
  if (s.size() % 4 != 0) return std::nullopt;
  std::size_t pad = 0;
  if (!s.empty() && s.back() == '=') pad = s.size() >= 2 && s[s.size() - 2] == '=' ? 2 : 1;
  std::vector<std::uint8_t> out;
  out.reserve(s.size() / 4 * 3);
  for (std::size_t i = 0; i < s.size(); i += 4) {
    const bool last = i + 4 == s.size();
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const bool padding = last && k >= 4 - pad;
      const int d = padding ? 0 : base64_digit(s[i + k]);
      if (d < 0) return std::nullopt;
      v = (v << 6) | static_cast<std::uint32_t>(d);
    }
    out.push_back(static_cast<std::uint8_t>(v >> 16));
    if (!last || pad < 2) out.push_back(static_cast<std::uint8_t>(v >> 8));
    if (!last || pad < 1) out.push_back(static_cast<std::uint8_t>(v));
  }
  return out;
}

std::string quote_for_message(std::string_view s) {
  constexpr std::size_t kMax = 40;
  std::string out = "'";
  for (std::size_t i = 0; i < s.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  if (s.size() > kMax) out += "...";
  out += "'";
  return out;
}

}  // namespace distdb::text
