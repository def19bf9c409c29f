// Shared helpers for the HTTP integration suite: they run the real binary
// (CLI subcommands and `serve`) against a throw-away database.
//
// Every test file creates its own Env (temp dir + database + server), so files
// can run in parallel and leave nothing behind. No fixed ports, no sleeps in
// assertions: the only waiting is the bounded readiness poll of GET /healthz.
//
// The backend is chosen by DVS_TEST_BACKEND:
//   sqlite (default)  each Env has a SQLite file in its temp dir;
//   postgres          each Env creates a fresh database of its own on the
//                     server of DVS_TEST_PG_URL (e.g.
//                     postgresql://postgres@127.0.0.1:PORT/devsphere_test,
//                     see scripts/pg-test-server.sh) and drops it in cleanup().
// Tests reach the database only through the backend-neutral Env.sql(),
// Env.columns() and Env.dataSnapshot().

import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { KEY_PREFIX, BASE62, KEY_RE, crc32, base62, checksumOf } from './keyformat.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..', '..');
export const BIN = process.env.DEVSPHERE_BIN || path.join(REPO_ROOT, 'build', 'devsphere');

/** 'sqlite' or 'postgres', from DVS_TEST_BACKEND (default sqlite). */
export const BACKEND = (() => {
  const b = (process.env.DVS_TEST_BACKEND || 'sqlite').trim().toLowerCase();
  if (b === 'sqlite') return 'sqlite';
  if (b === 'postgres' || b === 'postgresql' || b === 'pg') return 'postgres';
  throw new Error(`DVS_TEST_BACKEND must be sqlite or postgres, got ${JSON.stringify(process.env.DVS_TEST_BACKEND)}`);
})();

/** Skip reason for a check that only makes sense on SQLite (for `test(name, { skip }, fn)`). */
export function sqliteOnly(why) {
  return BACKEND === 'sqlite' ? false : `SQLite-specific (${why}); runs with DVS_TEST_BACKEND=sqlite`;
}

// ---------------------------------------------------------------------------
// Key format (lib/keyformat.mjs).

export { KEY_PREFIX, BASE62, KEY_RE, crc32, base62, checksumOf };

export function randomBase62(n) {
  let s = '';
  for (let i = 0; i < n; i++) s += BASE62[Math.floor(Math.random() * 62)];
  return s;
}

/** A well-formed key (valid checksum) that the server never issued. */
export function forgeValidKey(random32 = randomBase62(32)) {
  return KEY_PREFIX + random32 + checksumOf(random32);
}

/** Splits a key into its parts; returns null if it is not shaped like one. */
export function parseKey(key) {
  if (!KEY_RE.test(key)) return null;
  return { random: key.slice(9, 41), checksum: key.slice(41) };
}

export function hasValidChecksum(key) {
  const p = parseKey(key);
  return p !== null && checksumOf(p.random) === p.checksum;
}

// ---------------------------------------------------------------------------
// Shapes

export const TS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

export function assertTimestamp(v, what) {
  assert.equal(typeof v, 'string', `${what} must be a string timestamp, got ${JSON.stringify(v)}`);
  assert.match(v, TS_RE, `${what} must look like 2026-11-29T12:00:00Z`);
  assert.ok(!Number.isNaN(Date.parse(v)), `${what} must be a valid date: ${v}`);
}

export function assertTimestampOrNull(v, what) {
  if (v !== null) assertTimestamp(v, what);
}

export function assertInt(v, what) {
  assert.ok(Number.isInteger(v), `${what} must be an integer, got ${JSON.stringify(v)}`);
}

export function assertStringOrNull(v, what) {
  assert.ok(v === null || typeof v === 'string', `${what} must be a string or null, got ${JSON.stringify(v)}`);
}

export function sortedKeys(obj) {
  return Object.keys(obj).sort();
}

export const API_KEY_FIELDS = [
  'id', 'object', 'name', 'hint', 'scopes', 'status', 'rate_limit_per_minute',
  'created_at', 'created_by', 'expires_at', 'last_used_at', 'revoked_at',
];

export const LEAD_FIELDS = [
  'id', 'object', 'name', 'email', 'phone', 'company', 'status', 'source',
  'value_cents', 'currency', 'created_at', 'updated_at',
];

export const INVOICE_FIELDS = [
  'id', 'object', 'number', 'customer_name', 'customer_email', 'lead_id', 'status',
  'currency', 'subtotal_cents', 'tax_cents', 'total_cents', 'amount_paid_cents',
  'issued_at', 'due_at', 'paid_at', 'line_items', 'created_at', 'updated_at',
];

/** Checks an api_key object as in contract section 4 (extra: allowed extra field names). */
export function assertApiKeyShape(k, { extra = [] } = {}) {
  assert.deepEqual(sortedKeys(k), [...API_KEY_FIELDS, ...extra].sort(), 'api_key field names');
  assert.match(k.id, /^key_[0-9A-Za-z_]+$/, 'api_key.id');
  assert.equal(k.object, 'api_key');
  assert.equal(typeof k.name, 'string');
  assert.match(k.hint, /^dvs_live_[0-9A-Za-z]{4}$/, 'api_key.hint');
  assert.ok(Array.isArray(k.scopes) && k.scopes.length >= 1, 'api_key.scopes is a non-empty array');
  for (const s of k.scopes) assert.ok(['leads:read', 'invoices:read'].includes(s), `scope ${s}`);
  assert.ok(['active', 'expired', 'revoked'].includes(k.status), `api_key.status ${k.status}`);
  assertInt(k.rate_limit_per_minute, 'rate_limit_per_minute');
  assertTimestamp(k.created_at, 'api_key.created_at');
  if (k.created_by !== null) {
    assert.equal(typeof k.created_by, 'object', 'created_by is an object or null');
    assert.deepEqual(sortedKeys(k.created_by), ['email', 'id'], 'created_by fields');
    assert.match(k.created_by.id, /^usr_/, 'created_by.id');
    assert.equal(typeof k.created_by.email, 'string');
  }
  assertTimestampOrNull(k.expires_at, 'expires_at');
  assertTimestampOrNull(k.last_used_at, 'last_used_at');
  assertTimestampOrNull(k.revoked_at, 'revoked_at');
}

// ---------------------------------------------------------------------------
// Processes

/**
 * Runs the binary with `args`; resolves to {code, signal, stdout, stderr}.
 * Never rejects on a non-zero exit: tests assert on the result.
 */
