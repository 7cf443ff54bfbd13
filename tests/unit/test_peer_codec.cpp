#include <doctest/doctest.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "wire/peer_codec.hpp"

using namespace distdb;
using namespace distdb::core;
using namespace distdb::wire;

namespace {

constexpr std::uint64_t kMax64 = std::numeric_limits<std::uint64_t>::max();
constexpr NodeId kMaxNode = std::numeric_limits<NodeId>::max();

// ------------------------------------------------------------ equality

bool same(const EntryId& a, const EntryId& b) {
  return a == b;
}
bool same(const LoggedStatement& a, const LoggedStatement& b) {
  return a.sql == b.sql && a.expect_ok == b.expect_ok && a.expect_code == b.expect_code &&
         a.expect_insert_id == b.expect_insert_id && a.expect_digest == b.expect_digest;
}
bool same(const StatementOutcome& a, const StatementOutcome& b) {
  return a.ok == b.ok && a.code == b.code && a.message == b.message && a.rows_affected == b.rows_affected &&
         a.last_insert_id == b.last_insert_id && a.digest == b.digest;
}
bool same(NodeId a, NodeId b) {
  return a == b;
}
bool same(const Entry& a, const Entry& b);
template <class T>
bool same(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!same(a[i], b[i])) return false;
  }
  return true;
}
bool same(const Entry& a, const Entry& b) {
  return same(a.id, b.id) && same(a.statements, b.statements) && a.effects == b.effects;
}
bool same(const Heartbeat& a, const Heartbeat& b) {
  return a.epoch == b.epoch && a.coordinator == b.coordinator && a.is_coordinator == b.is_coordinator &&
         same(a.applied, b.applied) && same(a.view, b.view) && a.eligible == b.eligible;
}
bool same(const VoteRequest& a, const VoteRequest& b) {
  return a.epoch == b.epoch;
}
bool same(const VoteReply& a, const VoteReply& b) {
  return a.epoch == b.epoch && a.granted == b.granted && same(a.applied, b.applied) &&
         a.promised == b.promised;
}
bool same(const Prepare& a, const Prepare& b) {
  return a.epoch == b.epoch && same(a.previous, b.previous) && same(a.entry, b.entry) &&
         same(a.outcomes, b.outcomes);
}
bool same(const PrepareReply& a, const PrepareReply& b) {
  return a.epoch == b.epoch && same(a.entry, b.entry) && a.yes == b.yes && a.reason == b.reason &&
         same(a.outcomes, b.outcomes) && a.effects_refused == b.effects_refused;
}
bool same(const Decide& a, const Decide& b) {
  return a.epoch == b.epoch && same(a.entry, b.entry);
}
bool same(const DecideReply& a, const DecideReply& b) {
  return a.epoch == b.epoch && same(a.entry, b.entry) && a.ok == b.ok;
}
bool same(const CatchUpRequest& a, const CatchUpRequest& b) {
  return a.epoch == b.epoch && same(a.applied, b.applied) && a.join == b.join && a.snapshot == b.snapshot;
}
bool same(const CatchUpReply& a, const CatchUpReply& b) {
  return a.epoch == b.epoch && same(a.entries, b.entries) && a.conflict == b.conflict &&
         a.snapshot == b.snapshot && same(a.snapshot_applied, b.snapshot_applied) &&
         a.snapshot_data == b.snapshot_data && a.joined == b.joined && same(a.last, b.last);
}
bool same(const ForwardedWrite& a, const ForwardedWrite& b) {
  return a.epoch == b.epoch && a.tag == b.tag && a.sql == b.sql;
}
bool same(const ForwardedReply& a, const ForwardedReply& b) {
  return a.tag == b.tag && a.result == b.result && same(a.outcome, b.outcome) &&
         a.coordinator == b.coordinator && a.message == b.message;
}
bool same(const Envelope& a, const Envelope& b) {
  if (a.from != b.from || a.to != b.to || a.message.index() != b.message.index()) return false;
  return std::visit(
      [&b](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        return same(m, std::get<T>(b.message));
      },
      a.message);
}

// ------------------------------------------------------------ samples

std::string all_bytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  return s;
}

