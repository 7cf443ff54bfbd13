// The two-phase target: the floor under a replicated write. The benchmark
// itself runs two-phase commit across several MariaDB servers, with no
// distdb process in between and no message but the database round trips:
//
//   to every server at once:  XA START; <the write>; XA END; XA PREPARE   (one request)
//   once every one answered:  XA COMMIT, to every server at once
//   done when a majority has committed (the rest are collected before
//   this session's next write)
//
// This is what distdb's coordinator asks of its members for a write (the
// same requests; docs/design.md), minus everything distdb adds: the client
// hop, the messages between nodes, the log bookkeeping, the threads. Its
// latency and throughput, next to the direct target's on one server, show
// how much of a cluster write's cost is two-phase commit on three servers
// sharing this machine, and so what no middleware could go below here.
//
// Reads and DDL are not replicated writes: a SELECT runs on the first
// server; CREATE/DROP run on every server in autocommit mode.
#include <memory>
#include <string>
#include <vector>

#include "target.hpp"

#ifdef DISTDB_BENCH_HAVE_MARIADB
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cctype>

#include "mariadb_session.hpp"
#endif

namespace distdb::bench {

#ifdef DISTDB_BENCH_HAVE_MARIADB
namespace {

std::string first_keyword(const std::string& sql) {
  std::string word;
  for (char c : sql) {
    if (std::isalpha(static_cast<unsigned char>(c)) != 0) {
      word += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    } else if (!word.empty()) {
      break;
    }
  }
  return word;
}

// One session per server; used by one benchmark thread.
class TwoPhaseConnection final : public Connection {
 public:
  explicit TwoPhaseConnection(const Options& options) : options_(options) {}
  ~TwoPhaseConnection() override { close(); }
  TwoPhaseConnection(const TwoPhaseConnection&) = delete;
  TwoPhaseConnection& operator=(const TwoPhaseConnection&) = delete;

  Status open() {
    close();
    for (const Endpoint& server : options_.dbs) {
      auto opened = open_mariadb_session(options_, server, true, CLIENT_MULTI_STATEMENTS);
      if (!opened) {
        close();
        return opened.error();
      }
      sessions_.push_back(Session{*opened, false});
    }
    return {};
  }

  OpResult execute(const std::string& sql) override {
    if (sessions_.empty()) {
      if (auto opened = open(); !opened) return OpResult::failure("connection", opened.error().message, true);
    }
    for (std::size_t i = 0; i < sessions_.size(); ++i) {
      if (!collect(i)) return failure(i);
    }
    const std::string keyword = first_keyword(sql);
    if (keyword == "SELECT") return run_on(0, sql);
    if (keyword != "INSERT" && keyword != "UPDATE" && keyword != "DELETE" && keyword != "REPLACE") {
      for (std::size_t i = 0; i < sessions_.size(); ++i) {
        OpResult r = run_on(i, sql);
        if (!r.ok || i + 1 == sessions_.size()) return r;
      }
    }
    return replicate(sql);
  }

 private:
  struct Session {
    MYSQL* conn;
    bool commit_unread;  // an XA COMMIT whose answer was not needed yet
  };

  OpResult replicate(const std::string& sql) {
    static std::atomic<std::uint64_t> next_xid{0};
    const std::string xid = "'bench-" + std::to_string(getpid()) + "-" + std::to_string(next_xid++) + "'";
    const std::string prepare = "XA START " + xid + ";\n" + sql + ";\nXA END " + xid + ";\nXA PREPARE " + xid;
    for (std::size_t i = 0; i < sessions_.size(); ++i) {
      if (mysql_send_query(sessions_[i].conn, prepare.data(), prepare.size()) != 0) return failure(i);
    }
    // Every vote. The statement's result (the second) gives rows affected.
    std::uint64_t rows = 0;
    OpResult refused;
    for (std::size_t i = 0; i < sessions_.size(); ++i) {
      MYSQL* c = sessions_[i].conn;
      int status = mysql_read_query_result(c) == 0 ? 0 : 1;
      for (int k = 1; status == 0 && k < 4; ++k) {
        status = mysql_next_result(c);
        if (k == 1 && status == 0) rows = mysql_affected_rows(c);
      }
      if (status != 0) {
        if (is_client_error(mysql_errno(c))) return failure(i);
        if (refused.error_kind.empty()) refused = failure(i);  // the first refusal is reported
      }
    }
    if (!refused.error_kind.empty()) {
      // A server refused: roll every branch back (unknown ones answer
      // "unknown XID", which is fine).
      for (std::size_t i = 0; i < sessions_.size(); ++i)
        discard(i, "XA END " + xid + ";\nXA ROLLBACK " + xid);
      return refused;
    }
    const std::string commit = "XA COMMIT " + xid;
    for (std::size_t i = 0; i < sessions_.size(); ++i) {
      if (mysql_send_query(sessions_[i].conn, commit.data(), commit.size()) != 0) return failure(i);
      sessions_[i].commit_unread = true;
    }
    // Done at a majority, in the order the servers answer.
    const std::size_t majority = sessions_.size() / 2 + 1;
    std::size_t committed = 0;
    while (committed < majority) {
      std::vector<pollfd> fds;
      std::vector<std::size_t> index;
      for (std::size_t i = 0; i < sessions_.size(); ++i) {
        if (!sessions_[i].commit_unread) continue;
        fds.push_back(pollfd{static_cast<int>(mysql_get_socket(sessions_[i].conn)), POLLIN, 0});
        index.push_back(i);
      }
      if (::poll(fds.data(), fds.size(), 90000) <= 0)
        return OpResult::failure("connection", "no answer to XA COMMIT", true);
      for (std::size_t k = 0; k < fds.size(); ++k) {
        if (fds[k].revents == 0) continue;
        if (!collect(index[k])) return failure(index[k]);
        ++committed;
      }
    }
    return OpResult::success(rows);
  }

