// distdb-cli: the database shell.
//
//   distdb-cli                      asks for the node (on a terminal), then a prompt
//   distdb-cli -h HOST -P PORT      connects to HOST:PORT
//   distdb-cli -e "SELECT 1"        runs the statements, prints, exits
//   distdb-cli < script.sql         runs the statements read from standard input
//   distdb-cli --tls-ca ca.crt ...  TLS, the node's certificate checked against ca.crt
//   distdb-cli -u USER ...          logs in as USER (password: $DISTDB_PASSWORD, -p, or asked)
//
// Flags follow the mariadb client's. Exit status: 0 when everything
// succeeded, 1 when a statement failed, 2 for usage or connection errors.
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "interrupt.hpp"
#include "line_reader.hpp"
#include "messages.hpp"
#include "reply_printer.hpp"
#include "session.hpp"
#include "shell.hpp"
#include "terminal.hpp"
#include "translation.hpp"

namespace {

using distdb::cli::Format;

constexpr const char* kDescription = N_(
    "distdb-cli: the distdb database shell. Connects to any node of a cluster;\n"
    "writes sent to a node that is not the coordinator are redirected to it.");

constexpr const char* kFooter =
    N_("Input: with -e, the statements of its argument; otherwise standard input.\n"
       "On a terminal: prompts (and, without --host/--port, the node is asked for),\n"
       "statements end with ';' and may span lines, ':help' lists the commands.\n"
       "From a pipe or file: no prompts; the first failed statement stops the run\n"
       "unless --force is given.\n"
       "\n"
       "Output format (--format): 'table' on a terminal and with -e (aligned table,\n"
       "row count, time and executing node, like the mariadb client's interactive\n"
       "output); 'tsv' when statements come from a pipe or file (header line and\n"
       "tab-separated rows, NULL as \\N, like the mariadb client's batch output);\n"
       "'json' gives one JSON object per statement per line.\n"
       "\n"
       "Logins: nodes with client authentication want a user and password. -u USER\n"
       "gives the user; the password comes from $DISTDB_PASSWORD (preferred), from -p,\n"
       "or, on a terminal, is asked for without echo. A password given with -p is\n"
       "visible to other users of this machine (in the process list): prefer the\n"
       "variable. Without -u, an interactive shell asks for a user and password when\n"
       "the node requires them, and runs the statement again.\n"
       "\n"
       "Exit status: 0 all statements succeeded (and always after an interactive\n"
       "session), 1 a statement failed, 2 usage or connection error.\n"
       "Messages follow the locale (LC_ALL, LC_MESSAGES, LANG): Portuguese under pt_*.\n"
       "\n"
       "On a terminal, lines can be edited and earlier ones recalled with the arrow\n"
       "keys; the history is kept in ~/.distdb_history ($DISTDB_HISTFILE if set).\n"
       "\n"
       "TLS (for nodes with security.tls): the node's certificate must chain to the\n"
       "CA certificates of --tls-ca (else to the system's trust store) and be valid\n"
       "for the host given with --host. --tls-cert and --tls-key present a client\n"
       "certificate, for nodes that ask for one.");

}  // namespace

