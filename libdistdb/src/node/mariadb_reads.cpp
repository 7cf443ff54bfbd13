// Reads on MariaDB from the network thread's event loop (why:
// node/async_reads.hpp).
//
// Connector/C's non-blocking API. On a session opened with
// MYSQL_OPT_NONBLOCK, each call has a _start and a _cont form. _start runs
// the call until it would block and returns what it waits for: its socket
// readable or writable (MYSQL_WAIT_READ / MYSQL_WAIT_WRITE on
// mysql_get_socket()), and/or a deadline (MYSQL_WAIT_TIMEOUT, after
// mysql_get_timeout_value_ms(): the session's connect, read and write
// timeouts, which the library cannot enforce itself any more). We wait for
// that with Asio and call _cont with what happened, until it returns 0 and
// the call's own result is out. The library keeps the call's state on a
// small stack of its own per session; nothing here blocks.
//
// A read is three such calls: a connect when the session has none
// (sessions are opened as reads need them, up to the pool size, and kept),
// mysql_real_query, then mysql_store_result. Reads queue in arrival order
// when every session is busy; a client connection has at most one request
// running, so the queue is bounded by the number of connections.
//
// Same answers as the pool's blocking sessions (storage/mariadb_common.hpp):
// the same session options and value conversion; a server error is kind
// sql and leaves the session in use; a lost connection or a client-library
// error is outcome_unknown, and the session is closed and reopened by the
// next read that needs it; a database that cannot be reached fails the read
// that tried (storage_unavailable) and the next read tries again. Sessions
// are opened without CLIENT_MULTI_STATEMENTS: only single reads come here,
// and a text that holds a second statement gets the server's syntax error,
// as on the pool's sessions, which switch multi-statements off for any text
// not provably one statement.
//
// One thing in the client library would block: the name lookup at the
// start of a connect, a getaddrinfo() for a host given by name. On the
// network thread a slow resolver would hold up heartbeats and every client,
// so a host that is not an address (nor "localhost", which means the local
// socket) is looked up with Asio's resolver first, off the loop, and the
// session connects to the address found.
//
// Lifetime. Everything runs on the loop's thread except submit() and
// stop(), which only post to it. Each wait's handler holds its session by
// shared pointer and carries the number of the wait it belongs to; a
// session's first handler to run moves it on and cancels the other waits,
// whose handlers then find a stale number and do nothing. stop() answers
// every read still queued or running, so that none is left holding the
// node's read gate, and closes the sessions; a read in the middle of a call
// is abandoned by shutting its socket down and letting the call fail.
#include "node/mariadb_reads.hpp"

#include <sys/socket.h>

#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "storage/mariadb_common.hpp"
#include "util/log_internal.hpp"

namespace distdb {
namespace {

struct Job {
  std::string sql;
  AsyncReads::Done done;
};

// One non-blocking session and the read it runs.
struct Session {
  explicit Session(asio::io_context& loop) : socket(loop), timer(loop) {}

  enum class Step { idle, connecting, querying, storing };

  MYSQL* conn = nullptr;   // null: no session
  bool connected = false;  // its login has completed
  // Watches conn's socket. The descriptor belongs to the client library:
  // it is released, never closed, by this object.
  asio::posix::stream_descriptor socket;
  asio::steady_timer timer;  // for MYSQL_WAIT_TIMEOUT
  bool timer_armed = false;
  std::uint64_t wait_id = 0;  // the current wait; handlers of older ones do nothing
  Step step = Step::idle;
  std::optional<Job> job;  // the read running (step != idle)

  // Where the call in flight puts its result.
  MYSQL* connect_ret = nullptr;
  int query_ret = 0;
  MYSQL_RES* stored = nullptr;
};

using SessionPtr = std::shared_ptr<Session>;

class MariadbReads final : public AsyncReads {
 public:
  MariadbReads(asio::io_context& loop, DbConfig config, int max_sessions)
      : loop_(loop), config_(std::move(config)), max_sessions_(std::max(1, max_sessions)), resolver_(loop) {}

