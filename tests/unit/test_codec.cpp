#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "wire/codec.hpp"

using namespace distdb;
using namespace distdb::wire;

namespace {

Request decode_ok(std::string_view json) {
  std::optional<std::uint64_t> id;
  auto r = decode_request(json, id);
  if (!r) FAIL_CHECK(r.error().message);
  REQUIRE(r.ok());
  CHECK(id == r->id);
  return std::move(r).value();
}

Error decode_fails(std::string_view json, std::optional<std::uint64_t> expected_id = std::nullopt) {
  std::optional<std::uint64_t> id = 12345;  // must be overwritten
  auto r = decode_request(json, id);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind == ErrorKind::invalid_request);
  CHECK(id == expected_id);
  return r.error();
}

Reply round_trip(const Reply& reply) {
  const std::string json = encode_reply(reply);
  CHECK(json.find('\n') == std::string::npos);
  auto decoded = decode_reply(json);
  if (!decoded) FAIL_CHECK(decoded.error().message << " in " << json);
  REQUIRE(decoded.ok());
  return std::move(decoded).value();
}

bool same_bits(double a, double b) { return std::signbit(a) == std::signbit(b) && a == b; }

Blob all_bytes() {
  Blob b;
  for (int i = 0; i < 256; ++i) b.bytes.push_back(static_cast<std::uint8_t>(i));
  return b;
}

}  // namespace

// ------------------------------------------------------------ requests

TEST_CASE("codec: the seed's exact request decodes") {
  const Request r = decode_ok(R"({"type": "CLIENT_QUERY", "payload": {"query": "SELECT * FROM teste;"}})");
  CHECK_FALSE(r.id.has_value());
  const auto* q = std::get_if<ClientQuery>(&r.body);
  REQUIRE(q != nullptr);
  CHECK(q->query == "SELECT * FROM teste;");
  CHECK_FALSE(q->redirect);
}

TEST_CASE("codec: requests round-trip") {
  SUBCASE("client query with id and redirect") {
    Request in;
    in.id = 7;
    in.body = ClientQuery{"INSERT INTO t VALUES ('é\"\\\n\t\x01', '}{')", true};
    const std::string json = encode_request(in);
    CHECK(json.find('\n') == std::string::npos);
    const Request out = decode_ok(json);
    CHECK(out.id == 7u);
    const auto* q = std::get_if<ClientQuery>(&out.body);
    REQUIRE(q != nullptr);
    CHECK(q->query == std::get<ClientQuery>(in.body).query);
    CHECK(q->redirect);
  }
  SUBCASE("client query without id, the largest id") {
    Request in;
    in.body = ClientQuery{"SELECT 1", false};
    CHECK(encode_request(in) == R"({"type":"CLIENT_QUERY","payload":{"query":"SELECT 1","redirect":false}})");
    CHECK_FALSE(decode_ok(encode_request(in)).id.has_value());
    in.id = std::numeric_limits<std::uint64_t>::max();
    CHECK(decode_ok(encode_request(in)).id == std::numeric_limits<std::uint64_t>::max());
  }
  SUBCASE("a query containing NUL survives") {
    Request in;
    in.body = ClientQuery{std::string("SELECT '\0'", 11), false};
    const Request out = decode_ok(encode_request(in));
    const auto* q = std::get_if<ClientQuery>(&out.body);
    REQUIRE(q != nullptr);
    CHECK(q->query.size() == 11);
  }
  SUBCASE("status and ping") {
    Request status;
    status.id = 8;
    status.body = StatusRequest{};
    CHECK(encode_request(status) == R"({"type":"STATUS","id":8})");
    CHECK(std::holds_alternative<StatusRequest>(decode_ok(encode_request(status)).body));
    Request ping;
    ping.body = Ping{};
    CHECK(std::holds_alternative<Ping>(decode_ok(encode_request(ping)).body));
    CHECK(std::holds_alternative<Ping>(decode_ok(R"({"type":"PING","extra":[1,{"x":2}]})").body));
  }
}