const std::string kUnicode =
    std::string("caf\xC3\xA9 \xF0\x9F\x98\x80 \"q\" \\ \n\t", 19) + std::string(1, '\0') + "end";
const std::string kLatin1 = "na\xEFve \xFF\xFE";  // not UTF-8: travels as base64

Entry sample_entry(Seq seq) {
  Entry e;
  e.id = {seq, kMax64 - 1};
  e.statements.push_back(
      {"INSERT INTO t VALUES ('" + kUnicode + "')", false, std::numeric_limits<int>::min()});
  e.statements.push_back({kLatin1, true, std::numeric_limits<int>::max()});
  e.statements.push_back({"", false, -1});
  e.statements.push_back({"/* distdb_checksum */", true, 0, kMax64, "0123456789abcdef" + kUnicode});
  return e;
}

StatementOutcome sample_outcome() {
  StatementOutcome o;
  o.ok = false;
  o.code = -1062;
  o.message = kLatin1;
  o.rows_affected = kMax64;
  o.last_insert_id = kMax64 - 7;
  o.digest = kLatin1;
  return o;
}

// Every message type, every field away from its default.
std::vector<Message> full_messages() {
  std::vector<Message> out;
  out.push_back(Heartbeat{kMax64, kMaxNode, true, {kMax64, kMax64}, {1, 2, kMaxNode}});
  out.push_back(Heartbeat{3, 0, false, {2, 1}, {}, false});  // waits for a full copy
  out.push_back(VoteRequest{kMax64});
  out.push_back(VoteReply{kMax64, true, {3, kMax64}, kMax64 - 1});
  out.push_back(Prepare{kMax64, {41, 2}, sample_entry(42), {}});
  // An entry shipped as effects: arbitrary bytes, and the coordinator's outcomes.
  Entry shipped = sample_entry(43);
  shipped.effects = all_bytes();
  out.push_back(Prepare{
      7, {42, 7}, shipped, {sample_outcome(), StatementOutcome{}, sample_outcome(), StatementOutcome{}}});
  Entry nothing_changed{{44, 7}, {{"UPDATE t SET v = v", true, 0, 0, ""}}, std::string()};
  out.push_back(Prepare{7, {43, 7}, nothing_changed, {StatementOutcome{}}});
  out.push_back(
      PrepareReply{9, {42, 9}, true, kUnicode, {sample_outcome(), StatementOutcome{}, sample_outcome()}});
  PrepareReply refused{9, {43, 9}, false, "storage: Can't find record", {}, false};
  refused.effects_refused = true;
  out.push_back(refused);
  out.push_back(Decide{kMax64, {kMax64, kMax64}});
  out.push_back(DecideReply{kMax64, {1, 1}, true});
  out.push_back(CatchUpRequest{kMax64, {kMax64, 0}, true});
  out.push_back(CatchUpRequest{5, {4, 3}, true, true});  // a member that diverged asks for a full copy
  CatchUpReply c;
  c.epoch = kMax64;
  c.entries = {sample_entry(5), Entry{{6, 7}, {}, {}}, shipped, sample_entry(kMax64)};
  c.conflict = true;
  c.snapshot = true;
  c.snapshot_applied = {kMax64, 3};
  c.snapshot_data = all_bytes() + all_bytes();
  c.joined = true;
  c.last = {kMax64, kMax64};
  out.push_back(c);
  out.push_back(ForwardedWrite{kMax64, kMax64, "UPDATE t SET v = '" + kUnicode + "'"});
  out.push_back(ForwardedReply{kMax64, 3, sample_outcome(), kMaxNode, kLatin1});
  return out;
}

// Every message type with default fields (empty strings and vectors).
std::vector<Message> empty_messages() {
  std::vector<Message> out;
  out.emplace_back(Heartbeat{});
  out.emplace_back(VoteRequest{});
  out.emplace_back(VoteReply{});
  out.emplace_back(Prepare{});
  out.emplace_back(PrepareReply{});
  out.emplace_back(Decide{});
  out.emplace_back(DecideReply{});
  out.emplace_back(CatchUpRequest{});
  out.emplace_back(CatchUpReply{});
  out.emplace_back(ForwardedWrite{});
  out.emplace_back(ForwardedReply{});
  return out;
}

