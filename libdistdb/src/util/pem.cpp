#include "util/pem.hpp"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <limits>
#include <system_error>

namespace distdb::pem {

void CertFree::operator()(X509* cert) const {
  X509_free(cert);
}
void KeyFree::operator()(EVP_PKEY* key) const {
  EVP_PKEY_free(key);
}

namespace {

// A certificate bundle is a few kilobytes; this bounds what a wrong path
// (a device, a huge file) can make the node read.
constexpr std::size_t kMaxFileBytes = 4u * 1024 * 1024;

// The file's bytes; wiped when it goes (it may hold a private key).
class Contents {
 public:
  Contents() = default;
  Contents(const Contents&) = delete;
  Contents& operator=(const Contents&) = delete;
  ~Contents() {
    if (!bytes.empty()) OPENSSL_cleanse(bytes.data(), bytes.size());
  }
  std::string bytes;
};

Status read_file(const std::string& path, Contents& out) {
  const auto cannot_read = [&path](int err) {
    return Error(ErrorKind::config, path + ": cannot read: " + std::generic_category().message(err));
  };
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return cannot_read(errno);
  out.bytes.reserve(8192);
  char buf[8192];
  std::size_t n = 0;
  while (out.bytes.size() <= kMaxFileBytes && (n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    out.bytes.append(buf, n);
  }
  OPENSSL_cleanse(buf, sizeof buf);
  const int err = std::ferror(f) ? errno : 0;  // EISDIR: fopen accepts a directory
  std::fclose(f);
  if (err != 0) return cannot_read(err);
  if (out.bytes.size() > kMaxFileBytes) {
    return Error(ErrorKind::config,
                 path + ": file too large for PEM (over " + std::to_string(kMaxFileBytes) + " bytes)");
  }
  return {};
}

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};

std::unique_ptr<BIO, BioFree> memory_bio(const Contents& contents) {
  return std::unique_ptr<BIO, BioFree>(
      BIO_new_mem_buf(contents.bytes.data(), static_cast<int>(contents.bytes.size())));
}

// OpenSSL's reason for the last failure (it names no bytes of the input).
std::string openssl_reason() {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  const char* reason = code != 0 ? ERR_reason_error_string(code) : nullptr;
  return reason != nullptr ? reason : "unknown error";
}

// Refuses to decrypt: with OpenSSL's default callback an encrypted key would
// make the node ask for a passphrase on its terminal, or hang without one.
int no_passphrase(char*, int, int, void*) {
  return -1;
}

bool contains(const std::string& text, const char* what) {
  return text.find(what) != std::string::npos;
}

}  // namespace

Result<std::vector<Certificate>> read_certificates(const std::string& path) {
  Contents contents;
  if (auto st = read_file(path, contents); !st) return st.error();
  auto bio = memory_bio(contents);
  if (!bio) return Error(ErrorKind::internal, path + ": out of memory");
  std::vector<Certificate> certs;
  ERR_clear_error();
  for (;;) {
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr);
    if (cert == nullptr) break;
    certs.emplace_back(cert);
  }
  // The loop ends at the end of the input (PEM_R_NO_START_LINE), or at a
  // block that does not parse.
  const unsigned long last = ERR_peek_last_error();
  const bool clean_end =
      last == 0 || (ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE);
  if (!clean_end) {
    return Error(ErrorKind::config, path + ": certificate " + std::to_string(certs.size() + 1) +
                                        " does not parse: " + openssl_reason());
  }
  ERR_clear_error();
  if (certs.empty()) {
    return Error(ErrorKind::config,
                 path + ": no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)");
  }
  return certs;
}

Result<PrivateKey> read_private_key(const std::string& path) {
  Contents contents;
  if (auto st = read_file(path, contents); !st) return st.error();
  if (contains(contents.bytes, "-----BEGIN ENCRYPTED PRIVATE KEY-----") ||
      contains(contents.bytes, "Proc-Type: 4,ENCRYPTED")) {
    return Error(ErrorKind::config, path +
                                        ": the key is encrypted; distdb needs it without a passphrase "
                                        "(protect the file with its permissions instead)");
  }
  auto bio = memory_bio(contents);
  if (!bio) return Error(ErrorKind::internal, path + ": out of memory");
  ERR_clear_error();
  PrivateKey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) {
    const unsigned long last = ERR_peek_last_error();
    if (last == 0 || (ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE)) {
      ERR_clear_error();
      return Error(ErrorKind::config,
                   path + ": no PEM private key in it (expected -----BEGIN PRIVATE KEY-----)");
    }
    return Error(ErrorKind::config, path + ": the private key does not parse: " + openssl_reason());
  }
  return key;
}

bool key_matches(X509& cert, EVP_PKEY& key) {
  const bool match = X509_check_private_key(&cert, &key) == 1;
  ERR_clear_error();
  return match;
}

}  // namespace distdb::pem
