// Resources (issue #6): a full disk or a read-only database. Writes answer
// 503 service_unavailable (the contract's JSON error, with Retry-After),
// reads go on with 200, the request log counts what it drops instead of
// anything crashing, nothing is corrupted, and writes work again once space
// or write access returns, without a restart.
//
// SQLite: the data dir is a small tmpfs of its own (we run as root; when the
// mount is refused, the SQLite tests are skipped with the reason).
//   - Disk full: the WAL is checkpointed and truncated, then a filler file
//     takes every free block, so the next write of any kind must grow the WAL
//     and fails (deterministic: no timing). Then the filler is deleted.
//   - Read-only: Linux refuses `mount -o remount,ro` while a process holds a
//     file of the file system open for writing (EBUSY), and the server holds
//     the database, -wal and -shm open read-write. So the server is stopped
//     (SIGTERM, then again with SIGKILL, leaving a WAL with frames not yet in
//     the database file), the tmpfs is remounted read-only, and the server
//     started on it; then the tmpfs is remounted read-write under the
//     running server. If the kernel ever allows the runtime remount, the
//     same checks run against the server as it is.
//   After each: PRAGMA integrity_check is ok and every write acknowledged
//   before (keys, revocations, leads, audit events) is still there.
// PostgreSQL (DVS_TEST_BACKEND=postgres): the Env's database is made read-only
// (ALTER DATABASE ... SET default_transaction_read_only, then the server's
// pooled connections are ended so they reconnect read-only), then writable
// again; the same 503/200 checks.
//
// Every wait is a poll with a bounded number of attempts.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  BACKEND, Env, Portal, Session, assertError, assertListShape, pollUntil, psqlJson, sqliteOnly,
} from './lib/harness.mjs';

const TMPFS_SIZE = '16m';
const env = new Env('dvs-resources');

