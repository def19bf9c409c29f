#include "store/postgres/migrations.hpp"

namespace dvs::store {

namespace {
// The same tables, columns and indexes as the SQLite migrations (numbered
// per backend: SQLite's 4-8 are partly SQLite-only, see each). Types: times BIGINT Unix seconds, hashes BYTEA, ids TEXT.
//
// Ids (and every column that refers to one) are COLLATE "C": lists are
// ordered by (created_at, id) and paged by comparing that pair, and SQLite
// compares text byte by byte; with the database's default collation (say
// en_US) "lead_a" and "lead_B" would sort the other way and a cursor made by
// one backend would not mean the same row on the other. The e-mail column is
// "C" too, so lower() folds ASCII only, as SQLite's NOCASE does.
constexpr Migration kPostgres[] = {
    {1, "initial schema", R"sql(
CREATE TABLE organizations (
  id          TEXT COLLATE "C" PRIMARY KEY,
  name        TEXT NOT NULL,
  created_at  BIGINT NOT NULL
);
CREATE INDEX organizations_name ON organizations(name);

CREATE TABLE users (
  id             TEXT COLLATE "C" PRIMARY KEY,
  org_id         TEXT COLLATE "C" NOT NULL REFERENCES organizations(id),
  email          TEXT COLLATE "C" NOT NULL,
  role           TEXT NOT NULL CHECK (role IN ('ceo', 'admin', 'member')),
  password_hash  TEXT,
  created_at     BIGINT NOT NULL
);
-- E-mails are unique regardless of (ASCII) case.
CREATE UNIQUE INDEX users_email ON users(lower(email));
CREATE INDEX users_org ON users(org_id);

-- Only a hash of each secret is stored, never the secret.
CREATE TABLE api_keys (
  id                     TEXT COLLATE "C" PRIMARY KEY,
  org_id                 TEXT COLLATE "C" NOT NULL REFERENCES organizations(id),
  name                   TEXT NOT NULL,
  hint                   TEXT NOT NULL,
  secret_hash            BYTEA NOT NULL UNIQUE,
  scopes                 TEXT NOT NULL,
  rate_limit_per_minute  BIGINT NOT NULL,
  created_at             BIGINT NOT NULL,
  created_by             TEXT COLLATE "C" REFERENCES users(id),
  expires_at             BIGINT,
  last_used_at           BIGINT,
  revoked_at             BIGINT,
  replaced_by            TEXT COLLATE "C"
);
CREATE INDEX api_keys_org ON api_keys(org_id, created_at DESC, id DESC);

CREATE TABLE leads (
  id           TEXT COLLATE "C" PRIMARY KEY,
  org_id       TEXT COLLATE "C" NOT NULL REFERENCES organizations(id),
  name         TEXT NOT NULL,
  email        TEXT,
  phone        TEXT,
  company      TEXT,
  status       TEXT NOT NULL,
  source       TEXT,
  value_cents  BIGINT NOT NULL,
  currency     TEXT NOT NULL,
  created_at   BIGINT NOT NULL,
  updated_at   BIGINT NOT NULL
);
CREATE INDEX leads_page ON leads(org_id, created_at DESC, id DESC);
CREATE INDEX leads_status_page ON leads(org_id, status, created_at DESC, id DESC);

CREATE TABLE invoices (
  id                 TEXT COLLATE "C" PRIMARY KEY,
  org_id             TEXT COLLATE "C" NOT NULL REFERENCES organizations(id),
  number             TEXT NOT NULL,
  customer_name      TEXT NOT NULL,
  customer_email     TEXT,
  lead_id            TEXT COLLATE "C" REFERENCES leads(id),
  status             TEXT NOT NULL,
  currency           TEXT NOT NULL,
  subtotal_cents     BIGINT NOT NULL,
  tax_cents          BIGINT NOT NULL,
  total_cents        BIGINT NOT NULL,
  amount_paid_cents  BIGINT NOT NULL,
  issued_at          BIGINT NOT NULL,
  due_at             BIGINT NOT NULL,
  paid_at            BIGINT,
  line_items         TEXT NOT NULL,
  created_at         BIGINT NOT NULL,
  updated_at         BIGINT NOT NULL
);
CREATE INDEX invoices_page ON invoices(org_id, created_at DESC, id DESC);
CREATE INDEX invoices_status_page ON invoices(org_id, status, created_at DESC, id DESC);

CREATE TABLE request_log (
  seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  request_id   TEXT COLLATE "C" NOT NULL,
  org_id       TEXT COLLATE "C" NOT NULL,
  key_id       TEXT COLLATE "C" NOT NULL,
  method       TEXT NOT NULL,
  path         TEXT NOT NULL,
  status       INTEGER NOT NULL,
  latency_us   BIGINT NOT NULL,
  client_ip    TEXT NOT NULL,
  user_agent   TEXT NOT NULL,
  created_at   BIGINT NOT NULL
);
CREATE INDEX request_log_key ON request_log(key_id, created_at DESC, request_id DESC);

CREATE TABLE audit_events (
  id             TEXT COLLATE "C" PRIMARY KEY,
  org_id         TEXT COLLATE "C" NOT NULL,
  type           TEXT NOT NULL,
  actor_user_id  TEXT COLLATE "C",
  key_id         TEXT COLLATE "C" NOT NULL,
  ip             TEXT NOT NULL,
  created_at     BIGINT NOT NULL
);
CREATE INDEX audit_events_org ON audit_events(org_id, created_at DESC, id DESC);
)sql"},
    {2, "sessions and expiry events", R"sql(
-- Portal sessions. Only a hash of the session token is stored.
CREATE TABLE sessions (
  token_hash    BYTEA PRIMARY KEY,
  user_id       TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at    BIGINT NOT NULL,
  last_seen_at  BIGINT NOT NULL,
  ip            TEXT NOT NULL,
  user_agent    TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

-- Set once an api_key.expired audit event has been written for the key.
ALTER TABLE api_keys ADD COLUMN expiry_audited BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX api_keys_expiry ON api_keys(org_id, expiry_audited, expires_at);
)sql"},
    {3, "rendered documents", R"sql(
-- Each row's JSON as the API serves it, written with the row. Rows from
-- before this migration are filled in by PostgresStore::migrate().
ALTER TABLE leads ADD COLUMN doc TEXT;
ALTER TABLE invoices ADD COLUMN doc TEXT;
)sql"},
    {4, "key and document epochs", R"sql(
-- The key epoch (SQLite migration 4) and the document epoch (SQLite
-- migration 8): counters raised in the same transaction as every change to a
-- key that matters for authentication, and to any lead or invoice. A server
-- keeps keys and /v1 answers in memory and, for each request, reads both
-- counters in one small statement shared by all the requests that arrived
-- meanwhile (core/fresh_read.hpp): an entry is used only at the epoch it was
-- read at, so a revocation or an edit committed before the request is seen.
--
-- One row each, so a long import of leads never holds up a revocation. The
-- triggers are per statement and raise a counter once per transaction
-- (remembered in a transaction-local setting, undone with a rolled-back
-- savepoint): an import of a million rows must not update one row a million
-- times. Counters start at the creation time in microseconds, so a database
-- dropped and created again under a running server never repeats a value.
CREATE TABLE epochs (
  name   TEXT COLLATE "C" PRIMARY KEY,
  value  BIGINT NOT NULL
);
INSERT INTO epochs(name, value)
  VALUES ('keys', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint),
         ('docs', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);

CREATE FUNCTION raise_epoch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('dvs.raised_' || TG_ARGV[0], true) IS DISTINCT FROM '1' THEN
    UPDATE epochs SET value = value + 1 WHERE name = TG_ARGV[0];
    PERFORM set_config('dvs.raised_' || TG_ARGV[0], '1', true);
  END IF;
  RETURN NULL;
END
$$;

-- last_used_at and expiry_audited are left out: they change often and
-- authenticate nothing. A new key needs no raise: only keys found are kept.
CREATE TRIGGER api_keys_epoch
  AFTER UPDATE OF id, org_id, name, hint, secret_hash, scopes, rate_limit_per_minute, created_at,
                  created_by, expires_at, revoked_at, replaced_by OR DELETE OR TRUNCATE ON api_keys
  FOR EACH STATEMENT EXECUTE FUNCTION raise_epoch('keys');
CREATE TRIGGER leads_epoch AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON leads
  FOR EACH STATEMENT EXECUTE FUNCTION raise_epoch('docs');
CREATE TRIGGER invoices_epoch AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON invoices
  FOR EACH STATEMENT EXECUTE FUNCTION raise_epoch('docs');
)sql"},
    {5, "key-insert mark", R"sql(
-- The key-insert mark, for the server's filter of key hashes (a Bloom
-- filter, as on SQLite), which refuses a well-formed but unknown key without
-- a look-up. The filter must hold every key committed before the request,
-- so each statement that adds keys (or sets a hash) raises the mark once and
-- stamps its rows with the new value. The raise holds the mark's row lock
-- until commit, so marks commit in their order: a reader that sees the mark
-- at M can read every key stamped up to M, and no key stamped above M
-- exists yet (a rolled-back raise's value is taken again by the next). Marks
-- are microseconds of the clock at least, so they never go back when a
-- database is dropped and created again; a server that sees the mark go
-- back (a restored backup) builds its filter again.
CREATE TABLE key_inserts (
  id     INTEGER PRIMARY KEY CHECK (id = 1),
  value  BIGINT NOT NULL
);
INSERT INTO key_inserts(id, value)
  VALUES (1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
ALTER TABLE api_keys ADD COLUMN insert_seq BIGINT;
CREATE INDEX api_keys_insert_seq ON api_keys(insert_seq) WHERE insert_seq IS NOT NULL;

CREATE FUNCTION raise_key_inserts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v BIGINT;
BEGIN
  UPDATE key_inserts
     SET value = greatest(value + 1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)
   WHERE id = 1 RETURNING value INTO v;
  PERFORM set_config('dvs.key_insert', v::text, true);
  RETURN NULL;
END
$$;
CREATE FUNCTION stamp_key_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.insert_seq := current_setting('dvs.key_insert')::bigint;
  RETURN NEW;
END
$$;
-- Statement-level first (PostgreSQL fires BEFORE STATEMENT before any row).
CREATE TRIGGER api_keys_insert_mark BEFORE INSERT OR UPDATE OF secret_hash ON api_keys
  FOR EACH STATEMENT EXECUTE FUNCTION raise_key_inserts();
CREATE TRIGGER api_keys_insert_stamp BEFORE INSERT OR UPDATE OF secret_hash ON api_keys
  FOR EACH ROW EXECUTE FUNCTION stamp_key_insert();
)sql"},
};
}  // namespace

std::span<const Migration> postgres_migrations() { return kPostgres; }

}  // namespace dvs::store