Envelope round_trip(const Envelope& e) {
  const std::string json = encode_peer(e);
  CHECK(json.find('\n') == std::string::npos);
  CHECK(is_peer_frame(json));
  auto decoded = decode_peer(json);
  if (!decoded) FAIL_CHECK(decoded.error().message << " in " << json);
  REQUIRE(decoded.ok());
  CHECK(encode_peer(*decoded) == json);
  return std::move(decoded).value();
}

Error decode_fails(std::string_view json) {
  auto r = decode_peer(json);
  if (r) FAIL_CHECK("decoded: " << json.substr(0, 300));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind == ErrorKind::invalid_request);
  CHECK(!r.error().message.empty());
  CHECK(r.error().message.find('\n') == std::string::npos);
  return r.error();
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string serialize(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

// Calls `f(value, path)` for every value below the root of `v`; paths are
// written the way the codec names fields ("applied.seq", "entries[1].id").
void for_each_value(rapidjson::Value& v, const std::string& path,
                    const std::function<void(rapidjson::Value&, const std::string&)>& f) {
  if (v.IsObject()) {
    // Counted: comparing rapidjson 1.1's mutable member iterators is ambiguous in C++20.
    auto it = v.MemberBegin();
    for (rapidjson::SizeType member = 0; member < v.MemberCount(); ++member, ++it) {
      const std::string child = path.empty() ? it->name.GetString() : path + "." + it->name.GetString();
      f(it->value, child);
      for_each_value(it->value, child, f);
    }
  } else if (v.IsArray()) {
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
      const std::string child = path + "[" + std::to_string(i) + "]";
      f(v[i], child);
      for_each_value(v[i], child, f);
    }
  }
}

// A valid frame around `fields` (the message's own, after "msg").
std::string frame(const std::string& msg, const std::string& fields) {
  return R"({"type":"PEER","from":1,"to":2,"msg":")" + msg + "\"" + (fields.empty() ? "" : "," + fields) +
         "}";
}

const std::string kEntryId = R"({"seq":1,"origin":1})";

}  // namespace

// ------------------------------------------------------------ round trips

TEST_CASE("peer codec: every message round-trips with every field set") {
  for (const Message& m : full_messages()) {
    CAPTURE(peer_message_name(m));
    const Envelope e{kMaxNode, 1, m};
    const Envelope back = round_trip(e);
    CHECK(same(e, back));
  }
}

TEST_CASE("peer codec: every message round-trips with default fields and empty vectors") {
  for (const Message& m : empty_messages()) {
    CAPTURE(peer_message_name(m));
    const Envelope e{1, kMaxNode, m};
    CHECK(same(e, round_trip(e)));
  }
}

TEST_CASE("peer codec: the frame's shape") {
  const Envelope e{3, 4, Heartbeat{7, 3, true, {42, 7}, {3, 4, 5}}};
  CHECK(encode_peer(e) ==
        R"({"type":"PEER","from":3,"to":4,"msg":"Heartbeat","epoch":7,"coordinator":3,"is_coordinator":true,)"
        R"("applied":{"seq":42,"origin":7},"view":[3,4,5],"eligible":true})");
  CHECK(std::string(peer_message_name(Message{CatchUpReply{}})) == "CatchUpReply");
}

