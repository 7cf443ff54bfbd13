#include "table_printer.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <system_error>
#include <type_traits>
#include <vector>

namespace distdb::cli {

namespace {

constexpr std::string_view kEllipsis = "\xE2\x80\xA6";  // U+2026, one column wide
constexpr char kHexDigits[] = "0123456789ABCDEF";

// One UTF-8 sequence at `pos`: its code point and length, or nullopt for an
// invalid byte (then the caller skips exactly one byte).
struct Decoded {
  char32_t cp;
  std::size_t len;
};

std::optional<Decoded> decode_utf8(std::string_view s, std::size_t pos) {
  const auto b0 = static_cast<unsigned char>(s[pos]);
  if (b0 < 0x80) return Decoded{b0, 1};
  std::size_t len = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if ((b0 & 0xE0U) == 0xC0U) {
    len = 2;
    cp = b0 & 0x1FU;
    min = 0x80;
  } else if ((b0 & 0xF0U) == 0xE0U) {
    len = 3;
    cp = b0 & 0x0FU;
    min = 0x800;
  } else if ((b0 & 0xF8U) == 0xF0U) {
    len = 4;
    cp = b0 & 0x07U;
    min = 0x10000;
  } else {
    return std::nullopt;
  }
  if (pos + len > s.size()) return std::nullopt;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[pos + k]);
    if ((b & 0xC0U) != 0x80U) return std::nullopt;
    cp = (cp << 6U) | (b & 0x3FU);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
  return Decoded{cp, len};
}

bool in_ranges(char32_t cp, const std::pair<char32_t, char32_t>* ranges, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    if (cp >= ranges[i].first && cp <= ranges[i].second) return true;
  }
  return false;
}

// Zero-width: combining marks, zero-width space/joiners, variation selectors.
constexpr std::pair<char32_t, char32_t> kZeroWidth[] = {
    {0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x0610, 0x061A}, {0x064B, 0x065F},
    {0x0E31, 0x0E31}, {0x0E34, 0x0E3A}, {0x0E47, 0x0E4E}, {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF},
    {0x200B, 0x200F}, {0x20D0, 0x20FF}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F}, {0xE0100, 0xE01EF},
};

// Two columns: East Asian wide and full-width forms, most emoji.
constexpr std::pair<char32_t, char32_t> kWide[] = {
    {0x1100, 0x115F},   {0x231A, 0x231B},   {0x2329, 0x232A},   {0x23E9, 0x23EC},  {0x23F0, 0x23F0},
    {0x23F3, 0x23F3},   {0x25FD, 0x25FE},   {0x2614, 0x2615},   {0x2648, 0x2653},  {0x267F, 0x267F},
    {0x2693, 0x2693},   {0x26A1, 0x26A1},   {0x26AA, 0x26AB},   {0x26BD, 0x26BE},  {0x26C4, 0x26C5},
    {0x26CE, 0x26CE},   {0x26D4, 0x26D4},   {0x26EA, 0x26EA},   {0x26F2, 0x26F3},  {0x26F5, 0x26F5},
    {0x26FA, 0x26FA},   {0x26FD, 0x26FD},   {0x2705, 0x2705},   {0x270A, 0x270B},  {0x2728, 0x2728},
    {0x274C, 0x274C},   {0x274E, 0x274E},   {0x2753, 0x2755},   {0x2757, 0x2757},  {0x2795, 0x2797},
    {0x27B0, 0x27B0},   {0x27BF, 0x27BF},   {0x2B1B, 0x2B1C},   {0x2B50, 0x2B50},  {0x2B55, 0x2B55},
    {0x2E80, 0x303E},   {0x3041, 0x33FF},   {0x3400, 0x4DBF},   {0x4E00, 0x9FFF},  {0xA000, 0xA4CF},
    {0xA960, 0xA97F},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},   {0xFE10, 0xFE19},  {0xFE30, 0xFE6F},
    {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},   {0x16FE0, 0x16FE4}, {0x17000, 0x18AFF}, {0x1B000, 0x1B2FF},
    {0x1F004, 0x1F004}, {0x1F0CF, 0x1F0CF}, {0x1F18E, 0x1F18E}, {0x1F191, 0x1F19A}, {0x1F200, 0x1F2FF},
    {0x1F300, 0x1F64F}, {0x1F680, 0x1F6FF}, {0x1F7E0, 0x1F7EB}, {0x1F90C, 0x1F9FF}, {0x1FA70, 0x1FAFF},
    {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD},
};

std::size_t codepoint_width(char32_t cp) {
  if (in_ranges(cp, kZeroWidth, std::size(kZeroWidth))) return 0;
  if (in_ranges(cp, kWide, std::size(kWide))) return 2;
  return 1;
}

