// Row-based shipping: what one XA transaction did on the coordinator's
// MariaDB server, read from that server's binary log, and applied on another
// member inside the member's own XA transaction.
//
// Why rows and not statements: a member that executes the coordinator's SQL
// text gets its own UUID(), RAND(), NOW(6), auto-increment ids (another
// server burns other ids in rolled-back transactions), its own values from
// triggers and DEFAULT (UUID()) columns, and its own sequence positions. The
// binary log in row format holds the values the coordinator's server
// actually wrote; a member that applies those rows with a BINLOG statement
// ends with byte-identical tables, whatever the statements computed.
//
// The flow, for one replicated write:
//   coordinator: XA START 'x'; <statements>; <distdb bookkeeping>;
//                XA END 'x'; XA PREPARE 'x'
//                effects = tap.effects_of("x")          (microseconds)
//   member:      XA START 'x'; BINLOG '<apply_statement(effects)>'   (alone at the end of its request)
//                <the member's own bookkeeping>; XA END 'x'; XA PREPARE 'x'
//   everyone:    XA COMMIT 'x' (or XA ROLLBACK 'x')
//
// What the server must be configured with, and which privileges the
// account needs, is checked by check_row_capture() (below): log_bin,
// binlog_format=ROW, binlog_row_image=FULL; REPLICATION SLAVE and BINLOG
// MONITOR to read the log, BINLOG REPLAY (or SUPER) to apply one. BINLOG
// REPLAY lets the account apply any row to any table (and run any statement
// a Query event carries) without table privileges: it is as powerful as the
// account that runs distdb's DDL anyway, but it should not be granted to
// anybody else.
//
// Facts this rests on, found against MariaDB 10.11 (the spike's report and
// tests/storage/test_row_events.cpp):
//   - XA PREPARE writes the transaction's event group to the binary log
//     before it returns: Gtid (flags FL_PREPARED_XA, the XA id), per
//     statement Table_map events then Rows events (the statement's last one
//     flagged STMT_END_F), Query "XA END ...", XA_prepare. XA COMMIT and
//     XA ROLLBACK are logged later as a group of their own.
//   - NEXTVAL on a sequence inside the XA transaction logs the sequence's
//     new state as a separate, already committed group (Table_map + Write_rows
//     + COMMIT) BEFORE the XA group. Shipped with the XA group and applied
//     inside the member's XA transaction, it leaves the member's sequence
//     where the coordinator's is.
//   - A member needs the Format_description event (FDE) of the coordinator's
//     binlog in its session before row events; FDE, Table_maps and Rows in
//     ONE BINLOG statement work (a Table_map and its Rows in two BINLOG
//     statements apply nothing, silently).
//   - A BINLOG statement that carries row events loses the
//     SERVER_MORE_RESULTS_EXISTS flag of a multi-statement request: it must
//     be the last statement of its request, or the client desynchronises.
//   - Table ids in the events are the coordinator's; the member maps them
//     to its own tables by name, so they need not match. The Table_map names
//     the coordinator's database too (see rename_database()).
//   - The member's triggers do not fire again for applied rows (the
//     trigger's own rows are in the effects), unless the member runs with
//     slave_run_triggers_for_rbr=ENFORCE, which makes such rows fail (1442).
//   - A row the member lacks makes the BINLOG statement fail (1032), unless
//     the member runs with slave_exec_mode=IDEMPOTENT, which skips it
//     silently. A row whose other columns differ is overwritten silently.
#pragma once

#include <mysql.h>
// (after mysql.h, which it needs)
#include <mariadb_rpl.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "distdb/config.hpp"
#include "distdb/error.hpp"

