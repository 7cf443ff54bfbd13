// Prints what statements produced, in the chosen format.
//
//   table  the mariadb client's interactive look: an aligned table, then
//          "N rows in set (0.003 sec)" / "Query OK, N rows affected (...)"
//          and "Node executor: N"; notices on stdout, errors on stderr.
//   tsv    the mariadb client's batch look: a header line and tab-separated
//          rows (NULL as \N), nothing for writes; notices and errors on stderr.
//   json   one JSON object per statement per line on stdout, failures
//          included; notices on stderr.
#pragma once

#include <ostream>
#include <string>

#include "distdb/config.hpp"
#include "messages.hpp"
#include "outcome.hpp"
#include "table_printer.hpp"

namespace distdb::cli {

// "0.003": seconds with three decimals, as the mariadb client shows them.
std::string format_seconds(double seconds);

struct PrinterOptions {
  Format format = Format::table;
  TableOptions table;
  bool blank_line_after = false;  // interactive table output: a blank line after each statement
  bool show_timing = true;        // table output: "(0.003 sec)" after the row count (:timer on|off)
};

class ReplyPrinter {
 public:
  ReplyPrinter(std::ostream& out, std::ostream& err, PrinterOptions options)
      : out_(out), err_(err), options_(options) {}

  // "[!] Redirecting to coordinator (Node 3)", before the statement is re-run there.
  void redirect_notice(const PeerConfig& coordinator);
  // A one-line notice (e.g. a change of node): stdout in table format,
  // stderr otherwise, so that batch and JSON output keep stdout for data.
  void notice(const std::string& line);
  void print(const Outcome& outcome);

  const PrinterOptions& options() const { return options_; }
  void set_show_timing(bool on) { options_.show_timing = on; }

 private:
  void print_json(const Outcome& outcome);
  void print_node(std::ostream& to, const Reply& reply);

  std::ostream& out_;
  std::ostream& err_;
  PrinterOptions options_;
};

}  // namespace distdb::cli
