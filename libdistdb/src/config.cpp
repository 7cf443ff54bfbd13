#include "distdb/config.hpp"
#include "util/pem.hpp"
#include "auth/scram.hpp"
#include "util/json.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <string_view>
#include <system_error>
#include <unordered_set>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

namespace distdb {

const char* to_string(StorageBackend backend) {
  switch (backend) {
    case StorageBackend::sqlite: return "sqlite";
    case StorageBackend::mariadb: return "mariadb";
  }
  return "sqlite";
}

const char* to_string(Replication replication) {
  return replication == Replication::rows ? "rows" : "statements";
}

const char* to_string(LogLevel level) {
  switch (level) {
    case LogLevel::trace: return "trace";
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warn";
    case LogLevel::error: return "error";
    case LogLevel::off: return "off";
  }
  return "info";
}

const char* to_string(ClientCertificates mode) {
  switch (mode) {
    case ClientCertificates::none:
      return "none";
    case ClientCertificates::optional:
      return "optional";
    case ClientCertificates::required:
      return "required";
  }
  return "none";
}

const char* to_string(ClientAuth mode) {
  switch (mode) {
    case ClientAuth::users: return "users";
    case ClientAuth::database: return "database";
    case ClientAuth::off: return "off";
  }
  return "users";
}

std::optional<LogLevel> parse_log_level(const std::string& text) {
  std::string lower;
  lower.reserve(text.size());
  for (const char c : text) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "warning") return LogLevel::warn;  // the spelling most loggers accept
  for (const LogLevel level :
       {LogLevel::trace, LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error, LogLevel::off}) {
    if (lower == to_string(level)) return level;
  }
  return std::nullopt;
}

namespace {

using JsonValue = rapidjson::Value;

// Iterative parsing keeps the call stack flat however deep the input nests;
// the structure walk below then refuses anything deeper than kMaxDepth.
constexpr unsigned kParseFlags =
    rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag | rapidjson::kParseFullPrecisionFlag;
constexpr int kMaxDepth = 64;
constexpr std::size_t kMaxFileBytes = 16u * 1024 * 1024;  // a config is a few hundred bytes

// Some error, or none: the result of every check below.
using Check = std::optional<Error>;

enum class Need { optional, required };



// A key as it appears in a field path: control characters would garble the
// one-line message, so they are shown as '?'.
std::string printable(std::string_view key) {
  std::string out(key);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? printable(key) : path + "." + printable(key);
}

std::string index_path(const std::string& path, std::size_t i) { return path + "[" + std::to_string(i) + "]"; }

std::string format_real(double d) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, d);
  std::string s(buf, r.ptr);
  if (std::isfinite(d) && s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

const JsonValue* find(const JsonValue& obj, std::string_view key) {
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
    if (json::text(it->name) == key) return &it->value;
  }
  return nullptr;
}

// 1-based line and column (in bytes) of a byte offset.
std::pair<std::size_t, std::size_t> line_and_column(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  std::size_t line = 1;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return {line, offset - line_start + 1};
}

