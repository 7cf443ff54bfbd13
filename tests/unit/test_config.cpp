#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "auth/scram.hpp"
#include "distdb/config.hpp"
#include "test_certs.hpp"

using namespace distdb;
namespace fs = std::filesystem;

namespace {

// The seed README's examples, verbatim.
const char* const kSeedMachine1 = R"({
  "local_node": {
    "id": 1,
    "ip": "192.168.0.10",
    "port": 5000,
    "db_config": {
      "user": "root",
      "password": "password",
      "host": "localhost",
      "database": "dist_db"
    }
  },
  "peers": [
    {"id": 2, "ip": "192.168.0.11", "port": 5000},
    {"id": 3, "ip": "192.168.0.12", "port": 5000}
  ]
})";

const char* const kSeedMachine2 = R"({
  "local_node": {
    "id": 2,
    "ip": "192.168.0.11",
    "port": 5000,
    "db_config": {
      "user": "root",
      "password": "password",
      "host": "localhost",
      "database": "dist_db"
    }
  },
  "peers": [
    {"id": 1, "ip": "192.168.0.10", "port": 5000},
    {"id": 3, "ip": "192.168.0.12", "port": 5000}
  ]
})";

const char* const kSeedMachine3 = R"({
  "local_node": {
    "id": 3,
    "ip": "192.168.0.12",
    "port": 5000,
    "db_config": {
      "user": "root",
      "password": "password",
      "host": "localhost",
      "database": "dist_db"
    }
  },
  "peers": [
    {"id": 1, "ip": "192.168.0.10", "port": 5000},
    {"id": 2, "ip": "192.168.0.11", "port": 5000}
  ]
})";

const char* const kSeedSingleMachine = R"({
  "local_node": {
    "id": 1,
    "ip": "192.168.0.127",
    "port": 5000,
    "db_config": {
      "user": "root",
      "password": "password",
      "host": "localhost",
      "database": "dist_db"
    }
  },
  "peers": [
    {"id": 2, "ip": "192.168.0.127", "port": 5001},
    {"id": 3, "ip": "192.168.0.127", "port": 5002}
  ]
})";

const char* const kDefaultPeers = R"([{"id": 2, "ip": "10.0.0.2", "port": 5000}])";

// Client authentication off: SQLite configs must choose it (or list users).
const char* const kAuthOff = R"(, "security": {"client_auth": "off"})";

// A small valid config with pieces spliced in: `local_extra` and `top_extra`
// start with a comma when not empty. Unless `top_extra` has a "security"
// section, client authentication is off.
std::string make(const std::string& local_extra = "", const std::string& top_extra = "",
                 const std::string& peers = kDefaultPeers) {
  const bool own_security = top_extra.find("\"security\"") != std::string::npos;
  return R"({"local_node": {"id": 1, "ip": "10.0.0.1", "port": 5000)" + local_extra + R"(}, "peers": )" +
         peers + top_extra + (own_security ? "" : kAuthOff) + "}";
}

// `json`, an object, with client authentication off.
std::string off(std::string json) {
  json.insert(json.rfind('}'), kAuthOff);
  return json;
}

Config parse_ok(const std::string& json) {
  auto r = parse_config(json, "config.json");
  if (!r) FAIL_CHECK(r.error().message);
  REQUIRE(r.ok());
  return std::move(r).value();
}

std::string parse_error(const std::string& json) {
  auto r = parse_config(json, "config.json");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind == ErrorKind::config);
  return r.error().message;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// A private directory under $TMPDIR, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string templ = (fs::path(base != nullptr && *base != '\0' ? base : "/tmp") / "distdb-config-XXXXXX").string();
    REQUIRE(mkdtemp(templ.data()) != nullptr);
    path = templ;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string write(const std::string& name, const std::string& text) const {
    const fs::path file = path / name;
    fs::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << text;
    return file.string();
  }
};

}  // namespace

// ------------------------------------------------------------ valid configs

TEST_CASE("config: the seed's three-machine examples load unchanged") {
  const Config c = parse_ok(kSeedMachine1);
  CHECK(c.id == 1);
  CHECK(c.ip == "192.168.0.10");
  CHECK(c.port == 5000);
  CHECK(c.listen_ip == "192.168.0.10");
  REQUIRE(c.peers.size() == 2);
  CHECK(c.peers[0].id == 2);
  CHECK(c.peers[0].ip == "192.168.0.11");
  CHECK(c.peers[0].port == 5000);
  CHECK(c.peers[1].id == 3);
  CHECK(c.peers[1].ip == "192.168.0.12");
  CHECK(c.storage.backend == StorageBackend::mariadb);
  CHECK(c.storage.db.user == "root");
  CHECK(c.storage.db.password == "password");
  CHECK(c.storage.db.host == "localhost");
  CHECK(c.storage.db.database == "dist_db");
  CHECK(c.storage.db.port == 3306);
  CHECK(c.storage.db.unix_socket.empty());
  CHECK(c.warnings.empty());
  CHECK(c.log_level == LogLevel::info);

  const Config c2 = parse_ok(kSeedMachine2);
  CHECK(c2.id == 2);
  CHECK(c2.peers[0].id == 1);
  CHECK(c2.storage.backend == StorageBackend::mariadb);
  const Config c3 = parse_ok(kSeedMachine3);
  CHECK(c3.id == 3);
  CHECK(c3.peers[1].ip == "192.168.0.11");
}

TEST_CASE("config: the seed's single-machine example loads unchanged") {
  const Config c = parse_ok(kSeedSingleMachine);
  CHECK(c.id == 1);
  CHECK(c.ip == "192.168.0.127");
  CHECK(c.port == 5000);
  REQUIRE(c.peers.size() == 2);
  CHECK(c.peers[0].port == 5001);
  CHECK(c.peers[1].port == 5002);
  CHECK(c.storage.backend == StorageBackend::mariadb);
  CHECK(c.storage.db.database == "dist_db");
  CHECK(c.warnings.empty());
}

TEST_CASE("config: a minimal sqlite config, with every default") {
  const Config c = parse_ok(off(R"({"local_node": {"id": 7, "ip": "127.0.0.1", "port": 6000}})"));
  CHECK(c.id == 7);
  CHECK(c.peers.empty());
  CHECK(c.listen_ip == "127.0.0.1");
  CHECK(c.storage.backend == StorageBackend::sqlite);
  CHECK(c.storage.sqlite_path == "distdb-node-7.db");
  CHECK(c.storage.pool_size == 4);
  CHECK(c.timeouts.heartbeat_interval_ms == 200);
  CHECK(c.timeouts.heartbeat_timeout_ms == 1000);
  CHECK(c.timeouts.request_timeout_ms == 30000);
  CHECK(c.timeouts.idle_timeout_ms == 300000);
  CHECK(c.timeouts.read_timeout_ms == 10000);
  CHECK(c.limits.max_message_bytes == 4u * 1024 * 1024);
  CHECK(c.limits.max_connections == 1024);
  CHECK(c.limits.max_pending_per_connection == 1024);
  CHECK(c.timeouts.login_timeout_ms == 10000);
  CHECK(c.limits.max_connections_per_source == 256);
  CHECK(c.limits.max_unauthenticated_connections == 256);
  CHECK(c.limits.max_unauthenticated_per_source == 32);
  CHECK(c.limits.max_unauthenticated_message_bytes == 64u * 1024);
  CHECK(c.limits.max_output_bytes_per_connection == 1024u * 1024);
  CHECK(c.log_level == LogLevel::info);
  CHECK(c.security.client_auth == ClientAuth::off);
  CHECK(c.security.users.empty());
  CHECK(c.security.cluster_secret.empty());
  CHECK(c.warnings.empty());
}

