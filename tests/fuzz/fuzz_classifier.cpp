// The statement classifier and the statement-boundary check, fed arbitrary
// bytes as SQL (a client can send any string as its query).
//
// classify() never fails; what is checked is that the union of the two
// dialects is what statement.hpp says it is, that replication_refusal()
// follows the classification, and that single_statement() keeps its
// promises to the code that joins statements into one request:
//   - a returned view is a non-empty prefix of the input and is itself
//     returned whole when asked again (it is what gets joined);
//   - a view joined with itself by "\n;\n" is two statements, never one;
//   - what it accepts, the MariaDB reading of classify() does not see as
//     several statements either (two lexers of the same server's rules).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sql/statement.hpp"
#include "sql/statement_boundary.hpp"

namespace {

using namespace distdb::sql;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void check_refusal(const Classification& c) {
  const auto refusal = replication_refusal(c);
  if (c.multiple_statements || c.malformed || c.version_unknown) {
    // Refused whatever the kind (the text's meaning is not known).
    check(refusal.has_value());
    return;
  }
  switch (c.kind) {
    case StatementKind::read:
      check(!refusal.has_value());  // a single read is never refused
      break;
    case StatementKind::transaction_control:
    case StatementKind::session:
      check(refusal.has_value());
      break;
    case StatementKind::write:
      // Refused exactly when something found makes it unsafe to replicate.
      check(refusal.has_value() == (c.nondeterministic.has_value() || c.session_state.has_value() ||
                                    c.reserved_name.has_value() || c.other_database.has_value() ||
                                    c.unreplicable.has_value()));
      break;
  }
  // A refusal is one line that ends with a full stop.
  if (refusal) check(!refusal->empty() && refusal->find('\n') == std::string::npos && refusal->back() == '.');
}

void check_single_statement(std::string_view sql) {
  const auto v = single_statement(sql);
  if (!v) return;
  check(!v->empty());
  check(v->data() == sql.data() && v->size() <= sql.size());  // a prefix, pointing into the input
  const auto again = single_statement(*v);
  check(again.has_value() && again->data() == v->data() && again->size() == v->size());
  check(!classify(sql, Dialect::mariadb).multiple_statements);

  const std::string twice = std::string(*v) + "\n;\n" + std::string(*v);
  check(!single_statement(twice).has_value());
  // Two plain statements joined are two for the classifier too. (A text
  // that opens a compound statement, IF or BEGIN NOT ATOMIC, reads its ';'
  // as part of its body; such text is never joined.)
  const std::string keyword = classify(*v, Dialect::mariadb).first_keyword;
  if (keyword == "INSERT" || keyword == "UPDATE" || keyword == "DELETE" || keyword == "REPLACE" ||
      keyword == "SELECT") {
    check(classify(twice, Dialect::mariadb).multiple_statements);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view sql(reinterpret_cast<const char*>(data), size);

  const Classification any = classify(sql);
  const Classification mariadb = classify(sql, Dialect::mariadb);
  const Classification sqlite = classify(sql, Dialect::sqlite);
  // The union, as statement.hpp describes it: either reading's several
  // statements or non-determinism counts.
  check(any.multiple_statements == (mariadb.multiple_statements || sqlite.multiple_statements));
  check(any.nondeterministic.has_value() ==
        (mariadb.nondeterministic.has_value() || sqlite.nondeterministic.has_value()));
  for (const Classification* c : {&any, &mariadb, &sqlite}) {
    check_refusal(*c);
    (void)to_string(c->kind);
  }

  check_single_statement(sql);
  return 0;
}