bool is_blank(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

class ConfigReader {
 public:
  explicit ConfigReader(std::string source) : source_(std::move(source)) {}

  Result<Config> read(std::string_view text);

 private:
  Error error(const std::string& path, const std::string& what) const {
    return Error(ErrorKind::config, source_ + ": " + (path.empty() ? "top level" : path) + ": " + what);
  }
  void warn(const std::string& path, const std::string& what) {
    warnings_.push_back(source_ + ": " + path + ": " + what);
  }

  Check parse(std::string_view text, rapidjson::Document& doc) const;
  Check check_structure(const JsonValue& v, const std::string& path, int depth) const;
  Check check_keys(const JsonValue& obj, const std::string& path, std::initializer_list<std::string_view> allowed) const;
  Check expect_object(const JsonValue& v, const std::string& path) const;
  Check to_int(const JsonValue& v, const std::string& field, std::int64_t lo, std::int64_t hi, std::int64_t& out) const;
  Check read_int(const JsonValue& obj, const std::string& path, const char* key, std::int64_t lo, std::int64_t hi,
                 Need need, std::int64_t& out) const;
  Check read_string(const JsonValue& obj, const std::string& path, const char* key, Need need, bool non_empty,
                    std::string& out) const;

  template <class T>
  Check read_number(const JsonValue& obj, const std::string& path, const char* key, std::int64_t lo, std::int64_t hi,
                    Need need, T& out) const {
    std::int64_t v = 0;
    if (find(obj, key) == nullptr && need == Need::optional) return std::nullopt;
    if (auto e = read_int(obj, path, key, lo, hi, need, v)) return e;
    out = static_cast<T>(v);
    return std::nullopt;
  }

  Check read_local_node(const JsonValue& root, Config& cfg);
  Check read_db_config(const JsonValue& v, const std::string& path, DbConfig& db);
  Check read_db_setting(const JsonValue& v, const std::string& field, std::string_view canonical, DbConfig& db) const;
  Check read_storage(const JsonValue& v, const std::string& path, StorageConfig& storage) const;
  Check read_peer(const JsonValue& v, const std::string& path, PeerConfig& peer) const;
  Check read_peers(const JsonValue& root, Config& cfg) const;
  Check read_log_level(const JsonValue& root, Config& cfg) const;
  Check read_timeouts(const JsonValue& root, TimeoutConfig& t) const;
  Check read_limits(const JsonValue& root, LimitConfig& l) const;
  Check read_security(const JsonValue& root, SecurityConfig& s) const;
  Check read_tls(const JsonValue& v, const std::string& path, const Config& cfg,
                 std::optional<TlsConfig>& tls) const;
  Check read_client_auth(const JsonValue& root, Config& cfg);
  Check read_user(const JsonValue& v, const std::string& path, ClientUser& user) const;
  Check check_members(const Config& cfg) const;
  void warn_unknown_top_level(const JsonValue& root);

  std::string source_;
  std::vector<std::string> warnings_;
};

Check ConfigReader::parse(std::string_view text, rapidjson::Document& doc) const {
  if (is_blank(text)) return Error(ErrorKind::config, source_ + ": empty config (expected a JSON object)");
  const rapidjson::ParseResult result = json::parse<kParseFlags>(text, doc);
  if (!result.IsError()) return std::nullopt;
  const auto [line, column] = line_and_column(text, result.Offset());
  return Error(ErrorKind::config, source_ + ":" + std::to_string(line) + ":" + std::to_string(column) +
                                      ": invalid JSON: " + rapidjson::GetParseError_En(result.Code()));
}

// Walks the whole document once: RapidJSON keeps the last of two equal keys
// without a word, and a config whose "port" appears twice is a mistake the
// user should hear about. The depth bound keeps this recursion shallow.
Check ConfigReader::check_structure(const JsonValue& v, const std::string& path, int depth) const {
  if (depth > kMaxDepth) return error(path, "nested deeper than " + std::to_string(kMaxDepth) + " levels");
  if (v.IsArray()) {
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
      if (auto e = check_structure(v[i], index_path(path, i), depth + 1)) return e;
    }
  } else if (v.IsObject()) {
    std::unordered_set<std::string_view> seen;
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
      const std::string field = join(path, json::text(it->name));
      if (!seen.insert(json::text(it->name)).second) return error(field, "duplicate key");
      if (auto e = check_structure(it->value, field, depth + 1)) return e;
    }
  }
  return std::nullopt;
}

// Our own sections refuse unknown keys: a misspelt "heartbeat_timout_ms"
// silently falling back to its default would be worse than an error.
Check ConfigReader::check_keys(const JsonValue& obj, const std::string& path,
                               std::initializer_list<std::string_view> allowed) const {
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
    const std::string_view name = json::text(it->name);
    if (std::find(allowed.begin(), allowed.end(), name) != allowed.end()) continue;
    std::string expected;
    for (const std::string_view a : allowed) expected += (expected.empty() ? "" : ", ") + std::string(a);
    return error(join(path, name), "unknown key (expected one of: " + expected + ")");
  }
  return std::nullopt;
}

Check ConfigReader::expect_object(const JsonValue& v, const std::string& path) const {
  if (v.IsObject()) return std::nullopt;
  return error(path, std::string("expected an object, got ") + json::type_name(v));
}

Check ConfigReader::to_int(const JsonValue& v, const std::string& field, std::int64_t lo, std::int64_t hi,
                           std::int64_t& out) const {
  const std::string range = "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
  if (v.IsInt64()) {
    const std::int64_t x = v.GetInt64();
    if (x < lo || x > hi) return error(field, range + " (got " + std::to_string(x) + ")");
    out = x;
    return std::nullopt;
  }
  if (v.IsUint64()) return error(field, range + " (got " + std::to_string(v.GetUint64()) + ")");
  if (v.IsDouble()) {
    const double d = v.GetDouble();
    // A whole number RapidJSON could only store as a double was written as
    // an integer too large for 64 bits: report it as out of range.
    if (std::trunc(d) == d && std::fabs(d) >= 9.2e18) return error(field, range + " (got " + format_real(d) + ")");
    return error(field, "expected an integer, got a real number (" + format_real(d) + ")");
  }
  return error(field, std::string("expected an integer, got ") + json::type_name(v));
}