TEST_CASE("config: every extension") {
  const Config c = parse_ok(make(
      R"(, "listen_ip": "0.0.0.0",
           "db_config": {"host": "db.local", "port": 3307, "user": "u", "password": "", "database": "d",
                         "unix_socket": "/run/mysqld.sock", "connection_timeout": 3},
           "storage": {"backend": "sqlite", "path": "/var/lib/distdb/n1.db", "pool_size": 8})",
      R"(, "log_level": "DEBUG",
           "timeouts": {"heartbeat_interval_ms": 100, "heartbeat_timeout_ms": 500, "request_timeout_ms": 2000,
                        "idle_timeout_ms": 60000, "read_timeout_ms": 3000},
           "limits": {"max_message_bytes": 1024, "max_connections": 100000, "max_pending_per_connection": 1000000})"));
  CHECK(c.listen_ip == "0.0.0.0");
  CHECK(c.storage.backend == StorageBackend::sqlite);  // explicit backend wins over db_config
  CHECK(c.storage.sqlite_path == "/var/lib/distdb/n1.db");
  CHECK(c.storage.pool_size == 8);
  CHECK(c.storage.db.host == "db.local");
  CHECK(c.storage.db.port == 3307);
  CHECK(c.storage.db.user == "u");
  CHECK(c.storage.db.password.empty());
  CHECK(c.storage.db.database == "d");
  CHECK(c.storage.db.unix_socket == "/run/mysqld.sock");
  CHECK(c.storage.db.connect_timeout_ms == 3000);
  CHECK(c.log_level == LogLevel::debug);
  CHECK(c.timeouts.heartbeat_interval_ms == 100);
  CHECK(c.timeouts.heartbeat_timeout_ms == 500);
  CHECK(c.timeouts.request_timeout_ms == 2000);
  CHECK(c.timeouts.idle_timeout_ms == 60000);
  CHECK(c.timeouts.read_timeout_ms == 3000);
  CHECK(c.limits.max_message_bytes == 1024);
  CHECK(c.limits.max_connections == 100000);
  CHECK(c.limits.max_pending_per_connection == 1000000);

  CHECK(parse_ok(make(R"(, "storage": {"backend": "mariadb"})")).storage.backend == StorageBackend::mariadb);
}

TEST_CASE("config: connector-python keys we do not use are warnings, aliases are understood") {
  const Config c = parse_ok(make(
      R"(, "db_config": {"user": "root", "passwd": "pw", "db": "x", "charset": "utf8mb4", "auth_plugin": "mysql_native_password",
                        "autocommit": true, "connect_timeout": 2, "password_unused": null})",
      R"(, "comment": "made by hand", "version": 2)"));
  CHECK(c.storage.db.password == "pw");
  CHECK(c.storage.db.database == "x");
  CHECK(c.storage.db.connect_timeout_ms == 2000);
  REQUIRE(c.warnings.size() == 6);
  CHECK(c.warnings[0] == "config.json: local_node.db_config.charset: ignored (not a connection setting distdb uses)");
  CHECK(starts_with(c.warnings[1], "config.json: local_node.db_config.auth_plugin: ignored"));
  CHECK(starts_with(c.warnings[2], "config.json: local_node.db_config.autocommit: ignored"));
  CHECK(starts_with(c.warnings[3], "config.json: local_node.db_config.password_unused: ignored"));
  CHECK(c.warnings[4] == "config.json: comment: unknown key, ignored");
  CHECK(c.warnings[5] == "config.json: version: unknown key, ignored");

  CHECK(parse_error(make(R"(, "db_config": {"password": "a", "passwd": "b"})")) ==
        "config.json: local_node.db_config.passwd: same setting as local_node.db_config.password");
}

TEST_CASE("config: log levels") {
  for (const char* name : {"trace", "debug", "info", "warn", "error", "off"}) {
    const auto level = parse_log_level(name);
    REQUIRE(level.has_value());
    CHECK(std::string(to_string(*level)) == name);
  }
  CHECK(parse_log_level("WARNING") == LogLevel::warn);
  CHECK_FALSE(parse_log_level("verbose").has_value());
  CHECK(std::string(to_string(StorageBackend::sqlite)) == "sqlite");
  CHECK(std::string(to_string(StorageBackend::mariadb)) == "mariadb");
  CHECK(parse_error(make("", R"(, "log_level": "verbose")")) ==
        R"(config.json: log_level: must be one of trace, debug, info, warn, error, off (got "verbose"))");
  CHECK(parse_error(make("", R"(, "log_level": 3)")) == "config.json: log_level: expected a string, got an integer");
}

// ------------------------------------------------------------ errors

TEST_CASE("config: missing required fields") {
  CHECK(parse_error(R"({"peers": []})") == "config.json: local_node: missing required field");
  CHECK(parse_error(R"({"local_node": {"ip": "a", "port": 1}})") == "config.json: local_node.id: missing required field");
  CHECK(parse_error(R"({"local_node": {"id": 1, "port": 1}})") == "config.json: local_node.ip: missing required field");
  CHECK(parse_error(R"({"local_node": {"id": 1, "ip": "a"}})") == "config.json: local_node.port: missing required field");
  CHECK(parse_error(make("", "", R"([{"id": 2, "ip": "b", "port": 1}, {"id": 3, "port": 2}])")) ==
        "config.json: peers[1].ip: missing required field");
  CHECK(parse_error(make("", "", R"([{"ip": "b", "port": 1}])")) == "config.json: peers[0].id: missing required field");
}