TEST_CASE("peer codec: bytes survive exactly: snapshot data, NULs, text that is not UTF-8") {
  CatchUpReply c;
  c.snapshot = true;
  for (std::size_t n : {0U, 1U, 2U, 3U, 4U, 255U, 256U, 257U}) {
    c.snapshot_data = all_bytes().substr(0, n);
    const Envelope back = round_trip({1, 2, c});
    CHECK(std::get<CatchUpReply>(back.message).snapshot_data == c.snapshot_data);
  }
  // Binary text: base64 object on the wire, exact bytes back.
  const Envelope w{1, 2, ForwardedWrite{1, 2, all_bytes()}};
  const std::string json = encode_peer(w);
  CHECK(contains(json, R"("sql":{"base64":")"));
  CHECK(std::get<ForwardedWrite>(round_trip(w).message).sql == all_bytes());
  // UTF-8 text with a NUL stays a string.
  const Envelope u{1, 2, ForwardedWrite{1, 2, kUnicode}};
  CHECK(contains(encode_peer(u), R"("sql":"caf)"));
  CHECK(std::get<ForwardedWrite>(round_trip(u).message).sql == kUnicode);
}

TEST_CASE("peer codec: fields it does not know are ignored, whitespace and order are free") {
  const std::string json = R"(  { "msg" : "VoteRequest", "epoch": 9, "future": [1, {"x": null}],
                                  "to": 2, "from": 1, "type": "PEER" } )";
  auto r = decode_peer(json);
  REQUIRE(r.ok());
  CHECK(r->from == 1);
  CHECK(r->to == 2);
  CHECK(std::get<VoteRequest>(r->message).epoch == 9);
  CHECK_FALSE(is_peer_frame(json));  // "type" is not first: only the fast path misses it
  CHECK(is_peer_frame(R"( {"type" : "PEER"})"));
  CHECK_FALSE(is_peer_frame(R"({"type":"PEERS"})"));
  CHECK_FALSE(is_peer_frame(R"({"type":"CLIENT_QUERY","payload":{"query":"PEER"}})"));
  CHECK_FALSE(is_peer_frame(""));
}

TEST_CASE("peer codec: decode_peer_document takes an already parsed document") {
  rapidjson::Document doc;
  const std::string json = encode_peer({1, 2, Decide{5, {6, 5}}});
  doc.Parse(json.data(), json.size());
  REQUIRE_FALSE(doc.HasParseError());
  auto r = decode_peer_document(doc);
  REQUIRE(r.ok());
  CHECK(std::get<Decide>(r->message).entry == EntryId{6, 5});

  rapidjson::Document client;
  client.Parse(R"({"type":"PING","id":1})");
  auto refused = decode_peer_document(client);
  REQUIRE_FALSE(refused.ok());
  CHECK(contains(refused.error().message, "field 'type' must be 'PEER'"));
  rapidjson::Document array;
  array.Parse("[1]");
  CHECK_FALSE(decode_peer_document(array).ok());
}

// ------------------------------------------------------------ hostile input

TEST_CASE("peer codec: every field is required, and the error names it") {
  for (const Message& m : full_messages()) {
    CAPTURE(peer_message_name(m));
    rapidjson::Document doc;
    const std::string json = encode_peer({1, 2, m});
    doc.Parse(json.data(), json.size());
    REQUIRE_FALSE(doc.HasParseError());
    // Collect every object member's path, then remove each one in turn.
    std::vector<std::string> paths;
    for_each_value(doc, "", [&](rapidjson::Value&, const std::string& path) { paths.push_back(path); });
    std::size_t removed = 0;
    for (std::size_t k = 0; k < paths.size(); ++k) {
      rapidjson::Document copy;
      copy.CopyFrom(doc, copy.GetAllocator());
      std::size_t index = 0;
      std::function<bool(rapidjson::Value&)> remove_kth = [&](rapidjson::Value& v) -> bool {
        if (v.IsObject()) {
          auto it = v.MemberBegin();
          for (rapidjson::SizeType member = 0; member < v.MemberCount(); ++member, ++it) {
            if (index++ == k) {
              v.EraseMember(it);
              return true;
            }
            if (remove_kth(it->value)) return true;
          }
        } else if (v.IsArray()) {
          for (auto& child : v.GetArray()) {
            if (index++ == k) return false;  // array elements are not fields
            if (remove_kth(child)) return true;
          }
        }
        return false;
      };
      if (!remove_kth(copy)) continue;
      CAPTURE(paths[k]);
      // The few optional fields (absent: 0 or empty) decode without them.
      const bool base64_inside = contains(paths[k], ".base64");
      if (!base64_inside &&
          (contains(paths[k], "expect_insert_id") || contains(paths[k], "expect_digest") ||
           contains(paths[k], ".digest") || paths[k] == "digest" || paths[k] == "eligible" ||
           contains(paths[k], "effects") || (std::holds_alternative<Prepare>(m) && paths[k] == "outcomes"))) {
        auto optional = decode_peer(serialize(copy));
        CHECK_MESSAGE(optional.ok(), (optional.ok() ? "" : optional.error().message));
        continue;
      }
      ++removed;
      const Error e = decode_fails(serialize(copy));
      // A base64 object without its "base64" is a wrong type, not a missing field.
      if (!contains(paths[k], ".base64")) {
        CHECK_MESSAGE(contains(e.message, "missing field '" + paths[k] + "'"), e.message);
      }
    }
    CHECK(removed > 0);
  }
}