Check ConfigReader::read_int(const JsonValue& obj, const std::string& path, const char* key, std::int64_t lo,
                             std::int64_t hi, Need need, std::int64_t& out) const {
  const std::string field = join(path, key);
  const JsonValue* v = find(obj, key);
  if (v == nullptr) return need == Need::required ? Check(error(field, "missing required field")) : std::nullopt;
  return to_int(*v, field, lo, hi, out);
}

Check ConfigReader::read_string(const JsonValue& obj, const std::string& path, const char* key, Need need,
                                bool non_empty, std::string& out) const {
  const std::string field = join(path, key);
  const JsonValue* v = find(obj, key);
  if (v == nullptr) return need == Need::required ? Check(error(field, "missing required field")) : std::nullopt;
  if (!v->IsString()) return error(field, std::string("expected a string, got ") + json::type_name(*v));
  if (non_empty && v->GetStringLength() == 0) return error(field, "must be a non-empty string");
  out.assign(v->GetString(), v->GetStringLength());
  return std::nullopt;
}

constexpr std::int64_t kMaxNodeId = std::numeric_limits<NodeId>::max();
constexpr std::int64_t kMaxInt = std::numeric_limits<int>::max();

Check ConfigReader::read_local_node(const JsonValue& root, Config& cfg) {
  const JsonValue* node = find(root, "local_node");
  if (node == nullptr) return error("local_node", "missing required field");
  const std::string path = "local_node";
  if (auto e = expect_object(*node, path)) return e;
  if (auto e = check_keys(*node, path, {"id", "ip", "port", "db_config", "listen_ip", "storage"})) return e;
  if (auto e = read_number(*node, path, "id", 1, kMaxNodeId, Need::required, cfg.id)) return e;
  if (auto e = read_string(*node, path, "ip", Need::required, true, cfg.ip)) return e;
  if (auto e = read_number(*node, path, "port", 1, 65535, Need::required, cfg.port)) return e;
  cfg.listen_ip = cfg.ip;
  if (auto e = read_string(*node, path, "listen_ip", Need::optional, true, cfg.listen_ip)) return e;

  // The seed's configs carry db_config and keep their MySQL; without it a
  // node needs nothing installed and uses SQLite.
  const JsonValue* db = find(*node, "db_config");
  cfg.storage.backend = db != nullptr ? StorageBackend::mariadb : StorageBackend::sqlite;
  cfg.storage.sqlite_path = "distdb-node-" + std::to_string(cfg.id) + ".db";
  if (db != nullptr) {
    if (auto e = read_db_config(*db, join(path, "db_config"), cfg.storage.db)) return e;
  }
  if (const JsonValue* storage = find(*node, "storage")) {
    if (auto e = read_storage(*storage, join(path, "storage"), cfg.storage)) return e;
  }
  return std::nullopt;
}

// mysql-connector-python's own aliases (kept for old configs).
std::string_view canonical_db_key(std::string_view key) {
  if (key == "db") return "database";
  if (key == "passwd") return "password";
  if (key == "username") return "user";
  if (key == "connect_timeout") return "connection_timeout";
  return key;
}

bool is_used_db_key(std::string_view key) {
  for (const std::string_view k : {"host", "port", "user", "password", "database", "unix_socket", "connection_timeout"}) {
    if (k == key) return true;
  }
  return false;
}

Check ConfigReader::read_db_setting(const JsonValue& v, const std::string& field, std::string_view canonical,
                                    DbConfig& db) const {
  if (canonical == "port" || canonical == "connection_timeout") {
    // connection_timeout is in seconds, as connector-python takes it.
    const bool is_port = canonical == "port";
    std::int64_t n = 0;
    if (auto e = to_int(v, field, 1, is_port ? 65535 : 86400, n)) return e;
    if (is_port) {
      db.port = static_cast<std::uint16_t>(n);
    } else {
      db.connect_timeout_ms = static_cast<int>(n * 1000);
    }
    return std::nullopt;
  }
  if (!v.IsString()) return error(field, std::string("expected a string, got ") + json::type_name(v));
  std::string text(v.GetString(), v.GetStringLength());
  if (canonical == "host") {
    if (text.empty()) return error(field, "must be a non-empty string");
    db.host = std::move(text);
  } else if (canonical == "user") {
    db.user = std::move(text);
  } else if (canonical == "password") {
    db.password = std::move(text);
  } else if (canonical == "database") {
    db.database = std::move(text);
  } else {
    db.unix_socket = std::move(text);
  }
  return std::nullopt;
}