  // The loop has stopped by now (Node::stop stops the transport first); a
  // session left open (stop() never ran) is closed here.
  ~MariadbReads() override {
    for (auto& s : sessions_) abandon(*s);
  }

  bool submit(std::string sql, Done done) override {
    std::lock_guard lock(accepting_mutex_);
    if (!accepting_) return false;
    asio::post(loop_, [this, job = Job{std::move(sql), std::move(done)}]() mutable { enqueue(std::move(job)); });
    return true;
  }

  void stop() override {
    {
      std::lock_guard lock(accepting_mutex_);
      if (!accepting_) return;
      accepting_ = false;
    }
    // Every submit() posted before this runs before it.
    asio::post(loop_, [this] {
      const Error stopping(ErrorKind::unavailable, "the node is stopping");
      resolver_.cancel();
      std::deque<Job> queued = std::move(queue_);
      std::vector<SessionPtr> sessions = std::move(sessions_);
      for (auto& s : sessions) {
        std::optional<Job> running = std::move(s->job);
        abandon(*s);
        if (running) running->done(stopping);
      }
      for (auto& job : queued) job.done(stopping);
    });
  }

 private:
  void enqueue(Job job) {
    queue_.push_back(std::move(job));
    dispatch();
  }

  // Starts queued reads on free sessions, opening sessions up to the limit.
  // A read can end inside this loop (a connect through a socket path that
  // does not exist fails at once), and its finish() calls dispatch() again:
  // that inner call returns at once and this loop takes up what it freed, so
  // a long queue failing that way does not nest a call per read.
  void dispatch() {
    if (dispatching_) return;
    dispatching_ = true;
    while (!queue_.empty()) {
      SessionPtr free;
      for (auto& s : sessions_) {
        if (s->step == Session::Step::idle) {
          free = s;
          break;
        }
      }
      if (!free) {
        if (static_cast<int>(sessions_.size()) >= max_sessions_) break;  // the next finish() dispatches
        free = std::make_shared<Session>(loop_);
        sessions_.push_back(free);
      }
      free->job = std::move(queue_.front());
      queue_.pop_front();
      if (free->connected) {
        begin_query(free);
      } else {
        begin_connect(free);
      }
    }
    dispatching_ = false;
  }

  void begin_connect(const SessionPtr& s) {
    s->step = Session::Step::connecting;
    asio::error_code not_an_address;
    (void)asio::ip::make_address(config_.host, not_an_address);
    if (!not_an_address || config_.host == "localhost" || config_.host.empty()) {
      connect_to(s, config_.host);
      return;
    }
    // Looked up off the loop (see the top); `s` stays in step connecting,
    // so stop() answers its read should it come first.
    resolver_.async_resolve(config_.host, std::to_string(config_.port),
                            [this, s](const asio::error_code& ec, const asio::ip::tcp::resolver::results_type& found) {
                              if (s->step != Session::Step::connecting || s->conn != nullptr) return;  // abandoned
                              if (ec || found.empty()) {
                                finish(s, Error(ErrorKind::storage_unavailable,
                                                "cannot connect to MariaDB at " + where() +
                                                    ": cannot resolve the host name: " +
                                                    (ec ? ec.message() : std::string("no address"))));
                                return;
                              }
                              connect_to(s, found.begin()->endpoint().address().to_string());
                            });
  }

  void connect_to(const SessionPtr& s, const std::string& host) {
    mariadb::init_library_once();
    s->conn = mysql_init(nullptr);
    if (s->conn == nullptr) {
      finish(s, Error(ErrorKind::storage_unavailable, "mysql_init: out of memory"));
      return;
    }
    mysql_options(s->conn, MYSQL_OPT_NONBLOCK, nullptr);
    mariadb::set_session_options(s->conn, config_, StorageAccess::read_only);
    const char* socket_path = config_.unix_socket.empty() ? nullptr : config_.unix_socket.c_str();
    const char* database = config_.database.empty() ? nullptr : config_.database.c_str();
    advance(s, mysql_real_connect_start(&s->connect_ret, s->conn, host.c_str(), config_.user.c_str(),
                                        config_.password.c_str(), database, config_.port, socket_path, 0));
  }

