// The server's life: /healthz and /readyz, graceful SIGTERM (exit 0, in-flight
// requests answered, request log flushed), last_used_at, SIGINT, no secret
// in the data directory or the server's output, and clean failures on bad
// `serve` flags.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import {
  Env, BIN, assertInvalidKey, assertJsonContentType, assertRequestId, assertTimestamp,
  forgeValidKey, containsBytes,
} from './lib/harness.mjs';

const env = new Env('dvs-lifecycle');
const UA = 'dvs-itest/1.0 (lifecycle)';
let server;
let org;
const keys = {};
const expectedLog = []; // {requestId, keyId, method, path, status}
const received = []; // responses of the SIGTERM burst: {requestId, status}
let exit;

before(async () => {
  await env.migrate();
  org = await env.createOrg('Lifecycle Org');
  keys.main = await env.createKey(org, { name: 'main', scopes: ['leads:read'] });
  keys.tiny = await env.createKey(org, { name: 'tiny', rateLimit: 2 });
  keys.unused = await env.createKey(org, { name: 'unused' });
  keys.revoked = await env.createKey(org, { name: 'revoked' });
  keys.rotOld = await env.createKey(org, { name: 'rotating' });
  keys.burst = await env.createKey(org, { name: 'burst' });
  keys.pasted = await env.createKey(org, { name: 'pasted into URLs' });
  await env.importRows('leads', org, [{ name: 'Logged Lead' }]);
  server = await env.startServer();
});

after(async () => {
  await env.cleanup();
});

async function logged(keyName, method, p, wantStatus, extra = {}) {
  const k = keys[keyName];
  const r = await server.req(p, { key: k.secret, method, headers: { 'user-agent': UA, ...(extra.headers || {}) }, body: extra.body });
  assert.equal(r.status, wantStatus, `${method} ${p} with ${keyName}: ${r.status} ${r.text}`);
  expectedLog.push({ requestId: assertRequestId(r), keyId: k.id, method, path: extra.loggedPath ?? p, status: wantStatus });
  return r;
}

test('GET /healthz is 200 {"status":"ok"} and GET /readyz is 200 with the database reachable', async () => {
  const h = await server.req('/healthz');
  assert.equal(h.status, 200);
  assertJsonContentType(h);
  assertRequestId(h);
  assert.deepEqual(h.json, { status: 'ok' });
  const r = await server.req('/readyz');
  assert.equal(r.status, 200, r.text);
  assertJsonContentType(r);
  assertRequestId(r);
});

test('requests with a key of every outcome, then SIGTERM during a burst: exit 0', async () => {
  await logged('main', 'GET', '/v1/leads', 200);
  await logged('main', 'GET', '/v1/key', 200);
  await logged('main', 'GET', '/v1/invoices', 403);
  await logged('main', 'GET', '/v1/nope', 404);
  await logged('main', 'POST', '/v1/leads', 405, { body: '{}', headers: { 'content-type': 'application/json' } });
  await logged('main', 'GET', '/v1/leads?limit=0', 400);
  await logged('tiny', 'GET', '/v1/key', 200);
  await logged('tiny', 'GET', '/v1/key', 200);
  await logged('tiny', 'GET', '/v1/key', 429);
  await logged('revoked', 'GET', '/v1/key', 200);
  await env.revokeKey(keys.revoked.id);
  assertInvalidKey(await server.req('/v1/key', { key: keys.revoked.secret, headers: { 'user-agent': UA } }), keys.revoked.secret);
  await logged('rotOld', 'GET', '/v1/key', 200);
  keys.rotNew = await env.rotateKey(keys.rotOld.id);
  assertInvalidKey(await server.req('/v1/key', { key: keys.rotOld.secret }), keys.rotOld.secret);
  await logged('rotNew', 'GET', '/v1/leads', 200);
  // Failed authentications, with keys that look real: nothing of them may leak anywhere.
  assertInvalidKey(await server.req('/v1/key', { key: forgeValidKey() }));
  assertInvalidKey(await server.req('/v1/key', { auth: `Token ${keys.main.secret}` }), keys.main.secret);
  assertInvalidKey(await server.req('/v1/key', { key: keys.main.secret.slice(0, 46) + '!' }), keys.main.secret.slice(9, 46));

  // A secret pasted into a URL must not come back in a response, nor reach the log or the database.
  const pasted = keys.pasted.secret;
  const inPath = await logged('main', 'GET', `/v1/leads/${pasted}`, 404, { loggedPath: '(redacted)' });
  assert.ok(!inPath.text.includes(pasted.slice(9)), '404 body must not echo a secret from the path');
  const inQuery = await logged('main', 'GET', `/v1/leads?api_key=${pasted}`, 400, { loggedPath: '(redacted)' });
  assert.ok(!inQuery.text.includes(pasted.slice(9)), '400 body must not echo a secret from the query');
  const outside = await server.req(`/no-such-route/${pasted}`);
  assert.equal(outside.status, 404);
  assert.ok(!outside.text.includes(pasted.slice(9)), '404 body must not echo a secret from the path');

  // A burst of requests; SIGTERM as soon as the first answer arrives.
  let signalled = false;
  const burst = Array.from({ length: 40 }, () =>
    server.req('/v1/leads', { key: keys.burst.secret, headers: { 'user-agent': UA } }).then(
      (r) => {
        if (!signalled) {
          signalled = true;
          server.proc.kill('SIGTERM');
        }
        received.push({ requestId: r.headers.get('x-request-id'), status: r.status, text: r.text });
        return r;
      },
      (e) => e,
    ),
  );
  await Promise.all(burst);
  exit = await server.exited;
  assert.deepEqual(exit, { code: 0, signal: null }, `serve must exit 0 on SIGTERM; stderr: ${server.stderr()}`);
  assert.ok(received.length >= 1, 'at least one burst request was answered');
  for (const r of received) assert.equal(r.status, 200, `a request answered during shutdown: ${r.status} ${r.text}`);
});