TEST_CASE("codec: malformed requests are invalid_request, naming the field") {
  struct Case {
    const char* json;
    const char* message_part;
    std::optional<std::uint64_t> id;
  };
  const Case cases[] = {
      {"", "invalid JSON", std::nullopt},
      {"{\"type\": \"PING\"", "invalid JSON", std::nullopt},
      {"[1, 2]", "must be a JSON object, got an array", std::nullopt},
      {"\"PING\"", "must be a JSON object, got a string", std::nullopt},
      {"{}", "missing field 'type'", std::nullopt},
      {R"({"id": 4})", "missing field 'type'", 4},
      {R"({"type": 5, "id": 4})", "field 'type' must be a string, got an integer", 4},
      {R"({"type": null})", "field 'type' must be a string, got null", std::nullopt},
      {R"({"type": "DROP_ALL", "id": 9})", "unknown message type 'DROP_ALL'", 9},
      {R"({"type": "client_query", "id": 9})", "unknown message type 'client_query'", 9},
      {R"({"type": "CLIENT_QUERY", "id": 1})", "missing field 'payload'", 1},
      {R"({"type": "CLIENT_QUERY", "payload": "SELECT 1", "id": 2})", "field 'payload' must be an object, got a string", 2},
      {R"({"type": "CLIENT_QUERY", "payload": {}, "id": 3})", "missing field 'payload.query'", 3},
      {R"({"type": "CLIENT_QUERY", "payload": {"query": 1}})", "field 'payload.query' must be a non-empty string, got an integer", std::nullopt},
      {R"({"type": "CLIENT_QUERY", "payload": {"query": ""}, "id": 0})", "field 'payload.query' must be a non-empty string", 0},
      {R"({"type": "CLIENT_QUERY", "payload": {"query": "SELECT 1", "redirect": "yes"}, "id": 5})", "field 'payload.redirect' must be a boolean, got a string", 5},
      {R"({"type": "PING", "id": -1})", "field 'id' must be a non-negative integer (got -1)", std::nullopt},
      {R"({"type": "PING", "id": 1.5})", "field 'id' must be a non-negative integer, got a real number", std::nullopt},
      {R"({"type": "PING", "id": "7"})", "field 'id' must be a non-negative integer, got a string", std::nullopt},
      {R"({"type": "PING", "id": 18446744073709551616})", "field 'id' must be a non-negative integer, got a real number", std::nullopt},
      {"{\"type\": \"PING\", \"q\": \"\xff\"}", "invalid JSON", std::nullopt},
  };
  for (const Case& c : cases) {
    CAPTURE(c.json);
    const Error e = decode_fails(c.json, c.id);
    CHECK_MESSAGE(e.message.find(c.message_part) != std::string::npos, e.message);
  }
}

TEST_CASE("codec: unknown type names are quoted safely and bounded") {
  const std::string json = R"({"type": ")" + std::string(1000, 'A') + "\\u0001\"}";
  const Error e = decode_fails(json);
  CHECK(e.message.size() < 200);
  CHECK(e.message.find("unknown message type 'AAAA") != std::string::npos);
}

TEST_CASE("codec: deeply nested input does not crash") {
  const std::size_t depth = 200000;
  const std::string arrays = std::string(depth, '[') + std::string(depth, ']');
  decode_fails(arrays);
  decode_fails(std::string(depth, '{'));
  const std::string objects = [&] {
    std::string s;
    for (std::size_t i = 0; i < depth; ++i) s += "{\"a\":";
    s += "1";
    s += std::string(depth, '}');
    return s;
  }();
  decode_fails(objects);
  CHECK_FALSE(decode_reply(arrays).ok());
  CHECK_FALSE(decode_reply(R"({"status":"OK","result":[)" + arrays + "]}").ok());
  CHECK_FALSE(decode_reply(R"({"status":"OK","columns":["a"],"rows":[[)" + arrays + "]]}").ok());
}

TEST_CASE("codec: a valid request with deep unknown fields is accepted") {
  const std::string arrays = std::string(100000, '[') + std::string(100000, ']');
  const Request r = decode_ok(R"({"id": 3, "type": "PING", "x": )" + arrays + "}");
  CHECK(r.id == 3u);
}

// ------------------------------------------------------------ replies

