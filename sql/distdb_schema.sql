-- distdb's own bookkeeping tables, created automatically by every node
-- (ensure_distdb_schema() in libdistdb/src/storage/storage.cpp holds the same
-- statements; keep the two in step). Portable: runs on SQLite and MariaDB.
-- The two INSERTs seed the tables; distdb only runs each one when its row is
-- missing, so run them by hand only on empty tables.
CREATE TABLE IF NOT EXISTS distdb_meta (name VARCHAR(64) PRIMARY KEY, value VARCHAR(255) NOT NULL);
CREATE TABLE IF NOT EXISTS distdb_applied (id INT PRIMARY KEY, epoch BIGINT NOT NULL, seq BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS distdb_log (seq BIGINT PRIMARY KEY, epoch BIGINT NOT NULL, statements LONGTEXT NOT NULL);
CREATE TABLE IF NOT EXISTS distdb_effects (seq BIGINT PRIMARY KEY, epoch BIGINT NOT NULL, effects LONGBLOB);
INSERT INTO distdb_meta (name, value) VALUES ('schema_version', '1');
INSERT INTO distdb_meta (name, value) VALUES ('promised_epoch', '0');
INSERT INTO distdb_applied (id, epoch, seq) VALUES (1, 0, 0);
