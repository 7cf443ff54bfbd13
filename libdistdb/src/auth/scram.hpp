// SCRAM-SHA-256 (RFC 5802 with the hash of RFC 7677), without channel
// binding: the pieces of a client's password login, as pure functions and
// two small state machines that do no I/O (the node and distdb::Client carry
// the messages in AUTH requests; docs/protocol.md).
//
// The exchange, with the gs2 header "n,," (no channel binding, no authzid):
//
//   client-first  n,,n=<user>,r=<client nonce>
//   server-first  r=<client nonce><server nonce>,s=<salt, base64>,i=<iterations>
//   client-final  c=biws,r=<both nonces>,p=<ClientProof, base64>
//   server-final  v=<ServerSignature, base64>
//
// with, for AuthMessage = client-first without its gs2 header + "," +
// server-first + "," + client-final without ",p=...":
//
//   SaltedPassword  = PBKDF2-HMAC-SHA-256(password, salt, iterations)
//   ClientKey       = HMAC(SaltedPassword, "Client Key")
//   StoredKey       = SHA-256(ClientKey)
//   ServerKey       = HMAC(SaltedPassword, "Server Key")
//   ClientProof     = ClientKey XOR HMAC(StoredKey, AuthMessage)
//   ServerSignature = HMAC(ServerKey, AuthMessage)
//
// The node keeps only the verifier (salt, iterations, StoredKey, ServerKey):
// enough to check a proof and to sign, not to log in. The client checks the
// server's signature, which only a holder of the verifier can compute.
//
// Passwords are used as their UTF-8 bytes, without SASLprep (RFC 4013):
// distdb's own tools hash and send the same bytes, so any password works
// between them; a third-party SCRAM client that normalises a non-ASCII
// password may compute other keys (ASCII passwords are the same either way).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "distdb/error.hpp"

namespace distdb::auth {

inline constexpr std::string_view kScramSha256 = "SCRAM-SHA-256";
inline constexpr std::string_view kPlain = "PLAIN";

// Iteration counts: RFC 7677 asks for at least 4096. The default is eight
// times that: a login costs the client a few tens of milliseconds once per
// salt (distdb::Client keeps the derived keys for its reconnections), while
// every guess against a stolen verifier costs the attacker eight times what
// it would at 4096. The maximum bounds what a hostile server can make a
// client compute.
inline constexpr int kMinIterations = 4096;
inline constexpr int kDefaultIterations = 32768;
inline constexpr int kMaxIterations = 1000000;

inline constexpr std::size_t kSaltBytes = 16;
inline constexpr std::size_t kMaxUserBytes = 128;  // a user name, in UTF-8 bytes
inline constexpr std::size_t kMaxPasswordBytes = 1024;
inline constexpr std::size_t kMaxMessageBytes = 1024;  // one SCRAM message

using Key = std::array<std::uint8_t, 32>;
using Bytes = std::vector<std::uint8_t>;

// What a node stores for a user, written as
//   SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
// (base64; the format PostgreSQL stores).
struct Verifier {
  Bytes salt;
  int iterations = 0;
  Key stored_key{};
  Key server_key{};
};

// Errors say what is wrong without repeating the text (it may be a password
// pasted by mistake). Kind config.
Result<Verifier> parse_verifier(std::string_view text);
std::string format_verifier(const Verifier& verifier);
Verifier derive_verifier(std::string_view password, Bytes salt, int iterations);
// A verifier with a fresh random salt (kSaltBytes from RAND_bytes).
Result<std::string> hash_password(std::string_view password, int iterations = kDefaultIterations);

// A user name as SCRAM writes it ("=" -> "=3D", "," -> "=2C"), and back
// (nullopt when malformed).
std::string encode_name(std::string_view name);
std::optional<std::string> decode_name(std::string_view saslname);
// Whether `name` may be a user name: 1 to kMaxUserBytes bytes of UTF-8,
// no control characters.
bool is_valid_user_name(std::string_view name);

// A fresh nonce: 18 random bytes in base64 (24 printable characters).
Result<std::string> random_nonce();

// The keys a client derives from its password for one salt and count; kept
// to log in again (another connection, another member holding the same
// verifier) without running PBKDF2 again.
struct ClientKeys {
  Bytes salt;
  int iterations = 0;
  Key client_key{};
  Key server_key{};
};

class ScramClient {
 public:
  // `nonce` empty: a fresh random one (tests pass the RFC's).
  ScramClient(std::string user, std::string password, std::string nonce = {});
  ~ScramClient();
  ScramClient(const ScramClient&) = delete;
  ScramClient& operator=(const ScramClient&) = delete;

  // client-first; an error only when no random nonce could be drawn.
  Result<std::string> first_message();
  // server-first -> client-final. Refuses a server nonce that does not
  // extend ours, a malformed salt, and iteration counts outside
  // [kMinIterations, kMaxIterations]. `cache`, when given, is used when it
  // holds keys for the same salt and count, and is refreshed otherwise.
  Result<std::string> final_message(std::string_view server_first, ClientKeys* cache = nullptr);
  // Checks server-final: the server must prove that it holds the verifier.
  Status verify_server_final(std::string_view server_final) const;

 private:
  std::string user_;
  std::string password_;
  std::string nonce_;
  std::string first_bare_;
  std::string auth_message_;
  Key server_key_{};
  bool proof_sent_ = false;
};

class ScramServer {
 public:
  // What the node knows of the user named in client-first. For a user it
  // does not know it still answers, with a made-up verifier whose salt is
  // stable for that name, and fails at the proof: an outsider cannot tell
  // an unknown user from a wrong password.
  struct Account {
    Verifier verifier;
    bool known = false;
  };
  using Lookup = std::function<Account(std::string_view user)>;

  // `nonce` empty: a fresh random server nonce.
  explicit ScramServer(Lookup lookup, std::string nonce = {});
  ScramServer(const ScramServer&) = delete;
  ScramServer& operator=(const ScramServer&) = delete;

  // client-first -> server-first.
  Result<std::string> first(std::string_view client_first);
  // client-final -> server-final. Errors (kind unauthenticated) say why, for
  // the node's log; the client is told only that authentication failed.
  Result<std::string> final(std::string_view client_final);

  // The user named in client-first (empty before it).
  const std::string& user() const { return user_; }

 private:
  Lookup lookup_;
  std::string server_nonce_;
  std::string user_;
  std::string nonce_;  // client's + server's
  std::string first_bare_;
  std::string server_first_;
  Account account_;
  bool started_ = false;
  bool finished_ = false;
};

// Primitives, exposed for the node's made-up salts and for the tests.
Key hmac_sha256(const std::uint8_t* key, std::size_t key_size, std::string_view data);
Key sha256(const std::uint8_t* data, std::size_t size);
Key salted_password(std::string_view password, const Bytes& salt, int iterations);
// Constant-time comparison of two keys.
bool keys_equal(const Key& a, const Key& b);

}  // namespace distdb::auth