TEST_CASE("peer codec: every field of the wrong type is refused, and the error names it") {
  for (const Message& m : full_messages()) {
    CAPTURE(peer_message_name(m));
    rapidjson::Document doc;
    const std::string json = encode_peer({1, 2, m});
    doc.Parse(json.data(), json.size());
    std::size_t count = 0;
    for_each_value(doc, "", [&](rapidjson::Value&, const std::string&) { ++count; });
    for (std::size_t k = 0; k < count; ++k) {
      rapidjson::Document copy;
      copy.CopyFrom(doc, copy.GetAllocator());
      std::size_t index = 0;
      std::string path;
      for_each_value(copy, "", [&](rapidjson::Value& v, const std::string& p) {
        if (index++ != k) return;
        path = p;
        const bool base64_text = v.IsObject() && v.HasMember("base64");
        if (v.IsString() || base64_text) {
          v.SetInt(1);
        } else {
          v.SetString("x");
        }
      });
      CAPTURE(path);
      const Error e = decode_fails(serialize(copy));
      // The error names the field, or the object around it.
      const std::string top = path.substr(0, path.find_first_of(".["));
      CHECK_MESSAGE(contains(e.message, "'" + top), e.message);
    }
  }
}

TEST_CASE("peer codec: malformed frames") {
  CHECK(contains(decode_fails("").message, "invalid JSON"));
  CHECK(contains(decode_fails("{").message, "invalid JSON"));
  CHECK(contains(decode_fails(R"({"type":"PEER",})").message, "invalid JSON"));
  CHECK(contains(decode_fails("[1,2]").message, "must be a JSON object"));
  CHECK(contains(decode_fails("null").message, "must be a JSON object"));
  CHECK(contains(decode_fails(R"({"from":1})").message, "missing field 'type'"));
  CHECK(contains(decode_fails(R"({"type":7})").message, "field 'type' must be a string"));
  CHECK(contains(decode_fails(R"({"type":"CLIENT_QUERY"})").message, "field 'type' must be 'PEER'"));
  CHECK(contains(decode_fails(R"({"type":"PEER","from":1,"to":2})").message, "missing field 'msg'"));
  CHECK(contains(decode_fails(R"({"type":"PEER","from":1,"to":2,"msg":3})").message,
                 "field 'msg' must be a string"));
  const Error unknown = decode_fails(frame("Snapshot", ""));
  CHECK(contains(unknown.message, "unknown message 'Snapshot' in field 'msg'"));
  CHECK(contains(unknown.message, "Heartbeat"));
  CHECK(contains(decode_fails(frame("heartbeat", "")).message, "unknown message"));  // exact case
  // Bytes that are not UTF-8 in a JSON string, or a control character.
  CHECK(contains(decode_fails("{\"type\":\"PEER\",\"msg\":\"\xFF\"}").message, "invalid JSON"));
  CHECK(contains(decode_fails("{\"type\":\"PEER\",\"msg\":\"\x01\"}").message, "invalid JSON"));
  const Error ugly = decode_fails(
      R"({"type":"PEER","from":1,"to":2,"msg":"\u0001\u007fDROP TABLE x; and a very long name indeed, longer than forty"})");
  CHECK(contains(ugly.message, "'??DROP TABLE"));
  CHECK(contains(ugly.message, "...'"));
  // A million brackets: parsed without recursion, refused cleanly.
  const std::string deep = R"({"type":"PEER","msg":"Heartbeat","view":)" + std::string(1000000, '[');
  CHECK(contains(decode_fails(deep).message, "invalid JSON"));
  const std::string deep_closed =
      R"({"type":"PEER","from":1,"to":2,"msg":"Heartbeat","epoch":1,"coordinator":0,)"
      R"("is_coordinator":false,"applied":{"seq":1,"origin":1},"view":)" +
      std::string(100000, '[') + std::string(100000, ']') + "}";
  CHECK(contains(decode_fails(deep_closed).message, "field 'view[0]'"));
}