TEST_CASE("codec: a result set reply has the seed's row objects and structured columns/rows") {
  Reply reply;
  reply.id = 7;
  reply.node = 1;
  reply.result.columns = {"1"};
  reply.result.rows = {{Value{std::int64_t{1}}}};
  reply.message = "1 row";
  CHECK(encode_reply(reply) ==
        R"({"id":7,"status":"OK","node":1,"result":[{"1":1}],"columns":["1"],"rows":[[1]],)"
        R"("rows_affected":0,"last_insert_id":0,"message":"1 row"})");
}

TEST_CASE("codec: a write reply carries the message as result") {
  Reply reply;
  reply.node = 3;
  reply.result.rows_affected = 2;
  reply.result.last_insert_id = 42;
  reply.message = "SUCCESS: 2 rows";
  CHECK(encode_reply(reply) ==
        R"({"status":"OK","node":3,"result":"SUCCESS: 2 rows","rows_affected":2,"last_insert_id":42,)"
        R"("message":"SUCCESS: 2 rows"})");
  const Reply out = round_trip(reply);
  CHECK_FALSE(out.id.has_value());
  CHECK(out.node == 3);
  CHECK_FALSE(out.result.has_rows());
  CHECK(out.result.rows_affected == 2);
  CHECK(out.result.last_insert_id == 42);
  CHECK(out.message == "SUCCESS: 2 rows");
  CHECK_FALSE(out.error.has_value());
  CHECK_FALSE(out.coordinator.has_value());
}

TEST_CASE("codec: every value type round-trips") {
  const std::string non_utf8 = "caf\xe9 \xff\xfe";
  Reply reply;
  reply.id = std::numeric_limits<std::uint64_t>::max();
  reply.node = std::numeric_limits<NodeId>::max();
  reply.result.columns = {"null", "empty", "text", "min", "max", "zero", "real", "blob", "empty_blob", "latin1"};
  reply.result.rows = {
      {Value{}, Value{std::string()}, Value{std::string("h\xc3\xa9llo \"q\" \\ \n \xf0\x9f\x98\x80 \x01")},
       Value{std::numeric_limits<std::int64_t>::min()}, Value{std::numeric_limits<std::int64_t>::max()},
       Value{std::int64_t{0}}, Value{0.1}, Value{all_bytes()}, Value{Blob{}}, Value{non_utf8}},
      {Value{std::string("NULL")}, Value{}, Value{std::string(1, '\0')}, Value{std::int64_t{-1}},
       Value{std::int64_t{1}}, Value{-0.0}, Value{1.0}, Value{Blob{{0}}}, Value{Blob{{1, 2}}}, Value{}},
  };
  reply.result.rows_affected = std::numeric_limits<std::uint64_t>::max();
  reply.result.last_insert_id = 123;
  reply.message = "2 rows";

  const Reply out = round_trip(reply);
  CHECK(out.id == reply.id);
  CHECK(out.node == reply.node);
  CHECK(out.message == "2 rows");
  CHECK(out.result.columns == reply.result.columns);
  CHECK(out.result.rows_affected == reply.result.rows_affected);
  CHECK(out.result.last_insert_id == 123);
  REQUIRE(out.result.rows.size() == 2);

  const Row& a = out.result.rows[0];
  CHECK(is_null(a[0]));
  CHECK(std::get<std::string>(a[1]).empty());  // "" is not NULL
  CHECK(a[2] == reply.result.rows[0][2]);
  CHECK(std::get<std::int64_t>(a[3]) == std::numeric_limits<std::int64_t>::min());
  CHECK(std::get<std::int64_t>(a[4]) == std::numeric_limits<std::int64_t>::max());
  CHECK(std::get<std::int64_t>(a[5]) == 0);
  CHECK(std::get<double>(a[6]) == 0.1);
  CHECK(std::get<Blob>(a[7]) == all_bytes());
  CHECK(std::get<Blob>(a[8]).bytes.empty());
  // Text that is not UTF-8 travels as base64, so it comes back as bytes.
  CHECK(std::get<Blob>(a[9]).bytes == std::vector<std::uint8_t>(non_utf8.begin(), non_utf8.end()));

  const Row& b = out.result.rows[1];
  CHECK(std::get<std::string>(b[0]) == "NULL");
  CHECK(is_null(b[1]));
  CHECK(std::get<std::string>(b[2]) == std::string(1, '\0'));
  CHECK(std::get<std::int64_t>(b[3]) == -1);
  CHECK(same_bits(std::get<double>(b[5]), -0.0));
  CHECK(same_bits(std::get<double>(b[6]), 1.0));  // stays a real, not an integer
  CHECK(std::get<Blob>(b[7]).bytes == std::vector<std::uint8_t>{0});
  CHECK(std::get<Blob>(b[8]).bytes == std::vector<std::uint8_t>{1, 2});
}

