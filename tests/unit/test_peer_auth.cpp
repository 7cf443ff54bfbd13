// PeerAuth: a frame is accepted only with the right secret, unaltered, and
// not replayed (wire/peer_auth.hpp).
#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "distdb/core/messages.hpp"
#include "wire/peer_auth.hpp"
#include "wire/peer_codec.hpp"

using distdb::wire::PeerAuth;

namespace {

const std::string kSecret = "correct horse battery staple";

std::string heartbeat_frame(distdb::NodeId from, distdb::NodeId to) {
  distdb::core::Envelope e;
  e.from = from;
  e.to = to;
  e.message = distdb::core::Heartbeat{};
  return distdb::wire::encode_peer(e);
}

struct Clock {
  std::int64_t now = 1'790'000'000'000;
  std::function<std::int64_t()> fn() {
    return [this] { return now; };
  }
};

}  // namespace

TEST_CASE("peer auth: a signed frame verifies, decodes and is fresh once") {
  Clock clock;
  PeerAuth sender(kSecret, clock.fn());
  PeerAuth receiver(kSecret, clock.fn());
  const std::string plain = heartbeat_frame(2, 1);
  const std::string signed_frame = sender.sign(plain);
  CHECK(signed_frame != plain);
  PeerAuth::Token token;
  auto verified = receiver.verify(signed_frame, token);
  REQUIRE_MESSAGE(verified.ok(), verified.error().message);
  CHECK(*verified == plain);  // exactly the bytes encode_peer() made
  REQUIRE(distdb::wire::decode_peer(*verified).ok());
  CHECK(receiver.accept(2, token).ok());
  // The same frame again: a replay.
  PeerAuth::Token again;
  REQUIRE(receiver.verify(signed_frame, again).ok());
  const auto replay = receiver.accept(2, again);
  REQUIRE_FALSE(replay.ok());
  CHECK(replay.error().message.find("replay") != std::string::npos);
  // The next frame of the same sender is fresh.
  PeerAuth::Token next;
  REQUIRE(receiver.verify(sender.sign(plain), next).ok());
  CHECK(receiver.accept(2, next).ok());
}

TEST_CASE("peer auth: a missing, altered or foreign authenticator is refused") {
  PeerAuth sender(kSecret);
  PeerAuth receiver(kSecret);
  const std::string plain = heartbeat_frame(2, 1);
  PeerAuth::Token token;

  auto none = receiver.verify(plain, token);
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().message.find("no authenticator") != std::string::npos);

  const std::string good = sender.sign(plain);
  // Any byte changed: the sender, the payload, a number, the MAC itself.
  for (std::size_t i = 0; i + 2 < good.size(); ++i) {
    std::string bad = good;
    bad[i] = bad[i] == '1' ? '2' : '1';
    CAPTURE(i);
    CHECK_FALSE(receiver.verify(bad, token).ok());
  }

  PeerAuth stranger("another secret of some length");
  auto foreign = receiver.verify(stranger.sign(plain), token);
  REQUIRE_FALSE(foreign.ok());
  CHECK(foreign.error().message.find("wrong authenticator") != std::string::npos);
  CHECK(foreign.error().message.find(kSecret) == std::string::npos);
}

TEST_CASE("peer auth: old sessions and stale times are refused; a restarted sender is not") {
  Clock clock;
  PeerAuth receiver(kSecret, clock.fn());
  const std::string plain = heartbeat_frame(3, 1);

  PeerAuth first(kSecret, clock.fn());
  const std::string captured = first.sign(plain);
  PeerAuth::Token token;
  REQUIRE(receiver.verify(captured, token).ok());
  REQUIRE(receiver.accept(3, token).ok());

  // The sender restarts a second later: a new session, accepted.
  clock.now += 1000;
  PeerAuth second(kSecret, clock.fn());
  REQUIRE(receiver.verify(second.sign(plain), token).ok());
  CHECK(receiver.accept(3, token).ok());

  // A frame captured from the first process, played now: an older session.
  REQUIRE(receiver.verify(captured, token).ok());
  CHECK_FALSE(receiver.accept(3, token).ok());

  // Played much later to a receiver that never heard of the sender: too old.
  clock.now += PeerAuth::kMaxClockSkewMs + 1;
  PeerAuth fresh_receiver(kSecret, clock.fn());
  REQUIRE(fresh_receiver.verify(captured, token).ok());
  const auto stale = fresh_receiver.accept(3, token);
  REQUIRE_FALSE(stale.ok());
  CHECK(stale.error().message.find("clocks") != std::string::npos);
}

TEST_CASE("peer auth: without a secret frames pass unchanged") {
  PeerAuth off("");
  CHECK_FALSE(off.enabled());
  const std::string plain = heartbeat_frame(2, 1);
  CHECK(off.sign(plain) == plain);
  PeerAuth::Token token;
  auto verified = off.verify(plain, token);
  REQUIRE(verified.ok());
  CHECK(*verified == plain);
  CHECK(off.accept(2, token).ok());
}