export function run(args, { input, env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, {
      env: { ...process.env, ...(env || {}) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

export function lastLine(text) {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  return lines.length ? lines[lines.length - 1] : '';
}

/** Asserts a CLI run failed cleanly: non-zero exit, no signal/crash, one line on stderr. */
export function assertCleanFailure(r, what) {
  const ctx = `${what}: code=${r.code} signal=${r.signal} stderr=${JSON.stringify(r.stderr)}`;
  assert.equal(r.signal, null, `${ctx} (killed by a signal)`);
  assert.notEqual(r.code, 0, `${ctx} (must exit non-zero)`);
  assert.ok(r.code > 0 && r.code < 128, `${ctx} (exit code must be 1..127)`);
  const lines = r.stderr.split('\n').filter((l) => l.trim().length > 0);
  assert.equal(lines.length, 1, `${ctx} (exactly one line on stderr)`);
}

export function assertOk(r, what) {
  assert.equal(r.code, 0, `${what} failed: code=${r.code} signal=${r.signal} stderr=${r.stderr} stdout=${r.stdout}`);
}

/** Runs `sqlite3 -json` with a busy timeout; resolves to the parsed rows. */
export function sqlite(dbPath, sql) {
  return new Promise((resolve, reject) => {
    execFile('sqlite3', ['-json', '-cmd', '.timeout 10000', dbPath, sql], (err, stdout, stderr) => {
      if (err) return reject(new Error(`sqlite3 failed: ${err.message} ${stderr}`));
      const t = stdout.trim();
      resolve(t ? JSON.parse(t) : []);
    });
  });
}

/**
 * Runs `query` with psql on the database of `url`. A query that reads rows
 * (SELECT, WITH, VALUES, TABLE) is wrapped as `SELECT json_agg(r) FROM (query) r`
 * and resolves to its rows as objects, as sqlite() does (integers as numbers);
 * any other statement resolves to [].
 */
export function psqlJson(url, query) {
  const q = query.trim().replace(/;\s*$/, '');
  const reads = /^(select|with|values|table)\b/i.test(q);
  // The row alias must not be a column name of the query (a column would win).
  const sql = reads ? `SELECT coalesce(json_agg(dvs_itest_row), '[]'::json) FROM (${q}) dvs_itest_row` : q;
  return new Promise((resolve, reject) => {
    execFile('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', sql],
      { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`psql failed: ${err.message} ${stderr}`));
        if (!reads) return resolve([]);
        const t = stdout.trim();
        resolve(t ? JSON.parse(t) : []);
      });
  });
}

/** True when `content` (a Buffer) holds `needle` raw, or as hex (how PostgreSQL dumps bytea). */
export function containsBytes(content, needle) {
  const n = Buffer.isBuffer(needle) ? needle : Buffer.from(needle, 'utf8');
  if (n.length === 0) return false;
  const hex = n.toString('hex');
  return content.includes(n) || content.includes(Buffer.from(hex, 'latin1'))
    || content.includes(Buffer.from(hex.toUpperCase(), 'latin1'));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A test environment: one temp dir holding the server's captured output and,
 * on SQLite, the database file; on PostgreSQL (DVS_TEST_BACKEND=postgres) a
 * database of its own on DVS_TEST_PG_URL's server, created by prepare() (which
 * cli(), migrate() and startServer() call) and dropped by cleanup().
 * Collects every secret it issues.
 */
export class Env {
  #prepared = null;

  constructor(name = 'dvs-itest') {
    this.name = name;
    this.backend = BACKEND;
    if (this.backend === 'postgres' && !process.env.DVS_TEST_PG_URL) {
      throw new Error('DVS_TEST_BACKEND=postgres needs DVS_TEST_PG_URL (postgresql://USER@HOST:PORT/DB of a throwaway server; '
        + 'scripts/pg-test-server.sh start DIR prints one)');
    }
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-`));
    this.dataDir = path.join(this.dir, 'data');
    fs.mkdirSync(this.dataDir);
    this.dbPath = path.join(this.dataDir, 'devsphere.db');
    this.dbUrl = `sqlite:${this.dbPath}`;
    this.pgDb = null; // {url, name, drop()} of the database this Env created
    this.secrets = new Set();
    this.servers = [];
    this.fileCounter = 0;
  }

  /**
   * Creates this Env's database when the backend needs one made (PostgreSQL:
   * a fresh database named after the Env on DVS_TEST_PG_URL's server). Runs
   * once; a no-op on SQLite, where `migrate` creates the file.
   */
  prepare() {
    if (!this.#prepared) {
      this.#prepared = (async () => {
        if (this.backend !== 'postgres') return;
        const prefix = this.name.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '') || 'dvs_itest';
        this.pgDb = await createPgDatabase(process.env.DVS_TEST_PG_URL, prefix);
        this.dbUrl = this.pgDb.url;
      })();
    }
    return this.#prepared;
  }

  /**
   * Points the CLI and every server started from now on at another database
   * URL (e.g. a PostgreSQL database of its own) instead of the Env's own;
   * before prepare(), the Env then creates none.
   */
  useDatabase(url) {
    if (!this.#prepared) this.#prepared = Promise.resolve();
    this.dbUrl = url;
  }

  /**
   * 'sqlite' or 'postgres': the kind of database dbUrl names (before
   * prepare(), the kind it will name: usable at module level, e.g. in a skip).
   * Note dbUrl itself is only final once prepare() (or migrate()) has run.
   */
  get dbKind() {
    if (!this.#prepared) return this.backend;
    return /^postgres(ql)?:/i.test(this.dbUrl) ? 'postgres' : 'sqlite';
  }

  /**
   * Runs SQL on the Env's database, whatever the backend; resolves to the rows
   * as objects (same column names, integers as numbers; a statement that
   * returns no rows resolves to []). `query` is one string for both backends,
   * or {sqlite, postgres} where the dialects differ (e.g. typeof/pg_typeof).
   */
  async sql(query) {
    await this.prepare();
    const kind = this.dbKind;
    const q = typeof query === 'string' ? query : query[kind];
    assert.equal(typeof q, 'string', `env.sql: no ${kind} variant of ${JSON.stringify(query)}`);
    if (kind === 'postgres') return psqlJson(this.dbUrl, q);
    const rows = await sqlite(this.dbUrl.replace(/^sqlite:(\/\/(?=\/))?/, ''), q);
    // A change to a key, a lead or an invoice made with plain SQL (not
    // through a store, so the change signal is not raised) reaches a running
    // server's caches within SqliteStore::kEpochRecheckMs (100 ms;
    // src/store/sqlite/change_signal.hpp).
    if (/^\s*(UPDATE|DELETE FROM|INSERT INTO)\s+(api_keys|leads|invoices)\b/i.test(q)) {
      await new Promise((r) => setTimeout(r, 150));
    }
    return rows;
  }

  /** The column names of `table`, in order. */
  async columns(table) {
    assert.match(table, /^[a-z_]+$/);
    const rows = await this.sql({
      sqlite: `PRAGMA table_info(${table})`,
      postgres: `SELECT column_name AS name FROM information_schema.columns
                  WHERE table_schema = current_schema() AND table_name = '${table}' ORDER BY ordinal_position`,
    });
    return rows.map((r) => r.name);
  }

  /**
   * What the database holds at rest, to search for secrets: on SQLite every
   * file of the data dir (db, -wal, -shm, ...), on PostgreSQL a data-only dump
   * of the Env's database (pg_dump, else COPY of every table). Resolves to
   * [{name, content (a Buffer), database (true for the database itself)}].
   */
  async dataSnapshot() {
    await this.prepare();
    if (this.dbKind === 'sqlite') {
      return this.dataFiles().map((f) => ({ name: f, content: fs.readFileSync(f), database: f === this.dbPath }));
    }
    const dump = await execProgram('pg_dump', ['--data-only', '--no-owner', '--no-privileges', '-d', this.dbUrl])
      .catch((e) => ({ code: -1, stdout: '', stderr: String(e) }));
    if (dump.code === 0) return [{ name: `pg_dump --data-only of ${this.dbUrl}`, content: Buffer.from(dump.stdout, 'utf8'), database: true }];
    // No pg_dump, or one older than the server (which refuses to dump it): COPY every table instead.
    const tables = await psqlJson(this.dbUrl,
      "SELECT tablename AS t FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename");
    assert.ok(tables.length > 0, `no tables to dump (pg_dump failed too: ${dump.stderr})`);
    const parts = [];
    for (const { t } of tables) {
      const r = await execProgram('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', this.dbUrl, '-c', `COPY "${t}" TO STDOUT`]);
      assert.equal(r.code, 0, `COPY ${t} TO STDOUT: ${r.stderr}`);
      parts.push(`-- ${t}\n${r.stdout}`);
    }
    return [{ name: `COPY of every table of ${this.dbUrl}`, content: Buffer.from(parts.join('\n'), 'utf8'), database: true }];
  }

  /** Runs a subcommand with `--db` appended. */
  async cli(args, opts) {
    await this.prepare();
    return run([...args, '--db', this.dbUrl], opts);
  }

  async migrate() {
    const r = await this.cli(['migrate']);
    assertOk(r, 'migrate');
    return r;
  }

  async createOrg(name = 'Acme', email = `owner-${randomBase62(6)}@example.com`) {
    const r = await this.cli(['org', 'create', '--name', name, '--owner-email', email]);
    assertOk(r, 'org create');
    const id = lastLine(r.stdout);
    assert.match(id, /^org_[0-9A-Za-z_]+$/, `org create must print the org id last, got ${JSON.stringify(r.stdout)}`);
    return id;
  }

  async addUser(org, email, role) {
    const r = await this.cli(['user', 'add', '--org', org, '--email', email, '--role', role]);
    assertOk(r, 'user add');
    const id = lastLine(r.stdout);
    assert.match(id, /^usr_[0-9A-Za-z_]+$/, `user add must print the user id, got ${JSON.stringify(r.stdout)}`);
    return id;
  }

  /** keys create; returns {id, secret, stdout}. */
  async createKey(org, { name = 'itest key', scopes = ['leads:read', 'invoices:read'], expiresIn, rateLimit } = {}) {
    const args = ['keys', 'create', '--org', org, '--name', name];
    for (const s of scopes) args.push('--scope', s);
    if (expiresIn !== undefined) args.push('--expires-in', String(expiresIn));
    if (rateLimit !== undefined) args.push('--rate-limit', String(rateLimit));
    const r = await this.cli(args);
    assertOk(r, 'keys create');
    return this.#parseIssued(r, 'keys create');
  }

  async rotateKey(keyId) {
    const r = await this.cli(['keys', 'rotate', keyId]);
    assertOk(r, 'keys rotate');
    return this.#parseIssued(r, 'keys rotate');
  }

  #parseIssued(r, what) {
    const secret = lastLine(r.stdout);
    assert.match(secret, KEY_RE, `${what}: last stdout line must be the secret, got ${JSON.stringify(r.stdout)}`);
    this.secrets.add(secret);
    const m = r.stdout.match(/^\s*id:\s*(key_[0-9A-Za-z_]+)\s*$/m);
    assert.ok(m, `${what}: stdout must have a line "id: key_...", got ${JSON.stringify(r.stdout)}`);
    return { id: m[1], secret, stdout: r.stdout };
  }

  async revokeKey(keyId) {
    const r = await this.cli(['keys', 'revoke', keyId]);
    assertOk(r, 'keys revoke');
    return r;
  }

  async listKeys(org) {
    const r = await this.cli(['keys', 'list', '--org', org, '--json']);
    assertOk(r, 'keys list');
    let body;
    try {
      body = JSON.parse(r.stdout);
    } catch (e) {
      assert.fail(`keys list --json must print JSON, got ${JSON.stringify(r.stdout)}`);
    }
    return body;
  }

  /** Writes `content` to a new file in the temp dir; returns its path. */
  writeFile(basename, content) {
    const p = path.join(this.dir, `${++this.fileCounter}-${basename}`);
    fs.writeFileSync(p, content);
    return p;
  }

  /** Imports rows (objects) as JSONL; asserts success. */
  async importRows(kind, org, rows) {
    const file = this.writeFile(`${kind}.jsonl`, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const r = await this.cli(['import', kind, '--org', org, file]);
    assertOk(r, `import ${kind}`);
    return r;
  }

  /**
   * Starts `serve` on a free port and waits for GET /healthz. Retries with a
   * new port if the chosen one was taken in the meantime.
   */
  async startServer({ extraArgs = [] } = {}) {
    await this.prepare();
    let lastErr = '';
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await freePort();
      const n = this.servers.length;
      const outPath = path.join(this.dir, `server${n}.stdout.log`);
      const errPath = path.join(this.dir, `server${n}.stderr.log`);
      const out = fs.openSync(outPath, 'w');
      const err = fs.openSync(errPath, 'w');
      const proc = spawn(BIN, ['serve', '--listen', `127.0.0.1:${port}`, '--db', this.dbUrl, ...extraArgs], {
        stdio: ['ignore', out, err],
      });
      fs.closeSync(out);
      fs.closeSync(err);
      const server = new Server(proc, port, outPath, errPath);
      this.servers.push(server);
      const ready = await server.waitReady();
      if (ready) return server;
      const stderr = fs.readFileSync(errPath, 'utf8');
      lastErr = server.spawnError ? `cannot run ${BIN}: ${server.spawnError.message}` : stderr;
      await server.stop('SIGKILL');
      if (!/in use|EADDRINUSE|bind/i.test(stderr)) break;
    }
    throw new Error(`server did not become ready: ${lastErr}`);
  }

  /** All files under the data dir (db, -wal, -shm, ...). */
  dataFiles() {
    const out = [];
    const walk = (d) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else out.push(p);
      }
    };
    walk(this.dataDir);
    return out;
  }

  /** org create with a CEO who has a password; returns {org, email, password}. */
  async createOrgWithOwner({
    name = 'Portal Org', email = `ceo-${randomBase62(8).toLowerCase()}@example.com`, password = `pw-${randomBase62(16)}`,
  } = {}) {
    const r = await this.cli(['org', 'create', '--name', name, '--owner-email', email, '--owner-password-stdin'],
      { input: `${password}\n` });
    assertOk(r, 'org create --owner-password-stdin');
    const org = lastLine(r.stdout);
    assert.match(org, /^org_[0-9A-Za-z_]+$/, `org create must print the org id last, got ${JSON.stringify(r.stdout)}`);
    return { org, email, password };
  }

  /** user add with a password; returns {id, email, password, role}. */
  async addUserWithPassword(org, role, {
    email = `${role}-${randomBase62(8).toLowerCase()}@example.com`, password = `pw-${randomBase62(16)}`,
  } = {}) {
    const r = await this.cli(['user', 'add', '--org', org, '--email', email, '--role', role, '--password-stdin'],
      { input: `${password}\n` });
    assertOk(r, 'user add --password-stdin');
    const id = lastLine(r.stdout);
    assert.match(id, /^usr_[0-9A-Za-z_]+$/, `user add must print the user id, got ${JSON.stringify(r.stdout)}`);
    return { id, email, password, role };
  }

  /** Stops every server still running, drops the Env's own PostgreSQL database (if any) and deletes the temp dir. */
  async cleanup() {
    for (const s of this.servers) if (s.running) await s.stop('SIGKILL');
    try {
      await this.#prepared; // a database still being created is dropped too
    } catch {
      // creating it failed: nothing to drop
    }
    if (this.pgDb) {
      await this.pgDb.drop();
      this.pgDb = null;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export class Server {
  constructor(proc, port, stdoutPath, stderrPath) {
    this.proc = proc;
    this.port = port;
    this.base = `http://127.0.0.1:${port}`;
    this.stdoutPath = stdoutPath;
    this.stderrPath = stderrPath;
    this.running = true;
    this.spawnError = null;
    this.exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        this.running = false;
        resolve({ code, signal });
      });
      // A failed spawn (e.g. EACCES while the binary is being relinked) emits
      // 'error' and never 'exit': without this, stop() would wait forever.
      proc.on('error', (e) => {
        if (proc.pid !== undefined && proc.exitCode === null && proc.signalCode === null) return; // a failed kill()
        this.spawnError = e;
        this.running = false;
        resolve({ code: null, signal: null, error: e });
      });
    });
  }

  /** Polls /healthz (bounded); false if the process exits or never answers. */
  async waitReady() {
    for (let i = 0; i < 600 && this.running; i++) {
      try {
        const r = await fetch(`${this.base}/healthz`);
        await r.arrayBuffer();
        if (r.status === 200) return true;
      } catch {
        // not listening yet
      }
      await delay(Math.min(10 + i * 5, 100));
    }
    return false;
  }

  /** Sends `signal` and resolves to {code, signal} when the process has exited. */
  async stop(signal = 'SIGTERM') {
    if (this.running) this.proc.kill(signal);
    return this.exited;
  }

  stdout() {
    return fs.readFileSync(this.stdoutPath, 'utf8');
  }

  stderr() {
    return fs.readFileSync(this.stderrPath, 'utf8');
  }

  /**
   * Makes a request. `key` sets `Authorization: Bearer <key>`; `auth` sets the
   * raw Authorization header. Resolves to {status, headers, text, json}.
   */
  async req(p, { key, auth, method = 'GET', headers = {}, body } = {}) {
    const h = { ...headers };
    if (key !== undefined) h.authorization = `Bearer ${key}`;
    if (auth !== undefined) h.authorization = auth;
    const r = await fetch(this.base + p, { method, headers: h, body });
    const text = await r.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: r.status, headers: r.headers, text, json };
  }

  /**
   * Sends `head` (request line and headers, as text) on a raw socket, then
   * `bodySize` bytes of body only if the server has not answered after a few
   * round trips on another connection: a server may answer from the headers
   * alone (413) and close, and body bytes it never reads would turn its close
   * into a reset that loses the answer. Resolves to {status, headers, text, json}
   * once one complete response has arrived (or the connection closed).
   */
  raw(head, { bodySize = 0 } = {}) {
    return new Promise((resolve, reject) => {
      const sock = net.connect(this.port, '127.0.0.1');
      let buf = Buffer.alloc(0);
      let done = false;
      const parse = (final) => {
        if (done) return;
        const sep = buf.indexOf('\r\n\r\n');
        if (sep < 0) {
          if (final) {
            done = true;
            reject(new Error(`no complete HTTP response before the connection closed: ${JSON.stringify(buf.toString('latin1'))}`));
          }
          return;
        }
        const [statusLine, ...lines] = buf.subarray(0, sep).toString('latin1').split('\r\n');
        const headers = new Headers();
        for (const l of lines) {
          const i = l.indexOf(':');
          if (i > 0) headers.append(l.slice(0, i).trim(), l.slice(i + 1).trim());
        }
        const len = headers.has('content-length') ? Number(headers.get('content-length')) : null;
        const body = buf.subarray(sep + 4);
        if (!final && (len === null || body.length < len)) return;
        done = true;
        sock.destroy();
        const text = body.subarray(0, len ?? body.length).toString('utf8');
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: Number(statusLine.split(' ')[1]), headers, text, json });
      };
      sock.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        parse(false);
      });
      sock.on('error', () => {}); // EPIPE/ECONNRESET after an early answer: keep what arrived
      sock.on('close', () => parse(true));
      sock.on('connect', async () => {
        sock.write(head);
        if (bodySize === 0) return;
        for (let i = 0; i < 20 && buf.length === 0 && !done; i++) await this.req('/healthz');
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        let sent = 0;
        const pump = () => {
          if (buf.length > 0 || done || sock.destroyed || sent >= bodySize) return;
          const n = Math.min(chunk.length, bodySize - sent);
          sent += n;
          sock.write(chunk.subarray(0, n), pump);
        };
        pump();
      });
    });
  }

  /** Follows next_cursor from `p` (which must not contain a cursor) to the end. */
  async walk(p, key, { onPage } = {}) {
    const items = [];
    const pages = [];
    let cursor = null;
    const sep = p.includes('?') ? '&' : '?';
    for (let i = 0; i < 10000; i++) {
      const url = cursor === null ? p : `${p}${sep}cursor=${encodeURIComponent(cursor)}`;
      const r = await this.req(url, { key });
      assert.equal(r.status, 200, `GET ${url}: ${r.status} ${r.text}`);
      assertListShape(r.json);
      pages.push(r.json);
      items.push(...r.json.data);
      if (onPage) await onPage(r.json, pages.length);
      if (!r.json.has_more) return { items, pages };
      cursor = r.json.next_cursor;
    }
    assert.fail('pagination did not end');
  }
}

