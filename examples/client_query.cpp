// An application that talks to a running distdb cluster through distdb::Client.
//
//   client_query HOST PORT "SQL"
#include <cstdio>
#include <cstdlib>
#include <distdb/distdb.hpp>
#include <string>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s HOST PORT \"SQL\"\n", argv[0]);
    return 2;
  }
  auto client = distdb::Client::connect(argv[1], static_cast<std::uint16_t>(std::atoi(argv[2])));
  if (!client) {
    std::fprintf(stderr, "%s\n", client.error().message.c_str());
    return 2;
  }
  auto reply = client->query(argv[3]);
  if (!reply) {
    std::fprintf(stderr, "%s\n", reply.error().message.c_str());
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
