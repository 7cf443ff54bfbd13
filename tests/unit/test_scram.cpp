// SCRAM-SHA-256 (auth/scram.hpp): the example exchange of RFC 7677,
// section 3, step by step on both sides; verifiers; and every way a client
// or a server must refuse the other.
#include <doctest/doctest.h>

#include <string>

#include "auth/scram.hpp"
#include "util/text.hpp"

using namespace distdb;
using namespace distdb::auth;

namespace {

// RFC 7677, section 3: user "user", password "pencil".
constexpr const char* kClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr const char* kServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr const char* kSalt = "W22ZaJ0SNY7soEsUEjb6gQ==";
constexpr const char* kClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr const char* kServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr const char* kClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+"
    "Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr const char* kServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

Verifier rfc_verifier() {
  auto salt = text::base64_decode(kSalt);
  REQUIRE(salt.has_value());
  return derive_verifier("pencil", *salt, 4096);
}

ScramServer::Lookup only(const std::string& name, const Verifier& v) {
  return [name, v](std::string_view user) {
    ScramServer::Account a;
    a.verifier = v;
    a.known = user == name;
    return a;
  };
}

}  // namespace

TEST_CASE("scram: the RFC 7677 exchange, client side, every message") {
  ScramClient client("user", "pencil", kClientNonce);
  auto first = client.first_message();
  REQUIRE(first.ok());
  CHECK(*first == kClientFirst);
  auto final = client.final_message(kServerFirst);
  REQUIRE_MESSAGE(final.ok(), final.error().message);
  CHECK(*final == kClientFinal);
  CHECK(client.verify_server_final(kServerFinal).ok());
}

TEST_CASE("scram: the RFC 7677 exchange, server side, every message") {
  ScramServer server(only("user", rfc_verifier()), kServerNonce);
  auto first = server.first(kClientFirst);
  REQUIRE(first.ok());
  CHECK(*first == kServerFirst);
  CHECK(server.user() == "user");
  auto final = server.final(kClientFinal);
  REQUIRE_MESSAGE(final.ok(), final.error().message);
  CHECK(*final == kServerFinal);
}

TEST_CASE("scram: verifiers are formatted and parsed back; they hold no password") {
  const Verifier v = rfc_verifier();
  const std::string text = format_verifier(v);
  CHECK(text.rfind("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$", 0) == 0);
  CHECK(text.find("pencil") == std::string::npos);
  auto parsed = parse_verifier(text);
  REQUIRE(parsed.ok());
  CHECK(parsed->iterations == 4096);
  CHECK(parsed->salt == v.salt);
  CHECK(parsed->stored_key == v.stored_key);
  CHECK(parsed->server_key == v.server_key);

  // A fresh hash: a random salt each time, the default iteration count.
  auto a = hash_password("pencil");
  auto b = hash_password("pencil");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(*a != *b);
  auto pa = parse_verifier(*a);
  REQUIRE(pa.ok());
  CHECK(pa->iterations == kDefaultIterations);
  CHECK(pa->salt.size() == kSaltBytes);
  // It works for a login.
  ScramClient client("app", "pencil");
  ScramServer server(only("app", *pa));
  auto cf = client.first_message();
  REQUIRE(cf.ok());
  auto sf = server.first(*cf);
  REQUIRE(sf.ok());
  auto cl = client.final_message(*sf);
  REQUIRE(cl.ok());
  auto sl = server.final(*cl);
  REQUIRE(sl.ok());
  CHECK(client.verify_server_final(*sl).ok());
}

TEST_CASE("scram: malformed verifiers are refused without repeating them") {
  const std::string good = format_verifier(rfc_verifier());
  const std::string cases[] = {
      "pencil",
      "",
      "SCRAM-SHA-1$4096:W22ZaJ0SNY7soEsUEjb6gQ==$a:b",
      "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==",
      "SCRAM-SHA-256$x:W22ZaJ0SNY7soEsUEjb6gQ==$" + good.substr(good.find('$', 15) + 1),
      "SCRAM-SHA-256$1000:W22ZaJ0SNY7soEsUEjb6gQ==$" +
          good.substr(good.find('$', 15) + 1),  // too few iterations
      "SCRAM-SHA-256$4096:!!!$" + good.substr(good.find('$', 15) + 1),
      "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$AAAA:AAAA",  // keys too short
      good.substr(0, good.size() - 4),
      good + "AAAA",
  };
  for (const std::string& text : cases) {
    auto r = parse_verifier(text);
    CHECK_MESSAGE(!r.ok(), text);
    if (r.ok()) continue;
    CHECK(r.error().kind == ErrorKind::config);
    CHECK(r.error().message.find("--hash-password") != std::string::npos);
    if (text.size() > 4) CHECK_MESSAGE(r.error().message.find(text) == std::string::npos, r.error().message);
  }
  CHECK(parse_verifier("SCRAM-SHA-256$pencil-is-my-password").error().message.find("pencil") ==
        std::string::npos);
}

