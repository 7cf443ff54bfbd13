// Every user-visible string of distdb-cli, in one table.
//
// The table holds the English text; msg() returns the translation for the
// process's locale from the gettext catalogs in po/ (see
// tools/common/translation.hpp). Add new strings here, never inline in the
// code, then run `meson compile -C build distdb-update-po` and translate.
//
// Strings with placeholders use {0}, {1}, ... filled by format_msg(): a
// translation may reorder them, which printf-style formats could not.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "translation.hpp"

namespace distdb::cli {

enum class Msg {
  // start-up (the seed's prompts)
  prompt_node_ip,
  prompt_node_port,
  invalid_port,
  // logins
  prompt_user,
  prompt_user_no_default,
  prompt_password,
  login_hint,
  no_password,
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
  tls_no_verify_warning,
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
  interrupt_while_running,
  interrupt_abandoned,
  count_  // not a message: the number of them
};

// The text of `id` in the current language.
const char* msg(Msg id);
// The text of `id` in English, the source language.
const char* english_msg(Msg id);

inline std::string tr(Msg id, const std::vector<std::string>& args = {}) {
  return tools::fill_placeholders(msg(id), args);
}

}  // namespace distdb::cli
