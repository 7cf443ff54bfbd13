// Requests and logins on a RawConnection, for end-to-end tests that speak
// the wire protocol byte by byte (doctest assertions inside: test programs
// only).
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "auth/scram.hpp"
#include "node_fixture.hpp"
#include "wire/codec.hpp"

namespace distdb::test {

inline Reply decode(const std::string& text) {
  auto reply = wire::decode_reply(text);
  REQUIRE_MESSAGE(reply.ok(), "undecodable reply: " << text);
  return *reply;
}

// One request (a line), one reply.
inline Reply call(RawConnection& conn, const std::string& request) {
  REQUIRE(conn.write(request + "\n"));
  const auto lines = conn.read_lines(1);
  REQUIRE_MESSAGE(lines.size() == 1, "no reply to " << request);
  return decode(lines[0]);
}

inline std::string auth_request(std::uint64_t id, const std::string& mechanism, const std::string& message,
                                const std::string& user = "", const std::string& password = "") {
  wire::Request r;
  r.id = id;
  r.body = wire::AuthRequest{mechanism, message, user, password};
  return wire::encode_request(r);
}

inline std::string query_request(std::uint64_t id, const std::string& sql) {
  return R"({"type":"CLIENT_QUERY","id":)" + std::to_string(id) + R"(,"payload":{"query":")" + sql + "\"}}";
}

inline bool is_unauthenticated(const Reply& r) {
  return r.status == ReplyStatus::error && r.error && r.error->kind == ErrorKind::unauthenticated;
}

// A SCRAM login on a raw connection: the final reply (or the first error).
// `server_first` gets the node's first answer.
inline Reply scram_login(RawConnection& conn, const std::string& user, const std::string& password,
                         std::string* server_first = nullptr) {
  auth::ScramClient scram(user, password);
  const Reply first = call(conn, auth_request(1, "SCRAM-SHA-256", *scram.first_message()));
  if (first.status != ReplyStatus::ok) return first;
  if (server_first != nullptr) *server_first = first.message;
  auto final = scram.final_message(first.message);
  REQUIRE_MESSAGE(final.ok(), final.error().message);
  const Reply last = call(conn, auth_request(2, "SCRAM-SHA-256", *final));
  if (last.status == ReplyStatus::ok) CHECK(scram.verify_server_final(last.message).ok());
  return last;
}

}  // namespace distdb::test
