// The client side of the wire, fed whatever a TCP peer can send:
//   - the frame splitter, fed the input whole and in chunks of varying size,
//     must find the same frames and the same fault either way (a byte
//     stream can be cut anywhere by the network);
//   - every frame, and the input as one frame, goes to decode_request and
//     decode_reply; what decodes must encode and decode back to the same
//     request or reply;
//   - the SCRAM messages of AUTH requests go to a node's SCRAM state machine
//     (as client-first, and as client-final after a real client-first), and
//     the messages of replies to a client's (as server-first and
//     server-final): they must be refused cleanly or accepted, never crash,
//     and never log in with a proof that was not computed from the password.
// A broken property stops the run with __builtin_trap(), which libFuzzer
// reports as a crash with the input that caused it.
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "auth/scram.hpp"
#include "util/text.hpp"
#include "wire/codec.hpp"
#include "wire/frame_splitter.hpp"

namespace {

using namespace distdb;
using namespace distdb::wire;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// ------------------------------------------------------------ splitter

struct Split {
  std::vector<std::string> frames;
  std::optional<ErrorKind> fault;
  bool mid_frame = false;
};

// Chunk sizes from 1 to 32 bytes, taken in turn from the input's first bytes,
// so that mutating those bytes moves the cut points.
Split split_in_chunks(std::string_view input, std::size_t limit) {
  FrameSplitter splitter(limit);
  Split out;
  const std::size_t sizes = std::min<std::size_t>(input.size(), 8);
  std::size_t at = 0;
  for (std::size_t k = 0; at < input.size(); ++k) {
    const std::size_t chunk =
        sizes == 0 ? 1 : static_cast<std::size_t>(static_cast<unsigned char>(input[k % sizes]) % 32) + 1;
    const Status st = splitter.feed(input.substr(at, chunk), out.frames);
    at += chunk;
    if (!st) {
      out.fault = st.error().kind;
      return out;  // the splitter must not be fed after a fault
    }
  }
  out.mid_frame = splitter.mid_frame();
  return out;
}

Split split_whole(std::string_view input, std::size_t limit) {
  FrameSplitter splitter(limit);
  Split out;
  const Status st = splitter.feed(input, out.frames);
  if (!st) out.fault = st.error().kind;
  out.mid_frame = !st ? false : splitter.mid_frame();
  return out;
}

void check_splitter(std::string_view input, std::size_t limit) {
  const Split whole = split_whole(input, limit);
  const Split chunked = split_in_chunks(input, limit);
  check(whole.frames == chunked.frames);
  check(whole.fault == chunked.fault);
  check(whole.mid_frame == chunked.mid_frame);
  for (const std::string& f : whole.frames) {
    check(f.size() <= limit);
    check(!f.empty() && f.front() == '{' && (f.back() == '}' || f.back() == ']'));
  }
}

// ------------------------------------------------------------ requests

bool same_request(const Request& a, const Request& b) {
  if (a.id != b.id || a.body.index() != b.body.index()) return false;
  if (const auto* q = std::get_if<ClientQuery>(&a.body)) {
    const auto& r = std::get<ClientQuery>(b.body);
    return q->query == r.query && q->redirect == r.redirect;
  }
  if (const auto* x = std::get_if<AuthRequest>(&a.body)) {
    const auto& y = std::get<AuthRequest>(b.body);
    return x->mechanism == y.mechanism && x->message == y.message && x->user == y.user &&
           x->password == y.password;
  }
  return true;
}

// ------------------------------------------------------------ SCRAM

// A verifier of "pencil" with the RFC 7677 salt, for a user named "user".
const auth::Verifier& fuzz_verifier() {
  static const auth::Verifier v =
      auth::derive_verifier("pencil", auth::Bytes(16, 0x42), auth::kMinIterations);
  return v;
}

auth::ScramServer::Account lookup(std::string_view user) {
  return {fuzz_verifier(), user == "user"};
}

void check_scram_server(std::string_view message) {
  // As client-first.
  auth::ScramServer first(lookup, "servernonce");
  (void)first.first(message);
  // As client-final, after a real client-first: no login without the password.
  auth::ScramServer server(lookup, "servernonce");
  check(server.first("n,,n=user,r=clientnonce").ok());
  check(!server.final(message).ok());
}

// Keys for the fuzz verifier's salt: cached, so that no PBKDF2 runs for it
// (zero keys: what matters here is parsing, and that no signature is guessed).
auth::ClientKeys cached_keys() {
  auth::ClientKeys keys;
  keys.salt = fuzz_verifier().salt;
  keys.iterations = auth::kMinIterations;
  return keys;
}

// The iteration count a server-first asks for, roughly (0 if none).
long requested_iterations(std::string_view message) {
  const auto at = message.find(",i=");
  if (at == std::string_view::npos) return 0;
  long n = 0;
  for (std::size_t i = at + 3; i < message.size() && message[i] >= '0' && message[i] <= '9' && n < 100000000;
       ++i) {
    n = n * 10 + (message[i] - '0');
  }
  return n;
}

void check_scram_client(std::string_view message) {
  // As server-first; an input asking for more PBKDF2 work than the minimum
  // would only slow the fuzzer down (the bound itself is unit-tested).
  if (requested_iterations(message) <= auth::kMinIterations) {
    auth::ScramClient client("user", "pencil", "clientnonce");
    check(client.first_message().ok());
    auth::ClientKeys keys = cached_keys();
    (void)client.final_message(message, &keys);
  }
  // As server-final of a real exchange: a signature is not guessed.
  auth::ScramClient other("user", "pencil", "clientnonce");
  check(other.first_message().ok());
  auth::ClientKeys keys = cached_keys();
  const std::string salt = text::base64_encode(keys.salt.data(), keys.salt.size());
  check(other.final_message("r=clientnonceservernonce,s=" + salt + ",i=4096", &keys).ok());
  check(!other.verify_server_final(message).ok());
}

void check_request(std::string_view frame) {
  std::optional<std::uint64_t> id;
  const auto decoded = decode_request(frame, id);
  if (!decoded) return;
  check(id == decoded->id);  // the id handed back for error replies is the request's
  if (const auto* login = std::get_if<AuthRequest>(&decoded->body)) check_scram_server(login->message);
  const std::string again = encode_request(*decoded);
  std::optional<std::uint64_t> id2;
  const auto redecoded = decode_request(again, id2);
  check(redecoded.ok());
  check(same_request(*decoded, *redecoded));
}

// ------------------------------------------------------------ replies

// Bit for bit: a double must survive the trip exactly, -0.0 included.
bool same_value(const Value& a, const Value& b) {
  if (a.index() != b.index()) return false;
  if (const auto* d = std::get_if<double>(&a)) {
    return std::bit_cast<std::uint64_t>(*d) == std::bit_cast<std::uint64_t>(std::get<double>(b));
  }
  return a == b;
}

bool same_rows(const std::vector<Row>& a, const std::vector<Row>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t r = 0; r < a.size(); ++r) {
    if (a[r].size() != b[r].size()) return false;
    for (std::size_t c = 0; c < a[r].size(); ++c) {
      if (!same_value(a[r][c], b[r][c])) return false;
    }
  }
  return true;
}

