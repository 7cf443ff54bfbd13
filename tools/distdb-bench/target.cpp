#include "target.hpp"

namespace distdb::bench {

// Targets without pipelining never see these called (the runner checks
// Target::supports_pipelining() first); they exist so that such targets need
// not spell them out.
Status Connection::send(const std::string& /*sql*/) {
  return Error(ErrorKind::internal, "this target does not pipeline");
}

OpResult Connection::receive() {
  return OpResult::failure("internal", "this target does not pipeline");
}

}  // namespace distdb::bench
