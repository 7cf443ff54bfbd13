// distdb-cli on a real pseudo-terminal, as a user at a keyboard sees it:
// banner and prompt, a statement, recalling it with the up arrow, the history
// kept in a file for the next session, Ctrl-C, the seed's questions, :node,
// :info, :status, :exit.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "node_fixture.hpp"
#include "pty_cli.hpp"

using namespace distdb::test;
using namespace std::chrono_literals;

namespace {

std::string prompt_for(int port) { return "distdb [127.0.0.1:" + std::to_string(port) + "]> "; }

#ifdef DISTDB_CLI_HAVE_LIBEDIT
std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}
#endif

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE("a terminal: prompt, a statement, up-arrow recall, history kept for the next session, :exit") {
    NodeProcess node;
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
    const std::string dir = make_temp_dir("distdb-cli-pty");
    const std::string histfile = dir + "/history";
    const std::string prompt = "distdb [127.0.0.1:" + std::to_string(node.port()) + "]> ";
    {
      PtyCli cli({"-P", std::to_string(node.port())}, histfile);
      REQUIRE_MESSAGE(cli.expect("SQL statements end with ';'"), cli.seen());
      REQUIRE_MESSAGE(cli.expect_prompt(prompt), cli.seen());
      cli.type("SELECT 41+1 AS v;\r");
      CHECK_MESSAGE(cli.expect("| 42 |\r\n+----+\r\n1 row in set ("), cli.seen());
      CHECK_MESSAGE(cli.expect("Node executor: 1\r\n\r\n" + prompt), cli.seen());
#ifdef DISTDB_CLI_HAVE_LIBEDIT
      cli.type(kUpArrow);  // the statement comes back on the line...
      CHECK_MESSAGE(cli.expect("SELECT 41+1 AS v;"), cli.seen());
      cli.type("\r");  // ...and runs again
      CHECK_MESSAGE(cli.expect("| 42 |"), cli.seen());
      CHECK_MESSAGE(cli.expect_prompt(prompt), cli.seen());
#endif
      cli.type(":exit\r");
      CHECK_MESSAGE(cli.expect("Bye\r\n"), cli.seen());
      CHECK(cli.wait_exit() == 0);
    }
#ifdef DISTDB_CLI_HAVE_LIBEDIT
    // The history outlives the session (repeated lines kept once).
    const std::string saved = read_file(histfile);
    CHECK(saved.find("SELECT") != std::string::npos);
    CHECK(saved.find(":exit") != std::string::npos);
    {
      PtyCli cli({"-P", std::to_string(node.port())}, histfile);
      REQUIRE_MESSAGE(cli.expect_prompt(prompt), cli.seen());
      cli.type(kUpArrow);
      CHECK_MESSAGE(cli.expect(":exit"), cli.seen());
      cli.type(kUpArrow);
      CHECK_MESSAGE(cli.expect("SELECT 41+1 AS v;"), cli.seen());
      cli.type("\r");
      CHECK_MESSAGE(cli.expect("| 42 |"), cli.seen());
      // Keys are typed at the prompt: typed ahead, the terminal (not yet in
      // the editor's raw mode) would take Ctrl-D for itself.
      CHECK_MESSAGE(cli.expect_prompt(prompt), cli.seen());
      cli.type(kCtrlD);  // Ctrl-D on an empty line leaves too
      CHECK_MESSAGE(cli.expect("Bye"), cli.seen());
      CHECK(cli.wait_exit() == 0);
    }
#endif
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }

  TEST_CASE("Ctrl-C at the prompt drops the line and a statement begun on earlier lines; the shell stays") {
    NodeProcess node;
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
    const std::string dir = make_temp_dir("distdb-cli-pty");
    const std::string prompt = prompt_for(node.port());
    PtyCli cli({"-P", std::to_string(node.port())}, dir + "/history");
    REQUIRE_MESSAGE(cli.expect_prompt(prompt), cli.seen());
    cli.type("SELECT 1 AS\r");  // unfinished: continues on the next line
    REQUIRE_MESSAGE(cli.expect("    -> "), cli.seen());
    cli.type(kCtrlC);
    REQUIRE_MESSAGE(cli.expect_prompt(prompt), cli.seen());
    cli.type("SELECT 9");  // typed, never entered
    REQUIRE_MESSAGE(cli.expect("SELECT 9"), cli.seen());
    cli.type(kCtrlC);
    REQUIRE_MESSAGE(cli.expect_prompt(prompt), cli.seen());
    // Had either fragment survived, this would be a syntax error.
    cli.type("SELECT 2 AS v;\r");
    CHECK_MESSAGE(cli.expect("| 2 |\r\n+---+\r\n1 row in set ("), cli.seen());
    CHECK(cli.seen().find("ERROR") == std::string::npos);
    CHECK_MESSAGE(cli.expect_prompt(prompt), cli.seen());
    cli.type(":exit\r");
    CHECK_MESSAGE(cli.expect("Bye\r\n"), cli.seen());
    CHECK(cli.wait_exit() == 0);
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }

  TEST_CASE("Ctrl-C while a statement runs: it is not recalled; a second Ctrl-C leaves at once, exit 130") {
    NodeProcess node;
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
    const std::string dir = make_temp_dir("distdb-cli-pty");
    const std::string prompt = prompt_for(node.port());
    // A read that keeps the node busy for a few seconds.
    const std::string slow =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000000) "
        "SELECT count(*) AS n FROM c;\r";
    const std::string first_notice = "The statement was sent and cannot be recalled; waiting for its outcome";
    // Types the statement, then presses Ctrl-C until the shell says it is
    // running. Keys typed while the terminal is still switching to the
    // editor's mode can reach it after Ctrl-C, which then drops the line (as
    // it should): a fresh prompt says so, and the statement is typed again.
    const auto run_and_interrupt = [&](PtyCli& cli) {
      return wait_until(
          [&] {
            cli.type(slow);
            // Ctrl-C reaches the shell at once, ahead of keys it has not read
            // yet: wait for the editor to have taken the line (its echo, then
            // the new line it starts on Enter).
            if (!cli.expect("AS n FROM c;\r\n")) return false;
            for (;;) {
              cli.type(kCtrlC);
              if (cli.expect(first_notice, 300ms)) return true;
              if (cli.fresh().find(prompt) != std::string::npos) {
                (void)cli.expect_prompt(prompt);  // dropped: type it again
                return false;
              }
            }
          },
          30s);
    };
    {
      PtyCli cli({"-P", std::to_string(node.port())}, dir + "/history");
      REQUIRE_MESSAGE(cli.expect_prompt(prompt), cli.seen());
      REQUIRE_MESSAGE(run_and_interrupt(cli), cli.seen());
      // One press: the outcome still arrives, and the shell goes on.
      CHECK_MESSAGE(cli.expect("| 10000000 |", 60s), cli.seen());
      CHECK_MESSAGE(cli.expect_prompt(prompt), cli.seen());
      cli.type("SELECT 5 AS v;\r");
      CHECK_MESSAGE(cli.expect("| 5 |"), cli.seen());
      CHECK_MESSAGE(cli.expect_prompt(prompt), cli.seen());
      cli.type(":exit\r");
      CHECK(cli.wait_exit() == 0);
    }
    {
      PtyCli cli({"-P", std::to_string(node.port())}, dir + "/history");
      REQUIRE_MESSAGE(cli.expect_prompt(prompt), cli.seen());
      REQUIRE_MESSAGE(run_and_interrupt(cli), cli.seen());
      cli.type(kCtrlC);
      CHECK_MESSAGE(cli.expect("Left without waiting: the statement may or may not have taken effect"), cli.seen());
      CHECK(cli.wait_exit() == 130);
      CHECK(cli.seen().find("| 10000000 |") == std::string::npos);
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }

  TEST_CASE("the seed's flow in Portuguese: asks IP and port, :info, :status, :node to another node, :exit") {
    NodeProcess first;
    NodeProcess second("", 7);
    REQUIRE_MESSAGE(first.wait_ready(), first.process().output());
    REQUIRE_MESSAGE(second.wait_ready(), second.process().output());
    const std::string dir = make_temp_dir("distdb-cli-pty");
    PtyCli cli({}, dir + "/history", {{"LANG", "pt_BR.UTF-8"}});
    REQUIRE_MESSAGE(cli.expect("IP do nó middleware: "), cli.seen());
    cli.type("127.0.0.1\r");
    REQUIRE_MESSAGE(cli.expect("Porta do nó: "), cli.seen());
    cli.type(std::to_string(first.port()) + "\r");
    REQUIRE_MESSAGE(cli.expect("Comandos: :node [HOST PORTA], :info, :status"), cli.seen());
    REQUIRE_MESSAGE(cli.expect_prompt(prompt_for(first.port())), cli.seen());

    // A single node elects itself; :info names it as coordinator.
    REQUIRE(wait_until(
        [&] {
          cli.type(":info\r");
          const bool known = cli.expect("Coordenador: Nó 1 (127.0.0.1:" + std::to_string(first.port()) + ")", 1s);
          (void)cli.expect_prompt(prompt_for(first.port()));
          return known;
        },
        10s));
    cli.type(":info\r");
    CHECK_MESSAGE(cli.expect("Endereço: 127.0.0.1:" + std::to_string(first.port()) + "\r\nId do nó: 1\r\n"),
                  cli.seen());
    CHECK_MESSAGE(cli.expect_prompt(prompt_for(first.port())), cli.seen());

    cli.type(":status\r");
    CHECK_MESSAGE(cli.expect("| id | address"), cli.seen());
    CHECK_MESSAGE(cli.expect("|  1 | 127.0.0.1:" + std::to_string(first.port())), cli.seen());
    CHECK_MESSAGE(cli.expect("| coordinator |"), cli.seen());
    CHECK_MESSAGE(cli.expect("Época: "), cli.seen());
    CHECK_MESSAGE(cli.expect_prompt(prompt_for(first.port())), cli.seen());

    // :node without arguments asks again, with the seed's questions.
    cli.type(":node\r");
    REQUIRE_MESSAGE(cli.expect("IP do nó middleware: "), cli.seen());
    cli.type("127.0.0.1\r");
    REQUIRE_MESSAGE(cli.expect("Porta do nó: "), cli.seen());
    cli.type(std::to_string(second.port()) + "\r");
    REQUIRE_MESSAGE(cli.expect_prompt(prompt_for(second.port())), cli.seen());
    cli.type(":info\r");
    CHECK_MESSAGE(cli.expect("Id do nó: 7\r\n"), cli.seen());
    CHECK_MESSAGE(cli.expect_prompt(prompt_for(second.port())), cli.seen());
    // ...and with HOST PORT it goes straight there.
    cli.type(":node 127.0.0.1 " + std::to_string(first.port()) + "\r");
    REQUIRE_MESSAGE(cli.expect_prompt(prompt_for(first.port())), cli.seen());
    cli.type(":bogus\r");
    CHECK_MESSAGE(cli.expect("comando desconhecido ':bogus'"), cli.seen());
    cli.type(":exit\r");
    CHECK_MESSAGE(cli.expect("Até logo\r\n"), cli.seen());
    CHECK(cli.wait_exit() == 0);
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }

  TEST_CASE(
      "a node that requires a login: the seed's questions, then User and Password (hidden); :node keeps the "
      "login") {
    NodeProcess first("", 1, NodeAuth::users);
    NodeProcess second("", 7, NodeAuth::users);
    REQUIRE_MESSAGE(first.wait_ready(), first.process().output());
    REQUIRE_MESSAGE(second.wait_ready(), second.process().output());
    const std::string dir = make_temp_dir("distdb-cli-pty");
    PtyCli cli({}, dir + "/history", {{"LANG", "pt_BR.UTF-8"}, {"USER", "maria"}});
    REQUIRE_MESSAGE(cli.expect("IP do nó middleware: "), cli.seen());
    cli.type("127.0.0.1\r");
    REQUIRE_MESSAGE(cli.expect("Porta do nó: "), cli.seen());
    cli.type(std::to_string(first.port()) + "\r");
    // The node answers that it requires a login: the shell asks for one,
    // the OS user's name offered by default.
    REQUIRE_MESSAGE(cli.expect("requires SCRAM-SHA-256 authentication"), cli.seen());
    REQUIRE_MESSAGE(cli.expect_prompt("Usuário [maria]: "), cli.seen());
    cli.type(std::string(kTestUser) + "\r");
    REQUIRE_MESSAGE(cli.expect("Senha: "), cli.seen());
    cli.type(std::string(kTestPassword) + "\r");
    REQUIRE_MESSAGE(cli.expect("Comandos: :node [HOST PORTA]"), cli.seen());
    REQUIRE_MESSAGE(cli.expect_prompt(prompt_for(first.port())), cli.seen());
    cli.type("SELECT 6*7 AS v;\r");
    CHECK_MESSAGE(cli.expect("| 42 |"), cli.seen());
    CHECK_MESSAGE(cli.expect_prompt(prompt_for(first.port())), cli.seen());
    // Another node with the same users: no question this time.
    cli.type(":node 127.0.0.1 " + std::to_string(second.port()) + "\r");
    REQUIRE_MESSAGE(cli.expect_prompt(prompt_for(second.port())), cli.seen());
    cli.type(":info\r");
    CHECK_MESSAGE(cli.expect("Id do nó: 7\r\n"), cli.seen());
    CHECK_MESSAGE(cli.expect_prompt(prompt_for(second.port())), cli.seen());
    cli.type(":exit\r");
    CHECK_MESSAGE(cli.expect("Até logo\r\n"), cli.seen());
    CHECK(cli.wait_exit() == 0);
    // The password never showed on the terminal, nor in the history.
    CHECK(cli.seen().find(kTestPassword) == std::string::npos);
    CHECK(cli.seen().find("Usuário [") == cli.seen().rfind("Usuário ["));  // asked once
#ifdef DISTDB_CLI_HAVE_LIBEDIT
    CHECK(read_file(dir + "/history").find(kTestPassword) == std::string::npos);
#endif
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }

  TEST_CASE(
      "a login refused, then declined: the next statement is refused, the login asked for, the statement "
      "run") {
    NodeProcess node("", 1, NodeAuth::users);
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
    const std::string dir = make_temp_dir("distdb-cli-pty");
    const std::string prompt = prompt_for(node.port());
    // A wrong password from the environment: refused at connect.
    PtyCli cli({"-P", std::to_string(node.port()), "-u", kTestUser}, dir + "/history",
               {{"DISTDB_PASSWORD", "not it"}});
    REQUIRE_MESSAGE(cli.expect("authentication failed for user 'tester'"), cli.seen());
    REQUIRE_MESSAGE(cli.expect_prompt("User [tester]: "), cli.seen());
    cli.type(kCtrlD);  // no login now
    REQUIRE_MESSAGE(cli.expect_prompt(prompt), cli.seen());
    cli.type("SELECT 5 AS v;\r");
    CHECK_MESSAGE(cli.expect("(unauthenticated)"), cli.seen());
    REQUIRE_MESSAGE(cli.expect_prompt("User [tester]: "), cli.seen());
    cli.type("\r");  // the default
    REQUIRE_MESSAGE(cli.expect("Password: "), cli.seen());
    cli.type(std::string(kTestPassword) + "\r");
    CHECK_MESSAGE(cli.expect("| 5 |"), cli.seen());
    CHECK_MESSAGE(cli.expect_prompt(prompt), cli.seen());
    cli.type(":exit\r");
    CHECK(cli.wait_exit() == 0);
    CHECK(cli.seen().find(kTestPassword) == std::string::npos);
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
}