  // Reads an XA COMMIT answer left unread, if any.
  bool collect(std::size_t i) {
    if (!sessions_[i].commit_unread) return true;
    sessions_[i].commit_unread = false;
    return mysql_read_query_result(sessions_[i].conn) == 0;
  }

  // Runs `sql` (one or more statements) on server i and drops the results.
  void discard(std::size_t i, const std::string& sql) {
    MYSQL* c = sessions_[i].conn;
    if (mysql_real_query(c, sql.data(), sql.size()) != 0) return;
    do {
      if (MYSQL_RES* r = mysql_store_result(c)) mysql_free_result(r);
    } while (mysql_next_result(c) == 0);
  }

  OpResult run_on(std::size_t i, const std::string& sql) {
    MYSQL* c = sessions_[i].conn;
    if (mysql_real_query(c, sql.data(), sql.size()) != 0) return failure(i);
    if (mysql_field_count(c) == 0) return OpResult::success(mysql_affected_rows(c));
    MYSQL_RES* result = mysql_store_result(c);
    if (result == nullptr) return failure(i);
    const std::uint64_t rows = mysql_num_rows(result);
    mysql_free_result(result);
    return OpResult::success(rows);
  }

  OpResult failure(std::size_t i) {
    MYSQL* c = sessions_[i].conn;
    const unsigned int code = mysql_errno(c);
    std::string message = options_.dbs[i].to_string() + ": " + std::to_string(code) + ": " + mysql_error(c);
    if (!is_client_error(code)) return OpResult::failure("sql", std::move(message));
    close();
    return OpResult::failure("connection", std::move(message), true);
  }

  void close() {
    for (Session& s : sessions_) mysql_close(s.conn);
    sessions_.clear();
  }

  const Options& options_;
  std::vector<Session> sessions_;
};

class TwoPhaseTarget final : public Target {
 public:
  explicit TwoPhaseTarget(const Options& options) : options_(options), endpoints_{options.dbs.front()} {}

  Status prepare() override {
    for (const Endpoint& server : options_.dbs) {
      auto opened = open_mariadb_session(options_, server, false);
      if (!opened) return opened.error();
      const std::string create = "CREATE DATABASE IF NOT EXISTS " + quote_identifier(options_.database);
      const bool ok = mysql_real_query(*opened, create.data(), create.size()) == 0;
      const std::string message = ok ? "" : mysql_error(*opened);
      mysql_close(*opened);
      if (!ok) {
        return Error(ErrorKind::sql, "cannot create database '" + options_.database + "' on " +
                                         server.to_string() + ": " + message);
      }
    }
    return {};
  }

  const std::vector<Endpoint>& endpoints() const override { return endpoints_; }

  Result<std::unique_ptr<Connection>> connect(std::size_t /*endpoint*/) override {
    auto connection = std::make_unique<TwoPhaseConnection>(options_);
    if (auto opened = connection->open(); !opened) return opened.error();
    return std::unique_ptr<Connection>(std::move(connection));
  }

  bool supports_pipelining() const override { return false; }

 private:
  Options options_;  // the connections refer to this copy, which outlives them
  std::vector<Endpoint> endpoints_;
};

}  // namespace

Result<std::unique_ptr<Target>> make_two_phase_target(const Options& options) {
  if (options.dbs.empty()) return Error(ErrorKind::config, "--target two-phase needs --db HOST:PORT,...");
  return std::unique_ptr<Target>(std::make_unique<TwoPhaseTarget>(options));
}

#else

Result<std::unique_ptr<Target>> make_two_phase_target(const Options& /*options*/) {
  return Error(ErrorKind::config,
               "--target two-phase: this distdb-bench was built without MariaDB Connector/C");
}

#endif

}  // namespace distdb::bench
