// The smallest host application: embeds a node, runs one statement, stops.
#include <cstdio>
#include <distdb/distdb.hpp>

int main(int argc, char** argv) {
  distdb::Config config;
  config.id = 1;
  config.ip = "127.0.0.1";
  config.port = 0;
  config.storage.sqlite_path = argc > 1 ? std::string(argv[1]) + "/host.db" : "host.db";
  distdb::set_log_level(distdb::LogLevel::warn);
  distdb::Node node(config);
  if (auto st = node.start(); !st) {
    std::fprintf(stderr, "cannot start: %s\n", st.error().message.c_str());
    return 1;
  }
  auto result = node.execute("SELECT 40 + 2 AS answer");
  node.stop();
  if (!result || result->rows.empty()) return 1;
  std::printf("answer=%lld\n", static_cast<long long>(std::get<std::int64_t>(result->rows[0][0])));
  return 0;
}