TEST_CASE("scram: user names are escaped and checked") {
  CHECK(encode_name("a=b,c") == "a=3Db=2Cc");
  CHECK(decode_name("a=3Db=2Cc") == std::optional<std::string>("a=b,c"));
  CHECK_FALSE(decode_name("a=4Fb").has_value());
  CHECK_FALSE(decode_name("a=").has_value());
  CHECK(is_valid_user_name("app"));
  CHECK(is_valid_user_name("usuário"));
  CHECK_FALSE(is_valid_user_name(""));
  CHECK_FALSE(is_valid_user_name(std::string(kMaxUserBytes + 1, 'a')));
  CHECK_FALSE(is_valid_user_name("a\nb"));
  CHECK_FALSE(is_valid_user_name("\xff"));

  // A name with both special characters logs in.
  const Verifier v = rfc_verifier();
  ScramClient client("x=y,z", "pencil");
  ScramServer server(only("x=y,z", v));
  auto sf = server.first(*client.first_message());
  REQUIRE(sf.ok());
  CHECK(server.user() == "x=y,z");
  auto sl = server.final(*client.final_message(*sf));
  REQUIRE(sl.ok());
  CHECK(client.verify_server_final(*sl).ok());
}

TEST_CASE("scram: the client refuses a server that does not hold the verifier") {
  SUBCASE("a wrong server signature") {
    ScramClient client("user", "pencil", kClientNonce);
    REQUIRE(client.first_message().ok());
    REQUIRE(client.final_message(kServerFirst).ok());
    std::string forged = kServerFinal;
    forged[5] = forged[5] == 'A' ? 'B' : 'A';
    auto st = client.verify_server_final(forged);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().kind == ErrorKind::unauthenticated);
    CHECK(st.error().message.find("signature") != std::string::npos);
  }
  SUBCASE("a server that answers for another password's verifier") {
    auto salt = text::base64_decode(kSalt);
    ScramServer impostor(only("user", derive_verifier("not pencil", *salt, 4096)), kServerNonce);
    ScramClient client("user", "pencil", kClientNonce);
    auto sf = impostor.first(*client.first_message());
    REQUIRE(sf.ok());
    auto cf = client.final_message(*sf);
    REQUIRE(cf.ok());
    CHECK_FALSE(impostor.final(*cf).ok());  // and it cannot sign: the client's check below fails too
    CHECK_FALSE(client.verify_server_final("v=" + text::base64_encode(std::string(32, 'x'))).ok());
  }
  SUBCASE("malformed or refused server-final") {
    for (const char* bad :
         {"", "v=", "v=abc", "x=1", "e=invalid-proof", "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4"}) {
      ScramClient client("user", "pencil", kClientNonce);
      REQUIRE(client.first_message().ok());
      REQUIRE(client.final_message(kServerFirst).ok());
      CHECK_MESSAGE(!client.verify_server_final(bad).ok(), bad);
    }
  }
  SUBCASE("a signature before any proof was sent") {
    ScramClient client("user", "pencil", kClientNonce);
    CHECK_FALSE(client.verify_server_final(kServerFinal).ok());
  }
}

TEST_CASE("scram: the client refuses a bad server-first") {
  const std::string nonce = std::string(kClientNonce) + kServerNonce;
  const std::string cases[] = {
      "",
      "r=" + std::string(kClientNonce) + ",s=" + kSalt + ",i=4096",  // no server part
      "r=someoneelse" + std::string(kServerNonce) + ",s=" + kSalt + ",i=4096",
      "r=" + nonce + ",s=" + kSalt + ",i=1",          // too few iterations
      "r=" + nonce + ",s=" + kSalt + ",i=100000000",  // too many: a hostile server
      "r=" + nonce + ",s=" + kSalt + ",i=x",
      "r=" + nonce + ",s=!!,i=4096",
      "r=" + nonce + ",s=,i=4096",
      "s=" + std::string(kSalt) + ",r=" + nonce + ",i=4096",
      "m=ext,r=" + nonce + ",s=" + kSalt + ",i=4096",
      "r=" + nonce + ",s=" + kSalt + ",i=4096,m=mandatory",
      "r=" + nonce + "\x01,s=" + kSalt + ",i=4096",
      std::string(5000, 'r'),
  };
  for (const std::string& bad : cases) {
    ScramClient client("user", "pencil", kClientNonce);
    REQUIRE(client.first_message().ok());
    auto r = client.final_message(bad);
    CHECK_MESSAGE(!r.ok(), bad);
    if (!r.ok()) CHECK(r.error().kind == ErrorKind::unauthenticated);
  }
}

