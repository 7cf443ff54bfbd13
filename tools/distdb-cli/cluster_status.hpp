// A node's STATUS answer, read: the members with their roles and progress,
// and the table :status prints. Pure functions, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "distdb/config.hpp"
#include "distdb/value.hpp"

namespace distdb::cli {

// "host:port", with brackets around IPv6 addresses.
std::string format_address(const std::string& host, std::uint16_t port);

struct MemberStatus {
  std::int64_t id = 0;
  std::string ip;
  std::uint16_t port = 0;  // 0: address unknown
  std::string role;
  bool alive = false;
  bool in_view = false;
  std::optional<std::int64_t> applied_seq;  // unknown before replication runs
  std::optional<std::int64_t> epoch;

  bool is_coordinator() const { return role == "coordinator"; }
  bool has_address() const { return !ip.empty() && port != 0; }
  // "127.0.0.1:5000", or "?" when unknown.
  std::string address() const;
  PeerConfig peer() const;
};

// The rows of a STATUS result (columns id, ip, port, role, alive, in_view,
// applied_seq, epoch, found by name; a missing column leaves its default).
std::vector<MemberStatus> parse_status(const ResultSet& status);

// The member whose role is "coordinator", or nullptr.
const MemberStatus* find_coordinator(const std::vector<MemberStatus>& members);

// The highest epoch any row reports.
std::optional<std::int64_t> cluster_epoch(const std::vector<MemberStatus>& members);

// What :status prints: id, address, role, alive, in_view (yes/no),
// applied_seq and lag (the coordinator's applied_seq minus the member's;
// NULL when either is unknown).
ResultSet status_table(const std::vector<MemberStatus>& members);

}  // namespace distdb::cli