// Characters that would break a table line or reorder it visually.
bool needs_escape(char32_t cp) {
  return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
         (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

void append_hex_byte(std::string& out, unsigned byte) {
  out += "\\x";
  out += kHexDigits[(byte >> 4U) & 0xFU];
  out += kHexDigits[byte & 0xFU];
}

void append_escape(std::string& out, char32_t cp) {
  switch (cp) {
    case U'\n': out += "\\n"; return;
    case U'\t': out += "\\t"; return;
    case U'\r': out += "\\r"; return;
    case U'\0': out += "\\0"; return;
    default: break;
  }
  if (cp < 0x80) {
    append_hex_byte(out, static_cast<unsigned>(cp));
    return;
  }
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out += kHexDigits[(cp >> static_cast<unsigned>(shift)) & 0xFU];
}

std::string pad(std::string_view text, std::size_t width, bool right_align) {
  const std::size_t w = display_width(text);
  const std::string fill(width > w ? width - w : 0, ' ');
  return right_align ? fill + std::string(text) : std::string(text) + fill;
}

bool is_numeric(const Value& v) {
  return std::holds_alternative<std::int64_t>(v) || std::holds_alternative<double>(v);
}

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

}  // namespace

std::size_t display_width(std::string_view utf8) {
  std::size_t width = 0;
  for (std::size_t i = 0; i < utf8.size();) {
    const auto d = decode_utf8(utf8, i);
    if (!d) {
      width += 1;
      i += 1;
      continue;
    }
    width += codepoint_width(d->cp);
    i += d->len;
  }
  return width;
}

std::string format_double(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  std::array<char, 64> buf{};
  const auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  if (ec != std::errc()) return "?";
  return std::string(buf.data(), end);
}

std::string hex_blob(const Blob& blob) {
  std::string out = "0x";
  out.reserve(2 + blob.bytes.size() * 2);
  for (const std::uint8_t b : blob.bytes) {
    out += kHexDigits[(b >> 4U) & 0xFU];
    out += kHexDigits[b & 0xFU];
  }
  return out;
}

std::string table_text(std::string_view text, std::size_t max_width) {
  // Escape first, then cut, so that an escape is never split in half.
  std::vector<std::string> pieces;  // one visible unit each (a character or an escape)
  std::vector<std::size_t> widths;
  std::size_t total = 0;
  for (std::size_t i = 0; i < text.size();) {
    std::string piece;
    std::size_t w = 0;
    const auto d = decode_utf8(text, i);
    if (!d) {
      append_hex_byte(piece, static_cast<unsigned char>(text[i]));
      w = piece.size();
      i += 1;
    } else {
      if (needs_escape(d->cp)) {
        append_escape(piece, d->cp);
        w = piece.size();
      } else {
        piece.assign(text.substr(i, d->len));
        w = codepoint_width(d->cp);
      }
      i += d->len;
    }
    total += w;
    pieces.push_back(std::move(piece));
    widths.push_back(w);
  }
  std::string out;
  out.reserve(text.size());
  if (max_width == 0 || total <= max_width) {
    for (const auto& p : pieces) out += p;
    return out;
  }
  std::size_t used = 0;
  const std::size_t budget = max_width - 1;  // one column for the ellipsis
  for (std::size_t k = 0; k < pieces.size(); ++k) {
    if (used + widths[k] > budget) break;
    out += pieces[k];
    used += widths[k];
  }
  out += kEllipsis;
  return out;
}

std::string table_cell(const Value& value, std::size_t max_width) {
  return std::visit(Overloaded{
                        [](std::monostate) -> std::string { return "NULL"; },
                        [](std::int64_t v) -> std::string { return std::to_string(v); },
                        [](double v) -> std::string { return format_double(v); },
                        [&](const std::string& v) -> std::string { return table_text(v, max_width); },
                        [&](const Blob& v) -> std::string { return table_text(hex_blob(v), max_width); },
                    },
                    value);
}

std::string tsv_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\0': out += "\\0"; break;
      default: out += c; break;
    }
  }
  return out;
}

std::string tsv_field(const Value& value) {
  return std::visit(Overloaded{
                        [](std::monostate) -> std::string { return "\\N"; },
                        [](std::int64_t v) -> std::string { return std::to_string(v); },
                        [](double v) -> std::string { return format_double(v); },
                        [](const std::string& v) -> std::string { return tsv_escape(v); },
                        [](const Blob& v) -> std::string { return hex_blob(v); },
                    },
                    value);
}

std::string json_string(std::string_view text) {
  std::string out = "\"";
  out.reserve(text.size() + 2);
  for (std::size_t i = 0; i < text.size();) {
    const auto d = decode_utf8(text, i);
    if (!d) {
      out += "\\ufffd";  // not UTF-8: the replacement character keeps the JSON valid
      i += 1;
      continue;
    }
    const char32_t cp = d->cp;
    switch (cp) {
      case U'"': out += "\\\""; break;
      case U'\\': out += "\\\\"; break;
      case U'\n': out += "\\n"; break;
      case U'\t': out += "\\t"; break;
      case U'\r': out += "\\r"; break;
      case U'\b': out += "\\b"; break;
      case U'\f': out += "\\f"; break;
      default:
        if (cp < 0x20) {
          out += "\\u00";
          out += kHexDigits[(cp >> 4U) & 0xFU];
          out += kHexDigits[cp & 0xFU];
        } else {
          out.append(text.substr(i, d->len));
        }
        break;
    }
    i += d->len;
  }
  out += '"';
  return out;
}

