// The event loop of distdb's TCP transport, for work that must wait on
// other descriptors without a thread of its own (node/async_reads.hpp):
// what it registers there runs on the network thread, between frames.
#pragma once

#include <asio/io_context.hpp>

#include "distdb/transport.hpp"

namespace distdb {

// The io_context whose thread delivers `transport`'s frames, when it is the
// transport of make_tcp_transport(); null for any other Transport. Work
// registered on it must be gone (its operations cancelled or completed)
// before the transport's stop() returns: stop() waits for that.
asio::io_context* network_loop(Transport& transport);

}  // namespace distdb
