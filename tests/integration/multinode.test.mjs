// Several `serve` processes on one database and one Redis (issue: the Redis
// rate limiter, revocation across nodes, the request log with several
// writers). Two nodes, A and B, on different ports:
//   - a key created through A (or by the CLI) works on B at once;
//   - the per-key limit holds across A and B together (alternating and
//     concurrent requests: exactly the limit succeed);
//   - a revoke or rotate answered by A is honoured by B on the very next
//     request (1000 trials, 0 stale acceptances);
//   - the request log and last_used_at stay exact with both nodes writing;
//   - SIGKILL of A under load loses no acknowledged write, B keeps serving;
//   - a Redis outage fails open at ceil(limit / nodes) per node, /readyz says
//     degraded, and the shared window comes back when Redis does.
//
// Database: as every file, the backend of DVS_TEST_BACKEND: with postgres a
// fresh PostgreSQL database of this file's own on DVS_TEST_PG_URL's server
// (made and dropped by the Env), with sqlite (the default) one SQLite file
// shared by both nodes (still two processes writing one database), whether or
// not DVS_TEST_PG_URL is set. Redis: DVS_TEST_REDIS_URL when set, else a
// throw-away one; the outage test always stops a Redis of its own.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  Env, Portal, Session, assertApiKeyShape, assertError, assertInvalidKey, assertListShape, assertNewestFirst,
  assertRequestId, assertTimestamp, closeHttpAgents, httpRequest, rateLimitHeaders, readyz,
  startRedis, startRedisOnPort, stopRedis, pollUntil,
} from './lib/harness.mjs';

const env = new Env('dvs-multinode');
let backend; // a description for the diagnostics
let redis = null; // the Redis this file started, if any
let redisUrl;
let owner; // {org, email, password}: the CEO of the organization under test
let me; // body of the sign-in response
let token; // that CEO's session cookie (sessions live in the database: valid on every node)
let A;
let B;
let ceoA; // Session on A
let ceoB; // the same session, through B

/** Starts one node on the shared database and Redis (two threads, so per-thread state is exercised). */
function startNode(redisArg = redisUrl) {
  return env.startServer({ extraArgs: ['--redis', redisArg, '--nodes', '2', '--threads', '2'] });
}

function sessionOn(server) {
  return new Session(new Portal(env, server), token, me);
}

function bind() {
  ceoA = sessionOn(A);
  ceoB = sessionOn(B);
}

/** Runs fn(0..n-1) with at most `inFlight` calls running at once. */
async function pool(n, inFlight, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, inFlight) }, async () => {
    while (next < n) {
      const i = next++;
      await fn(i);
    }
  }));
}

async function listKeys(s) {
  const r = await s.get('/api/keys');
  assert.equal(r.status, 200, `GET /api/keys: ${r.status} ${r.text}`);
  return r.json.data;
}

async function revokeOn(s, id) {
  const r = await s.post(`/api/keys/${id}/revoke`, {});
  assert.equal(r.status, 200, `POST /api/keys/${id}/revoke: ${r.status} ${r.text}`);
  return r.json.key;
}

function assertReady(body, limiter, what) {
  assert.deepEqual(body, { status: limiter === 'degraded' ? 'degraded' : 'ready', checks: { database: 'ok', rate_limiter: limiter } },
    `${what}: /readyz body`);
}

function assertRateLimited(r, limit, what) {
  assertError(r, 429, 'rate_limited');
  const h = rateLimitHeaders(r);
  assert.equal(h.limit, limit, `${what}: X-RateLimit-Limit on a 429`);
  assert.equal(h.remaining, 0, `${what}: X-RateLimit-Remaining on a 429`);
  const ra = r.headers.get('retry-after');
  assert.match(ra ?? '', /^\d+$/, `${what}: Retry-After must be an integer, got ${ra}`);
  assert.ok(Number(ra) >= 1 && Number(ra) <= 60, `${what}: Retry-After within the window, got ${ra}`);
}