  void begin_query(const SessionPtr& s) {
    s->step = Session::Step::querying;
    const std::string& sql = s->job->sql;
    advance(s, mysql_real_query_start(&s->query_ret, s->conn, sql.data(), sql.size()));
  }

  // Waits for what the call in flight asked for, or completes it (status 0).
  void advance(const SessionPtr& s, int status) {
    if (status == 0) {
      completed(s);
      return;
    }
    const std::uint64_t id = ++s->wait_id;
    const int fd = mysql_get_socket(s->conn);
    const bool wants_io = (status & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE)) != 0;
    if (wants_io && !watch(*s, fd)) {
      // No descriptor to wait on (never expected): make the call fail as a
      // timed-out one rather than wait for nothing.
      asio::post(loop_, [this, s, id] { resume(s, id, MYSQL_WAIT_TIMEOUT); });
      return;
    }
    if ((status & MYSQL_WAIT_TIMEOUT) != 0) {
      s->timer.expires_after(std::chrono::milliseconds(mysql_get_timeout_value_ms(s->conn)));
      s->timer_armed = true;
      s->timer.async_wait([this, s, id](const asio::error_code& ec) {
        if (ec != asio::error::operation_aborted) resume(s, id, MYSQL_WAIT_TIMEOUT);
      });
    }
    // An error on the socket is passed on as the readiness asked for: the
    // call's own read or write then finds it.
    if ((status & MYSQL_WAIT_READ) != 0) {
      s->socket.async_wait(asio::posix::descriptor_base::wait_read, [this, s, id](const asio::error_code& ec) {
        if (ec != asio::error::operation_aborted) resume(s, id, MYSQL_WAIT_READ);
      });
    }
    if ((status & MYSQL_WAIT_WRITE) != 0) {
      s->socket.async_wait(asio::posix::descriptor_base::wait_write, [this, s, id](const asio::error_code& ec) {
        if (ec != asio::error::operation_aborted) resume(s, id, MYSQL_WAIT_WRITE);
      });
    }
  }

  // Points the session's watcher at `fd` (the library opens the socket
  // inside the connect call, and a reconnect gets a new one).
  bool watch(Session& s, int fd) {
    if (fd < 0) return false;
    if (s.socket.is_open() && s.socket.native_handle() == fd) return true;
    unwatch(s);
    asio::error_code ec;
    s.socket.assign(fd, ec);
    if (ec) {
      DISTDB_LOG(warn) << "MariaDB read session: cannot watch its socket: " << ec.message();
      return false;
    }
    return true;
  }

  static void unwatch(Session& s) {
    if (s.socket.is_open()) s.socket.release();  // cancels its waits; the descriptor stays open
  }

  // The wait `id` of session `s` is over with `ready`.
  void resume(const SessionPtr& s, std::uint64_t id, int ready) {
    if (id != s->wait_id || s->step == Session::Step::idle) return;
    ++s->wait_id;  // the wait's other handlers are stale now
    if (s->timer_armed) {
      s->timer.cancel();
      s->timer_armed = false;
    }
    if (s->socket.is_open()) s->socket.cancel();
    advance(s, proceed(*s, ready));
  }

  // Calls the _cont form of the call in flight.
  static int proceed(Session& s, int ready) {
    switch (s.step) {
      case Session::Step::connecting:
        return mysql_real_connect_cont(&s.connect_ret, s.conn, ready);
      case Session::Step::querying:
        return mysql_real_query_cont(&s.query_ret, s.conn, ready);
      case Session::Step::storing:
        return mysql_store_result_cont(&s.stored, s.conn, ready);
      case Session::Step::idle:
        break;
    }
    return 0;
  }