TEST_CASE("scram: the server refuses wrong proofs, unknown users, and malformed or replayed messages") {
  const Verifier v = rfc_verifier();
  SUBCASE("a wrong password") {
    ScramServer server(only("user", v));
    ScramClient client("user", "pencil2");
    auto sf = server.first(*client.first_message());
    REQUIRE(sf.ok());
    auto r = server.final(*client.final_message(*sf));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == "wrong password");
  }
  SUBCASE("an unknown user, even one who would know the made-up verifier's password") {
    ScramServer server(only("user", v));
    ScramClient client("nobody", "pencil");
    auto sf = server.first(*client.first_message());
    REQUIRE(sf.ok());  // answered like a known user
    auto r = server.final(*client.final_message(*sf));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == "unknown user");
  }
  SUBCASE("a proof altered in one bit") {
    ScramServer server(only("user", v), kServerNonce);
    REQUIRE(server.first(kClientFirst).ok());
    std::string altered = kClientFinal;
    altered[altered.size() - 3] = altered[altered.size() - 3] == 'd' ? 'e' : 'd';
    CHECK_FALSE(server.final(altered).ok());
  }
  SUBCASE("the right proof replayed on another exchange (another server nonce)") {
    ScramServer server(only("user", v));
    REQUIRE(server.first(kClientFirst).ok());
    CHECK_FALSE(server.final(kClientFinal).ok());
  }
  SUBCASE("client-final twice, or before client-first") {
    ScramServer server(only("user", v), kServerNonce);
    CHECK_FALSE(server.final(kClientFinal).ok());
    ScramServer again(only("user", v), kServerNonce);
    REQUIRE(again.first(kClientFirst).ok());
    REQUIRE(again.final(kClientFinal).ok());
    CHECK_FALSE(again.final(kClientFinal).ok());
    CHECK_FALSE(again.first(kClientFirst).ok());
  }
  SUBCASE("malformed client-first") {
    for (const std::string bad :
         {std::string(""), std::string("n=user,r=abc"), std::string("y,,n=user,r=abc"),
          std::string("p=tls-unique,,n=user,r=abc"), std::string("n,a=admin,n=user,r=abc"),
          std::string("n,,r=abc,n=user"), std::string("n,,n=user"), std::string("n,,n=,r=abc"),
          std::string("n,,n=us=er,r=abc"), std::string("n,,n=user,r=a,bc"), std::string("n,,n=user,r="),
          std::string("n,,n=user,r=abc,m=x"), std::string("n,,n=user,r=ab\x7f"),
          "n,,n=" + std::string(kMaxUserBytes + 1, 'u') + ",r=abc",
          "n,,n=user,r=" + std::string(2000, 'a')}) {
      ScramServer server(only("user", v));
      CHECK_MESSAGE(!server.first(bad).ok(), bad);
    }
  }
  SUBCASE("malformed client-final") {
    const std::string nonce = std::string(kClientNonce) + kServerNonce;
    for (const std::string bad :
         {std::string(""), std::string("c=biws,r=" + nonce),
          "c=eSws,r=" + nonce + ",p=" + std::string(44, 'A'),
          "c=biws,r=" + std::string(kClientNonce) + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
          "r=" + nonce + ",c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
          "c=biws,r=" + nonce + ",p=short",
          "c=biws,r=" + nonce + ",m=x,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="}) {
      ScramServer server(only("user", v), kServerNonce);
      REQUIRE(server.first(kClientFirst).ok());
      CHECK_MESSAGE(!server.final(bad).ok(), bad);
    }
  }
}

TEST_CASE("scram: a client's keys are cached per salt and count") {
  const Verifier v = rfc_verifier();
  ClientKeys cache;
  ScramClient first("user", "pencil", kClientNonce);
  REQUIRE(first.first_message().ok());
  REQUIRE(first.final_message(kServerFirst, &cache).ok());
  CHECK(cache.iterations == 4096);
  CHECK(cache.salt == v.salt);
  // With the cache filled, the same proof comes out (and no PBKDF2 runs).
  ScramClient second("user", "pencil", kClientNonce);
  REQUIRE(second.first_message().ok());
  auto final = second.final_message(kServerFirst, &cache);
  REQUIRE(final.ok());
  CHECK(*final == kClientFinal);
  // Another salt replaces the entry.
  ScramClient third("user", "pencil", "abc");
  REQUIRE(third.first_message().ok());
  REQUIRE(third
              .final_message("r=abcdef,s=" + text::base64_encode(std::string("0123456789abcdef")) + ",i=4096",
                             &cache)
              .ok());
  CHECK(cache.salt != v.salt);
}
