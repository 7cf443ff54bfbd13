// Node configuration: the seed's config.json, plus optional extensions.
//
//   {
//     "local_node": {
//       "id": 1, "ip": "127.0.0.1", "port": 5000,
//       "db_config": {"user": "root", "password": "...", "host": "localhost", "database": "dist_db"}
//     },
//     "peers": [{"id": 2, "ip": "127.0.0.1", "port": 5001}]
//   }
//
// Every extension is optional; see docs/configuration.md for the full list.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "distdb/error.hpp"
#include "distdb/export.hpp"

namespace distdb {

using NodeId = std::uint32_t;

struct PeerConfig {
  NodeId id = 0;
  std::string ip;
  std::uint16_t port = 0;
};

enum class StorageBackend { sqlite, mariadb };

DISTDB_API const char* to_string(StorageBackend backend);

// The connection settings of mysql-connector-python's connect() that the seed
// used (host, port, user, password, database, unix_socket).
struct DbConfig {
  std::string host = "localhost";
  std::uint16_t port = 3306;
  std::string user = "root";
  std::string password;
  std::string database = "dist_db";
  std::string unix_socket;  // empty: connect over TCP (or the client library's default socket for "localhost")
  int connect_timeout_ms = 5000;
};

// How the coordinator tells the other members what an entry wrote
// (docs/design.md section 3).
//   statements  each member runs the statements itself. Any storage.
//               Statements whose result could differ between members
//               (UUID(), NOW(6), random(), ...) are refused.
//   rows        the coordinator runs them and ships the rows they changed,
//               which every member applies: whatever the statements
//               evaluated is stored identically everywhere. MariaDB reads
//               them from its binary log in row format (each server needs
//               log_bin, binlog_format=ROW and binlog_row_image=FULL, and
//               the account REPLICATION SLAVE, BINLOG MONITOR and BINLOG
//               REPLAY); SQLite records them with its session extension
//               (every table written needs a PRIMARY KEY).
// The default is statements (docs/design.md, "The default", says why).
enum class Replication { statements, rows };
DISTDB_API const char* to_string(Replication replication);

struct StorageConfig {
  // Defaults to mariadb when local_node.db_config is present (the seed's
  // configs keep talking to their MySQL/MariaDB), to sqlite otherwise.
  StorageBackend backend = StorageBackend::sqlite;
  std::string sqlite_path = "distdb-node.db";  // relative paths are relative to the config file
  DbConfig db;
  int pool_size = 4;  // connections serving reads concurrently
  Replication replication = Replication::statements;
  // Where full copies of the data are written while they are made, sent and
  // installed (each as large as the database; readable by the node's user
  // only). Empty: a private directory the node makes under the system's
  // temporary directory ($TMPDIR) and removes when it stops.
  std::string spool_dir;
};

struct TimeoutConfig {
  int heartbeat_interval_ms = 200;
  int heartbeat_timeout_ms = 1000;
  int request_timeout_ms = 30000;   // a client request that takes longer is answered with a timeout error
  int idle_timeout_ms = 300000;     // a connection silent for this long is closed
  int read_timeout_ms = 10000;      // a started message must be complete within this
  // A connection not logged in (nor recognised as a member's) this long after
  // it was accepted gets an error and is closed. Not applied with
  // security.client_auth "off", where every connection counts as logged in.
  int login_timeout_ms = 10000;
  // How often the coordinator has every member compare a checksum of its
  // data at the same log position (docs/design.md, "Divergence is detected
  // and repaired"); 0: only on request (distdb-cli's :check).
  int checksum_interval_ms = 300000;
};

struct LimitConfig {
  std::size_t max_message_bytes = 4 * 1024 * 1024;
  // Frames between members (a full copy of the data travels as one) once a
  // connection has shown it is a member's: see Transport::trust_as_peer().
  std::size_t max_peer_message_bytes = 512 * 1024 * 1024;
  // Log entries kept for members that fall behind; one further behind gets
  // a full copy of the data instead.
  std::size_t log_retention_entries = 100000;
  int max_connections = 1024;
  int max_pending_per_connection = 1024;  // pipelined requests queued on one connection
  // Connections from one source address (0: no limit per address).
  int max_connections_per_source = 256;
  // Connections not logged in yet (see TimeoutConfig::login_timeout_ms), in
  // all and from one source address (0: no limit per address).
  int max_unauthenticated_connections = 256;
  int max_unauthenticated_per_source = 32;
  // Largest frame before a connection has logged in (the smaller of this and
  // max_message_bytes applies); also the bound below before login.
  std::size_t max_unauthenticated_message_bytes = 64 * 1024;
  // Replies waiting to be written to one connection: past this the node
  // reads no more of its requests and starts none of those already read
  // until the client has read its replies.
  std::size_t max_output_bytes_per_connection = 1024 * 1024;
};

enum class LogLevel { trace, debug, info, warn, error, off };

DISTDB_API const char* to_string(LogLevel level);
DISTDB_API std::optional<LogLevel> parse_log_level(const std::string& text);

// Whether the node asks the clients of its port for a certificate.
enum class ClientCertificates {
  none,      // not asked for
  optional,  // asked for; a client without one is served, one with a bad one is refused
  required,  // a client (or peer) without a certificate that verifies against `ca` is refused
};

DISTDB_API const char* to_string(ClientCertificates mode);

// TLS on the node's port and on its links to the other members
// (docs/security.md). load_config() resolves relative paths against the
// config file's directory and checks that the files load.
struct TlsConfig {
  std::string certificate;  // PEM: this node's certificate, optionally followed by its chain
  std::string key;          // PEM: its private key, not encrypted
  std::string ca;           // PEM bundle that peers' and clients' certificates must chain to
  ClientCertificates client_certificates = ClientCertificates::none;
};

// How clients log in before they may run SQL (docs/security.md):
//   users     SCRAM-SHA-256 against SecurityConfig::users
//   database  a user and password of the node's MariaDB, checked by logging
//             in to it (the client sends them only over TLS or to a loopback
//             address unless it allows otherwise)
//   off       nobody is authenticated: anyone who reaches the port runs SQL
//             (local demos; a warning says so at startup)
enum class ClientAuth { users, database, off };

DISTDB_API const char* to_string(ClientAuth mode);

// A client account: its name and its SCRAM-SHA-256 verifier,
//   "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"
// (`distdb-node --hash-password` makes one), never the password itself.
struct ClientUser {
  std::string name;
  std::string verifier;
};

// Authentication of clients and of the messages between members, and TLS
// (docs/security.md).
struct SecurityConfig {
  // Every member must hold the same secret (at least 16 bytes); each peer
  // message then carries an HMAC-SHA256 of it and anti-replay numbers, and
  // peer messages without a valid one are refused. Empty: peer messages are
  // not authenticated (a warning says so at startup).
  std::string cluster_secret;

