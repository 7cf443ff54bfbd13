// PEM files for TLS, read with OpenSSL's libcrypto: certificates (a chain, or
// a CA bundle) and private keys.
//
// Why here and not in the TLS code: load_config() checks the files named in
// security.tls before the node starts (so that a bad file is a config error
// naming the field), and the transport and the client load them again to
// build their TLS contexts; both go through these functions and give the
// same messages. They never ask for a passphrase (an encrypted key is an
// error, not a prompt on the terminal) and never put a key's bytes in a
// message; the file's bytes are wiped from memory once parsed.
#pragma once

#include <openssl/types.h>

#include <memory>
#include <string>
#include <vector>

#include "distdb/error.hpp"

namespace distdb::pem {

struct CertFree {
  void operator()(X509* cert) const;
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const;
};
using Certificate = std::unique_ptr<X509, CertFree>;
using PrivateKey = std::unique_ptr<EVP_PKEY, KeyFree>;

// Every certificate in `path`, in file order (at least one). Errors (kind
// config) are one sentence starting with the path, e.g.
//   "/etc/distdb/node1.crt: cannot read: No such file or directory"
//   "/etc/distdb/node1.crt: no PEM certificate in it"
Result<std::vector<Certificate>> read_certificates(const std::string& path);

// The private key in `path` (PEM, not encrypted).
Result<PrivateKey> read_private_key(const std::string& path);

// Whether `key` is the private key of `cert`.
bool key_matches(X509& cert, EVP_PKEY& key);

}  // namespace distdb::pem