TEST_CASE("config: wrong types") {
  CHECK(parse_error(R"({"local_node": {"id": "1", "ip": "a", "port": 1}})") ==
        "config.json: local_node.id: expected an integer, got a string");
  CHECK(parse_error(R"({"local_node": {"id": 1, "ip": 5, "port": 1}})") ==
        "config.json: local_node.ip: expected a string, got an integer");
  CHECK(parse_error(R"({"local_node": {"id": 1, "ip": "", "port": 1}})") ==
        "config.json: local_node.ip: must be a non-empty string");
  CHECK(parse_error(R"({"local_node": {"id": 1, "ip": "a", "port": null}})") ==
        "config.json: local_node.port: expected an integer, got null");
  CHECK(parse_error(R"({"local_node": {"id": true, "ip": "a", "port": 1}})") ==
        "config.json: local_node.id: expected an integer, got a boolean");
  CHECK(parse_error(R"({"local_node": [1]})") == "config.json: local_node: expected an object, got an array");
  CHECK(parse_error(make("", "", R"({"id": 2})")) == "config.json: peers: expected an array, got an object");
  CHECK(parse_error(make("", "", R"([[2]])")) == "config.json: peers[0]: expected an object, got an array");
  CHECK(parse_error(make("", R"(, "timeouts": 5)")) == "config.json: timeouts: expected an object, got an integer");
  CHECK(parse_error(make(R"(, "db_config": "mysql://x")")) ==
        "config.json: local_node.db_config: expected an object, got a string");
  CHECK(parse_error(make(R"(, "db_config": {"port": "3306"})")) ==
        "config.json: local_node.db_config.port: expected an integer, got a string");
  CHECK(parse_error(make(R"(, "db_config": {"user": 0})")) ==
        "config.json: local_node.db_config.user: expected a string, got an integer");
  CHECK(parse_error("[]") == "config.json: top level: expected an object, got an array");
  CHECK(parse_error("42") == "config.json: top level: expected an object, got an integer");
}

TEST_CASE("config: numbers out of range or not integers") {
  CHECK(parse_error(make("", "", R"([{"id": 2, "ip": "b", "port": 1}, {"id": 3, "ip": "c", "port": 70000}])")) ==
        "config.json: peers[1].port: must be an integer from 1 to 65535 (got 70000)");
  CHECK(parse_error(R"({"local_node": {"id": 1, "ip": "a", "port": 0}})") ==
        "config.json: local_node.port: must be an integer from 1 to 65535 (got 0)");
  CHECK(parse_error(R"({"local_node": {"id": 1, "ip": "a", "port": -80}})") ==
        "config.json: local_node.port: must be an integer from 1 to 65535 (got -80)");
  CHECK(parse_error(R"({"local_node": {"id": 0, "ip": "a", "port": 1}})") ==
        "config.json: local_node.id: must be an integer from 1 to 4294967295 (got 0)");
  CHECK(parse_error(R"({"local_node": {"id": -3, "ip": "a", "port": 1}})") ==
        "config.json: local_node.id: must be an integer from 1 to 4294967295 (got -3)");
  CHECK(parse_error(R"({"local_node": {"id": 4294967296, "ip": "a", "port": 1}})") ==
        "config.json: local_node.id: must be an integer from 1 to 4294967295 (got 4294967296)");
  CHECK(parse_error(R"({"local_node": {"id": 18446744073709551615, "ip": "a", "port": 1}})") ==
        "config.json: local_node.id: must be an integer from 1 to 4294967295 (got 18446744073709551615)");
  CHECK(parse_error(R"({"local_node": {"id": 123456789012345678901234567890, "ip": "a", "port": 1}})") ==
        "config.json: local_node.id: must be an integer from 1 to 4294967295 (got 1.2345678901234568e+29)");
  CHECK(parse_error(R"({"local_node": {"id": 1.5, "ip": "a", "port": 1}})") ==
        "config.json: local_node.id: expected an integer, got a real number (1.5)");
  CHECK(parse_error(R"({"local_node": {"id": 1, "ip": "a", "port": 5000.0}})") ==
        "config.json: local_node.port: expected an integer, got a real number (5000.0)");
  CHECK(parse_error(R"({"local_node": {"id": 1e2, "ip": "a", "port": 1}})") ==
        "config.json: local_node.id: expected an integer, got a real number (100.0)");
  CHECK(starts_with(parse_error(R"({"local_node": {"id": 1e999, "ip": "a", "port": 1}})"),
                    "config.json:1:23: invalid JSON: Number too big"));

  CHECK(parse_error(make(R"(, "storage": {"pool_size": 0})")) ==
        "config.json: local_node.storage.pool_size: must be an integer from 1 to 256 (got 0)");
  CHECK(parse_error(make(R"(, "storage": {"pool_size": 257})")) ==
        "config.json: local_node.storage.pool_size: must be an integer from 1 to 256 (got 257)");
  CHECK(parse_error(make(R"(, "db_config": {"port": 65536})")) ==
        "config.json: local_node.db_config.port: must be an integer from 1 to 65535 (got 65536)");
  CHECK(parse_error(make(R"(, "db_config": {"connection_timeout": 0})")) ==
        "config.json: local_node.db_config.connection_timeout: must be an integer from 1 to 86400 (got 0)");
  CHECK(parse_error(make("", R"(, "timeouts": {"request_timeout_ms": 0})")) ==
        "config.json: timeouts.request_timeout_ms: must be an integer from 1 to 2147483647 (got 0)");
  CHECK(parse_error(make("", R"(, "timeouts": {"idle_timeout_ms": 2147483648})")) ==
        "config.json: timeouts.idle_timeout_ms: must be an integer from 1 to 2147483647 (got 2147483648)");
  CHECK(parse_error(make("", R"(, "limits": {"max_message_bytes": 1023})")) ==
        "config.json: limits.max_message_bytes: must be an integer from 1024 to 1073741824 (got 1023)");
  CHECK(parse_error(make("", R"(, "limits": {"max_message_bytes": 1073741825})")) ==
        "config.json: limits.max_message_bytes: must be an integer from 1024 to 1073741824 (got 1073741825)");
  CHECK(parse_error(make("", R"(, "limits": {"max_connections": 100001})")) ==
        "config.json: limits.max_connections: must be an integer from 1 to 100000 (got 100001)");
  CHECK(parse_error(make("", R"(, "limits": {"max_pending_per_connection": 0})")) ==
        "config.json: limits.max_pending_per_connection: must be an integer from 1 to 1000000 (got 0)");
}

TEST_CASE("config: the limits of connections not logged in, per source address, and of unread replies") {
  const Config c = parse_ok(make("", R"(, "timeouts": {"login_timeout_ms": 2500},
      "limits": {"max_connections_per_source": 0, "max_unauthenticated_connections": 100000,
                 "max_unauthenticated_per_source": 4, "max_unauthenticated_message_bytes": 1024,
                 "max_output_bytes_per_connection": 1073741824})"));
  CHECK(c.timeouts.login_timeout_ms == 2500);
  CHECK(c.limits.max_connections_per_source == 0);  // no limit per address
  CHECK(c.limits.max_unauthenticated_connections == 100000);
  CHECK(c.limits.max_unauthenticated_per_source == 4);
  CHECK(c.limits.max_unauthenticated_message_bytes == 1024);
  CHECK(c.limits.max_output_bytes_per_connection == 1073741824u);
  CHECK(parse_ok(make("", R"(, "limits": {"max_unauthenticated_per_source": 0})"))
            .limits.max_unauthenticated_per_source == 0);
  // Above max_connections: allowed, never reached.
  CHECK(parse_ok(make("", R"(, "limits": {"max_connections": 2, "max_connections_per_source": 50})"))
            .limits.max_connections_per_source == 50);

  const std::pair<const char*, const char*> refused[] = {
      {R"("timeouts": {"login_timeout_ms": 0})",
       "timeouts.login_timeout_ms: must be an integer from 1 to 2147483647 (got 0)"},
      {R"("timeouts": {"login_timeout_ms": "10s"})",
       "timeouts.login_timeout_ms: expected an integer, got a string"},
      {R"("limits": {"max_connections_per_source": -1})",
       "limits.max_connections_per_source: must be an integer from 0 to 100000 (got -1)"},
      {R"("limits": {"max_connections_per_source": 100001})",
       "limits.max_connections_per_source: must be an integer from 0 to 100000 (got 100001)"},
      {R"("limits": {"max_unauthenticated_connections": 0})",
       "limits.max_unauthenticated_connections: must be an integer from 1 to 100000 (got 0)"},
      {R"("limits": {"max_unauthenticated_per_source": 100001})",
       "limits.max_unauthenticated_per_source: must be an integer from 0 to 100000 (got 100001)"},
      {R"("limits": {"max_unauthenticated_per_source": 2.5})",
       "limits.max_unauthenticated_per_source: expected an integer, got a real number (2.5)"},
      {R"("limits": {"max_unauthenticated_message_bytes": 1023})",
       "limits.max_unauthenticated_message_bytes: must be an integer from 1024 to 1073741824 (got 1023)"},
      {R"("limits": {"max_output_bytes_per_connection": 0})",
       "limits.max_output_bytes_per_connection: must be an integer from 1024 to 1073741824 (got 0)"},
      {R"("limits": {"max_output_bytes_per_connection": 1073741825})",
       "limits.max_output_bytes_per_connection: must be an integer from 1024 to 1073741824 (got 1073741825)"},
  };
  for (const auto& [json, message] : refused) {
    CHECK(parse_error(make("", std::string(", ") + json)) == std::string("config.json: ") + message);
  }
  // A misspelt key is named, with the keys there are.
  const std::string misspelt = parse_error(make("", R"(, "limits": {"max_unauthenticated_per_address": 4})"));
  CHECK(misspelt.find("config.json: limits.max_unauthenticated_per_address: unknown key") == 0);
  CHECK(misspelt.find("max_unauthenticated_per_source") != std::string::npos);
  CHECK(parse_error(make("", R"(, "timeouts": {"login_timeout": 5})"))
            .find("config.json: timeouts.login_timeout: unknown key") == 0);
}

TEST_CASE("config: heartbeat timeout must exceed the interval") {
  CHECK(parse_error(make("", R"(, "timeouts": {"heartbeat_interval_ms": 500, "heartbeat_timeout_ms": 500})")) ==
        "config.json: timeouts.heartbeat_timeout_ms: must be greater than heartbeat_interval_ms (got 500, interval 500)");
  CHECK(parse_error(make("", R"(, "timeouts": {"heartbeat_interval_ms": 2000})")) ==
        "config.json: timeouts.heartbeat_interval_ms: must be less than heartbeat_timeout_ms "
        "(got 2000, default timeout 1000)");
  CHECK(parse_ok(make("", R"(, "timeouts": {"heartbeat_interval_ms": 999})")).timeouts.heartbeat_interval_ms == 999);
}

TEST_CASE("config: cluster membership is consistent") {
  CHECK(parse_error(make("", "", R"([{"id": 2, "ip": "b", "port": 1}, {"id": 2, "ip": "c", "port": 1}])")) ==
        "config.json: peers[1].id: duplicate id 2 (also peers[0])");
  CHECK(parse_error(make("", "", R"([{"id": 2, "ip": "b", "port": 1}, {"id": 1, "ip": "c", "port": 1}])")) ==
        "config.json: peers[1].id: 1 is this node's own id (local_node.id); list only the others");
  CHECK(parse_error(make("", "", R"([{"id": 2, "ip": "10.0.0.1", "port": 5000}])")) ==
        "config.json: peers[0]: address 10.0.0.1:5000 is also local_node's");
  CHECK(parse_error(make("", "", R"([{"id": 2, "ip": "h", "port": 7}, {"id": 3, "ip": "h", "port": 7}])")) ==
        "config.json: peers[1]: address h:7 is also peers[0]'s");
  // Same ip with different ports is the seed's single-machine setup.
  CHECK(parse_ok(make("", "", R"([{"id": 2, "ip": "10.0.0.1", "port": 5001}])")).peers.size() == 1);
}

TEST_CASE("config: storage.replication") {
  CHECK(parse_ok(make(R"(, "storage": {"backend": "sqlite"})")).storage.replication ==
        Replication::statements);
  CHECK(parse_ok(make("")).storage.replication == Replication::statements);
  CHECK(parse_ok(make(R"(, "storage": {"backend": "mariadb"})")).storage.replication ==
        Replication::statements);
  CHECK(parse_ok(make(R"(, "storage": {"backend": "sqlite", "replication": "statements"})"))
            .storage.replication == Replication::statements);
  CHECK(parse_ok(make(R"(, "storage": {"backend": "mariadb", "replication": "rows"})")).storage.replication ==
        Replication::rows);
  CHECK(parse_ok(make(R"(, "storage": {"backend": "mariadb", "replication": "statements"})"))
            .storage.replication == Replication::statements);
  CHECK(parse_error(make(R"(, "storage": {"backend": "mariadb", "replication": "row"})")) ==
        R"(config.json: local_node.storage.replication: must be "rows" or "statements" (got "row"))");
  // SQLite records the rows with its session extension (storage/sqlite_effects.*).
  CHECK(parse_ok(make(R"(, "storage": {"backend": "sqlite", "replication": "rows"})")).storage.replication ==
        Replication::rows);
  CHECK(std::string(to_string(Replication::rows)) == "rows");
}

TEST_CASE("config: unknown keys in our own sections are errors") {
  CHECK(parse_error(make(R"(, "storage": {"bakend": "sqlite"})")) ==
        "config.json: local_node.storage.bakend: unknown key (expected one of: backend, path, pool_size, "
        "replication, spool_dir)");
  CHECK(starts_with(parse_error(make("", R"(, "timeouts": {"heartbeat_timout_ms": 5})")),
                    "config.json: timeouts.heartbeat_timout_ms: unknown key (expected one of: heartbeat_interval_ms, "));
  CHECK(starts_with(parse_error(make("", R"(, "limits": {"max_msg": 5})")), "config.json: limits.max_msg: unknown key"));
  CHECK(parse_error(make("", "", R"([{"id": 2, "ip": "b", "port": 1, "name": "n2"}])")) ==
        "config.json: peers[0].name: unknown key (expected one of: id, ip, port)");
  CHECK(starts_with(parse_error(make(R"(, "role": "leader")")), "config.json: local_node.role: unknown key"));
  CHECK(parse_error(make(R"(, "storage": {"backend": "postgres"})")) ==
        R"(config.json: local_node.storage.backend: must be "sqlite" or "mariadb" (got "postgres"))");
  CHECK(parse_error(make(R"(, "storage": {"path": ""})")) ==
        "config.json: local_node.storage.path: must be a non-empty string");
}

TEST_CASE("config: duplicate keys") {
  CHECK(parse_error(R"({"local_node": {"id": 1, "ip": "a", "port": 1, "port": 2}})") ==
        "config.json: local_node.port: duplicate key");
  CHECK(parse_error(make("", "", R"([{"id": 2, "id": 3, "ip": "b", "port": 1}])")) ==
        "config.json: peers[0].id: duplicate key");
  CHECK(parse_error(make("", R"(, "peers": [])")) == "config.json: peers: duplicate key");
  CHECK(parse_error(make(R"(, "db_config": {"charset": "a", "charset": "b"})")) ==
        "config.json: local_node.db_config.charset: duplicate key");
}

TEST_CASE("config: invalid JSON reports line and column; empty input") {
  CHECK(parse_error("{\n  \"local_node\": {\n    \"id\": 1,\n  }\n}") ==
        "config.json:4:3: invalid JSON: Missing a name for object member.");
  CHECK(parse_error("{\"local_node\": {}} x") ==
        "config.json:1:20: invalid JSON: The document root must not be followed by other values.");
  CHECK(starts_with(parse_error("{\"a\": \"\xff\"}"), "config.json:1:8: invalid JSON: Invalid encoding"));
  CHECK(parse_error("") == "config.json: empty config (expected a JSON object)");
  CHECK(parse_error(" \n\t ") == "config.json: empty config (expected a JSON object)");
  // A byte order mark is tolerated.
  CHECK(parse_ok(std::string("\xEF\xBB\xBF") + kSeedMachine1).id == 1);
}

TEST_CASE("config: hostile input never crashes") {
  const std::string deep_arrays = std::string(100000, '[') + std::string(100000, ']');
  CHECK(starts_with(parse_error(make("", R"(, "x": )" + deep_arrays)), "config.json: x[0][0]"));
  CHECK(starts_with(parse_error(std::string(100000, '[')), "config.json:1:100001: invalid JSON"));
  CHECK(starts_with(parse_error(std::string(100000, '{')), "config.json:1:2: invalid JSON"));
  std::string deep_objects;
  for (int i = 0; i < 100000; ++i) deep_objects += "{\"a\":";
  deep_objects += "1" + std::string(100000, '}');
  CHECK(parse_error(deep_objects).find("nested deeper than 64 levels") != std::string::npos);
  CHECK(starts_with(parse_error(std::string("{\"local_node\": \0}", 17)), "config.json:1:16: invalid JSON"));
  CHECK(starts_with(parse_error(make("", R"(, "peers": [)" + std::string(5000, ' ') + "]")),
                    "config.json: peers: duplicate key"));
  CHECK(parse_error(R"({"local_node": {"id": 1, "ip": "a", "port": 1, "\u0001x": 1}})") ==
        "config.json: local_node.?x: unknown key (expected one of: id, ip, port, db_config, listen_ip, storage)");
}

// ------------------------------------------------------------ files

TEST_CASE("config: load_config reads files and resolves relative sqlite paths") {
  TempDir dir;

  SUBCASE("missing file") {
    const std::string path = (dir.path / "nope.json").string();
    auto r = load_config(path);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::config);
    CHECK(r.error().message == path + ": cannot read: No such file or directory");
  }
  SUBCASE("a directory") {
    auto r = load_config(dir.path.string());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == dir.path.string() + ": cannot read: Is a directory");
  }
  SUBCASE("invalid JSON names the file, line and column") {
    const std::string path = dir.write("bad.json", "{\n  \"local_node\": {\"id\": 1,\n    \"ip\": 'x'\n  }\n}\n");
    auto r = load_config(path);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == path + ":3:11: invalid JSON: Invalid value.");
  }
  SUBCASE("errors name the file") {
    const std::string path = dir.write("port.json", make("", "", R"([{"id": 2, "ip": "b", "port": 70000}])"));
    auto r = load_config(path);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == path + ": peers[0].port: must be an integer from 1 to 65535 (got 70000)");
  }
  SUBCASE("the seed's config loads from a file") {
    const std::string path = dir.write("config.json", kSeedMachine1);
    auto r = load_config(path);
    REQUIRE(r.ok());
    CHECK(r->storage.backend == StorageBackend::mariadb);
    CHECK(r->peers.size() == 2);
  }
  SUBCASE("relative sqlite paths, default or given, resolve against the config's directory") {
    const std::string given = dir.write(
        "etc/node.json",
        off(R"({"local_node": {"id": 1, "ip": "a", "port": 1, "storage": {"path": "data/n1.db"}}})"));
    auto r = load_config(given);
    REQUIRE(r.ok());
    CHECK(r->storage.sqlite_path == (dir.path / "etc" / "data" / "n1.db").string());

    const std::string by_default =
        dir.write("etc/n2.json", off(R"({"local_node": {"id": 2, "ip": "a", "port": 1}})"));
    auto d = load_config(by_default);
    REQUIRE(d.ok());
    CHECK(d->storage.sqlite_path == (dir.path / "etc" / "distdb-node-2.db").string());
    CHECK(d->storage.spool_dir.empty());  // a private one under $TMPDIR
  }
  SUBCASE("a relative spool_dir resolves against the config's directory; an empty one is refused") {
    const std::string given = dir.write(
        "etc/spool.json",
        off(R"({"local_node": {"id": 1, "ip": "a", "port": 1, "storage": {"spool_dir": "copies"}}})"));
    auto r = load_config(given);
    REQUIRE(r.ok());
    CHECK(r->storage.spool_dir == (dir.path / "etc" / "copies").string());
    const std::string empty =
        dir.write("etc/empty.json",
                  off(R"({"local_node": {"id": 1, "ip": "a", "port": 1, "storage": {"spool_dir": ""}}})"));
    CHECK_FALSE(load_config(empty).ok());
  }
  SUBCASE("absolute paths and SQLite's special names are kept") {
    const std::string abs = dir.write(
        "abs.json",
        off(R"({"local_node": {"id": 1, "ip": "a", "port": 1, "storage": {"path": "/srv/n1.db"}}})"));
    CHECK(load_config(abs)->storage.sqlite_path == "/srv/n1.db");
    const std::string mem =
        dir.write("mem.json",
                  off(R"({"local_node": {"id": 1, "ip": "a", "port": 1, "storage": {"path": ":memory:"}}})"));
    CHECK(load_config(mem)->storage.sqlite_path == ":memory:");
  }
  SUBCASE("parse_config leaves paths alone") {
    CHECK(parse_ok(off(R"({"local_node": {"id": 1, "ip": "a", "port": 1, "storage": {"path": "x.db"}}})"))
              .storage.sqlite_path == "x.db");
  }
}

