#include "wire/peer_auth.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <charconv>
#include <chrono>
#include <random>
#include <stdexcept>

namespace distdb::wire {
namespace {

constexpr std::string_view kMember = ",\"auth\":\"";
constexpr std::size_t kMacHexLength = 64;  // SHA-256

std::int64_t system_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::uint64_t random_session() {
  std::uint64_t value = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&value), sizeof value) != 1) {
    // No entropy from OpenSSL: fall back on the system's, which is still
    // unpredictable enough to tell sessions apart (replay protection rests
    // on the counter and time, not on the session being secret).
    std::random_device rd;
    value = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }
  return value == 0 ? 1 : value;
}

template <typename T>
bool parse_number(std::string_view text, T& out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

Error refused(const std::string& why) {
  return Error(ErrorKind::invalid_request, "peer message refused: " + why);
}

}  // namespace

PeerAuth::PeerAuth(std::string secret, std::function<std::int64_t()> clock_ms)
    : secret_(std::move(secret)),
      clock_ms_(clock_ms ? std::move(clock_ms) : std::function<std::int64_t()>(system_clock_ms)),
      session_(random_session()) {
  if (!enabled()) return;
  hmac_.reset(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  if (!hmac_) throw std::runtime_error("HMAC is not available from OpenSSL");
}

void PeerAuth::MacFree::operator()(evp_mac_st* mac) const {
  EVP_MAC_free(mac);
}

std::string PeerAuth::mac_hex(std::string_view frame, std::string_view numbers) const {
  unsigned char digest[EVP_MAX_MD_SIZE];
  std::size_t length = 0;
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(hmac_.get());
  char digest_name[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
                               OSSL_PARAM_construct_end()};
  const bool ok =
      ctx != nullptr &&
      EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(secret_.data()), secret_.size(), params) ==
          1 &&
      EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(frame.data()), frame.size()) == 1 &&
      EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>("\n"), 1) == 1 &&
      EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(numbers.data()), numbers.size()) == 1 &&
      EVP_MAC_final(ctx, digest, &length, sizeof digest) == 1;
  EVP_MAC_CTX_free(ctx);
  if (!ok) throw std::runtime_error("HMAC-SHA256 is not available from OpenSSL");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * length);
  for (std::size_t i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xf];
  }
  return hex;
}

std::string PeerAuth::sign(std::string frame) {
  if (!enabled() || frame.empty() || frame.back() != '}') return frame;
  const std::string numbers =
      std::to_string(session_) + "-" + std::to_string(++counter_) + "-" + std::to_string(clock_ms_());
  const std::string mac = mac_hex(frame, numbers);
  frame.pop_back();
  frame += kMember;
  frame += numbers;
  frame += '-';
  frame += mac;
  frame += "\"}";
  return frame;
}

Result<std::string> PeerAuth::verify(std::string_view frame, Token& token) const {
  if (!enabled()) return std::string(frame);
  const auto at = frame.rfind(kMember);
  if (at == std::string_view::npos || frame.size() < 2 || frame.substr(frame.size() - 2) != "\"}") {
    return refused("no authenticator (is cluster_secret set on every member?)");
  }
  const std::string_view value = frame.substr(at + kMember.size(), frame.size() - 2 - at - kMember.size());
  // <session>-<counter>-<time_ms>-<hmac>
  const auto mac_dash = value.rfind('-');
  if (mac_dash == std::string_view::npos || value.size() - mac_dash - 1 != kMacHexLength) {
    return refused("malformed authenticator");
  }
  const std::string_view numbers = value.substr(0, mac_dash);
  const auto d1 = numbers.find('-');
  const auto d2 = d1 == std::string_view::npos ? d1 : numbers.find('-', d1 + 1);
  if (d2 == std::string_view::npos || !parse_number(numbers.substr(0, d1), token.session) ||
      !parse_number(numbers.substr(d1 + 1, d2 - d1 - 1), token.counter) ||
      !parse_number(numbers.substr(d2 + 1), token.time_ms)) {
    return refused("malformed authenticator");
  }
  std::string original(frame.substr(0, at));
  original += '}';
  const std::string expected = mac_hex(original, numbers);
  const std::string_view given = value.substr(mac_dash + 1);
  if (CRYPTO_memcmp(expected.data(), given.data(), kMacHexLength) != 0) {
    return refused("wrong authenticator (a different cluster_secret, or the message was altered)");
  }
  return original;
}

Status PeerAuth::accept(NodeId from, const Token& token) {
  if (!enabled()) return {};
  const std::int64_t now = clock_ms_();
  const std::int64_t skew = token.time_ms > now ? token.time_ms - now : now - token.time_ms;
  if (skew > kMaxClockSkewMs) {
    return refused("from node " + std::to_string(from) + ": its time is " + std::to_string(skew) +
                   " ms away from ours (members' clocks must agree within " +
                   std::to_string(kMaxClockSkewMs) + " ms), or it is a replay");
  }
  auto it = seen_.find(from);
  if (it == seen_.end()) {
    seen_[from] = Seen{token.session, token.counter, token.time_ms};
    return {};
  }
  Seen& seen = it->second;
  if (token.session == seen.session) {
    if (token.counter <= seen.counter) return refused("from node " + std::to_string(from) + ": a replay");
    seen.counter = token.counter;
    return {};
  }
  if (token.time_ms <= seen.session_started_ms) {
    return refused("from node " + std::to_string(from) + ": from an older session of that node (a replay)");
  }
  seen = Seen{token.session, token.counter, token.time_ms};
  return {};
}

}  // namespace distdb::wire
