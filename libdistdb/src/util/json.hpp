// Small helpers shared by every reader of JSON documents (config, wire).
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/reader.h>

#include <charconv>
#include <cstdint>
#include <string_view>
#include <system_error>

#include "util/text.hpp"

namespace distdb::json {

using Value = rapidjson::Value;

// The JSON type of `v`, as an error message names it ("an integer", ...).
inline const char* type_name(const Value& v) {
  if (v.IsNull()) return "null";
  if (v.IsBool()) return "a boolean";
  if (v.IsInt64() || v.IsUint64()) return "an integer";
  if (v.IsNumber()) return "a real number";
  if (v.IsString()) return "a string";
  if (v.IsArray()) return "an array";
  return "an object";
}

// A string value's bytes (which may contain NULs). `v` must be a string.
inline std::string_view text(const Value& v) { return {v.GetString(), v.GetStringLength()}; }

namespace detail {

// Builds the document from a reader's events, converting numbers itself and
// refusing text that is not UTF-8 (see parse() below).
class ExactHandler {
 public:
  ExactHandler(rapidjson::Document& doc, bool check_text) : doc_(doc), check_text_(check_text) {}

  bool Null() { return doc_.Null(); }
  bool Bool(bool b) { return doc_.Bool(b); }
  // Numbers all arrive as RawNumber (kParseNumbersAsStringsFlag).
  bool Int(int i) { return doc_.Int(i); }
  bool Uint(unsigned u) { return doc_.Uint(u); }
  bool Int64(std::int64_t i) { return doc_.Int64(i); }
  bool Uint64(std::uint64_t u) { return doc_.Uint64(u); }
  bool Double(double d) { return doc_.Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    const char* end = s + n;
    if (std::string_view(s, n).find_first_of(".eE") == std::string_view::npos) {
      if (s[0] == '-') {
        std::int64_t i = 0;
        if (std::from_chars(s, end, i).ec == std::errc{}) return doc_.Int64(i);
      } else {
        std::uint64_t u = 0;
        if (std::from_chars(s, end, u).ec == std::errc{}) return doc_.Uint64(u);
      }
      // Past 64 bits an integer is read as a double, as rapidjson does.
    }
    double d = 0;
    const auto [ptr, ec] = std::from_chars(s, end, d);
    // Out of range either way (past DBL_MAX, or so small it is not even a
    // denormal): refused, no real writer produces such a literal.
    if (ec != std::errc{} || ptr != end) return fail(rapidjson::kParseErrorNumberTooBig);
    return doc_.Double(d);
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) {
    return utf8(s, n) ? doc_.String(s, n, copy) : fail(rapidjson::kParseErrorStringInvalidEncoding);
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) {
    return utf8(s, n) ? doc_.Key(s, n, copy) : fail(rapidjson::kParseErrorStringInvalidEncoding);
  }
  bool StartObject() { return doc_.StartObject(); }
  bool EndObject(rapidjson::SizeType members) { return doc_.EndObject(members); }
  bool StartArray() { return doc_.StartArray(); }
  bool EndArray(rapidjson::SizeType elements) { return doc_.EndArray(elements); }

  rapidjson::ParseErrorCode error = rapidjson::kParseErrorNone;

 private:
  bool utf8(const char* s, rapidjson::SizeType n) const {
    return !check_text_ || distdb::text::is_valid_utf8({s, n});
  }
  bool fail(rapidjson::ParseErrorCode code) {
    error = code;
    return false;
  }

  rapidjson::Document& doc_;
  bool check_text_;
};

}  // namespace detail

// doc.Parse<Flags>(text), with two defects of rapidjson 1.1.0 (the version
// Debian and subprojects/ ship) worked around, both found by tests/fuzz:
//   - its own number conversion with kParseFullPrecisionFlag fails an
//     assertion (an abort, in any build with assertions) on some literals
//     past DBL_MAX such as 6.111976931348626314e308, reads others as NaN or
//     infinity, and misreads zeros with a large exponent (0e94). Numbers are
//     converted here with std::from_chars instead, exactly; one outside the
//     range of a double is an error, as rapidjson means it to be.
//   - it validates the raw bytes (kParseValidateEncodingFlag) but not what a
//     \u escape makes: a lone low surrogate (\udc00) gives a string that is
//     not UTF-8. Such strings are refused like raw bytes that are not UTF-8.
// Errors are reported as by Document::Parse: a code and a byte offset.
template <unsigned Flags>
rapidjson::ParseResult parse(std::string_view text, rapidjson::Document& doc) {
  // Only a \u escape can make a string that is not UTF-8 out of validated bytes.
  detail::ExactHandler handler(doc, text.find("\\u") != std::string_view::npos);
  rapidjson::ParseResult result;
  auto generate = [&](rapidjson::Document&) {
    rapidjson::MemoryStream ms(text.data(), text.size());
    // Skips a UTF-8 byte order mark, as Document::Parse does.
    rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> is(ms);
    rapidjson::Reader reader;
    result = reader.Parse<Flags | rapidjson::kParseNumbersAsStringsFlag>(is, handler);
    // A refusal of the handler's own reads as its reason, not as "terminated".
    if (result.IsError() && handler.error != rapidjson::kParseErrorNone) {
      result.Set(handler.error, result.Offset());
    }
    return !result.IsError();
  };
  doc.Populate(generate);
  return result;
}

}  // namespace distdb::json
