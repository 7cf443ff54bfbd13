// Entry point of the tests that need real MariaDB servers: without servers
// they are skipped (exit 77), unless DISTDB_REQUIRE_MARIADB=1 makes that a failure.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "mariadb_env.hpp"

int main(int argc, char** argv) {
  if (distdb::test::mariadb_servers().empty()) {
    const char* require = std::getenv("DISTDB_REQUIRE_MARIADB");
    if (require != nullptr && std::string(require) == "1") {
      std::fprintf(stderr, "DISTDB_TEST_MARIADB is not set but DISTDB_REQUIRE_MARIADB=1: run scripts/test.sh\n");
      return 1;
    }
    std::fprintf(stderr, "skipped: no MariaDB servers (DISTDB_TEST_MARIADB unset); scripts/test.sh starts them\n");
    return 77;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
