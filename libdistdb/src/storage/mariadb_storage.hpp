// The MariaDB/MySQL backend, through MariaDB Connector/C (libmariadb).
#pragma once

#include <memory>

#include "distdb/storage.hpp"

namespace distdb {

Result<std::unique_ptr<Storage>> open_mariadb_storage(const DbConfig& config,
                                                      StorageAccess access = StorageAccess::read_write);

// Whether `user` and `password` log in to the server and database of
// `config` (its own user and password are not used), over TCP, with a
// short timeout; the session is closed at once. OK, or kind
// unauthenticated (refused: the server's message, which never contains the
// password) or storage_unavailable (the server could not be asked).
Status check_mariadb_login(const DbConfig& config, const std::string& user, const std::string& password);

}  // namespace distdb
