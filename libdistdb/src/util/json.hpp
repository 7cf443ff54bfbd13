// Small helpers shared by every reader of JSON documents (config, wire).
#pragma once

#include <rapidjson/document.h>

#include <string_view>

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

}  // namespace distdb::json