TEST_CASE("config: errors never repeat the database password") {
  const std::string secret = "Tr0ub4dor-and-3";
  const std::string db = R"(, "db_config": {"host": "h", "user": "u", "password": ")" + secret + R"(")";
  const std::string broken[] = {
      make(db + R"(, "port": 70000})"),                          // a bad value after it
      make(db + R"(, "password": "again"})"),                    // a duplicate key
      make(db + R"(, "no_such_key": 1, "database": 5})"),         // unknown key, wrong type
      make(db + "}", R"(, "timeouts": {"heartbeat_interval_ms": -1})"),
      R"({"local_node": {"id": 1, "db_config": {"password": ")" + secret + R"(" "port": 1}}})",  // invalid JSON
      R"({"local_node": {"id": 1, "db_config": {"password": ")" + secret,                        // cut off
  };
  for (const std::string& text : broken) {
    CAPTURE(text);
    const std::string message = parse_error(text);
    CHECK(message.find(secret) == std::string::npos);
    CHECK(message.find("Tr0ub") == std::string::npos);
  }
}

TEST_CASE("config: security.cluster_secret") {
  CHECK(parse_ok(make()).security.cluster_secret.empty());
  const std::string secret = "sixteen bytes at least";
  CHECK(parse_ok(make("", R"(, "security": {"cluster_secret": ")" + secret + R"(", "client_auth": "off"})"))
            .security.cluster_secret == secret);
  const std::string short_error = parse_error(make("", R"(, "security": {"cluster_secret": "tooshort"})"));
  CHECK(short_error == "config.json: security.cluster_secret: must be at least 16 bytes (got 8)");
  CHECK(short_error.find("tooshort") == std::string::npos);
  CHECK(starts_with(parse_error(make("", R"(, "security": {"cluster_secert": "x"})")),
                    "config.json: security.cluster_secert: unknown key"));
  CHECK(parse_error(make("", R"(, "security": {"cluster_secret": 7})")) ==
        "config.json: security.cluster_secret: expected a string, got an integer");
  CHECK(parse_error(make("", R"(, "security": "on")")) == "config.json: security: expected an object, got a string");
}

