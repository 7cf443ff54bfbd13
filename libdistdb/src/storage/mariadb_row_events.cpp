// Row-based shipping (see mariadb_row_events.hpp): reading a prepared XA
// transaction's row events from the coordinator's binary log, leaving out
// distdb's bookkeeping, and turning them into a BINLOG statement.
//
// Event groups. With GTIDs (always on in MariaDB 10), every group of the
// binary log starts with a Gtid event; how it ends depends on its kind
// (seen in the dump of 10.11.19; Gtid flags in parentheses):
//   prepared XA        (FL_PREPARED_XA, xid) Table_map/Rows... Query "XA END ..." XA_prepare
//   XA COMMIT/ROLLBACK (FL_STANDALONE | FL_COMPLETED_XA) Query "XA COMMIT ..."
//   DML transaction    Table_map/Rows... Xid (InnoDB) or Query "COMMIT"
//                      (the sequence group of NEXTVAL ends in "COMMIT")
//   rolled back        ... Query "ROLLBACK" (when it touched a
//                      non-transactional table, so that the log still says so)
//   DDL                (FL_STANDALONE | FL_DDL) Query "<the statement>"
//   CREATE ... SELECT  Query "CREATE TABLE ..." Write_rows... Xid
// Inside a prepared XA group, SAVEPOINT is logged as a Query "SAVEPOINT `s`"
// (a marker: no data); a ROLLBACK TO SAVEPOINT that only undid InnoDB rows
// removes them from the group and logs nothing.
//
// Leaving out distdb's tables. Row events name their table only through a
// table id, which a Table_map event of the same statement binds to
// "database.table"; a statement's run of events is its Table_maps (for
// every table it writes, its triggers included) followed by its Rows events,
// the last of which carries STMT_END_F, after which the applier forgets the
// statement's table maps. distdb's bookkeeping statements (UPDATE
// distdb_applied ..., INSERT INTO distdb_log ..., DELETE FROM distdb_log
// ...) are statements of their own that touch no other table, so their runs
// hold only events on distdb_ tables and end with their own STMT_END_F:
// dropping such a run whole leaves every other run, its STMT_END_F
// included, exactly as the server wrote it (checked on the real server by
// tests/storage/test_row_events.cpp, which parses the effects). What is
// dropped is decided per event all the same, so that a statement that
// writes both kinds of table (a trigger on a user table that writes a
// distdb_ table, which distdb itself never creates) also comes out right:
// its user-table events are kept, and when the dropped events included the
// run's last Rows event, its STMT_END_F moves to the last kept Rows event
// (whose CRC32 is then recomputed), so that the member still ends the
// statement where the coordinator did. A run left with no Rows event is
// dropped with its Table_maps.
#include "storage/mariadb_row_events.hpp"

#include <poll.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cstring>
#include <optional>
#include <unordered_map>

#include <ma_pvio.h>

#include "storage/mariadb_common.hpp"
#include "util/text.hpp"