// ---------------------------------------------------------------------------
// Response assertions

/**
 * Runs `check(item)` for every item and fails once at the end listing every
 * item that failed, so one run reports all of them.
 */
export async function checkAll(items, label, check) {
  const failures = [];
  for (const item of items) {
    try {
      await check(item);
    } catch (e) {
      failures.push(`${label(item)}: ${e.message.split('\n')[0]}`);
    }
  }
  if (failures.length) assert.fail(`${failures.length} of ${items.length} cases failed:\n${failures.join('\n')}`);
}

export function assertJsonContentType(res) {
  const ct = res.headers.get('content-type') || '';
  assert.match(ct, /^application\/json\b/i, `Content-Type must be application/json, got "${ct}"`);
}

export function assertRequestId(res) {
  const id = res.headers.get('x-request-id');
  assert.ok(id, 'X-Request-Id header is missing');
  assert.match(id, /^req_\S+$/, `X-Request-Id must start with req_, got ${id}`);
  return id;
}

/** Asserts the three X-RateLimit-* headers are present and sane; returns them as numbers. */
export function rateLimitHeaders(res) {
  const out = {};
  for (const [k, name] of [['limit', 'x-ratelimit-limit'], ['remaining', 'x-ratelimit-remaining'], ['reset', 'x-ratelimit-reset']]) {
    const v = res.headers.get(name);
    assert.ok(v !== null, `${name} header is missing (status ${res.status})`);
    assert.match(v, /^\d+$/, `${name} must be a non-negative integer, got "${v}"`);
    out[k] = Number(v);
  }
  assert.ok(out.remaining <= out.limit, 'X-RateLimit-Remaining <= X-RateLimit-Limit');
  return out;
}

