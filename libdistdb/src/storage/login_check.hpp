// Checking a client's user and password against the database a node fronts
// (security.client_auth "database"): MariaDB only.
#pragma once

#include <string>

#include "distdb/config.hpp"
#include "distdb/error.hpp"

namespace distdb {

// OK when `user` and `password` log in to the database of `config` (see
// check_mariadb_login); kind unauthenticated when refused,
// storage_unavailable when the server cannot be asked, config for a backend
// that has no logins (SQLite).
Status check_database_login(const StorageConfig& config, const std::string& user,
                            const std::string& password);

}  // namespace distdb