namespace distdb::mariadb {
namespace {

// The common header of every event since binlog format 4.
constexpr std::size_t kHeaderLen = 19;
constexpr std::size_t kTypeOffset = 4;
constexpr std::size_t kLengthOffset = 9;
// Rows and Table_map events: a 6-byte table id, then 2 bytes of flags.
constexpr std::size_t kTableIdOffset = kHeaderLen;
constexpr std::size_t kFlagsOffset = kHeaderLen + 6;
constexpr std::size_t kCrcLen = 4;
constexpr std::uint16_t kStmtEnd = STMT_END_F;
// Format_description: the checksum algorithm byte sits just before the
// 4-byte checksum, which an FDE of a checksum-aware server always carries
// (1 = CRC32, 0 = none).
constexpr std::uint8_t kChecksumCrc32 = 1;

constexpr unsigned int kErSpecificAccessDenied = 1227;
constexpr unsigned int kErAccessDenied = 1045;

std::uint16_t le16(const char* p) {
  return static_cast<std::uint16_t>(static_cast<unsigned char>(p[0]) | static_cast<unsigned char>(p[1]) << 8);
}
std::uint32_t le32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(p[i]);
  return v;
}
std::uint64_t le_n(const char* p, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(p[i]);
  return v;
}
void put_le32(char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

// The binlog's CRC32 (the zlib one), over an event without its last four bytes.
std::uint32_t crc32(std::string_view data) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  for (const char ch : data) c = table[(c ^ static_cast<unsigned char>(ch)) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

bool crc_ok(std::string_view event) {
  return event.size() >= kHeaderLen + kCrcLen &&
         crc32(event.substr(0, event.size() - kCrcLen)) == le32(event.data() + event.size() - kCrcLen);
}

bool fde_has_crc(std::string_view fde) {
  return fde.size() > kHeaderLen + kCrcLen + 1 &&
         static_cast<std::uint8_t>(fde[fde.size() - kCrcLen - 1]) == kChecksumCrc32;
}

bool is_rows_type(unsigned type) {
  switch (type) {
    case WRITE_ROWS_EVENT_V1:
    case UPDATE_ROWS_EVENT_V1:
    case DELETE_ROWS_EVENT_V1:
    case WRITE_ROWS_EVENT:
    case UPDATE_ROWS_EVENT:
    case DELETE_ROWS_EVENT:
      return true;
    default:
      return false;
  }
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (lower(s[i]) != lower(prefix[i])) return false;
  }
  return true;
}
bool equals_ci(std::string_view a, std::string_view b) {
  return a.size() == b.size() && starts_with_ci(a, b);
}

// distdb's reserved name space, matched as the statement classifier
// matches it (sql/statement.cpp): case-insensitively.
bool is_bookkeeping(std::string_view table) {
  return starts_with_ci(table, "distdb_");
}

// A Table_map event's "database" and "table" (after the table id and
// flags: a length byte, the name, a NUL, for each); nullopt when it is cut short.
struct MappedTable {
  std::string database;
  std::string table;
};
std::optional<MappedTable> table_of_map(std::string_view ev) {
  std::size_t at = kFlagsOffset + 2;
  MappedTable out;
  for (std::string* name : {&out.database, &out.table}) {
    if (at >= ev.size()) return std::nullopt;
    const std::size_t len = static_cast<unsigned char>(ev[at]);
    if (at + 1 + len + 1 > ev.size()) return std::nullopt;
    name->assign(ev.substr(at + 1, len));
    at += 1 + len + 1;
  }
  return out;
}

std::uint64_t table_id_of(std::string_view ev) {
  return le_n(ev.data() + kTableIdOffset, 6);
}
std::uint16_t rows_flags_of(std::string_view ev) {
  return le16(ev.data() + kFlagsOffset);
}

Error corrupt(const std::string& what) {
  return Error(ErrorKind::invalid_request, "row effects: " + what);
}

// One statement's run (Table_maps, then Rows ending with STMT_END_F) without
// its events on distdb_ tables, appended to `out` (see the top of the file).
Status filter_run(const std::vector<std::string_view>& run, bool crc, std::string& out) {
  std::unordered_map<std::uint64_t, bool> bookkeeping;  // table id -> on a distdb_ table
  std::vector<std::string_view> kept;
  std::optional<std::size_t> last_kept_rows;
  bool end_dropped = false;
  for (const std::string_view ev : run) {
    const auto type = static_cast<unsigned char>(ev[kTypeOffset]);
    if (type == TABLE_MAP_EVENT) {
      auto mapped = table_of_map(ev);
      if (!mapped) return corrupt("a Table_map event is cut short");
      const bool ours = is_bookkeeping(mapped->table);
      bookkeeping[table_id_of(ev)] = ours;
      if (!ours) kept.push_back(ev);
      continue;
    }
    const auto it = bookkeeping.find(table_id_of(ev));
    if (it == bookkeeping.end()) {
      return corrupt("a Rows event of table id " + std::to_string(table_id_of(ev)) +
                     " has no Table_map in its statement");
    }
    if (it->second) {
      if (rows_flags_of(ev) & kStmtEnd) end_dropped = true;
    } else {
      last_kept_rows = kept.size();
      kept.push_back(ev);
    }
  }
  if (!last_kept_rows) return {};  // nothing but bookkeeping (or maps without rows): drop it all
  for (std::size_t i = 0; i < kept.size(); ++i) {
    if (i != *last_kept_rows || !end_dropped) {
      out += kept[i];
      continue;
    }
    // The statement's end was on a dropped event: the last kept one ends it now.
    std::string ev(kept[i]);
    const std::uint16_t flags = rows_flags_of(ev) | kStmtEnd;
    ev[kFlagsOffset] = static_cast<char>(flags & 0xFF);
    ev[kFlagsOffset + 1] = static_cast<char>(flags >> 8);
    if (crc) {
      put_le32(ev.data() + ev.size() - kCrcLen, crc32(std::string_view(ev).substr(0, ev.size() - kCrcLen)));
    }
    out += ev;
  }
  return {};
}

// A group's Table_map and Rows events (as read) without the statements'
// events on distdb_ tables.
Result<std::string> without_bookkeeping(const std::vector<std::string>& events, bool crc) {
  std::string out;
  std::vector<std::string_view> run;
  for (const std::string& ev : events) {
    run.push_back(ev);
    const auto type = static_cast<unsigned char>(ev[kTypeOffset]);
    if (is_rows_type(type) && (rows_flags_of(ev) & kStmtEnd)) {
      if (auto st = filter_run(run, crc, out); !st) return st.error();
      run.clear();
    }
  }
  if (!run.empty()) return corrupt("a statement's row events end without STMT_END_F");
  return out;
}

// SHOW MASTER STATUS's file and position; or nothing (log_bin is off).
struct Position {
  std::string file;
  std::uint64_t pos = 0;
};

// The number of a binlog file ("binlog.000012" -> 12): files are compared
// by it, not as text (the suffix grows past six digits).
std::uint64_t file_number(const std::string& file) {
  const auto dot = file.rfind('.');
  std::uint64_t n = 0;
  for (std::size_t i = dot == std::string::npos ? file.size() : dot + 1; i < file.size(); ++i) {
    if (file[i] < '0' || file[i] > '9') return 0;
    n = n * 10 + static_cast<std::uint64_t>(file[i] - '0');
  }
  return n;
}

bool reached(const Position& at, const Position& end) {
  const auto a = file_number(at.file);
  const auto e = file_number(end.file);
  if (a != e) return a > e;
  return at.pos >= end.pos;
}

// A session for the tap or the check: the node's usual options, without a
// database (none is needed; it may not exist yet), with `timeout_s` for reads
// and writes.
Result<MYSQL*> connect(const DbConfig& config, unsigned int timeout_s) {
  init_library_once();
  MYSQL* conn = mysql_init(nullptr);
  if (conn == nullptr) return Error(ErrorKind::storage_unavailable, "mysql_init: out of memory");
  set_session_options(conn, config, StorageAccess::read_write);
  mysql_options(conn, MYSQL_OPT_READ_TIMEOUT, &timeout_s);
  mysql_options(conn, MYSQL_OPT_WRITE_TIMEOUT, &timeout_s);
  const char* socket = config.unix_socket.empty() ? nullptr : config.unix_socket.c_str();
  if (mysql_real_connect(conn, config.host.c_str(), config.user.c_str(), config.password.c_str(), nullptr,
                         config.port, socket, 0) != nullptr) {
    return conn;
  }
  const unsigned int code = mysql_errno(conn);
  Error e(ErrorKind::storage_unavailable,
          "cannot connect to MariaDB at " + server_address(config) + ": " + mysql_error(conn),
          static_cast<int>(code));
  mysql_close(conn);
  return e;
}

struct ConnGuard {
  MYSQL* conn;
  ~ConnGuard() {
    if (conn != nullptr) mysql_close(conn);
  }
};

// The first row of `sql`'s result, as text (NULL as ""); empty when no row.
Result<std::vector<std::string>> first_row(MYSQL* conn, const std::string& sql) {
  if (mysql_real_query(conn, sql.data(), sql.size()) != 0) {
    bool broken = false;
    return call_error(conn, sql, broken);
  }
  MYSQL_RES* res = mysql_store_result(conn);
  if (res == nullptr) {
    bool broken = false;
    if (mysql_field_count(conn) > 0) return call_error(conn, sql, broken);
    return std::vector<std::string>{};
  }
  ResultGuard guard(res);
  std::vector<std::string> out;
  if (MYSQL_ROW row = mysql_fetch_row(res)) {
    const unsigned long* lengths = mysql_fetch_lengths(res);
    for (unsigned int i = 0; i < mysql_num_fields(res); ++i) {
      out.emplace_back(row[i] == nullptr ? "" : std::string(row[i], lengths[i]));
    }
  }
  return out;
}

Result<std::optional<Position>> master_status(MYSQL* conn) {
  auto row = first_row(conn, "SHOW MASTER STATUS");
  if (!row) return row.error();
  if (row->size() < 2) return std::optional<Position>();
  Position p;
  p.file = (*row)[0];
  const std::string& pos = (*row)[1];
  const auto [end, ec] = std::from_chars(pos.data(), pos.data() + pos.size(), p.pos);
  if (ec != std::errc() || end != pos.data() + pos.size()) {
    return Error(ErrorKind::storage_unavailable, "SHOW MASTER STATUS gave the position '" + pos + "'");
  }
  return std::optional<Position>(p);
}

// The account as 'user'@'host', from CURRENT_USER() ("user@host").
std::string quoted_account(const std::string& current_user) {
  const auto at = current_user.rfind('@');
  if (at == std::string::npos) return "'" + current_user + "'";
  return "'" + current_user.substr(0, at) + "'@'" + current_user.substr(at + 1) + "'";
}

// The sentences of check_row_capture() (and of RowEventTap::open(), which
// meets the same problems): one per setting or privilege.
std::string no_binlog(const std::string& where) {
  return "the MariaDB server at " + where +
         " writes no binary log: start it with log_bin (and binlog_format=ROW) for row-based replication.";
}
std::string compressed(const std::string& where) {
  return "the MariaDB server at " + where +
         " compresses the row events of its binary log, which BINLOG statements refuse (error 1730): set "
         "log_bin_compress=OFF (SET GLOBAL log_bin_compress=OFF, and in its configuration).";
}
std::string lacks(const std::string& account, const std::string& where, const std::string& privilege,
                  const std::string& what) {
  return "the account " + account + " on the MariaDB server at " + where + " cannot " + what + ": GRANT " +
         privilege + " ON *.* TO " + account + ".";
}
std::string lacks_monitor(const std::string& account, const std::string& where) {
  return lacks(account, where, "BINLOG MONITOR", "read where the binary log ends (SHOW MASTER STATUS)");
}
std::string lacks_slave(const std::string& account, const std::string& where) {
  return lacks(account, where, "REPLICATION SLAVE", "read the binary log");
}
std::string lacks_replay(const std::string& account, const std::string& where) {
  return lacks(account, where, "BINLOG REPLAY", "apply row events (BINLOG statements)");
}

// A dump opened on `conn` at `at` and read up to the first Format_description
// event (sent at once, after a Rotate naming the file): the FDE's bytes.
Result<std::string> first_fde(MYSQL* conn, const Position& at, std::uint32_t server_id, unsigned int flags) {
  const std::string setup =
      "SET @master_binlog_checksum = @@global.binlog_checksum, @mariadb_slave_capability = 4";
  if (mysql_real_query(conn, setup.data(), setup.size()) != 0) {
    bool broken = false;
    return call_error(conn, setup, broken);
  }
  MARIADB_RPL* rpl = mariadb_rpl_init(conn);
  if (rpl == nullptr) return Error(ErrorKind::storage_unavailable, "mariadb_rpl_init: out of memory");
  mariadb_rpl_optionsv(rpl, MARIADB_RPL_FILENAME, at.file.c_str(), at.file.size());
  mariadb_rpl_optionsv(rpl, MARIADB_RPL_START, static_cast<unsigned long>(at.pos));
  mariadb_rpl_optionsv(rpl, MARIADB_RPL_SERVER_ID, static_cast<unsigned int>(server_id));
  mariadb_rpl_optionsv(rpl, MARIADB_RPL_FLAGS, flags);
  Result<std::string> out = Error(ErrorKind::storage_unavailable, "no Format_description event");
  if (mariadb_rpl_open(rpl) == 0) {
    for (int i = 0; i < 8; ++i) {
      MARIADB_RPL_EVENT* ev = mariadb_rpl_fetch(rpl, nullptr);
      if (ev == nullptr) break;
      const bool fde = ev->event_type == FORMAT_DESCRIPTION_EVENT;
      if (fde) {
        out = std::string(reinterpret_cast<const char*>(ev->raw_data + ev->raw_data_ofs), ev->event_length);
      }
      mariadb_free_rpl_event(ev);
      if (fde) break;
    }
  }
  if (!out && mysql_errno(conn) != 0) {
    bool broken = false;
    out = call_error(conn, "COM_BINLOG_DUMP", broken);
  }
  mariadb_rpl_close(rpl);
  return out;
}

}  // namespace

// --- The effects string -------------------------------------------------------

Result<std::vector<EffectsEvent>> parse_effects(std::string_view effects) {
  std::vector<EffectsEvent> out;
  bool crc = false;
  bool in_statement = false;
  std::unordered_map<std::uint64_t, std::string> maps;  // of the current statement
  std::size_t at = 0;
  while (at < effects.size()) {
    if (effects.size() - at < kHeaderLen) {
      return corrupt("an event is cut short at byte " + std::to_string(at));
    }
    const std::uint32_t len = le32(effects.data() + at + kLengthOffset);
    if (len < kHeaderLen + 2 || len > effects.size() - at) {
      return corrupt("an event at byte " + std::to_string(at) + " claims " + std::to_string(len) + " bytes");
    }
    EffectsEvent ev;
    ev.bytes = effects.substr(at, len);
    ev.type = static_cast<std::uint8_t>(ev.bytes[kTypeOffset]);
    at += len;
    if (out.empty() && ev.type != FORMAT_DESCRIPTION_EVENT) {
      return corrupt("does not start with a Format_description event");
    }
    if (ev.type == FORMAT_DESCRIPTION_EVENT) {
      if (in_statement) return corrupt("a Format_description event inside a statement");
      crc = fde_has_crc(ev.bytes);
      if (crc && !crc_ok(ev.bytes)) return corrupt("a Format_description event fails its CRC32");
      out.push_back(ev);
      continue;
    }
    if (crc && !crc_ok(ev.bytes)) {
      return corrupt("an event of type " + std::to_string(ev.type) + " fails its CRC32");
    }
    if (ev.bytes.size() < kFlagsOffset + 2) {
      return corrupt("an event of type " + std::to_string(ev.type) + " is cut short");
    }
    ev.table_id = table_id_of(ev.bytes);
    if (ev.type == TABLE_MAP_EVENT) {
      auto mapped = table_of_map(ev.bytes);
      if (!mapped) return corrupt("a Table_map event is cut short");
      ev.table = mapped->database + "." + mapped->table;
      maps[ev.table_id] = ev.table;
      in_statement = true;
    } else if (is_rows_type(ev.type)) {
      ev.rows_flags = rows_flags_of(ev.bytes);
      if (maps.find(ev.table_id) == maps.end()) {
        return corrupt("a Rows event of table id " + std::to_string(ev.table_id) +
                       " has no Table_map in its statement");
      }
      in_statement = true;
      if (ev.rows_flags & kStmtEnd) {
        in_statement = false;
        maps.clear();
      }
    } else {
      return corrupt("holds an event of type " + std::to_string(ev.type) +
                     " (only Table_map and Rows belong there)");
    }
    out.push_back(ev);
  }
  if (in_statement) return corrupt("the last statement's row events end without STMT_END_F");
  if (out.size() == 1) return corrupt("a Format_description event alone");
  return out;
}

Result<std::string> rename_database(std::string_view effects, std::string_view from, std::string_view to) {
  if (to.empty() || to.size() > 64) return corrupt("'" + std::string(to) + "' is not a database name");
  if (effects.empty()) return std::string();
  auto events = parse_effects(effects);
  if (!events) return events.error();
  std::string out;
  out.reserve(effects.size());
  bool crc = false;
  for (const EffectsEvent& ev : *events) {
    if (ev.type == FORMAT_DESCRIPTION_EVENT) crc = fde_has_crc(ev.bytes);
    const std::size_t db_at = kFlagsOffset + 2;  // length byte, name, NUL
    const std::size_t db_len = ev.type == TABLE_MAP_EVENT ? static_cast<unsigned char>(ev.bytes[db_at]) : 0;
    if (ev.type != TABLE_MAP_EVENT || ev.bytes.substr(db_at + 1, db_len) != from) {
      out += ev.bytes;
      continue;
    }
    const std::size_t tail = crc ? kCrcLen : 0;
    std::string renamed(ev.bytes.substr(0, db_at));
    renamed += static_cast<char>(to.size());
    renamed += to;
    renamed += ev.bytes.substr(db_at + 1 + db_len, ev.bytes.size() - (db_at + 1 + db_len) - tail);
    if (crc) renamed.append(kCrcLen, '\0');
    put_le32(renamed.data() + kLengthOffset, static_cast<std::uint32_t>(renamed.size()));
    if (crc) {
      put_le32(renamed.data() + renamed.size() - kCrcLen,
               crc32(std::string_view(renamed).substr(0, renamed.size() - kCrcLen)));
    }
    out += renamed;
  }
  return out;
}

std::string apply_statement(std::string_view effects) {
  if (effects.empty()) return {};
  return "BINLOG '" + text::base64_encode(effects) + "'";
}

Result<std::vector<std::string>> apply_statements(std::string_view effects, std::size_t max_statement_bytes) {
  std::vector<std::string> out;
  if (effects.empty()) return out;
  auto events = parse_effects(effects);
  if (!events) return events.error();
  const auto statement_size = [](std::size_t bytes) { return (bytes + 2) / 3 * 4 + 9; };
  std::string_view fde;  // in force
  std::string piece;     // the BINLOG statement being filled, as raw events
  bool piece_has_rows = false;
  std::size_t run_start = 0;  // offset in `effects` of the current statement's first event
  for (std::size_t i = 0; i < events->size(); ++i) {
    const EffectsEvent& ev = (*events)[i];
    const std::size_t offset = static_cast<std::size_t>(ev.bytes.data() - effects.data());
    if (ev.type == FORMAT_DESCRIPTION_EVENT) {
      fde = ev.bytes;
      if (piece_has_rows) piece += fde;  // a rotation between two statements of this piece
      run_start = offset + ev.bytes.size();
      continue;
    }
    if (!is_rows_type(ev.type) || !(ev.rows_flags & kStmtEnd)) continue;
    const std::string_view run = effects.substr(run_start, offset + ev.bytes.size() - run_start);
    run_start = offset + ev.bytes.size();
    if (piece_has_rows && statement_size(piece.size() + run.size()) > max_statement_bytes) {
      out.push_back(apply_statement(piece));
      piece.clear();
      piece_has_rows = false;
    }
    if (!piece_has_rows) piece.assign(fde);
    piece += run;
    piece_has_rows = true;
  }
  if (piece_has_rows) out.push_back(apply_statement(piece));
  return out;
}

// --- Checking a server ------------------------------------------------------------

Status check_row_capture(const DbConfig& config, std::vector<std::string>* warnings) {
  constexpr unsigned int kCheckTimeoutS = 10;
  const std::string where = server_address(config);
  auto opened = connect(config, kCheckTimeoutS);
  if (!opened) return opened.error();
  ConnGuard conn{*opened};
  auto settings = first_row(
      conn.conn,
      "SELECT @@global.log_bin, @@global.binlog_format, @@global.binlog_row_image, "
      "@@global.sync_binlog, @@global.innodb_flush_log_at_trx_commit, CURRENT_USER(), "
      "@@global.log_bin_trust_function_creators, @@global.log_bin_compress, @@global.slave_exec_mode, "
      "@@global.slave_run_triggers_for_rbr");
  if (!settings) {
    return Error(ErrorKind::storage_unavailable,
                 "cannot read the binary log settings of the MariaDB server at " + where + ": " +
                     settings.error().message,
                 settings.error().code);
  }
  if (settings->size() < 10) {
    return Error(ErrorKind::storage_unavailable, "no answer from the MariaDB server at " + where);
  }
  const auto& s = *settings;
  const std::string account = quoted_account(s[5]);
  std::vector<std::string> problems;
  const bool log_bin = s[0] == "1";
  if (!log_bin) problems.push_back(no_binlog(where));
  if (log_bin && s[1] != "ROW") {
    problems.push_back(
        "the MariaDB server at " + where + " logs binlog_format=" + s[1] +
        ": set binlog_format=ROW (SET GLOBAL binlog_format=ROW, and in its configuration) so that "
        "it logs every change as rows.");
  }
  if (log_bin && s[2] != "FULL") {
    problems.push_back(
        "the MariaDB server at " + where + " logs binlog_row_image=" + s[2] +
        ": set binlog_row_image=FULL (SET GLOBAL binlog_row_image=FULL, and in its configuration) "
        "so that updates and deletes carry whole rows.");
  }
  if (log_bin && s[7] != "0") problems.push_back(compressed(where));
  // How this server applies another's row events (it is a member too).
  if (s[8] != "STRICT") {
    problems.push_back("the MariaDB server at " + where + " runs with slave_exec_mode=" + s[8] +
                       ", under which an applied row event whose row is missing changes nothing instead of "
                       "failing: set slave_exec_mode=STRICT.");
  }
  if (s[9] == "ENFORCE") {
    problems.push_back(
        "the MariaDB server at " + where +
        " runs with slave_run_triggers_for_rbr=ENFORCE, under which applying the rows of a table "
        "with triggers fails (error 1442): set slave_run_triggers_for_rbr=NO.");
  }
  if (warnings != nullptr && log_bin && s[3] != "1") {
    warnings->push_back("the MariaDB server at " + where + " runs with sync_binlog=" + s[3] +
                        ": a crash of its host may lose the binary log events of transactions it reported "
                        "prepared; set sync_binlog=1.");
  }
  if (warnings != nullptr && s[4] != "1") {
    warnings->push_back("the MariaDB server at " + where +
                        " runs with innodb_flush_log_at_trx_commit=" + s[4] +
                        ": a crash of its host may lose transactions it reported prepared or committed; set "
                        "innodb_flush_log_at_trx_commit=1.");
  }
  if (warnings != nullptr && log_bin && s[6] != "1") {
    warnings->push_back(
        "the MariaDB server at " + where +
        " refuses CREATE FUNCTION without DETERMINISTIC, NO SQL or READS SQL DATA while it writes a "
        "binary log (error 1418): set log_bin_trust_function_creators=1, which is safe in row "
        "format (functions are not run again from the log).");
  }
  if (log_bin) {
    // The privileges, by trying what each one allows; only the binary
    // log gives an FDE to try BINLOG with.
    auto end = master_status(conn.conn);
    if (!end && end.error().code == static_cast<int>(kErSpecificAccessDenied)) {
      problems.push_back(lacks_monitor(account, where));
    } else if (!end) {
      return Error(ErrorKind::storage_unavailable,
                   "cannot read the binary log position of the MariaDB server at " + where + ": " +
                       end.error().message,
                   end.error().code);
    } else if (*end) {
      auto dump_conn = connect(config, kCheckTimeoutS);
      if (!dump_conn) return dump_conn.error();
      ConnGuard dump{*dump_conn};
      // server_id 0 with a non-blocking dump: not registered as a replica,
      // so it cannot displace one (see the header).
      auto fde = first_fde(dump.conn, **end, 0, MARIADB_RPL_BINLOG_DUMP_NON_BLOCK);
      if (!fde && fde.error().code == static_cast<int>(kErSpecificAccessDenied)) {
        problems.push_back(lacks_slave(account, where));
      } else if (!fde) {
        return Error(
            ErrorKind::storage_unavailable,
            "cannot read the binary log of the MariaDB server at " + where + ": " + fde.error().message,
            fde.error().code);
      } else {
        const std::string binlog = apply_statement(*fde);
        if (mysql_real_query(conn.conn, binlog.data(), binlog.size()) != 0) {
          const unsigned int code = mysql_errno(conn.conn);
          if (code == kErSpecificAccessDenied || code == kErAccessDenied) {
            problems.push_back(lacks_replay(account, where));
          } else {
            bool broken = false;
            const Error e = call_error(conn.conn, "BINLOG", broken);
            problems.push_back("the MariaDB server at " + where +
                               " refused a BINLOG statement: " + e.message + ".");
          }
        }
      }
    }
  }
  if (problems.empty()) return {};
  std::string message;
  for (const std::string& p : problems) message += (message.empty() ? "" : " ") + p;
  return Error(ErrorKind::config, message);
}

// --- The tap ------------------------------------------------------------------------

RowEventTap::RowEventTap(MYSQL* control, MYSQL* dump, std::string address)
    : control_(control), dump_(dump), address_(std::move(address)) {}

RowEventTap::~RowEventTap() {
  if (event_ != nullptr) mariadb_free_rpl_event(event_);
  if (rpl_ != nullptr) mariadb_rpl_close(rpl_);
  // Closing the socket ends the server's dump thread the next time it writes;
  // a new dump with the same server_id also ends it at once.
  if (dump_ != nullptr) mysql_close(dump_);
  if (control_ != nullptr) mysql_close(control_);
}

Result<std::unique_ptr<RowEventTap>> RowEventTap::open(const DbConfig& config, std::uint32_t dump_server_id) {
  const std::string where = server_address(config);
  auto control = connect(config, kDumpTimeoutS);
  if (!control) return control.error();
  auto dump = connect(config, kDumpTimeoutS);
  if (!dump) {
    mysql_close(*control);
    return dump.error();
  }
  std::unique_ptr<RowEventTap> tap(new RowEventTap(*control, *dump, where));
  auto account = first_row(tap->control_, "SELECT CURRENT_USER()");
  const std::string who = account && !account->empty() ? quoted_account(account->front()) : "of distdb";
  auto end = master_status(tap->control_);
  if (!end && end.error().code == static_cast<int>(kErSpecificAccessDenied)) {
    return Error(ErrorKind::config, lacks_monitor(who, where), end.error().code);
  }
  if (!end) return end.error();
  if (!*end) return Error(ErrorKind::config, no_binlog(where));
  if (auto st = tap->start_dump((*end)->file, (*end)->pos, dump_server_id); !st) {
    if (st.error().code == static_cast<int>(kErSpecificAccessDenied)) {
      return Error(ErrorKind::config, lacks_slave(who, where), st.error().code);
    }
    return st.error();
  }
  return tap;
}

Status RowEventTap::start_dump(const std::string& file, std::uint64_t pos, std::uint32_t dump_server_id) {
  const std::string setup =
      "SET @master_binlog_checksum = @@global.binlog_checksum, @mariadb_slave_capability = 4";
  if (mysql_real_query(dump_, setup.data(), setup.size()) != 0) {
    bool broken = false;
    return call_error(dump_, setup, broken);
  }
  // What the dump's first Rotate is written with (each FDE says it for the
  // events of its file).
  auto alg = first_row(dump_, "SELECT @master_binlog_checksum");
  if (!alg) return alg.error();
  crc_ = !alg->empty() && alg->front() == "CRC32";
  rpl_ = mariadb_rpl_init(dump_);
  if (rpl_ == nullptr) return Error(ErrorKind::storage_unavailable, "mariadb_rpl_init: out of memory");
  mariadb_rpl_optionsv(rpl_, MARIADB_RPL_FILENAME, file.c_str(), file.size());
  mariadb_rpl_optionsv(rpl_, MARIADB_RPL_START, static_cast<unsigned long>(pos));
  mariadb_rpl_optionsv(rpl_, MARIADB_RPL_SERVER_ID, static_cast<unsigned int>(dump_server_id));
  mariadb_rpl_optionsv(rpl_, MARIADB_RPL_FLAGS, 0u);  // blocking: the dump waits for new events
  file_ = file;
  pos_ = pos;
  if (mariadb_rpl_open(rpl_) != 0) {
    bool broken = false;
    return call_error(dump_, "COM_BINLOG_DUMP", broken);
  }
  // The server sends a Rotate naming the file and that file's FDE at once:
  // read them here, so that a refused dump fails open() and not the first
  // transaction.
  std::string unused;
  while (fde_ == nullptr) {
    if (auto st = read_event(); !st) {
      bool broken = false;
      return mysql_errno(dump_) != 0 ? Status(call_error(dump_, "COM_BINLOG_DUMP", broken)) : st;
    }
    auto r = process_event("", unused);
    if (!r) return r.error();
  }
  return {};
}

unsigned long RowEventTap::connection_id() const {
  return mysql_thread_id(dump_);
}

std::string RowEventTap::position() const {
  return file_ + ":" + std::to_string(pos_);
}

Error RowEventTap::lost(const std::string& doing) {
  broken_ = true;
  const unsigned int code = mysql_errno(dump_);
  std::string why = code != 0 ? std::string(mysql_error(dump_)) + " (" + std::to_string(code) + ")"
                              : std::string("the server ended the dump");
  return Error(
      ErrorKind::storage_unavailable,
      "the binary log dump of the MariaDB server at " + address_ + " was lost " + doing + " at " +
          position() + ": " + why +
          "; the effects of transactions prepared since cannot be captured (roll them back) and a new "
          "tap must be opened",
      static_cast<int>(code));
}

Status RowEventTap::read_event() {
  if (event_ != nullptr) {
    mariadb_free_rpl_event(event_);
    event_ = nullptr;
  }
  // A new event each time (the connector can reuse one, but after a failed
  // fetch it is not clear whether it freed the one it was given).
  event_ = mariadb_rpl_fetch(rpl_, nullptr);
  if (event_ == nullptr) return lost("while reading");
  return {};
}

bool RowEventTap::dump_readable(std::chrono::steady_clock::time_point deadline) const {
  // Bytes the connector has already taken from the socket (it reads ahead
  // into this cache) are not seen by poll(). Its fields are those of
  // Connector/C's public ma_pvio.h; a TLS library's own buffer is not seen
  // here either, which only means asking the server once more.
  const MARIADB_PVIO* pvio = dump_->net.pvio;
  if (pvio != nullptr && pvio->cache != nullptr && pvio->cache_pos < pvio->cache + pvio->cache_size) {
    return true;
  }
  const auto now = std::chrono::steady_clock::now();
  if (now >= deadline) return false;
  const auto wait = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
  pollfd fd{};
  fd.fd = static_cast<int>(mysql_get_socket(dump_));
  fd.events = POLLIN;
  // (Readable also when the connection failed: the fetch then says so.)
  return ::poll(&fd, 1, static_cast<int>(wait.count())) > 0;
}

Result<std::string> RowEventTap::effects_of(const std::string& xid) {
  if (broken_) {
    return Error(ErrorKind::storage_unavailable, "the binary log dump of the MariaDB server at " + address_ +
                                                     " was lost earlier: a new tap must be opened");
  }
  // Where to stop when `xid` is not met: the end of the log, asked of the
  // server only when the dump has been quiet for kQuietWait (see the header).
  std::optional<Position> stop;
  const auto deadline = std::chrono::steady_clock::now() + kQuietWait;
  std::string found;
  for (;;) {
    // (While a group is open, the rest of it is on its way.)
    if (!group_.open) {
      if (!stop && !dump_readable(deadline)) {
        auto end = master_status(control_);
        if (!end || !*end) {
          broken_ = true;
          return Error(ErrorKind::storage_unavailable,
                       "cannot read where the binary log of the MariaDB server at " + address_ + " ends: " +
                           (end ? std::string("SHOW MASTER STATUS returned nothing") : end.error().message) +
                           "; a new tap must be opened");
        }
        stop = **end;
      }
      if (stop && reached(Position{file_, pos_}, *stop)) break;
    }
    if (auto st = read_event(); !st) return st.error();
    auto done = process_event(xid, found);
    if (!done) return done.error();
    if (*done) return found;
  }
  // Not in what was logged since the previous call: read earlier, while
  // another call was looking for its own group (always read to the end
  // first: an id can come again, and only its latest group counts)...
  for (auto it = kept_.begin(); it != kept_.end(); ++it) {
    if (it->xid != xid) continue;
    Kept kept = std::move(*it);
    kept_.erase(it);
    if (!kept.events) return kept.events.error();
    return take_pending(kept.fde, *kept.events);
  }
  // ... or `xid` logged nothing: only the committed groups read on the way.
  return take_pending(nullptr, {});
}

// What the current event means; true when it ended the group of `xid`, whose
// effects are then in `found`.
Result<bool> RowEventTap::process_event(const std::string& xid, std::string& found) {
  const MARIADB_RPL_EVENT& ev = *event_;
  const std::string_view raw(reinterpret_cast<const char*>(ev.raw_data + ev.raw_data_ofs), ev.event_length);
  if (raw.size() < kHeaderLen || le32(raw.data() + kLengthOffset) != raw.size()) {
    broken_ = true;
    return Error(ErrorKind::storage_unavailable, "the binary log dump of the MariaDB server at " + address_ +
                                                     " sent a malformed event at " + position());
  }
  if (ev.event_type != ROTATE_EVENT && ev.event_type != HEARTBEAT_LOG_EVENT && ev.next_event_pos != 0) {
    pos_ = ev.next_event_pos;
  }
  switch (ev.event_type) {
    case ROTATE_EVENT: {
      // Parsed here: Connector/C 3.3 misreads the name of a Rotate that is
      // not the dump's first. Body: the position (8 bytes), then the name
      // up to the checksum, if any (a fake Rotate, sent before the next
      // file's FDE, has the one the dump asked for: tell by the CRC itself).
      const std::size_t tail = crc_ok(raw) ? kCrcLen : 0;
      if (raw.size() < kHeaderLen + 8 + tail) break;
      pos_ = le_n(raw.data() + kHeaderLen, 8);
      file_.assign(raw.substr(kHeaderLen + 8, raw.size() - kHeaderLen - 8 - tail));
      break;
    }
    case FORMAT_DESCRIPTION_EVENT: {
      auto fde = std::make_shared<Fde>();
      fde->bytes.assign(raw);
      fde->crc = fde_has_crc(raw);
      crc_ = fde->crc;
      fde_ = std::move(fde);
      break;
    }
    case GTID_EVENT: {
      // (A group still open here never ended: it cannot happen, and the new
      // group starts over.)
      group_ = Group();
      group_.open = true;
      group_.flags = ev.event.gtid.flags;
      group_.fde = fde_;
      if (ev.event.gtid.flags & (FL_PREPARED_XA | FL_COMPLETED_XA)) {
        group_.plain_xid = ev.event.gtid.format_id == 1 && ev.event.gtid.bqual_len == 0;
        if (ev.event.gtid.xid.str != nullptr) {
          group_.xid.assign(ev.event.gtid.xid.str, ev.event.gtid.gtrid_len);
        }
      }
      break;
    }
    case TABLE_MAP_EVENT:
      if (!group_.open) break;
      if (raw.size() < kFlagsOffset + 2 || table_id_of(raw) != ev.event.table_map.table_id) {
        broken_ = true;
        return Error(ErrorKind::internal, "a Table_map event of the MariaDB server at " + address_ + " at " +
                                              position() + " is not laid out as expected");
      }
      group_.events.emplace_back(raw);
      break;
    case QUERY_EVENT: {
      if (!group_.open) break;
      const std::string_view sql(ev.event.query.statement.str, ev.event.query.statement.length);
      if (equals_ci(sql, "COMMIT")) return end_group(GroupEnd::committed, xid, found);
      if (equals_ci(sql, "ROLLBACK")) return end_group(GroupEnd::rolled_back, xid, found);
      if (starts_with_ci(sql, "XA COMMIT") || starts_with_ci(sql, "XA ROLLBACK")) {
        return end_group(GroupEnd::completed_xa, xid, found);
      }
      if (equals_ci(sql, "BEGIN") || starts_with_ci(sql, "XA END") || starts_with_ci(sql, "SAVEPOINT")) break;
      if (group_.text.empty()) group_.text.assign(sql.substr(0, 200));
      if (group_.flags & FL_STANDALONE) return end_group(GroupEnd::text, xid, found);
      break;
    }
    case XID_EVENT:
      if (!group_.open) break;
      return end_group(GroupEnd::committed, xid, found);
    case XA_PREPARE_LOG_EVENT:
      if (!group_.open) break;
      // XA COMMIT ... ONE PHASE logs its group like this, committed.
      return end_group(ev.event.xa_prepare_log.one_phase ? GroupEnd::committed : GroupEnd::prepared, xid,
                       found);
    case WRITE_ROWS_COMPRESSED_EVENT_V1:
    case UPDATE_ROWS_COMPRESSED_EVENT_V1:
    case DELETE_ROWS_COMPRESSED_EVENT_V1:
    case WRITE_ROWS_COMPRESSED_EVENT:
    case UPDATE_ROWS_COMPRESSED_EVENT:
    case DELETE_ROWS_COMPRESSED_EVENT:
      // Never shipped (BINLOG refuses them), never skipped either.
      broken_ = true;
      return Error(ErrorKind::config, compressed(address_));
    case INCIDENT_EVENT:
      broken_ = true;
      return Error(ErrorKind::storage_unavailable,
                   "the binary log of the MariaDB server at " + address_ + " reports an incident at " +
                       position() + " (events it could not log): what follows cannot be shipped as rows");
    default:
      if (is_rows_type(ev.event_type)) {
        if (!group_.open) break;
        if (raw.size() < kFlagsOffset + 2 || rows_flags_of(raw) != ev.event.rows.flags ||
            table_id_of(raw) != ev.event.rows.table_id) {
          broken_ = true;
          return Error(ErrorKind::internal, "a Rows event of the MariaDB server at " + address_ + " at " +
                                                position() + " is not laid out as expected");
        }
        group_.events.emplace_back(raw);
        break;
      }
      // Gtid_list, Binlog_checkpoint, Annotate_rows, Heartbeat, Stop: nothing
      // to ship. Intvar, Rand and User_var come with a Query, which decides.
      break;
  }
  return false;
}

Result<bool> RowEventTap::end_group(GroupEnd how, const std::string& xid, std::string& found) {
  Group g = std::move(group_);
  group_ = Group();
  const bool crc = g.fde != nullptr && g.fde->crc;
  switch (how) {
    case GroupEnd::completed_xa:
      // Decided: nobody asks for its effects any more (and its id may come again).
      if (g.plain_xid) forget_kept(g.xid);
      return false;
    case GroupEnd::rolled_back:
    case GroupEnd::text:
      return false;
    case GroupEnd::committed: {
      if (!g.text.empty() || g.events.empty()) return false;  // DDL, CREATE ... SELECT: replicated as text
      auto events = without_bookkeeping(g.events, crc);
      if (!events) {
        broken_ = true;
        return Error(ErrorKind::internal, "the binary log of the MariaDB server at " + address_ + " before " +
                                              position() + ": " + events.error().message);
      }
      if (!events->empty()) pending_.push_back(Piece{g.fde, std::move(*events)});
      return false;
    }
    case GroupEnd::prepared:
      break;
  }
  Result<std::string> events = std::string();
  if (!g.text.empty()) {
    events = Error(ErrorKind::sql, "XA transaction '" + g.xid + "' logged a statement as text ('" + g.text +
                                       "'), which row-based shipping cannot send: roll it back");
  } else {
    events = without_bookkeeping(g.events, crc);
    if (!events) {
      events =
          Error(ErrorKind::internal, "the events of XA transaction '" + g.xid + "' in the binary log of " +
                                         address_ + ": " + events.error().message);
    }
  }
  if (g.plain_xid && g.xid == xid) {
    // (On an error the committed groups read so far stay for the next call:
    // a sequence's new state must reach the members all the same.)
    forget_kept(g.xid);
    if (!events) return events.error();
    found = take_pending(g.fde, *events);
    return true;
  }
  if (g.plain_xid) {
    forget_kept(g.xid);
    kept_.push_back(Kept{g.xid, std::move(events), g.fde});
    if (kept_.size() > kMaxKeptGroups) kept_.pop_front();
  }
  return false;
}

void RowEventTap::forget_kept(const std::string& xid) {
  for (auto it = kept_.begin(); it != kept_.end();) it = it->xid == xid ? kept_.erase(it) : it + 1;
}

std::string RowEventTap::take_pending(const std::shared_ptr<const Fde>& fde, std::string_view events) {
  std::string out;
  const Fde* in_force = nullptr;
  auto add = [&](const Fde* f, std::string_view evs) {
    if (evs.empty() || f == nullptr) return;
    if (f != in_force) {
      out += f->bytes;
      in_force = f;
    }
    out += evs;
  };
  for (const Piece& p : pending_) add(p.fde.get(), p.events);
  pending_.clear();
  add(fde.get(), events);
  return out;
}

}  // namespace distdb::mariadb
