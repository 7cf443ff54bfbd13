// Reads on MariaDB from an event loop (node/mariadb_reads.cpp) against a real
// server (server 0 of DISTDB_TEST_MARIADB): the same answers as the blocking
// sessions, queueing over a bounded number of sessions, a session killed
// under a read, an unreachable server, and stop() with reads in flight.
#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "distdb/storage.hpp"
#include "mariadb_env.hpp"
#include "node/mariadb_reads.hpp"
#include "storage/mariadb_storage.hpp"

using namespace distdb;
using distdb::test::mariadb_db_config;

namespace {

const std::string kDb = "distdb_reads_test";
constexpr auto kDeadline = std::chrono::seconds(30);

ResultSet must(Result<ResultSet> r) {
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  return std::move(r).value();
}

std::unique_ptr<Storage> blocking(const std::string& database = kDb) {
  auto s = open_mariadb_storage(mariadb_db_config(0, database));
  REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
  return std::move(s).value();
}

// A loop on its own thread, like the node's network thread, and the reads
// under test on it. Stops the reads, then the loop, when it goes.
class Loop {
 public:
  explicit Loop(DbConfig config, int sessions)
      : reads_(make_mariadb_reads(io_, std::move(config), sessions)), thread_([this] { io_.run(); }) {}
  ~Loop() {
    reads_->stop();
    guard_.reset();
    thread_.join();
  }

  AsyncReads& reads() { return *reads_; }
  asio::io_context& io() { return io_; }

  // Submits `sql`; the future holds its result.
  std::future<Result<ResultSet>> read(std::string sql) {
    auto promise = std::make_shared<std::promise<Result<ResultSet>>>();
    auto future = promise->get_future();
    const bool queued =
        reads_->submit(std::move(sql), [promise](Result<ResultSet> r) { promise->set_value(std::move(r)); });
    REQUIRE(queued);
    return future;
  }

