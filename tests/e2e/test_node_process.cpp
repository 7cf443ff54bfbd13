// distdb-node as a process, spoken to over TCP: the seed's one-shot style,
// pipelined connections, hostile input, and its lifecycle. The seed's style
// needs "client_auth": "off", the fixture's default; distdb::Client logs in
// (tests/e2e/test_auth.cpp covers the logins themselves).
#include <doctest/doctest.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "distdb/client.hpp"
#include "node_fixture.hpp"
#include "raw_requests.hpp"
#include "wire/codec.hpp"

using namespace distdb;
using namespace distdb::test;
using namespace std::chrono_literals;

namespace {

// The exact bytes the seed's client.py sends: one JSON object, no delimiter.
std::string seed_request(const std::string& sql) {
  return R"({"type": "CLIENT_QUERY", "payload": {"query": ")" + sql + R"("}})";
}

// One request in the seed's style: connect, send, read one object, closed.
std::string one_shot(int port, const std::string& sql) {
  RawConnection conn(port);
  REQUIRE(conn.connected());
  REQUIRE(conn.write(seed_request(sql)));
  return conn.read_until_close();
}

}  // namespace

TEST_CASE("seed client style: one object without delimiter, one reply, connection closed") {
  NodeProcess node;
  REQUIRE_MESSAGE(node.wait_ready(), node.process().output());

  Reply created = decode(one_shot(node.port(), "CREATE TABLE teste (id INT PRIMARY KEY)"));
  CHECK(created.status == ReplyStatus::ok);
  CHECK(created.node == 1);

  Reply inserted = decode(one_shot(node.port(), "INSERT INTO teste VALUES (1)"));
  CHECK(inserted.status == ReplyStatus::ok);
  CHECK(inserted.result.rows_affected == 1);

  const std::string raw = one_shot(node.port(), "SELECT * FROM teste");
  // The seed's fields, as its client reads them: status, node, result as row objects.
  CHECK(raw.find(R"("status":"OK")") != std::string::npos);
  CHECK(raw.find(R"("node":1)") != std::string::npos);
  CHECK(raw.find(R"("result":[{"id":1}])") != std::string::npos);
  Reply selected = decode(raw);
  REQUIRE(selected.result.rows.size() == 1);
  CHECK(selected.result.columns == std::vector<std::string>{"id"});
  CHECK(std::get<std::int64_t>(selected.result.rows[0][0]) == 1);
}

TEST_CASE("SQL errors come back with the backend's code and message; the node keeps serving") {
  NodeProcess node;
  REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
  Reply bad = decode(one_shot(node.port(), "SELEC 1"));
  CHECK(bad.status == ReplyStatus::error);
  REQUIRE(bad.error.has_value());
  CHECK(bad.error->kind == ErrorKind::sql);
  CHECK(bad.error->code != 0);
  CHECK(bad.error->message.find("syntax") != std::string::npos);
  Reply good = decode(one_shot(node.port(), "SELECT 1 AS one"));
  CHECK(good.status == ReplyStatus::ok);
}

TEST_CASE("pipelined requests on one connection: replies in order, ids echoed") {
  NodeProcess node;
  REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
  RawConnection conn(node.port());
  REQUIRE(conn.connected());

  constexpr int kCount = 200;
  std::string batch = R"J({"type":"CLIENT_QUERY","id":1,"payload":{"query":"CREATE TABLE p (id INT PRIMARY KEY)"}})J"
                      "\n";
  for (int i = 0; i < kCount; ++i) {
    batch += R"({"type":"CLIENT_QUERY","id":)" + std::to_string(i + 2) +
             R"(,"payload":{"query":"INSERT INTO p VALUES ()" + std::to_string(i) + ")\"}}\n";
  }
  batch += R"({"type":"CLIENT_QUERY","id":)" + std::to_string(kCount + 2) +
           R"(,"payload":{"query":"SELECT COUNT(*) AS n FROM p"}})" "\n";
  REQUIRE(conn.write(batch));  // all at once: the node must not wait for us to read

  const auto lines = conn.read_lines(kCount + 2);
  REQUIRE(lines.size() == kCount + 2);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    Reply r = decode(lines[i]);
    REQUIRE(r.id.has_value());
    CHECK(*r.id == i + 1);
    CHECK_MESSAGE(r.status == ReplyStatus::ok, lines[i]);
  }
  Reply count = decode(lines.back());
  CHECK(std::get<std::int64_t>(count.result.rows.at(0).at(0)) == kCount);
  // A persistent connection stays open after its replies.
  CHECK_FALSE(conn.closed_by_peer(200ms));
}

