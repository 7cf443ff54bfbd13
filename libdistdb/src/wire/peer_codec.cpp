#include "wire/peer_codec.hpp"

#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "util/text.hpp"
#include "util/json.hpp"

namespace distdb::wire {
namespace {

using JsonValue = rapidjson::Value;
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;
using core::Envelope;
using core::Message;

// As for client requests: a flat call stack whatever the nesting, and only
// well-formed UTF-8 in the strings we hand on.
constexpr unsigned kParseFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;

constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint64_t kNodeIdMax = std::numeric_limits<NodeId>::max();
// WriteResult::Kind (core/replica.hpp): committed, not_coordinator, no_quorum, outcome_unknown.
constexpr std::uint64_t kMaxWriteResultKind = 3;

// ---------------------------------------------------------------- names

// The index of each name is the index of its alternative in core::Message.
constexpr std::array<const char*, 11> kMessageNames = {
    "Heartbeat",   "VoteRequest",    "VoteReply",    "Prepare",        "PrepareReply",   "Decide",
    "DecideReply", "CatchUpRequest", "CatchUpReply", "ForwardedWrite", "ForwardedReply",
};
static_assert(kMessageNames.size() == std::variant_size_v<Message>, "a message without a wire name");
static_assert(std::is_same_v<std::variant_alternative_t<0, Message>, core::Heartbeat>);
static_assert(std::is_same_v<std::variant_alternative_t<4, Message>, core::PrepareReply>);
static_assert(std::is_same_v<std::variant_alternative_t<8, Message>, core::CatchUpReply>);
static_assert(std::is_same_v<std::variant_alternative_t<10, Message>, core::ForwardedReply>);

// Bytes travel as base64 text (util/text.hpp).
std::string base64_encode(std::string_view data) { return text::base64_encode(data); }

std::optional<std::string> base64_decode(std::string_view s) {
  auto bytes = text::base64_decode(s);
  if (!bytes) return std::nullopt;
  return std::string(bytes->begin(), bytes->end());
}

using text::is_valid_utf8;

// ---------------------------------------------------------------- writing

// Frames are bounded by limits.max_message_bytes, far below 4 GiB.
rapidjson::SizeType json_size(std::size_t n) {
  return static_cast<rapidjson::SizeType>(n);
}

void put_raw_string(JsonWriter& w, std::string_view s) {
  w.String(s.data(), json_size(s.size()));
}

// Text: a string if it is UTF-8, otherwise its bytes in base64.
void put_text(JsonWriter& w, std::string_view s) {
  if (is_valid_utf8(s)) {
    put_raw_string(w, s);
    return;
  }
  w.StartObject();
  w.Key("base64");
  put_raw_string(w, base64_encode(s));
  w.EndObject();
}

void put_u64(JsonWriter& w, const char* key, std::uint64_t v) {
  w.Key(key);
  w.Uint64(v);
}

void put_node(JsonWriter& w, const char* key, NodeId v) {
  w.Key(key);
  w.Uint(v);
}

void put_i32(JsonWriter& w, const char* key, int v) {
  w.Key(key);
  w.Int(v);
}

void put_bool(JsonWriter& w, const char* key, bool v) {
  w.Key(key);
  w.Bool(v);
}

void put_text(JsonWriter& w, const char* key, std::string_view s) {
  w.Key(key);
  put_text(w, s);
}

void put_raw_string(JsonWriter& w, const char* key, std::string_view s) {
  w.Key(key);
  put_raw_string(w, s);
}

void put_entry_id(JsonWriter& w, const char* key, const core::EntryId& id) {
  w.Key(key);
  w.StartObject();
  w.Key("seq");
  w.Uint64(id.seq);
  w.Key("origin");
  w.Uint64(id.origin);
  w.EndObject();
}

void put_entry(JsonWriter& w, const core::Entry& entry) {
  w.StartObject();
  put_entry_id(w, "id", entry.id);
  w.Key("statements");
  w.StartArray();
  for (const core::LoggedStatement& s : entry.statements) {
    w.StartObject();
    w.Key("sql");
    put_text(w, s.sql);
    w.Key("expect_ok");
    w.Bool(s.expect_ok);
    w.Key("expect_code");
    w.Int(s.expect_code);
    // Optional (absent: 0 and empty), so that most entries carry nothing more.
    if (s.expect_insert_id != 0) {
      w.Key("expect_insert_id");
      w.Uint64(s.expect_insert_id);
    }
    if (!s.expect_digest.empty()) {
      w.Key("expect_digest");
      put_text(w, s.expect_digest);
    }
    w.EndObject();
  }
  w.EndArray();
  // Optional: absent when every member runs the statements.
  if (entry.effects) put_raw_string(w, "effects", base64_encode(*entry.effects));
  w.EndObject();
}

void put_outcome(JsonWriter& w, const core::StatementOutcome& o) {
  w.StartObject();
  w.Key("ok");
  w.Bool(o.ok);
  w.Key("code");
  w.Int(o.code);
  w.Key("message");
  put_text(w, o.message);
  w.Key("rows_affected");
  w.Uint64(o.rows_affected);
  w.Key("last_insert_id");
  w.Uint64(o.last_insert_id);
  if (!o.digest.empty()) {
    w.Key("digest");
    put_text(w, o.digest);
  }
  w.EndObject();
}

void put_fields(JsonWriter& w, const core::Heartbeat& m) {
  put_u64(w, "epoch", m.epoch);
  put_node(w, "coordinator", m.coordinator);
  put_bool(w, "is_coordinator", m.is_coordinator);
  put_entry_id(w, "applied", m.applied);
  w.Key("view");
  w.StartArray();
  for (const NodeId id : m.view) w.Uint(id);
  w.EndArray();
  put_bool(w, "eligible", m.eligible);
}

void put_fields(JsonWriter& w, const core::VoteRequest& m) {
  put_u64(w, "epoch", m.epoch);
}

void put_fields(JsonWriter& w, const core::VoteReply& m) {
  put_u64(w, "epoch", m.epoch);
  put_bool(w, "granted", m.granted);
  put_entry_id(w, "applied", m.applied);
  put_u64(w, "promised", m.promised);
}

void put_fields(JsonWriter& w, const core::Prepare& m) {
  put_u64(w, "epoch", m.epoch);
  put_entry_id(w, "previous", m.previous);
  w.Key("entry");
  put_entry(w, m.entry);
  // Optional: only an entry that carries effects comes with the coordinator's outcomes.
  if (!m.outcomes.empty()) {
    w.Key("outcomes");
    w.StartArray();
    for (const auto& o : m.outcomes) put_outcome(w, o);
    w.EndArray();
  }
}

void put_fields(JsonWriter& w, const core::PrepareReply& m) {
  put_u64(w, "epoch", m.epoch);
  put_entry_id(w, "entry", m.entry);
  put_bool(w, "yes", m.yes);
  put_text(w, "reason", m.reason);
  w.Key("outcomes");
  w.StartArray();
  for (const core::StatementOutcome& o : m.outcomes) put_outcome(w, o);
  w.EndArray();
  if (m.effects_refused) put_bool(w, "effects_refused", true);  // optional: absent is false
}

void put_fields(JsonWriter& w, const core::Decide& m) {
  put_u64(w, "epoch", m.epoch);
  put_entry_id(w, "entry", m.entry);
}

void put_fields(JsonWriter& w, const core::DecideReply& m) {
  put_u64(w, "epoch", m.epoch);
  put_entry_id(w, "entry", m.entry);
  put_bool(w, "ok", m.ok);
}

void put_fields(JsonWriter& w, const core::CatchUpRequest& m) {
  put_u64(w, "epoch", m.epoch);
  put_entry_id(w, "applied", m.applied);
  put_bool(w, "join", m.join);
  // Without it a member that diverged would be sent the same entries again
  // and again, never the full copy it asks for.
  put_bool(w, "snapshot", m.snapshot);
}

void put_fields(JsonWriter& w, const core::CatchUpReply& m) {
  put_u64(w, "epoch", m.epoch);
  w.Key("entries");
  w.StartArray();
  for (const core::Entry& e : m.entries) put_entry(w, e);
  w.EndArray();
  put_bool(w, "conflict", m.conflict);
  put_bool(w, "snapshot", m.snapshot);
  put_entry_id(w, "snapshot_applied", m.snapshot_applied);
  put_raw_string(w, "snapshot_data", base64_encode(m.snapshot_data));
  put_bool(w, "joined", m.joined);
  put_entry_id(w, "last", m.last);
}

void put_fields(JsonWriter& w, const core::ForwardedWrite& m) {
  put_u64(w, "epoch", m.epoch);
  put_u64(w, "tag", m.tag);
  put_text(w, "sql", m.sql);
}

void put_fields(JsonWriter& w, const core::ForwardedReply& m) {
  put_u64(w, "tag", m.tag);
  put_i32(w, "result", m.result);
  w.Key("outcome");
  put_outcome(w, m.outcome);
  put_node(w, "coordinator", m.coordinator);
  put_text(w, "message", m.message);
}

// ---------------------------------------------------------------- reading

using text::quote_for_message;

// Reads the fields of one message; remembers the message's name so that
// every error says which message it was in.
class Reader {
 public:
  explicit Reader(std::string context) : context_(std::move(context)) {}

