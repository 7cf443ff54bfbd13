#include "statement_splitter.hpp"

namespace distdb::cli {

namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string trimmed(std::string_view s) {
  std::size_t b = 0;
  std::size_t e = s.size();
  while (b < e && is_blank(s[b])) ++b;
  while (e > b && is_blank(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

}  // namespace

std::vector<std::string> StatementSplitter::feed(std::string_view line) {
  std::vector<std::string> done;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    const char next = i + 1 < line.size() ? line[i + 1] : '\0';
    switch (state_) {
      case State::normal:
        if (c == ';') {
          if (has_content_) done.push_back(trimmed(buffer_));
          buffer_.clear();
          has_content_ = false;
          continue;
        }
        if (c == '\'' || c == '"' || c == '`') {
          state_ = c == '\'' ? State::single_quote : c == '"' ? State::double_quote : State::backtick;
          begin_content();
        } else if (c == '#' || (c == '-' && next == '-' && (i + 2 >= line.size() || is_blank(line[i + 2])))) {
          state_ = State::line_comment;
        } else if (c == '/' && next == '*') {
          // /*! ... */ and /*+ ... */ are executable comments and optimizer hints: SQL.
          const char third = i + 2 < line.size() ? line[i + 2] : '\0';
          if (third == '!' || third == '+') begin_content();
          state_ = State::block_comment;
          buffer_ += "/*";
          ++i;
          continue;
        } else if (!is_blank(c)) {
          begin_content();
        }
        break;
      case State::single_quote:
      case State::double_quote:
      case State::backtick: {
        const char quote = state_ == State::single_quote ? '\'' : state_ == State::double_quote ? '"' : '`';
        if (escaped_) {
          escaped_ = false;
        } else if (c == '\\' && state_ != State::backtick) {
          escaped_ = true;
        } else if (c == quote) {
          // A doubled quote stays inside the string: leaving and re-entering does that.
          state_ = State::normal;
        }
        break;
      }
      case State::line_comment:
        break;
      case State::block_comment:
        if (c == '*' && next == '/') {
          state_ = State::normal;
          buffer_ += "*/";
          ++i;
          continue;
        }
        break;
    }
    buffer_ += c;
  }
  if (state_ == State::line_comment) state_ = State::normal;
  buffer_ += '\n';
  return done;
}

void StatementSplitter::begin_content() {
  // Blanks and comments before a statement are dropped, not sent.
  if (!has_content_) buffer_.clear();
  has_content_ = true;
}

std::string StatementSplitter::take_rest() {
  std::string rest = has_content_ ? trimmed(buffer_) : std::string();
  clear();
  return rest;
}

void StatementSplitter::clear() {
  buffer_.clear();
  state_ = State::normal;
  escaped_ = false;
  has_content_ = false;
}

}  // namespace distdb::cli
