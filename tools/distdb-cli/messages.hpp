// Every user-visible string of distdb-cli, in one table.
//
// The first version speaks English, plus Portuguese for the strings the seed
// client printed (its users know them). A later gettext pass replaces this
// table; until then add new strings here, never inline in the code.
//
// Strings with placeholders use {0}, {1}, ... filled by format_msg().
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace distdb::cli {

enum class Lang { en, pt };

// Portuguese when LC_ALL, LC_MESSAGES or LANG (the first one set and
// non-empty, in that order, as setlocale does) starts with "pt".
Lang detect_language(const char* lc_all, const char* lc_messages, const char* lang);
Lang detect_language_from_env();

enum class Msg {
  // start-up (the seed's prompts)
  prompt_node_ip,
  prompt_node_port,
  invalid_port,
  // banner and help
  banner_title,
  banner_hint,
  help_text,
  // results
  rows_in_set_one,
  rows_in_set_many,
  empty_set,
  query_ok_one,
  query_ok_many,
  rows_in_set_one_untimed,
  rows_in_set_many_untimed,
  empty_set_untimed,
  query_ok_one_untimed,
  query_ok_many_untimed,
  node_executor,
  redirecting,
  error_line,
  // connection and protocol problems
  cannot_connect,
  connection_lost,
  outcome_unknown_hint,
  too_many_redirects,
  redirect_without_coordinator,
  moved_to_member,
  no_member_reachable,
  failover_in_progress,
  // commands
  unknown_command,
  node_usage,
  info_address,
  info_node,
  info_coordinator,
  info_coordinator_unknown,
  info_not_connected,
  status_epoch,
  status_epoch_unknown,
  timer_state_on,
  timer_state_off,
  timer_usage,
  bye,
};

const char* msg(Msg id, Lang lang);

// Replaces {0}, {1}, ... in `pattern` by the arguments.
std::string format_msg(std::string_view pattern, const std::vector<std::string>& args);

inline std::string tr(Lang lang, Msg id, const std::vector<std::string>& args = {}) {
  return format_msg(msg(id, lang), args);
}

}  // namespace distdb::cli
