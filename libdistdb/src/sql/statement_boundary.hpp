// Where a MariaDB server would end a statement: the check that lets several
// statements travel in one multi-statement request.
//
// Sending "s1\n;\ns2\n;\ns3" in one round trip is only the same as sending
// s1, s2 and s3 one at a time if the server splits the text exactly at the
// separators we put in. A statement that ends inside a string, a quoted
// identifier or a block comment would swallow the separator and the next
// statement (a client could even craft two statements that combine into a
// third); one that holds a ';' of its own would split into two; a MariaDB
// executable comment (/*! ... */) is code whose extent we do not model. Such
// text must never be joined.
//
// The server's lexer depends on its sql_mode: with NO_BACKSLASH_ESCAPES a
// backslash inside '...' is an ordinary character, and with ANSI_QUOTES
// "..." is an identifier (where a backslash never escapes). Rather than ask
// the server, the text is read both ways — backslash as an escape and as a
// plain character — and accepted only when both readings agree that it is
// one complete statement. A text like 'a\'' (a complete string one way, an
// open one the other) is therefore refused, whatever the mode is.
//
// Lexical rules (MariaDB 10.x): '...' and "..." strings and `...`
// identifiers, a doubled quote character standing for itself; /* ... */
// comments (not nested); `#` and `-- ` (two dashes then a blank, a control
// character, DEL or the end of the text) comments up to the end of the
// line. Text whose code ends in "--" (as in "a = 1--;") is refused: the
// dashes are code before the ';' but would start a comment once the ';' is
// cut off and a newline follows.
#pragma once

#include <optional>
#include <string_view>

namespace distdb::sql {

// The text of `sql` as one statement, without a final ';' and trailing
// blanks, when every reading above sees exactly one complete, non-empty
// statement; nullopt otherwise (several statements, an unterminated string,
// identifier or comment, an executable comment, a NUL byte, nothing but
// blanks and comments). The returned view points into `sql`. Joining the
// views with "\n;\n" gives a text the server splits back into exactly those
// statements, whatever its sql_mode (a trailing line comment is ended by the
// newline).
std::optional<std::string_view> single_statement(std::string_view sql);

}  // namespace distdb::sql
