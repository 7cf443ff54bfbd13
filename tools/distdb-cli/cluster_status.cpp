#include "cluster_status.hpp"

#include <string_view>
#include <variant>

namespace distdb::cli {

namespace {

std::optional<std::size_t> column_of(const ResultSet& rs, std::string_view name) {
  for (std::size_t i = 0; i < rs.columns.size(); ++i) {
    if (rs.columns[i] == name) return i;
  }
  return std::nullopt;
}

std::optional<std::int64_t> int_at(const Row& row, std::optional<std::size_t> col) {
  if (!col || *col >= row.size()) return std::nullopt;
  if (const auto* v = std::get_if<std::int64_t>(&row[*col])) return *v;
  return std::nullopt;
}

std::string text_at(const Row& row, std::optional<std::size_t> col) {
  if (!col || *col >= row.size()) return {};
  if (const auto* v = std::get_if<std::string>(&row[*col])) return *v;
  return {};
}

Value yes_no(bool b) { return std::string(b ? "yes" : "no"); }

Value int_or_null(std::optional<std::int64_t> v) { return v ? Value(*v) : Value(std::monostate{}); }

}  // namespace

std::string format_address(const std::string& host, std::uint16_t port) {
  const bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string MemberStatus::address() const { return has_address() ? format_address(ip, port) : "?"; }

PeerConfig MemberStatus::peer() const { return PeerConfig{static_cast<NodeId>(id), ip, port}; }

std::vector<MemberStatus> parse_status(const ResultSet& status) {
  const auto id = column_of(status, "id");
  const auto ip = column_of(status, "ip");
  const auto port = column_of(status, "port");
  const auto role = column_of(status, "role");
  const auto alive = column_of(status, "alive");
  const auto in_view = column_of(status, "in_view");
  const auto applied = column_of(status, "applied_seq");
  const auto epoch = column_of(status, "epoch");
  std::vector<MemberStatus> members;
  for (const Row& row : status.rows) {
    MemberStatus m;
    m.id = int_at(row, id).value_or(0);
    m.ip = text_at(row, ip);
    const std::int64_t p = int_at(row, port).value_or(0);
    m.port = p > 0 && p <= 65535 ? static_cast<std::uint16_t>(p) : 0;
    m.role = text_at(row, role);
    m.alive = int_at(row, alive).value_or(0) != 0;
    m.in_view = int_at(row, in_view).value_or(0) != 0;
    m.applied_seq = int_at(row, applied);
    m.epoch = int_at(row, epoch);
    members.push_back(std::move(m));
  }
  return members;
}

const MemberStatus* find_coordinator(const std::vector<MemberStatus>& members) {
  for (const MemberStatus& m : members) {
    if (m.is_coordinator()) return &m;
  }
  return nullptr;
}

std::optional<std::int64_t> cluster_epoch(const std::vector<MemberStatus>& members) {
  std::optional<std::int64_t> epoch;
  for (const MemberStatus& m : members) {
    if (m.epoch && (!epoch || *m.epoch > *epoch)) epoch = m.epoch;
  }
  return epoch;
}

ResultSet status_table(const std::vector<MemberStatus>& members) {
  ResultSet table;
  table.columns = {"id", "address", "role", "alive", "in_view", "applied_seq", "lag"};
  const MemberStatus* coordinator = find_coordinator(members);
  // Plain values rather than std::optional: GCC's -Wmaybe-uninitialized
  // misreads an optional copied out of another one here.
  const bool head_known = coordinator != nullptr && coordinator->applied_seq.has_value();
  const std::int64_t head = head_known ? coordinator->applied_seq.value() : 0;
  for (const MemberStatus& m : members) {
    std::optional<std::int64_t> lag;
    if (head_known && m.applied_seq.has_value()) lag = head - m.applied_seq.value();
    table.rows.push_back(Row{m.id, m.address(), m.role, yes_no(m.alive), yes_no(m.in_view),
                             int_or_null(m.applied_seq), int_or_null(lag)});
  }
  return table;
}

}  // namespace distdb::cli