// db_config is the keyword arguments of connector-python's connect(), which
// an existing config may fill with settings we have no use for (charset,
// auth_plugin, ...): those are reported, never refused.
Check ConfigReader::read_db_config(const JsonValue& v, const std::string& path, DbConfig& db) {
  if (auto e = expect_object(v, path)) return e;
  std::vector<std::pair<std::string_view, std::string_view>> given;  // canonical key, key as written
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
    const std::string_view key = json::text(it->name);
    const std::string_view canonical = canonical_db_key(key);
    const std::string field = join(path, key);
    if (!is_used_db_key(canonical)) {
      warn(field, "ignored (not a connection setting distdb uses)");
      continue;
    }
    for (const auto& [c, written] : given) {
      if (c == canonical) return error(field, "same setting as " + join(path, written));
    }
    given.emplace_back(canonical, key);
    if (it->value.IsNull()) continue;  // Python's None: the default
    if (auto e = read_db_setting(it->value, field, canonical, db)) return e;
  }
  return std::nullopt;
}

Check ConfigReader::read_storage(const JsonValue& v, const std::string& path, StorageConfig& storage) const {
  if (auto e = expect_object(v, path)) return e;
  if (auto e = check_keys(v, path, {"backend", "path", "pool_size", "replication", "spool_dir"})) return e;
  std::string backend;
  if (auto e = read_string(v, path, "backend", Need::optional, false, backend)) return e;
  if (backend == "sqlite") {
    storage.backend = StorageBackend::sqlite;
  } else if (backend == "mariadb" || backend == "mysql") {
    storage.backend = StorageBackend::mariadb;
  } else if (find(v, "backend") != nullptr) {
    return error(join(path, "backend"), "must be \"sqlite\" or \"mariadb\" (got \"" + printable(backend) + "\")");
  }
  if (auto e = read_string(v, path, "path", Need::optional, true, storage.sqlite_path)) return e;
  if (auto e = read_string(v, path, "spool_dir", Need::optional, true, storage.spool_dir)) return e;
  std::string replication;
  if (auto e = read_string(v, path, "replication", Need::optional, false, replication)) return e;
  if (replication == "rows") {
    storage.replication = Replication::rows;
  } else if (replication == "statements") {
    storage.replication = Replication::statements;
  } else if (find(v, "replication") != nullptr) {
    return error(join(path, "replication"),
                 "must be \"rows\" or \"statements\" (got \"" + printable(replication) + "\")");
  }
  return read_number(v, path, "pool_size", 1, 256, Need::optional, storage.pool_size);
}

Check ConfigReader::read_peer(const JsonValue& v, const std::string& path, PeerConfig& peer) const {
  if (auto e = expect_object(v, path)) return e;
  if (auto e = check_keys(v, path, {"id", "ip", "port"})) return e;
  if (auto e = read_number(v, path, "id", 1, kMaxNodeId, Need::required, peer.id)) return e;
  if (auto e = read_string(v, path, "ip", Need::required, true, peer.ip)) return e;
  return read_number(v, path, "port", 1, 65535, Need::required, peer.port);
}

Check ConfigReader::read_peers(const JsonValue& root, Config& cfg) const {
  const JsonValue* peers = find(root, "peers");
  if (peers == nullptr) return std::nullopt;  // a cluster of one
  if (!peers->IsArray()) return error("peers", std::string("expected an array, got ") + json::type_name(*peers));
  cfg.peers.resize(peers->Size());
  for (rapidjson::SizeType i = 0; i < peers->Size(); ++i) {
    if (auto e = read_peer((*peers)[i], index_path("peers", i), cfg.peers[i])) return e;
  }
  return std::nullopt;
}

Check ConfigReader::read_log_level(const JsonValue& root, Config& cfg) const {
  std::string text;
  if (auto e = read_string(root, "", "log_level", Need::optional, false, text)) return e;
  if (find(root, "log_level") == nullptr) return std::nullopt;
  const auto level = parse_log_level(text);
  if (!level) {
    return error("log_level", "must be one of trace, debug, info, warn, error, off (got \"" + printable(text) + "\")");
  }
  cfg.log_level = *level;
  return std::nullopt;
}

