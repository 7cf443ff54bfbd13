// The smallest host application: embeds a node, runs one statement, stops.
// It also drives the replication state machine by hand, as an application
// with its own I/O would, to show the core's public headers stand alone.
#include <cstdio>
#include <distdb/core/replica.hpp>
#include <distdb/distdb.hpp>

namespace {

// A one-member cluster elects itself once its promise is "durable".
bool core_elects_itself() {
  distdb::core::ReplicaConfig config;
  config.id = 1;
  config.members = {1};
  distdb::core::Replica replica(config, {});
  for (int t = 0; t < 10 && replica.role() != distdb::core::Role::coordinator; ++t) {
    replica.tick();
    for (const auto& task : replica.take_ready().storage) {
      distdb::core::StorageDone done;
      done.id = task.id;  // every task succeeds at once in this sketch
      replica.storage_done(done);
    }
  }
  return replica.can_commit();
}

}  // namespace

int main(int argc, char** argv) {
  distdb::Config config;
  config.id = 1;
  config.ip = "127.0.0.1";
  config.port = 0;
  config.storage.sqlite_path = argc > 1 ? std::string(argv[1]) + "/host.db" : "host.db";
  // Statements come from this process only; its port (127.0.0.1) logs nobody in.
  config.security.client_auth = distdb::ClientAuth::off;
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
  return core_elects_itself() ? 0 : 1;
}