bool same_error(const std::optional<Error>& a, const std::optional<Error>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a || (a->kind == b->kind && a->code == b->code && a->message == b->message);
}

bool same_peer(const std::optional<PeerConfig>& a, const std::optional<PeerConfig>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a || (a->id == b->id && a->ip == b->ip && a->port == b->port);
}

bool same_reply(const Reply& a, const Reply& b) {
  return a.auth_mechanism == b.auth_mechanism && a.id == b.id && a.status == b.status && a.node == b.node &&
         a.message == b.message && a.result.columns == b.result.columns &&
         same_rows(a.result.rows, b.result.rows) && a.result.rows_affected == b.result.rows_affected &&
         a.result.last_insert_id == b.result.last_insert_id && same_error(a.error, b.error) &&
         same_peer(a.coordinator, b.coordinator);
}

void check_reply(std::string_view frame) {
  const auto decoded = decode_reply(frame);
  if (!decoded) return;
  if (decoded->message.size() <= auth::kMaxMessageBytes) check_scram_client(decoded->message);
  const std::string again = encode_reply(*decoded);
  const auto redecoded = decode_reply(again);
  check(redecoded.ok());
  check(same_reply(*decoded, *redecoded));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // A limit no input reaches, and a small one (from the first byte) that
  // makes message_too_large reachable.
  check_splitter(input, std::size_t{1} << 20);
  check_splitter(input, size == 0 ? 1 : static_cast<std::size_t>(data[0] % 64) + 1);

  // The seed's client sends one object with no delimiter: the whole input
  // is a frame too.
  check_request(input);
  check_reply(input);
  std::vector<std::string> frames;
  FrameSplitter splitter(std::size_t{1} << 20);
  // A fault still leaves the frames completed before it.
  (void)splitter.feed(input, frames);
  if (frames.size() == 1 && frames[0] == input) return 0;  // already checked
  for (const std::string& frame : frames) {
    check_request(frame);
    check_reply(frame);
  }
  return 0;
}