before(async () => {
  await env.prepare();
  backend = env.pgDb
    ? `PostgreSQL (database ${env.pgDb.name} of DVS_TEST_PG_URL's server)`
    : 'SQLite (one file shared by both nodes; DVS_TEST_BACKEND is not postgres)';
  if (process.env.DVS_TEST_REDIS_URL) {
    redisUrl = process.env.DVS_TEST_REDIS_URL;
  } else {
    redis = await startRedis(path.join(env.dir, 'redis'));
    redisUrl = redis.url;
  }
  await env.migrate();
  owner = await env.createOrgWithOwner({ name: 'Multi Node Org' });
  [A, B] = await Promise.all([startNode(), startNode()]);
  const signIn = await new Portal(env, A).session(owner.email, owner.password);
  token = signIn.token;
  me = signIn.me;
  bind();
});

after(async () => {
  closeHttpAgents();
  for (const s of env.servers) if (s.running) await s.stop('SIGKILL');
  if (redis) await stopRedis(redis.dir);
  await env.cleanup();
});

// 1. Keys and sessions are shared

test('a key created through A works on B at once, a CLI key on both, and revocations by B or the CLI stop both', async (t) => {
  t.diagnostic(`database: ${backend}; redis: ${redis ? `started here (${redisUrl})` : 'DVS_TEST_REDIS_URL'}`);
  assertReady(await readyz(A), 'shared', 'node A');
  assertReady(await readyz(B), 'shared', 'node B');

  const s = await ceoB.get('/api/session');
  assert.equal(s.status, 200, `a session signed in on A must be valid on B: ${s.status} ${s.text}`);
  assert.equal(s.json.user.email, owner.email);

  const made = [];
  for (let i = 0; i < 20; i++) {
    const k = await ceoA.createKey({ name: `made on A ${i}`, scopes: ['leads:read'] });
    const r = await B.req('/v1/key', { key: k.secret });
    assert.equal(r.status, 200, `key ${i} created on A, first request on B: ${r.status} ${r.text}`);
    assert.equal(r.json.id, k.key.id, 'B authenticates it as the key A created');
    assert.equal(rateLimitHeaders(r).limit, 120);
    made.push(k);
  }
  const onB = new Map((await listKeys(ceoB)).map((k) => [k.id, k]));
  for (const k of made) {
    assert.ok(onB.has(k.key.id), `GET /api/keys on B lists ${k.key.id} created on A`);
    assertApiKeyShape(onB.get(k.key.id));
  }

  // Revoked through B: A refuses the key on its next request.
  for (const k of made) {
    const before = await A.req('/v1/key', { key: k.secret });
    assert.equal(before.status, 200, `before revocation on B, A accepts ${k.key.id}`);
    const rk = await revokeOn(ceoB, k.key.id);
    assert.equal(rk.status, 'revoked');
    assertInvalidKey(await A.req('/v1/key', { key: k.secret }), k.secret);
  }

  // A third writer: the CLI.
  const cli = await env.createKey(owner.org, { name: 'made by the CLI', rateLimit: 50 });
  for (const [name, node] of [['A', A], ['B', B]]) {
    const r = await node.req('/v1/key', { key: cli.secret });
    assert.equal(r.status, 200, `CLI key on ${name}: ${r.status} ${r.text}`);
    assert.equal(r.json.id, cli.id);
    assert.equal(rateLimitHeaders(r).limit, 50, `CLI key's --rate-limit on ${name}`);
  }
  await env.revokeKey(cli.id);
  assertInvalidKey(await A.req('/v1/key', { key: cli.secret }), cli.secret);
  assertInvalidKey(await B.req('/v1/key', { key: cli.secret }), cli.secret);
});

// 2. One limit across the nodes

test('alternating A, B, A, B… 14 times on a key limited to 10: exactly the first 10 succeed, Remaining counts down across nodes', async () => {
  const k = await ceoA.createKey({ name: 'shared 10', scopes: ['leads:read'], rate_limit_per_minute: 10 });
  const seen = [];
  for (let i = 0; i < 14; i++) {
    const node = i % 2 === 0 ? A : B;
    const r = await node.req('/v1/leads', { key: k.secret });
    seen.push({ i, node: i % 2 === 0 ? 'A' : 'B', r });
  }
  const summary = seen.map(({ node, r }) => `${node}:${r.status}/${r.headers.get('x-ratelimit-remaining')}`).join(' ');
  assert.deepEqual(seen.map(({ r }) => r.status), [...Array(10).fill(200), ...Array(4).fill(429)],
    `statuses in order (node:status/remaining): ${summary}`);
  for (const { i, node, r } of seen) {
    if (i < 10) {
      const h = rateLimitHeaders(r);
      assert.equal(h.limit, 10, `request ${i + 1} on ${node}: X-RateLimit-Limit`);
      assert.equal(h.remaining, 9 - i, `request ${i + 1} on ${node}: X-RateLimit-Remaining (${summary})`);
      assert.ok(h.reset >= 1 && h.reset <= 60, `request ${i + 1}: X-RateLimit-Reset in 1..60, got ${h.reset}`);
    } else {
      assertRateLimited(r, 10, `request ${i + 1} on ${node}`);
    }
  }
});