TEST_CASE("codec: doubles round-trip exactly") {
  const double values[] = {0.1,
                           1.0 / 3.0,
                           -2.5,
                           1e300,
                           -1e-300,
                           123456789.123456789,
                           9007199254740993.0,
                           std::numeric_limits<double>::max(),
                           std::numeric_limits<double>::lowest(),
                           std::numeric_limits<double>::min(),
                           std::numeric_limits<double>::denorm_min(),
                           std::numeric_limits<double>::epsilon()};
  for (const double d : values) {
    CAPTURE(d);
    Reply reply;
    reply.result.columns = {"d"};
    reply.result.rows = {{Value{d}}};
    const Reply out = round_trip(reply);
    REQUIRE(out.result.rows.size() == 1);
    REQUIRE(std::holds_alternative<double>(out.result.rows[0][0]));
    CHECK(same_bits(std::get<double>(out.result.rows[0][0]), d));
  }
}

TEST_CASE("codec: non-finite reals are encoded as strings") {
  Reply reply;
  reply.result.columns = {"nan", "inf", "ninf"};
  reply.result.rows = {{Value{std::numeric_limits<double>::quiet_NaN()}, Value{std::numeric_limits<double>::infinity()},
                        Value{-std::numeric_limits<double>::infinity()}}};
  const std::string json = encode_reply(reply);
  CHECK(json.find(R"("rows":[["NaN","Infinity","-Infinity"]])") != std::string::npos);
  CHECK(decode_reply(json).ok());
}

TEST_CASE("codec: an empty result set keeps its columns") {
  Reply reply;
  reply.result.columns = {"id", "name"};
  reply.message = "0 rows";
  const std::string json = encode_reply(reply);
  CHECK(json.find(R"("result":[],"columns":["id","name"],"rows":[])") != std::string::npos);
  const Reply out = round_trip(reply);
  CHECK(out.result.has_rows());
  CHECK(out.result.columns == reply.result.columns);
  CHECK(out.result.rows.empty());
}

