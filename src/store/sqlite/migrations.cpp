#include "store/migrations.hpp"

namespace dvs::store {

namespace {
constexpr Migration kSqlite[] = {
    {1, "initial schema", R"sql(
CREATE TABLE organizations (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  created_at  INTEGER NOT NULL
);
CREATE INDEX organizations_name ON organizations(name);

CREATE TABLE users (
  id             TEXT PRIMARY KEY,
  org_id         TEXT NOT NULL REFERENCES organizations(id),
  email          TEXT NOT NULL COLLATE NOCASE UNIQUE,
  role           TEXT NOT NULL CHECK (role IN ('ceo', 'admin', 'member')),
  password_hash  TEXT,
  created_at     INTEGER NOT NULL
);
CREATE INDEX users_org ON users(org_id);

-- Only a hash of each secret is stored, never the secret.
CREATE TABLE api_keys (
  id                     TEXT PRIMARY KEY,
  org_id                 TEXT NOT NULL REFERENCES organizations(id),
  name                   TEXT NOT NULL,
  hint                   TEXT NOT NULL,
  secret_hash            BLOB NOT NULL UNIQUE,
  scopes                 TEXT NOT NULL,
  rate_limit_per_minute  INTEGER NOT NULL,
  created_at             INTEGER NOT NULL,
  created_by             TEXT REFERENCES users(id),
  expires_at             INTEGER,
  last_used_at           INTEGER,
  revoked_at             INTEGER,
  replaced_by            TEXT
);
CREATE INDEX api_keys_org ON api_keys(org_id, created_at DESC, id DESC);

CREATE TABLE leads (
  id           TEXT PRIMARY KEY,
  org_id       TEXT NOT NULL REFERENCES organizations(id),
  name         TEXT NOT NULL,
  email        TEXT,
  phone        TEXT,
  company      TEXT,
  status       TEXT NOT NULL,
  source       TEXT,
  value_cents  INTEGER NOT NULL,
  currency     TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
);
CREATE INDEX leads_page ON leads(org_id, created_at DESC, id DESC);
CREATE INDEX leads_status_page ON leads(org_id, status, created_at DESC, id DESC);

CREATE TABLE invoices (
  id                 TEXT PRIMARY KEY,
  org_id             TEXT NOT NULL REFERENCES organizations(id),
  number             TEXT NOT NULL,
  customer_name      TEXT NOT NULL,
  customer_email     TEXT,
  lead_id            TEXT REFERENCES leads(id),
  status             TEXT NOT NULL,
  currency           TEXT NOT NULL,
  subtotal_cents     INTEGER NOT NULL,
  tax_cents          INTEGER NOT NULL,
  total_cents        INTEGER NOT NULL,
  amount_paid_cents  INTEGER NOT NULL,
  issued_at          INTEGER NOT NULL,
  due_at             INTEGER NOT NULL,
  paid_at            INTEGER,
  line_items         TEXT NOT NULL,
  created_at         INTEGER NOT NULL,
  updated_at         INTEGER NOT NULL
);
CREATE INDEX invoices_page ON invoices(org_id, created_at DESC, id DESC);
CREATE INDEX invoices_status_page ON invoices(org_id, status, created_at DESC, id DESC);

CREATE TABLE request_log (
  seq          INTEGER PRIMARY KEY,
  request_id   TEXT NOT NULL,
  org_id       TEXT NOT NULL,
  key_id       TEXT NOT NULL,
  method       TEXT NOT NULL,
  path         TEXT NOT NULL,
  status       INTEGER NOT NULL,
  latency_us   INTEGER NOT NULL,
  client_ip    TEXT NOT NULL,
  user_agent   TEXT NOT NULL,
  created_at   INTEGER NOT NULL
);
CREATE INDEX request_log_key ON request_log(key_id, created_at DESC, request_id DESC);

CREATE TABLE audit_events (
  id             TEXT PRIMARY KEY,
  org_id         TEXT NOT NULL,
  type           TEXT NOT NULL,
  actor_user_id  TEXT,
  key_id         TEXT NOT NULL,
  ip             TEXT NOT NULL,
  created_at     INTEGER NOT NULL
);
CREATE INDEX audit_events_org ON audit_events(org_id, created_at DESC, id DESC);
)sql"},
    {2, "sessions and expiry events", R"sql(
-- Portal sessions. Only a hash of the session token is stored.
CREATE TABLE sessions (
  token_hash    BLOB PRIMARY KEY,
  user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at    INTEGER NOT NULL,
  last_seen_at  INTEGER NOT NULL,
  ip            TEXT NOT NULL,
  user_agent    TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions(user_id);

-- Set once an api_key.expired audit event has been written for the key.
ALTER TABLE api_keys ADD COLUMN expiry_audited INTEGER NOT NULL DEFAULT 0;
CREATE INDEX api_keys_expiry ON api_keys(org_id, expiry_audited, expires_at);
)sql"},
    {3, "rendered documents", R"sql(
-- Each row's JSON as the API serves it, written with the row. Rows from
-- before this migration are filled in by SqliteStore::migrate().
ALTER TABLE leads ADD COLUMN doc TEXT;
ALTER TABLE invoices ADD COLUMN doc TEXT;
)sql"},
    {4, "key epoch", R"sql(
-- Raised in the same transaction as any change to a key that matters for
-- authentication, whoever makes it (the server, the CLI, an operator's SQL):
-- the server's in-memory key cache trusts an entry only while the epoch it
-- was read at is current (src/core/key_cache.hpp). last_used_at and
-- expiry_audited are left out: they change often and authenticate nothing. A
-- new key needs no bump: only keys that were found are cached.
CREATE TABLE key_epoch (
  id     INTEGER PRIMARY KEY CHECK (id = 1),
  value  INTEGER NOT NULL
);
INSERT INTO key_epoch(id, value) VALUES (1, 1);
CREATE TRIGGER api_keys_epoch_update
AFTER UPDATE OF id, org_id, name, hint, secret_hash, scopes, rate_limit_per_minute, created_at,
                created_by, expires_at, revoked_at, replaced_by ON api_keys
BEGIN
  UPDATE key_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER api_keys_epoch_delete AFTER DELETE ON api_keys
BEGIN
  UPDATE key_epoch SET value = value + 1 WHERE id = 1;
END;
)sql"},
    {5, "page indexes that cover the documents", R"sql(
-- A list page reads 21 documents in index order. With the document in the
-- index entry they come from a few neighbouring index pages; before, each
-- row cost a seek into the table, on a page of its own (rows are not stored
-- in page order). About 8-10 us less CPU per /v1/leads request
-- (docs/performance.md, change 14), for storing each document twice.
CREATE INDEX leads_page_doc ON leads(org_id, created_at DESC, id DESC, doc);
DROP INDEX leads_page;
CREATE INDEX invoices_page_doc ON invoices(org_id, created_at DESC, id DESC, doc);
DROP INDEX invoices_page;
)sql"},
    {6, "request log indexed per key in sorted passes", R"sql(
-- The request log's per-key index, filled every few seconds in one sorted
-- pass instead of with each 500 ms batch. Each batch touched about one page
-- of the index per key in use and wrote it to the WAL again; with a few
-- million rows logged that cost 10 us of CPU per /v1 request
-- (docs/performance.md, change 19). Rows not yet indexed (seq above
-- request_log_indexed.seq) are found by a scan of the log's newest rows.
DROP INDEX request_log_key;
CREATE TABLE request_log_by_key (
  key_id      TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  request_id  TEXT NOT NULL,
  seq         INTEGER NOT NULL,
  org_id      TEXT NOT NULL,
  PRIMARY KEY (key_id, created_at DESC, request_id DESC, seq)
) WITHOUT ROWID;
CREATE TABLE request_log_indexed (
  id   INTEGER PRIMARY KEY CHECK (id = 1),
  seq  INTEGER NOT NULL  -- request_log rows up to here are in request_log_by_key
);
INSERT INTO request_log_by_key(key_id, created_at, request_id, seq, org_id)
  SELECT key_id, created_at, request_id, seq, org_id FROM request_log
  ORDER BY key_id, created_at DESC, request_id DESC, seq;
INSERT INTO request_log_indexed(id, seq) VALUES (1, COALESCE((SELECT max(seq) FROM request_log), 0));
-- Pruning the log (DELETE FROM request_log WHERE created_at < ...) prunes
-- its index too.
CREATE TRIGGER request_log_unindex AFTER DELETE ON request_log
BEGIN
  DELETE FROM request_log_by_key
   WHERE key_id = OLD.key_id AND created_at = OLD.created_at AND request_id = OLD.request_id
     AND seq = OLD.seq;
END;
)sql"},
    {7, "key hashes removed", R"sql(
-- The server holds a filter of every key's hash (core/key_filter.hpp) so that
-- an unknown key is answered without a read; it learns new keys by rowid. A
-- hash that leaves the table (a deleted key, a changed hash) cannot be taken
-- out of the filter, and a deleted top rowid can be given again: either
-- raises this counter, and the filter is built again from the table.
CREATE TABLE key_hashes_removed (
  id     INTEGER PRIMARY KEY CHECK (id = 1),
  value  INTEGER NOT NULL
);
INSERT INTO key_hashes_removed(id, value) VALUES (1, 0);
CREATE TRIGGER api_keys_hash_removed_delete AFTER DELETE ON api_keys
BEGIN
  UPDATE key_hashes_removed SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER api_keys_hash_removed_update AFTER UPDATE OF secret_hash ON api_keys
BEGIN
  UPDATE key_hashes_removed SET value = value + 1 WHERE id = 1;
END;
)sql"},
    {8, "document epoch", R"sql(
-- The server keeps /v1 pages and objects in memory (core/doc_cache.hpp),
-- each at the value this counter had when it was read; any change to a lead
-- or an invoice raises it in the same transaction, so the next request reads
-- the database again. Stores also raise a shared signal after they commit,
-- so that servers need not read this on every request (change_signal.hpp).
CREATE TABLE doc_epoch (
  id     INTEGER PRIMARY KEY CHECK (id = 1),
  value  INTEGER NOT NULL
);
INSERT INTO doc_epoch(id, value) VALUES (1, 1);
CREATE TRIGGER leads_epoch_insert AFTER INSERT ON leads
BEGIN
  UPDATE doc_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER leads_epoch_update AFTER UPDATE ON leads
BEGIN
  UPDATE doc_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER leads_epoch_delete AFTER DELETE ON leads
BEGIN
  UPDATE doc_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER invoices_epoch_insert AFTER INSERT ON invoices
BEGIN
  UPDATE doc_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER invoices_epoch_update AFTER UPDATE ON invoices
BEGIN
  UPDATE doc_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER invoices_epoch_delete AFTER DELETE ON invoices
BEGIN
  UPDATE doc_epoch SET value = value + 1 WHERE id = 1;
END;
)sql"},
    {9, "request log index in ascending order, without the organization", R"sql(
-- The per-key index of the request log again, half as dear to fill
-- (docs/performance.md, change 32). In ascending order, a pass appends each
-- key's new rows after its older ones (at the right end of its run) instead
-- of in front of them, where every insert split a page; a key with many
-- requests now fills whole pages at the right edge. The organization is no
-- longer copied into it: a key belongs to one organization, and readers
-- check it on the key or on the log's row. Readers page newest first by
-- walking the index backwards.
DROP TRIGGER request_log_unindex;
CREATE TABLE request_log_by_key_asc (
  key_id      TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  request_id  TEXT NOT NULL,
  seq         INTEGER NOT NULL,
  PRIMARY KEY (key_id, created_at, request_id, seq)
) WITHOUT ROWID;
INSERT INTO request_log_by_key_asc(key_id, created_at, request_id, seq)
  SELECT key_id, created_at, request_id, seq FROM request_log_by_key
  ORDER BY key_id, created_at, request_id, seq;
DROP TABLE request_log_by_key;
ALTER TABLE request_log_by_key_asc RENAME TO request_log_by_key;
CREATE TRIGGER request_log_unindex AFTER DELETE ON request_log
BEGIN
  DELETE FROM request_log_by_key
   WHERE key_id = OLD.key_id AND created_at = OLD.created_at AND request_id = OLD.request_id
     AND seq = OLD.seq;
END;
)sql"},
    {10, "request log indexed per key in chunks", R"sql(
-- The request log's per-key index as chunks (store/log_chunks.hpp): one row
-- for each run of up to 256 rows of one key logged in one pass, holding the
-- rows' (seq, created_at) pairs in a blob, instead of one index row per
-- request. A pass wrote an index row in the middle of the table for every
-- request, and split pages there; it now writes about one row per key in
-- use, 0.5 us a logged row instead of 2.3-4.5 (docs/performance.md, change
-- 36). The server refills the index from the log after this migration
-- (request_log_indexed.seq starts again from 0), in slices, before serving.
DROP TRIGGER request_log_unindex;
DROP TABLE request_log_by_key;
CREATE TABLE request_log_key_chunks (
  key_id          TEXT NOT NULL,
  last_seq        INTEGER NOT NULL,  -- the chunk's newest row in log order
  first_seq       INTEGER NOT NULL,  -- its oldest: a key's chunks never overlap
  min_created_at  INTEGER NOT NULL,
  max_created_at  INTEGER NOT NULL,  -- at most 59 s after min_created_at
  row_count       INTEGER NOT NULL,  -- of its rows, those still in the log
  entries         BLOB NOT NULL,     -- the rows' (seq, created_at) pairs
  PRIMARY KEY (key_id, last_seq)
) WITHOUT ROWID;
CREATE INDEX request_log_key_chunks_time ON request_log_key_chunks(key_id, max_created_at);
UPDATE request_log_indexed SET seq = 0;
-- Pruning the log counts the rows out of their chunks; a chunk with none
-- left goes. (Readers look every row up in the log, so a pruned row is never
-- listed; the count keeps the usage chart's hours exact.)
CREATE TRIGGER request_log_unindex AFTER DELETE ON request_log
BEGIN
  UPDATE request_log_key_chunks SET row_count = row_count - 1
   WHERE key_id = OLD.key_id AND first_seq <= OLD.seq
     AND last_seq = (SELECT min(last_seq) FROM request_log_key_chunks
                      WHERE key_id = OLD.key_id AND last_seq >= OLD.seq);
  DELETE FROM request_log_key_chunks
   WHERE key_id = OLD.key_id AND row_count <= 0
     AND last_seq = (SELECT min(last_seq) FROM request_log_key_chunks
                      WHERE key_id = OLD.key_id AND last_seq >= OLD.seq);
END;
)sql"},
};
}  // namespace

std::span<const Migration> sqlite_migrations() { return kSqlite; }

}  // namespace dvs::store
