// JSON encoding of client requests and replies.
//
// Requests (one JSON object each; "id" is optional and, when present, makes
// the connection persistent and is echoed in the reply):
//   {"type": "CLIENT_QUERY", "payload": {"query": "SELECT 1", "redirect": false}, "id": 7}
//   {"type": "STATUS", "id": 8}          this node and the cluster as it sees it
//   {"type": "PING", "id": 9}
//   {"type": "CHECK", "id": 10}          every member takes a checksum of its data at the same log
//                                        position; one that differs takes a full copy. The OK reply
//                                        carries the coordinator's checksum in "message" and as the
//                                        one row of a "checksum" column.
//   {"type": "AUTH", "id": 1, "payload": {"mechanism": "SCRAM-SHA-256", "message": "n,,n=app,r=..."}}
//                                        a client's login, before anything else on the connection
//                                        (with security.client_auth "users" or "database"):
//     SCRAM-SHA-256, two requests: "message" carries client-first, then client-final; the OK
//       replies carry server-first, then server-final ("v=...", which the client must check)
//       in "message" (auth/scram.hpp);
//     PLAIN, one request: {"mechanism": "PLAIN", "user": "...", "password": "..."}, checked
//       by logging in to the node's MariaDB with them (client_auth "database").
//   Until a login succeeds, a node answers every request but AUTH and PING with an ERROR of
//   kind "unauthenticated" whose reply names the mechanism it expects:
//     {"status": "ERROR", ..., "auth_mechanism": "SCRAM-SHA-256"}      (or "PLAIN")
//   A failed login gets one message whatever the cause ("authentication failed"); the third
//   failure on a connection closes it. With client_auth "off", AUTH is answered OK with
//   "auth_mechanism": "off".
// Replies keep the seed's fields and add structured ones:
//   {"id": 7, "status": "OK", "node": 1, "result": [{"1": 1}], "columns": ["1"], "rows": [[1]],
//    "rows_affected": 0, "last_insert_id": 0, "message": "1 row"}
//   {"status": "ERROR", "node": 1, "error": {"kind": "sql", "code": 1064, "message": "..."}, "message":
//   "..."}
//   {"status": "REDIRECT", "node": 1, "coordinator": {"id": 3, "ip": "10.0.0.3", "port": 5000}, "message":
//   "..."}
// For statements without a result set, "result" is the message string (the
// seed printed it). Values: NULL -> null, integers and reals -> numbers,
// text -> strings, binary data (and text that is not valid UTF-8) ->
// {"base64": "..."}; non-finite reals -> the strings "NaN", "Infinity", "-Infinity".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "distdb/error.hpp"
#include "distdb/reply.hpp"

namespace distdb::wire {

struct ClientQuery {
  std::string query;
  bool redirect = false;  // answer REDIRECT instead of forwarding a write to the coordinator
};
struct StatusRequest {};
struct Ping {};
struct ChecksumRequest {};
// A login step; which fields are used depends on the mechanism (see the top).
struct AuthRequest {
  std::string mechanism;  // "SCRAM-SHA-256" or "PLAIN"
  std::string message;    // SCRAM-SHA-256: client-first, then client-final
  std::string user;       // PLAIN
  std::string password;   // PLAIN; never logged, never echoed
};

// Size bounds of the AUTH fields, in bytes.
inline constexpr std::size_t kMaxAuthMechanismBytes = 32;
inline constexpr std::size_t kMaxAuthMessageBytes = 1024;
inline constexpr std::size_t kMaxAuthUserBytes = 128;
inline constexpr std::size_t kMaxAuthPasswordBytes = 1024;

using RequestBody = std::variant<ClientQuery, StatusRequest, Ping, AuthRequest, ChecksumRequest>;

struct Request {
  std::optional<std::uint64_t> id;
  RequestBody body;
};

// Decodes one frame. Fields other than the ones above are ignored, so that
// newer clients can talk to older nodes. On failure the error says what is wrong (kind
// invalid_request) and `id_out` holds the request's id if it could be read,
// so that the error reply can still be matched by a pipelining client.
Result<Request> decode_request(std::string_view json, std::optional<std::uint64_t>& id_out);

// One line of JSON, without the trailing newline.
std::string encode_request(const Request& request);

std::string encode_reply(const Reply& reply);

// The reply to a request that failed before it could run (malformed, too
// large, ...): status ERROR, the error, and its message as "result".
std::string encode_error_reply(std::optional<std::uint64_t> id, NodeId node, const Error& error);

// The inverse of encode_reply, tolerant of the seed's minimal replies such as
// {"status": "OK", "node": 3, "result": [{"id": 1}]}: missing "columns" and
// "rows" are derived from the row objects, a missing "message" is taken from
// a string "result", and an ERROR without "error" gets kind internal.
// Text and blobs both travel as {"base64": ...} when they are not valid
// UTF-8, so such text decodes as a Blob; the strings "NaN", "Infinity" and
// "-Infinity" decode as text. Failures have kind invalid_request.
Result<Reply> decode_reply(std::string_view json);

// The status request's answer travels in Reply::result as a table
// (columns: id, ip, port, role, alive, applied_seq); nothing extra to encode.

const char* to_wire(ReplyStatus status);  // "OK", "REDIRECT", "ERROR"

// The inverse of to_string(ErrorKind); names it does not know (a newer peer's)
// map to ErrorKind::internal.
ErrorKind error_kind_from_string(std::string_view name);

}  // namespace distdb::wire