int main(int argc, char** argv) {
  namespace cli = distdb::cli;
  using distdb::tools::translate;
  distdb::tools::init_translation();

  CLI::App app{translate(kDescription), "distdb-cli"};
  app.set_help_flag("--help", translate(N_("Print this help and exit")));  // -h is --host, as in the mariadb client
  app.set_version_flag("--version", std::string("distdb-cli ") + DISTDB_VERSION,
                      translate(N_("Print the version and exit")));
  app.footer(translate(kFooter));

  std::string host = cli::kDefaultHost;
  std::uint16_t port = cli::kDefaultPort;
  std::string execute;
  std::string format_name;
  bool force = false;
  distdb::ClientTls tls;
  bool tls_no_verify = false;
  const std::map<std::string, Format> formats{{"table", Format::table}, {"tsv", Format::tsv}, {"json", Format::json}};

  auto* host_opt = app.add_option("-h,--host", host, translate(N_("Node to connect to (default 127.0.0.1)")))->option_text("HOST");
  auto* port_opt = app.add_option("-P,--port", port, translate(N_("The node's port (default 5000)")))
                       ->check(CLI::Range(1, 65535))
                       ->option_text("PORT");
  auto* exec_opt = app.add_option("-e,--execute", execute, translate(N_("Run these statements, print their results and exit")))
                       ->option_text("SQL");
  auto* format_opt = app.add_option("--format", format_name, translate(N_("Output format (default: see below)")))
                         ->check(CLI::IsMember({"table", "tsv", "json"}))
                         ->option_text("table|tsv|json");
  app.add_flag("-f,--force", force, translate(N_("Go on after a failed statement (pipes, files, -e)")));
  app.add_flag("--tls", tls.enabled, translate(N_("Connect with TLS, checking the node's certificate")));
  auto* tls_ca_opt =
      app.add_option(
             "--tls-ca", tls.ca_file,
             translate(
                 N_("Check the node's certificate against the CA certificates in FILE (PEM); implies --tls")))
          ->check(CLI::ExistingFile)
          ->option_text("FILE");
  auto* tls_cert_opt =
      app.add_option(
             "--tls-cert", tls.certificate_file,
             translate(N_("Present the client certificate in FILE (PEM, with --tls-key); implies --tls")))
          ->check(CLI::ExistingFile)
          ->option_text("FILE");
  auto* tls_key_opt = app.add_option("--tls-key", tls.key_file,
                                     translate(N_("The private key of --tls-cert (PEM, not encrypted)")))
                          ->check(CLI::ExistingFile)
                          ->option_text("FILE");
  tls_cert_opt->needs(tls_key_opt);
  tls_key_opt->needs(tls_cert_opt);
  app.add_flag(
      "--tls-no-verify", tls_no_verify,
      translate(N_("Do not check the node's certificate (INSECURE, for tests only); implies --tls")));
  std::string user;
  std::string password;
  auto* user_opt =
      app.add_option("-u,--user", user, translate(N_("Log in as this user")))->option_text("USER");
  auto* password_opt =
      app.add_option(
             "-p,--password", password,
             translate(N_("The user's password (visible to other local users: prefer $DISTDB_PASSWORD)")))
          ->option_text("PASS");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? cli::kExitOk : cli::kExitUsageOrConnection;
  }

  tls.enabled = tls.enabled || tls_ca_opt->count() > 0 || tls_cert_opt->count() > 0 || tls_no_verify;
  tls.verify = !tls_no_verify;
  if (tls_no_verify) std::cerr << cli::tr(cli::Msg::tls_no_verify_warning) << '\n';
  distdb::ClientOptions client_options;
  client_options.tls = tls;

  const bool has_execute = exec_opt->count() > 0;
  const bool interactive = !has_execute && isatty(STDIN_FILENO) == 1;
  const bool ask_for_node = interactive && host_opt->count() == 0 && port_opt->count() == 0;

  cli::PrinterOptions printer_options;
  printer_options.format = format_opt->count() > 0 ? formats.at(format_name)
                                                   : (interactive || has_execute ? Format::table : Format::tsv);
  printer_options.blank_line_after = interactive;

  if (password_opt->count() > 0 && user_opt->count() == 0) {
    std::cerr << "distdb-cli: --password needs --user\n";
    return cli::kExitUsageOrConnection;
  }
  if (user_opt->count() > 0) {
    client_options.user = user;
    if (password_opt->count() > 0) {
      client_options.password = password;
    } else if (const char* env = std::getenv("DISTDB_PASSWORD"); env != nullptr) {
      client_options.password = env;
    } else if (isatty(STDIN_FILENO) == 1) {
      auto typed =
          distdb::tools::read_secret_line(STDIN_FILENO, std::cerr, cli::tr(cli::Msg::prompt_password));
      if (!typed) return cli::kExitUsageOrConnection;
      client_options.password = std::move(*typed);
    } else {
      std::cerr << "distdb-cli: " << cli::tr(cli::Msg::no_password, {user}) << '\n';
      return cli::kExitUsageOrConnection;
    }
  }

  cli::Session session(host, port, client_options);
  cli::ReplyPrinter printer(std::cout, std::cerr, printer_options);
  cli::ShellOptions shell_options;
  shell_options.interactive = interactive;
  shell_options.force = force;
  // Line editing and history only when both ends are a terminal: no control
  // codes ever reach a pipe or a file.
  std::unique_ptr<cli::LineReader> editor;
  if (interactive && isatty(STDOUT_FILENO) == 1) editor = cli::make_editline_reader(cli::history_file_path());
  cli::Shell shell(session, printer, std::cin, std::cout, std::cerr, shell_options, editor.get());

  if (has_execute) return shell.run_text(execute);
  if (interactive) {
    const cli::InterruptHandler ctrl_c;
    return shell.run_interactive(ask_for_node);
  }
  return shell.run_batch();
}
