// Cuts the lines a user types into SQL statements, each ended by ';'.
//
// A ';' inside a quoted string ('...', "...", `...`) or a comment (-- ..., # ...,
// /* ... */) does not end a statement; inside quotes a backslash escapes the
// next character, as in MySQL/MariaDB. Statements are returned verbatim
// without the ';', the surrounding blanks and the comments before them
// (comments inside a statement are kept, so are /*! ... */ and /*+ ... */).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace distdb::cli {

class StatementSplitter {
 public:
  // Adds one line (without its newline); returns the statements it completed.
  std::vector<std::string> feed(std::string_view line);

  // True when nothing but blanks and comments is pending.
  bool empty() const { return !has_content_; }

  // The pending unterminated statement (empty if none), and a fresh start.
  std::string take_rest();
  void clear();

 private:
  void begin_content();

  enum class State { normal, single_quote, double_quote, backtick, line_comment, block_comment };

  std::string buffer_;
  State state_ = State::normal;
  bool escaped_ = false;     // the previous character was a backslash inside quotes
  bool has_content_ = false;  // the buffer holds something besides blanks and comments
};

}  // namespace distdb::cli