TEST_CASE("malformed and unknown messages get a clear error; the connection goes on") {
  NodeProcess node;
  REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
  RawConnection conn(node.port());
  REQUIRE(conn.write(R"({"type": "CLIENT_QUERY", "id": 1, "payload": {"query": }})" "\n"
                     R"({"type": "HELLO", "id": 2})" "\n"
                     R"({"type": "CLIENT_QUERY", "id": 3})" "\n"
                     R"({"type": "CLIENT_QUERY", "id": 4, "payload": {"query": "SELECT 42 AS x"}})" "\n"));
  const auto lines = conn.read_lines(4);
  REQUIRE(lines.size() == 4);
  Reply malformed = decode(lines[0]);
  CHECK(malformed.status == ReplyStatus::error);
  CHECK(malformed.error->kind == ErrorKind::invalid_request);
  // Its id cannot be read from invalid JSON: it is matched by position.
  CHECK_FALSE(malformed.id.has_value());
  CHECK(malformed.error->message.find("invalid JSON") != std::string::npos);
  Reply unknown = decode(lines[1]);
  CHECK(unknown.error->kind == ErrorKind::invalid_request);
  CHECK(unknown.error->message.find("HELLO") != std::string::npos);
  Reply missing = decode(lines[2]);
  CHECK(missing.error->message.find("payload") != std::string::npos);
  Reply fine = decode(lines[3]);
  CHECK(fine.status == ReplyStatus::ok);
  CHECK(std::get<std::int64_t>(fine.result.rows.at(0).at(0)) == 42);
}

TEST_CASE("an oversized message gets an error and a closed connection; others are served") {
  NodeProcess node(R"("limits": {"max_message_bytes": 2048})");
  REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
  RawConnection big(node.port());
  REQUIRE(big.write(R"({"type":"CLIENT_QUERY","id":1,"payload":{"query":"SELECT ')" + std::string(4096, 'x') +
                    "'\"}}\n"));
  const std::string answer = big.read_until_close();
  Reply r = decode(answer.substr(0, answer.find('\n')));
  CHECK(r.status == ReplyStatus::error);
  CHECK(r.error->kind == ErrorKind::message_too_large);
  CHECK(decode(one_shot(node.port(), "SELECT 1")).status == ReplyStatus::ok);
}

