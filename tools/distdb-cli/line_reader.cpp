#include "line_reader.hpp"

#include <cstdio>
#include <cstdlib>

#ifdef DISTDB_CLI_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

namespace distdb::cli {

std::optional<std::string> StreamLineReader::read_line(const std::string& prompt) {
  out_ << prompt << std::flush;
  std::string line;
  if (!std::getline(in_, line)) return std::nullopt;
  return line;
}

std::string history_file_path() {
  const char* custom = std::getenv("DISTDB_HISTFILE");
  if (custom != nullptr && custom[0] != '\0') return custom;
  const char* home = std::getenv("HOME");
  if (home == nullptr || home[0] == '\0') return {};
  return std::string(home) + "/.distdb_history";
}

#ifdef DISTDB_CLI_HAVE_LIBEDIT

namespace {

constexpr int kHistoryLines = 1000;

class EditLineReader : public LineReader {
 public:
  explicit EditLineReader(std::string history_path) : path_(std::move(history_path)) {
    using_history();
    stifle_history(kHistoryLines);
    if (!path_.empty()) (void)read_history(path_.c_str());
  }
  ~EditLineReader() override = default;
  EditLineReader(const EditLineReader&) = delete;
  EditLineReader& operator=(const EditLineReader&) = delete;

  std::optional<std::string> read_line(const std::string& prompt) override {
    char* raw = readline(prompt.c_str());
    if (raw == nullptr) return std::nullopt;
    std::string line(raw);
    std::free(raw);
    return line;
  }

  void remember(const std::string& line) override {
    if (line.find_first_not_of(" \t") == std::string::npos || line == last_) return;  // blank or repeated
    last_ = line;
    add_history(line.c_str());
    // Saved at once: a shell killed or closed with its terminal keeps its history.
    if (!path_.empty()) (void)write_history(path_.c_str());
  }

 private:
  std::string path_;
  std::string last_;
};

}  // namespace

std::unique_ptr<LineReader> make_editline_reader(const std::string& history_path) {
  return std::make_unique<EditLineReader>(history_path);
}

#else

std::unique_ptr<LineReader> make_editline_reader(const std::string& history_path) {
  (void)history_path;
  return nullptr;
}

#endif

}  // namespace distdb::cli
