// An application that talks to a running distdb cluster through distdb::Client.
//
//   client_query HOST PORT [HOST PORT ...] "SQL"
//
// The addresses are seeds: the client connects to one that answers, learns
// the other members, follows the coordinator and fails over by itself. A
// write whose outcome it cannot know (the node died before answering) is
// reported, never re-sent. With $DISTDB_USER set, every connection logs in
// as that user with the password in $DISTDB_PASSWORD.
#include <cstdio>
#include <cstdlib>
#include <distdb/distdb.hpp>
#include <string>
#include <utility>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 4 || argc % 2 != 0) {
    std::fprintf(stderr, "usage: %s HOST PORT [HOST PORT ...] \"SQL\"\n", argv[0]);
    return 2;
  }
  std::vector<std::pair<std::string, std::uint16_t>> seeds;
  for (int i = 1; i + 1 < argc; i += 2) seeds.emplace_back(argv[i], static_cast<std::uint16_t>(std::atoi(argv[i + 1])));
  const char* sql = argv[argc - 1];
  distdb::ClientOptions options;
  if (const char* user = std::getenv("DISTDB_USER"); user != nullptr && user[0] != '\0') {
    options.user = user;
    const char* password = std::getenv("DISTDB_PASSWORD");
    options.password = password != nullptr ? password : "";
  }
  auto client = distdb::Client::connect_cluster(std::move(seeds), options);
  if (!client) {
    std::fprintf(stderr, "%s\n", client.error().message.c_str());
    return 2;
  }
  auto reply = client->query(sql, /*redirect=*/true);
  if (!reply) {
    const bool unknown = reply.error().kind == distdb::ErrorKind::outcome_unknown;
    std::fprintf(stderr, "%s%s\n", reply.error().message.c_str(),
                 unknown ? " (the statement may or may not have taken effect)" : "");
    return 2;
  }
  if (reply->status == distdb::ReplyStatus::error) {
    std::fprintf(stderr, "node %u: %s\n", reply->node, reply->error->message.c_str());
    return 1;
  }
  std::printf("node %u: %s\n", reply->node, reply->message.c_str());
  for (const auto& row : reply->result.rows) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      const auto& v = row[i];
      std::string text = distdb::is_null(v)                       ? "NULL"
                         : std::holds_alternative<std::int64_t>(v) ? std::to_string(std::get<std::int64_t>(v))
                         : std::holds_alternative<double>(v)       ? std::to_string(std::get<double>(v))
                         : std::holds_alternative<std::string>(v)  ? std::get<std::string>(v)
                                                                   : "<blob>";
      std::printf("%s%s", i ? "\t" : "", text.c_str());
    }
    std::printf("\n");
  }
  return 0;
}
