// distdb-cli, at a terminal, connected to the coordinator of three
// distdb-node processes when that coordinator is killed: the shell stays,
// says which member it moved to, and the next statement runs on the new
// coordinator, replicated to the surviving nodes.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "cluster_fixture.hpp"
#include "node_fixture.hpp"
#include "process.hpp"
#include "pty_cli.hpp"

using namespace distdb;
using namespace distdb::test;
using namespace std::chrono_literals;

namespace {

std::string address_of(ClusterProcesses& c, int id) { return "127.0.0.1:" + std::to_string(c.port(id)); }

}  // namespace

TEST_CASE("distdb-cli on the coordinator when it is killed: moves to a live member, the next write succeeds") {
  ClusterProcesses c(3, ClusterProcesses::Backend::sqlite, "distdb_cluster");
  REQUIRE_MESSAGE(c.wait_for_coordinator(3, 20s), c.log(1) << c.log(2) << c.log(3));
  const std::string dir = make_temp_dir("distdb-cli-failover");
  const std::string prompt3 = "distdb [" + address_of(c, 3) + "]> ";

  // The cluster requires a login; the shell logs in again on the member it moves to.
  PtyCli cli({"-P", std::to_string(c.port(3)), "-u", kTestUser}, dir + "/history",
             {{"DISTDB_PASSWORD", kTestPassword}});
  REQUIRE_MESSAGE(cli.expect_prompt(prompt3), cli.seen());
  cli.type("CREATE TABLE teste (id INT PRIMARY KEY);\r");
  REQUIRE_MESSAGE(cli.expect("Query OK, 0 rows affected"), cli.seen());
  REQUIRE_MESSAGE(cli.expect("Node executor: 3"), cli.seen());
  REQUIRE_MESSAGE(cli.expect_prompt(prompt3), cli.seen());
  cli.type("INSERT INTO teste VALUES (1);\r");
  REQUIRE_MESSAGE(cli.expect("Query OK, 1 row affected"), cli.seen());
  REQUIRE_MESSAGE(cli.expect_prompt(prompt3), cli.seen());
  // Every member has the row, so the coordinator's departure loses nothing.
  for (int id : {1, 2}) REQUIRE(wait_until([&] { return c.teste_ids(id) == std::vector<std::int64_t>{1}; }, 10s));

  c.kill(3);
  cli.type("INSERT INTO teste VALUES (2);\r");
  // The shell learned the members when it connected: it names the one it
  // moved to, then the write runs on the new coordinator (node 2, the
  // highest id left), reached by a redirect.
  CHECK_MESSAGE(cli.expect("[!] " + address_of(c, 3) + " is unreachable; moved to node ", 20s), cli.seen());
  CHECK_MESSAGE(cli.expect("Query OK, 1 row affected", 20s), cli.seen());
  CHECK_MESSAGE(cli.expect("Node executor: 2"), cli.seen());
  CHECK(cli.seen().find("ERROR") == std::string::npos);
  CHECK(cli.seen().find("may or may not") == std::string::npos);

  // The shell is alive, on a live member, and reads what both writes left.
  cli.type("SELECT id FROM teste ORDER BY id;\r");
  CHECK_MESSAGE(cli.expect("|  1 |\r\n|  2 |\r\n+----+\r\n2 rows in set"), cli.seen());
  for (int id : {1, 2}) {
    CHECK(wait_until([&] { return c.teste_ids(id) == std::vector<std::int64_t>{1, 2}; }, 10s));
  }
  cli.type(":exit\r");
  CHECK(cli.wait_exit() == 0);
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}