/** Asserts a contract error response: status, JSON body {error:{code,message}}, request id. */
export function assertError(res, status, code) {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status} ${res.text.slice(0, 160)}`);
  assertJsonContentType(res);
  assert.ok(res.json && typeof res.json === 'object', `error body must be JSON, got ${res.text}`);
  assert.ok(res.json.error && typeof res.json.error === 'object', `body must have "error": ${res.text}`);
  assert.equal(res.json.error.code, code, `error.code: ${res.text}`);
  assert.equal(typeof res.json.error.message, 'string', 'error.message must be a string');
  assert.ok(res.json.error.message.length > 0, 'error.message must not be empty');
  assertRequestId(res);
  return res.json.error;
}

export function assertInvalidKey(res, sentKey) {
  assertError(res, 401, 'invalid_api_key');
  const www = res.headers.get('www-authenticate') || '';
  assert.match(www, /^Bearer\b/, `WWW-Authenticate must start with Bearer, got "${www}"`);
  rateLimitHeaders(res);
  if (sentKey) assert.ok(!res.text.includes(sentKey), 'a 401 body must not echo the key');
}

export function assertListShape(body) {
  assert.ok(body && typeof body === 'object', 'list body is an object');
  assert.deepEqual(sortedKeys(body), ['data', 'has_more', 'next_cursor', 'object'], 'list body fields');
  assert.equal(body.object, 'list');
  assert.ok(Array.isArray(body.data), 'data is an array');
  assert.equal(typeof body.has_more, 'boolean', 'has_more is a boolean');
  if (body.has_more) {
    assert.equal(typeof body.next_cursor, 'string', 'next_cursor is a string when has_more');
    assert.ok(body.next_cursor.length > 0, 'next_cursor is not empty');
  } else {
    assert.equal(body.next_cursor, null, 'next_cursor is null when has_more is false');
  }
}

/** Newest first by created_at, ties by id descending. */
export function compareNewestFirst(a, b) {
  const ta = Date.parse(a.created_at);
  const tb = Date.parse(b.created_at);
  if (ta !== tb) return tb - ta;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

export function assertNewestFirst(items, what = 'list') {
  for (let i = 1; i < items.length; i++) {
    assert.ok(
      compareNewestFirst(items[i - 1], items[i]) < 0,
      `${what}: item ${i - 1} (${items[i - 1].created_at} ${items[i - 1].id}) must come strictly before item ${i} (${items[i].created_at} ${items[i].id})`,
    );
  }
}

/** RFC 3339 with whole seconds and Z, from unix seconds. */
export function rfc3339(unixSeconds) {
  return new Date(unixSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// ---------------------------------------------------------------------------
// Management API (contract section 6): users with passwords, portal sessions.

export const SESSION_COOKIE = 'dvs_session';
/** A session token as the server issues it: 43 base64url characters (256 bits). */
export const SESSION_TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;

/**
 * Parses the `dvs_session` Set-Cookie of a response; returns null if there is
 * none, else {value, attrs, raw}: attrs maps each lower-cased attribute name
 * to its value (true for a flag such as HttpOnly).
 */
export function sessionSetCookie(res) {
  const all = typeof res.headers.getSetCookie === 'function'
    ? res.headers.getSetCookie()
    : (res.headers.get('set-cookie') || '').split(/,(?=\s*[A-Za-z0-9_-]+=)/);
  const raw = all.map((c) => c.trim()).find((c) => c.startsWith(`${SESSION_COOKIE}=`));
  if (raw === undefined) return null;
  const [first, ...rest] = raw.split(';').map((p) => p.trim());
  const attrs = {};
  for (const p of rest) {
    if (!p) continue;
    const i = p.indexOf('=');
    if (i < 0) attrs[p.toLowerCase()] = true;
    else attrs[p.slice(0, i).trim().toLowerCase()] = p.slice(i + 1).trim();
  }
  return { value: first.slice(SESSION_COOKIE.length + 1), attrs, raw };
}

/**
 * Management API requests. `token` (a session cookie value, or null for none)
 * is sent as `Cookie: dvs_session=<token>`. `json` is serialized as the body
 * with `Content-Type: application/json` unless `contentType` says otherwise
 * (null: no Content-Type at all). A `body` given as a string is sent as
 * bytes, so fetch adds no Content-Type of its own. Every secret found in a
 * response is recorded in env.secrets.
 */
export class Portal {
  constructor(env, server) {
    this.env = env;
    this.server = server;
  }

  async req(p, { token = null, method = 'GET', json, body, contentType, origin, headers = {} } = {}) {
    const h = { ...headers };
    let b = body;
    if (json !== undefined) b = JSON.stringify(json);
    const ct = contentType !== undefined ? contentType : b !== undefined ? 'application/json' : undefined;
    if (ct !== undefined && ct !== null) h['content-type'] = ct;
    if (origin !== undefined) h.origin = origin;
    if (token !== null) h.cookie = `${SESSION_COOKIE}=${token}`;
    if (typeof b === 'string') b = Buffer.from(b, 'utf8');
    const res = await this.server.req(p, { method, headers: h, body: b });
    this.#record(res.json);
    return res;
  }

  #record(v) {
    if (!v || typeof v !== 'object') return;
    if (typeof v.secret === 'string') this.env.secrets.add(v.secret);
  }

  /** POST /api/session; resolves to {res, token} (token null unless a cookie was set). */
  async signIn(email, password, opts = {}) {
    const res = await this.req('/api/session', { method: 'POST', json: { email, password }, ...opts });
    const c = sessionSetCookie(res);
    return { res, token: res.status === 200 && c ? c.value : null };
  }

  /** Signs in and asserts success; returns a Session bound to the new cookie. */
  async session(email, password) {
    const { res, token } = await this.signIn(email, password);
    assert.equal(res.status, 200, `sign-in as ${email}: ${res.status} ${res.text}`);
    assert.ok(token, `sign-in as ${email} must set ${SESSION_COOKIE}`);
    return new Session(this, token, res.json);
  }
}

/** One signed-in browser: every request carries its cookie. */
export class Session {
  constructor(portal, token, me) {
    this.portal = portal;
    this.token = token;
    this.me = me;
  }

  req(p, opts = {}) {
    return this.portal.req(p, { token: this.token, ...opts });
  }

  get(p, opts = {}) {
    return this.req(p, { method: 'GET', ...opts });
  }

  post(p, json = {}, opts = {}) {
    return this.req(p, { method: 'POST', json, ...opts });
  }

  del(p, opts = {}) {
    return this.req(p, { method: 'DELETE', contentType: 'application/json', ...opts });
  }

  /** POST /api/keys, asserting 201; returns {key, secret}. */
  async createKey({ name = 'portal key', scopes = ['leads:read', 'invoices:read'], ...rest } = {}) {
    const r = await this.post('/api/keys', { name, scopes, ...rest });
    assert.equal(r.status, 201, `POST /api/keys: ${r.status} ${r.text}`);
    return r.json;
  }
}

/**
 * Asserts that no string of `needles` (and, for API key secrets, not their
 * random part either) occurs in any of `files`, raw or hex-encoded (the way
 * PostgreSQL dumps bytea). A file is a path, or an entry of
 * Env.dataSnapshot() ({name, content}).
 */
export function assertNotInFiles(files, needles, what = 'secret') {
  const found = [];
  for (const f of files) {
    let name;
    let content;
    if (typeof f === 'string') {
      if (!fs.existsSync(f)) continue;
      name = path.basename(f);
      content = fs.readFileSync(f);
    } else {
      name = f.database && !fs.existsSync(f.name) ? f.name : path.basename(f.name);
      content = f.content;
    }
    for (const s of needles) {
      const parts = [s];
      if (KEY_RE.test(s)) parts.push(s.slice(9, 41));
      for (const p of parts) if (containsBytes(content, Buffer.from(p, 'utf8'))) found.push(`${name} contains a ${what} (${s.slice(0, 13)}...)`);
    }
  }
  assert.deepEqual(found, [], found.join('\n'));
}

/**
 * Calls `fn` until it returns a value other than undefined/false, at most
 * `tries` times with a short pause between calls (for work the server does
 * in the background); fails with `what` (a string, or a function returning
 * one) and the last value if it never does.
 */
export async function pollUntil(fn, { what = 'condition', tries = 100, intervalMs = 50 } = {}) {
  let last;
  for (let i = 0; i < tries; i++) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    last = v;
    await delay(intervalMs);
  }
  const msg = typeof what === 'function' ? what() : what;
  assert.fail(`${msg} did not happen after ${tries} polls (last: ${JSON.stringify(last)})`);
}

// ---------------------------------------------------------------------------
// Several nodes: a throw-away Redis (stopped and restarted on its port), a
// PostgreSQL database of one's own, and HTTP requests whose connection and
// source address the test chooses.

export const REDIS_SCRIPT = path.join(REPO_ROOT, 'scripts', 'redis-test-server.sh');

/** Runs a program; resolves to {code, stdout, stderr} (never rejects on a non-zero exit). */
export function execProgram(file, args, { input } = {}) {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function portOpen(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.setTimeout(1000);
    sock.on('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.on('timeout', () => {
      sock.destroy();
      resolve(false);
    });
    sock.on('error', () => resolve(false));
  });
}

/** True when a Redis on 127.0.0.1:port answers PING with PONG. */
export function redisPing(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    const done = (v) => {
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(1000, () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
    sock.on('error', () => done(false));
    sock.on('close', () => done(false));
  });
}

/**
 * Starts a Redis with scripts/redis-test-server.sh in `dir` (created if
 * missing); resolves to {url, port, dir} once it answers PING.
 */
export async function startRedis(dir) {
  const r = await execProgram(REDIS_SCRIPT, ['start', dir]);
  assert.equal(r.code, 0, `redis-test-server.sh start: ${r.stderr}`);
  const url = lastLine(r.stdout);
  assert.match(url, /^redis:\/\/127\.0\.0\.1:\d+$/, `redis-test-server.sh must print the URL, got ${JSON.stringify(r.stdout)}`);
  const port = Number(fs.readFileSync(path.join(dir, 'port'), 'utf8').trim());
  await pollUntil(() => redisPing(port), { what: `Redis on port ${port} answering PING`, tries: 100 });
  return { url, port, dir };
}

/**
 * Starts Redis again on the port it had in `dir` (same settings as the
 * script, no persistence, so it comes back empty); resolves once it answers.
 */
export async function startRedisOnPort(dir) {
  const port = Number(fs.readFileSync(path.join(dir, 'port'), 'utf8').trim());
  const r = await execProgram('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'yes',
    '--pidfile', path.join(dir, 'redis.pid'), '--logfile', path.join(dir, 'redis.log'), '--dir', dir,
  ]);
  assert.equal(r.code, 0, `redis-server on port ${port}: ${r.stdout} ${r.stderr}`);
  await pollUntil(() => redisPing(port), { what: `Redis restarted on port ${port} answering PING`, tries: 100 });
  return { url: `redis://127.0.0.1:${port}`, port, dir };
}

