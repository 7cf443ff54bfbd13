// The cluster target: distdb nodes through distdb::Client, one persistent
// connection per thread, bound to one node (Client::connect, not
// connect_cluster): the benchmark decides where each thread goes, and a
// failover should show up as errors in the figures rather than be hidden by
// the client's retries.
#include <string>
#include <utility>
#include <vector>

#include "distdb/client.hpp"
#include "target.hpp"

namespace distdb::bench {
namespace {

OpResult from_reply(const Result<Reply>& reply) {
  if (!reply) {
    // No reply at all: the connection failed (refused, dropped, timed out).
    return OpResult::failure(to_string(reply.error().kind), reply.error().message, true);
  }
  switch (reply->status) {
    case ReplyStatus::ok:
      return OpResult::success(reply->result.has_rows() ? reply->result.rows.size()
                                                        : reply->result.rows_affected);
    case ReplyStatus::redirect:
      // Only asked for with payload.redirect, which the benchmark never sets.
      return OpResult::failure("redirect", reply->message);
    case ReplyStatus::error:
      break;
  }
  if (!reply->error) return OpResult::failure(to_string(ErrorKind::internal), reply->message);
  return OpResult::failure(to_string(reply->error->kind), reply->error->message);
}

class ClusterConnection final : public Connection {
 public:
  explicit ClusterConnection(Client client) : client_(std::move(client)) {}

  OpResult execute(const std::string& sql) override { return from_reply(client_.query(sql)); }

  Status send(const std::string& sql) override {
    auto id = client_.send(sql);
    if (!id) return id.error();
    return {};
  }

  OpResult receive() override { return from_reply(client_.receive()); }

 private:
  Client client_;
};

// The cell of `column` in `row` of a STATUS answer, located by name so that
// a node adding columns does not break this.
const Value* status_cell(const ResultSet& status, const Row& row, const std::string& column) {
  for (std::size_t i = 0; i < status.columns.size() && i < row.size(); ++i) {
    if (status.columns[i] == column) return &row[i];
  }
  return nullptr;
}

// The coordinator as `reply` (a STATUS answer) names it.
Result<Endpoint> coordinator_in(const Reply& reply) {
  const ResultSet& status = reply.result;
  for (const Row& row : status.rows) {
    const Value* role = status_cell(status, row, "role");
    const Value* ip = status_cell(status, row, "ip");
    const Value* port = status_cell(status, row, "port");
    if (role == nullptr || ip == nullptr || port == nullptr) break;
    const auto* role_text = std::get_if<std::string>(role);
    if (role_text == nullptr || *role_text != "coordinator") continue;
    const auto* ip_text = std::get_if<std::string>(ip);
    const auto* port_number = std::get_if<std::int64_t>(port);
    if (ip_text == nullptr || port_number == nullptr) break;
    return Endpoint{*ip_text, static_cast<std::uint16_t>(*port_number)};
  }
  return Error(ErrorKind::no_quorum,
               "node " + std::to_string(reply.node) + " knows no coordinator (" + reply.message + ")");
}

class ClusterTarget final : public Target {
 public:
  explicit ClusterTarget(const Options& options) : options_(options), endpoints_(options.nodes) {}

  Status prepare() override {
    if (!options_.coordinator_only) return {};
    // Ask the nodes in turn; the first that names a coordinator decides.
    Error last(ErrorKind::unavailable, "no node given");
    for (const Endpoint& node : options_.nodes) {
      auto client = Client::connect(node.host, node.port, client_options(options_));
      if (!client) {
        last = client.error();
        continue;
      }
      auto status = client->status();
      if (!status) {
        last = status.error();
        continue;
      }
      auto coordinator = coordinator_in(*status);
      if (!coordinator) {
        last = coordinator.error();
        continue;
      }
      endpoints_ = {*coordinator};
      return {};
    }
    return Error(last.kind, "--coordinator-only: cannot find the coordinator: " + last.message);
  }

  const std::vector<Endpoint>& endpoints() const override { return endpoints_; }

  Result<std::unique_ptr<Connection>> connect(std::size_t endpoint) override {
    const Endpoint& node = endpoints_.at(endpoint % endpoints_.size());
    auto client = Client::connect(node.host, node.port, client_options(options_));
    if (!client) return client.error();
    return std::unique_ptr<Connection>(std::make_unique<ClusterConnection>(std::move(*client)));
  }

  bool supports_pipelining() const override { return true; }

 private:
  static ClientOptions client_options(const Options& options) {
    ClientOptions o;
    o.user = options.cluster_user;
    o.password = options.cluster_password;
    o.follow_redirects = false;  // writes are forwarded by the node itself (payload.redirect stays false)
    o.tls = options.tls;
    return o;
  }

  Options options_;
  std::vector<Endpoint> endpoints_;
};

}  // namespace

std::unique_ptr<Target> make_cluster_target(const Options& options) {
  return std::make_unique<ClusterTarget>(options);
}

}  // namespace distdb::bench
