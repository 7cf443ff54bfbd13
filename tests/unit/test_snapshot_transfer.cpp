// Moving a full copy in chunks (node/snapshot_transfer.hpp): two ends wired
// by hand, with the losses, replays and lies a network and a peer can bring.
#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
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
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    n += e.is_regular_file() && e.path().extension() == ".snapshot" ? 1 : 0;
  }
  return n;
}

// A port number no other test process uses at the same time (spool
// directories are named for the node's id and port, and locked).
std::uint16_t test_port() {
  static std::atomic<int> next{0};
  return static_cast<std::uint16_t>(20000 + (::getpid() * 64 + next++) % 40000);
}

std::unique_ptr<SpoolDir> private_spool(NodeId node) {
  // Node ids no test cluster uses: its nodes' directories are never these.
  auto spool = SpoolDir::open("", 90000 + node, test_port());
  REQUIRE_MESSAGE(spool.ok(), (spool.ok() ? "" : spool.error().message));
  return std::move(*spool);
}

struct Ends {
  std::unique_ptr<SpoolDir> source_spool = private_spool(kSource);
  std::unique_ptr<SpoolDir> asker_spool = private_spool(kAsker);
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
    auto too_long = e.source.serve(kAsker, wire::SnapshotChunkRequest{request.transfer, 0, 1001}, e.now);
    CHECK(std::get<wire::SnapshotChunk>(too_long.send[0].message).gone);
    auto past_end =
        e.source.serve(kAsker, wire::SnapshotChunkRequest{request.transfer, 1u << 30, 1000}, e.now);
    CHECK(std::get<wire::SnapshotChunk>(past_end.send[0].message).gone);
    auto odd = e.source.serve(kAsker, wire::SnapshotChunkRequest{request.transfer, 17, 5}, e.now);
    CHECK(std::get<wire::SnapshotChunk>(odd.send[0].message).data == e.original.substr(17, 5));
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

TEST_CASE("snapshot transfer: an asker whose frames are smaller than the source's asks for smaller chunks") {
  Ends e;
  SnapshotTransfers::Options asker_options = Ends::small_chunks();
  asker_options.receive_chunk_bytes = 300;
  SnapshotTransfers asker(*e.asker_spool, asker_options);
  auto first = asker.receive(kSource, e.offered, e.now);
  REQUIRE_FALSE(first.send.empty());
  std::deque<SnapshotTransfers::Out> wire(first.send.begin(), first.send.end());
  std::optional<core::CatchUpReply> complete;
  while (!wire.empty()) {
    auto out = std::move(wire.front());
    wire.pop_front();
    SnapshotTransfers::Step step;
    if (auto* request = std::get_if<wire::SnapshotChunkRequest>(&out.message)) {
      CHECK(request->length == 300);
      step = e.source.serve(kAsker, *request, e.now);
    } else {
      const auto& chunk = std::get<wire::SnapshotChunk>(out.message);
      CHECK(chunk.data.size() <= 300);
      step = asker.on_chunk(kSource, chunk, e.now);
    }
    for (auto& o : step.send) wire.push_back(std::move(o));
    if (step.complete) complete = std::move(step.complete);
  }
  REQUIRE(complete.has_value());
  CHECK(file_text(complete->snapshot_data) == e.original);
}

TEST_CASE(
    "snapshot transfer: the copy being installed is never removed; a second offer does not displace the "
    "first") {
  Ends e;
  auto first = pump(e, e.asker.receive(kSource, e.offered, e.now));
  REQUIRE(first.has_value());
  e.asker.installing(first->snapshot_data);
  // Another copy arrives (a catch-up retry crossed the first): the file
  // being installed stays until the executor is done with it.
  SnapshotSink sink(e.source_spool->file("out"), "sqlite");
  sink.add("SELECT 2");
  core::CatchUpReply again = e.offered;
  again.snapshot_data = local_descriptor(sink.finish().value());
  REQUIRE(e.source.offer(kAsker, again, e.now).ok());
  auto second = pump(e, e.asker.receive(kSource, again, e.now));
  REQUIRE(second.has_value());
  CHECK(std::filesystem::exists(first->snapshot_data));
  CHECK(file_text(first->snapshot_data) == e.original);
  // Once it is installed, both go: the core, busy installing the first,
  // ignored the second.
  e.asker.installed(first->snapshot_data);
  CHECK_FALSE(std::filesystem::exists(first->snapshot_data));
  CHECK_FALSE(std::filesystem::exists(second->snapshot_data));
  CHECK(files_in(e.asker_spool->path()) == 0);

  // While a copy is on its way from node 3, an offer in node 2's name is ignored.
  core::CatchUpReply third = e.offered;
  SnapshotSink sink3(e.source_spool->file("out"), "sqlite");
  sink3.add("SELECT 3");
  third.snapshot_data = local_descriptor(sink3.finish().value());
  REQUIRE(e.source.offer(kAsker, third, e.now).ok());
  auto started = e.asker.receive(kSource, third, e.now);
  REQUIRE(e.asker.receiving());
  auto other = e.asker.receive(2, third, e.now);
  CHECK(other.send.empty());
  CHECK_FALSE(other.log.empty());
  CHECK(e.asker.holds_back_catch_up(kSource, e.now));
  REQUIRE(pump(e, std::move(started)).has_value());

  // Unless node 2 is the coordinator now (node 3 failed over mid-copy): its
  // copy replaces the one that would never finish.
  core::CatchUpReply fourth = e.offered;
  SnapshotSink sink4(e.source_spool->file("out"), "sqlite");
  sink4.add("SELECT 4");
  fourth.snapshot_data = local_descriptor(sink4.finish().value());
  REQUIRE(e.source.offer(kAsker, fourth, e.now).ok());
  REQUIRE_FALSE(e.asker.receive(kSource, fourth, e.now).send.empty());
  auto from_new_coordinator = e.asker.receive(2, fourth, e.now, /*from_coordinator=*/true);
  CHECK_FALSE(from_new_coordinator.send.empty());
  CHECK_FALSE(e.asker.holds_back_catch_up(kSource, e.now));
  CHECK(e.asker.holds_back_catch_up(2, e.now));
}

TEST_CASE("snapshot transfer: an offer larger than the free disk is refused before anything is written") {
  Ends e;
  core::CatchUpReply huge = e.offered;
  huge.snapshot_data =
      R"({"transfer":1,"bytes":1000000000000000000,"sha256":")" + std::string(64, 'a') + R"(","chunk":1000})";
  auto step = e.asker.receive(kSource, huge, e.now);
  CHECK(step.send.empty());
  REQUIRE_FALSE(step.log.empty());
  CHECK(step.log[0].find("free") != std::string::npos);
  CHECK_FALSE(e.asker.receiving());
  CHECK(files_in(e.asker_spool->path()) == 0);
}

TEST_CASE(
    "snapshot transfer: spool directories are the node's own, cleaned at start, locked, removed at stop") {
  namespace fs = std::filesystem;
  const fs::path parent = fs::temp_directory_path() / ("distdb-spool-test-" + std::to_string(::getpid()));
  fs::remove_all(parent);
  fs::create_directories(parent);
  // A shared directory, with someone else's files in it.
  fs::permissions(parent, fs::perms::all | fs::perms::sticky_bit);
  std::ofstream(parent / "copy-important.snapshot") << "not the node's";
  const std::uint16_t port = test_port();
  std::string path;
  {
    auto spool = SpoolDir::open(parent.string(), 90007, port);
    REQUIRE_MESSAGE(spool.ok(), (spool.ok() ? "" : spool.error().message));
    path = (*spool)->path();
    CHECK(fs::path(path).parent_path() == parent);
    CHECK(path.find("node90007-" + std::to_string(port)) != std::string::npos);
    // The shared directory is left as it was.
    CHECK((fs::status(parent).permissions() & fs::perms::others_all) == fs::perms::others_all);
    CHECK(fs::exists(parent / "copy-important.snapshot"));
    const auto perms = fs::status(path).permissions();
    CHECK((perms & (fs::perms::group_all | fs::perms::others_all)) == fs::perms::none);
    // A second node with the same id and port is refused.
    auto twin = SpoolDir::open(parent.string(), 90007, port);
    REQUIRE_FALSE(twin.ok());
    CHECK(twin.error().message.find("in use by another running node") != std::string::npos);
    std::ofstream((*spool)->file("out")) << "x";
  }
  CHECK_FALSE(fs::exists(path));  // a clean stop removes it
  // What a crashed run left is removed at the next start; other files stay.
  fs::create_directories(path);
  fs::permissions(path, fs::perms::owner_all);
  std::ofstream(path + "/copy-in-3.snapshot") << "left by a crash";
  {
    auto spool = SpoolDir::open(parent.string(), 90007, port);
    REQUIRE(spool.ok());
    CHECK_FALSE(fs::exists(path + "/copy-in-3.snapshot"));
  }
  // Not a directory of this user's only: refused, with what to do.
  fs::create_directories(path);
  fs::permissions(path, fs::perms::owner_all | fs::perms::others_read | fs::perms::others_exec);
  auto open_to_others = SpoolDir::open(parent.string(), 90007, port);
  REQUIRE_FALSE(open_to_others.ok());
  CHECK(open_to_others.error().message.find("open to other users") != std::string::npos);
  fs::remove_all(path);
  fs::create_directory_symlink(parent, path);
  auto link = SpoolDir::open(parent.string(), 90007, port);
  REQUIRE_FALSE(link.ok());
  CHECK(link.error().message.find("not a directory") != std::string::npos);
  fs::remove(path);
  fs::remove_all(parent);
  // A configured path that is a file is refused.
  const std::string file =
      (fs::temp_directory_path() / ("distdb-spool-file-" + std::to_string(::getpid()))).string();
  std::ofstream(file) << "x";
  CHECK_FALSE(SpoolDir::open(file, 90007, port).ok());
  fs::remove(file);
}
