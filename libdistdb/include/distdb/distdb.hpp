// Everything an application needs: include this one header.
#pragma once

#include "distdb/client.hpp"
#include "distdb/config.hpp"
#include "distdb/error.hpp"
#include "distdb/log.hpp"
#include "distdb/node.hpp"
#include "distdb/reply.hpp"
#include "distdb/storage.hpp"
#include "distdb/transport.hpp"
#include "distdb/value.hpp"