// The tmpfs for the SQLite tests, mounted now so that a refusal can skip them.
const mountSkip = (() => {
  if (BACKEND !== 'sqlite') return sqliteOnly('a tmpfs under the SQLite file');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_SIZE},mode=0755`, 'tmpfs', env.dataDir], { stdio: 'pipe' });
    return false;
  } catch (e) {
    return `cannot mount a tmpfs on ${env.dataDir} (needs root and mount(8)): ${String(e.stderr || e.message).trim()}`;
  }
})();
const mounted = mountSkip === false;
const pgSkip = BACKEND === 'postgres' ? false : 'PostgreSQL only (DVS_TEST_BACKEND=postgres)';

let org;
let owner;
let v1Key; // a CLI key for /v1: {id, secret}
let server;

before(async () => {
  await env.migrate();
  owner = await env.createOrgWithOwner({ name: 'Resources Org' });
  org = owner.org;
  await env.importRows('leads', org, [
    { name: 'Lead One', status: 'new', email: 'one@example.com' },
    { name: 'Lead Two', status: 'won', value_cents: 5000, currency: 'EUR' },
  ]);
  await env.importRows('invoices', org, [{ number: 'INV-1', customer_name: 'Customer', status: 'open' }]);
  v1Key = await env.createKey(org, { name: 'reader', rateLimit: 100000 });
});

after(async () => {
  for (const s of env.servers) if (s.running) await s.stop('SIGKILL');
  if (mounted) {
    // Writable again first (a read-only tmpfs unmounts too; this is for clarity).
    try { execFileSync('mount', ['-o', 'remount,rw', env.dataDir], { stdio: 'pipe' }); } catch { /* not mounted or already rw */ }
    execFileSync('umount', [env.dataDir], { stdio: 'pipe' });
  }
  await env.cleanup();
});

// ---------------------------------------------------------------------------
// Helpers

/** The value of a sample of /metrics (no labels), as a number. */
async function metric(srv, name) {
  const r = await srv.req('/metrics');
  assert.equal(r.status, 200, `GET /metrics: ${r.status}`);
  const m = r.text.match(new RegExp(`^${name} (\\d+)$`, 'm'));
  assert.ok(m, `/metrics has no ${name}:\n${r.text.slice(0, 400)}`);
  return Number(m[1]);
}

/** Fills the file system of `dir` with one file until no block is free; returns its path. */
function fillFileSystem(dir) {
  const file = path.join(dir, 'filler');
  const fd = fs.openSync(file, 'w');
  try {
    for (const size of [1 << 20, 1 << 16, 4096, 512, 1]) {
      const buf = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          if (fs.writeSync(fd, buf) < size) break;
        } catch (e) {
          if (e.code === 'ENOSPC') break;
          throw e;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

function remount(mode) {
  execFileSync('mount', ['-o', `remount,${mode}`, env.dataDir], { stdio: 'pipe' });
}

/** Tries a runtime remount read-only; returns null on success, else the error text. */
function tryRemountReadOnly() {
  try {
    remount('ro');
    return null;
  } catch (e) {
    return String(e.stderr || e.message).trim();
  }
}

function assertUnavailable(r, what) {
  try {
    assertError(r, 503, 'service_unavailable');
  } catch (e) {
    e.message = `${what}: ${e.message}`;
    throw e;
  }
  const ra = r.headers.get('retry-after');
  assert.match(ra ?? '', /^[1-9]\d*$/, `${what}: Retry-After must be a positive integer, got ${ra}`);
  assert.match(r.json.error.message, /Reference: req_/, `${what}: the message names the request id`);
}

function assertOkStatus(r, status, what) {
  assert.equal(r.status, status, `${what}: expected ${status}, got ${r.status} ${r.text.slice(0, 200)}`);
}

/** Every kind of read the service offers answers 200. */
async function checkReads(srv, s, what) {
  const key = v1Key.secret;
  const leads = await srv.req('/v1/leads', { key });
  assertOkStatus(leads, 200, `${what}: GET /v1/leads`);
  assertListShape(leads.json);
  assert.equal(leads.json.data.length, 2, `${what}: both leads listed`);
  const leadId = leads.json.data[0].id;
  assertOkStatus(await srv.req(`/v1/leads/${leadId}`, { key }), 200, `${what}: GET /v1/leads/{id}`);
  const inv = await srv.req('/v1/invoices', { key });
  assertOkStatus(inv, 200, `${what}: GET /v1/invoices`);
  assertOkStatus(await srv.req(`/v1/invoices/${inv.json.data[0].id}`, { key }), 200, `${what}: GET /v1/invoices/{id}`);
  assertOkStatus(await srv.req('/v1/key', { key }), 200, `${what}: GET /v1/key`);
  const keys = await s.get('/api/keys');
  assertOkStatus(keys, 200, `${what}: GET /api/keys`);
  assertOkStatus(await s.get('/api/audit-events'), 200, `${what}: GET /api/audit-events`);
  assertOkStatus(await s.get('/api/session'), 200, `${what}: GET /api/session`);
  assertOkStatus(await s.get(`/api/keys/${v1Key.id}/requests`), 200, `${what}: GET /api/keys/{id}/requests`);
  const ready = await srv.req('/readyz');
  assertOkStatus(ready, 200, `${what}: GET /readyz (reads are served)`);
  assert.equal(ready.json.checks.database, 'ok', `${what}: /readyz database check`);
  return keys.json.data;
}

/**
 * Every kind of write answers 503 JSON: create, rotate, revoke, sign-in,
 * sign-out. `target` is an active key to rotate and revoke; `spare` a
 * session to sign out.
 */
async function checkWritesRefused(srv, portal, s, spare, target, what) {
  assertUnavailable(await s.post('/api/keys', { name: 'refused', scopes: ['leads:read'] }), `${what}: POST /api/keys`);
  assertUnavailable(await s.post(`/api/keys/${target}/rotate`, {}), `${what}: POST /api/keys/{id}/rotate`);
  assertUnavailable(await s.post(`/api/keys/${target}/revoke`, {}), `${what}: POST /api/keys/{id}/revoke`);
  const signIn = await portal.signIn(owner.email, owner.password);
  assertUnavailable(signIn.res, `${what}: POST /api/session (sign-in)`);
  assert.equal(signIn.token, null, `${what}: a refused sign-in sets no cookie`);
  assertUnavailable(await spare.del('/api/session'), `${what}: DELETE /api/session (sign-out)`);
}

/** Writes work again: polls the first (bounded), then each kind once. Returns the new key's id. */
async function checkWritesWork(portal, s, spare, target, what) {
  const created = await pollUntil(async () => {
    const r = await s.post('/api/keys', { name: `after ${what}`, scopes: ['leads:read'] });
    return r.status === 201 ? r.json : (r.status === 503 ? false : assert.fail(`${what}: POST /api/keys: ${r.status} ${r.text}`));
  }, { what: `${what}: POST /api/keys answered 201 again`, tries: 50, intervalMs: 100 });
  const rotated = await s.post(`/api/keys/${created.key.id}/rotate`, {});
  assertOkStatus(rotated, 201, `${what}: POST /api/keys/{id}/rotate`);
  assertOkStatus(await s.post(`/api/keys/${target}/revoke`, {}), 200, `${what}: POST /api/keys/{id}/revoke`);
  const again = await portal.signIn(owner.email, owner.password);
  assertOkStatus(again.res, 200, `${what}: POST /api/session (sign-in)`);
  assertOkStatus(await spare.del('/api/session'), 204, `${what}: DELETE /api/session (sign-out)`);
  assertOkStatus(await spare.get('/api/session'), 401, `${what}: the signed-out session is gone`);
  return { created: created.key.id, rotatedTo: rotated.json.key.id, session: again.token };
}

/** PRAGMA integrity_check and foreign keys, with the server running (WAL readers do not block). */
async function checkIntegrity(what) {
  const ic = await env.sql('PRAGMA integrity_check');
  assert.deepEqual(ic, [{ integrity_check: 'ok' }], `${what}: PRAGMA integrity_check`);
  assert.deepEqual(await env.sql('PRAGMA foreign_key_check'), [], `${what}: PRAGMA foreign_key_check`);
}

/** Acknowledged state: every key id in `ids` exists; `revoked` ones are revoked; the leads are there. */
async function checkAcknowledged(ids, revoked, what) {
  const rows = await env.sql(`SELECT id, revoked_at FROM api_keys WHERE org_id = '${org}'`);
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const id of ids) assert.ok(byId.has(id), `${what}: key ${id} was acknowledged but is gone`);
  for (const id of revoked) assert.notEqual(byId.get(id)?.revoked_at ?? null, null, `${what}: key ${id} was revoked (200) but is not`);
  const leads = await env.sql(`SELECT count(*) AS n FROM leads WHERE org_id = '${org}'`);
  assert.equal(Number(leads[0].n), 2, `${what}: the leads`);
  return rows.length;
}

/** A /v1 request whose request-log entry cannot be written: the drop counter rises, the server lives. */
async function checkLogDrops(srv, what) {
  const dropped = await metric(srv, 'dvs_request_log_dropped_total');
  assertOkStatus(await srv.req('/v1/leads', { key: v1Key.secret }), 200, `${what}: GET /v1/leads`);
  await pollUntil(async () => (await metric(srv, 'dvs_request_log_dropped_total')) > dropped,
    { what: `${what}: dvs_request_log_dropped_total rises`, tries: 100, intervalMs: 100 });
  assert.equal(await metric(srv, 'dvs_db_writes_failing'), 1, `${what}: dvs_db_writes_failing`);
  assert.ok((await metric(srv, 'dvs_db_write_failures_total')) > 0, `${what}: dvs_db_write_failures_total`);
  assert.ok(srv.running, `${what}: the server is still running`);
  assertOkStatus(await srv.req('/healthz'), 200, `${what}: GET /healthz`);
}

/** The request log writes again: a new /v1 request shows up in the key's request log. */
async function checkLogResumes(srv, s, what) {
  const r = await srv.req('/v1/key', { key: v1Key.secret });
  assertOkStatus(r, 200, `${what}: GET /v1/key`);
  const rid = r.headers.get('x-request-id');
  await pollUntil(async () => {
    const page = await s.get(`/api/keys/${v1Key.id}/requests?limit=100`);
    return page.status === 200 && page.json.data.some((e) => e.id === rid);
  }, { what: `${what}: request ${rid} appears in the key's request log`, tries: 100, intervalMs: 100 });
  assert.equal(await metric(srv, 'dvs_db_writes_failing'), 0, `${what}: dvs_db_writes_failing back to 0`);
}

