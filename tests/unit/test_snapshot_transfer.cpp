// Moving a full copy in chunks (node/snapshot_transfer.hpp): two ends wired
// by hand, with the losses, replays and lies a network and a peer can bring.
#include <doctest/doctest.h>

#include <unistd.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <string>

#include "node/snapshot_file.hpp"
#include "node/snapshot_transfer.hpp"

using namespace distdb;
using namespace std::chrono_literals;
using Clock = SnapshotTransfers::Clock;

namespace {

constexpr NodeId kSource = 3;
constexpr NodeId kAsker = 1;

std::string file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::size_t files_in(const std::string& dir) {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

struct Ends {
  std::unique_ptr<SpoolDir> source_spool = SpoolDir::open("").value();
  std::unique_ptr<SpoolDir> asker_spool = SpoolDir::open("").value();
  SnapshotTransfers source;
  SnapshotTransfers asker;
  Clock::time_point now = Clock::now();
  std::string original;  // the copy's bytes
  core::CatchUpReply offered;

  explicit Ends(std::size_t statements = 300, SnapshotTransfers::Options options = small_chunks())
      : source(*source_spool, options), asker(*asker_spool, options) {
    SnapshotSink sink(source_spool->file("out"), "sqlite");
    for (std::size_t i = 0; i < statements; ++i) {
      sink.add("INSERT INTO t VALUES (" + std::to_string(i) + ", '" + std::string(i % 97, 'x') + "')");
    }
    auto file = sink.finish();
    REQUIRE(file.ok());
    original = file_text(file->path);
    offered.epoch = 4;
    offered.snapshot = true;
    offered.snapshot_applied = {42, 4};
    offered.snapshot_data = local_descriptor(*file);
    REQUIRE(source.offer(kAsker, offered, now).ok());
    CHECK(offered.snapshot_data.find(file->path) == std::string::npos);  // no local path on the wire
  }

  static SnapshotTransfers::Options small_chunks() {
    SnapshotTransfers::Options o;
    o.chunk_bytes = 1000;
    o.window = 3;
    return o;
  }
};

// Runs messages between the two ends until none is left; `tamper` may
// drop (return false) or change a chunk on its way to the asker.
template <class Tamper>
std::optional<core::CatchUpReply> pump(Ends& e, SnapshotTransfers::Step first, Tamper&& tamper) {
  std::deque<SnapshotTransfers::Out> wire(first.send.begin(), first.send.end());
  std::optional<core::CatchUpReply> complete = std::move(first.complete);
  while (!wire.empty()) {
    auto out = std::move(wire.front());
    wire.pop_front();
    SnapshotTransfers::Step step;
    if (auto* request = std::get_if<wire::SnapshotChunkRequest>(&out.message)) {
      REQUIRE(out.to == kSource);
      step = e.source.serve(kAsker, *request, e.now);
    } else {
      REQUIRE(out.to == kAsker);
      auto chunk = std::get<wire::SnapshotChunk>(out.message);
      CHECK(chunk.data.size() <= 1000);
      if (!tamper(chunk)) continue;
      step = e.asker.on_chunk(kSource, chunk, e.now);
    }
    for (auto& o : step.send) wire.push_back(std::move(o));
    if (step.complete) complete = std::move(step.complete);
  }
  return complete;
}

std::optional<core::CatchUpReply> pump(Ends& e, SnapshotTransfers::Step first) {
  return pump(e, std::move(first), [](wire::SnapshotChunk&) { return true; });
}

}  // namespace

TEST_CASE("snapshot transfer: a copy arrives whole, byte for byte, and reaches the core once") {
  Ends e;
  auto first = e.asker.receive(kSource, e.offered, e.now);
  CHECK(first.send.size() == 3);  // the window
  CHECK(e.asker.holds_back_catch_up(kSource, e.now));
  CHECK_FALSE(e.asker.holds_back_catch_up(2, e.now));
  auto complete = pump(e, std::move(first));
  REQUIRE(complete.has_value());
  CHECK(complete->snapshot);
  CHECK(complete->snapshot_applied == core::EntryId{42, 4});
  CHECK(complete->epoch == 4);
  CHECK(file_text(complete->snapshot_data) == e.original);
  CHECK(complete->snapshot_data.rfind(e.asker_spool->path(), 0) == 0);
  CHECK_FALSE(e.asker.receiving());
  CHECK_FALSE(e.asker.holds_back_catch_up(kSource, e.now));
  // The same offer again (a duplicate frame) starts nothing new.
  e.asker.installed(complete->snapshot_data);
  CHECK_FALSE(std::filesystem::exists(complete->snapshot_data));
  CHECK(files_in(e.asker_spool->path()) == 0);
}

TEST_CASE("snapshot transfer: lost chunks are asked for again; chunks out of order are not written") {
  Ends e;
  int seen = 0;
  auto first = e.asker.receive(kSource, e.offered, e.now);
  // Every fifth chunk is lost on the way; the rest arrive.
  auto complete = pump(e, std::move(first), [&](wire::SnapshotChunk&) { return ++seen % 5 != 0; });
  int rounds = 0;
  while (!complete && rounds++ < 1000) {
    e.now += 2500ms;  // past resend_after, within stall_after (progress was made)
    complete = pump(e, e.asker.tick(e.now), [&](wire::SnapshotChunk&) { return ++seen % 5 != 0; });
  }
  REQUIRE(complete.has_value());
  CHECK(file_text(complete->snapshot_data) == e.original);
}

TEST_CASE(
    "snapshot transfer: a corrupt copy, a chunk of the wrong size or one the source forgot never reaches the "
    "core") {
  SUBCASE("a flipped byte: the SHA-256 does not match") {
    Ends e;
    bool flipped = false;
    auto complete = pump(e, e.asker.receive(kSource, e.offered, e.now), [&](wire::SnapshotChunk& c) {
      if (!flipped && c.offset == 2000) {
        c.data[10] ^= 1;
        flipped = true;
      }
      return true;
    });
    CHECK(flipped);
    CHECK_FALSE(complete.has_value());
    CHECK_FALSE(e.asker.receiving());
    CHECK(files_in(e.asker_spool->path()) == 0);  // the bad copy is removed
  }
  SUBCASE("a chunk longer than announced") {
    Ends e;
    auto complete = pump(e, e.asker.receive(kSource, e.offered, e.now), [&](wire::SnapshotChunk& c) {
      if (c.offset == 1000) c.data += "extra";
      return true;
    });
    CHECK_FALSE(complete.has_value());
    CHECK_FALSE(e.asker.receiving());
  }
  SUBCASE("the source no longer has it (it restarted; a newer offer replaced it)") {
    Ends e;
    auto first = e.asker.receive(kSource, e.offered, e.now);
    core::CatchUpReply newer = e.offered;
    // A second ReadSnapshot for the same asker: the first transfer is gone.
    SnapshotSink sink(e.source_spool->file("out"), "sqlite");
    sink.add("SELECT 1");
    newer.snapshot_data = local_descriptor(sink.finish().value());
    REQUIRE(e.source.offer(kAsker, newer, e.now).ok());
    CHECK(e.source.outgoing_count() == 1);
    auto complete = pump(e, std::move(first));
    CHECK_FALSE(complete.has_value());
    CHECK_FALSE(e.asker.receiving());
    // The newer offer then arrives and completes.
    complete = pump(e, e.asker.receive(kSource, newer, e.now));
    REQUIRE(complete.has_value());
    CHECK(file_text(complete->snapshot_data).find("SELECT 1") != std::string::npos);
  }
  SUBCASE("chunks from another member, or for another transfer, are ignored") {
    Ends e;
    auto first = e.asker.receive(kSource, e.offered, e.now);
    wire::SnapshotChunk forged;
    forged.transfer = std::get<wire::SnapshotChunkRequest>(first.send[0].message).transfer;
    forged.offset = 0;
    forged.data = std::string(1000, 'A');
    CHECK_FALSE(e.asker.on_chunk(2, forged, e.now).complete);
    forged.transfer += 1;
    CHECK_FALSE(e.asker.on_chunk(kSource, forged, e.now).complete);
    CHECK(e.asker.receiving());
    auto complete = pump(e, std::move(first));
    REQUIRE(complete.has_value());
    CHECK(file_text(complete->snapshot_data) == e.original);
  }
  SUBCASE("requests for another member's transfer, or off the chunk grid, get 'gone'") {
    Ends e;
    auto first = e.asker.receive(kSource, e.offered, e.now);
    const auto request = std::get<wire::SnapshotChunkRequest>(first.send[0].message);
    auto other = e.source.serve(2, request, e.now);
    REQUIRE(other.send.size() == 1);
    CHECK(std::get<wire::SnapshotChunk>(other.send[0].message).gone);
    CHECK(std::get<wire::SnapshotChunk>(other.send[0].message).data.empty());
    auto off_grid = e.source.serve(kAsker, wire::SnapshotChunkRequest{request.transfer, 17}, e.now);
    CHECK(std::get<wire::SnapshotChunk>(off_grid.send[0].message).gone);
    auto past_end = e.source.serve(kAsker, wire::SnapshotChunkRequest{request.transfer, 1u << 30}, e.now);
    CHECK(std::get<wire::SnapshotChunk>(past_end.send[0].message).gone);
  }
}

TEST_CASE("snapshot transfer: descriptors that do not parse are ignored; nothing is created for them") {
  Ends e;
  for (const std::string& bad : std::vector<std::string>{
           "", "{}", "[[[[", R"({"transfer":1,"bytes":10,"sha256":"00","chunk":10})",
           R"({"transfer":1,"bytes":0,"sha256":")" + std::string(64, 'a') + R"(","chunk":10})",
           R"({"transfer":1,"bytes":10,"sha256":")" + std::string(64, 'a') + R"(","chunk":99999999})",
           "/etc/passwd"}) {
    CAPTURE(bad);
    core::CatchUpReply reply = e.offered;
    reply.snapshot_data = bad;
    auto step = e.asker.receive(kSource, reply, e.now);
    CHECK(step.send.empty());
    CHECK_FALSE(step.complete.has_value());
    CHECK_FALSE(e.asker.receiving());
  }
  CHECK(files_in(e.asker_spool->path()) == 0);
  // Nor does a source offer a file that is not there.
  core::CatchUpReply missing = e.offered;
  missing.snapshot_data =
      local_descriptor(SnapshotFile{e.source_spool->path() + "/nope", 10, std::string(64, 'a')});
  CHECK_FALSE(e.source.offer(kAsker, missing, e.now).ok());
}

TEST_CASE(
    "snapshot transfer: a stalled transfer is dropped on both sides, and catch-up requests flow again") {
  Ends e;
  auto first = e.asker.receive(kSource, e.offered, e.now);
  CHECK(first.send.size() == 3);
  // Nothing answers. Within stall_after the requests are resent...
  e.now += 2500ms;
  CHECK_FALSE(e.asker.tick(e.now).send.empty());
  CHECK(e.asker.holds_back_catch_up(kSource, e.now));
  // ...after it, the transfer is given up, its file removed.
  e.now += 30s;
  auto step = e.asker.tick(e.now);
  CHECK_FALSE(step.log.empty());
  CHECK_FALSE(e.asker.receiving());
  CHECK_FALSE(e.asker.holds_back_catch_up(kSource, e.now));
  CHECK(files_in(e.asker_spool->path()) == 0);
  // The source forgets an offer nobody pulls, and removes its file.
  CHECK(e.source.outgoing_count() == 1);
  e.source.tick(e.now);
  CHECK(e.source.outgoing_count() == 0);
  CHECK(files_in(e.source_spool->path()) == 0);
}

TEST_CASE("snapshot transfer: a private spool directory is the owner's only and goes away with the node") {
  std::string path;
  {
    auto spool = SpoolDir::open("");
    REQUIRE(spool.ok());
    path = (*spool)->path();
    const auto perms = std::filesystem::status(path).permissions();
    CHECK((perms & std::filesystem::perms::group_all) == std::filesystem::perms::none);
    CHECK((perms & std::filesystem::perms::others_all) == std::filesystem::perms::none);
    std::ofstream((*spool)->file("out")) << "x";
  }
  CHECK_FALSE(std::filesystem::exists(path));
  // A configured one is kept, and what an earlier run left there is cleared.
  const std::string dir =
      std::filesystem::temp_directory_path() / ("distdb-spool-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/copy-in-7.snapshot") << "left over";
  std::ofstream(dir + "/keep.txt") << "not ours";
  {
    auto spool = SpoolDir::open(dir);
    REQUIRE(spool.ok());
    CHECK_FALSE(std::filesystem::exists(dir + "/copy-in-7.snapshot"));
    CHECK(std::filesystem::exists(dir + "/keep.txt"));
  }
  CHECK(std::filesystem::exists(dir));
  std::filesystem::remove_all(dir);
  CHECK_FALSE(SpoolDir::open("/proc/distdb-no-such-dir").ok());
}