std::string base64(const Blob& blob) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto& b = blob.bytes;
  std::string out;
  out.reserve((b.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= b.size(); i += 3) {
    const std::uint32_t n = (std::uint32_t{b[i]} << 16U) | (std::uint32_t{b[i + 1]} << 8U) | b[i + 2];
    out += kAlphabet[(n >> 18U) & 0x3FU];
    out += kAlphabet[(n >> 12U) & 0x3FU];
    out += kAlphabet[(n >> 6U) & 0x3FU];
    out += kAlphabet[n & 0x3FU];
  }
  const std::size_t rest = b.size() - i;
  if (rest > 0) {
    std::uint32_t n = std::uint32_t{b[i]} << 16U;
    if (rest == 2) n |= std::uint32_t{b[i + 1]} << 8U;
    out += kAlphabet[(n >> 18U) & 0x3FU];
    out += kAlphabet[(n >> 12U) & 0x3FU];
    out += rest == 2 ? kAlphabet[(n >> 6U) & 0x3FU] : '=';
    out += '=';
  }
  return out;
}

std::string json_value(const Value& value) {
  return std::visit(Overloaded{
                        [](std::monostate) -> std::string { return "null"; },
                        [](std::int64_t v) -> std::string { return std::to_string(v); },
                        [](double v) -> std::string {
                          return std::isfinite(v) ? format_double(v) : json_string(format_double(v));
                        },
                        [](const std::string& v) -> std::string { return json_string(v); },
                        [](const Blob& v) -> std::string { return "{\"base64\":" + json_string(base64(v)) + "}"; },
                    },
                    value);
}

void print_table(std::ostream& out, const ResultSet& result, const TableOptions& options) {
  const std::size_t ncols = result.columns.size();
  if (ncols == 0) return;

  std::vector<std::string> header(ncols);
  std::vector<std::size_t> widths(ncols);
  std::vector<bool> numeric(ncols, true);
  std::vector<bool> any_value(ncols, false);
  for (std::size_t c = 0; c < ncols; ++c) {
    header[c] = table_text(result.columns[c], options.max_cell_width);
    widths[c] = display_width(header[c]);
  }

  std::vector<std::vector<std::string>> cells;
  cells.reserve(result.rows.size());
  for (const Row& row : result.rows) {
    std::vector<std::string> line(ncols);
    for (std::size_t c = 0; c < ncols; ++c) {
      // A short row (should not happen) shows its missing cells as empty.
      if (c >= row.size()) continue;
      line[c] = table_cell(row[c], options.max_cell_width);
      widths[c] = std::max(widths[c], display_width(line[c]));
      if (!is_null(row[c])) {
        any_value[c] = true;
        if (!is_numeric(row[c])) numeric[c] = false;
      }
    }
    cells.push_back(std::move(line));
  }

  std::string border = "+";
  for (const std::size_t w : widths) border += std::string(w + 2, '-') + "+";

  out << border << '\n' << '|';
  for (std::size_t c = 0; c < ncols; ++c) out << ' ' << pad(header[c], widths[c], false) << " |";
  out << '\n' << border << '\n';
  for (const auto& line : cells) {
    out << '|';
    for (std::size_t c = 0; c < ncols; ++c) {
      out << ' ' << pad(line[c], widths[c], numeric[c] && any_value[c]) << " |";
    }
    out << '\n';
  }
  out << border << '\n';
}

void print_tsv(std::ostream& out, const ResultSet& result) {
  const std::size_t ncols = result.columns.size();
  if (ncols == 0) return;
  for (std::size_t c = 0; c < ncols; ++c) out << (c > 0 ? "\t" : "") << tsv_escape(result.columns[c]);
  out << '\n';
  for (const Row& row : result.rows) {
    for (std::size_t c = 0; c < ncols; ++c) {
      if (c > 0) out << '\t';
      if (c < row.size()) out << tsv_field(row[c]);
    }
    out << '\n';
  }
}

std::string json_rows_members(const ResultSet& result) {
  std::string out = "\"columns\":[";
  for (std::size_t c = 0; c < result.columns.size(); ++c) {
    if (c > 0) out += ',';
    out += json_string(result.columns[c]);
  }
  out += "],\"rows\":[";
  for (std::size_t r = 0; r < result.rows.size(); ++r) {
    if (r > 0) out += ',';
    out += '[';
    const Row& row = result.rows[r];
    for (std::size_t c = 0; c < row.size(); ++c) {
      if (c > 0) out += ',';
      out += json_value(row[c]);
    }
    out += ']';
  }
  out += ']';
  return out;
}

}  // namespace distdb::cli