TEST_CASE("peer codec: numbers out of range") {
  const std::string vote = frame("VoteRequest", R"("epoch":1)");
  REQUIRE(decode_peer(vote).ok());
  // from / to: node ids 1 to 2^32-1.
  CHECK(contains(decode_fails(R"({"type":"PEER","from":0,"to":2,"msg":"VoteRequest","epoch":1})").message,
                 "field 'from' must be an integer from 1 to 4294967295 (got 0)"));
  CHECK(contains(decode_fails(R"({"type":"PEER","from":-1,"to":2,"msg":"VoteRequest","epoch":1})").message,
                 "(got -1)"));
  CHECK(contains(
      decode_fails(R"({"type":"PEER","from":4294967296,"to":2,"msg":"VoteRequest","epoch":1})").message,
      "field 'from' must be an integer from 1 to 4294967295 (got 4294967296)"));
  CHECK(contains(decode_fails(R"({"type":"PEER","from":1.0,"to":2,"msg":"VoteRequest","epoch":1})").message,
                 "got a real number"));
  CHECK(contains(decode_fails(R"({"type":"PEER","from":1,"to":"2","msg":"VoteRequest","epoch":1})").message,
                 "field 'to' must be an integer from 1 to 4294967295, got a string"));
  CHECK(contains(decode_fails(R"({"type":"PEER","from":1,"to":null,"msg":"VoteRequest","epoch":1})").message,
                 "got null"));
  // Unsigned 64-bit: no negatives, nothing past 2^64-1, no fractions.
  CHECK(decode_peer(frame("VoteRequest", R"("epoch":18446744073709551615)")).ok());
  CHECK(contains(decode_fails(frame("VoteRequest", R"("epoch":-1)")).message,
                 "invalid peer message VoteRequest: field 'epoch' must be an integer from 0 to "
                 "18446744073709551615 (got -1)"));
  CHECK(contains(decode_fails(frame("VoteRequest", R"("epoch":18446744073709551616)")).message,
                 "got a real number"));
  CHECK(contains(decode_fails(frame("VoteRequest", R"("epoch":1e3)")).message, "got a real number"));
  CHECK(contains(decode_fails(frame("VoteRequest", R"("epoch":true)")).message, "got a boolean"));
  CHECK(contains(decode_fails(frame("Decide", R"("epoch":1,"entry":{"seq":-5,"origin":1})")).message,
                 "field 'entry.seq' must be an integer from 0"));
  CHECK(contains(decode_fails(frame("Decide", R"("epoch":1,"entry":[1,1])")).message,
                 "field 'entry' must be an object, got an array"));
  // 32-bit signed codes.
  const std::string outcome_head =
      R"("epoch":1,"entry":{"seq":1,"origin":1},"yes":true,"reason":"","outcomes":)";
  CHECK(
      decode_peer(
          frame("PrepareReply",
                outcome_head +
                    R"([{"ok":false,"code":-2147483648,"message":"","rows_affected":0,"last_insert_id":0}])"))
          .ok());
  CHECK(contains(
      decode_fails(
          frame("PrepareReply",
                outcome_head +
                    R"([{"ok":false,"code":2147483648,"message":"","rows_affected":0,"last_insert_id":0}])"))
          .message,
      "field 'outcomes[0].code' must be an integer from -2147483648 to 2147483647 (got 2147483648)"));
  CHECK(contains(decode_fails(frame("PrepareReply", outcome_head + R"([{"ok":1}])")).message,
                 "field 'outcomes[0].ok' must be a boolean, got an integer"));
  CHECK(contains(decode_fails(frame("PrepareReply", outcome_head + "[7]")).message,
                 "field 'outcomes[0]' must be an object, got an integer"));
  // ForwardedReply.result: a WriteResult::Kind.
  const std::string outcome = R"({"ok":true,"code":0,"message":"","rows_affected":0,"last_insert_id":0})";
  auto reply = [&](const std::string& result) {
    return frame("ForwardedReply", R"("tag":1,"result":)" + result + R"(,"outcome":)" + outcome +
                                       R"(,"coordinator":0,"message":"")");
  };
  CHECK(decode_peer(reply("3")).ok());
  CHECK(contains(decode_fails(reply("4")).message, "field 'result' must be an integer from 0 to 3 (got 4)"));
  CHECK(
      contains(decode_fails(reply("-1")).message, "field 'result' must be an integer from 0 to 3 (got -1)"));
  // Heartbeat view members are real node ids.
  const std::string hb =
      R"("epoch":1,"coordinator":0,"is_coordinator":false,"applied":{"seq":1,"origin":1},"view":)";
  CHECK(decode_peer(frame("Heartbeat", hb + "[1,4294967295]")).ok());
  CHECK(contains(decode_fails(frame("Heartbeat", hb + "[1,0]")).message,
                 "field 'view[1]' must be an integer from 1 to 4294967295 (got 0)"));
  CHECK(contains(decode_fails(frame("Heartbeat", hb + R"([1,"2"])")).message, "field 'view[1]'"));
}