/** Stops the Redis of `dir` (script's stop) and waits until its port refuses connections. */
export async function stopRedis(dir) {
  const portFile = path.join(dir, 'port');
  if (!fs.existsSync(portFile)) return;
  const port = Number(fs.readFileSync(portFile, 'utf8').trim());
  const r = await execProgram(REDIS_SCRIPT, ['stop', dir]);
  assert.equal(r.code, 0, `redis-test-server.sh stop: ${r.stderr}`);
  await pollUntil(async () => !(await portOpen(port)), { what: `Redis on port ${port} going away`, tries: 200 });
}

/**
 * Creates a fresh database `<prefix>_<random>` on the PostgreSQL server of
 * `serverUrl` (connecting with psql to its `postgres` database); resolves to
 * {url, name, drop()}, drop() removing it again (also with connections left).
 */
export async function createPgDatabase(serverUrl, prefix = 'dvs_itest') {
  const u = new URL(serverUrl);
  const name = `${prefix}_${randomBase62(10).toLowerCase()}`;
  assert.match(name, /^[a-z0-9_]+$/);
  const admin = new URL(serverUrl);
  admin.pathname = '/postgres';
  admin.search = '';
  const psql = (sql) => execProgram('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', admin.toString(), '-c', sql]);
  const r = await psql(`CREATE DATABASE ${name}`);
  assert.equal(r.code, 0, `psql CREATE DATABASE ${name}: ${r.stderr}`);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    name,
    async drop() {
      const d = await psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      assert.equal(d.code, 0, `psql DROP DATABASE ${name}: ${d.stderr}`);
    },
  };
}

