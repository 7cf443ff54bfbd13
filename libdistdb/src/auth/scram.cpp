#include "auth/scram.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <charconv>
#include <memory>
#include <stdexcept>
#include <utility>

#include "util/text.hpp"

namespace distdb::auth {
namespace {

constexpr std::string_view kVerifierPrefix = "SCRAM-SHA-256$";
// base64 of the gs2 header "n,,", which client-final echoes.
constexpr std::string_view kGs2HeaderBase64 = "biws";
constexpr std::size_t kNonceBytes = 18;
constexpr std::size_t kMaxNonceChars = 512;

Error failed(const std::string& why) {
  return Error(ErrorKind::unauthenticated, why);
}

Error bad_verifier(const std::string& why) {
  return Error(ErrorKind::config,
               "not a SCRAM-SHA-256 verifier (" + why + "); make one with: distdb-node --hash-password");
}

struct MacFree {
  void operator()(EVP_MAC* mac) const { EVP_MAC_free(mac); }
};

// OpenSSL's HMAC, fetched once (a fetched algorithm may be shared by threads).
EVP_MAC* hmac_algorithm() {
  static const std::unique_ptr<EVP_MAC, MacFree> mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  if (!mac) throw std::runtime_error("HMAC is not available from OpenSSL");
  return mac.get();
}

const std::uint8_t* bytes_of(std::string_view s) {
  return reinterpret_cast<const std::uint8_t*>(s.data());
}

std::string b64(const std::uint8_t* data, std::size_t size) {
  return text::base64_encode(data, size);
}
std::string b64(const Key& key) {
  return b64(key.data(), key.size());
}

std::optional<Key> key_from_base64(std::string_view text) {
  auto bytes = text::base64_decode(text);
  if (!bytes || bytes->size() != Key().size()) return std::nullopt;
  Key key{};
  std::copy(bytes->begin(), bytes->end(), key.begin());
  return key;
}

std::optional<int> parse_count(std::string_view text) {
  int value = 0;
  if (text.empty() || text.size() > 9) return std::nullopt;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Splits "a=1,b=2" into its attributes; each must be one letter, '=', value.
struct Attribute {
  char name;
  std::string_view value;
};
std::optional<std::vector<Attribute>> split_attributes(std::string_view message) {
  std::vector<Attribute> out;
  while (true) {
    const auto comma = message.find(',');
    const std::string_view part = message.substr(0, comma);
    if (part.size() < 2 || part[1] != '=' ||
        !((part[0] >= 'a' && part[0] <= 'z') || (part[0] >= 'A' && part[0] <= 'Z'))) {
      return std::nullopt;
    }
    out.push_back({part[0], part.substr(2)});
    if (comma == std::string_view::npos) break;
    message.remove_prefix(comma + 1);
    if (out.size() > 16) return std::nullopt;
  }
  return out;
}

bool is_valid_nonce(std::string_view nonce) {
  if (nonce.empty() || nonce.size() > kMaxNonceChars) return false;
  for (const char c : nonce) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

// A mandatory extension ("m=") cannot be honoured: the exchange must fail.
bool has_mandatory_extension(const std::vector<Attribute>& attributes) {
  for (const Attribute& a : attributes) {
    if (a.name == 'm') return true;
  }
  return false;
}

Key xor_keys(const Key& a, const Key& b) {
  Key out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::uint8_t>(a[i] ^ b[i]);
  return out;
}

Key hmac(const Key& key, std::string_view data) {
  return hmac_sha256(key.data(), key.size(), data);
}

}  // namespace

// ---------------------------------------------------------------- primitives

Key hmac_sha256(const std::uint8_t* key, std::size_t key_size, std::string_view data) {
  Key out{};
  std::size_t length = 0;
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(hmac_algorithm());
  char digest_name[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
                               OSSL_PARAM_construct_end()};
  const bool ok = ctx != nullptr && EVP_MAC_init(ctx, key, key_size, params) == 1 &&
                  EVP_MAC_update(ctx, bytes_of(data), data.size()) == 1 &&
                  EVP_MAC_final(ctx, out.data(), &length, out.size()) == 1 && length == out.size();
  EVP_MAC_CTX_free(ctx);
  if (!ok) throw std::runtime_error("HMAC-SHA256 is not available from OpenSSL");
  return out;
}

Key sha256(const std::uint8_t* data, std::size_t size) {
  Key out{};
  unsigned int length = 0;
  if (EVP_Digest(data, size, out.data(), &length, EVP_sha256(), nullptr) != 1 || length != out.size()) {
    throw std::runtime_error("SHA-256 is not available from OpenSSL");
  }
  return out;
}

Key salted_password(std::string_view password, const Bytes& salt, int iterations) {
  Key out{};
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt.data(),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(), static_cast<int>(out.size()),
                        out.data()) != 1) {
    throw std::runtime_error("PBKDF2-HMAC-SHA256 is not available from OpenSSL");
  }
  return out;
}

bool keys_equal(const Key& a, const Key& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// ---------------------------------------------------------------- verifiers

Verifier derive_verifier(std::string_view password, Bytes salt, int iterations) {
  Verifier v;
  Key salted = salted_password(password, salt, iterations);
  const Key client_key = hmac(salted, "Client Key");
  v.stored_key = sha256(client_key.data(), client_key.size());
  v.server_key = hmac(salted, "Server Key");
  OPENSSL_cleanse(salted.data(), salted.size());
  v.salt = std::move(salt);
  v.iterations = iterations;
  return v;
}

std::string format_verifier(const Verifier& v) {
  return std::string(kVerifierPrefix) + std::to_string(v.iterations) + ":" +
         b64(v.salt.data(), v.salt.size()) + "$" + b64(v.stored_key) + ":" + b64(v.server_key);
}

Result<Verifier> parse_verifier(std::string_view text) {
  if (text.substr(0, kVerifierPrefix.size()) != kVerifierPrefix) {
    return bad_verifier("it must start with " + std::string(kVerifierPrefix));
  }
  text.remove_prefix(kVerifierPrefix.size());
  // <iterations>:<salt>$<StoredKey>:<ServerKey>
  const auto dollar = text.find('$');
  if (dollar == std::string_view::npos) return bad_verifier("missing '$' before the keys");
  const std::string_view params = text.substr(0, dollar);
  const std::string_view keys = text.substr(dollar + 1);
  const auto colon1 = params.find(':');
  const auto colon2 = keys.find(':');
  if (colon1 == std::string_view::npos || colon2 == std::string_view::npos) {
    return bad_verifier("expected <iterations>:<salt>$<StoredKey>:<ServerKey>");
  }
  Verifier v;
  const auto iterations = parse_count(params.substr(0, colon1));
  if (!iterations) return bad_verifier("the iteration count is not a number");
  if (*iterations < kMinIterations || *iterations > kMaxIterations) {
    return bad_verifier("the iteration count must be from " + std::to_string(kMinIterations) + " to " +
                        std::to_string(kMaxIterations) + ", got " + std::to_string(*iterations));
  }
  v.iterations = *iterations;
  auto salt = text::base64_decode(params.substr(colon1 + 1));
  if (!salt || salt->empty()) return bad_verifier("the salt is not base64");
  v.salt = std::move(*salt);
  const auto stored = key_from_base64(keys.substr(0, colon2));
  const auto server = key_from_base64(keys.substr(colon2 + 1));
  if (!stored || !server) return bad_verifier("the keys must be 32 bytes each, in base64");
  v.stored_key = *stored;
  v.server_key = *server;
  return v;
}

Result<std::string> hash_password(std::string_view password, int iterations) {
  Bytes salt(kSaltBytes);
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) {
    return Error(ErrorKind::internal, "no random bytes from OpenSSL for the salt");
  }
  return format_verifier(derive_verifier(password, std::move(salt), iterations));
}

// ---------------------------------------------------------------- names and nonces

std::string encode_name(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (const char c : name) {
    if (c == '=') {
      out += "=3D";
    } else if (c == ',') {
      out += "=2C";
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::string> decode_name(std::string_view saslname) {
  std::string out;
  for (std::size_t i = 0; i < saslname.size(); ++i) {
    if (saslname[i] == ',') return std::nullopt;
    if (saslname[i] != '=') {
      out += saslname[i];
      continue;
    }
    const std::string_view escape = saslname.substr(i + 1, 2);
    if (escape == "3D") {
      out += '=';
    } else if (escape == "2C") {
      out += ',';
    } else {
      return std::nullopt;
    }
    i += 2;
  }
  return out;
}

bool is_valid_user_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxUserBytes || !text::is_valid_utf8(name)) return false;
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

Result<std::string> random_nonce() {
  std::uint8_t bytes[kNonceBytes];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return Error(ErrorKind::internal, "no random bytes from OpenSSL");
  return b64(bytes, sizeof bytes);
}

// ---------------------------------------------------------------- client

ScramClient::ScramClient(std::string user, std::string password, std::string nonce)
    : user_(std::move(user)), password_(std::move(password)), nonce_(std::move(nonce)) {}

ScramClient::~ScramClient() {
  OPENSSL_cleanse(password_.data(), password_.size());
  OPENSSL_cleanse(server_key_.data(), server_key_.size());
}

Result<std::string> ScramClient::first_message() {
  if (nonce_.empty()) {
    auto fresh = random_nonce();
    if (!fresh) return fresh.error();
    nonce_ = std::move(*fresh);
  }
  first_bare_ = "n=" + encode_name(user_) + ",r=" + nonce_;
  return "n,," + first_bare_;
}

Result<std::string> ScramClient::final_message(std::string_view server_first, ClientKeys* cache) {
  if (first_bare_.empty() || proof_sent_) return failed("SCRAM messages out of order");
  if (server_first.size() > kMaxMessageBytes) return failed("the server's first SCRAM message is too long");
  const auto attributes = split_attributes(server_first);
  if (!attributes || attributes->size() < 3 || (*attributes)[0].name != 'r' || (*attributes)[1].name != 's' ||
      (*attributes)[2].name != 'i' || has_mandatory_extension(*attributes)) {
    return failed("the server's first SCRAM message is malformed");
  }
  const std::string_view nonce = (*attributes)[0].value;
  if (!is_valid_nonce(nonce) || nonce.size() <= nonce_.size() || nonce.substr(0, nonce_.size()) != nonce_) {
    return failed("the server's nonce does not extend the client's");
  }
  auto salt = text::base64_decode((*attributes)[1].value);
  if (!salt || salt->empty()) return failed("the server sent a malformed salt");
  const auto iterations = parse_count((*attributes)[2].value);
  if (!iterations || *iterations < kMinIterations || *iterations > kMaxIterations) {
    return failed("the server asked for an iteration count outside " + std::to_string(kMinIterations) +
                  " to " + std::to_string(kMaxIterations));
  }

  ClientKeys keys;
  if (cache != nullptr && cache->iterations == *iterations && cache->salt == *salt) {
    keys = *cache;
  } else {
    Key salted = salted_password(password_, *salt, *iterations);
    keys.salt = std::move(*salt);
    keys.iterations = *iterations;
    keys.client_key = hmac(salted, "Client Key");
    keys.server_key = hmac(salted, "Server Key");
    OPENSSL_cleanse(salted.data(), salted.size());
    if (cache != nullptr) *cache = keys;
  }
  const Key stored_key = sha256(keys.client_key.data(), keys.client_key.size());
  const std::string without_proof = "c=" + std::string(kGs2HeaderBase64) + ",r=" + std::string(nonce);
  auth_message_ = first_bare_ + "," + std::string(server_first) + "," + without_proof;
  const Key proof = xor_keys(keys.client_key, hmac(stored_key, auth_message_));
  server_key_ = keys.server_key;
  OPENSSL_cleanse(keys.client_key.data(), keys.client_key.size());
  proof_sent_ = true;
  return without_proof + ",p=" + b64(proof);
}

Status ScramClient::verify_server_final(std::string_view server_final) const {
  if (!proof_sent_) return failed("SCRAM messages out of order");
  if (server_final.substr(0, 2) == "e=") {
    return failed("the server refused the login (" + text::quote_for_message(server_final.substr(2)) + ")");
  }
  const auto attributes = split_attributes(server_final);
  if (!attributes || attributes->empty() || (*attributes)[0].name != 'v') {
    return failed("the server's final SCRAM message is malformed");
  }
  const auto signature = key_from_base64((*attributes)[0].value);
  if (!signature || !keys_equal(*signature, hmac(server_key_, auth_message_))) {
    return failed("the server's signature is wrong: it does not hold this user's verifier");
  }
  return {};
}

// ---------------------------------------------------------------- server

ScramServer::ScramServer(Lookup lookup, std::string nonce)
    : lookup_(std::move(lookup)), server_nonce_(std::move(nonce)) {}

Result<std::string> ScramServer::first(std::string_view client_first) {
  if (started_) return failed("SCRAM messages out of order");
  started_ = true;
  if (client_first.size() > kMaxMessageBytes) return failed("client-first message too long");
  // gs2 header: "n,," only; "y" and "p=" ask for channel binding, "a=" for
  // an authorization identity, neither of which is supported.
  if (client_first.substr(0, 3) != "n,,") {
    return failed(
        "client-first message without the gs2 header \"n,,\" (channel binding and authzid are not "
        "supported)");
  }
  const std::string_view bare = client_first.substr(3);
  const auto attributes = split_attributes(bare);
  if (!attributes || attributes->size() < 2 || (*attributes)[0].name != 'n' || (*attributes)[1].name != 'r' ||
      has_mandatory_extension(*attributes)) {
    return failed("malformed client-first message");
  }
  auto user = decode_name((*attributes)[0].value);
  if (!user || !is_valid_user_name(*user)) return failed("malformed user name in client-first message");
  const std::string_view client_nonce = (*attributes)[1].value;
  if (!is_valid_nonce(client_nonce)) return failed("malformed nonce in client-first message");
  if (server_nonce_.empty()) {
    auto fresh = random_nonce();
    if (!fresh) return fresh.error();
    server_nonce_ = std::move(*fresh);
  }
  user_ = std::move(*user);
  account_ = lookup_(user_);
  first_bare_ = std::string(bare);
  nonce_ = std::string(client_nonce) + server_nonce_;
  server_first_ = "r=" + nonce_ + ",s=" + b64(account_.verifier.salt.data(), account_.verifier.salt.size()) +
                  ",i=" + std::to_string(account_.verifier.iterations);
  return server_first_;
}

Result<std::string> ScramServer::final(std::string_view client_final) {
  if (!started_ || server_first_.empty() || finished_) return failed("SCRAM messages out of order");
  finished_ = true;
  if (client_final.size() > kMaxMessageBytes) return failed("client-final message too long");
  const auto proof_at = client_final.rfind(",p=");
  if (proof_at == std::string_view::npos) return failed("client-final message without a proof");
  const std::string_view without_proof = client_final.substr(0, proof_at);
  const auto attributes = split_attributes(without_proof);
  if (!attributes || attributes->size() < 2 || (*attributes)[0].name != 'c' || (*attributes)[1].name != 'r' ||
      has_mandatory_extension(*attributes)) {
    return failed("malformed client-final message");
  }
  if ((*attributes)[0].value != kGs2HeaderBase64)
    return failed("client-final message with channel binding data");
  if ((*attributes)[1].value != nonce_) return failed("client-final message with the wrong nonce");
  const auto proof = key_from_base64(client_final.substr(proof_at + 3));
  if (!proof) return failed("malformed proof in client-final message");

  const std::string auth_message = first_bare_ + "," + server_first_ + "," + std::string(without_proof);
  const Verifier& v = account_.verifier;
  const Key client_key = xor_keys(*proof, hmac(v.stored_key, auth_message));
  const bool match = keys_equal(sha256(client_key.data(), client_key.size()), v.stored_key);
  if (!account_.known) return failed("unknown user");
  if (!match) return failed("wrong password");
  return "v=" + b64(hmac(v.server_key, auth_message));
}

}  // namespace distdb::auth