// ---------------------------------------------------------------------------
// SQLite

const acked = []; // ids of keys whose creation was answered 201
const revokedAcked = []; // ids whose revocation was answered 200

test('SQLite, disk full: writes 503 JSON, reads 200, request-log drops counted; space back: writes resume, nothing lost', { skip: mountSkip }, async () => {
  server = await env.startServer();
  const portal = new Portal(env, server);
  const s = await portal.session(owner.email, owner.password);
  const spare = await portal.session(owner.email, owner.password);
  const target = (await s.createKey({ name: 'target' })).key.id;
  const expiring = (await s.createKey({ name: 'expiring' })).key.id;
  acked.push(target, expiring);
  // Counted before the reads: their entries may be written (a batch every
  // 200 ms) before a count taken after them.
  const written = await metric(server, 'dvs_request_log_written_total');
  await checkReads(server, s, 'before');
  await pollUntil(async () => (await metric(server, 'dvs_request_log_queue')) === 0 &&
    (await metric(server, 'dvs_request_log_written_total')) > written, { what: 'the request log is flushed' });

  // While the disk is full: a session last seen over a minute ago (so every
  // GET tries to refresh it) and a key past its expiry whose api_key.expired
  // event is not written yet (so every key list tries to claim it).
  await env.sql(`UPDATE sessions SET last_seen_at = last_seen_at - 120`);
  await env.sql(`UPDATE api_keys SET expires_at = CAST(strftime('%s','now') AS INTEGER) - 10 WHERE id = '${expiring}'`);
  const [cp] = await env.sql('PRAGMA wal_checkpoint(TRUNCATE)');
  assert.equal(cp.busy, 0, `checkpoint: ${JSON.stringify(cp)}`);
  const filler = fillFileSystem(env.dataDir);
  assert.equal(fs.statfsSync(env.dataDir).bavail, 0, 'the file system is full');

  await checkWritesRefused(server, portal, s, spare, target, 'disk full');
  const keys = await checkReads(server, s, 'disk full');
  assert.equal(keys.find((k) => k.id === expiring)?.status, 'expired', 'disk full: the expired key is listed as expired');
  assert.ok(!keys.some((k) => k.name === 'refused'), 'disk full: the refused key does not exist');
  await checkLogDrops(server, 'disk full');

  fs.rmSync(filler);
  const after = await checkWritesWork(portal, s, spare, target, 'space back');
  acked.push(after.created, after.rotatedTo);
  revokedAcked.push(target);
  await checkLogResumes(server, s, 'space back');
  // The expiry that could not be recorded while the disk was full is recorded now.
  await pollUntil(async () => {
    const a = await s.get('/api/audit-events?limit=100');
    return a.status === 200 && a.json.data.some((e) => e.type === 'api_key.expired' && e.key_id === expiring);
  }, { what: 'space back: api_key.expired for the expired key', tries: 20, intervalMs: 50 });
  await checkReads(server, s, 'space back');
  await checkIntegrity('space back');
  await checkAcknowledged(acked, revokedAcked, 'space back');
  assert.doesNotMatch(server.stderr(), /internal|exception|core dumped/i, 'no internal error in the log');
});

