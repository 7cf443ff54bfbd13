#include "messages.hpp"

#include "translation.hpp"

#include <array>

namespace distdb::cli {

namespace {

struct Entry {
  Msg id;
  const char* english;
};

// clang-format off
constexpr std::array kMessages{
  Entry{Msg::prompt_node_ip, N_("Node IP: ")},
  Entry{Msg::prompt_node_port, N_("Node port: ")},
  Entry{Msg::invalid_port, N_("invalid port '{0}': expected a number from 1 to 65535")},

  Entry{Msg::prompt_user, N_("User [{0}]: ")},
  Entry{Msg::prompt_user_no_default, N_("User: ")},
  Entry{Msg::prompt_password, N_("Password: ")},
  Entry{Msg::login_hint, N_("the node requires a login: give -u USER, and the password in DISTDB_PASSWORD (or -p)")},
  Entry{Msg::no_password, N_("no password for user '{0}': set DISTDB_PASSWORD, or run on a terminal to be asked for it")},

  Entry{Msg::banner_title, N_("distdb-cli {0}. SQL statements end with ';' and may span lines.")},
  Entry{Msg::banner_hint, N_("Commands: :node [HOST PORT], :info, :status, :leader, :check, :timer on|off, :help, :exit (or Ctrl-D).")},
  Entry{Msg::help_text,
        N_("Commands (a line starting with ':'):\n"
        "  :node [HOST PORT]  connect to another node (asks for it without arguments)\n"
        "  :info              the node's address and id, and the coordinator if known\n"
        "  :status            every member: id, address, role, alive, in view, applied\n"
        "                     sequence number and lag behind the coordinator; the epoch\n"
        "  :leader            the coordinator's id and address\n"
        "  :check             every member compares a checksum of its data; one that\n"
        "                     differs takes a full copy (then :status shows it)\n"
        "  :timer on|off      show or hide the time statements take (on by default)\n"
        "  :help              this list\n"
        "  :exit, :quit       leave (also exit, quit, \\q and Ctrl-D)\n"
        "Anything else is SQL: a statement ends with ';' and may span lines.")},

  Entry{Msg::rows_in_set_one, N_("1 row in set ({0} sec)")},
  Entry{Msg::rows_in_set_many, N_("{0} rows in set ({1} sec)")},
  Entry{Msg::empty_set, N_("Empty set ({0} sec)")},
  Entry{Msg::query_ok_one, N_("Query OK, 1 row affected ({0} sec)")},
  Entry{Msg::query_ok_many, N_("Query OK, {0} rows affected ({1} sec)")},
  Entry{Msg::rows_in_set_one_untimed, N_("1 row in set")},
  Entry{Msg::rows_in_set_many_untimed, N_("{0} rows in set")},
  Entry{Msg::empty_set_untimed, N_("Empty set")},
  Entry{Msg::query_ok_one_untimed, N_("Query OK, 1 row affected")},
  Entry{Msg::query_ok_many_untimed, N_("Query OK, {0} rows affected")},
  Entry{Msg::node_executor, N_("Node executor: {0}")},
  Entry{Msg::redirecting, N_("[!] Redirecting to coordinator (Node {0})")},
  Entry{Msg::error_line, N_("ERROR {0} ({1}): {2}")},

  Entry{Msg::cannot_connect, N_("cannot connect to {0}: {1}")},
  Entry{Msg::connection_lost, N_("connection to {0} lost: {1}")},
  Entry{Msg::outcome_unknown_hint, N_("the statement may or may not have taken effect")},
  Entry{Msg::too_many_redirects, N_("too many redirects (more than {0}): last coordinator named was node {1} at {2}")},
  Entry{Msg::redirect_without_coordinator, N_("node {0} answered REDIRECT without naming a coordinator")},
  Entry{Msg::moved_to_member, N_("[!] {0} is unreachable; moved to node {1} ({2})")},
  Entry{Msg::no_member_reachable, N_("{0} (no other known member reachable)")},
  Entry{Msg::failover_in_progress, N_("{0} (a failover may be in progress; retried for {1} s, try again shortly)")},
  Entry{Msg::tls_no_verify_warning, N_("warning: --tls-no-verify: the node's certificate is not checked; the connection is encrypted, but anyone on the network path can pose as the node")},

  Entry{Msg::unknown_command, N_("unknown command '{0}'; type :help for the list of commands (SQL never starts with ':')")},
  Entry{Msg::node_usage, N_("usage: :node HOST PORT  (or :node HOST:PORT)")},
  Entry{Msg::info_address, N_("Address: {0}")},
  Entry{Msg::info_node, N_("Node id: {0}")},
  Entry{Msg::info_coordinator, N_("Coordinator: Node {0} ({1})")},
  Entry{Msg::info_coordinator_unknown, N_("Coordinator: unknown")},
  Entry{Msg::info_not_connected, N_("not connected")},
  Entry{Msg::status_epoch, N_("Epoch: {0}")},
  Entry{Msg::status_epoch_unknown, N_("Epoch: unknown")},
  Entry{Msg::timer_state_on, N_("Timer is on")},
  Entry{Msg::timer_state_off, N_("Timer is off")},
  Entry{Msg::timer_usage, N_("usage: :timer on|off")},
  Entry{Msg::bye, N_("Bye")},
  Entry{Msg::interrupt_while_running, N_("The statement was sent and cannot be recalled; waiting for its outcome (Ctrl-C again to leave without it)")},
  Entry{Msg::interrupt_abandoned, N_("Left without waiting: the statement may or may not have taken effect")},
};
// clang-format on

}  // namespace

const char* english_msg(Msg id) {
  for (const Entry& e : kMessages) {
    if (e.id == id) return e.english;
  }
  return "?";
}

const char* msg(Msg id) { return tools::translate(english_msg(id)); }


}  // namespace distdb::cli