test('after SIGTERM every /v1 request made with a key is in request_log', async () => {
  assert.ok(exit, 'the server has exited');
  const ids = [keys.main, keys.tiny, keys.revoked, keys.rotOld, keys.rotNew].map((k) => `'${k.id}'`).join(',');
  const rows = await env.sql(
    `SELECT key_id, org_id, request_id, method, path, status, latency_us, client_ip, user_agent, created_at
       FROM request_log WHERE key_id IN (${ids}) AND status <> 401`,
  );
  assert.equal(rows.length, expectedLog.length, `rows logged: ${JSON.stringify(rows.map((r) => [r.path, r.status]))}`);
  const byReq = Object.fromEntries(rows.map((r) => [r.request_id, r]));
  for (const e of expectedLog) {
    const row = byReq[e.requestId];
    assert.ok(row, `request ${e.method} ${e.path} (${e.requestId}) is logged`);
    assert.equal(row.key_id, e.keyId);
    assert.equal(row.org_id, org);
    assert.equal(row.method, e.method);
    if (e.path === '(redacted)') {
      assert.ok(row.path.startsWith('/v1/leads'), `logged path ${row.path}`);
    } else {
      assert.ok(row.path === e.path || row.path === e.path.split('?')[0], `logged path ${row.path} for ${e.path}`);
    }
    assert.equal(Number(row.status), e.status, `${e.method} ${e.path}: logged status`);
    assert.ok(Number.isInteger(row.latency_us) && row.latency_us >= 0, `latency_us is a non-negative integer: ${row.latency_us}`);
    assert.equal(row.client_ip, '127.0.0.1');
    assert.equal(row.user_agent, UA);
    assert.ok(row.created_at !== null, 'created_at is set');
  }
  const statuses = rows.map((r) => Number(r.status)).sort();
  assert.ok(statuses.includes(429) && statuses.includes(404) && statuses.includes(403) && statuses.includes(405));

  // Every burst response the client received was logged before exit.
  const burstRows = await env.sql(`SELECT request_id, status FROM request_log WHERE key_id = '${keys.burst.id}'`);
  const burstById = Object.fromEntries(burstRows.map((r) => [r.request_id, Number(r.status)]));
  for (const r of received) assert.equal(burstById[r.requestId], r.status, `burst request ${r.requestId} is logged`);
  assert.ok(burstRows.length >= received.length);
});

test('last_used_at is set for used keys and null for unused ones', async () => {
  const list = (await env.listKeys(org)).data;
  const get = (k) => list.find((x) => x.id === k.id);
  assertTimestamp(get(keys.main).last_used_at, 'main.last_used_at');
  assertTimestamp(get(keys.tiny).last_used_at, 'tiny.last_used_at');
  assertTimestamp(get(keys.rotNew).last_used_at, 'rotNew.last_used_at');
  assert.equal(get(keys.unused).last_used_at, null, 'an unused key has last_used_at null');
  assert.ok(Math.abs(Date.parse(get(keys.main).last_used_at) - Date.now()) < 86400e3, 'last_used_at is about now');
});

