// Authentication of peer messages with a secret every member holds
// ("security": {"cluster_secret": ...} in config.json; docs/security.md).
//
// Without it, anyone who reaches a node's port can send it a well-formed
// PEER message naming a member (votes, decisions, statements to prepare).
// With it, each peer frame carries an authenticator that only a holder of
// the secret can compute, and a node drops, and logs, every peer frame
// whose authenticator is missing, wrong or replayed, before it is decoded
// any further: it never reaches the replication core, let alone the storage.
//
// The authenticator. The sender appends one member to the frame that
// encode_peer() produced:
//
//   {... ,"auth":"<session>-<counter>-<time_ms>-<hmac>"}
//
// hmac = HMAC-SHA256(secret, F + "\n" + "<session>-<counter>-<time_ms>"),
// in hex, where F is the frame without that member (exactly the bytes
// encode_peer() produced). It binds every byte of the message and the three
// numbers, which protect against replay:
//   - session: random, drawn when the sending process starts;
//   - counter: increases with every frame the process sends;
//   - time_ms: the sender's wall clock.
// A receiver keeps, per member, the session it last accepted and the highest
// counter seen in it, and accepts a frame only when
//   - its time is within kMaxClockSkewMs of the receiver's clock, and
//   - it is of that session with a higher counter, or of a session that
//     started later (a restarted sender).
// So a captured frame cannot be played again: not in its session (the
// counter), not after its sender restarted (the newer session), and not
// later than the clock skew allows. What remains: within kMaxClockSkewMs of
// its capture, a frame may be replayed to a receiver that restarted in
// between and has not yet heard from the sender; the epoch rules of the
// protocol then refuse it unless it is still current.
//
// Threads: sign() may be called from any thread; verify() and accept()
// from one thread at a time (the node's network thread).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "distdb/config.hpp"
#include "distdb/error.hpp"

struct evp_mac_st;  // OpenSSL's EVP_MAC

namespace distdb::wire {

class PeerAuth {
 public:
  // The largest difference between members' clocks that is tolerated.
  static constexpr std::int64_t kMaxClockSkewMs = 30000;

  struct Token {
    std::uint64_t session = 0;
    std::uint64_t counter = 0;
    std::int64_t time_ms = 0;
  };

  // An empty secret turns authentication off: frames are sent as they are
  // and accepted without an authenticator. `clock_ms` is the wall clock
  // (milliseconds since the epoch); tests pass their own.
  explicit PeerAuth(std::string secret, std::function<std::int64_t()> clock_ms = {});

  bool enabled() const { return !secret_.empty(); }

  // `frame` as encode_peer() made it, with its authenticator appended.
  std::string sign(std::string frame);

  // Checks the authenticator of `frame` and returns the frame without it,
  // for decode_peer(), and its token in `token`. Errors (kind
  // invalid_request) say why, for the log; they never include the secret.
  Result<std::string> verify(std::string_view frame, Token& token) const;

  // Whether a verified frame from member `from` is fresh (see the top);
  // records it when it is. Call only after verify() succeeded and the
  // frame decoded, with the sender id it names.
  Status accept(NodeId from, const Token& token);

 private:
  std::string mac_hex(std::string_view frame, std::string_view numbers) const;

  struct MacFree {
    void operator()(evp_mac_st* mac) const;
  };

  std::string secret_;
  // OpenSSL's HMAC, fetched once (a provider lookup) rather than per
  // message; a fetched algorithm may be used from several threads.
  std::unique_ptr<evp_mac_st, MacFree> hmac_;
  std::function<std::int64_t()> clock_ms_;
  std::uint64_t session_ = 0;
  std::atomic<std::uint64_t> counter_{0};

  struct Seen {
    std::uint64_t session = 0;
    std::uint64_t counter = 0;
    std::int64_t session_started_ms = 0;  // the time of the first frame accepted in the session
  };
  std::map<NodeId, Seen> seen_;
};

}  // namespace distdb::wire
