// TLS contexts on OpenSSL, for the three places distdb speaks TLS: the
// node's own port, the node's outbound links to its peers, and
// distdb::Client. One place decides the protocol floor (TLS 1.2), how
// certificates are verified and how a failure reads, so that the transport
// and the client cannot drift apart.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <optional>
#include <string>

#include "distdb/client.hpp"
#include "distdb/config.hpp"
#include "distdb/error.hpp"

namespace distdb::tls {

struct ContextFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using Context = std::unique_ptr<SSL_CTX, ContextFree>;

// The node's port: its certificate chain and key; client certificates asked
// for (and checked against config.ca) as config.client_certificates says.
// Errors (kind config) name the field: "security.tls.key: <file>: ...".
Result<Context> make_server_context(const TlsConfig& config);

// The node's links to its peers: the peer's certificate must chain to
// config.ca (and match the peer's address: expect_name()); the node's own
// certificate is presented as the client certificate.
Result<Context> make_peer_context(const TlsConfig& config);

// distdb::Client (see ClientTls). Errors (kind config) name the option:
// "tls.ca_file: <file>: ...".
Result<Context> make_client_context(const ClientTls& options);

// Makes `ssl` accept only a certificate valid for `name`: an IP address
// must be in its IP subject alternative names, any other name matches its
// DNS names (and is sent as SNI). False if OpenSSL refuses the name.
bool expect_name(SSL* ssl, const std::string& name);

// Sends `name` as SNI (a DNS name; never an IP address).
bool set_server_name(SSL* ssl, const std::string& name);

// Why a TLS operation failed, from an OpenSSL error code (e.g. an Asio
// ssl-category error's value): its reason, and when certificate
// verification was the reason, what was wrong with the certificate, e.g.
// "certificate verify failed (self-signed certificate in certificate chain)".
std::string failure_reason(SSL* ssl, unsigned long code);

// The subject common name of the certificate the other end presented, if
// it presented one and it verified; nullopt otherwise.
std::optional<std::string> verified_subject_cn(SSL* ssl);

}  // namespace distdb::tls