/**
 * The database goes read-only. `stopSignal` ends the server before the
 * remount (see the top of the file): SIGTERM (a clean stop: the -wal and
 * -shm files stay) or SIGKILL (a crash: the WAL holds acknowledged writes
 * that are not in the database file yet).
 */
async function readOnlyRound(stopSignal) {
  const what = `read-only after ${stopSignal}`;
  if (!server?.running) server = await env.startServer();
  let portal = new Portal(env, server);
  let s = await portal.session(owner.email, owner.password);
  let spare = await portal.session(owner.email, owner.password);
  const target = (await s.createKey({ name: `target ${stopSignal}` })).key.id;
  acked.push(target);

  const refused = tryRemountReadOnly();
  if (refused !== null) {
    // Expected on Linux: files open for writing keep the file system writable.
    const stopped = await server.stop(stopSignal);
    assert.deepEqual(stopped, stopSignal === 'SIGTERM' ? { code: 0, signal: null } : { code: null, signal: 'SIGKILL' },
      `${what}: the server stops`);
    for (const suffix of ['-wal', '-shm']) {
      assert.ok(fs.existsSync(env.dbPath + suffix), `${what}: devsphere.db${suffix} is kept (a WAL database cannot be read read-only without it)`);
    }
    remount('ro');
    server = await env.startServer();
    // Sessions live in the database: the cookies still work with the new process.
    portal = new Portal(env, server);
    s = new Session(portal, s.token, s.me);
    spare = new Session(portal, spare.token, spare.me);
  }
  assert.throws(() => fs.writeFileSync(path.join(env.dataDir, 'probe'), 'x'), /EROFS/, `${what}: the file system is read-only`);
  assert.equal(await metric(server, 'dvs_db_writes_failing'), 0, `${what}: nothing has failed yet`);

  await checkWritesRefused(server, portal, s, spare, target, what);
  const keys = await checkReads(server, s, what);
  assert.ok(keys.some((k) => k.id === target), `${what}: the key created before the stop is listed`);
  await checkLogDrops(server, what);

  remount('rw'); // under the running server
  const after = await checkWritesWork(portal, s, spare, target, `${what}, then writable`);
  acked.push(after.created, after.rotatedTo);
  revokedAcked.push(target);
  await checkLogResumes(server, s, `${what}, then writable`);
  await checkReads(server, s, `${what}, then writable`);
  await checkIntegrity(`${what}, then writable`);
  await checkAcknowledged(acked, revokedAcked, `${what}, then writable`);
}

