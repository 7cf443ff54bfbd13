// Splits a byte stream into JSON objects.
//
// The wire carries JSON objects back to back. The seed's client sends one
// object with no delimiter and waits for the answer; pipelining clients send
// many, separated by newlines. Both are handled the same way: a frame is one
// complete top-level JSON object, found by tracking brace depth outside of
// strings, and whitespace between frames (including the newlines) is
// skipped. That is why no frame needs a length prefix or a terminator.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "distdb/error.hpp"

namespace distdb::wire {

class FrameSplitter {
 public:
  explicit FrameSplitter(std::size_t max_frame_bytes) : max_frame_bytes_(max_frame_bytes) {}

  // Consumes `bytes`; appends each frame completed by them to `frames`.
  // Fails, and must not be fed again, when the stream cannot be recovered:
  // a frame grows past max_frame_bytes (message_too_large), or something
  // other than whitespace stands between frames (invalid_request). Frames
  // completed before the fault are still appended.
  Status feed(std::string_view bytes, std::vector<std::string>& frames);

  // Only '{' may open a frame: a top-level array or scalar is refused, since
  // nothing but an object can be a request. Brackets inside a frame are
  // counted like braces so that "{[}]" cannot end a frame early; whether the
  // frame is valid JSON is left to the decoder.

  // Changes the limit for the frames to come (the frame in progress included).
  void set_max_frame_bytes(std::size_t max_frame_bytes) { max_frame_bytes_ = max_frame_bytes; }

  // True while a frame has begun but is not complete (drives the read timeout).
  bool mid_frame() const { return !partial_.empty(); }

 private:
  std::size_t max_frame_bytes_;
  std::string partial_;   // bytes of the frame in progress
  int depth_ = 0;         // brace/bracket depth of the frame in progress
  bool in_string_ = false;
  bool escaped_ = false;  // previous byte was a backslash inside a string
  bool failed_ = false;   // a fault was reported; the stream cannot be resynchronised
};

}  // namespace distdb::wire