Check ConfigReader::read_timeouts(const JsonValue& root, TimeoutConfig& t) const {
  const JsonValue* v = find(root, "timeouts");
  if (v == nullptr) return std::nullopt;
  const std::string path = "timeouts";
  if (auto e = expect_object(*v, path)) return e;
  if (auto e = check_keys(*v, path,
                          {"heartbeat_interval_ms", "heartbeat_timeout_ms", "request_timeout_ms",
                           "idle_timeout_ms", "read_timeout_ms", "login_timeout_ms", "checksum_interval_ms"})) {
    return e;
  }
  const std::pair<const char*, int*> fields[] = {{"heartbeat_interval_ms", &t.heartbeat_interval_ms},
                                                 {"heartbeat_timeout_ms", &t.heartbeat_timeout_ms},
                                                 {"request_timeout_ms", &t.request_timeout_ms},
                                                 {"idle_timeout_ms", &t.idle_timeout_ms},
                                                 {"read_timeout_ms", &t.read_timeout_ms},
                                                 {"login_timeout_ms", &t.login_timeout_ms}};
  for (const auto& [key, target] : fields) {
    if (auto e = read_number(*v, path, key, 1, kMaxInt, Need::optional, *target)) return e;
  }
  if (auto e = read_number(*v, path, "checksum_interval_ms", 0, kMaxInt, Need::optional, t.checksum_interval_ms)) {
    return e;
  }
  if (t.heartbeat_timeout_ms > t.heartbeat_interval_ms) return std::nullopt;
  // Blame the key the user wrote: with only one of the two set, the other
  // is a default they may not know about.
  const std::string interval = std::to_string(t.heartbeat_interval_ms);
  const std::string timeout = std::to_string(t.heartbeat_timeout_ms);
  if (find(*v, "heartbeat_timeout_ms") != nullptr) {
    return error(join(path, "heartbeat_timeout_ms"),
                 "must be greater than heartbeat_interval_ms (got " + timeout + ", interval " + interval + ")");
  }
  return error(join(path, "heartbeat_interval_ms"), "must be less than heartbeat_timeout_ms (got " + interval +
                                                        ", default timeout " + timeout + ")");
}

Check ConfigReader::read_limits(const JsonValue& root, LimitConfig& l) const {
  const JsonValue* v = find(root, "limits");
  if (v == nullptr) return std::nullopt;
  const std::string path = "limits";
  if (auto e = expect_object(*v, path)) return e;
  if (auto e =
          check_keys(*v, path,
                     {"max_message_bytes", "max_peer_message_bytes", "max_connections",
                      "max_pending_per_connection", "log_retention_entries", "max_connections_per_source",
                      "max_unauthenticated_connections", "max_unauthenticated_per_source",
                      "max_unauthenticated_message_bytes", "max_output_bytes_per_connection"})) {
    return e;
  }
  if (auto e = read_number(*v, path, "max_message_bytes", 1024, 1073741824, Need::optional, l.max_message_bytes)) {
    return e;
  }
  if (auto e = read_number(*v, path, "max_peer_message_bytes", 1024, 4294967296, Need::optional,
                           l.max_peer_message_bytes)) {
    return e;
  }
  if (auto e = read_number(*v, path, "log_retention_entries", 1, 100000000, Need::optional,
                           l.log_retention_entries)) {
    return e;
  }
  // Counts of connections: at least one for the totals; 0 for a limit per
  // source address means none (every client behind one proxy or NAT). A
  // value above max_connections is allowed and simply never reached.
  const struct {
    const char* key;
    std::int64_t lowest;
    std::int64_t highest;
    int* target;
  } counts[] = {{"max_connections", 1, 100000, &l.max_connections},
                {"max_pending_per_connection", 1, 1000000, &l.max_pending_per_connection},
                {"max_connections_per_source", 0, 100000, &l.max_connections_per_source},
                {"max_unauthenticated_connections", 1, 100000, &l.max_unauthenticated_connections},
                {"max_unauthenticated_per_source", 0, 100000, &l.max_unauthenticated_per_source}};
  for (const auto& c : counts) {
    if (auto e = read_number(*v, path, c.key, c.lowest, c.highest, Need::optional, *c.target)) return e;
  }
  // Byte bounds below 1 KiB would refuse a login or stall every reply.
  if (auto e = read_number(*v, path, "max_unauthenticated_message_bytes", 1024, 1073741824, Need::optional,
                           l.max_unauthenticated_message_bytes)) {
    return e;
  }
  return read_number(*v, path, "max_output_bytes_per_connection", 1024, 1073741824, Need::optional,
                     l.max_output_bytes_per_connection);
}

