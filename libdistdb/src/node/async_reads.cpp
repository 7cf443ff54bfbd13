#include "node/async_reads.hpp"

#if DISTDB_WITH_MARIADB
#include "node/mariadb_reads.hpp"
#endif

namespace distdb {

AsyncReads::~AsyncReads() = default;

std::unique_ptr<AsyncReads> make_async_reads(asio::io_context& loop, const StorageConfig& config) {
#if DISTDB_WITH_MARIADB
  if (config.backend == StorageBackend::mariadb) return make_mariadb_reads(loop, config.db, config.pool_size);
#else
  (void)loop;
  (void)config;
#endif
  return nullptr;
}

}  // namespace distdb
