// The MariaDB/MySQL backend, through MariaDB Connector/C (libmariadb).
#pragma once

#include <memory>

#include "distdb/storage.hpp"

namespace distdb {

Result<std::unique_ptr<Storage>> open_mariadb_storage(const DbConfig& config);

}  // namespace distdb