const keepAliveAgents = new Map(); // localAddress -> http.Agent

/**
 * A request with node:http instead of fetch, for what fetch cannot choose:
 * `newConnection` (a connection of its own, closed after the response, so a
 * server spreading connections over its threads sees a new one each time) and
 * `localAddress` (the source address, e.g. 127.0.0.7, so the server sees
 * another client IP). Resolves to {status, headers, text, json} like
 * Server.req; rejects on a connection error.
 */
export function httpRequest(server, p, { key, method = 'GET', headers = {}, body, localAddress, newConnection = false } = {}) {
  const h = { ...headers };
  if (key !== undefined) h.authorization = `Bearer ${key}`;
  let agent = false;
  if (!newConnection) {
    const k = localAddress || '';
    agent = keepAliveAgents.get(k);
    if (!agent) {
      agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
      keepAliveAgents.set(k, agent);
    }
  }
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: server.port, path: p, method, headers: h, agent, localAddress,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const hs = new Headers();
        for (const [name, v] of Object.entries(res.headers)) {
          for (const one of Array.isArray(v) ? v : [v]) hs.append(name, one);
        }
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode, headers: hs, text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Closes the idle keep-alive connections httpRequest kept. */
export function closeHttpAgents() {
  for (const a of keepAliveAgents.values()) a.destroy();
  keepAliveAgents.clear();
}

/** GET /readyz; asserts HTTP 200 and JSON; returns the body. */
export async function readyz(server) {
  const r = await server.req('/readyz');
  assert.equal(r.status, 200, `GET /readyz on :${server.port}: ${r.status} ${r.text}`);
  assertJsonContentType(r);
  return r.json;
}

// ---------------------------------------------------------------------------
// Adversarial helpers (hostile.test.mjs, timing.test.mjs, crash.test.mjs) and
// the secrets-sweep recorder (sweep.mjs). Raw HTTP/1.1 over sockets, so a
// test can send bytes no client library would, and see exactly what comes
// back, or that the connection closed without a byte.

/** A small seeded PRNG (mulberry32): returns a function giving floats in [0, 1). */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** True when `buf` is well-formed UTF-8. */
export function isValidUtf8(buf) {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(buf);
    return true;
  } catch {
    return false;
  }
}

