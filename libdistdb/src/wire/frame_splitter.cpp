#include "wire/frame_splitter.hpp"

#include <cstdio>

namespace distdb::wire {
namespace {

bool is_json_whitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Names a stray byte in an error message without echoing control characters
// or half of a multi-byte sequence into the log.
std::string describe_byte(char c) {
  const auto u = static_cast<unsigned char>(c);
  char buf[32];
  if (u >= 0x21 && u < 0x7f) {
    std::snprintf(buf, sizeof buf, "'%c'", c);
  } else {
    std::snprintf(buf, sizeof buf, "byte 0x%02x", static_cast<unsigned>(u));
  }
  return buf;
}

}  // namespace

Status FrameSplitter::feed(std::string_view bytes, std::vector<std::string>& frames) {
  if (failed_) {
    return Error(ErrorKind::invalid_request, "the message stream is already broken");
  }
  std::size_t i = 0;
  const std::size_t n = bytes.size();
  while (i < n) {
    if (partial_.empty()) {
      // Between frames: skip whitespace; only '{' may start the next frame.
      const char c = bytes[i];
      if (is_json_whitespace(c)) {
        ++i;
        continue;
      }
      if (c != '{') {
        failed_ = true;
        return Error(ErrorKind::invalid_request,
                     "expected a JSON object ('{') between messages, got " + describe_byte(c));
      }
      depth_ = 0;
      in_string_ = false;
      escaped_ = false;
    }

    // Scan as far as this chunk goes (or until the frame closes), then copy
    // the scanned run in one append: the state carried between calls means
    // earlier bytes are never looked at again.
    const std::size_t start = i;
    bool complete = false;
    for (; i < n && !complete; ++i) {
      const char c = bytes[i];
      if (in_string_) {
        if (escaped_) {
          escaped_ = false;
        } else if (c == '\\') {
          escaped_ = true;
        } else if (c == '"') {
          in_string_ = false;
        }
        continue;
      }
      switch (c) {
        case '"': in_string_ = true; break;
        case '{':
        case '[': ++depth_; break;
        case '}':
        case ']':
          --depth_;
          complete = depth_ == 0;
          break;
        default: break;
      }
    }
    const std::size_t run = i - start;
    if (partial_.size() + run > max_frame_bytes_) {
      failed_ = true;
      partial_.clear();
      return Error(ErrorKind::message_too_large,
                   "message exceeds the limit of " + std::to_string(max_frame_bytes_) + " bytes");
    }
    partial_.append(bytes.data() + start, run);
    if (complete) {
      frames.push_back(std::move(partial_));
      partial_.clear();  // a moved-from string is valid but unspecified
    }
  }
  return {};
}

}  // namespace distdb::wire