// ------------------------------------------------------------ security.tls

namespace {

std::string with_tls(const std::string& tls, const std::string& peers = kDefaultPeers) {
  return make("", R"(, "security": {"client_auth": "off", "tls": )" + tls + "}", peers);
}

const char* const kTls = R"({"certificate": "n1.crt", "key": "n1.key", "ca": "ca.crt"})";

// A config in `dir` whose security.tls names these files (as given: relative
// ones resolve against `dir`).
std::string tls_config_file(const TempDir& dir, const std::string& cert, const std::string& key,
                            const std::string& ca, const std::string& mode = "none") {
  return dir.write("config.json", R"({"local_node": {"id": 1, "ip": "127.0.0.1", "port": 5000},
    "peers": [{"id": 2, "ip": "127.0.0.1", "port": 5001}],
    "security": {"client_auth": "off", "tls": {"certificate": ")" +
                                      cert + R"(", "key": ")" + key + R"(", "ca": ")" + ca +
                                      R"(", "client_certificates": ")" + mode + R"("}}})");
}

std::string load_error(const std::string& path) {
  auto r = load_config(path);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind == ErrorKind::config);
  return r.error().message;
}

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("config: security.tls fields") {
  CHECK_FALSE(parse_ok(make()).security.tls.has_value());
  const Config c = parse_ok(with_tls(kTls));
  REQUIRE(c.security.tls.has_value());
  CHECK(c.security.tls->certificate == "n1.crt");
  CHECK(c.security.tls->key == "n1.key");
  CHECK(c.security.tls->ca == "ca.crt");
  CHECK(c.security.tls->client_certificates == ClientCertificates::none);
  for (const auto& [text, mode] :
       {std::pair{"none", ClientCertificates::none}, std::pair{"optional", ClientCertificates::optional},
        std::pair{"required", ClientCertificates::required}}) {
    const Config m =
        parse_ok(with_tls(R"({"certificate": "a", "key": "b", "ca": "c", "client_certificates": ")" +
                          std::string(text) + R"("})"));
    CHECK(m.security.tls->client_certificates == mode);
    CHECK(std::string(to_string(mode)) == text);
  }
  // Beside the cluster secret; without peers or client certificates the CA may be left out.
  const Config both = parse_ok(make(
      "",
      R"(, "security": {"cluster_secret": "sixteen bytes at least", "client_auth": "off", "tls": {"certificate": "a", "key": "b"}})",
      "[]"));
  CHECK(both.security.cluster_secret == "sixteen bytes at least");
  REQUIRE(both.security.tls.has_value());
  CHECK(both.security.tls->ca.empty());
}