  // Present: the node's port speaks only TLS, and links to peers use it too.
  // Absent: plaintext, for trusted networks only.
  std::optional<TlsConfig> tls;
  // A config file that does not choose gets `users` when it lists users,
  // `database` when the data is in MariaDB, and is refused otherwise (SQLite
  // without users). Node::start() refuses `users` without any user and
  // `database` without MariaDB storage.
  ClientAuth client_auth = ClientAuth::users;
  std::vector<ClientUser> users;
};

struct Config {
  NodeId id = 0;
  std::string ip;             // the address peers and clients use
  std::uint16_t port = 0;
  std::string listen_ip;      // where to bind; defaults to ip
  std::vector<PeerConfig> peers;
  StorageConfig storage;
  TimeoutConfig timeouts;
  LimitConfig limits;
  SecurityConfig security;
  LogLevel log_level = LogLevel::info;
  std::vector<std::string> warnings;  // ignored keys and the like, for the caller to log
};

// Parses a config. `source` names it in error messages (usually the path).
// Errors have kind ErrorKind::config and a message of the form
//   "<source>: <field>: <what is wrong>"  or  "<source>:<line>:<column>: invalid JSON: ..."
DISTDB_API Result<Config> parse_config(const std::string& json_text, const std::string& source);

// Reads and parses a config file; relative storage and TLS file paths resolve
// against its directory, and the TLS files are checked (readable, PEM, the key
// matching the certificate).
DISTDB_API Result<Config> load_config(const std::string& path);

}  // namespace distdb
