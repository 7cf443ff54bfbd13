#include "messages.hpp"

#include <array>
#include <cstddef>

namespace distdb::cli {

namespace {

bool starts_with_pt(const char* value) {
  return value != nullptr && value[0] == 'p' && value[1] == 't' &&
         (value[2] == '\0' || value[2] == '_' || value[2] == '-' || value[2] == '.' || value[2] == '@');
}

bool is_set(const char* value) { return value != nullptr && value[0] != '\0'; }

struct Entry {
  Msg id;
  const char* en;
  const char* pt;  // nullptr: not translated yet, English is used
};

// clang-format off
constexpr std::array kMessages{
  Entry{Msg::prompt_node_ip, "Node IP: ", "IP do nó middleware: "},
  Entry{Msg::prompt_node_port, "Node port: ", "Porta do nó: "},
  Entry{Msg::invalid_port, "invalid port '{0}': expected a number from 1 to 65535", nullptr},

  Entry{Msg::banner_title, "distdb-cli {0}. SQL statements end with ';' and may span lines.", nullptr},
  Entry{Msg::banner_hint, "Commands: :node [HOST PORT], :info, :status, :leader, :timer on|off, :help, :exit (or Ctrl-D).", nullptr},
  Entry{Msg::help_text,
        "Commands (a line starting with ':'):\n"
        "  :node [HOST PORT]  connect to another node (asks for it without arguments)\n"
        "  :info              the node's address and id, and the coordinator if known\n"
        "  :status            every member: id, address, role, alive, in view, applied\n"
        "                     sequence number and lag behind the coordinator; the epoch\n"
        "  :leader            the coordinator's id and address\n"
        "  :timer on|off      show or hide the time statements take (on by default)\n"
        "  :help              this list\n"
        "  :exit, :quit       leave (also exit, quit, \\q and Ctrl-D)\n"
        "Anything else is SQL: a statement ends with ';' and may span lines.", nullptr},

  Entry{Msg::rows_in_set_one, "1 row in set ({0} sec)", nullptr},
  Entry{Msg::rows_in_set_many, "{0} rows in set ({1} sec)", nullptr},
  Entry{Msg::empty_set, "Empty set ({0} sec)", nullptr},
  Entry{Msg::query_ok_one, "Query OK, 1 row affected ({0} sec)", nullptr},
  Entry{Msg::query_ok_many, "Query OK, {0} rows affected ({1} sec)", nullptr},
  Entry{Msg::rows_in_set_one_untimed, "1 row in set", nullptr},
  Entry{Msg::rows_in_set_many_untimed, "{0} rows in set", nullptr},
  Entry{Msg::empty_set_untimed, "Empty set", nullptr},
  Entry{Msg::query_ok_one_untimed, "Query OK, 1 row affected", nullptr},
  Entry{Msg::query_ok_many_untimed, "Query OK, {0} rows affected", nullptr},
  Entry{Msg::node_executor, "Node executor: {0}", "Nó executor: {0}"},
  Entry{Msg::redirecting, "[!] Redirecting to coordinator (Node {0})", "[!] Redirecionando para coordenador (Nó {0})"},
  Entry{Msg::error_line, "ERROR {0} ({1}): {2}", nullptr},

  Entry{Msg::cannot_connect, "cannot connect to {0}: {1}", nullptr},
  Entry{Msg::connection_lost, "connection to {0} lost: {1}", nullptr},
  Entry{Msg::outcome_unknown_hint, "the statement may or may not have taken effect", nullptr},
  Entry{Msg::too_many_redirects, "too many redirects (more than {0}): last coordinator named was node {1} at {2}", nullptr},
  Entry{Msg::redirect_without_coordinator, "node {0} answered REDIRECT without naming a coordinator", nullptr},
  Entry{Msg::moved_to_member, "[!] {0} is unreachable; moved to node {1} ({2})", nullptr},
  Entry{Msg::no_member_reachable, "{0} (no other known member reachable)", nullptr},
  Entry{Msg::failover_in_progress, "{0} (a failover may be in progress; retried for {1} s, try again shortly)", nullptr},

  Entry{Msg::unknown_command, "unknown command '{0}'; type :help for the list of commands (SQL never starts with ':')", nullptr},
  Entry{Msg::node_usage, "usage: :node HOST PORT  (or :node HOST:PORT)", nullptr},
  Entry{Msg::info_address, "Address: {0}", nullptr},
  Entry{Msg::info_node, "Node id: {0}", nullptr},
  Entry{Msg::info_coordinator, "Coordinator: Node {0} ({1})", nullptr},
  Entry{Msg::info_coordinator_unknown, "Coordinator: unknown", nullptr},
  Entry{Msg::info_not_connected, "not connected", nullptr},
  Entry{Msg::status_epoch, "Epoch: {0}", nullptr},
  Entry{Msg::status_epoch_unknown, "Epoch: unknown", nullptr},
  Entry{Msg::timer_state_on, "Timer is on", nullptr},
  Entry{Msg::timer_state_off, "Timer is off", nullptr},
  Entry{Msg::timer_usage, "usage: :timer on|off", nullptr},
  Entry{Msg::bye, "Bye", nullptr},
};
// clang-format on

}  // namespace

Lang detect_language(const char* lc_all, const char* lc_messages, const char* lang) {
  for (const char* value : {lc_all, lc_messages, lang}) {
    if (is_set(value)) return starts_with_pt(value) ? Lang::pt : Lang::en;
  }
  return Lang::en;
}

Lang detect_language_from_env() {
  return detect_language(std::getenv("LC_ALL"), std::getenv("LC_MESSAGES"), std::getenv("LANG"));
}

const char* msg(Msg id, Lang lang) {
  for (const Entry& e : kMessages) {
    if (e.id == id) return (lang == Lang::pt && e.pt != nullptr) ? e.pt : e.en;
  }
  return "?";
}

std::string format_msg(std::string_view pattern, const std::vector<std::string>& args) {
  std::string out;
  out.reserve(pattern.size() + 16);
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '{' && i + 2 < pattern.size() && pattern[i + 2] == '}' && pattern[i + 1] >= '0' && pattern[i + 1] <= '9') {
      const auto index = static_cast<std::size_t>(pattern[i + 1] - '0');
      if (index < args.size()) out += args[index];
      i += 2;
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace distdb::cli