TEST_CASE("config: security.tls errors") {
  CHECK(parse_error(with_tls(R"("on")")) == "config.json: security.tls: expected an object, got a string");
  CHECK(parse_error(with_tls(R"({"key": "b", "ca": "c"})")) ==
        "config.json: security.tls.certificate: missing required field");
  CHECK(parse_error(with_tls(R"({"certificate": "a", "ca": "c"})")) ==
        "config.json: security.tls.key: missing required field");
  CHECK(parse_error(with_tls(R"({"certificate": "", "key": "b", "ca": "c"})")) ==
        "config.json: security.tls.certificate: must be a non-empty string");
  CHECK(parse_error(with_tls(R"({"certificate": "a", "key": 5, "ca": "c"})")) ==
        "config.json: security.tls.key: expected a string, got an integer");
  CHECK(parse_error(with_tls(R"({"certificate": "a", "key": "b", "ca": ""})")) ==
        "config.json: security.tls.ca: must be a non-empty string");
  CHECK(
      parse_error(with_tls(R"({"certificate": "a", "key": "b", "ca": "c", "client_certificates": "yes"})")) ==
      "config.json: security.tls.client_certificates: must be \"none\", \"optional\" or \"required\" (got "
      "\"yes\")");
  CHECK(
      parse_error(with_tls(R"({"certificate": "a", "key": "b", "ca": "c", "client_certificates": true})")) ==
      "config.json: security.tls.client_certificates: expected a string, got a boolean");
  CHECK(parse_error(with_tls(R"({"certificate": "a", "key": "b", "ca": "c", "cert": "x"})")) ==
        "config.json: security.tls.cert: unknown key (expected one of: certificate, key, ca, "
        "client_certificates)");
  CHECK(parse_error(with_tls(R"({"certificate": "a", "key": "b"})")) ==
        "config.json: security.tls.ca: missing required field (needed to verify the peers' certificates)");
  CHECK(
      parse_error(with_tls(R"({"certificate": "a", "key": "b", "client_certificates": "optional"})", "[]")) ==
      "config.json: security.tls.ca: missing required field (needed to verify client certificates, "
      "client_certificates is \"optional\")");
}

