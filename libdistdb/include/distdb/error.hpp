// Errors and results.
//
// Expected failures (an SQL error, a database that is down, a message that is
// too large) are values, not exceptions: every fallible call returns
// Result<T> or Status. Exceptions are kept for broken invariants only.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

#include "distdb/export.hpp"

namespace distdb {

// What went wrong, as far as a caller needs to decide what to do next.
enum class ErrorKind {
  sql,                  // the database refused the statement (syntax, constraint, ...): code is the backend's
  storage_unavailable,  // the database could not be reached; the statement did not run
  outcome_unknown,      // the connection was lost mid-statement: it may or may not have taken effect
  invalid_request,      // a malformed or unknown message
  message_too_large,    // a message over the configured size limit
  not_coordinator,      // a write reached a node that cannot order it (REDIRECT carries the coordinator)
  no_quorum,            // the cluster has no majority behind a coordinator
  timeout,              // no answer within the deadline
  unavailable,          // connection refused or dropped, node stopping
  unauthenticated,      // the node requires a login first, or the login failed; nothing ran
  config,               // a configuration error
  io,                   // a local I/O error (file, socket)
  internal,             // a bug; should never happen
};

DISTDB_API const char* to_string(ErrorKind kind);

struct Error {
  ErrorKind kind = ErrorKind::internal;
  int code = 0;          // the backend's own error code (MariaDB errno, SQLite result code), 0 if none
  std::string message;   // one line, for a human

  Error() = default;
  Error(ErrorKind k, std::string msg, int c = 0) : kind(k), code(c), message(std::move(msg)) {}
};

// A value or an Error. Modelled on std::expected (C++23), kept minimal.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}           // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}       // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { assert(!ok_); return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace distdb
