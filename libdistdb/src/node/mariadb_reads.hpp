// AsyncReads on MariaDB, through Connector/C's non-blocking API
// (node/async_reads.hpp; how it works: mariadb_reads.cpp).
#pragma once

#include <memory>

#include "node/async_reads.hpp"

namespace distdb {

// Reads on the database of `config` with up to `max_sessions` sessions
// (at least one), opened as reads need them.
std::unique_ptr<AsyncReads> make_mariadb_reads(asio::io_context& loop, DbConfig config, int max_sessions);

}  // namespace distdb
