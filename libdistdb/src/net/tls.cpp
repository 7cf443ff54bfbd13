#include "net/tls.hpp"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <vector>

#include "util/pem.hpp"

namespace distdb::tls {
namespace {

// What OpenSSL left in its error queue, as one reason (the queue is cleared).
std::string last_openssl_reason() {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "unknown error";
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? reason : "error " + std::to_string(code);
}

Result<Context> new_context(const SSL_METHOD* method) {
  Context ctx(SSL_CTX_new(method));
  if (!ctx) return Error(ErrorKind::internal, "cannot create a TLS context: " + last_openssl_reason());
  // TLS 1.2 at least; OpenSSL's defaults for everything else (ciphers,
  // groups, signature algorithms).
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // Frames end with a newline, so a connection cut without close_notify
  // cannot pass for a complete message: such an end reads as an ordinary
  // end of stream, as over plain TCP.
  SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
  return ctx;
}

// The certificate chain in `cert_path` and its key in `key_path`, as the
// context's own identity. `cert_field`/`key_field` name them in errors.
Status use_identity(SSL_CTX* ctx, const std::string& cert_field, const std::string& cert_path,
                    const std::string& key_field, const std::string& key_path) {
  auto chain = pem::read_certificates(cert_path);
  if (!chain) return Error(ErrorKind::config, cert_field + ": " + chain.error().message);
  auto key = pem::read_private_key(key_path);
  if (!key) return Error(ErrorKind::config, key_field + ": " + key.error().message);
  if (!pem::key_matches(*chain->front(), **key)) {
    return Error(ErrorKind::config, key_field + ": " + key_path +
                                        ": not the private key of the certificate in " + cert_path + " (" +
                                        cert_field + ")");
  }
  if (SSL_CTX_use_certificate(ctx, chain->front().get()) != 1) {
    return Error(ErrorKind::config, cert_field + ": " + cert_path + ": refused: " + last_openssl_reason());
  }
  for (std::size_t i = 1; i < chain->size(); ++i) {
    if (SSL_CTX_add1_chain_cert(ctx, (*chain)[i].get()) != 1) {
      return Error(ErrorKind::config, cert_field + ": " + cert_path + ": certificate " +
                                          std::to_string(i + 1) +
                                          " of the chain refused: " + last_openssl_reason());
    }
  }
  if (SSL_CTX_use_PrivateKey(ctx, key->get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return Error(ErrorKind::config, key_field + ": " + key_path + ": refused: " + last_openssl_reason());
  }
  return {};
}

// The certificates of `ca_path` as the context's trust anchors (and, for
// a server asking for client certificates, as the names it sends).
Status trust(SSL_CTX* ctx, const std::string& field, const std::string& ca_path, bool name_for_clients) {
  auto certs = pem::read_certificates(ca_path);
  if (!certs) return Error(ErrorKind::config, field + ": " + certs.error().message);
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  for (const auto& cert : *certs) {
    if (X509_STORE_add_cert(store, cert.get()) != 1) {
      const unsigned long code = ERR_peek_last_error();
      // The same certificate twice in a bundle is harmless.
      if (ERR_GET_REASON(code) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
        return Error(ErrorKind::config, field + ": " + ca_path + ": refused: " + last_openssl_reason());
      }
      ERR_clear_error();
    }
    if (name_for_clients) SSL_CTX_add_client_CA(ctx, cert.get());
  }
  return {};
}

}  // namespace

Result<Context> make_server_context(const TlsConfig& config) {
  auto ctx = new_context(TLS_server_method());
  if (!ctx) return ctx;
  SSL_CTX* c = ctx->get();
  if (auto st =
          use_identity(c, "security.tls.certificate", config.certificate, "security.tls.key", config.key);
      !st) {
    return st.error();
  }
  const bool ask = config.client_certificates != ClientCertificates::none;
  if (!config.ca.empty()) {
    if (auto st = trust(c, "security.tls.ca", config.ca, ask); !st) return st.error();
  }
  switch (config.client_certificates) {
    case ClientCertificates::none:
      SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
      break;
    case ClientCertificates::optional:
      SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
      break;
    case ClientCertificates::required:
      SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      break;
  }
  // No session resumption: connections are long-lived, and TLS 1.3 tickets
  // sent after the handshake would only be noise to idle clients.
  SSL_CTX_set_num_tickets(c, 0);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  return ctx;
}

Result<Context> make_peer_context(const TlsConfig& config) {
  auto ctx = new_context(TLS_client_method());
  if (!ctx) return ctx;
  SSL_CTX* c = ctx->get();
  if (auto st =
          use_identity(c, "security.tls.certificate", config.certificate, "security.tls.key", config.key);
      !st) {
    return st.error();
  }
  if (config.ca.empty()) {
    return Error(ErrorKind::config, "security.tls.ca: missing (needed to verify the peers' certificates)");
  }
  if (auto st = trust(c, "security.tls.ca", config.ca, false); !st) return st.error();
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  return ctx;
}

Result<Context> make_client_context(const ClientTls& options) {
  if (options.certificate_file.empty() != options.key_file.empty()) {
    return Error(ErrorKind::config, options.key_file.empty()
                                        ? "tls.certificate_file is set without tls.key_file"
                                        : "tls.key_file is set without tls.certificate_file");
  }
  auto ctx = new_context(TLS_client_method());
  if (!ctx) return ctx;
  SSL_CTX* c = ctx->get();
  if (!options.certificate_file.empty()) {
    if (auto st = use_identity(c, "tls.certificate_file", options.certificate_file, "tls.key_file",
                               options.key_file);
        !st) {
      return st.error();
    }
  }
  if (!options.verify) {
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
    return ctx;
  }
  if (!options.ca_file.empty()) {
    if (auto st = trust(c, "tls.ca_file", options.ca_file, false); !st) return st.error();
  } else if (SSL_CTX_set_default_verify_paths(c) != 1) {
    return Error(ErrorKind::config, "cannot load the system's trust store: " + last_openssl_reason());
  }
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  return ctx;
}

bool set_server_name(SSL* ssl, const std::string& name) {
  // SSL_set_tlsext_host_name(), without the macro's C cast.
  return SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                  const_cast<char*>(name.c_str())) == 1;
}

bool expect_name(SSL* ssl, const std::string& name) {
  if (name.empty()) return false;
  // An address literal is checked against the IP names only.
  if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) == 1) return true;
  ERR_clear_error();
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  const bool ok = SSL_set1_host(ssl, name.c_str()) == 1 && set_server_name(ssl, name);
  ERR_clear_error();
  return ok;
}

std::string failure_reason(SSL* ssl, unsigned long code) {
  if (code == 0) return "unknown error";
  const char* reason = ERR_reason_error_string(code);
  std::string text = reason != nullptr ? reason : "error " + std::to_string(code);
  if (ssl != nullptr && ERR_GET_LIB(code) == ERR_LIB_SSL &&
      ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    const long result = SSL_get_verify_result(ssl);
    if (result != X509_V_OK) text += std::string(" (") + X509_verify_cert_error_string(result) + ")";
  }
  return text;
}

std::optional<std::string> verified_subject_cn(SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return std::nullopt;
  X509_NAME* subject = X509_get_subject_name(cert);
  const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  // No common name, or two of them (which one would be the name?): none.
  if (at < 0 || X509_NAME_get_index_by_NID(subject, NID_commonName, at) >= 0) return std::nullopt;
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at)));
  if (len < 0) {
    ERR_clear_error();
    return std::nullopt;
  }
  std::string cn(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  if (cn.find('\0') != std::string::npos) return std::nullopt;  // a name that would compare as another
  return cn;
}

}  // namespace distdb::tls