test('30 concurrent requests split over A and B on a CLI key with --rate-limit 20: exactly 20 succeed, each a distinct Remaining', async (t) => {
  const k = await env.createKey(owner.org, { name: 'concurrent 20', rateLimit: 20 });
  const results = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? A : B)
    .req('/v1/key', { key: k.secret }).then((r) => ({ node: i % 2 === 0 ? 'A' : 'B', r }))));
  const ok = results.filter(({ r }) => r.status === 200);
  const limited = results.filter(({ r }) => r.status === 429);
  t.diagnostic(`successes: ${ok.filter((x) => x.node === 'A').length} on A, ${ok.filter((x) => x.node === 'B').length} on B`);
  assert.equal(ok.length, 20, `successes across A and B: ${ok.length}; statuses: ${results.map(({ r }) => r.status)}`);
  assert.equal(limited.length, 10, '429s');
  for (const { node, r } of limited) assertRateLimited(r, 20, `a 429 from ${node}`);
  const remaining = ok.map(({ r }) => rateLimitHeaders(r).remaining).sort((a, b) => a - b);
  assert.deepEqual(remaining, Array.from({ length: 20 }, (_, i) => i), 'every success across both nodes saw its own Remaining 19..0');
  assertRateLimited(await A.req('/v1/key', { key: k.secret }), 20, 'one more on A');
  assertRateLimited(await B.req('/v1/key', { key: k.secret }), 20, 'one more on B');
});

// The per-address budgets (bad keys: 1,200 a minute; /v1/openapi.json: 600)
// are decided by Redis too, after the node has answered the request itself:
// one address alternating between the nodes counts down one shared budget.
test('the per-address budgets for bad keys and for the OpenAPI document are shared by A and B', async () => {
  const alternate = async (p, key, localAddress) => {
    const out = [];
    for (let i = 0; i < 4; i++) {
      const node = i % 2 === 0 ? A : B;
      out.push(await httpRequest(node, p, { key, localAddress }));
    }
    return out;
  };
  const bad = await alternate('/v1/leads', 'dvs_live_not-a-key', '127.0.0.201');
  for (const r of bad) assertInvalidKey(r, 'dvs_live_not-a-key');
  const badLeft = bad.map((r) => rateLimitHeaders(r));
  assert.deepEqual(badLeft.map((h) => h.limit), [1200, 1200, 1200, 1200]);
  // Relative to the first: another run on the same Redis within the minute
  // (the other backend's) may have spent some of this address's budget.
  const countsDown = (left, limit, what) => {
    assert.ok(left[0] < limit, `${what}: the first request counted`);
    assert.deepEqual(left, [0, 1, 2, 3].map((i) => left[0] - i), `${what}: one budget across both nodes`);
  };
  countsDown(badLeft.map((h) => h.remaining), 1200, 'bad keys');
  const docs = await alternate('/v1/openapi.json', undefined, '127.0.0.202');
  for (const r of docs) assert.equal(r.status, 200, `GET /v1/openapi.json: ${r.status}`);
  const docsLeft = docs.map((r) => rateLimitHeaders(r));
  assert.deepEqual(docsLeft.map((h) => h.limit), [600, 600, 600, 600]);
  countsDown(docsLeft.map((h) => h.remaining), 600, 'the OpenAPI document');
});

// 3. Revocation and rotation across nodes

