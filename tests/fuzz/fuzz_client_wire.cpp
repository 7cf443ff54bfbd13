// The client side of the wire, fed whatever a TCP peer can send:
//   - the frame splitter, fed the input whole and in chunks of varying size,
//     must find the same frames and the same fault either way (a byte
//     stream can be cut anywhere by the network);
//   - every frame, and the input as one frame, goes to decode_request and
//     decode_reply; what decodes must encode and decode back to the same
//     request or reply.
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
  return true;
}

void check_request(std::string_view frame) {
  std::optional<std::uint64_t> id;
  const auto decoded = decode_request(frame, id);
  if (!decoded) return;
  check(id == decoded->id);  // the id handed back for error replies is the request's
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
  return a.id == b.id && a.status == b.status && a.node == b.node && a.message == b.message &&
         a.result.columns == b.result.columns && same_rows(a.result.rows, b.result.rows) &&
         a.result.rows_affected == b.result.rows_affected &&
         a.result.last_insert_id == b.result.last_insert_id && same_error(a.error, b.error) &&
         same_peer(a.coordinator, b.coordinator);
}

void check_reply(std::string_view frame) {
  const auto decoded = decode_reply(frame);
  if (!decoded) return;
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
