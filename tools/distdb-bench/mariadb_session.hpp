// Opening a MariaDB session for the targets that talk to MariaDB directly
// (direct, two-phase), with the same settings for both.
#pragma once

#ifdef DISTDB_BENCH_HAVE_MARIADB
#include <mysql.h>

#include <string>

#include "distdb/error.hpp"
#include "options.hpp"

namespace distdb::bench {

// Initialises Connector/C once (mysql_init() would do it on first use, but
// not in a thread-safe way, and every benchmark thread opens sessions).
void init_mariadb_library();

// Connects to `server` as options.user; `with_database` selects
// options.database. `flags` are mysql_real_connect()'s client flags.
Result<MYSQL*> open_mariadb_session(const Options& options, const Endpoint& server, bool with_database,
                                    unsigned long flags = 0);

// Connector/C reports its own failures (connection refused, lost, ...) with
// codes 2000-2999 (CR_* in errmsg.h); the server's own errors are below.
inline bool is_client_error(unsigned int code) {
  return code >= 2000 && code < 3000;
}

std::string quote_identifier(const std::string& name);

}  // namespace distdb::bench
#endif