// The secret itself never appears in a message: only its length does.
Check ConfigReader::read_security(const JsonValue& root, SecurityConfig& s) const {
  const JsonValue* v = find(root, "security");
  if (v == nullptr) return std::nullopt;
  const std::string path = "security";
  if (auto e = expect_object(*v, path)) return e;
  if (auto e = check_keys(*v, path, {"cluster_secret", "tls", "client_auth", "users"})) return e;
  if (auto e = read_string(*v, path, "cluster_secret", Need::optional, false, s.cluster_secret)) return e;
  constexpr std::size_t kMinSecretBytes = 16;
  if (!s.cluster_secret.empty() && s.cluster_secret.size() < kMinSecretBytes) {
    return error(join(path, "cluster_secret"), "must be at least " + std::to_string(kMinSecretBytes) +
                                                   " bytes (got " + std::to_string(s.cluster_secret.size()) + ")");
  }
  return std::nullopt;
}

// security.tls: the file names only; load_config() checks the files.
Check ConfigReader::read_tls(const JsonValue& v, const std::string& path, const Config& cfg,
                             std::optional<TlsConfig>& tls) const {
  if (auto e = expect_object(v, path)) return e;
  if (auto e = check_keys(v, path, {"certificate", "key", "ca", "client_certificates"})) return e;
  TlsConfig t;
  if (auto e = read_string(v, path, "certificate", Need::required, true, t.certificate)) return e;
  if (auto e = read_string(v, path, "key", Need::required, true, t.key)) return e;
  if (auto e = read_string(v, path, "ca", Need::optional, true, t.ca)) return e;
  std::string mode;
  if (auto e = read_string(v, path, "client_certificates", Need::optional, false, mode)) return e;
  if (find(v, "client_certificates") != nullptr) {
    if (mode == "none") {
      t.client_certificates = ClientCertificates::none;
    } else if (mode == "optional") {
      t.client_certificates = ClientCertificates::optional;
    } else if (mode == "required") {
      t.client_certificates = ClientCertificates::required;
    } else {
      return error(join(path, "client_certificates"),
                   "must be \"none\", \"optional\" or \"required\" (got \"" + printable(mode) + "\")");
    }
  }
  // The CA is what peers' and clients' certificates are checked against:
  // without it there would be nothing to verify them with.
  if (t.ca.empty() && !cfg.peers.empty()) {
    return error(join(path, "ca"), "missing required field (needed to verify the peers' certificates)");
  }
  if (t.ca.empty() && t.client_certificates != ClientCertificates::none) {
    return error(join(path, "ca"),
                 std::string("missing required field (needed to verify client certificates, "
                             "client_certificates is \"") +
                     to_string(t.client_certificates) + "\")");
  }
  tls = std::move(t);
  return std::nullopt;
}

// A user's password entry is a verifier; what is wrong with one is said
// without repeating it (it may be a password pasted by mistake).
Check ConfigReader::read_user(const JsonValue& v, const std::string& path, ClientUser& user) const {
  if (auto e = expect_object(v, path)) return e;
  if (auto e = check_keys(v, path, {"name", "password"})) return e;
  if (auto e = read_string(v, path, "name", Need::required, true, user.name)) return e;
  if (!auth::is_valid_user_name(user.name)) {
    return error(join(path, "name"), "must be 1 to " + std::to_string(auth::kMaxUserBytes) +
                                         " bytes of UTF-8 without control characters");
  }
  if (auto e = read_string(v, path, "password", Need::required, false, user.verifier)) return e;
  if (auto verifier = auth::parse_verifier(user.verifier); !verifier) {
    return error(join(path, "password"), verifier.error().message);
  }
  return std::nullopt;
}

