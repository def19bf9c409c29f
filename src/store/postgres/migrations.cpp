#include "store/postgres/migrations.hpp"

namespace dvs::store {

namespace {
// The same tables, columns and indexes as the SQLite migrations, version for
// version. Types: times BIGINT Unix seconds, hashes BYTEA, ids TEXT.
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
};
}  // namespace

std::span<const Migration> postgres_migrations() { return kPostgres; }

}  // namespace dvs::store