namespace distdb::mariadb {

// ---------------------------------------------------------------------------
// The effects string
//
// What effects_of() returns, distdb stores in its log and sends between
// nodes. Opaque to everyone but this file and apply_statement(); binary (not
// text: store it as a BLOB, or encoded). It is binary log events, byte for
// byte as the coordinator's server wrote them (19-byte common header whose
// bytes 9..12 hold the event's length, body, and the CRC32 trailer when the
// binlog has checksums), concatenated without any framing of ours:
//
//   Format_description     always first. Repeated before a later event only
//                          when that event was logged under another one (the
//                          binlog was rotated between two groups of the same
//                          effects; a BINLOG statement accepts it there).
//   Table_map..., Rows...  one run per statement, in binlog order: the
//                          statement's Table_maps, then its Rows events, the
//                          last of which carries STMT_END_F. Write_rows,
//                          Update_rows and Delete_rows (v1 or v2; never the
//                          compressed kinds of log_bin_compress=ON, which
//                          BINLOG statements refuse).
//
// Nothing else: no Gtid, Query, Xid or XA_prepare event, so applying them
// never begins, ends or prepares a transaction; that is the member's own
// XA. Statements on distdb's bookkeeping tables (distdb_*) are left out:
// each member writes its own. The empty string means "nothing to apply"
// (never an FDE alone).
//
// A Rows event's STMT_END_F flag is the only byte this file may change (its
// CRC is then recomputed): see "Leaving out distdb's tables" in the .cpp.
// ---------------------------------------------------------------------------

// The one binary log event of an effects string, as parse_effects() reads it.
struct EffectsEvent {
  std::uint8_t type = 0;         // enum mariadb_rpl_event: 15 FDE, 19 Table_map, 23-25 / 30-32 Rows
  std::string table;             // Table_map: "database.table"; empty for other events
  std::uint64_t table_id = 0;    // Table_map and Rows events
  std::uint16_t rows_flags = 0;  // Rows events: STMT_END_F (1) and others
  std::string_view bytes;        // the whole event, header to CRC, inside the parsed string
};

// Splits an effects string into its events and checks it: every event
// complete, of a kind an effects string may hold, an FDE first, every Rows
// event's table id mapped earlier in its statement, every statement ended
// by STMT_END_F, and every CRC32 right when the FDE says the binlog has
// checksums. Kind invalid_request on anything else. (The server checks none
// of this when it applies a BINLOG statement, unless the member runs with
// master_verify_checksum; a receiver may call this on effects it got from
// the network before it applies them.)
Result<std::vector<EffectsEvent>> parse_effects(std::string_view effects);

// `effects` with the database of every Table_map event that names `from`
// renamed `to` (lengths and CRCs rewritten). A member applies the rows to
// the database the Table_map names, which is the coordinator's: a member
// whose database has another name (storage.db.database differs between
// nodes) renames them first. Kind invalid_request when `effects` does not
// parse or `to` is not a database name (1 to 64 bytes).
Result<std::string> rename_database(std::string_view effects, std::string_view from, std::string_view to);

// BINLOG '<base64 of effects>': the statement that applies `effects` in the
// session that runs it, inside that session's transaction (XA START first).
// It must be the LAST statement of its request (see the top). Empty for
// empty effects: there is nothing to run. Its length is 4/3 of the effects'
// and must stay under the member's max_allowed_packet (16 MiB by default);
// see apply_statements() for larger effects.
std::string apply_statement(std::string_view effects);

// The same effects as several BINLOG statements, each under about
// `max_statement_bytes` when the statements of the transaction allow it: the
// effects are cut only between two statements' runs (a Table_map and its
// Rows must stay in one BINLOG statement), and each piece starts with the FDE
// in force there, so that each statement stands alone. One statement's run
// larger than the limit becomes one larger BINLOG statement. Run them in
// order, each as its own request, inside the same transaction. Kind
// invalid_request when `effects` does not parse.
Result<std::vector<std::string>> apply_statements(std::string_view effects, std::size_t max_statement_bytes);

// ---------------------------------------------------------------------------
// Checking a server
// ---------------------------------------------------------------------------

// OK when the MariaDB server of `config`, with `config`'s account, can take
// part in row-based shipping both ways (every member may become the
// coordinator): it writes a binary log (log_bin) in binlog_format=ROW with
// binlog_row_image=FULL and log_bin_compress=OFF; it applies row events
// strictly (slave_exec_mode=STRICT: a missing row is an error, 1032, not
// skipped) and without running triggers again (slave_run_triggers_for_rbr
// not ENFORCE); and the account can find the log's end (BINLOG MONITOR),
// read it (REPLICATION SLAVE) and apply events read from it (BINLOG REPLAY
// or SUPER). Otherwise kind config, with one sentence per
// problem naming the setting or privilege to change (all the problems found,
// so that one restart fixes them all; the privileges are only tried once
// the binary log is on). storage_unavailable when the server cannot be asked.
//
// Settings that are not wrong but weaken the guarantees (sync_binlog other
// than 1, innodb_flush_log_at_trx_commit other than 1: a crash of the
// server's host may lose the binlog events of transactions it reported
// prepared) or refuse some DDL (log_bin_trust_function_creators off: with a
// binary log, CREATE FUNCTION without DETERMINISTIC, NO SQL or READS SQL
// DATA fails with 1418) are appended to `warnings`, one sentence each, when
// given; they never fail the check.
//
// The check reads two events of the binary log in a non-blocking dump with
// server_id 0, which never takes the place of another reader (a dump that
// registers a server_id already in use disconnects the older one).
Status check_row_capture(const DbConfig& config, std::vector<std::string>* warnings = nullptr);

// ---------------------------------------------------------------------------
// Reading one server's binary log
// ---------------------------------------------------------------------------

// A binary log dump kept open on its own connection (COM_BINLOG_DUMP,
// blocking), from which effects_of() takes each prepared XA transaction's
// row events as soon as XA PREPARE has returned. A long-lived dump costs
// about ten microseconds per transaction; opening one per transaction, half
// a millisecond (the spike measured both).
//
// One thread at a time (it owns two connections). Meant for one serial
// stream of transactions, the coordinator's: see effects_of() for what
// happens with concurrent ones.
class RowEventTap {
 public:
  // A dump of the server of `config` (its database is not used) from the
  // current end of its binary log: only what is logged from now on can be
  // captured, so open the tap BEFORE the first transaction it must capture
  // starts. `dump_server_id` must differ from every server's server_id and
  // from every other reader's (the server drops an older dump that
  // registered the same id). Kind config when the server writes no binary
  // log or the account lacks a privilege (check_row_capture() says which),
  // storage_unavailable when it cannot be reached.
  static Result<std::unique_ptr<RowEventTap>> open(const DbConfig& config, std::uint32_t dump_server_id);

