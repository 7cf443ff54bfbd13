// The peer codec, fed whatever reaches a node's port: decode_peer must
// refuse or accept without crashing, and an accepted message must survive
// encode_peer -> decode_peer exactly. The comparison is on the re-encoded
// bytes: encode_peer writes every field, so equal bytes mean equal messages.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "wire/peer_codec.hpp"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace distdb::wire;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  (void)is_peer_frame(input);  // a hint on unparsed bytes: must merely not crash
  const auto decoded = decode_peer(input);
  if (!decoded) return 0;

  const std::string encoded = encode_peer(*decoded);
  check(is_peer_frame(encoded));  // what we write is always recognised as a peer frame
  const auto redecoded = decode_peer(encoded);
  check(redecoded.ok());
  check(encode_peer(*redecoded) == encoded);
  return 0;
}
