// Symbol visibility for libdistdb. Everything is hidden by default; the
// public API is marked DISTDB_API.
#pragma once

#if defined(DISTDB_BUILDING_LIBRARY) && defined(__GNUC__)
#define DISTDB_API __attribute__((visibility("default")))
#else
#define DISTDB_API
#endif