  ~RowEventTap();
  RowEventTap(const RowEventTap&) = delete;
  RowEventTap& operator=(const RowEventTap&) = delete;

  // The effects (see the top) of the XA transaction `xid` (as in XA START
  // 'xid': format id 1, no branch qualifier), to be called once its
  // XA PREPARE has returned on another session of the same server: every
  // Table_map and Rows event of its group, preceded by those of every
  // committed group logged since the previous call that holds nothing but
  // rows (the separate sequence group of NEXTVAL; also a write made on this
  // server without distdb, which nobody should make), in binlog order,
  // without the statements on distdb_* tables. Empty when nothing remains.
  //
  // Groups that carry a statement as text (DDL, CREATE TABLE ... SELECT) are
  // skipped: distdb replicates DDL as text. So are XA COMMIT/ROLLBACK
  // groups, and groups that end in ROLLBACK (a transaction that changed a
  // non-transactional table and was rolled back: its transactional rows
  // were not kept, and which rows were is not in the log).
  //
  // How the call knows where to stop: it reads up to the XA_prepare event of
  // `xid`, which is normally on its way already (XA PREPARE wrote it before
  // it returned). But an XA transaction that changed no row writes no events
  // at all: so once the dump has had nothing to read for kQuietWait, the
  // call asks the server where its binary log ends (SHOW MASTER STATUS, one
  // round trip on a second connection) and stops there if `xid` is not met
  // before (the effects are then those of the committed groups alone,
  // usually empty). It never waits for events that will not come; a read
  // that gets no answer fails after kDumpTimeoutS. (Always asking first,
  // the simpler way, doubled the cost on a busy host: that round trip, right
  // after XA PREPARE, took 50 to 100 us there.)
  //
  // Concurrent transactions: the prepared groups of other XA ids met on the
  // way are kept (the last kMaxKeptGroups of them, each until its XA COMMIT
  // or ROLLBACK is read) for their own call, which finds them once it has
  // read to the end of the log without meeting a newer group of its id. The
  // committed rows-only groups go with whichever call reads them. An XA id
  // may be used again once its transaction was decided.
  //
  // Errors: kind sql when the group of `xid` holds a statement logged as
  // text (it cannot be shipped as rows; roll the transaction back); kind
  // storage_unavailable when the dump or the server was lost or did not
  // answer in time, after which the tap is broken: every later call fails
  // at once. The events of transactions prepared meanwhile are then out of
  // reach (a new tap starts at the end of the log): roll those back, open a
  // new tap, and go on. Kind config, the tap broken too, when the server
  // turned out to compress its row events (log_bin_compress=ON), which the
  // members' BINLOG statements would refuse.
  Result<std::string> effects_of(const std::string& xid);