// Who may run SQL: security.client_auth and security.users. The default
// depends on the storage, read before this.
Check ConfigReader::read_client_auth(const JsonValue& root, Config& cfg) {
  constexpr std::size_t kMaxUsers = 10000;
  SecurityConfig& s = cfg.security;
  const std::string path = "security";
  const JsonValue* security = find(root, "security");
  const JsonValue* mode = security != nullptr ? find(*security, "client_auth") : nullptr;
  const JsonValue* users = security != nullptr ? find(*security, "users") : nullptr;

  if (users != nullptr) {
    const std::string users_path = join(path, "users");
    if (!users->IsArray())
      return error(users_path, std::string("expected an array, got ") + json::type_name(*users));
    if (users->Size() > kMaxUsers)
      return error(users_path, "more than " + std::to_string(kMaxUsers) + " users");
    s.users.resize(users->Size());
    for (rapidjson::SizeType i = 0; i < users->Size(); ++i) {
      const std::string user_path = index_path(users_path, i);
      if (auto e = read_user((*users)[i], user_path, s.users[i])) return e;
      for (rapidjson::SizeType j = 0; j < i; ++j) {
        if (s.users[j].name == s.users[i].name) {
          return error(join(user_path, "name"), "duplicate user \"" + printable(s.users[i].name) +
                                                    "\" (also " + index_path(users_path, j) + ")");
        }
      }
    }
  }

  const std::string mode_path = join(path, "client_auth");
  const bool mariadb = cfg.storage.backend == StorageBackend::mariadb;
  const std::string port = std::to_string(cfg.port);
  if (mode == nullptr) {
    if (users != nullptr) {
      s.client_auth = ClientAuth::users;
    } else if (mariadb) {
      s.client_auth = ClientAuth::database;
    } else {
      return error(
          mode_path,
          "clients must authenticate: list them in security.users (distdb-node --hash-password makes each "
          "password entry), or set \"client_auth\": \"off\" for a local demo (anyone who reaches port " +
              port + " can then run SQL)");
    }
  } else {
    std::string text;
    if (auto e = read_string(*security, path, "client_auth", Need::required, false, text)) return e;
    if (text == "users") {
      s.client_auth = ClientAuth::users;
    } else if (text == "database") {
      s.client_auth = ClientAuth::database;
    } else if (text == "off") {
      s.client_auth = ClientAuth::off;
    } else {
      return error(mode_path, "must be \"users\", \"database\" or \"off\" (got \"" + printable(text) + "\")");
    }
  }

  if (s.client_auth == ClientAuth::users && s.users.empty()) {
    return error(
        join(path, "users"),
        "client_auth is \"users\" but no user is listed (distdb-node --hash-password makes each password "
        "entry)");
  }
  if (s.client_auth == ClientAuth::database && !mariadb) {
    return error(
        mode_path,
        "\"database\" checks logins against the node's MariaDB, but this node keeps its data in SQLite; "
        "list users in security.users instead, or set \"off\" for a local demo");
  }
  if (s.client_auth != ClientAuth::users && !s.users.empty()) {
    warn(join(path, "users"), std::string("ignored (client_auth is \"") + to_string(s.client_auth) + "\")");
  }
  return std::nullopt;
}

// Ids order the election and addresses are where members are reached: both
// must be unique across the cluster as this node sees it.
Check ConfigReader::check_members(const Config& cfg) const {
  const auto address = [](const std::string& ip, std::uint16_t port) { return ip + ":" + std::to_string(port); };
  for (std::size_t i = 0; i < cfg.peers.size(); ++i) {
    const PeerConfig& p = cfg.peers[i];
    const std::string path = index_path("peers", i);
    if (p.id == cfg.id) {
      return error(path + ".id", std::to_string(p.id) + " is this node's own id (local_node.id); list only the others");
    }
    if (p.ip == cfg.ip && p.port == cfg.port) {
      return error(path, "address " + address(p.ip, p.port) + " is also local_node's");
    }
    for (std::size_t j = 0; j < i; ++j) {
      const PeerConfig& q = cfg.peers[j];
      if (q.id == p.id) {
        return error(path + ".id", "duplicate id " + std::to_string(p.id) + " (also " + index_path("peers", j) + ")");
      }
      if (q.ip == p.ip && q.port == p.port) {
        return error(path, "address " + address(p.ip, p.port) + " is also " + index_path("peers", j) + "'s");
      }
    }
  }
  return std::nullopt;
}

// Keys we do not know at the top level may belong to a newer version or to
// a tool sharing the file: reported, not refused.
void ConfigReader::warn_unknown_top_level(const JsonValue& root) {
  for (auto it = root.MemberBegin(); it != root.MemberEnd(); ++it) {
    const std::string_view name = json::text(it->name);
    if (name == "local_node" || name == "peers" || name == "log_level" || name == "timeouts" || name == "limits" ||
        name == "security") {
      continue;
    }
    warn(join("", name), "unknown key, ignored");
  }
}