  Error invalid(const std::string& what) const {
    return Error(ErrorKind::invalid_request, "invalid " + context_ + ": " + what);
  }

  Error missing(const std::string& field) const { return invalid("missing field '" + field + "'"); }

  Error wrong_type(const std::string& field, const std::string& expected, const JsonValue& got) const {
    return invalid("field '" + field + "' must be " + expected + ", got " + json::type_name(got));
  }

  // `obj` is an object; `prefix` is its path ("" at the top, "applied." below).
  Result<const JsonValue*> member(const JsonValue& obj, const std::string& prefix, const char* key) const {
    const auto it = obj.FindMember(key);
    if (it == obj.MemberEnd()) return missing(prefix + key);
    return &it->value;
  }

  Status unsigned_value(const JsonValue& v, const std::string& field, std::uint64_t min, std::uint64_t max,
                        std::uint64_t& out) const {
    if (!v.IsUint64() || v.GetUint64() < min || v.GetUint64() > max) {
      std::string what = "field '" + field + "' must be an integer from " + std::to_string(min) + " to " +
                         std::to_string(max);
      if (v.IsUint64()) {
        what += " (got " + std::to_string(v.GetUint64()) + ")";
      } else if (v.IsInt64()) {
        what += " (got " + std::to_string(v.GetInt64()) + ")";
      } else {
        what += std::string(", got ") + json::type_name(v);
      }
      return invalid(what);
    }
    out = v.GetUint64();
    return {};
  }