  // The call in flight has returned.
  void completed(const SessionPtr& s) {
    switch (s->step) {
      case Session::Step::connecting:
        if (s->connect_ret == nullptr) {
          const unsigned int code = mysql_errno(s->conn);
          Error e(ErrorKind::storage_unavailable, "cannot connect to MariaDB at " + where() + ": " + mysql_error(s->conn),
                  static_cast<int>(code));
          close(*s, true);
          finish(s, std::move(e));
          return;
        }
        s->connected = true;
        begin_query(s);
        return;
      case Session::Step::querying: {
        if (s->query_ret != 0) {
          bool broken = false;
          Error e = mariadb::call_error(s->conn, s->job->sql, broken);
          if (broken) close(*s, true);
          finish(s, std::move(e));
          return;
        }
        s->step = Session::Step::storing;
        s->stored = nullptr;
        advance(s, mysql_store_result_start(&s->stored, s->conn));
        return;
      }
      case Session::Step::storing: {
        bool broken = false;
        Result<ResultSet> result = mariadb::result_of(s->conn, s->stored, s->job->sql, broken);
        s->stored = nullptr;  // freed by result_of()
        // A single read gives one result. Should the server have more to
        // say (never expected here), the session is not reused.
        if (!broken && mysql_more_results(s->conn)) broken = true;
        if (broken) close(*s, true);
        finish(s, std::move(result));
        return;
      }
      case Session::Step::idle:
        return;
    }
  }

  // Answers the session's read, then starts the next queued ones.
  void finish(const SessionPtr& s, Result<ResultSet> result) {
    std::optional<Job> job = std::move(s->job);
    s->job.reset();
    s->step = Session::Step::idle;
    if (job) job->done(std::move(result));
    dispatch();
  }

  // Closes the session (between calls). A broken one may have an unread
  // answer or a dead peer: its socket is shut down first, so that
  // mysql_close() cannot wait on it.
  static void close(Session& s, bool broken) {
    unwatch(s);
    if (s.conn != nullptr) {
      if (broken && mysql_get_socket(s.conn) >= 0) ::shutdown(mysql_get_socket(s.conn), SHUT_RDWR);
      mysql_close(s.conn);
    }
    s.conn = nullptr;
    s.connected = false;
  }

  // Ends the session whatever it is doing. A call in the middle of a wait
  // is driven to its end as a timed-out one, on a socket shut down so that
  // it cannot get anywhere; then the session is closed.
  static void abandon(Session& s) {
    if (s.timer_armed) {
      s.timer.cancel();
      s.timer_armed = false;
    }
    ++s.wait_id;
    if (s.step == Session::Step::idle) {
      close(s, false);
      return;
    }
    unwatch(s);
    if (s.conn != nullptr) {
      if (mysql_get_socket(s.conn) >= 0) ::shutdown(mysql_get_socket(s.conn), SHUT_RDWR);
      int status = 1;
      for (int i = 0; i < 100 && status != 0; ++i) status = proceed(s, MYSQL_WAIT_TIMEOUT);
      if (s.stored != nullptr) mysql_free_result(s.stored);
      s.stored = nullptr;
      if (status != 0) {
        // The call would not end: leak the session rather than free what
        // the library still uses (never seen).
        DISTDB_LOG(warn) << "MariaDB read session: an abandoned call did not end; its connection is leaked";
        s.conn = nullptr;
      }
    }
    s.step = Session::Step::idle;
    close(s, true);
  }

  std::string where() const { return mariadb::server_address(config_); }

  asio::io_context& loop_;
  const DbConfig config_;
  const int max_sessions_;

  std::mutex accepting_mutex_;
  bool accepting_ = true;  // guarded by accepting_mutex_

  // The loop's thread only.
  asio::ip::tcp::resolver resolver_;
  bool dispatching_ = false;  // dispatch() is running (see there)
  std::deque<Job> queue_;
  std::vector<SessionPtr> sessions_;
};

}  // namespace

std::unique_ptr<AsyncReads> make_mariadb_reads(asio::io_context& loop, DbConfig config, int max_sessions) {
  return std::make_unique<MariadbReads>(loop, std::move(config), max_sessions);
}

}  // namespace distdb
