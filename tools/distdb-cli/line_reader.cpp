#include "line_reader.hpp"

#include <cstdio>
#include <cstdlib>

#include <unistd.h>

#include <cerrno>

#include "interrupt.hpp"

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

// Set when Ctrl-C ended the editor's wait for a key.
bool g_editing_interrupted = false;

// The editor's keys, read so that Ctrl-C ends the wait (see interrupt.hpp):
// the editor then returns what was typed, which read_line() drops. A Ctrl-C
// that comes after Enter is not the line's: the statement runs, and the
// press is answered as one during a running statement.
int interruptible_getc(FILE* stream) {
  const int fd = fileno(stream);
  for (;;) {
    if (!InterruptHandler::wait_readable(fd)) {
      g_editing_interrupted = true;
      return EOF;
    }
    unsigned char c = 0;
    const ssize_t n = ::read(fd, &c, 1);
    if (n == 1) return c;
    if (n < 0 && errno == EINTR) continue;
    return EOF;
  }
}

class EditLineReader : public LineReader {
 public:
  explicit EditLineReader(std::string history_path) : path_(std::move(history_path)) {
    // Before the editor initialises (using_history() does): it takes the
    // key reader into account only then.
    rl_getc_function = interruptible_getc;
    using_history();
    stifle_history(kHistoryLines);
    if (!path_.empty()) (void)read_history(path_.c_str());
  }
  ~EditLineReader() override = default;
  EditLineReader(const EditLineReader&) = delete;
  EditLineReader& operator=(const EditLineReader&) = delete;

  std::optional<std::string> read_line(const std::string& prompt) override {
    g_editing_interrupted = false;
    char* raw = readline(prompt.c_str());
    if (raw == nullptr) return std::nullopt;
    std::string line(raw);
    std::free(raw);
    if (g_editing_interrupted) return std::nullopt;  // Ctrl-C while typing: the line is dropped
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