TEST_CASE("codec: error and redirect replies round-trip") {
  SUBCASE("error") {
    Reply reply;
    reply.id = 4;
    reply.status = ReplyStatus::error;
    reply.node = 2;
    reply.message = "Table 'dist_db.nope' doesn't exist";
    reply.error = Error(ErrorKind::sql, reply.message, 1146);
    const std::string json = encode_reply(reply);
    CHECK(json.find(R"("error":{"kind":"sql","code":1146,"message":"Table 'dist_db.nope' doesn't exist"})") !=
          std::string::npos);
    const Reply out = round_trip(reply);
    CHECK(out.status == ReplyStatus::error);
    REQUIRE(out.error.has_value());
    CHECK(out.error->kind == ErrorKind::sql);
    CHECK(out.error->code == 1146);
    CHECK(out.error->message == reply.message);
    CHECK(out.id == 4u);
  }
  SUBCASE("every error kind survives") {
    for (int k = 0; k <= static_cast<int>(ErrorKind::internal); ++k) {
      const auto kind = static_cast<ErrorKind>(k);
      CAPTURE(to_string(kind));
      CHECK(error_kind_from_string(to_string(kind)) == kind);
      const Reply out = round_trip([&] {
        Reply r;
        r.status = ReplyStatus::error;
        r.error = Error(kind, "x");
        return r;
      }());
      REQUIRE(out.error.has_value());
      CHECK(out.error->kind == kind);
    }
  }
  SUBCASE("redirect") {
    Reply reply;
    reply.status = ReplyStatus::redirect;
    reply.node = 1;
    reply.message = "writes go to node 3";
    reply.coordinator = PeerConfig{3, "10.0.0.3", 5000};
    const std::string json = encode_reply(reply);
    CHECK(json.find(R"("coordinator":{"id":3,"ip":"10.0.0.3","port":5000})") != std::string::npos);
    const Reply out = round_trip(reply);
    CHECK(out.status == ReplyStatus::redirect);
    REQUIRE(out.coordinator.has_value());
    CHECK(out.coordinator->id == 3);
    CHECK(out.coordinator->ip == "10.0.0.3");
    CHECK(out.coordinator->port == 5000);
  }
  SUBCASE("encode_error_reply") {
    const std::string json = encode_error_reply(9, 2, Error(ErrorKind::message_too_large, "too big"));
    CHECK(json ==
          R"({"id":9,"status":"ERROR","node":2,"result":"too big","rows_affected":0,"last_insert_id":0,)"
          R"("message":"too big","error":{"kind":"message_too_large","code":0,"message":"too big"}})");
    const auto out = decode_reply(json);
    REQUIRE(out.ok());
    CHECK(out->error->kind == ErrorKind::message_too_large);
    CHECK_FALSE(encode_error_reply(std::nullopt, 2, Error(ErrorKind::timeout, "t")).find("\"id\"") !=
                std::string::npos);
  }
  SUBCASE("an invalid UTF-8 error message is repaired, not dropped") {
    Reply reply;
    reply.status = ReplyStatus::error;
    reply.error = Error(ErrorKind::sql, "bad \xe9 byte");
    reply.message = reply.error->message;
    const Reply out = round_trip(reply);
    CHECK(out.error->message == "bad \xef\xbf\xbd byte");
  }
}

TEST_CASE("codec: the seed's minimal replies decode") {
  SUBCASE("rows as objects only") {
    const auto r = decode_reply(R"({"status":"OK","node":3,"result":[{"id":1}]})");
    REQUIRE(r.ok());
    CHECK(r->status == ReplyStatus::ok);
    CHECK(r->node == 3);
    CHECK(r->result.columns == std::vector<std::string>{"id"});
    REQUIRE(r->result.rows.size() == 1);
    CHECK(std::get<std::int64_t>(r->result.rows[0][0]) == 1);
  }
  SUBCASE("rows with differing keys: union of columns, NULL where absent") {
    const auto r = decode_reply(R"({"status":"OK","node":1,"result":[{"a":1,"b":"x"},{"b":"y","c":2.5}]})");
    REQUIRE(r.ok());
    CHECK(r->result.columns == std::vector<std::string>{"a", "b", "c"});
    REQUIRE(r->result.rows.size() == 2);
    CHECK(is_null(r->result.rows[0][2]));
    CHECK(is_null(r->result.rows[1][0]));
    CHECK(std::get<std::string>(r->result.rows[1][1]) == "y");
    CHECK(std::get<double>(r->result.rows[1][2]) == 2.5);
  }
  SUBCASE("a write: result is the message") {
    const auto r = decode_reply(R"({"status": "OK", "node": 3, "result": "SUCCESS: replicated"})");
    REQUIRE(r.ok());
    CHECK(r->message == "SUCCESS: replicated");
    CHECK_FALSE(r->result.has_rows());
  }
  SUBCASE("an error with only a message") {
    const auto r = decode_reply(R"({"status": "ERROR", "message": "boom"})");
    REQUIRE(r.ok());
    REQUIRE(r->error.has_value());
    CHECK(r->error->kind == ErrorKind::internal);
    CHECK(r->error->message == "boom");
  }
  SUBCASE("an unknown error kind decodes as internal") {
    const auto r = decode_reply(R"({"status":"ERROR","error":{"kind":"cosmic_ray","code":7,"message":"m"}})");
    REQUIRE(r.ok());
    CHECK(r->error->kind == ErrorKind::internal);
    CHECK(r->error->code == 7);
  }
  SUBCASE("a number above int64 keeps its digits") {
    const auto r = decode_reply(R"({"status":"OK","result":[{"u":18446744073709551615}]})");
    REQUIRE(r.ok());
    CHECK(std::get<std::string>(r->result.rows[0][0]) == "18446744073709551615");
  }
}

TEST_CASE("codec: malformed replies are refused with a reason") {
  const char* bad[] = {
      "",
      "[]",
      R"({"node": 1})",
      R"({"status": "MAYBE"})",
      R"({"status": 1})",
      R"({"status": "OK", "node": -1})",
      R"({"status": "OK", "node": 4294967296})",
      R"({"status": "OK", "id": "x"})",
      R"({"status": "OK", "columns": ["a"], "rows": [[1, 2]]})",
      R"({"status": "OK", "columns": "a"})",
      R"({"status": "OK", "columns": ["a"], "rows": [[{"base64": "!!!!"}]]})",
      R"({"status": "OK", "columns": ["a"], "rows": [[{"base64": "abc"}]]})",
      R"({"status": "OK", "columns": ["a"], "rows": [[[1]]]})",
      R"({"status": "OK", "result": [1]})",
      R"({"status": "ERROR", "error": "x"})",
      R"({"status": "ERROR", "error": {"code": 1.5}})",
      R"({"status": "REDIRECT", "coordinator": {"id": 1, "port": 70000}})",
  };
  for (const char* json : bad) {
    CAPTURE(json);
    const auto r = decode_reply(json);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::invalid_request);
    CHECK(r.error().message.rfind("invalid reply: ", 0) == 0);
  }
}