  // Stops the reads and waits until the loop has run out of work: what a
  // node's transport waits for in its stop().
  bool stop_and_drain(std::chrono::seconds deadline) {
    reads_->stop();
    guard_.reset();
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (!io_.stopped() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return io_.stopped();
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_ = asio::make_work_guard(io_);
  std::unique_ptr<AsyncReads> reads_;
  std::thread thread_;
};

Result<ResultSet> get(std::future<Result<ResultSet>>& f) {
  REQUIRE_MESSAGE(f.wait_for(kDeadline) == std::future_status::ready, "no answer within the deadline");
  return f.get();
}

void fresh_database() {
  auto admin = blocking("");
  must(admin->execute("DROP DATABASE IF EXISTS " + kDb));
  must(admin->execute("CREATE DATABASE " + kDb));
}

// The connection ids of the sessions running `text` now, from another session.
std::vector<std::int64_t> sessions_running(Storage& admin, const std::string& text) {
  auto rs = must(admin.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO = '" + text + "'"));
  std::vector<std::int64_t> ids;
  for (const auto& row : rs.rows) ids.push_back(std::get<std::int64_t>(row.at(0)));
  return ids;
}

bool eventually(const std::function<bool()>& done) {
  const auto until = std::chrono::steady_clock::now() + kDeadline;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

}  // namespace

TEST_CASE("reads on the loop give the blocking sessions' answers, values and errors alike") {
  fresh_database();
  auto db = blocking();
  must(db->execute(
      "CREATE TABLE types (u BIGINT UNSIGNED, i BIGINT, d DECIMAL(20,6), f DOUBLE, s VARCHAR(10), n VARCHAR(10), "
      "vb VARBINARY(8), dt DATETIME, j JSON)"));
  must(db->execute("INSERT INTO types VALUES (18446744073709551615, -9223372036854775808, 12345678901234.123456, "
                   "2.5, 'é', NULL, X'00FF10', '2024-02-29 13:14:15', '{\"a\": 1}'), "
                   "(7, 7, 0.5, -0.25, '', 'x', X'', '1999-12-31 23:59:59', '[]')"));
  Loop loop(mariadb_db_config(0, kDb), 2);
  const std::vector<std::string> reads = {
      "SELECT * FROM types ORDER BY i",
      "SELECT COUNT(*), SUM(i), MAX(s) FROM types",
      "SHOW TABLES",
      "SELECT * FROM types WHERE i = 12345",  // no rows, but columns
  };
  for (const auto& sql : reads) {
    CAPTURE(sql);
    auto f = loop.read(sql);
    const ResultSet async = must(get(f));
    const ResultSet expected = must(db->execute(sql));
    CHECK(async.columns == expected.columns);
    CHECK(async.rows == expected.rows);
  }
  auto first = loop.read("SELECT u, vb FROM types ORDER BY i LIMIT 1");
  const ResultSet rs = must(get(first));
  CHECK(std::get<std::string>(rs.rows.at(0).at(0)) == "18446744073709551615");
  CHECK(std::get<Blob>(rs.rows.at(0).at(1)).bytes == std::vector<std::uint8_t>{0x00, 0xFF, 0x10});

  // A server error is the statement's, with the server's code, and the
  // session goes on serving.
  auto missing = loop.read("SELECT * FROM no_such_table");
  auto missing_result = get(missing);
  REQUIRE_FALSE(missing_result.ok());
  CHECK(missing_result.error().kind == ErrorKind::sql);
  CHECK(missing_result.error().code == 1146);
  // A second statement in the text is refused, as on the blocking sessions.
  auto two = loop.read("SELECT 1; SELECT 2");
  auto two_result = get(two);
  REQUIRE_FALSE(two_result.ok());
  CHECK(two_result.error().kind == ErrorKind::sql);
  CHECK(db->execute("SELECT 1; SELECT 2").error().code == two_result.error().code);
  auto after = loop.read("SELECT 41 + 1");
  CHECK(std::get<std::int64_t>(must(get(after)).rows.at(0).at(0)) == 42);
}

TEST_CASE("reads beyond the sessions queue and are all answered, in their own results") {
  fresh_database();
  Loop loop(mariadb_db_config(0, kDb), 3);
  std::vector<std::future<Result<ResultSet>>> futures;
  constexpr int kReads = 200;
  for (int i = 0; i < kReads; ++i) {
    futures.push_back(loop.read("SELECT " + std::to_string(i) + ", CONNECTION_ID()"));
  }
  std::set<std::int64_t> connections;
  for (int i = 0; i < kReads; ++i) {
    const ResultSet rs = must(get(futures[static_cast<std::size_t>(i)]));
    CHECK(std::get<std::int64_t>(rs.rows.at(0).at(0)) == i);
    connections.insert(std::get<std::int64_t>(rs.rows.at(0).at(1)));
  }
  // At most the configured number of sessions, and kept between reads.
  CHECK(connections.size() <= 3);
  CHECK(connections.size() >= 1);
}

TEST_CASE("a session killed under a read fails that read only; the next read reconnects") {
  fresh_database();
  auto admin = blocking();
  Loop loop(mariadb_db_config(0, kDb), 1);
  const std::string slow = "SELECT SLEEP(20) AS killed_read";
  auto victim = loop.read(slow);
  REQUIRE(eventually([&] { return !sessions_running(*admin, slow).empty(); }));
  for (std::int64_t id : sessions_running(*admin, slow)) {
    must(admin->execute("KILL CONNECTION " + std::to_string(id)));
  }
  auto result = get(victim);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().kind == ErrorKind::outcome_unknown);
  auto next = loop.read("SELECT 'back'");
  CHECK(std::get<std::string>(must(get(next)).rows.at(0).at(0)) == "back");
}

TEST_CASE("an unreachable server fails each read with storage_unavailable, never inside submit()") {
  DbConfig config = mariadb_db_config(0, kDb);
  config.host = "localhost";  // with a socket path: the client library connects through it
  config.unix_socket = "/nonexistent/distdb-test.sock";  // fails at once, inside the connect call
  Loop loop(config, 2);
  std::atomic<bool> inside_submit{false};
  std::atomic<bool> called_inside{false};
  std::promise<Result<ResultSet>> promise;
  auto future = promise.get_future();
  // Submitted from the loop's own thread, as the node does.
  asio::post(loop.io(), [&] {
    inside_submit = true;
    const bool queued = loop.reads().submit("SELECT 1", [&](Result<ResultSet> r) {
      if (inside_submit) called_inside = true;
      promise.set_value(std::move(r));
    });
    inside_submit = false;
    if (!queued) promise.set_value(Error(ErrorKind::internal, "refused"));
  });
  auto result = get(future);
  CHECK_FALSE(called_inside);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().kind == ErrorKind::storage_unavailable);
  CHECK(result.error().message.find("/nonexistent/distdb-test.sock") != std::string::npos);
}

TEST_CASE("a long queue of reads that fail at once is answered without nesting a call per read") {
  // A listening socket that never greets: the first read's connect waits on
  // it while the others queue. Then the socket goes away: the first connect
  // fails, and every queued one fails inside its connect call (no such
  // file), one after the other within the same dispatch.
  const std::string path = "/tmp/distdb-reads-test-" + std::to_string(::getpid()) + ".sock";
  ::unlink(path.c_str());
  const int listener = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(listener >= 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
  REQUIRE(::bind(listener, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::listen(listener, 4) == 0);

  DbConfig config = mariadb_db_config(0, kDb);
  config.host = "localhost";
  config.unix_socket = path;
  Loop loop(config, 1);
  constexpr int kReads = 100000;  // one stack frame each would overflow the loop thread's stack
  std::atomic<int> answered{0};
  std::atomic<int> unavailable{0};
  std::promise<void> all;
  auto all_done = all.get_future();
  int refused = 0;
  for (int i = 0; i < kReads; ++i) {
    const bool queued = loop.reads().submit("SELECT 1", [&](Result<ResultSet> r) {
      if (!r.ok() && r.error().kind == ErrorKind::storage_unavailable) ++unavailable;
      if (++answered == kReads) all.set_value();
    });
    if (!queued) ++refused;
  }
  REQUIRE(refused == 0);
  // Every submit() has been taken up once a later post has run.
  std::promise<void> queued;
  asio::post(loop.io(), [&] { queued.set_value(); });
  REQUIRE(queued.get_future().wait_for(kDeadline) == std::future_status::ready);
  CHECK(answered == 0);  // all waiting behind the first connect
  ::close(listener);
  ::unlink(path.c_str());
  REQUIRE(all_done.wait_for(std::chrono::seconds(120)) == std::future_status::ready);
  CHECK(unavailable == kReads);
}

TEST_CASE("a host name is looked up off the loop; one that does not resolve fails the read") {
  DbConfig config = mariadb_db_config(0, kDb);
  config.host = "no-such-host.invalid";  // RFC 2606: never resolves
  Loop loop(config, 1);
  auto f = loop.read("SELECT 1");
  auto result = get(f);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().kind == ErrorKind::storage_unavailable);
  CHECK(result.error().message.find("no-such-host.invalid") != std::string::npos);
  CHECK(result.error().message.find("resolve") != std::string::npos);
}

TEST_CASE("stop() answers running and queued reads and leaves the loop with nothing to wait for") {
  fresh_database();
  auto admin = blocking();
  Loop loop(mariadb_db_config(0, kDb), 1);
  const std::string slow = "SELECT SLEEP(25) AS abandoned_read";
  auto running = loop.read(slow);
  auto queued = loop.read("SELECT 2");
  REQUIRE(eventually([&] { return !sessions_running(*admin, slow).empty(); }));
  const auto start = std::chrono::steady_clock::now();
  REQUIRE(loop.stop_and_drain(std::chrono::seconds(10)));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
  for (auto* f : {&running, &queued}) {
    auto r = get(*f);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::unavailable);
  }
  // Refused from now on, and the callback is not kept.
  auto token = std::make_shared<int>(0);
  CHECK_FALSE(loop.reads().submit("SELECT 3", [token](Result<ResultSet>) {}));
  CHECK(token.use_count() == 1);
  // The abandoned session is gone from the server.
  CHECK(eventually([&] { return sessions_running(*admin, slow).empty(); }));
}