Result<Config> ConfigReader::read(std::string_view text) {
  // Editors on Windows like to start UTF-8 files with a byte order mark.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  rapidjson::Document doc;
  if (auto e = parse(text, doc)) return *e;
  if (auto e = expect_object(doc, "")) return *e;
  if (auto e = check_structure(doc, "", 0)) return *e;

  Config cfg;
  if (auto e = read_local_node(doc, cfg)) return *e;
  if (auto e = read_peers(doc, cfg)) return *e;
  if (auto e = read_log_level(doc, cfg)) return *e;
  if (auto e = read_timeouts(doc, cfg.timeouts)) return *e;
  if (auto e = read_limits(doc, cfg.limits)) return *e;
  if (auto e = read_security(doc, cfg.security)) return *e;
  if (const JsonValue* security = find(doc, "security"); security != nullptr && security->IsObject()) {
    if (const JsonValue* tls = find(*security, "tls")) {
      if (auto e = read_tls(*tls, "security.tls", cfg, cfg.security.tls)) return *e;
    }
  }
  if (auto e = check_members(cfg)) return *e;
  if (auto e = read_client_auth(doc, cfg)) return *e;
  warn_unknown_top_level(doc);
  cfg.warnings = std::move(warnings_);
  return cfg;
}

Result<std::string> read_file(const std::string& path) {
  const auto cannot_read = [&path](int err) {
    return Error(ErrorKind::config, path + ": cannot read: " + std::generic_category().message(err));
  };
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return cannot_read(errno);
  std::string text;
  char buf[8192];
  std::size_t n = 0;
  while (text.size() <= kMaxFileBytes && (n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  const int err = std::ferror(f) ? errno : 0;  // e.g. EISDIR: fopen accepts a directory
  std::fclose(f);
  if (err != 0) return cannot_read(err);
  if (text.size() > kMaxFileBytes) {
    return Error(ErrorKind::config, path + ": file too large (over " + std::to_string(kMaxFileBytes) + " bytes)");
  }
  return text;
}

// SQLite's special names are not files next to the config.
bool is_relative_file(const std::string& sqlite_path) {
  if (sqlite_path == ":memory:" || sqlite_path.rfind("file:", 0) == 0) return false;
  return std::filesystem::path(sqlite_path).is_relative();
}

std::string resolve(const std::filesystem::path& dir, const std::string& file) {
  if (dir.empty() || !std::filesystem::path(file).is_relative()) return file;
  return (dir / file).string();
}

// The files of security.tls: each one loads, and the key is the
// certificate's. Errors name the field and the file, never the key's bytes.
std::optional<Error> check_tls_files(const TlsConfig& tls, const std::string& source) {
  const auto fail = [&source](const char* field, const Error& e) {
    return Error(ErrorKind::config, source + ": security.tls." + field + ": " + e.message);
  };
  auto chain = pem::read_certificates(tls.certificate);
  if (!chain) return fail("certificate", chain.error());
  auto key = pem::read_private_key(tls.key);
  if (!key) return fail("key", key.error());
  if (!pem::key_matches(*chain->front(), **key)) {
    return Error(ErrorKind::config, source + ": security.tls.key: " + tls.key +
                                        ": not the private key of the certificate in " + tls.certificate +
                                        " (security.tls.certificate)");
  }
  if (!tls.ca.empty()) {
    auto ca = pem::read_certificates(tls.ca);
    if (!ca) return fail("ca", ca.error());
  }
  return std::nullopt;
}

}  // namespace

Result<Config> parse_config(const std::string& json_text, const std::string& source) {
  try {
    return ConfigReader(source).read(json_text);
  } catch (const std::exception& e) {  // out of memory; nothing in the reader throws otherwise
    return Error(ErrorKind::config, source + ": " + e.what());
  }
}

Result<Config> load_config(const std::string& path) {
  try {
    auto text = read_file(path);
    if (!text) return text.error();
    auto cfg = parse_config(*text, path);
    if (!cfg) return cfg;
    const std::filesystem::path dir = std::filesystem::path(path).parent_path();
    if (is_relative_file(cfg->storage.sqlite_path))
      cfg->storage.sqlite_path = resolve(dir, cfg->storage.sqlite_path);
    if (!cfg->storage.spool_dir.empty()) cfg->storage.spool_dir = resolve(dir, cfg->storage.spool_dir);
    if (auto& tls = cfg->security.tls) {
      tls->certificate = resolve(dir, tls->certificate);
      tls->key = resolve(dir, tls->key);
      if (!tls->ca.empty()) tls->ca = resolve(dir, tls->ca);
      if (auto e = check_tls_files(*tls, path)) return *e;
    }
    return cfg;
  } catch (const std::exception& e) {
    return Error(ErrorKind::config, path + ": " + e.what());
  }
}

}  // namespace distdb
