// An application that embeds a distdb node in its own process.
//
// It configures a node in code (no config file), stores its data in a SQLite
// file, runs statements through the node, and at the same time serves other
// clients on the port it listens on (distdb-cli -h 127.0.0.1 -P <port>).
//
//   embedded_node [DATA_DIR]
#include <cstdio>
#include <distdb/distdb.hpp>
#include <string>
#include <variant>

namespace {

std::string show(const distdb::Value& v) {
  if (distdb::is_null(v)) return "NULL";
  if (auto i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (auto d = std::get_if<double>(&v)) return std::to_string(*d);
  if (auto s = std::get_if<std::string>(&v)) return *s;
  return "<" + std::to_string(std::get<distdb::Blob>(v).bytes.size()) + " bytes>";
}

bool run(distdb::Node& node, const std::string& sql) {
  auto result = node.execute(sql);
  if (!result) {
    std::fprintf(stderr, "%s\n  -> error: %s\n", sql.c_str(), result.error().message.c_str());
    return false;
  }
  std::printf("%s\n", sql.c_str());
  for (const auto& row : result->rows) {
    std::string line = " ";
    for (std::size_t i = 0; i < row.size(); ++i) line += " " + result->columns[i] + "=" + show(row[i]);
    std::printf("%s\n", line.c_str());
  }
  if (!result->has_rows()) std::printf("  -> %llu row(s) affected\n", static_cast<unsigned long long>(result->rows_affected));
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : ".";

  distdb::Config config;
  config.id = 1;
  config.ip = "127.0.0.1";
  config.port = 0;  // any free port
  config.storage.backend = distdb::StorageBackend::sqlite;
  config.storage.sqlite_path = dir + "/embedded.db";
  // Clients of the port log in as the users listed here, by SCRAM-SHA-256:
  // `distdb-node --hash-password` makes each entry. This example serves
  // 127.0.0.1 only and logs nobody in ("off"), which is for local demos:
  // anyone who can reach the port runs SQL.
  config.security.client_auth = distdb::ClientAuth::off;
  distdb::set_log_level(distdb::LogLevel::warn);

  distdb::Node node(config);
  if (auto st = node.start(); !st) {
    std::fprintf(stderr, "cannot start: %s\n", st.error().message.c_str());
    return 1;
  }
  std::printf("node %u serving on 127.0.0.1:%u\n", node.id(), node.port());

  const bool ok = run(node, "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT)") &&
                  run(node, "INSERT INTO notes (body) VALUES ('embedded in the host process')") &&
                  run(node, "SELECT id, body FROM notes ORDER BY id DESC LIMIT 1");
  node.stop();
  return ok ? 0 : 1;
}