  Status u64(const JsonValue& obj, const std::string& prefix, const char* key, std::uint64_t& out) const {
    auto v = member(obj, prefix, key);
    if (!v) return v.error();
    return unsigned_value(**v, prefix + key, 0, kU64Max, out);
  }

  // A node id; `min` is 1 where 0 ("none") makes no sense.
  Status node_id(const JsonValue& obj, const std::string& prefix, const char* key, std::uint64_t min,
                 NodeId& out) const {
    auto v = member(obj, prefix, key);
    if (!v) return v.error();
    std::uint64_t n = 0;
    if (auto st = unsigned_value(**v, prefix + key, min, kNodeIdMax, n); !st) return st;
    out = static_cast<NodeId>(n);
    return {};
  }

  Status i32(const JsonValue& obj, const std::string& prefix, const char* key, int& out) const {
    auto v = member(obj, prefix, key);
    if (!v) return v.error();
    if (!(*v)->IsInt()) {
      std::string what = "field '" + prefix + key + "' must be an integer from " +
                         std::to_string(std::numeric_limits<int>::min()) + " to " +
                         std::to_string(std::numeric_limits<int>::max());
      if ((*v)->IsInt64()) {
        what += " (got " + std::to_string((*v)->GetInt64()) + ")";
      } else if ((*v)->IsUint64()) {
        what += " (got " + std::to_string((*v)->GetUint64()) + ")";
      } else {
        what += std::string(", got ") + json::type_name(**v);
      }
      return invalid(what);
    }
    out = (*v)->GetInt();
    return {};
  }

