#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "wire/frame_splitter.hpp"

using distdb::ErrorKind;
using distdb::wire::FrameSplitter;

namespace {

constexpr std::size_t kLimit = 1 << 20;

std::vector<std::string> split_all(std::string_view input, std::size_t limit = kLimit) {
  FrameSplitter splitter(limit);
  std::vector<std::string> frames;
  const auto status = splitter.feed(input, frames);
  REQUIRE(status.ok());
  CHECK_FALSE(splitter.mid_frame());
  return frames;
}

std::vector<std::string> split_byte_by_byte(std::string_view input) {
  FrameSplitter splitter(kLimit);
  std::vector<std::string> frames;
  for (const char c : input) {
    const auto status = splitter.feed(std::string_view(&c, 1), frames);
    REQUIRE(status.ok());
  }
  CHECK_FALSE(splitter.mid_frame());
  return frames;
}

}  // namespace

TEST_CASE("frame splitter: one object without a delimiter, as the seed's client sends it") {
  const std::string request = R"({"type": "CLIENT_QUERY", "payload": {"query": "SELECT * FROM teste;"}})";
  const auto frames = split_all(request);
  REQUIRE(frames.size() == 1);
  CHECK(frames[0] == request);
}

TEST_CASE("frame splitter: several newline-delimited objects, whitespace skipped") {
  const auto frames = split_all("{\"id\":1}\n{\"id\":2}\r\n  \t{\"id\":3}{\"id\":4}\n\n");
  REQUIRE(frames.size() == 4);
  CHECK(frames[0] == R"({"id":1})");
  CHECK(frames[1] == R"({"id":2})");
  CHECK(frames[2] == R"({"id":3})");
  CHECK(frames[3] == R"({"id":4})");
}

TEST_CASE("frame splitter: strings hide braces, brackets and escaped quotes") {
  const std::string tricky = R"({"q": "a } b { c ] [ \" } \\", "r": "\\\"}", "s": "x\\"})";
  const auto frames = split_all(tricky + "\n" + tricky);
  REQUIRE(frames.size() == 2);
  CHECK(frames[0] == tricky);
  CHECK(frames[1] == tricky);
}

TEST_CASE("frame splitter: nested objects and arrays inside a frame") {
  const std::string nested = R"({"a": {"b": {"c": [1, {"d": [[], {}]}]}}, "e": [{"f": {}}]})";
  const auto frames = split_all(nested + nested);
  REQUIRE(frames.size() == 2);
  CHECK(frames[0] == nested);
  CHECK(frames[1] == nested);
}

TEST_CASE("frame splitter: feeding byte by byte gives the same frames") {
  const std::string stream =
      "{\"type\":\"PING\",\"id\":1}\n"
      R"({"type": "CLIENT_QUERY", "payload": {"query": "SELECT '}{\"'"}, "id": 2})"
      "\n  {\"a\": [{\"b\": \"\\\\\"}]}";
  const auto whole = split_all(stream);
  REQUIRE(whole.size() == 3);
  CHECK(split_byte_by_byte(stream) == whole);

  // And every split into two pieces.
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    FrameSplitter splitter(kLimit);
    std::vector<std::string> frames;
    REQUIRE(splitter.feed(std::string_view(stream).substr(0, cut), frames).ok());
    REQUIRE(splitter.feed(std::string_view(stream).substr(cut), frames).ok());
    CHECK(frames == whole);
  }
}

TEST_CASE("frame splitter: mid_frame tracks a frame in progress") {
  FrameSplitter splitter(kLimit);
  std::vector<std::string> frames;
  CHECK_FALSE(splitter.mid_frame());
  REQUIRE(splitter.feed("  \n", frames).ok());
  CHECK_FALSE(splitter.mid_frame());  // whitespace alone starts nothing
  REQUIRE(splitter.feed("{\"a\": \"}", frames).ok());
  CHECK(splitter.mid_frame());
  CHECK(frames.empty());
  REQUIRE(splitter.feed("\"}\n{", frames).ok());
  REQUIRE(frames.size() == 1);
  CHECK(frames[0] == R"({"a": "}"})");
  CHECK(splitter.mid_frame());
  REQUIRE(splitter.feed("}", frames).ok());
  CHECK_FALSE(splitter.mid_frame());
  CHECK(frames.size() == 2);
}

TEST_CASE("frame splitter: the size limit counts the frame in progress") {
  const std::string frame = R"({"q":"0123456789"})";  // 18 bytes

  SUBCASE("exactly at the limit passes, repeatedly") {
    const auto frames = split_all(frame + "\n" + frame + frame, frame.size());
    CHECK(frames.size() == 3);
  }
  SUBCASE("one byte over fails, frames before it are kept") {
    FrameSplitter splitter(frame.size());
    std::vector<std::string> frames;
    const auto status = splitter.feed(frame + "\n{\"q\":\"01234567890\"}", frames);
    REQUIRE_FALSE(status.ok());
    CHECK(status.error().kind == ErrorKind::message_too_large);
    CHECK(frames.size() == 1);
  }
  SUBCASE("an endless frame fed in small pieces fails once it passes the limit") {
    FrameSplitter splitter(1000);
    std::vector<std::string> frames;
    REQUIRE(splitter.feed("{\"q\":\"", frames).ok());
    std::size_t fed = 6;
    distdb::Status status;
    while (status.ok() && fed < 2000) {
      status = splitter.feed("xxxxxxxxxx", frames);
      fed += 10;
    }
    REQUIRE_FALSE(status.ok());
    CHECK(status.error().kind == ErrorKind::message_too_large);
    CHECK(fed > 1000);
    CHECK(fed <= 1010);
  }
}

TEST_CASE("frame splitter: anything but an object between frames is refused") {
  for (const std::string bad : {"[1, 2]", "\"text\"", "42", "null", "}", "x{}", "\x01", "{\"a\":1} junk"}) {
    CAPTURE(bad);
    FrameSplitter splitter(kLimit);
    std::vector<std::string> frames;
    const auto status = splitter.feed(bad, frames);
    REQUIRE_FALSE(status.ok());
    CHECK(status.error().kind == ErrorKind::invalid_request);
    CHECK(status.error().message.find("expected a JSON object") != std::string::npos);
  }

  SUBCASE("frames before the garbage are still delivered; the splitter stays broken") {
    FrameSplitter splitter(kLimit);
    std::vector<std::string> frames;
    CHECK_FALSE(splitter.feed("{\"a\":1}\n{\"b\":2} ]", frames).ok());
    CHECK(frames.size() == 2);
    CHECK_FALSE(splitter.feed("{\"c\":3}", frames).ok());
    CHECK(frames.size() == 2);
  }
}
