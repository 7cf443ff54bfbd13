// The direct target, the baseline: one MariaDB server through MariaDB
// Connector/C, with nothing of distdb in between, one connection per thread,
// autocommit.
#include <memory>
#include <string>
#include <vector>

#include "target.hpp"

#ifdef DISTDB_BENCH_HAVE_MARIADB
#include <mysql.h>

#include <mutex>
#endif

namespace distdb::bench {

#ifdef DISTDB_BENCH_HAVE_MARIADB
namespace {

// Connector/C reports its own failures (connection refused, lost, ...) with
// codes 2000-2999 (CR_* in errmsg.h); the server's own errors are below.
bool is_client_error(unsigned int code) {
  return code >= 2000 && code < 3000;
}

std::string quote_identifier(const std::string& name) {
  std::string out = "`";
  for (char c : name) {
    if (c == '`') out += '`';
    out += c;
  }
  return out + "`";
}

class DirectConnection final : public Connection {
 public:
  DirectConnection(const Options& options, bool with_database)
      : options_(options), with_database_(with_database) {}
  ~DirectConnection() override { close(); }
  DirectConnection(const DirectConnection&) = delete;
  DirectConnection& operator=(const DirectConnection&) = delete;

  Status open() {
    close();
    conn_ = mysql_init(nullptr);
    if (conn_ == nullptr) return Error(ErrorKind::io, "mysql_init: out of memory");
    const unsigned int connect_timeout_s = 5;
    mysql_options(conn_, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout_s);
    mysql_options(conn_, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    const char* database = with_database_ ? options_.database.c_str() : nullptr;
    if (mysql_real_connect(conn_, options_.db.host.c_str(), options_.user.c_str(), options_.password.c_str(),
                           database, options_.db.port, nullptr, 0) == nullptr) {
      Error e(ErrorKind::unavailable,
              "cannot connect to MariaDB at " + options_.db.to_string() + ": " + mysql_error(conn_),
              static_cast<int>(mysql_errno(conn_)));
      close();
      return e;
    }
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
  bool with_database_;
  MYSQL* conn_ = nullptr;
};

class DirectTarget final : public Target {
 public:
  explicit DirectTarget(const Options& options) : options_(options), endpoints_{options.db} {}

  Status prepare() override {
    // mysql_init() would initialise the library on first use, but not in a
    // thread-safe way, and every benchmark thread opens its own connection.
    static std::once_flag once;
    std::call_once(once, [] { mysql_library_init(0, nullptr, nullptr); });
    DirectConnection bare(options_, false);
    if (auto opened = bare.open(); !opened) return opened.error();
    const OpResult created =
        bare.execute("CREATE DATABASE IF NOT EXISTS " + quote_identifier(options_.database));
    if (!created.ok) {
      return Error(ErrorKind::sql,
                   "cannot create database '" + options_.database + "': " + created.error_message);
    }
    return {};
  }

  const std::vector<Endpoint>& endpoints() const override { return endpoints_; }

  Result<std::unique_ptr<Connection>> connect(std::size_t /*endpoint*/) override {
    auto connection = std::make_unique<DirectConnection>(options_, true);
    if (auto opened = connection->open(); !opened) return opened.error();
    return std::unique_ptr<Connection>(std::move(connection));
  }

  // The classic protocol answers one statement at a time.
  bool supports_pipelining() const override { return false; }

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