test('revoke on A, then at once a request on B: 401 in each of 1000 trials (0 stale acceptances)', async (t) => {
  const TRIALS = 1000;
  const IN_FLIGHT = 8;
  const stale = [];
  const problems = [];
  await pool(TRIALS, IN_FLIGHT, async (i) => {
    const c = await ceoA.post('/api/keys', { name: `revocation trial ${i}`, scopes: ['leads:read'] });
    if (c.status !== 201) return problems.push(`trial ${i}: POST /api/keys on A: ${c.status} ${c.text}`);
    const { key, secret } = c.json;
    const use = await B.req('/v1/key', { key: secret });
    if (use.status !== 200) problems.push(`trial ${i}: first use on B: ${use.status} ${use.text}`);
    const rv = await ceoA.post(`/api/keys/${key.id}/revoke`, {});
    if (rv.status !== 200) return problems.push(`trial ${i}: revoke on A: ${rv.status} ${rv.text}`);
    // From a source address of its own (127.0.0.10-109), so 1000 refusals do
    // not exhaust the per-IP budget for bad keys that the nodes share.
    const r = await httpRequest(B, '/v1/key', { key: secret, localAddress: `127.0.0.${10 + (i % 100)}` });
    if (r.status === 200) return stale.push(`trial ${i}: ${key.id} accepted by B after A answered its revocation`);
    try {
      assertInvalidKey(r, secret);
    } catch (e) {
      problems.push(`trial ${i}: revoked key on B: ${e.message.split('\n')[0]}`);
    }
  });
  t.diagnostic(`${TRIALS} trials, ${stale.length} stale acceptances, ${problems.length} other problems`);
  assert.deepEqual(stale, [], `${stale.length} stale acceptances in ${TRIALS} trials`);
  assert.deepEqual(problems, [], problems.slice(0, 20).join('\n'));
  const active = (await listKeys(ceoB)).filter((k) => k.name.startsWith('revocation trial') && k.status !== 'revoked');
  assert.deepEqual(active.map((k) => k.id), [], 'every trial key is revoked, as B lists them');
});

test('rotate on A with expire_old_in_seconds 0: the old key is refused by B at once, the new one accepted (100 rotations)', async () => {
  const first = await ceoA.createKey({ name: 'rotating across nodes', scopes: ['leads:read'], rate_limit_per_minute: 500 });
  let cur = { id: first.key.id, secret: first.secret };
  const problems = [];
  assert.equal((await B.req('/v1/key', { key: cur.secret })).status, 200, 'the first key works on B');
  for (let i = 0; i < 100; i++) {
    const r = await ceoA.post(`/api/keys/${cur.id}/rotate`, { expire_old_in_seconds: 0 });
    assert.equal(r.status, 201, `rotation ${i} on A: ${r.status} ${r.text}`);
    assert.equal(r.json.replaced.id, cur.id);
    assert.equal(r.json.replaced.status, 'revoked', `rotation ${i}: the replaced key is revoked at once`);
    const old = await B.req('/v1/key', { key: cur.secret });
    if (old.status !== 401) problems.push(`rotation ${i}: old key ${cur.id} on B: ${old.status}`);
    else assertInvalidKey(old, cur.secret);
    const neu = await B.req('/v1/key', { key: r.json.secret });
    if (neu.status !== 200 || neu.json.id !== r.json.key.id) problems.push(`rotation ${i}: new key ${r.json.key.id} on B: ${neu.status} ${neu.text}`);
    else assert.equal(rateLimitHeaders(neu).limit, 500, 'the new key keeps the limit');
    cur = { id: r.json.key.id, secret: r.json.secret };
  }
  assert.deepEqual(problems, [], problems.join('\n'));
  const onA = await A.req('/v1/key', { key: cur.secret });
  assert.equal(onA.status, 200, 'the last new key works on A too');
  assert.equal(onA.json.id, cur.id);
});

// 4. Request log and last_used_at with two writers

