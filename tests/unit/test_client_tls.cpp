// distdb::Client's TLS options: what is wrong with them is said before any
// connection is tried (ErrorKind::config, naming the option and the file).
#include <doctest/doctest.h>

#include <string>

#include "distdb/client.hpp"
#include "test_certs.hpp"

using namespace distdb;

namespace {

// Port 1 on loopback: nothing listens there, so reaching the network at
// all would give "cannot connect", not the errors checked here.
std::string connect_error(const ClientOptions& options) {
  auto client = Client::connect("127.0.0.1", 1, options);
  REQUIRE_FALSE(client.ok());
  CHECK(client.error().kind == ErrorKind::config);
  auto cluster = Client::connect_cluster({{"127.0.0.1", 1}}, options);
  REQUIRE_FALSE(cluster.ok());
  CHECK(cluster.error().message == client.error().message);
  return client.error().message;
}

}  // namespace

TEST_CASE("client TLS options: mistakes are config errors, found before connecting") {
  const test::TestCerts& certs = test::TestCerts::shared();
  const std::string missing = certs.dir() + "/missing.pem";

  ClientOptions o;
  o.tls.ca_file = certs.ca();
  CHECK(connect_error(o) == "TLS options are set but tls.enabled is false");

  o.tls.enabled = true;
  o.tls.ca_file = missing;
  CHECK(connect_error(o) == "tls.ca_file: " + missing + ": cannot read: No such file or directory");
  o.tls.ca_file = certs.key(1);
  CHECK(connect_error(o) ==
        "tls.ca_file: " + certs.key(1) + ": no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)");

  o.tls.ca_file = certs.ca();
  o.tls.certificate_file = certs.client_cert();
  CHECK(connect_error(o) == "tls.certificate_file is set without tls.key_file");
  o.tls.certificate_file.clear();
  o.tls.key_file = certs.client_key();
  CHECK(connect_error(o) == "tls.key_file is set without tls.certificate_file");
  o.tls.certificate_file = certs.client_cert();
  o.tls.key_file = certs.key(1);
  CHECK(connect_error(o) == "tls.key_file: " + certs.key(1) + ": not the private key of the certificate in " +
                                certs.client_cert() + " (tls.certificate_file)");
  o.tls.key_file = missing;
  CHECK(connect_error(o) == "tls.key_file: " + missing + ": cannot read: No such file or directory");

  // Valid options reach the network (and find nothing on port 1).
  o.tls.key_file = certs.client_key();
  auto client = Client::connect("127.0.0.1", 1, o);
  REQUIRE_FALSE(client.ok());
  CHECK(client.error().kind == ErrorKind::unavailable);
  CHECK(client.error().message.rfind("cannot connect to 127.0.0.1:1: ", 0) == 0);
}