TEST_CASE("peer codec: arrays longer than the limits are refused before anything is built") {
  const std::string hb =
      R"("epoch":1,"coordinator":0,"is_coordinator":false,"applied":{"seq":1,"origin":1},"view":)";
  auto ids = [](std::size_t n) {
    std::string s = "[";
    for (std::size_t i = 0; i < n; ++i) s += i == 0 ? "1" : ",1";
    return s + "]";
  };
  CHECK(decode_peer(frame("Heartbeat", hb + ids(kMaxPeerViewMembers))).ok());
  CHECK(contains(decode_fails(frame("Heartbeat", hb + ids(kMaxPeerViewMembers + 1))).message,
                 "field 'view' has 1025 elements, more than the limit of 1024"));

  auto repeat = [](const std::string& item, std::size_t n) {
    std::string s = "[";
    for (std::size_t i = 0; i < n; ++i) s += (i == 0 ? "" : ",") + item;
    return s + "]";
  };
  const std::string entry = R"({"id":{"seq":1,"origin":1},"statements":[]})";
  auto catch_up = [&](const std::string& entries) {
    return frame("CatchUpReply", R"("epoch":1,"entries":)" + entries +
                                     R"(,"conflict":false,"snapshot":false,"snapshot_applied":)" + kEntryId +
                                     R"(,"snapshot_data":"","joined":false,"last":)" + kEntryId);
  };
  CHECK(decode_peer(catch_up(repeat(entry, 3))).ok());
  CHECK(contains(decode_fails(catch_up(repeat("0", kMaxPeerEntries + 1))).message,
                 "field 'entries' has 65537 elements, more than the limit of 65536"));
  const std::string statement = R"({"sql":"x","expect_ok":true,"expect_code":0})";
  const std::string big_entry =
      R"({"id":{"seq":1,"origin":1},"statements":)" + repeat(statement, kMaxPeerStatementsPerEntry + 1) + "}";
  CHECK(contains(decode_fails(catch_up("[" + entry + "," + big_entry + "]")).message,
                 "field 'entries[1].statements' has 65537 elements"));
  CHECK(contains(
      decode_fails(frame("PrepareReply",
                         R"("epoch":1,"entry":{"seq":1,"origin":1},"yes":true,"reason":"","outcomes":)" +
                             repeat("{}", kMaxPeerOutcomes + 1)))
          .message,
      "field 'outcomes' has 65537 elements"));
}

