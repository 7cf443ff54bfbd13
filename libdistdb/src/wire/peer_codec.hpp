// JSON encoding of the messages replicas exchange (core::Envelope).
//
// Peer messages travel on the client port, framed like client requests: one
// JSON object per line. Every peer frame has "type": "PEER", the sender and
// the addressee, the message's name in "msg", and the message's fields at the
// top level (each one always written, each one required when reading):
//
//   {"type":"PEER","from":1,"to":2,"msg":"Heartbeat","epoch":7,"coordinator":1,
//    "is_coordinator":true,"applied":{"seq":42,"origin":7},"view":[1,2,3]}
//
//   msg               fields
//   Heartbeat         epoch, coordinator, is_coordinator, applied, view, eligible
//   VoteRequest       epoch
//   VoteReply         epoch, granted, applied, promised
//   Prepare           epoch, previous, entry (an Entry), outcomes (optional:
//                     present with an entry that carries effects)
//   PrepareReply      epoch, entry (an EntryId), yes, reason, outcomes,
//                     effects_refused (optional, false)
//   Decide            epoch, entry (an EntryId)
//   DecideReply       epoch, entry (an EntryId), ok
//   CatchUpRequest    epoch, applied, join, snapshot
//   CatchUpReply      epoch, entries, conflict, snapshot, snapshot_applied,
//                     snapshot_data, joined, last
//   ForwardedWrite    epoch, tag, sql
//   ForwardedReply    tag, result, outcome, coordinator, message
//
// Below the replication protocol, the frames that move a full copy of the
// data (node/snapshot_transfer.hpp; to the core the copy is one
// CatchUpReply, whose snapshot_data then describes the transfer):
//   SnapshotChunkRequest  transfer, offset, length (at most the descriptor's
//                         chunk and kMaxSnapshotChunkBytes: the asker's
//                         frames may be smaller than the source's)
//   SnapshotChunk         transfer, offset, data (base64, at most
//                         kMaxSnapshotChunkBytes), gone (the sender no
//                         longer has this transfer)
//
// Shapes:
//   EntryId           {"seq": u64, "origin": u64}
//   Entry             {"id": EntryId, "statements": [LoggedStatement...],
//                      "effects": base64 (optional: absent when the members
//                      run the statements, Entry::effects)}
//   LoggedStatement   {"sql": text, "expect_ok": bool, "expect_code": i32,
//                      "expect_insert_id": u64 (optional, 0), "expect_digest":
//                      text (optional, empty)}
//   StatementOutcome  {"ok": bool, "code": i32, "message": text,
//                      "rows_affected": u64, "last_insert_id": u64,
//                      "digest": text (optional, empty)}
//   epochs, seqs, tags, promised: integers 0 to 2^64-1; from, to: node ids
//   1 to 2^32-1; coordinator and view members: node ids (coordinator 0 =
//   none; view members 1 to 2^32-1); ForwardedReply.result: a
//   WriteResult::Kind, 0 to 3.
//   text              a string when the bytes are valid UTF-8, otherwise
//                     {"base64": "..."} (standard alphabet, padded), so that
//                     every byte string round-trips exactly
//   snapshot_data     always a base64 string (arbitrary bytes)
//
// Reading is strict: every field present with the right type and range,
// arrays no longer than the limits below, an unknown "msg" refused. Fields
// not listed are ignored (a newer peer may add some). Failures have kind
// invalid_request and name the field; nothing here throws or aborts on
// hostile input.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

#include <rapidjson/document.h>

#include "distdb/core/messages.hpp"
#include "distdb/error.hpp"

namespace distdb::wire {

// Upper bounds on the arrays of a peer message (far above what a replica
// sends: ReplicaConfig's max_batch and catch_up_batch are in the hundreds).
inline constexpr std::size_t kMaxPeerViewMembers = 1024;
inline constexpr std::size_t kMaxPeerEntries = 65536;  // CatchUpReply.entries
inline constexpr std::size_t kMaxPeerStatementsPerEntry = 65536;
inline constexpr std::size_t kMaxPeerOutcomes = 65536;  // PrepareReply.outcomes

// The largest chunk of a full copy one SnapshotChunk may carry.
inline constexpr std::size_t kMaxSnapshotChunkBytes = 4 * 1024 * 1024;

// A request for `length` bytes of full copy `transfer` from `offset` on.
struct SnapshotChunkRequest {
  std::uint64_t transfer = 0;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

// Bytes of a full copy from `offset` on (empty at its end); with `gone`,
// the sender has no such transfer (any more).
struct SnapshotChunk {
  std::uint64_t transfer = 0;
  std::uint64_t offset = 0;
  std::string data;
  bool gone = false;
};

using TransferMessage = std::variant<SnapshotChunkRequest, SnapshotChunk>;

struct TransferEnvelope {
  NodeId from = 0;
  NodeId to = 0;
  TransferMessage message;
};

// Any peer frame: a replication message, or a piece of a transfer.
using PeerFrame = std::variant<core::Envelope, TransferEnvelope>;

// The value of "type" in every peer frame.
inline constexpr std::string_view kPeerFrameType = "PEER";

// One line of JSON, without the trailing newline.
std::string encode_peer(const core::Envelope& envelope);

// Parses and validates one peer frame carrying a replication message.
Result<core::Envelope> decode_peer(std::string_view json);

std::string encode_transfer(const TransferEnvelope& envelope);

// Parses and validates any peer frame.
Result<PeerFrame> decode_peer_frame(std::string_view json);

// The same, on a document already parsed (e.g. by decode_request once it has
// seen "type": "PEER"). `root` must be an object whose "type" is "PEER".
Result<core::Envelope> decode_peer_document(const rapidjson::Value& root);

// A cheap hint, no parsing: true when `frame` begins (after whitespace) with
// {"type":"PEER", which is how encode_peer writes every peer frame. A frame
// written by someone else may put "type" later and be missed, never the
// reverse for a well-formed frame; decode_peer still validates it all.
bool is_peer_frame(std::string_view frame);

// The name written in "msg" for each alternative of core::Message.
const char* peer_message_name(const core::Message& message);

}  // namespace distdb::wire
