// Where the interactive shell's lines come from: a plain stream (pipes,
// files, and terminals when libedit is missing), or libedit with line
// editing and a persistent history (only when stdin and stdout are
// terminals, so that nothing but the text reaches a pipe).
#pragma once

#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

namespace distdb::cli {

class LineReader {
 public:
  virtual ~LineReader() = default;
  // Shows `prompt` and reads one line; nullopt at end of input (Ctrl-D).
  virtual std::optional<std::string> read_line(const std::string& prompt) = 0;
  // Adds a line the user typed to the history (no-op without one).
  virtual void remember(const std::string& line) { (void)line; }
};

// Writes the prompt to `out`, reads with std::getline from `in`.
class StreamLineReader : public LineReader {
 public:
  StreamLineReader(std::istream& in, std::ostream& out) : in_(in), out_(out) {}
  std::optional<std::string> read_line(const std::string& prompt) override;

 private:
  std::istream& in_;
  std::ostream& out_;
};

// ~/.distdb_history, or $DISTDB_HISTFILE when set and non-empty; empty when
// neither it nor $HOME is set.
std::string history_file_path();

// libedit on the terminal, history loaded from and saved to `history_path`
// (none if empty). nullptr when distdb-cli was built without libedit.
std::unique_ptr<LineReader> make_editline_reader(const std::string& history_path);

}  // namespace distdb::cli
