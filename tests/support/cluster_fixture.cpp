#include "cluster_fixture.hpp"

#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "distdb/storage.hpp"
#include "mariadb_env.hpp"
#include "node_fixture.hpp"

namespace distdb::test {

ClusterProcesses::ClusterProcesses(int n, Backend backend, const std::string& database,
                                   std::string extra_json, PeerPort peer_port)
    : backend_(backend),
      database_(database),
      extra_json_(std::move(extra_json)),
      peer_port_(std::move(peer_port)),
      client_options_(client_options()),
      dir_(make_temp_dir("distdb-cluster")) {
  // free_port() may hand the same port out again once its probe socket is
  // closed: members need distinct ones (a config listing one address twice
  // is refused).
  while (static_cast<int>(ports_.size()) < n) {
    const int port = free_port();
    if (std::find(ports_.begin(), ports_.end(), port) == ports_.end()) ports_.push_back(port);
  }
  processes_.resize(static_cast<std::size_t>(n));
  if (backend_ == Backend::mariadb) {
    for (int i = 0; i < n; ++i) {
      StorageConfig sc;
      sc.backend = StorageBackend::mariadb;
      sc.db = mariadb_db_config(static_cast<std::size_t>(i), "mysql");
      auto s = open_storage(sc);
      if (!s) throw std::runtime_error("cannot reach MariaDB server " + std::to_string(i) + ": " + s.error().message);
      (void)(*s)->execute("DROP DATABASE IF EXISTS `" + database_ + "`");
    }
  }
  for (int id = 1; id <= n; ++id) {
    std::ofstream(dir_ + "/config" + std::to_string(id) + ".json") << config_json(id);
    start(id);
  }
}

ClusterProcesses::~ClusterProcesses() {
  processes_.clear();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string ClusterProcesses::config_json(int id) const {
  std::ostringstream out;
  out << "{\n  \"local_node\": {\"id\": " << id << ", \"ip\": \"127.0.0.1\", \"port\": " << port(id) << ",\n";
  if (backend_ == Backend::mariadb) {
    const DbConfig db = mariadb_db_config(static_cast<std::size_t>(id - 1), database_);
    out << "    \"db_config\": {\"host\": \"" << db.host << "\", \"port\": " << db.port << ", \"user\": \""
        << db.user << "\", \"password\": \"" << db.password << "\", \"database\": \"" << db.database << "\"}";
    // The same tests run once per replication mode (tests/meson.build sets
    // DISTDB_TEST_REPLICATION for the "rows" runs).
    // Full copies in the test's own directory (removed with it), not $TMPDIR.
    out << ",\n    \"storage\": {\"backend\": \"mariadb\", \"spool_dir\": \"spool\"";
    if (const char* mode = std::getenv("DISTDB_TEST_REPLICATION"); mode != nullptr && *mode != '\0') {
      out << ", \"replication\": \"" << mode << "\"";
    }
    out << "}";
    out << "\n";
  } else {
    out << "    \"storage\": {\"backend\": \"sqlite\", \"path\": \"node" << id
        << ".db\", \"spool_dir\": \"spool\"";
    if (const char* mode = std::getenv("DISTDB_TEST_REPLICATION"); mode != nullptr && *mode != '\0') {
      out << ", \"replication\": \"" << mode << "\"";
    }
    out << "}\n";
  }
  out << "  },\n  \"peers\": [";
  bool first = true;
  for (int p = 1; p <= size(); ++p) {
    if (p == id) continue;
    const int peer = peer_port_ ? peer_port_(id, p) : port(p);
    out << (first ? "" : ", ") << "{\"id\": " << p << ", \"ip\": \"127.0.0.1\", \"port\": " << peer << "}";
    first = false;
  }
  std::string extra = extra_json_;
  for (auto at = extra.find("{id}"); at != std::string::npos; at = extra.find("{id}", at)) {
    extra.replace(at, 4, std::to_string(id));
  }
  out << "],\n  \"timeouts\": {\"heartbeat_interval_ms\": 50, \"heartbeat_timeout_ms\": 400},\n"
      << "  \"log_level\": \"debug\"" << (extra.empty() ? "" : ",\n  " + extra);
  if (extra.find("\"security\"") == std::string::npos) out << ",\n  " << test_security_json();
  out << "\n}\n";
  return out.str();
}

void ClusterProcesses::start(int id) {
  const char* bin = std::getenv("DISTDB_NODE_BIN");
  if (bin == nullptr) throw std::runtime_error("DISTDB_NODE_BIN is not set (run through meson test)");
  auto& slot = processes_.at(static_cast<std::size_t>(id - 1));
  slot.reset();
  slot = std::make_unique<Process>(
      std::vector<std::string>{bin, dir_ + "/config" + std::to_string(id) + ".json"},
      dir_ + "/node" + std::to_string(id) + ".log");
  wait_until([&] { return port_accepts(port(id)) || !slot->running(); }, std::chrono::seconds(15));
}

void ClusterProcesses::kill(int id) {
  auto& slot = processes_.at(static_cast<std::size_t>(id - 1));
  if (!slot) return;
  slot->signal(SIGKILL);
  slot->wait_exit(std::chrono::seconds(10));
}

void ClusterProcesses::signal(int id, int sig) {
  auto& slot = processes_.at(static_cast<std::size_t>(id - 1));
  if (slot) slot->signal(sig);
}

bool ClusterProcesses::running(int id) {
  auto& slot = processes_.at(static_cast<std::size_t>(id - 1));
  return slot && slot->running();
}

std::string ClusterProcesses::log(int id) const {
  const auto& slot = processes_.at(static_cast<std::size_t>(id - 1));
  return slot ? slot->output() : std::string();
}

ClientOptions ClusterProcesses::client_options() {
  return test_client_options();
}

Result<Reply> ClusterProcesses::query(int id, const std::string& sql, bool redirect) {
  ClientOptions options = client_options_;
  options.connect_timeout_ms = 2000;
  options.request_timeout_ms = 15000;
  auto client = Client::connect("127.0.0.1", static_cast<std::uint16_t>(port(id)), options);
  if (!client) return client.error();
  return client->query(sql, redirect);
}

Result<Reply> ClusterProcesses::check(int id) {
  ClientOptions options = client_options_;
  options.connect_timeout_ms = 2000;
  options.request_timeout_ms = 15000;
  auto client = Client::connect("127.0.0.1", static_cast<std::uint16_t>(port(id)), options);
  if (!client) return client.error();
  return client->check();
}

std::vector<std::int64_t> ClusterProcesses::teste_ids(int id) {
  std::vector<std::int64_t> out;
  auto r = query(id, "SELECT id FROM teste ORDER BY id");
  if (!r || r->status != ReplyStatus::ok) return {-1};
  for (const Row& row : r->result.rows) out.push_back(std::get<std::int64_t>(row.at(0)));
  return out;
}

int ClusterProcesses::coordinator_seen_by(int via) {
  auto client = Client::connect("127.0.0.1", static_cast<std::uint16_t>(port(via)), client_options_);
  if (!client) return 0;
  auto status = client->status();
  if (!status) return 0;
  for (const Row& row : status->result.rows) {
    if (std::get<std::string>(row.at(3)) == "coordinator") return static_cast<int>(std::get<std::int64_t>(row.at(0)));
  }
  return 0;
}

bool ClusterProcesses::wait_for_coordinator(int coordinator, std::chrono::milliseconds timeout) {
  return wait_until(
      [&] {
        auto client =
            Client::connect("127.0.0.1", static_cast<std::uint16_t>(port(coordinator)), client_options_);
        if (!client) return false;
        auto status = client->status();
        if (!status) return false;
        for (const Row& row : status->result.rows) {
          const int id = static_cast<int>(std::get<std::int64_t>(row.at(0)));
          const bool is_coord = std::get<std::string>(row.at(3)) == "coordinator";
          const bool in_view = std::get<std::int64_t>(row.at(5)) == 1;
          if (id == coordinator && !is_coord) return false;
          if (running(id) && !in_view) return false;
        }
        return true;
      },
      timeout);
}

bool ClusterProcesses::wait_for_value(int id, const std::string& sql, std::int64_t expected,
                                      std::chrono::milliseconds timeout) {
  return wait_until(
      [&] {
        auto r = query(id, sql);
        if (!r || r->status != ReplyStatus::ok || r->result.rows.empty()) return false;
        const Value& v = r->result.rows[0][0];
        if (auto i = std::get_if<std::int64_t>(&v)) return *i == expected;
        if (auto s = std::get_if<std::string>(&v)) return *s == std::to_string(expected);
        return false;
      },
      timeout);
}

}  // namespace distdb::test
