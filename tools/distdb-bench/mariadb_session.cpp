#include "mariadb_session.hpp"

#ifdef DISTDB_BENCH_HAVE_MARIADB
#include <mutex>

namespace distdb::bench {

void init_mariadb_library() {
  static std::once_flag once;
  std::call_once(once, [] { mysql_library_init(0, nullptr, nullptr); });
}

Result<MYSQL*> open_mariadb_session(const Options& options, const Endpoint& server, bool with_database,
                                    unsigned long flags) {
  init_mariadb_library();
  MYSQL* conn = mysql_init(nullptr);
  if (conn == nullptr) return Error(ErrorKind::io, "mysql_init: out of memory");
  const unsigned int connect_timeout_s = 5;
  mysql_options(conn, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout_s);
  mysql_options(conn, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  const char* database = with_database ? options.database.c_str() : nullptr;
  if (mysql_real_connect(conn, server.host.c_str(), options.user.c_str(), options.password.c_str(), database,
                         server.port, nullptr, flags) == nullptr) {
    Error e(ErrorKind::unavailable,
            "cannot connect to MariaDB at " + server.to_string() + ": " + mysql_error(conn),
            static_cast<int>(mysql_errno(conn)));
    mysql_close(conn);
    return e;
  }
  return conn;
}

std::string quote_identifier(const std::string& name) {
  std::string out = "`";
  for (char c : name) {
    if (c == '`') out += '`';
    out += c;
  }
  return out + "`";
}

}  // namespace distdb::bench
#endif