test('the request log has exactly one row per request after both nodes wrote it, and last_used_at is set', async (t) => {
  const k = await ceoA.createKey({ name: 'two writers', scopes: ['leads:read'], rate_limit_per_minute: 1000 });
  const idle = await ceoB.createKey({ name: 'never used', scopes: ['leads:read'] });
  const N = 300;
  const sent = new Map(); // X-Request-Id -> {node, path}
  const problems = [];
  await pool(N, 8, async (i) => {
    const [node, name, p] = i % 2 === 0 ? [A, 'A', '/v1/leads'] : [B, 'B', '/v1/key'];
    const r = await node.req(p, { key: k.secret, headers: { 'user-agent': `multinode-${name}` } });
    if (r.status !== 200) return problems.push(`request ${i} on ${name}: ${r.status} ${r.text}`);
    const id = assertRequestId(r);
    if (sent.has(id)) problems.push(`request ${i} on ${name}: X-Request-Id ${id} already answered by ${sent.get(id).node}`);
    sent.set(id, { node: name, path: p });
  });
  assert.deepEqual(problems, [], problems.slice(0, 20).join('\n'));
  assert.equal(sent.size, N, 'every response has its own X-Request-Id across both nodes');

  // Both nodes stop gracefully (flushing their logs), one comes back to read.
  const [ea, eb] = await Promise.all([A.stop('SIGTERM'), B.stop('SIGTERM')]);
  assert.deepEqual(ea, { code: 0, signal: null }, 'node A exits 0 on SIGTERM');
  assert.deepEqual(eb, { code: 0, signal: null }, 'node B exits 0 on SIGTERM');
  A = await startNode();
  B = await startNode();
  bind();

  const items = [];
  let cursor = null;
  for (let page = 0; page < 20; page++) {
    const q = cursor === null ? '?limit=100' : `?limit=100&cursor=${encodeURIComponent(cursor)}`;
    const r = await ceoA.get(`/api/keys/${k.key.id}/requests${q}`);
    assert.equal(r.status, 200, `GET requests${q}: ${r.status} ${r.text}`);
    assertListShape(r.json);
    items.push(...r.json.data);
    if (!r.json.has_more) break;
    cursor = r.json.next_cursor;
  }
  const counts = new Map();
  for (const e of items) counts.set(e.id, (counts.get(e.id) ?? 0) + 1);
  const dup = [...counts].filter(([, n]) => n > 1).map(([id, n]) => `${id}×${n}`);
  const missing = [...sent.keys()].filter((id) => !counts.has(id));
  const foreign = items.filter((e) => !sent.has(e.id)).map((e) => e.id);
  t.diagnostic(`${items.length} log rows for ${N} requests (${missing.length} missing, ${dup.length} repeated)`);
  assert.deepEqual({ missing: missing.length, repeated: dup, foreign },
    { missing: 0, repeated: [], foreign: [] }, `request log vs. responses: missing e.g. ${missing.slice(0, 5)}`);
  assert.equal(items.length, N, 'exactly one row per request');
  assertNewestFirst(items, 'request log');
  for (const e of items) {
    const s = sent.get(e.id);
    assert.equal(e.path, s.path, `${e.id} (answered by ${s.node}): path`);
    assert.equal(e.status, 200, `${e.id}: status`);
    assert.equal(e.user_agent, `multinode-${s.node}`, `${e.id}: the row of the node that answered it`);
  }

  const keys = new Map((await listKeys(ceoB)).map((x) => [x.id, x]));
  const used = keys.get(k.key.id);
  assertTimestamp(used.last_used_at, 'last_used_at of the key both nodes served');
  const minuteOfCreation = Math.floor(Date.parse(used.created_at) / 60000) * 60000;
  assert.ok(Date.parse(used.last_used_at) >= minuteOfCreation,
    `last_used_at ${used.last_used_at} is not before the key's creation ${used.created_at}`);
  assert.ok(Date.parse(used.last_used_at) <= Date.now() + 1000, `last_used_at ${used.last_used_at} is not in the future`);
  assert.equal(keys.get(idle.key.id).last_used_at, null, 'a key never used has last_used_at null');
});

// 5. A node dies