TEST_CASE(
    "config: security.tls files: relative paths resolve against the config's directory, and they load") {
  const test::TestCerts& certs = test::TestCerts::shared();
  TempDir dir;
  fs::create_directories(dir.path / "etc" / "tls");
  for (const char* name : {"ca.crt", "node1.crt", "node1.key"}) {
    fs::copy_file(fs::path(certs.dir()) / name, dir.path / "etc" / "tls" / name, fs::copy_options::none);
  }
  const std::string path =
      dir.write("etc/config.json", R"({"local_node": {"id": 1, "ip": "127.0.0.1", "port": 5000},
    "security": {"client_auth": "off", "tls": {"certificate": "tls/node1.crt", "key": "tls/node1.key", "ca": "tls/ca.crt"}}})");
  auto r = load_config(path);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  REQUIRE(r->security.tls.has_value());
  CHECK(r->security.tls->certificate == (dir.path / "etc" / "tls" / "node1.crt").string());
  CHECK(r->security.tls->key == (dir.path / "etc" / "tls" / "node1.key").string());
  CHECK(r->security.tls->ca == (dir.path / "etc" / "tls" / "ca.crt").string());
  // parse_config does not touch the files.
  CHECK(parse_ok(with_tls(kTls)).security.tls->certificate == "n1.crt");

  // Absolute paths are kept; a chain (the node's certificate, then the CA's) is a certificate too.
  const std::string chain = dir.write("chain.crt", file_text(certs.cert(1)) + file_text(certs.ca()));
  auto abs = load_config(tls_config_file(dir, chain, certs.key(1), certs.ca(), "required"));
  REQUIRE_MESSAGE(abs.ok(), abs.error().message);
  CHECK(abs->security.tls->certificate == chain);
  CHECK(abs->security.tls->client_certificates == ClientCertificates::required);
}

