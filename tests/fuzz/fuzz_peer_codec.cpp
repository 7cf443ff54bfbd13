// The peer codec, fed whatever reaches a node's port: decode_peer_frame must
// refuse or accept without crashing, and an accepted frame must survive
// encode -> decode exactly. The comparison is on the re-encoded bytes: the
// encoders write every field, so equal bytes mean equal messages.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

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
  const auto decoded = decode_peer_frame(input);
  if (!decoded) return 0;
  // decode_peer agrees on replication messages, and refuses the others.
  check(decode_peer(input).ok() == std::holds_alternative<distdb::core::Envelope>(*decoded));

  const auto encode = [](const PeerFrame& frame) {
    if (const auto* envelope = std::get_if<distdb::core::Envelope>(&frame)) return encode_peer(*envelope);
    return encode_transfer(std::get<TransferEnvelope>(frame));
  };
  const std::string encoded = encode(*decoded);
  check(is_peer_frame(encoded));  // what we write is always recognised as a peer frame
  const auto redecoded = decode_peer_frame(encoded);
  check(redecoded.ok());
  check(encode(*redecoded) == encoded);
  return 0;
}
