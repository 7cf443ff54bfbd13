#include "wire/codec.hpp"

#include "util/json.hpp"
#include "util/text.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace distdb::wire {
namespace {

using text::base64_decode;
using text::base64_encode;
using text::is_valid_utf8;
using text::to_valid_utf8;

using JsonValue = rapidjson::Value;
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// Iterative parsing keeps the call stack flat whatever the nesting of the
// input (a frame of a million '[' must not overflow it); validating the
// encoding means every string we hand on is well-formed UTF-8; full
// precision makes doubles round-trip exactly.
constexpr unsigned kParseFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag |
                                 rapidjson::kParseFullPrecisionFlag;

// ---------------------------------------------------------------- writing

// Strings are far below 4 GiB: a message that size is refused long before.
rapidjson::SizeType json_size(std::size_t n) { return static_cast<rapidjson::SizeType>(n); }

void put_key(JsonWriter& w, const char* key) { w.Key(key); }

void put_text(JsonWriter& w, std::string_view s) {
  if (is_valid_utf8(s)) {
    w.String(s.data(), json_size(s.size()));
  } else {
    const std::string fixed = to_valid_utf8(s);
    w.String(fixed.data(), json_size(fixed.size()));
  }
}

void put_base64(JsonWriter& w, const std::uint8_t* data, std::size_t size) {
  const std::string encoded = base64_encode(data, size);
  w.StartObject();
  put_key(w, "base64");
  w.String(encoded.data(), json_size(encoded.size()));
  w.EndObject();
}

void put_double(JsonWriter& w, double d) {
  if (std::isnan(d)) {
    w.String("NaN");
  } else if (std::isinf(d)) {
    w.String(d > 0 ? "Infinity" : "-Infinity");
  } else {
    w.Double(d);
  }
}

void put_value(JsonWriter& w, const Value& v) {
  if (std::holds_alternative<std::monostate>(v)) {
    w.Null();
  } else if (const auto* i = std::get_if<std::int64_t>(&v)) {
    w.Int64(*i);
  } else if (const auto* d = std::get_if<double>(&v)) {
    put_double(w, *d);
  } else if (const auto* s = std::get_if<std::string>(&v)) {
    // Text that is not UTF-8 cannot be a JSON string without losing bytes.
    if (is_valid_utf8(*s)) {
      w.String(s->data(), json_size(s->size()));
    } else {
      put_base64(w, reinterpret_cast<const std::uint8_t*>(s->data()), s->size());
    }
  } else {
    const auto& blob = std::get<Blob>(v);
    put_base64(w, blob.bytes.data(), blob.bytes.size());
  }
}

void put_result_objects(JsonWriter& w, const ResultSet& rs) {
  w.StartArray();
  for (const Row& row : rs.rows) {
    w.StartObject();
    for (std::size_t c = 0; c < rs.columns.size(); ++c) {
      put_text(w, rs.columns[c]);
      if (c < row.size()) {
        put_value(w, row[c]);
      } else {
        w.Null();  // a short row is a backend bug; keep the reply well-formed
      }
    }
    w.EndObject();
  }
  w.EndArray();
}

void put_columns_and_rows(JsonWriter& w, const ResultSet& rs) {
  put_key(w, "columns");
  w.StartArray();
  for (const std::string& c : rs.columns) put_text(w, c);
  w.EndArray();
  put_key(w, "rows");
  w.StartArray();
  for (const Row& row : rs.rows) {
    w.StartArray();
    for (const Value& v : row) put_value(w, v);
    w.EndArray();
  }
  w.EndArray();
}

void put_error(JsonWriter& w, const Error& e) {
  put_key(w, "error");
  w.StartObject();
  put_key(w, "kind");
  w.String(to_string(e.kind));
  put_key(w, "code");
  w.Int(e.code);
  put_key(w, "message");
  put_text(w, e.message);
  w.EndObject();
}

void put_peer(JsonWriter& w, const PeerConfig& p) {
  w.StartObject();
  put_key(w, "id");
  w.Uint(p.id);
  put_key(w, "ip");
  put_text(w, p.ip);
  put_key(w, "port");
  w.Uint(p.port);
  w.EndObject();
}

std::string finish(const rapidjson::StringBuffer& buf) { return std::string(buf.GetString(), buf.GetSize()); }

// ---------------------------------------------------------------- reading



const JsonValue* find_member(const JsonValue& obj, const char* key) {
  const auto it = obj.FindMember(key);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

using text::quote_for_message;

Error invalid(std::string message) { return Error(ErrorKind::invalid_request, std::move(message)); }

Error wrong_type(const std::string& field, const char* expected, const JsonValue& got) {
  return invalid("field '" + field + "' must be " + expected + ", got " + json::type_name(got));
}

// Parses `json` into `doc`; on failure returns a message naming the offset.
std::optional<std::string> parse_json(std::string_view json, rapidjson::Document& doc) {
  const rapidjson::ParseResult result = json::parse<kParseFlags>(json, doc);
  if (!result.IsError()) return std::nullopt;
  return "invalid JSON at byte " + std::to_string(result.Offset()) + ": " +
         rapidjson::GetParseError_En(result.Code());
}

// Reads an optional unsigned integer field no larger than `max`.
Result<std::optional<std::uint64_t>> read_unsigned(const JsonValue& obj, const char* key, const std::string& field,
                                                   std::uint64_t max) {
  const JsonValue* v = find_member(obj, key);
  if (v == nullptr) return std::optional<std::uint64_t>{};
  if (!v->IsUint64() || v->GetUint64() > max) {
    std::string what = "field '" + field + "' must be an integer from 0 to " + std::to_string(max);
    if (v->IsInt64()) {
      what += " (got " + std::to_string(v->GetInt64()) + ")";
    } else if (!v->IsUint64()) {
      what += std::string(", got ") + json::type_name(*v);
    }
    return invalid(what);
  }
  return std::optional<std::uint64_t>{v->GetUint64()};
}

Result<std::optional<std::string>> read_string(const JsonValue& obj, const char* key, const std::string& field) {
  const JsonValue* v = find_member(obj, key);
  if (v == nullptr) return std::optional<std::string>{};
  if (!v->IsString()) return wrong_type(field, "a string", *v);
  return std::optional<std::string>{std::string(json::text(*v))};
}

// ---------------------------------------------------------------- requests

Result<RequestBody> decode_client_query(const JsonValue& root) {
  const JsonValue* payload = find_member(root, "payload");
  if (payload == nullptr) return invalid("missing field 'payload' (CLIENT_QUERY needs {\"query\": ...})");
  if (!payload->IsObject()) return wrong_type("payload", "an object", *payload);
  const JsonValue* query = find_member(*payload, "query");
  if (query == nullptr) return invalid("missing field 'payload.query'");
  if (!query->IsString()) return wrong_type("payload.query", "a non-empty string", *query);
  if (query->GetStringLength() == 0) return invalid("field 'payload.query' must be a non-empty string, got \"\"");
  ClientQuery q;
  q.query.assign(query->GetString(), query->GetStringLength());
  if (const JsonValue* redirect = find_member(*payload, "redirect")) {
    if (!redirect->IsBool()) return wrong_type("payload.redirect", "a boolean", *redirect);
    q.redirect = redirect->GetBool();
  }
  return RequestBody{std::move(q)};
}

// An optional string field of an AUTH payload, at most `max` bytes. The
// message never quotes the value: it may be a password.
Status read_auth_field(const JsonValue& payload, const char* key, std::size_t max, std::string& out) {
  const JsonValue* v = find_member(payload, key);
  if (v == nullptr) return {};
  const std::string field = std::string("payload.") + key;
  if (!v->IsString()) return wrong_type(field, "a string", *v);
  if (v->GetStringLength() > max) {
    return invalid("field '" + field + "' is longer than " + std::to_string(max) + " bytes");
  }
  out.assign(v->GetString(), v->GetStringLength());
  return {};
}

Result<RequestBody> decode_auth(const JsonValue& root) {
  const JsonValue* payload = find_member(root, "payload");
  if (payload == nullptr) return invalid("missing field 'payload' (AUTH needs {\"mechanism\": ...})");
  if (!payload->IsObject()) return wrong_type("payload", "an object", *payload);
  AuthRequest a;
  if (find_member(*payload, "mechanism") == nullptr) return invalid("missing field 'payload.mechanism'");
  if (auto st = read_auth_field(*payload, "mechanism", kMaxAuthMechanismBytes, a.mechanism); !st)
    return st.error();
  if (a.mechanism.empty()) return invalid("field 'payload.mechanism' must be a non-empty string, got \"\"");
  if (auto st = read_auth_field(*payload, "message", kMaxAuthMessageBytes, a.message); !st) return st.error();
  if (auto st = read_auth_field(*payload, "user", kMaxAuthUserBytes, a.user); !st) return st.error();
  if (auto st = read_auth_field(*payload, "password", kMaxAuthPasswordBytes, a.password); !st)
    return st.error();
  return RequestBody{std::move(a)};
}

Result<RequestBody> decode_body(const JsonValue& root) {
  const JsonValue* type = find_member(root, "type");
  if (type == nullptr) return invalid("missing field 'type'");
  if (!type->IsString()) return wrong_type("type", "a string", *type);
  const std::string_view name = json::text(*type);
  if (name == "CLIENT_QUERY") return decode_client_query(root);
  if (name == "STATUS") return RequestBody{StatusRequest{}};
  if (name == "PING") return RequestBody{Ping{}};
  if (name == "AUTH") return decode_auth(root);
  if (name == "CHECK") return RequestBody{ChecksumRequest{}};
  return invalid("unknown message type " + quote_for_message(name) +
                 " in field 'type' (expected CLIENT_QUERY, STATUS, PING, AUTH or CHECK)");
}

// ---------------------------------------------------------------- replies

Error invalid_reply(const std::string& what) { return invalid("invalid reply: " + what); }

Result<Value> decode_value(const JsonValue& v, const std::string& where) {
  if (v.IsNull()) return Value{};
  if (v.IsBool()) return Value{std::int64_t{v.GetBool() ? 1 : 0}};  // not ours; a seed node's TINYINT(1)
  if (v.IsInt64()) return Value{v.GetInt64()};
  // Above int64: keep the digits, as the storage layer does for BIGINT UNSIGNED.
  if (v.IsUint64()) return Value{std::to_string(v.GetUint64())};
  if (v.IsDouble()) return Value{v.GetDouble()};
  if (v.IsString()) return Value{std::string(json::text(v))};
  if (v.IsObject()) {
    const JsonValue* b64 = find_member(v, "base64");
    if (b64 != nullptr && b64->IsString()) {
      auto bytes = base64_decode(json::text(*b64));
      if (!bytes) return invalid_reply(where + ": malformed base64");
      return Value{Blob{std::move(*bytes)}};
    }
  }
  return invalid_reply(where + ": unexpected value, got " + json::type_name(v));
}

Result<std::vector<std::string>> decode_columns(const JsonValue& columns) {
  if (!columns.IsArray()) return invalid_reply(std::string("'columns' must be an array, got ") + json::type_name(columns));
  std::vector<std::string> out;
  out.reserve(columns.Size());
  for (rapidjson::SizeType i = 0; i < columns.Size(); ++i) {
    if (!columns[i].IsString()) return invalid_reply("columns[" + std::to_string(i) + "] must be a string");
    out.emplace_back(json::text(columns[i]));
  }
  return out;
}

Result<std::vector<Row>> decode_rows(const JsonValue& rows, std::size_t width) {
  if (!rows.IsArray()) return invalid_reply(std::string("'rows' must be an array, got ") + json::type_name(rows));
  std::vector<Row> out;
  out.reserve(rows.Size());
  for (rapidjson::SizeType r = 0; r < rows.Size(); ++r) {
    const std::string where = "rows[" + std::to_string(r) + "]";
    const JsonValue& row = rows[r];
    if (!row.IsArray() || row.Size() != width) {
      return invalid_reply(where + " must be an array of " + std::to_string(width) + " values");
    }
    Row decoded;
    decoded.reserve(width);
    for (rapidjson::SizeType c = 0; c < row.Size(); ++c) {
      auto value = decode_value(row[c], where + "[" + std::to_string(c) + "]");
      if (!value) return value.error();
      decoded.push_back(std::move(*value));
    }
    out.push_back(std::move(decoded));
  }
  return out;
}

// Column names in order of first appearance across the row objects (the
// seed's rows all have the same keys, but nothing guarantees it).
Result<std::vector<std::string>> columns_from_objects(const JsonValue& result) {
  std::vector<std::string> columns;
  for (rapidjson::SizeType r = 0; r < result.Size(); ++r) {
    const JsonValue& row = result[r];
    if (!row.IsObject()) {
      return invalid_reply("result[" + std::to_string(r) + "] must be an object, got " + json::type_name(row));
    }
    for (auto it = row.MemberBegin(); it != row.MemberEnd(); ++it) {
      const std::string_view name = json::text(it->name);
      bool known = false;
      for (const std::string& c : columns) known = known || c == name;
      if (!known) columns.emplace_back(name);
    }
  }
  return columns;
}

Result<std::vector<Row>> rows_from_objects(const JsonValue& result, const std::vector<std::string>& columns) {
  std::vector<Row> rows;
  rows.reserve(result.Size());
  for (rapidjson::SizeType r = 0; r < result.Size(); ++r) {
    const JsonValue& obj = result[r];
    if (!obj.IsObject()) return invalid_reply("result[" + std::to_string(r) + "] must be an object");
    Row row;
    row.reserve(columns.size());
    for (const std::string& column : columns) {
      const auto it = obj.FindMember(JsonValue(rapidjson::StringRef(column.data(), json_size(column.size()))));
      if (it == obj.MemberEnd()) {
        row.emplace_back();  // absent from this row: NULL
        continue;
      }
      auto value = decode_value(it->value, "result[" + std::to_string(r) + "]." + column);
      if (!value) return value.error();
      row.push_back(std::move(*value));
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

Status decode_result_set(const JsonValue& root, Reply& reply) {
  const JsonValue* columns = find_member(root, "columns");
  const JsonValue* rows = find_member(root, "rows");
  const JsonValue* result = find_member(root, "result");
  const bool objects = result != nullptr && result->IsArray();

  if (columns != nullptr) {
    auto decoded = decode_columns(*columns);
    if (!decoded) return decoded.error();
    reply.result.columns = std::move(*decoded);
  } else if (objects) {
    auto derived = columns_from_objects(*result);
    if (!derived) return derived.error();
    reply.result.columns = std::move(*derived);
  }

  if (rows != nullptr) {
    auto decoded = decode_rows(*rows, reply.result.columns.size());
    if (!decoded) return decoded.error();
    reply.result.rows = std::move(*decoded);
  } else if (objects) {
    auto derived = rows_from_objects(*result, reply.result.columns);
    if (!derived) return derived.error();
    reply.result.rows = std::move(*derived);
  }

  if (reply.message.empty() && result != nullptr && result->IsString()) {
    reply.message.assign(result->GetString(), result->GetStringLength());
  }
  return {};
}

Result<ReplyStatus> decode_status(const JsonValue& root) {
  const JsonValue* status = find_member(root, "status");
  if (status == nullptr) return invalid_reply("missing field 'status'");
  if (!status->IsString()) return invalid_reply(std::string("field 'status' must be a string, got ") + json::type_name(*status));
  const std::string_view s = json::text(*status);
  if (s == "OK") return ReplyStatus::ok;
  if (s == "REDIRECT") return ReplyStatus::redirect;
  if (s == "ERROR") return ReplyStatus::error;
  return invalid_reply("field 'status' must be OK, REDIRECT or ERROR, got " + quote_for_message(s));
}

// Result<Error> cannot exist (its two constructors would collide): out-param.
Status decode_error(const JsonValue& e, Error& out) {
  if (!e.IsObject()) return invalid_reply(std::string("field 'error' must be an object, got ") + json::type_name(e));
  auto kind = read_string(e, "kind", "error.kind");
  if (!kind) return invalid_reply(kind.error().message);
  out.kind = kind->has_value() ? error_kind_from_string(**kind) : ErrorKind::internal;
  if (const JsonValue* code = find_member(e, "code")) {
    if (!code->IsInt()) return invalid_reply("field 'error.code' must be a 32-bit integer");
    out.code = code->GetInt();
  }
  auto message = read_string(e, "message", "error.message");
  if (!message) return invalid_reply(message.error().message);
  if (message->has_value()) out.message = std::move(**message);
  return {};
}

Result<PeerConfig> decode_coordinator(const JsonValue& c) {
  if (!c.IsObject()) return invalid_reply(std::string("field 'coordinator' must be an object, got ") + json::type_name(c));
  PeerConfig p;
  auto id = read_unsigned(c, "id", "coordinator.id", std::numeric_limits<NodeId>::max());
  if (!id) return invalid_reply(id.error().message);
  auto port = read_unsigned(c, "port", "coordinator.port", 65535);
  if (!port) return invalid_reply(port.error().message);
  auto ip = read_string(c, "ip", "coordinator.ip");
  if (!ip) return invalid_reply(ip.error().message);
  p.id = static_cast<NodeId>(id->value_or(0));
  p.port = static_cast<std::uint16_t>(port->value_or(0));
  p.ip = ip->value_or(std::string());
  return p;
}

// The plain fields: id, node, message, rows_affected, last_insert_id.
Status decode_scalars(const JsonValue& root, Reply& reply) {
  auto id = read_unsigned(root, "id", "id", std::numeric_limits<std::uint64_t>::max());
  if (!id) return invalid_reply(id.error().message);
  reply.id = *id;
  auto node = read_unsigned(root, "node", "node", std::numeric_limits<NodeId>::max());
  if (!node) return invalid_reply(node.error().message);
  reply.node = static_cast<NodeId>(node->value_or(0));
  auto affected = read_unsigned(root, "rows_affected", "rows_affected", std::numeric_limits<std::uint64_t>::max());
  if (!affected) return invalid_reply(affected.error().message);
  reply.result.rows_affected = affected->value_or(0);
  auto insert_id = read_unsigned(root, "last_insert_id", "last_insert_id", std::numeric_limits<std::uint64_t>::max());
  if (!insert_id) return invalid_reply(insert_id.error().message);
  reply.result.last_insert_id = insert_id->value_or(0);
  auto message = read_string(root, "message", "message");
  if (!message) return invalid_reply(message.error().message);
  reply.message = message->value_or(std::string());
  return {};
}

}  // namespace

// ---------------------------------------------------------------- public

const char* to_wire(ReplyStatus status) {
  switch (status) {
    case ReplyStatus::ok: return "OK";
    case ReplyStatus::redirect: return "REDIRECT";
    case ReplyStatus::error: return "ERROR";
  }
  return "ERROR";
}

ErrorKind error_kind_from_string(std::string_view name) {
  constexpr std::array kinds = {
      ErrorKind::sql,
      ErrorKind::storage_unavailable,
      ErrorKind::outcome_unknown,
      ErrorKind::invalid_request,
      ErrorKind::message_too_large,
      ErrorKind::not_coordinator,
      ErrorKind::no_quorum,
      ErrorKind::timeout,
      ErrorKind::unavailable,
      ErrorKind::unauthenticated,
      ErrorKind::config,
      ErrorKind::io,
      ErrorKind::internal,
  };
  for (const ErrorKind k : kinds) {
    if (name == to_string(k)) return k;
  }
  return ErrorKind::internal;
}

Result<Request> decode_request(std::string_view json, std::optional<std::uint64_t>& id_out) {
  id_out.reset();
  rapidjson::Document doc;
  if (auto problem = parse_json(json, doc)) return invalid(*problem);
  if (!doc.IsObject()) return invalid(std::string("a request must be a JSON object, got ") + json::type_name(doc));

  // The id first, so that whatever is wrong below can still be answered on
  // the right slot of a pipelined connection.
  Request request;
  if (const JsonValue* id = find_member(doc, "id")) {
    if (!id->IsUint64()) {
      std::string what = "field 'id' must be a non-negative integer";
      what += id->IsInt64() ? " (got " + std::to_string(id->GetInt64()) + ")"
                            : std::string(", got ") + json::type_name(*id);
      return invalid(what);
    }
    request.id = id->GetUint64();
    id_out = request.id;
  }

  auto body = decode_body(doc);
  if (!body) return body.error();
  request.body = std::move(*body);
  return request;
}

std::string encode_request(const Request& request) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  put_key(w, "type");
  if (const auto* q = std::get_if<ClientQuery>(&request.body)) {
    w.String("CLIENT_QUERY");
    put_key(w, "payload");
    w.StartObject();
    put_key(w, "query");
    // Sent as is, even if not UTF-8: the node refuses it with a clear error,
    // where replacing bytes would silently change the statement.
    w.String(q->query.data(), json_size(q->query.size()));
    put_key(w, "redirect");
    w.Bool(q->redirect);
    w.EndObject();
  } else if (std::holds_alternative<StatusRequest>(request.body)) {
    w.String("STATUS");
  } else if (std::holds_alternative<ChecksumRequest>(request.body)) {
    w.String("CHECK");
  } else if (const auto* a = std::get_if<AuthRequest>(&request.body)) {
    w.String("AUTH");
    put_key(w, "payload");
    w.StartObject();
    put_key(w, "mechanism");
    put_text(w, a->mechanism);
    // Only what the mechanism uses; sent as is (like a query's text).
    const std::pair<const char*, const std::string*> fields[] = {
        {"message", &a->message}, {"user", &a->user}, {"password", &a->password}};
    for (const auto& [key, value] : fields) {
      if (value->empty()) continue;
      put_key(w, key);
      w.String(value->data(), json_size(value->size()));
    }
    w.EndObject();
  } else {
    w.String("PING");
  }
  if (request.id) {
    put_key(w, "id");
    w.Uint64(*request.id);
  }
  w.EndObject();
  return finish(buf);
}

std::string encode_reply(const Reply& reply) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  if (reply.id) {
    put_key(w, "id");
    w.Uint64(*reply.id);
  }
  put_key(w, "status");
  w.String(to_wire(reply.status));
  put_key(w, "node");
  w.Uint(reply.node);
  put_key(w, "result");
  if (reply.result.has_rows()) {
    put_result_objects(w, reply.result);
    put_columns_and_rows(w, reply.result);
  } else {
    put_text(w, reply.message);  // what the seed's client prints
  }
  put_key(w, "rows_affected");
  w.Uint64(reply.result.rows_affected);
  put_key(w, "last_insert_id");
  w.Uint64(reply.result.last_insert_id);
  put_key(w, "message");
  put_text(w, reply.message);
  if (reply.error) put_error(w, *reply.error);
  if (reply.coordinator) {
    put_key(w, "coordinator");
    put_peer(w, *reply.coordinator);
  }
  if (!reply.auth_mechanism.empty()) {
    put_key(w, "auth_mechanism");
    put_text(w, reply.auth_mechanism);
  }
  w.EndObject();
  return finish(buf);
}

std::string encode_error_reply(std::optional<std::uint64_t> id, NodeId node, const Error& error) {
  Reply reply;
  reply.id = id;
  reply.status = ReplyStatus::error;
  reply.node = node;
  reply.message = error.message;
  reply.error = error;
  return encode_reply(reply);
}

Result<Reply> decode_reply(std::string_view json) {
  rapidjson::Document doc;
  if (auto problem = parse_json(json, doc)) return invalid_reply(*problem);
  if (!doc.IsObject()) return invalid_reply(std::string("expected a JSON object, got ") + json::type_name(doc));

  Reply reply;
  auto status = decode_status(doc);
  if (!status) return status.error();
  reply.status = *status;
  if (auto scalars = decode_scalars(doc, reply); !scalars) return scalars.error();
  if (auto rs = decode_result_set(doc, reply); !rs) return rs.error();

  if (const JsonValue* e = find_member(doc, "error"); e != nullptr && !e->IsNull()) {
    Error error;
    if (auto decoded = decode_error(*e, error); !decoded) return decoded.error();
    reply.error = std::move(error);
  } else if (reply.status == ReplyStatus::error) {
    reply.error = Error(ErrorKind::internal, reply.message);  // a seed-style ERROR: just a message
  }
  if (const JsonValue* c = find_member(doc, "coordinator"); c != nullptr && !c->IsNull()) {
    auto coordinator = decode_coordinator(*c);
    if (!coordinator) return coordinator.error();
    reply.coordinator = std::move(*coordinator);
  }
  auto mechanism = read_string(doc, "auth_mechanism", "auth_mechanism");
  if (!mechanism) return invalid_reply(mechanism.error().message);
  reply.auth_mechanism = mechanism->value_or(std::string());
  return reply;
}

}  // namespace distdb::wire
