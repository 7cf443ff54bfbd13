// The MariaDB servers the test suite runs against.
//
// scripts/test.sh starts them (scripts/mariadb-sandbox.sh) and describes
// them to the tests through the environment:
//   DISTDB_TEST_MARIADB          host:port[,host:port...]  one entry per server
//   DISTDB_TEST_MARIADB_USER     (default root)
//   DISTDB_TEST_MARIADB_PASSWORD (default empty)
//   DISTDB_TEST_MARIADB_CTL      a command taking "start N", "stop N", "kill N"
//                                (N = index in the list, from 0) to control a server
//   DISTDB_REQUIRE_MARIADB=1     fail, rather than skip, when the servers are absent
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "distdb/config.hpp"

namespace distdb::test {

struct MariadbServer {
  std::string host;
  std::uint16_t port = 0;
};

// The configured servers (empty when none).
std::vector<MariadbServer> mariadb_servers();

// Connection settings for server `index` and database `database`.
DbConfig mariadb_db_config(std::size_t index, const std::string& database);

// Runs the control command ("start", "stop" or "kill") for server `index`;
// returns its exit status. "start" returns once the server accepts connections.
int mariadb_ctl(const std::string& action, std::size_t index);

}  // namespace distdb::test