TEST_CASE("codec: to_wire") {
  CHECK(std::string(to_wire(ReplyStatus::ok)) == "OK");
  CHECK(std::string(to_wire(ReplyStatus::redirect)) == "REDIRECT");
  CHECK(std::string(to_wire(ReplyStatus::error)) == "ERROR");
}

// Inputs found by tests/fuzz (rapidjson 1.1.0's own number conversion
// aborted on the first, read the second as NaN and the third wrongly; a
// lone surrogate escape made a string that is not UTF-8).
TEST_CASE("codec: numbers past the range of a double are refused, never misread") {
  const Error big = decode_fails(R"({"type":"PING","x":6.111976931348626314e308})");
  CHECK(big.message.find("invalid JSON") != std::string::npos);
  decode_fails(R"({"type":"PING","x":1.7976931348626314e308})");
  decode_fails(R"({"type":"PING","x":-1e400})");
  CHECK(decode_reply(R"({"status":"OK","columns":["a"],"rows":[[1.7976931348626314e308]]})").ok() == false);
  // Exact doubles and zeros with large exponents read as they are written.
  auto r = decode_reply(R"({"status":"OK","columns":["a","b","c"],"rows":[[0e94, 1.7976931348623157e308, -5e-324]]})");
  REQUIRE(r.ok());
  REQUIRE(r->result.rows.size() == 1);
  CHECK(same_bits(std::get<double>(r->result.rows[0][0]), 0.0));
  CHECK(std::get<double>(r->result.rows[0][1]) == std::numeric_limits<double>::max());
  CHECK(same_bits(std::get<double>(r->result.rows[0][2]), -std::numeric_limits<double>::denorm_min()));
}

TEST_CASE("codec: a lone surrogate escape is not text") {
  decode_fails(R"({"type":"CLIENT_QUERY","payload":{"query":"SELECT '\udc00'"}})");
  CHECK_FALSE(decode_reply(R"({"status":"OK","columns":["\ud800"],"rows":[]})").ok());
  // A proper pair is fine.
  const Request ok = decode_ok(R"({"type":"CLIENT_QUERY","payload":{"query":"SELECT '\ud83d\ude00'"}})");
  CHECK(std::get<ClientQuery>(ok.body).query == "SELECT '\xF0\x9F\x98\x80'");
}

TEST_CASE("codec: AUTH requests round-trip, SCRAM and PLAIN") {
  const Request scram = decode_ok(
      R"({"type":"AUTH","id":1,"payload":{"mechanism":"SCRAM-SHA-256","message":"n,,n=app,r=abc"}})");
  const auto* a = std::get_if<AuthRequest>(&scram.body);
  REQUIRE(a != nullptr);
  CHECK(scram.id == 1u);
  CHECK(a->mechanism == "SCRAM-SHA-256");
  CHECK(a->message == "n,,n=app,r=abc");
  CHECK(a->user.empty());
  CHECK(a->password.empty());

  for (const AuthRequest& body : {AuthRequest{"SCRAM-SHA-256", "c=biws,r=abcdef,p=xyz=", "", ""},
                                  AuthRequest{"PLAIN", "", "app", "s3cr\"et, with \\ and ünïcode"}}) {
    Request request;
    request.id = 9;
    request.body = body;
    const std::string json = encode_request(request);
    CHECK(json.find("\"type\":\"AUTH\"") != std::string::npos);
    const Request back = decode_ok(json);
    const auto& got = std::get<AuthRequest>(back.body);
    CHECK(got.mechanism == body.mechanism);
    CHECK(got.message == body.message);
    CHECK(got.user == body.user);
    CHECK(got.password == body.password);
    CHECK(back.id == 9u);
  }
}