test('SIGKILL of A under load: every key A acknowledged exists and behaves on B; B answers 200 throughout', async (t) => {
  const load = await ceoA.createKey({ name: 'load', scopes: ['leads:read'], rate_limit_per_minute: 100000 });
  const KILL_AFTER = 40; // acknowledged creations before the kill
  const B_AFTER_KILL = 200; // requests B must answer after the kill
  const victim = A;
  const onVictim = ceoA;
  let killed = false;
  let fireTrigger;
  const trigger = new Promise((resolve) => { fireTrigger = resolve; });
  const created = []; // {id, secret}: 201 from A
  const revoked = new Set(); // ids whose revocation A answered 200
  const revokeUnknown = new Set(); // revocation sent, no answer
  const problems = [];
  const bCount = { before: 0, after: 0 };
  let aOk = 0;
  let aErrors = 0;

  const loopB = async () => {
    for (let i = 0; i < 20000; i++) {
      if (killed && bCount.after >= B_AFTER_KILL) return;
      const phase = killed ? 'after' : 'before';
      try {
        const r = await B.req('/v1/key', { key: load.secret });
        if (r.status !== 200) problems.push(`B answered ${r.status} (sent ${phase} the kill): ${r.text}`);
      } catch (e) {
        problems.push(`B connection error (sent ${phase} the kill): ${e.cause?.code ?? e.message}`);
      }
      bCount[phase]++;
    }
    problems.push('the B loop hit its bound');
  };
  const loopA = async () => {
    while (!killed) {
      try {
        const r = await victim.req('/v1/key', { key: load.secret });
        if (r.status !== 200) problems.push(`A answered ${r.status}: ${r.text}`);
        else aOk++;
      } catch (e) {
        if (!killed) problems.push(`A connection error before the kill: ${e.cause?.code ?? e.message}`);
        aErrors++;
      }
    }
  };
  const creator = async (w) => {
    for (let i = 0; i < 300 && !killed; i++) {
      let id;
      try {
        const c = await onVictim.post('/api/keys', { name: `crash ${w}.${i}`, scopes: ['leads:read'] });
        if (c.status !== 201) {
          problems.push(`POST /api/keys on A: ${c.status} ${c.text}`);
          continue;
        }
        id = c.json.key.id;
        created.push({ id, secret: c.json.secret });
        if (created.length >= KILL_AFTER) fireTrigger();
      } catch (e) {
        if (!killed) problems.push(`POST /api/keys on A: connection error before the kill: ${e.cause?.code ?? e.message}`);
        break;
      }
      if (created.length % 3 !== 0) continue;
      revokeUnknown.add(id);
      try {
        const rv = await onVictim.post(`/api/keys/${id}/revoke`, {});
        if (rv.status === 200) {
          revoked.add(id);
          revokeUnknown.delete(id);
        } else {
          problems.push(`revoke on A: ${rv.status} ${rv.text}`);
        }
      } catch (e) {
        if (!killed) problems.push(`revoke on A: connection error before the kill: ${e.cause?.code ?? e.message}`);
        break;
      }
    }
    fireTrigger(); // gave up or was stopped: never leave the controller waiting
  };

  const loops = [loopB(), loopB(), loopA(), loopA(), loopA(), loopA(), creator(0), creator(1), creator(2)];
  await trigger;
  const ackedAtKill = created.length;
  victim.proc.kill('SIGKILL');
  killed = true;
  const exit = await victim.exited;
  await Promise.all(loops);
  t.diagnostic(`A answered ${aOk} /v1 requests and ${created.length} creations (${ackedAtKill} before the kill was sent, `
    + `${revoked.size} revocations) then died; ${aErrors} requests to A failed to connect; `
    + `B answered ${bCount.before} before and ${bCount.after} after the kill`);

  assert.equal(exit.signal, 'SIGKILL', 'node A was killed');
  assert.deepEqual(problems, [], problems.slice(0, 20).join('\n'));
  assert.ok(created.length >= KILL_AFTER, `A acknowledged ${created.length} creations`);
  assert.ok(bCount.after >= B_AFTER_KILL, 'B kept answering after the kill');

  const listed = new Map((await listKeys(ceoB)).map((k) => [k.id, k]));
  const lost = [];
  for (const k of created) {
    const r = await B.req('/v1/key', { key: k.secret });
    if (!listed.has(k.id)) lost.push(`${k.id}: not in GET /api/keys on B`);
    if (revoked.has(k.id)) {
      if (r.status !== 401) lost.push(`${k.id}: revocation acknowledged by A, B answers ${r.status}`);
      if (listed.get(k.id)?.status !== 'revoked') lost.push(`${k.id}: revocation acknowledged by A, B lists ${listed.get(k.id)?.status}`);
    } else if (!revokeUnknown.has(k.id)) {
      if (r.status !== 200 || r.json.id !== k.id) lost.push(`${k.id}: creation acknowledged by A, B answers ${r.status} ${r.text}`);
      if (listed.get(k.id)?.status !== 'active') lost.push(`${k.id}: B lists it as ${listed.get(k.id)?.status}`);
    }
  }
  assert.deepEqual(lost, [], `acknowledged writes lost with node A:\n${lost.join('\n')}`);

  // A restarted on the same database serves them too.
  A = await startNode();
  bind();
  assertReady(await readyz(A), 'shared', 'restarted node A');
  const survivor = created.find((k) => !revoked.has(k.id) && !revokeUnknown.has(k.id));
  const r = await A.req('/v1/key', { key: survivor.secret });
  assert.equal(r.status, 200, `restarted A and a key the dead A created: ${r.status} ${r.text}`);
  // Tidy: the organization has a cap of 100 active keys.
  for (const k of created) if (!revoked.has(k.id)) await ceoA.post(`/api/keys/${k.id}/revoke`, {});
});