TEST_CASE("config: security.tls files: every problem names the field and the file, never the key") {
  const test::TestCerts& certs = test::TestCerts::shared();
  TempDir dir;
  const std::string key_text = file_text(certs.key(1));
  REQUIRE(key_text.find("PRIVATE KEY") != std::string::npos);
  // A line of the key's base64, to make sure no message ever quotes it.
  const std::string key_line = key_text.substr(key_text.find('\n') + 1, 40);
  const auto no_secret = [&](const std::string& message) {
    CHECK(message.find(key_line) == std::string::npos);
    CHECK(message.find("BEGIN PRIVATE KEY") == std::string::npos);
  };
  const std::string config = dir.path.string() + "/config.json";
  const std::string missing = (dir.path / "missing.pem").string();

  SUBCASE("missing files") {
    CHECK(load_error(tls_config_file(dir, missing, certs.key(1), certs.ca())) ==
          config + ": security.tls.certificate: " + missing + ": cannot read: No such file or directory");
    CHECK(load_error(tls_config_file(dir, certs.cert(1), missing, certs.ca())) ==
          config + ": security.tls.key: " + missing + ": cannot read: No such file or directory");
    CHECK(load_error(tls_config_file(dir, certs.cert(1), certs.key(1), missing)) ==
          config + ": security.tls.ca: " + missing + ": cannot read: No such file or directory");
  }
  SUBCASE("relative names that resolve to nothing name the resolved file") {
    CHECK(load_error(tls_config_file(dir, "node1.crt", certs.key(1), certs.ca())) ==
          config + ": security.tls.certificate: " + (dir.path / "node1.crt").string() +
              ": cannot read: No such file or directory");
  }
  SUBCASE("a directory") {
    CHECK(load_error(tls_config_file(dir, dir.path.string(), certs.key(1), certs.ca())) ==
          config + ": security.tls.certificate: " + dir.path.string() + ": cannot read: Is a directory");
  }
  SUBCASE("unreadable files") {
    if (geteuid() == 0) {
      MESSAGE("running as root: permissions do not stop reads; skipped");
      return;
    }
    const std::string locked = dir.write("locked.key", key_text);
    fs::permissions(locked, fs::perms::none);
    CHECK(load_error(tls_config_file(dir, certs.cert(1), locked, certs.ca())) ==
          config + ": security.tls.key: " + locked + ": cannot read: Permission denied");
  }
  SUBCASE("not PEM, or the wrong kind of PEM") {
    const std::string garbage = dir.write("garbage.pem", "not a certificate\n");
    CHECK(load_error(tls_config_file(dir, garbage, certs.key(1), certs.ca())) ==
          config + ": security.tls.certificate: " + garbage +
              ": no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)");
    // The key given as the certificate, and the other way round.
    const std::string as_cert = load_error(tls_config_file(dir, certs.key(1), certs.key(1), certs.ca()));
    CHECK(as_cert == config + ": security.tls.certificate: " + certs.key(1) +
                         ": no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)");
    no_secret(as_cert);
    CHECK(load_error(tls_config_file(dir, certs.cert(1), certs.cert(1), certs.ca())) ==
          config + ": security.tls.key: " + certs.cert(1) +
              ": no PEM private key in it (expected -----BEGIN PRIVATE KEY-----)");
    CHECK(load_error(tls_config_file(dir, certs.cert(1), certs.key(1), garbage)) ==
          config + ": security.tls.ca: " + garbage +
              ": no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)");
    // A PEM block whose contents are broken.
    const std::string broken =
        dir.write("broken.crt", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    const std::string broken_error = load_error(tls_config_file(dir, broken, certs.key(1), certs.ca()));
    CHECK(starts_with(broken_error,
                      config + ": security.tls.certificate: " + broken + ": certificate 1 does not parse: "));
    // A damaged key: said so, without a byte of it.
    std::string damaged_text = key_text;
    damaged_text.replace(damaged_text.find('\n') + 5, 8, "!!!!!!!!");
    const std::string damaged = dir.write("damaged.key", damaged_text);
    const std::string damaged_error = load_error(tls_config_file(dir, certs.cert(1), damaged, certs.ca()));
    CHECK(starts_with(damaged_error, config + ": security.tls.key: " + damaged + ": "));
    no_secret(damaged_error);
  }
  SUBCASE("a key that is not the certificate's") {
    const std::string message = load_error(tls_config_file(dir, certs.cert(1), certs.key(2), certs.ca()));
    CHECK(message == config + ": security.tls.key: " + certs.key(2) +
                         ": not the private key of the certificate in " + certs.cert(1) +
                         " (security.tls.certificate)");
    no_secret(message);
  }
  SUBCASE("an encrypted key is refused, never prompted for") {
    const std::string encrypted = (dir.path / "encrypted.key").string();
    REQUIRE(test::run_program({"openssl", "pkey", "-in", certs.key(1), "-aes256", "-passout", "pass:secret",
                               "-out", encrypted},
                              (dir.path / "openssl.log").string()) == 0);
    const std::string message = load_error(tls_config_file(dir, certs.cert(1), encrypted, certs.ca()));
    CHECK(message ==
          config + ": security.tls.key: " + encrypted +
              ": the key is encrypted; distdb needs it without a passphrase (protect the file with its "
              "permissions instead)");
    no_secret(message);
  }
}

// ------------------------------------------------------------ client authentication

namespace {

const std::string& app_verifier() {
  static const std::string v =
      auth::format_verifier(auth::derive_verifier("app-password", auth::Bytes(16, 7), 4096));
  return v;
}

std::string with_security(const std::string& security, const std::string& local_extra = "") {
  return make(local_extra, R"(, "security": )" + security);
}

const char* const kMariadb = R"(, "db_config": {"user": "distdb", "password": "x"})";

}  // namespace

TEST_CASE("config: client_auth defaults: users when listed, database with MariaDB, else an error") {
  const std::string users = R"({"users": [{"name": "app", "password": ")" + app_verifier() + R"("}]})";
  const Config listed = parse_ok(with_security(users));
  CHECK(listed.security.client_auth == ClientAuth::users);
  REQUIRE(listed.security.users.size() == 1);
  CHECK(listed.security.users[0].name == "app");
  CHECK(listed.security.users[0].verifier == app_verifier());
  CHECK(parse_ok(with_security(users, kMariadb)).security.client_auth == ClientAuth::users);

  // The seed's configs (MariaDB, no security section): logins are checked by the database.
  CHECK(parse_ok(kSeedMachine1).security.client_auth == ClientAuth::database);
  CHECK(parse_ok(make(kMariadb, R"(, "security": {})")).security.client_auth == ClientAuth::database);

  // SQLite without users: refused, naming both ways out.
  for (const std::string& text :
       {std::string(R"({"local_node": {"id": 1, "ip": "a", "port": 5123}})"),
        make("", R"(, "security": {"cluster_secret": "sixteen bytes at least"})")}) {
    const std::string e = parse_error(text);
    CHECK_MESSAGE(starts_with(e, "config.json: security.client_auth: clients must authenticate"), e);
    CHECK(e.find("security.users") != std::string::npos);
    CHECK(e.find("--hash-password") != std::string::npos);
    CHECK(e.find("\"client_auth\": \"off\"") != std::string::npos);
  }
  CHECK(parse_error(R"({"local_node": {"id": 1, "ip": "a", "port": 5123}})").find("port 5123") !=
        std::string::npos);
}

TEST_CASE("config: client_auth chosen explicitly") {
  CHECK(parse_ok(with_security(R"({"client_auth": "off"})")).security.client_auth == ClientAuth::off);
  CHECK(parse_ok(with_security(R"({"client_auth": "off"})", kMariadb)).security.client_auth ==
        ClientAuth::off);
  CHECK(parse_ok(with_security(R"({"client_auth": "database"})", kMariadb)).security.client_auth ==
        ClientAuth::database);
  CHECK(starts_with(
      parse_error(with_security(R"({"client_auth": "database"})")),
      "config.json: security.client_auth: \"database\" checks logins against the node's MariaDB"));
  CHECK(parse_error(with_security(R"({"client_auth": "users"})")) ==
        "config.json: security.users: client_auth is \"users\" but no user is listed (distdb-node "
        "--hash-password makes each password entry)");
  CHECK(starts_with(parse_error(with_security(R"({"client_auth": "users", "users": []})")),
                    "config.json: security.users: client_auth is \"users\" but no user is listed"));
  CHECK(parse_error(with_security(R"({"client_auth": "none"})")) ==
        "config.json: security.client_auth: must be \"users\", \"database\" or \"off\" (got \"none\")");
  CHECK(parse_error(with_security(R"({"client_auth": false})")) ==
        "config.json: security.client_auth: expected a string, got a boolean");
  // Users listed but another mode chosen: a warning, not silence.
  const Config c = parse_ok(with_security(
      R"({"client_auth": "off", "users": [{"name": "app", "password": ")" + app_verifier() + R"("}]})"));
  REQUIRE(c.warnings.size() == 1);
  CHECK(c.warnings[0] == "config.json: security.users: ignored (client_auth is \"off\")");
  CHECK(to_string(ClientAuth::users) == std::string("users"));
  CHECK(to_string(ClientAuth::database) == std::string("database"));
  CHECK(to_string(ClientAuth::off) == std::string("off"));
}

TEST_CASE("config: security.users entries are checked; a password is never repeated") {
  const std::string v = app_verifier();
  auto users = [](const std::string& list) { return with_security(R"({"users": )" + list + "}"); };
  CHECK(parse_error(users(R"("app")")) == "config.json: security.users: expected an array, got a string");
  CHECK(parse_error(users(R"(["app"])")) ==
        "config.json: security.users[0]: expected an object, got a string");
  CHECK(parse_error(users(R"([{"password": ")" + v + R"("}])")) ==
        "config.json: security.users[0].name: missing required field");
  CHECK(parse_error(users(R"([{"name": "", "password": ")" + v + R"("}])")) ==
        "config.json: security.users[0].name: must be a non-empty string");
  CHECK(parse_error(users(R"([{"name": ")" + std::string(auth::kMaxUserBytes + 1, 'n') +
                          R"(", "password": ")" + v + R"("}])")) ==
        "config.json: security.users[0].name: must be 1 to 128 bytes of UTF-8 without control characters");
  CHECK(parse_error(users(R"([{"name": "a\u0007b", "password": ")" + v + R"("}])")) ==
        "config.json: security.users[0].name: must be 1 to 128 bytes of UTF-8 without control characters");
  CHECK(parse_error(users(R"([{"name": "app"}])")) ==
        "config.json: security.users[0].password: missing required field");
  CHECK(parse_error(users(R"([{"name": "app", "password": ")" + v + R"(", "role": "admin"}])"))
            .find("security.users[0].role: unknown key (expected one of: name, password)") !=
        std::string::npos);
  CHECK(parse_error(users(R"([{"name": "app", "password": ")" + v + R"("}, {"name": "app", "password": ")" +
                          v + R"("}])")) ==
        "config.json: security.users[1].name: duplicate user \"app\" (also security.users[0])");
  // A cleartext password, or a damaged verifier: refused, never echoed.
  for (const std::string& secret :
       {std::string("Tr0ub4dor-and-3"), std::string("SCRAM-SHA-256$4096:Tr0ub4dor$and3"),
        v.substr(0, v.size() - 6), "SCRAM-SHA-256$100:" + v.substr(v.find(':') + 1)}) {
    const std::string e = parse_error(users(R"([{"name": "app", "password": ")" + secret + R"("}])"));
    CHECK_MESSAGE(starts_with(e, "config.json: security.users[0].password: not a SCRAM-SHA-256 verifier"), e);
    CHECK(e.find("--hash-password") != std::string::npos);
    CHECK(e.find(secret) == std::string::npos);
    CHECK(e.find("Tr0ub") == std::string::npos);
  }
  CHECK(parse_error(users(R"([{"name": "app", "password": 5}])")) ==
        "config.json: security.users[0].password: expected a string, got an integer");
  // Several users, UTF-8 names.
  const Config c = parse_ok(users(R"([{"name": "app", "password": ")" + v +
                                  R"("}, {"name": "usuário", "password": ")" + v + R"("}])"));
  REQUIRE(c.security.users.size() == 2);
  CHECK(c.security.users[1].name == "usuário");
}
