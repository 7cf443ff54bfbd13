// The SQLite backend (embedded; the default storage).
#pragma once

#include <memory>
#include <string>

#include "distdb/storage.hpp"

namespace distdb {

// Opens (creating if needed) the database file at `path`.
Result<std::unique_ptr<Storage>> open_sqlite_storage(const std::string& path,
                                                     StorageAccess access = StorageAccess::read_write);

}  // namespace distdb