TEST_CASE("peer codec: text and base64 are checked") {
  auto write = [](const std::string& sql) {
    return frame("ForwardedWrite", R"("epoch":1,"tag":2,"sql":)" + sql);
  };
  CHECK(std::get<ForwardedWrite>(decode_peer(write(R"({"base64":"AP8="})"))->message).sql ==
        std::string("\0\xFF", 2));
  CHECK(std::get<ForwardedWrite>(decode_peer(write(R"({"base64":""})"))->message).sql.empty());
  CHECK(
      contains(decode_fails(write(R"({"base64":"AP8"})")).message, "field 'sql.base64' is not valid base64"));
  CHECK(contains(decode_fails(write(R"({"base64":"A=P8"})")).message, "not valid base64"));
  CHECK(contains(decode_fails(write(R"({"base64":"AP8*"})")).message, "not valid base64"));
  CHECK(contains(decode_fails(write(R"({"base64":7})")).message,
                 "field 'sql' must be a string or {\"base64\": string}, got an object"));
  CHECK(contains(decode_fails(write(R"({"b64":"AA=="})")).message, "field 'sql' must be a string"));
  CHECK(contains(decode_fails(write("[]")).message, "field 'sql' must be a string"));

  auto snapshot = [](const std::string& data) {
    return frame("CatchUpReply",
                 R"("epoch":1,"entries":[],"conflict":false,"snapshot":true,"snapshot_applied":)" + kEntryId +
                     R"(,"snapshot_data":)" + data + R"(,"joined":false,"last":)" + kEntryId);
  };
  CHECK(std::get<CatchUpReply>(decode_peer(snapshot(R"("AAEC")"))->message).snapshot_data ==
        std::string("\0\1\2", 3));
  CHECK(contains(decode_fails(snapshot(R"("AAE")")).message, "field 'snapshot_data' is not valid base64"));
  CHECK(contains(decode_fails(snapshot(R"("====")")).message, "not valid base64"));
  CHECK(contains(decode_fails(snapshot(R"({"base64":"AAEC"})")).message,
                 "field 'snapshot_data' must be a base64 string, got an object"));
}

TEST_CASE("peer codec: the frames of a full copy's transfer round-trip and are checked") {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  const TransferEnvelope chunk{3, 1, SnapshotChunk{kMax64, 4096, bytes, false}};
  const std::string frame = encode_transfer(chunk);
  CHECK(is_peer_frame(frame));
  auto decoded = decode_peer_frame(frame);
  REQUIRE(decoded.ok());
  const auto* env = std::get_if<TransferEnvelope>(&*decoded);
  REQUIRE(env != nullptr);
  CHECK(env->from == 3);
  CHECK(env->to == 1);
  const auto& c = std::get<SnapshotChunk>(env->message);
  CHECK(c.transfer == kMax64);
  CHECK(c.offset == 4096);
  CHECK(c.data == bytes);
  CHECK_FALSE(c.gone);

  auto request = decode_peer_frame(encode_transfer({1, 3, SnapshotChunkRequest{7, 0, 4096}}));
  REQUIRE(request.ok());
  CHECK(std::get<SnapshotChunkRequest>(std::get<TransferEnvelope>(*request).message).transfer == 7);
  CHECK(std::get<SnapshotChunkRequest>(std::get<TransferEnvelope>(*request).message).length == 4096);

  // Replication messages come through decode_peer_frame too.
  auto heartbeat = decode_peer_frame(encode_peer(Envelope{1, 2, Heartbeat{}}));
  REQUIRE(heartbeat.ok());
  CHECK(std::holds_alternative<Envelope>(*heartbeat));
  // decode_peer takes replication messages only.
  CHECK_FALSE(decode_peer(frame).ok());

  // Every field is required; the chunk's size is bounded; data is base64.
  for (
      const std::string& bad : std::vector<std::string>{
          R"({"type":"PEER","from":3,"to":1,"msg":"SnapshotChunk","transfer":1,"offset":0,"data":""})",
          R"({"type":"PEER","from":3,"to":1,"msg":"SnapshotChunk","transfer":1,"offset":0,"data":"!!","gone":false})",
          R"({"type":"PEER","from":3,"to":1,"msg":"SnapshotChunk","transfer":-1,"offset":0,"data":"","gone":false})",
          R"({"type":"PEER","from":0,"to":1,"msg":"SnapshotChunkRequest","transfer":1,"offset":0})",
          R"({"type":"PEER","from":3,"to":1,"msg":"SnapshotChunkRequest","transfer":1})",
          R"({"type":"PEER","from":3,"to":1,"msg":"SnapshotChunkRequest","transfer":1,"offset":"0"})",
      }) {
    CAPTURE(bad);
    auto r = decode_peer_frame(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::invalid_request);
  }
  const TransferEnvelope too_big{3, 1,
                                 SnapshotChunk{1, 0, std::string(kMaxSnapshotChunkBytes + 1, 'x'), false}};
  auto refused = decode_peer_frame(encode_transfer(too_big));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("more than the limit") != std::string::npos);
}
