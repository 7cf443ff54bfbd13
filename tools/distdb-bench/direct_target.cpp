// The direct target, the baseline: MariaDB through MariaDB Connector/C,
// with nothing of distdb in between, one connection per thread, autocommit.
// With several --db servers, thread i uses server i mod count, each with a
// table of its own: the same load spread over independent servers, which on
// one machine is what reads spread over a cluster's members cost MariaDB.
#include <memory>
#include <string>
#include <vector>

#include "target.hpp"

#ifdef DISTDB_BENCH_HAVE_MARIADB
#include "mariadb_session.hpp"
#endif

namespace distdb::bench {

#ifdef DISTDB_BENCH_HAVE_MARIADB
namespace {

class DirectConnection final : public Connection {
 public:
  DirectConnection(const Options& options, Endpoint server, bool with_database)
      : options_(options), server_(std::move(server)), with_database_(with_database) {}
  ~DirectConnection() override { close(); }
  DirectConnection(const DirectConnection&) = delete;
  DirectConnection& operator=(const DirectConnection&) = delete;

  Status open() {
    close();
    auto opened = open_mariadb_session(options_, server_, with_database_);
    if (!opened) return opened.error();
    conn_ = *opened;
    return {};
  }

  OpResult execute(const std::string& sql) override {
    // A connection lost by an earlier statement is reopened here, once per
    // statement, so that a server restart costs errors, not the whole run.
    if (conn_ == nullptr) {
      if (auto opened = open(); !opened) return OpResult::failure("connection", opened.error().message, true);
    }
    if (mysql_real_query(conn_, sql.data(), sql.size()) != 0) return failure();
    if (mysql_field_count(conn_) == 0) return OpResult::success(mysql_affected_rows(conn_));
    // Fetch every row, as the cluster target does (a node sends the whole
    // result): both sides then pay for the same work.
    MYSQL_RES* result = mysql_store_result(conn_);
    if (result == nullptr) return failure();
    const std::uint64_t rows = mysql_num_rows(result);
    mysql_free_result(result);
    return OpResult::success(rows);
  }

 private:
  OpResult failure() {
    const unsigned int code = mysql_errno(conn_);
    std::string message = std::to_string(code) + ": " + mysql_error(conn_);
    if (!is_client_error(code)) return OpResult::failure("sql", std::move(message));
    close();
    return OpResult::failure("connection", std::move(message), true);
  }

  void close() {
    if (conn_ != nullptr) mysql_close(conn_);
    conn_ = nullptr;
  }

  const Options& options_;
  Endpoint server_;
  bool with_database_;
  MYSQL* conn_ = nullptr;
};

class DirectTarget final : public Target {
 public:
  explicit DirectTarget(const Options& options) : options_(options), endpoints_(options.dbs) {}

  Status prepare() override {
    init_mariadb_library();
    for (const Endpoint& server : endpoints_) {
      DirectConnection bare(options_, server, false);
      if (auto opened = bare.open(); !opened) return opened.error();
      const OpResult created =
          bare.execute("CREATE DATABASE IF NOT EXISTS " + quote_identifier(options_.database));
      if (!created.ok) {
        return Error(ErrorKind::sql, "cannot create database '" + options_.database + "' on " + server.to_string() +
                                         ": " + created.error_message);
      }
    }
    return {};
  }

  const std::vector<Endpoint>& endpoints() const override { return endpoints_; }

  Result<std::unique_ptr<Connection>> connect(std::size_t endpoint) override {
    auto connection = std::make_unique<DirectConnection>(options_, endpoints_[endpoint % endpoints_.size()], true);
    if (auto opened = connection->open(); !opened) return opened.error();
    return std::unique_ptr<Connection>(std::move(connection));
  }

  // The classic protocol answers one statement at a time.
  bool supports_pipelining() const override { return false; }
  bool independent_endpoints() const override { return endpoints_.size() > 1; }

 private:
  Options options_;  // the connections refer to this copy, which outlives them
  std::vector<Endpoint> endpoints_;
};

}  // namespace

Result<std::unique_ptr<Target>> make_direct_target(const Options& options) {
  return std::unique_ptr<Target>(std::make_unique<DirectTarget>(options));
}

#else

Result<std::unique_ptr<Target>> make_direct_target(const Options& /*options*/) {
  return Error(ErrorKind::config, "--target direct: this distdb-bench was built without MariaDB Connector/C");
}

#endif

}  // namespace distdb::bench