  Status boolean(const JsonValue& obj, const std::string& prefix, const char* key, bool& out) const {
    auto v = member(obj, prefix, key);
    if (!v) return v.error();
    if (!(*v)->IsBool()) return wrong_type(prefix + key, "a boolean", **v);
    out = (*v)->GetBool();
    return {};
  }

  // A string, or {"base64": "..."} for bytes that are not UTF-8.
  Status text(const JsonValue& obj, const std::string& prefix, const char* key, std::string& out) const {
    auto v = member(obj, prefix, key);
    if (!v) return v.error();
    const JsonValue& value = **v;
    const std::string field = prefix + key;
    if (value.IsString()) {
      out.assign(value.GetString(), value.GetStringLength());
      return {};
    }
    if (value.IsObject()) {
      const auto b64 = value.FindMember("base64");
      if (b64 != value.MemberEnd() && b64->value.IsString()) {
        auto bytes = base64_decode(json::text(b64->value));
        if (!bytes) return invalid("field '" + field + ".base64' is not valid base64");
        out = std::move(*bytes);
        return {};
      }
    }
    return wrong_type(field, "a string or {\"base64\": string}", value);
  }

  Status base64(const JsonValue& obj, const std::string& prefix, const char* key, std::string& out) const {
    auto v = member(obj, prefix, key);
    if (!v) return v.error();
    if (!(*v)->IsString()) return wrong_type(prefix + key, "a base64 string", **v);
    auto bytes = base64_decode(json::text(**v));
    if (!bytes) return invalid("field '" + prefix + key + "' is not valid base64");
    out = std::move(*bytes);
    return {};
  }

  Result<const JsonValue*> object(const JsonValue& obj, const std::string& prefix, const char* key) const {
    auto v = member(obj, prefix, key);
    if (!v) return v.error();
    if (!(*v)->IsObject()) return wrong_type(prefix + key, "an object", **v);
    return *v;
  }

  Result<const JsonValue*> array(const JsonValue& obj, const std::string& prefix, const char* key,
                                 std::size_t max_size) const {
    auto v = member(obj, prefix, key);
    if (!v) return v.error();
    if (!(*v)->IsArray()) return wrong_type(prefix + key, "an array", **v);
    if ((*v)->Size() > max_size) {
      return invalid("field '" + prefix + key + "' has " + std::to_string((*v)->Size()) +
                     " elements, more than the limit of " + std::to_string(max_size));
    }
    return *v;
  }

  Status entry_id(const JsonValue& obj, const std::string& prefix, const char* key,
                  core::EntryId& out) const {
    auto v = object(obj, prefix, key);
    if (!v) return v.error();
    const std::string inner = prefix + key + ".";
    if (auto st = u64(**v, inner, "seq", out.seq); !st) return st;
    return u64(**v, inner, "origin", out.origin);
  }

  // `v` is the element at `path` (e.g. "entries[3]").
  Status entry(const JsonValue& v, const std::string& path, core::Entry& out) const {
    if (!v.IsObject()) return wrong_type(path, "an object", v);
    const std::string inner = path + ".";
    if (auto st = entry_id(v, inner, "id", out.id); !st) return st;
    auto statements = array(v, inner, "statements", kMaxPeerStatementsPerEntry);
    if (!statements) return statements.error();
    out.statements.clear();
    out.statements.reserve((*statements)->Size());
    for (rapidjson::SizeType i = 0; i < (*statements)->Size(); ++i) {
      const JsonValue& s = (**statements)[i];
      const std::string where = inner + "statements[" + std::to_string(i) + "]";
      if (!s.IsObject()) return wrong_type(where, "an object", s);
      core::LoggedStatement statement;
      const std::string fields = where + ".";
      if (auto st = text(s, fields, "sql", statement.sql); !st) return st;
      if (auto st = boolean(s, fields, "expect_ok", statement.expect_ok); !st) return st;
      if (auto st = i32(s, fields, "expect_code", statement.expect_code); !st) return st;
      if (s.HasMember("expect_insert_id")) {
        if (auto st = u64(s, fields, "expect_insert_id", statement.expect_insert_id); !st) return st;
      }
      if (s.HasMember("expect_digest")) {
        if (auto st = text(s, fields, "expect_digest", statement.expect_digest); !st) return st;
      }
      out.statements.push_back(std::move(statement));
    }
    out.effects.reset();
    if (v.HasMember("effects")) {
      std::string effects;
      if (auto st = base64(v, inner, "effects", effects); !st) return st;
      out.effects = std::move(effects);
    }
    return {};
  }