TEST_CASE("garbage between messages ends that connection only") {
  NodeProcess node;
  REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
  RawConnection conn(node.port());
  REQUIRE(conn.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::string answer = conn.read_until_close();
  Reply r = decode(answer.substr(0, answer.find('\n')));
  CHECK(r.error->kind == ErrorKind::invalid_request);
  CHECK(decode(one_shot(node.port(), "SELECT 1")).status == ReplyStatus::ok);
}

TEST_CASE("a slow or half-open client is cut off after the read timeout; others are served meanwhile") {
  NodeProcess node(R"("timeouts": {"read_timeout_ms": 500})");
  REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
  RawConnection slow(node.port());
  REQUIRE(slow.write(R"({"type":"CLIENT_QUERY","payload":{"query":"SEL)"));  // and never finishes
  CHECK(decode(one_shot(node.port(), "SELECT 1")).status == ReplyStatus::ok);
  const std::string answer = slow.read_until_close(10s);
  REQUIRE_FALSE(answer.empty());
  Reply r = decode(answer.substr(0, answer.find('\n')));
  CHECK(r.error->kind == ErrorKind::timeout);
}

TEST_CASE("connections past the limit are refused with an error; existing ones keep working") {
  NodeProcess node(R"("limits": {"max_connections": 2})");
  REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
  RawConnection a(node.port());
  RawConnection b(node.port());
  REQUIRE(a.write(R"({"type":"PING","id":1})" "\n"));
  REQUIRE(b.write(R"({"type":"PING","id":1})" "\n"));
  REQUIRE(a.read_lines(1).size() == 1);
  REQUIRE(b.read_lines(1).size() == 1);
  RawConnection c(node.port());
  const std::string refused = c.read_until_close();
  CHECK(decode(refused.substr(0, refused.find('\n'))).error->message.find("too many connections") !=
        std::string::npos);
  REQUIRE(a.write(R"({"type":"CLIENT_QUERY","id":2,"payload":{"query":"SELECT 7 AS x"}})" "\n"));
  const auto lines = a.read_lines(1);
  REQUIRE(lines.size() == 1);
  CHECK(decode(lines[0]).status == ReplyStatus::ok);
}

TEST_CASE("distdb::Client: queries, pipelining, status, typed values") {
  NodeProcess node("", 1, NodeAuth::users);
  REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
  auto client = Client::connect("127.0.0.1", static_cast<std::uint16_t>(node.port()), test_client_options());
  REQUIRE(client.ok());
  REQUIRE(client->query("CREATE TABLE v (i INTEGER, r REAL, t TEXT, b BLOB, n TEXT)")->status == ReplyStatus::ok);
  REQUIRE(client->query("INSERT INTO v VALUES (-5, 2.5, '', x'00ff', NULL)")->status == ReplyStatus::ok);
  auto rows = client->query("SELECT * FROM v");
  REQUIRE(rows.ok());
  REQUIRE(rows->result.rows.size() == 1);
  const Row& row = rows->result.rows[0];
  CHECK(std::get<std::int64_t>(row[0]) == -5);
  CHECK(std::get<double>(row[1]) == doctest::Approx(2.5));
  CHECK(std::get<std::string>(row[2]).empty());
  CHECK(std::get<Blob>(row[3]).bytes == std::vector<std::uint8_t>{0x00, 0xff});
  CHECK(is_null(row[4]));

  for (int i = 0; i < 50; ++i) REQUIRE(client->send("SELECT " + std::to_string(i)).ok());
  for (int i = 0; i < 50; ++i) {
    auto r = client->receive();
    REQUIRE(r.ok());
    CHECK(std::get<std::int64_t>(r->result.rows.at(0).at(0)) == i);
  }

  auto status = client->status();
  REQUIRE(status.ok());
  CHECK(status->node == 1);
  CHECK(status->result.columns.at(0) == "id");
  CHECK(status->result.rows.size() == 1);
}

TEST_CASE("CHECK: a checksum, shared by requests that come close together; the reserved text is refused") {
  NodeProcess node("", 1, NodeAuth::users);
  REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
  auto client = Client::connect("127.0.0.1", static_cast<std::uint16_t>(node.port()), test_client_options());
  REQUIRE(client.ok());
  REQUIRE(client->query("CREATE TABLE c (a INTEGER PRIMARY KEY, b TEXT)")->status == ReplyStatus::ok);
  REQUIRE(client->query("INSERT INTO c VALUES (1, 'x')")->status == ReplyStatus::ok);
  auto first = client->check();
  REQUIRE(first.ok());
  REQUIRE(first->status == ReplyStatus::ok);
  const std::string digest = std::get<std::string>(first->result.rows.at(0).at(0));
  CHECK(digest.size() == 32);
  // Ten clients at once: they share rounds rather than queue ten.
  std::vector<Client> others;
  for (int i = 0; i < 10; ++i) {
    auto c = Client::connect("127.0.0.1", static_cast<std::uint16_t>(node.port()), test_client_options());
    REQUIRE(c.ok());
    others.push_back(std::move(*c));
  }
  for (auto& c : others) REQUIRE(c.send_check().ok());
  for (auto& c : others) {
    auto r = c.receive();
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    CHECK(r->status == ReplyStatus::ok);
    CHECK(std::get<std::string>(r->result.rows.at(0).at(0)) == digest);
  }
  auto rounds = client->query("SELECT COUNT(*) FROM distdb_log WHERE statements LIKE '%distdb_checksum%'");
  REQUIRE(rounds.ok());
  CHECK(std::get<std::int64_t>(rounds->result.rows.at(0).at(0)) < 11);
  // The data changed: a new checksum.
  REQUIRE(client->query("UPDATE c SET b = 'y'")->status == ReplyStatus::ok);
  auto changed = client->check();
  REQUIRE(changed.ok());
  CHECK(std::get<std::string>(changed->result.rows.at(0).at(0)) != digest);
  // Only distdb writes the checksum statement.
  auto forged = client->query("/* distdb_checksum */");
  REQUIRE(forged.ok());
  CHECK(forged->status == ReplyStatus::error);
  CHECK(forged->message.find("reserved") != std::string::npos);
}

TEST_CASE("startup lines, and a clean stop on SIGTERM and SIGINT") {
  for (int sig : {SIGTERM, SIGINT}) {
    NodeProcess node;
    REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
    // A single node elects itself at once.
    CHECK(wait_until([&] { return node.process().output().find("[*] Current coordinator: Node 1 (epoch") !=
                                  std::string::npos; },
                     10s));
    node.process().signal(sig);
    auto code = node.process().wait_exit(10s);
    REQUIRE(code.has_value());
    CHECK(*code == 0);
    const std::string log = node.process().output();
    CHECK(log.find("[*] Node 1 started on 127.0.0.1:" + std::to_string(node.port())) != std::string::npos);
    CHECK(log.find("[*] Current coordinator: none yet") != std::string::npos);
    CHECK(log.find("stopped") != std::string::npos);
  }
}

// Sets environment variables for the processes a test case starts, and
// puts the old values back at its end.
class ScopedEnv {
 public:
  explicit ScopedEnv(const std::vector<std::pair<std::string, const char*>>& values) {
    for (const auto& [name, value] : values) {
      const char* old = std::getenv(name.c_str());
      saved_.emplace_back(name, old == nullptr ? std::nullopt : std::optional<std::string>(old));
      if (value == nullptr) {
        unsetenv(name.c_str());
      } else {
        setenv(name.c_str(), value, 1);
      }
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, old] : saved_) {
      if (old) {
        setenv(name.c_str(), old->c_str(), 1);
      } else {
        unsetenv(name.c_str());
      }
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST_CASE("startup lines in Portuguese under a pt locale, as the seed printed them") {
  const ScopedEnv pt({{"LC_ALL", nullptr}, {"LC_MESSAGES", nullptr}, {"LANGUAGE", nullptr}, {"LANG", "pt_BR.UTF-8"}});
  if (std::getenv("DISTDB_LOCALEDIR") == nullptr) {
    MESSAGE("built without translations: skipped");
    return;
  }
  NodeProcess node;
  REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
  CHECK(wait_until([&] { return node.process().output().find("[*] Coordenador atual: nenhum ainda (aguardando eleição)") !=
                                std::string::npos; },
                   10s));
  CHECK(node.process().output().find("[*] Nó 1 iniciado em 127.0.0.1:" + std::to_string(node.port())) !=
        std::string::npos);
}

TEST_CASE("data survives a restart of the node") {
  NodeProcess node;
  REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
  REQUIRE(decode(one_shot(node.port(), "CREATE TABLE keep (id INT PRIMARY KEY)")).status == ReplyStatus::ok);
  REQUIRE(decode(one_shot(node.port(), "INSERT INTO keep VALUES (7)")).status == ReplyStatus::ok);
  node.process().signal(SIGKILL);
  REQUIRE(node.process().wait_exit(10s).has_value());
  Process again({std::getenv("DISTDB_NODE_BIN"), node.config_path()}, node.dir() + "/node2.log");
  REQUIRE(wait_until([&] { return port_accepts(node.port()); }, 15s));
  Reply r = decode(one_shot(node.port(), "SELECT id FROM keep"));
  REQUIRE(r.result.rows.size() == 1);
  CHECK(std::get<std::int64_t>(r.result.rows[0][0]) == 7);
}

TEST_CASE("bad configs: one clear line naming the file and field, exit code 2") {
  const std::string dir = make_temp_dir("distdb-badcfg");
  struct Case {
    const char* json;
    const char* expected;
  };
  const Case cases[] = {
      {R"({"local_node": {"id": 1, "ip": "127.0.0.1"}})", "local_node.port"},
      {R"({"local_node": {"id": 1, "ip": "127.0.0.1", "port": 70000}})", "local_node.port"},
      {R"({"local_node": {"id": 1, "ip": "127.0.0.1", "port": 5000}, "peers": [{"id": 1, "ip": "x", "port": 5001}]})",
       "peers[0].id"},
      {"{\n  \"local_node\": {\n    \"id\": 1,,\n", ":3:"},
      // SQLite and nobody to log in: the operator must choose.
      {R"({"local_node": {"id": 1, "ip": "127.0.0.1", "port": 5000}})",
       "security.client_auth: clients must authenticate"},
      {R"({"local_node": {"id": 1, "ip": "127.0.0.1", "port": 5000},
           "security": {"users": [{"name": "app", "password": "plain-text-password"}]}})",
       "security.users[0].password: not a SCRAM-SHA-256 verifier"},
  };
  for (const auto& c : cases) {
    const std::string path = dir + "/config.json";
    std::ofstream(path) << c.json;
    Process p({std::getenv("DISTDB_NODE_BIN"), path}, dir + "/out.log");
    auto code = p.wait_exit(10s);
    REQUIRE(code.has_value());
    CHECK(*code == 2);
    const std::string out = p.output();
    CHECK_MESSAGE(out.find(path) != std::string::npos, out);
    CHECK_MESSAGE(out.find(c.expected) != std::string::npos, out);
    CHECK(out.find("terminate") == std::string::npos);
    CHECK(out.find("plain-text-password") == std::string::npos);
    std::remove((dir + "/out.log").c_str());
  }
  Process missing({std::getenv("DISTDB_NODE_BIN"), dir + "/nope.json"}, dir + "/out.log");
  CHECK(missing.wait_exit(10s) == std::optional<int>(2));
}

TEST_CASE("a port already in use: a clear error and exit code 1") {
  NodeProcess first;
  REQUIRE_MESSAGE(first.wait_ready(), first.process().output());
  Process second({std::getenv("DISTDB_NODE_BIN"), first.config_path()}, first.dir() + "/second.log");
  auto code = second.wait_exit(10s);
  REQUIRE(code.has_value());
  CHECK(*code == 1);
  CHECK(second.output().find("cannot listen") != std::string::npos);
}

TEST_CASE("examples/client_query: an application using distdb::Client against a running node") {
  const char* bin = std::getenv("DISTDB_CLIENT_EXAMPLE_BIN");
  if (bin == nullptr) {
    MESSAGE("examples not built: skipped");
    return;
  }
  // The example logs in as $DISTDB_USER with $DISTDB_PASSWORD.
  NodeProcess node("", 1, NodeAuth::users);
  REQUIRE_MESSAGE(node.wait_ready(), node.process().output());
  const ScopedEnv login({{"DISTDB_USER", kTestUser}, {"DISTDB_PASSWORD", kTestPassword}});
  const std::string port = std::to_string(node.port());
  auto run = [&](const std::string& sql, const std::string& log) {
    Process p({bin, "127.0.0.1", port, sql}, node.dir() + "/" + log);
    auto code = p.wait_exit(20s);
    REQUIRE(code.has_value());
    return std::make_pair(*code, p.output());
  };
  CHECK(run("CREATE TABLE notes (id INT PRIMARY KEY, body TEXT)", "c1.log").first == 0);
  CHECK(run("INSERT INTO notes VALUES (1, 'from the example')", "c2.log").first == 0);
  auto [code, out] = run("SELECT id, body FROM notes", "c3.log");
  CHECK(code == 0);
  CHECK_MESSAGE(out.find("1\tfrom the example") != std::string::npos, out);
  auto [bad_code, bad_out] = run("SELECT * FROM missing", "c4.log");
  CHECK(bad_code == 1);
  CHECK(bad_out.find("missing") != std::string::npos);
}