// 6. Redis goes away and comes back

test('Redis outage: fail open at ceil(10/2) = 5 per node, /readyz degraded; Redis back on its port: shared again', async (t) => {
  // A Redis and two nodes of this test's own, so stopping Redis touches nothing else.
  const own = await startRedis(path.join(env.dir, 'redis-outage'));
  t.after(() => stopRedis(own.dir));
  const [C, D] = await Promise.all([startNode(own.url), startNode(own.url)]);
  t.after(async () => {
    await C.stop('SIGKILL');
    await D.stop('SIGKILL');
  });
  const nodes = [['C', C], ['D', D]];
  const ceoC = sessionOn(C);
  for (const [n, s] of nodes) assertReady(await readyz(s), 'shared', `node ${n} before the outage`);
  const ten = await ceoC.createKey({ name: 'ten during the outage', scopes: ['leads:read'], rate_limit_per_minute: 10 });
  const probe = await ceoC.createKey({ name: 'probe', scopes: ['leads:read'], rate_limit_per_minute: 100000 });
  const three = await ceoC.createKey({ name: 'three after the outage', scopes: ['leads:read'], rate_limit_per_minute: 3 });

  await stopRedis(own.dir);

  // Each request on a connection of its own, so both threads of each node meet the outage.
  const perNode = { C: [], D: [] };
  for (let i = 0; i < 16; i++) {
    const [n, s] = nodes[i % 2];
    const r = await httpRequest(s, '/v1/key', { key: ten.secret, newConnection: true });
    perNode[n].push(r);
  }
  for (const [n] of nodes) {
    const statuses = perNode[n].map((r) => r.status);
    t.diagnostic(`outage, node ${n}: ${statuses.join(' ')}; X-RateLimit-Limit ${perNode[n][0].headers.get('x-ratelimit-limit')}`);
    assert.deepEqual(statuses, [...Array(5).fill(200), ...Array(3).fill(429)],
      `node ${n} while Redis is down: fail open, at most ceil(10/2) = 5 for the key`);
    for (const r of perNode[n].slice(5)) {
      assertError(r, 429, 'rate_limited');
      assert.match(r.headers.get('retry-after') ?? '', /^\d+$/, 'Retry-After on a 429 during the outage');
    }
  }
  for (const [n, s] of nodes) {
    assertReady(await readyz(s), 'degraded', `node ${n} during the outage`);
    const h = await s.req('/healthz');
    assert.equal(h.status, 200, `node ${n}: /healthz during the outage`);
  }

  await startRedisOnPort(own.dir);

  // Back to shared: every decision of a round (fresh connections, so both
  // threads of each node) comes from Redis (limit 100000, not the fallback's
  // 50000), and both nodes report it.
  let rounds = 0;
  await pollUntil(async () => {
    rounds++;
    let shared = true;
    for (const [n, s] of nodes) {
      for (let j = 0; j < 4; j++) {
        const r = await httpRequest(s, '/v1/key', { key: probe.secret, newConnection: true });
        assert.equal(r.status, 200, `node ${n}, probe while Redis comes back: ${r.status} ${r.text}`);
        if (r.headers.get('x-ratelimit-limit') !== '100000') shared = false;
      }
    }
    const bodies = [await readyz(C), await readyz(D)];
    return shared && bodies.every((b) => b.checks.rate_limiter === 'shared') ? bodies : undefined;
  }, { what: 'both nodes back on the shared Redis limiter', tries: 150, intervalMs: 100 });
  t.diagnostic(`shared again after ${rounds} polling rounds`);
  for (const [n, s] of nodes) assertReady(await readyz(s), 'shared', `node ${n} after Redis returned`);

  const after = [];
  for (let i = 0; i < 8; i++) {
    const [n, s] = nodes[i % 2];
    after.push({ n, r: await httpRequest(s, '/v1/key', { key: three.secret, newConnection: true }) });
  }
  const summary = after.map(({ n, r }) => `${n}:${r.status}/${r.headers.get('x-ratelimit-limit')}/${r.headers.get('x-ratelimit-remaining')}`).join(' ');
  assert.deepEqual(after.map(({ r }) => r.status), [200, 200, 200, 429, 429, 429, 429, 429],
    `a fresh key limited to 3, alternating C and D after Redis returned (node:status/limit/remaining): ${summary}`);
  after.slice(0, 3).forEach(({ r }, i) => {
    const h = rateLimitHeaders(r);
    assert.equal(h.limit, 3, `request ${i + 1}: X-RateLimit-Limit (${summary})`);
    assert.equal(h.remaining, 2 - i, `request ${i + 1}: X-RateLimit-Remaining (${summary})`);
  });
  for (const { n, r } of after.slice(3)) assertRateLimited(r, 3, `node ${n} after Redis returned`);
});