/**
 * Parses the first HTTP/1.x response at the start of `buf` (the server always
 * frames its answers with Content-Length). Returns null while it is
 * incomplete; {malformed: reason} if it cannot be a response; else
 * {status, version, headers (a Headers), body (a Buffer), head (the text of
 * the status line and headers), size (bytes it took)}. `headOnly`: the answer
 * to a HEAD, which has no body whatever Content-Length says.
 */
export function parseHttpResponse(buf, { headOnly = false } = {}) {
  const sep = buf.indexOf('\r\n\r\n');
  if (sep < 0) {
    if (buf.length >= 5 && !buf.subarray(0, 5).equals(Buffer.from('HTTP/'))) return { malformed: 'does not start with HTTP/' };
    return null;
  }
  const head = buf.subarray(0, sep).toString('latin1');
  const [statusLine, ...lines] = head.split('\r\n');
  const m = /^HTTP\/(1\.[01]) (\d{3}) /.exec(statusLine + ' ');
  if (!m) return { malformed: `bad status line ${JSON.stringify(statusLine.slice(0, 80))}` };
  const headers = new Headers();
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i <= 0) return { malformed: `bad header line ${JSON.stringify(l.slice(0, 80))}` };
    try {
      headers.append(l.slice(0, i).trim(), l.slice(i + 1).trim());
    } catch {
      return { malformed: `bad header line ${JSON.stringify(l.slice(0, 80))}` };
    }
  }
  let len = 0;
  if (!headOnly) {
    const cl = headers.get('content-length');
    if (cl === null || !/^\d+$/.test(cl)) return { malformed: `no usable Content-Length (${cl})` };
    len = Number(cl);
  }
  if (buf.length < sep + 4 + len) return null;
  return {
    status: Number(m[2]),
    version: m[1],
    headers,
    body: buf.subarray(sep + 4, sep + 4 + len),
    head,
    size: sep + 4 + len,
  };
}

/**
 * One exchange on a fresh connection: writes `parts` (strings are sent as
 * latin1 bytes, so "\xff" is the byte 0xff; Buffers as they are) in order,
 * stopping as soon as an answer arrives; `halfClose` then ends our side.
 * Resolves (never rejects) to one of:
 *   {kind: 'response', res, bytes}        a complete first response (see parseHttpResponse)
 *   {kind: 'closed', reset, bytes: 0}     the server closed without sending a byte
 *   {kind: 'partial', bytes, text}        bytes that are not one complete response, then a close
 *   {kind: 'malformed', reason, text}     bytes that cannot be an HTTP response
 *   {kind: 'hang', bytes}                 neither an answer nor a close within `limitMs`
 *   {kind: 'connect-error', error}
 * `limitMs` is a liveness bound (the server promises to answer or close within
 * its read timeout), never a speed requirement: keep it several times the
 * server's --read-timeout.
 */
export function rawExchange(port, parts, { halfClose = false, localAddress, limitMs = 10000, headOnly = false } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1', localAddress });
    let buf = Buffer.alloc(0);
    let done = false;
    let reset = false;
    let connected = false;
    const finish = (v) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => finish({ kind: 'hang', bytes: buf.length, text: buf.toString('latin1').slice(0, 200) }), limitMs);
    const check = (final) => {
      const r = buf.length ? parseHttpResponse(buf, { headOnly }) : null;
      if (r && r.malformed) return finish({ kind: 'malformed', reason: r.malformed, text: buf.toString('latin1').slice(0, 200) });
      if (r) return finish({ kind: 'response', res: r, bytes: buf.length });
      if (!final) return undefined;
      if (buf.length === 0) return finish({ kind: 'closed', reset, bytes: 0 });
      return finish({ kind: 'partial', bytes: buf.length, text: buf.toString('latin1').slice(0, 200) });
    };
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      check(false);
    });
    sock.on('error', (e) => {
      if (!connected) return finish({ kind: 'connect-error', error: e.code || e.message });
      if (e.code === 'ECONNRESET') reset = true; // EPIPE after an early answer: keep what arrived
      return undefined;
    });
    sock.on('close', () => check(true));
    sock.on('connect', async () => {
      connected = true;
      for (const p of parts) {
        if (done || buf.length > 0 || sock.destroyed) return;
        const b = Buffer.isBuffer(p) ? p : Buffer.from(p, 'latin1');
        // Wait for each write, so a large body stops as soon as the answer comes.
        await new Promise((r) => sock.write(b, () => r()));
      }
      if (halfClose && !done && !sock.destroyed) sock.end();
    });
  });
}

/**
 * A kept-alive raw connection for request/response pairs in sequence (no
 * pipelining): `send(bytes)` resolves to the parsed response (see
 * parseHttpResponse) or rejects if the connection closes or `limitMs` (a
 * liveness bound) passes first. `closed` resolves when the peer closes.
 */
export class RawConnection {
  static open(port, { localAddress } = {}) {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ port, host: '127.0.0.1', localAddress });
      sock.setNoDelay(true);
      sock.once('error', reject);
      sock.once('connect', () => {
        sock.off('error', reject);
        resolve(new RawConnection(sock));
      });
    });
  }

  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.waiter = null;
    this.isClosed = false;
    this.closed = new Promise((resolve) => {
      sock.on('close', () => {
        this.isClosed = true;
        if (this.waiter) this.waiter.fail(new Error('connection closed before a complete response'));
        resolve();
      });
    });
    sock.on('error', () => {});
    sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.#check();
    });
  }

  #check() {
    if (!this.waiter) return;
    const r = parseHttpResponse(this.buf);
    if (r === null) return;
    const w = this.waiter;
    this.waiter = null;
    if (r.malformed) return w.fail(new Error(`malformed response: ${r.malformed}`));
    this.buf = this.buf.subarray(r.size);
    return w.ok(r);
  }

  send(bytes, { limitMs = 10000 } = {}) {
    assert.equal(this.waiter, null, 'RawConnection.send: one request at a time');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`no response within the liveness bound of ${limitMs} ms`));
      }, limitMs);
      this.waiter = {
        ok: (r) => { clearTimeout(timer); resolve(r); },
        fail: (e) => { clearTimeout(timer); this.waiter = null; reject(e); },
      };
      if (this.isClosed) return this.waiter.fail(new Error('connection is closed'));
      this.sock.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'latin1'));
      this.#check();
      return undefined;
    });
  }

  close() {
    this.sock.destroy();
    return this.closed;
  }
}