TEST_CASE("codec: malformed or oversized AUTH requests are refused without echoing the password") {
  CHECK(decode_fails(R"({"type":"AUTH","id":2})", 2).message.find("payload") != std::string::npos);
  CHECK(decode_fails(R"({"type":"AUTH","id":2,"payload":{}})", 2).message.find("payload.mechanism") !=
        std::string::npos);
  CHECK(decode_fails(R"({"type":"AUTH","payload":{"mechanism":""}})").message.find("non-empty") !=
        std::string::npos);
  CHECK(decode_fails(R"({"type":"AUTH","payload":{"mechanism":7}})").message.find("a string") !=
        std::string::npos);
  const Error typed =
      decode_fails(R"({"type":"AUTH","payload":{"mechanism":"PLAIN","user":"a","password":12345678}})");
  CHECK(typed.message.find("payload.password") != std::string::npos);
  CHECK(typed.message.find("12345678") == std::string::npos);

  const std::string secret = "hunter2-" + std::string(kMaxAuthPasswordBytes, 'p');
  const Error long_password = decode_fails(
      R"({"type":"AUTH","payload":{"mechanism":"PLAIN","user":"a","password":")" + secret + "\"}}");
  CHECK(long_password.message.find("payload.password") != std::string::npos);
  CHECK(long_password.message.find("hunter2") == std::string::npos);
  CHECK(decode_fails(R"({"type":"AUTH","payload":{"mechanism":"PLAIN","user":")" +
                     std::string(kMaxAuthUserBytes + 1, 'u') + R"(","password":"x"}})")
            .message.find("payload.user") != std::string::npos);
  CHECK(decode_fails(R"({"type":"AUTH","payload":{"mechanism":"SCRAM-SHA-256","message":")" +
                     std::string(kMaxAuthMessageBytes + 1, 'm') + "\"}}")
            .message.find("payload.message") != std::string::npos);
  CHECK(decode_fails(R"({"type":"AUTH","payload":{"mechanism":")" +
                     std::string(kMaxAuthMechanismBytes + 1, 'M') + "\"}}")
            .message.find("payload.mechanism") != std::string::npos);
  // At the bounds: accepted.
  CHECK(std::get<AuthRequest>(decode_ok(R"({"type":"AUTH","payload":{"mechanism":"PLAIN","user":")" +
                                        std::string(kMaxAuthUserBytes, 'u') + R"(","password":")" +
                                        std::string(kMaxAuthPasswordBytes, 'p') + "\"}}")
                                  .body)
            .password.size() == kMaxAuthPasswordBytes);
  CHECK(decode_fails(R"({"type":"LOGIN"})").message.find("AUTH") != std::string::npos);
}

TEST_CASE("codec: unauthenticated replies carry the mechanism the node expects") {
  Reply r;
  r.id = 3;
  r.status = ReplyStatus::error;
  r.message = "log in first";
  r.error = Error(ErrorKind::unauthenticated, r.message);
  r.auth_mechanism = "SCRAM-SHA-256";
  const std::string json = encode_reply(r);
  CHECK(json.find(R"("auth_mechanism":"SCRAM-SHA-256")") != std::string::npos);
  CHECK(json.find(R"("kind":"unauthenticated")") != std::string::npos);
  const Reply back = round_trip(r);
  CHECK(back.auth_mechanism == "SCRAM-SHA-256");
  REQUIRE(back.error.has_value());
  CHECK(back.error->kind == ErrorKind::unauthenticated);
  // Absent unless set.
  CHECK(encode_reply(Reply{}).find("auth_mechanism") == std::string::npos);
  CHECK_FALSE(decode_reply(R"({"status":"OK","auth_mechanism":5})").ok());
}