test('SQLite, read-only file system (after a clean stop): writes 503, reads 200; remounted read-write: writes resume without a restart', { skip: mountSkip }, async () => {
  await readOnlyRound('SIGTERM');
});

test('SQLite, read-only file system after a crash (a WAL not yet checkpointed): the same', { skip: mountSkip }, async () => {
  await readOnlyRound('SIGKILL');
  const stopped = await server.stop('SIGTERM');
  assert.deepEqual(stopped, { code: 0, signal: null }, 'the server exits 0 on SIGTERM at the end');
  await checkIntegrity('at rest');
  const r = await env.cli(['keys', 'list', '--org', org, '--json']);
  assert.equal(r.code, 0, `devsphere keys list: ${r.stderr}`);
  const listed = new Set(JSON.parse(r.stdout).data.map((k) => k.id));
  for (const id of acked) assert.ok(listed.has(id), `devsphere keys list has ${id}`);
});

// ---------------------------------------------------------------------------
// PostgreSQL

test('PostgreSQL, read-only database (default_transaction_read_only): writes 503, reads 200; writable again: writes resume', { skip: pgSkip }, async () => {
  server = await env.startServer();
  const portal = new Portal(env, server);
  const s = await portal.session(owner.email, owner.password);
  const spare = await portal.session(owner.email, owner.password);
  const target = (await s.createKey({ name: 'target' })).key.id;
  acked.push(target);
  await checkReads(server, s, 'before');

  const name = new URL(env.dbUrl).pathname.slice(1);
  const admin = new URL(env.dbUrl);
  admin.pathname = '/postgres';
  const adminSql = (q) => psqlJson(admin.toString(), q);
  // New sessions of this database only; then end the server's, so the pool reconnects.
  const endSessions = () => adminSql(`SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE datname = '${name}' AND pid <> pg_backend_pid()`);
  await adminSql(`ALTER DATABASE ${name} SET default_transaction_read_only = on`);
  try {
    await endSessions();
    // The first request on each ended connection may meet it broken (503 too): poll.
    await pollUntil(async () => {
      const r = await s.post('/api/keys', { name: 'refused', scopes: ['leads:read'] });
      if (r.status === 503) return (await s.get('/api/keys')).status === 200;
      return assert.fail(`POST /api/keys on a read-only database: ${r.status} ${r.text}`);
    }, { what: 'read-only: writes 503 while reads 200', tries: 50, intervalMs: 100 });
    await checkWritesRefused(server, portal, s, spare, target, 'read-only');
    await checkReads(server, s, 'read-only');
    await checkLogDrops(server, 'read-only');
  } finally {
    await adminSql(`ALTER DATABASE ${name} RESET default_transaction_read_only`);
  }
  await endSessions();
  const after = await checkWritesWork(portal, s, spare, target, 'writable again');
  acked.push(after.created, after.rotatedTo);
  revokedAcked.push(target);
  await checkLogResumes(server, s, 'writable again');
  const rows = await env.sql(`SELECT id, name, revoked_at FROM api_keys WHERE org_id = '${org}'`);
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const id of acked) assert.ok(byId.has(id), `key ${id} was acknowledged but is gone`);
  assert.notEqual(byId.get(target).revoked_at, null, 'the revocation answered 200 holds');
  assert.ok(!rows.some((r) => r.name === 'refused'), 'the refused key does not exist');
  const stopped = await server.stop('SIGTERM');
  assert.deepEqual(stopped, { code: 0, signal: null }, 'the server exits 0 on SIGTERM');
});