/** A GET request as raw bytes (HTTP/1.1, Host, optional Bearer key and extra header lines). */
export function rawGet(target, { key, headers = [], close = false } = {}) {
  let s = `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n`;
  if (key !== undefined) s += `Authorization: Bearer ${key}\r\n`;
  for (const h of headers) s += `${h}\r\n`;
  if (close) s += 'Connection: close\r\n';
  return `${s}\r\n`;
}

// ---------------------------------------------------------------------------
// Secrets sweep recorder. Only when DVS_TEST_SWEEP_DIR is set (scripts/test.sh
// sets it): every Env records the secrets it sees — issued key secrets (already
// in env.secrets), passwords, session cookies and Authorization credentials
// sent — and before cleanup() deletes its temp dir it stops its servers with
// SIGTERM (so the request log is flushed), then copies to
// $DVS_TEST_SWEEP_DIR/<env>/ what the service wrote: the database at rest
// (Env.dataSnapshot(): the SQLite files, or a dump of the PostgreSQL database)
// and each server's stdout and stderr, plus needles.json. After the whole
// suite, `node tests/integration/sweep.mjs $DVS_TEST_SWEEP_DIR` searches all of
// it. This wraps a few methods defined above instead of editing them, so the
// recorder stays in one place and costs nothing when the variable is unset.

export const SWEEP_DIR = process.env.DVS_TEST_SWEEP_DIR || '';
const sweepRecords = new WeakMap(); // Env -> {secrets, passwords, cookies, authorization}

function sweepRecordOf(env) {
  let r = sweepRecords.get(env);
  if (!r) {
    r = { passwords: new Set(), cookies: new Set(), authorization: new Set() };
    sweepRecords.set(env, r);
  }
  return r;
}

/**
 * Records `value` (a password, session token or Authorization credential)
 * for the sweep; a no-op unless DVS_TEST_SWEEP_DIR is set. Values shorter than
 * 8 characters are too common to search for and are skipped.
 */
export function recordForSweep(env, kind, value) {
  if (!SWEEP_DIR || !env || typeof value !== 'string' || value.length < 8) return;
  const rec = sweepRecordOf(env);
  assert.ok(rec[kind], `recordForSweep: unknown kind ${kind}`);
  rec[kind].add(value);
}

/** The credential of an Authorization value (after the scheme), for the sweep. */
function authCredential(v) {
  const s = String(v).trim();
  const i = s.indexOf(' ');
  return i > 0 ? s.slice(i + 1).trim() : s;
}

function sessionTokensIn(cookieHeader) {
  const out = [];
  for (const part of String(cookieHeader).split(';')) {
    const p = part.trim();
    if (p.startsWith(`${SESSION_COOKIE}=`)) out.push(p.slice(SESSION_COOKIE.length + 1));
  }
  return out;
}

async function saveForSweep(env) {
  const dest = path.join(SWEEP_DIR, path.basename(env.dir));
  fs.mkdirSync(path.join(dest, 'files'), { recursive: true });
  // SIGTERM first, so what the server keeps in memory (the request log) is
  // written and swept too; a server that does not exit is killed.
  for (const s of env.servers) {
    if (!s.running) continue;
    s.proc.kill('SIGTERM');
    let timer;
    const bound = new Promise((r) => { timer = setTimeout(r, 15000); });
    await Promise.race([s.exited, bound]);
    clearTimeout(timer);
    if (s.running) await s.stop('SIGKILL');
  }
  let n = 0;
  const save = (name, content) => fs.writeFileSync(path.join(dest, 'files', `${++n}-${path.basename(name).replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80)}`), content);
  const snapshot = typeof env.dataSnapshot === 'function'
    ? await env.dataSnapshot()
    : env.dataFiles().map((f) => ({ name: f, content: fs.readFileSync(f) }));
  for (const e of snapshot) save(e.name, e.content);
  for (const s of env.servers) {
    for (const p of [s.stdoutPath, s.stderrPath]) if (fs.existsSync(p)) save(p, fs.readFileSync(p));
  }
  const rec = sweepRecordOf(env);
  fs.writeFileSync(path.join(dest, 'needles.json'), JSON.stringify({
    env: env.name ?? path.basename(env.dir),
    secrets: [...env.secrets],
    passwords: [...rec.passwords],
    cookies: [...rec.cookies],
    authorization: [...rec.authorization],
  }));
}

if (SWEEP_DIR) {
  const wrap = (proto, name, fn) => {
    const orig = proto[name];
    proto[name] = function wrapped(...args) { return fn.call(this, orig, args); };
  };
  wrap(Env.prototype, 'createOrgWithOwner', async function (orig, args) {
    const r = await orig.apply(this, args);
    recordForSweep(this, 'passwords', r.password);
    return r;
  });
  wrap(Env.prototype, 'addUserWithPassword', async function (orig, args) {
    const r = await orig.apply(this, args);
    recordForSweep(this, 'passwords', r.password);
    return r;
  });
  wrap(Env.prototype, 'startServer', async function (orig, args) {
    const s = await orig.apply(this, args);
    s.sweepEnv = this;
    return s;
  });
  wrap(Server.prototype, 'req', function (orig, args) {
    const [, opts = {}] = args;
    const env = this.sweepEnv;
    if (env) {
      if (opts.key !== undefined) recordForSweep(env, 'authorization', String(opts.key));
      if (opts.auth !== undefined) recordForSweep(env, 'authorization', authCredential(opts.auth));
      for (const [k, v] of Object.entries(opts.headers || {})) {
        if (k.toLowerCase() === 'authorization') recordForSweep(env, 'authorization', authCredential(v));
        if (k.toLowerCase() === 'cookie') for (const t of sessionTokensIn(v)) recordForSweep(env, 'cookies', t);
      }
    }
    return orig.apply(this, args);
  });
  wrap(Portal.prototype, 'signIn', async function (orig, args) {
    recordForSweep(this.env, 'passwords', args[1]);
    const r = await orig.apply(this, args);
    if (r.token) recordForSweep(this.env, 'cookies', r.token);
    return r;
  });
  wrap(Env.prototype, 'cleanup', async function (orig, args) {
    try {
      await saveForSweep(this);
    } catch (e) {
      // The sweep must not pass on a run whose files it never saw.
      fs.mkdirSync(SWEEP_DIR, { recursive: true });
      fs.appendFileSync(path.join(SWEEP_DIR, 'ERRORS'), `${this.dir}: ${e.stack || e}\n`);
    }
    return orig.apply(this, args);
  });
}