test('after a Redis outage, a thread that was idle during it decides from Redis again: exactly the limit across the nodes, /readyz stays shared', async (t) => {
  // Every I/O thread of both nodes has its own Redis connection before the
  // outage; during it only one keep-alive connection per node sends requests,
  // so the other thread's connection breaks unnoticed. Once Redis is back and
  // /readyz says shared, requests on new connections reach that thread too.
  const own = await startRedis(path.join(env.dir, 'redis-idle-thread'));
  t.after(() => stopRedis(own.dir));
  const [C, D] = await Promise.all([startNode(own.url), startNode(own.url)]);
  t.after(async () => {
    await C.stop('SIGKILL');
    await D.stop('SIGKILL');
  });
  const nodes = [['C', C], ['D', D]];
  const ceoC = sessionOn(C);
  const probe = await ceoC.createKey({ name: 'probe (idle thread)', scopes: ['leads:read'], rate_limit_per_minute: 100000 });
  const three = await ceoC.createKey({ name: 'three (idle thread)', scopes: ['leads:read'], rate_limit_per_minute: 3 });
  for (const [n, s] of nodes) {
    for (let i = 0; i < 4; i++) {
      const r = await httpRequest(s, '/v1/key', { key: probe.secret, newConnection: true });
      assert.equal(r.headers.get('x-ratelimit-limit'), '100000', `node ${n}: shared decision before the outage`);
    }
  }

  await stopRedis(own.dir);
  for (const [n, s] of nodes) {
    const r = await httpRequest(s, '/v1/key', { key: probe.secret });
    assert.equal(r.status, 200, `node ${n}: fail open during the outage`);
    assertReady(await readyz(s), 'degraded', `node ${n} during the outage`);
  }
  await startRedisOnPort(own.dir);
  await pollUntil(async () => {
    for (const [, s] of nodes) await httpRequest(s, '/v1/key', { key: probe.secret });
    const bodies = [await readyz(C), await readyz(D)];
    return bodies.every((b) => b.checks.rate_limiter === 'shared') ? bodies : undefined;
  }, { what: 'both nodes report the shared limiter again', tries: 150, intervalMs: 100 });

  const seen = [];
  for (let i = 0; i < 8; i++) {
    const [n, s] = nodes[i % 2];
    const r = await httpRequest(s, '/v1/key', { key: three.secret, newConnection: true });
    seen.push({ n, r, ready: (await readyz(s)).checks.rate_limiter });
  }
  const summary = seen.map(({ n, r, ready }) => `${n}:${r.status}/limit ${r.headers.get('x-ratelimit-limit')}/readyz ${ready}`).join(', ');
  t.diagnostic(summary);
  assert.deepEqual(seen.map(({ r }) => r.status), [200, 200, 200, 429, 429, 429, 429, 429],
    `a fresh key limited to 3, alternating C and D on new connections after /readyz said shared: ${summary}`);
  assert.deepEqual(seen.map(({ r }) => r.headers.get('x-ratelimit-limit')), Array(8).fill('3'),
    `every decision from the shared window (a fallback decision says ceil(3/2) = 2): ${summary}`);
  assert.deepEqual(seen.map(({ ready }) => ready), Array(8).fill('shared'), `/readyz after each request: ${summary}`);
});