  Status outcomes(const JsonValue& root, std::vector<core::StatementOutcome>& out) const {
    auto list = array(root, "", "outcomes", kMaxPeerOutcomes);
    if (!list) return list.error();
    out.resize((*list)->Size());
    for (rapidjson::SizeType i = 0; i < (*list)->Size(); ++i) {
      if (auto st = outcome((**list)[i], "outcomes[" + std::to_string(i) + "]", out[i]); !st) return st;
    }
    return {};
  }

  Status outcome(const JsonValue& v, const std::string& path, core::StatementOutcome& out) const {
    if (!v.IsObject()) return wrong_type(path, "an object", v);
    const std::string inner = path + ".";
    if (auto st = boolean(v, inner, "ok", out.ok); !st) return st;
    if (auto st = i32(v, inner, "code", out.code); !st) return st;
    if (auto st = text(v, inner, "message", out.message); !st) return st;
    if (auto st = u64(v, inner, "rows_affected", out.rows_affected); !st) return st;
    if (auto st = u64(v, inner, "last_insert_id", out.last_insert_id); !st) return st;
    if (v.HasMember("digest")) return text(v, inner, "digest", out.digest);
    return {};
  }

 private:
  std::string context_;
};

// One read_fields per message; `root` is the frame's top-level object.

Status read_fields(const Reader& r, const JsonValue& root, core::Heartbeat& m) {
  if (auto st = r.u64(root, "", "epoch", m.epoch); !st) return st;
  if (auto st = r.node_id(root, "", "coordinator", 0, m.coordinator); !st) return st;
  if (auto st = r.boolean(root, "", "is_coordinator", m.is_coordinator); !st) return st;
  if (auto st = r.entry_id(root, "", "applied", m.applied); !st) return st;
  auto view = r.array(root, "", "view", kMaxPeerViewMembers);
  if (!view) return view.error();
  m.view.reserve((*view)->Size());
  for (rapidjson::SizeType i = 0; i < (*view)->Size(); ++i) {
    std::uint64_t id = 0;
    if (auto st = r.unsigned_value((**view)[i], "view[" + std::to_string(i) + "]", 1, kNodeIdMax, id); !st) {
      return st;
    }
    m.view.push_back(static_cast<NodeId>(id));
  }
  // Optional: absent, the sender may be elected (as every sender before
  // the field existed).
  if (!root.HasMember("eligible")) return {};
  return r.boolean(root, "", "eligible", m.eligible);
}

Status read_fields(const Reader& r, const JsonValue& root, core::VoteRequest& m) {
  return r.u64(root, "", "epoch", m.epoch);
}

Status read_fields(const Reader& r, const JsonValue& root, core::VoteReply& m) {
  if (auto st = r.u64(root, "", "epoch", m.epoch); !st) return st;
  if (auto st = r.boolean(root, "", "granted", m.granted); !st) return st;
  if (auto st = r.entry_id(root, "", "applied", m.applied); !st) return st;
  return r.u64(root, "", "promised", m.promised);
}

Status read_fields(const Reader& r, const JsonValue& root, core::Prepare& m) {
  if (auto st = r.u64(root, "", "epoch", m.epoch); !st) return st;
  if (auto st = r.entry_id(root, "", "previous", m.previous); !st) return st;
  auto entry = r.member(root, "", "entry");
  if (!entry) return entry.error();
  if (auto st = r.entry(**entry, "entry", m.entry); !st) return st;
  m.outcomes.clear();
  if (root.HasMember("outcomes")) return r.outcomes(root, m.outcomes);
  return {};
}

Status read_fields(const Reader& r, const JsonValue& root, core::PrepareReply& m) {
  if (auto st = r.u64(root, "", "epoch", m.epoch); !st) return st;
  if (auto st = r.entry_id(root, "", "entry", m.entry); !st) return st;
  if (auto st = r.boolean(root, "", "yes", m.yes); !st) return st;
  if (auto st = r.text(root, "", "reason", m.reason); !st) return st;
  m.effects_refused = false;
  if (root.HasMember("effects_refused")) {
    if (auto st = r.boolean(root, "", "effects_refused", m.effects_refused); !st) return st;
  }
  return r.outcomes(root, m.outcomes);
}

Status read_fields(const Reader& r, const JsonValue& root, core::Decide& m) {
  if (auto st = r.u64(root, "", "epoch", m.epoch); !st) return st;
  return r.entry_id(root, "", "entry", m.entry);
}

Status read_fields(const Reader& r, const JsonValue& root, core::DecideReply& m) {
  if (auto st = r.u64(root, "", "epoch", m.epoch); !st) return st;
  if (auto st = r.entry_id(root, "", "entry", m.entry); !st) return st;
  return r.boolean(root, "", "ok", m.ok);
}

Status read_fields(const Reader& r, const JsonValue& root, core::CatchUpRequest& m) {
  if (auto st = r.u64(root, "", "epoch", m.epoch); !st) return st;
  if (auto st = r.entry_id(root, "", "applied", m.applied); !st) return st;
  if (auto st = r.boolean(root, "", "join", m.join); !st) return st;
  return r.boolean(root, "", "snapshot", m.snapshot);
}

Status read_fields(const Reader& r, const JsonValue& root, core::CatchUpReply& m) {
  if (auto st = r.u64(root, "", "epoch", m.epoch); !st) return st;
  auto entries = r.array(root, "", "entries", kMaxPeerEntries);
  if (!entries) return entries.error();
  m.entries.resize((*entries)->Size());
  for (rapidjson::SizeType i = 0; i < (*entries)->Size(); ++i) {
    if (auto st = r.entry((**entries)[i], "entries[" + std::to_string(i) + "]", m.entries[i]); !st) return st;
  }
  if (auto st = r.boolean(root, "", "conflict", m.conflict); !st) return st;
  if (auto st = r.boolean(root, "", "snapshot", m.snapshot); !st) return st;
  if (auto st = r.entry_id(root, "", "snapshot_applied", m.snapshot_applied); !st) return st;
  if (auto st = r.base64(root, "", "snapshot_data", m.snapshot_data); !st) return st;
  if (auto st = r.boolean(root, "", "joined", m.joined); !st) return st;
  return r.entry_id(root, "", "last", m.last);
}

Status read_fields(const Reader& r, const JsonValue& root, core::ForwardedWrite& m) {
  if (auto st = r.u64(root, "", "epoch", m.epoch); !st) return st;
  if (auto st = r.u64(root, "", "tag", m.tag); !st) return st;
  return r.text(root, "", "sql", m.sql);
}

Status read_fields(const Reader& r, const JsonValue& root, core::ForwardedReply& m) {
  if (auto st = r.u64(root, "", "tag", m.tag); !st) return st;
  auto result = r.member(root, "", "result");
  if (!result) return result.error();
  std::uint64_t kind = 0;
  if (auto st = r.unsigned_value(**result, "result", 0, kMaxWriteResultKind, kind); !st) return st;
  m.result = static_cast<int>(kind);
  auto outcome = r.member(root, "", "outcome");
  if (!outcome) return outcome.error();
  if (auto st = r.outcome(**outcome, "outcome", m.outcome); !st) return st;
  if (auto st = r.node_id(root, "", "coordinator", 0, m.coordinator); !st) return st;
  return r.text(root, "", "message", m.message);
}

// Decodes alternative I of core::Message; kReaders holds one per message.
template <std::size_t I>
Status read_alternative(const Reader& r, const JsonValue& root, Message& out) {
  std::variant_alternative_t<I, Message> m{};
  if (auto st = read_fields(r, root, m); !st) return st;
  out = std::move(m);
  return {};
}

using ReadFn = Status (*)(const Reader&, const JsonValue&, Message&);

template <std::size_t... I>
constexpr std::array<ReadFn, sizeof...(I)> make_readers(std::index_sequence<I...>) {
  return {&read_alternative<I>...};
}

constexpr auto kReaders = make_readers(std::make_index_sequence<std::variant_size_v<Message>>{});

std::string known_names() {
  std::string out;
  for (std::size_t i = 0; i < kMessageNames.size(); ++i) {
    if (i > 0) out += i + 1 == kMessageNames.size() ? " or " : ", ";
    out += kMessageNames[i];
  }
  return out;
}

bool skip_ws(std::string_view s, std::size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  return i < s.size();
}

bool consume(std::string_view s, std::size_t& i, std::string_view token) {
  if (s.substr(i, token.size()) != token) return false;
  i += token.size();
  return true;
}

constexpr std::string_view kChunkRequestName = "SnapshotChunkRequest";
constexpr std::string_view kChunkName = "SnapshotChunk";

void put_fields(JsonWriter& w, const SnapshotChunkRequest& m) {
  put_u64(w, "transfer", m.transfer);
  put_u64(w, "offset", m.offset);
  put_u64(w, "length", m.length);
}

void put_fields(JsonWriter& w, const SnapshotChunk& m) {
  put_u64(w, "transfer", m.transfer);
  put_u64(w, "offset", m.offset);
  put_raw_string(w, "data", base64_encode(m.data));
  put_bool(w, "gone", m.gone);
}

Status read_transfer(const JsonValue& root, std::string_view name, TransferEnvelope& out) {
  const Reader r("peer message " + std::string(name));
  if (auto st = r.node_id(root, "", "from", 1, out.from); !st) return st;
  if (auto st = r.node_id(root, "", "to", 1, out.to); !st) return st;
  if (name == kChunkRequestName) {
    SnapshotChunkRequest m;
    if (auto st = r.u64(root, "", "transfer", m.transfer); !st) return st;
    if (auto st = r.u64(root, "", "offset", m.offset); !st) return st;
    if (auto st = r.u64(root, "", "length", m.length); !st) return st;
    if (m.length == 0 || m.length > kMaxSnapshotChunkBytes) {
      return r.invalid("field 'length' must be an integer from 1 to " +
                       std::to_string(kMaxSnapshotChunkBytes));
    }
    out.message = m;
    return {};
  }
  SnapshotChunk m;
  if (auto st = r.u64(root, "", "transfer", m.transfer); !st) return st;
  if (auto st = r.u64(root, "", "offset", m.offset); !st) return st;
  if (auto st = r.base64(root, "", "data", m.data); !st) return st;
  if (m.data.size() > kMaxSnapshotChunkBytes) {
    return r.invalid("field 'data' holds " + std::to_string(m.data.size()) +
                     " bytes, more than the limit of " + std::to_string(kMaxSnapshotChunkBytes));
  }
  if (auto st = r.boolean(root, "", "gone", m.gone); !st) return st;
  out.message = std::move(m);
  return {};
}

// Every peer frame: {"type":"PEER","from":F,"to":T,"msg":NAME, fields...}.
template <class Fields>
std::string encode_frame(NodeId from, NodeId to, std::string_view name, const Fields& fields) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("type");
  put_raw_string(w, kPeerFrameType);
  w.Key("from");
  w.Uint(from);
  w.Key("to");
  w.Uint(to);
  w.Key("msg");
  put_raw_string(w, name);
  std::visit([&w](const auto& m) { put_fields(w, m); }, fields);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Status parse_frame(std::string_view json, rapidjson::Document& doc) {
  doc.Parse<kParseFlags>(json.data(), json.size());
  if (!doc.HasParseError()) return {};
  return Error(ErrorKind::invalid_request, "invalid peer message: invalid JSON at byte " +
                                               std::to_string(doc.GetErrorOffset()) + ": " +
                                               rapidjson::GetParseError_En(doc.GetParseError()));
}

}  // namespace

const char* peer_message_name(const Message& message) {
  const std::size_t index = message.index();
  return index < kMessageNames.size() ? kMessageNames[index] : "?";
}

std::string encode_peer(const Envelope& envelope) {
  return encode_frame(envelope.from, envelope.to, peer_message_name(envelope.message), envelope.message);
}

Result<Envelope> decode_peer_document(const rapidjson::Value& root) {
  const Reader top("peer message");
  if (!root.IsObject()) {
    return top.invalid(std::string("a peer message must be a JSON object, got ") + json::type_name(root));
  }
  auto type = top.member(root, "", "type");
  if (!type) return type.error();
  if (!(*type)->IsString()) return top.wrong_type("type", "a string", **type);
  if (json::text(**type) != kPeerFrameType) {
    return top.invalid("field 'type' must be 'PEER', got " + quote_for_message(json::text(**type)));
  }
  auto msg = top.member(root, "", "msg");
  if (!msg) return msg.error();
  if (!(*msg)->IsString()) return top.wrong_type("msg", "a string", **msg);
  const std::string_view name = json::text(**msg);
  std::size_t index = kMessageNames.size();
  for (std::size_t i = 0; i < kMessageNames.size(); ++i) {
    if (name == kMessageNames[i]) index = i;
  }
  if (index == kMessageNames.size()) {
    return top.invalid("unknown message " + quote_for_message(name) + " in field 'msg' (expected " +
                       known_names() + ")");
  }

  const Reader r(std::string("peer message ") + kMessageNames[index]);
  Envelope envelope;
  if (auto st = r.node_id(root, "", "from", 1, envelope.from); !st) return st.error();
  if (auto st = r.node_id(root, "", "to", 1, envelope.to); !st) return st.error();
  if (auto st = kReaders[index](r, root, envelope.message); !st) return st.error();
  return envelope;
}

Result<Envelope> decode_peer(std::string_view json) {
  rapidjson::Document doc;
  if (auto st = parse_frame(json, doc); !st) return st.error();
  return decode_peer_document(doc);
}

std::string encode_transfer(const TransferEnvelope& envelope) {
  const std::string_view name =
      std::holds_alternative<SnapshotChunkRequest>(envelope.message) ? kChunkRequestName : kChunkName;
  return encode_frame(envelope.from, envelope.to, name, envelope.message);
}

Result<PeerFrame> decode_peer_frame(std::string_view json) {
  rapidjson::Document doc;
  if (auto st = parse_frame(json, doc); !st) return st.error();
  if (doc.IsObject()) {
    const auto msg = doc.FindMember("msg");
    const auto type = doc.FindMember("type");
    if (msg != doc.MemberEnd() && msg->value.IsString() && type != doc.MemberEnd() &&
        type->value.IsString() && json::text(type->value) == kPeerFrameType &&
        (json::text(msg->value) == kChunkRequestName || json::text(msg->value) == kChunkName)) {
      TransferEnvelope envelope;
      if (auto st = read_transfer(doc, json::text(msg->value), envelope); !st) return st.error();
      return PeerFrame(std::move(envelope));
    }
  }
  auto envelope = decode_peer_document(doc);
  if (!envelope) return envelope.error();
  return PeerFrame(std::move(*envelope));
}

bool is_peer_frame(std::string_view frame) {
  std::size_t i = 0;
  if (!skip_ws(frame, i) || !consume(frame, i, "{")) return false;
  if (!skip_ws(frame, i) || !consume(frame, i, "\"type\"")) return false;
  if (!skip_ws(frame, i) || !consume(frame, i, ":")) return false;
  return skip_ws(frame, i) && consume(frame, i, "\"PEER\"");
}

}  // namespace distdb::wire
