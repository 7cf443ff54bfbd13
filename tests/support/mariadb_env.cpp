#include "mariadb_env.hpp"

#include <cstdlib>
#include <sstream>
#include <sys/wait.h>

namespace distdb::test {
namespace {

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string(fallback);
}

}  // namespace

std::vector<MariadbServer> mariadb_servers() {
  std::vector<MariadbServer> servers;
  std::stringstream list(env_or("DISTDB_TEST_MARIADB", ""));
  std::string item;
  while (std::getline(list, item, ',')) {
    const auto colon = item.rfind(':');
    if (colon == std::string::npos) continue;
    servers.push_back({item.substr(0, colon), static_cast<std::uint16_t>(std::stoi(item.substr(colon + 1)))});
  }
  return servers;
}

DbConfig mariadb_db_config(std::size_t index, const std::string& database) {
  const auto servers = mariadb_servers();
  DbConfig db;
  db.host = servers.at(index).host;
  db.port = servers.at(index).port;
  db.user = env_or("DISTDB_TEST_MARIADB_USER", "root");
  db.password = env_or("DISTDB_TEST_MARIADB_PASSWORD", "");
  db.database = database;
  return db;
}

int mariadb_ctl(const std::string& action, std::size_t index) {
  const std::string ctl = env_or("DISTDB_TEST_MARIADB_CTL", "");
  if (ctl.empty()) return 127;
  const std::string cmd = ctl + " " + action + " " + std::to_string(index);
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

}  // namespace distdb::test