  // The server's id of the dump's connection (for KILL in tests), and the
  // position in the binary log up to which events were read, as
  // "file:position" (for messages).
  unsigned long connection_id() const;
  std::string position() const;

  // A read of the dump, and SHOW MASTER STATUS, wait at most this long for
  // the server's answer. The events a call waits for are already in the
  // binary log when it starts (the server may still be syncing another
  // group to disk), so a longer wait means the server is in trouble.
  static constexpr unsigned int kDumpTimeoutS = 10;
  // How long a call reads without asking where the log ends (above).
  static constexpr std::chrono::milliseconds kQuietWait{1};
  // Prepared groups of other XA ids kept for their own call.
  static constexpr std::size_t kMaxKeptGroups = 256;

 private:
  // One binary log file's Format_description event, and whether the events
  // logged under it end with a CRC32.
  struct Fde {
    std::string bytes;
    bool crc = false;
  };
  // Filtered events of one committed group, logged under `fde`.
  struct Piece {
    std::shared_ptr<const Fde> fde;
    std::string events;
  };
  // One group in the making: from its Gtid event to its end.
  struct Group {
    bool open = false;
    std::uint8_t flags = 0;
    std::string xid;                  // an XA group's id (its gtrid)
    bool plain_xid = false;           // format id 1, no branch qualifier: the only ids matched
    std::shared_ptr<const Fde> fde;   // in force when the group began
    std::vector<std::string> events;  // its Table_map and Rows events, as read
    std::string text;                 // the first statement it logged as text, if any
  };
  // A prepared group of another XA id, kept for its own call.
  struct Kept {
    std::string xid;
    Result<std::string> events = std::string();  // filtered (logged under `fde`), or why it cannot be shipped
    std::shared_ptr<const Fde> fde;
  };
  enum class GroupEnd { committed, rolled_back, prepared, completed_xa, text };

  RowEventTap(MYSQL* control, MYSQL* dump, std::string address);

  Status start_dump(const std::string& file, std::uint64_t pos, std::uint32_t dump_server_id);
  // Whether the dump has bytes to read, waiting until `deadline` for some.
  bool dump_readable(std::chrono::steady_clock::time_point deadline) const;
  // The next event into event_ (the tap is broken when there is none).
  Status read_event();
  // Takes event_ into account; true when it ended the group of `xid`, whose
  // effects are then in `found`.
  Result<bool> process_event(const std::string& xid, std::string& found);
  Result<bool> end_group(GroupEnd how, const std::string& xid, std::string& found);
  void forget_kept(const std::string& xid);
  // Marks the tap broken; the error to return.
  Error lost(const std::string& doing);
  // The effects: the committed groups read so far, then `events` (logged
  // under `fde`), each FDE written before the first event logged under it.
  std::string take_pending(const std::shared_ptr<const Fde>& fde, std::string_view events);

  MYSQL* control_;  // SHOW MASTER STATUS
  MYSQL* dump_;     // the dump
  MARIADB_RPL* rpl_ = nullptr;
  MARIADB_RPL_EVENT* event_ = nullptr;
  std::string address_;
  bool broken_ = false;

  std::string file_;  // where the next event comes from (file, offset)
  std::uint64_t pos_ = 0;
  bool crc_ = false;  // the events being read end with a CRC32
  std::shared_ptr<const Fde> fde_;
  Group group_;
  std::vector<Piece> pending_;  // committed rows-only groups read since the last call
  std::deque<Kept> kept_;
};

}  // namespace distdb::mariadb