test('no issued secret appears in the data directory or the server output', async () => {
  const secrets = [...env.secrets];
  assert.ok(secrets.length >= 8, 'the test collected every secret it issued');
  // SQLite: the data dir's files; PostgreSQL: a data-only dump of the database (bytea as hex: searched too).
  const data = await env.dataSnapshot();
  if (env.dbKind === 'sqlite') {
    assert.ok(data.some((d) => path.basename(d.name) === 'devsphere.db'), 'the database file is among the scanned files');
  }
  assert.ok(data.some((d) => d.database && d.content.includes(keys.main.id)), 'the scanned database holds the keys (a key id is found)');
  const files = [
    ...data,
    ...[server.stdoutPath, server.stderrPath].map((f) => ({ name: f, content: fs.readFileSync(f) })),
  ];
  for (const { name, content } of files) {
    for (const s of secrets) {
      assert.ok(!containsBytes(content, s), `${path.basename(name)} contains a full secret (${s.slice(0, 13)}...)`);
      assert.ok(!containsBytes(content, s.slice(9, 41)), `${path.basename(name)} contains the random part of ${s.slice(0, 13)}...`);
    }
  }
});

test('SIGINT also stops the server with exit 0', async () => {
  const s = await env.startServer();
  const r = await s.req('/v1/key', { key: keys.main.secret });
  assert.equal(r.status, 200, r.text);
  s.proc.kill('SIGINT');
  assert.deepEqual(await s.exited, { code: 0, signal: null });
});

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Runs `serve` expecting it to fail. If `port` is given and the server answers
 * /healthz there, it is stopped and reported as having started.
 */
function serveExpectingFailure(args, port) {
  return new Promise((resolve, reject) => {
    const proc = spawn(BIN, ['serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let started = false;
    let done = false;
    proc.stdout.resume();
    proc.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    proc.on('error', reject);
    proc.on('close', (code, signal) => {
      done = true;
      resolve({ code, signal, stderr, started });
    });
    if (port !== undefined) {
      (async () => {
        while (!done) {
          try {
            const r = await fetch(`http://127.0.0.1:${port}/healthz`);
            await r.arrayBuffer();
            started = true;
            proc.kill('SIGKILL');
            return;
          } catch {
            await new Promise((res) => setTimeout(res, 50));
          }
        }
      })();
    }
  });
}

test('serve with bad flags or an unusable database fails with one line on stderr', async () => {
  const blocker = env.writeFile('not-a-dir', 'x');
  const cases = [
    [['--listen', 'nonsense', '--db', env.dbUrl], 'listen without a port', false],
    [['--listen', '127.0.0.1:99999', '--db', env.dbUrl], 'port out of range', false],
    [['--listen', '127.0.0.1:abc', '--db', env.dbUrl], 'port not a number', false],
    [['--bogus-flag', '--db', env.dbUrl], 'unknown flag', true],
    [['--db', 'mysql://root@localhost/x'], 'unsupported db scheme', true],
    [['--db', `sqlite:${blocker}/sub/devsphere.db`], 'sqlite path under a file', true],
    [['--db', env.dbUrl, '--threads', 'many'], 'threads not a number', true],
    [['--db', env.dbUrl, '--redis', 'not a url'], 'malformed redis url', true],
  ];
  for (const [args, what, withPort] of cases) {
    let port;
    let full = args;
    if (withPort) {
      port = await freePort();
      full = ['--listen', `127.0.0.1:${port}`, ...args];
    }
    const r = await serveExpectingFailure(full, port);
    const ctx = `${what}: code=${r.code} signal=${r.signal} stderr=${JSON.stringify(r.stderr)}`;
    assert.equal(r.started, false, `${ctx}: the server started instead of failing`);
    assert.equal(r.signal, null, `${ctx}: killed by a signal`);
    assert.ok(r.code > 0 && r.code < 128, `${ctx}: exit code must be 1..127`);
    assert.equal(r.stderr.split('\n').filter((l) => l.trim()).length, 1, `${ctx}: exactly one line on stderr`);
  }
});
