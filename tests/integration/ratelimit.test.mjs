// Per-key rate limits on /v1: 120/minute by default, --rate-limit N, exact
// counts also under concurrency, headers on every response, 429 before
// routing and scopes, and the per-IP budget for failed authentications.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Env, assertError, assertInvalidKey, rateLimitHeaders, forgeValidKey,
} from './lib/harness.mjs';

const env = new Env('dvs-ratelimit');
let server;
let org;

before(async () => {
  await env.migrate();
  org = await env.createOrg('Rate Org');
  server = await env.startServer();
});

after(async () => {
  await env.cleanup();
});

function assertRateLimited(r, limit) {
  assertError(r, 429, 'rate_limited');
  const h = rateLimitHeaders(r);
  assert.equal(h.limit, limit, 'X-RateLimit-Limit on a 429');
  assert.equal(h.remaining, 0, 'X-RateLimit-Remaining is 0 on a 429');
  const ra = r.headers.get('retry-after');
  assert.ok(ra !== null, 'Retry-After is present on a 429');
  assert.match(ra, /^\d+$/, `Retry-After is an integer number of seconds, got "${ra}"`);
  assert.ok(Number(ra) >= 1 && Number(ra) <= 60, `Retry-After within the one-minute window, got ${ra}`);
  assert.ok(h.reset >= 1 && h.reset <= 60, `X-RateLimit-Reset within the window on a 429, got ${h.reset}`);
  // The body (one shared body per number of seconds) says the same wait.
  assert.equal(JSON.parse(r.text).error.message, `Too many requests. Retry after ${ra} seconds.`);
  assert.equal(Number(r.headers.get('content-length')), Buffer.byteLength(r.text), 'Content-Length');
}

test('a fresh key gets exactly 120 requests, Remaining counting down, then 429', async () => {
  const k = await env.createKey(org, { name: 'default limit' });
  for (let i = 0; i < 120; i++) {
    const r = await server.req('/v1/key', { key: k.secret });
    assert.equal(r.status, 200, `request ${i + 1}: ${r.status} ${r.text}`);
    const h = rateLimitHeaders(r);
    assert.equal(h.limit, 120, `request ${i + 1}: X-RateLimit-Limit`);
    assert.equal(h.remaining, 119 - i, `request ${i + 1}: X-RateLimit-Remaining`);
    assert.ok(h.reset >= 1 && h.reset <= 60, `request ${i + 1}: X-RateLimit-Reset in 1..60, got ${h.reset}`);
  }
  assertRateLimited(await server.req('/v1/key', { key: k.secret }), 120);
  assertRateLimited(await server.req('/v1/leads', { key: k.secret }), 120);
});

test('150 concurrent requests on a fresh key: exactly 120 succeed', async () => {
  const k = await env.createKey(org, { name: 'concurrent' });
  const results = await Promise.all(Array.from({ length: 150 }, () => server.req('/v1/key', { key: k.secret })));
  const ok = results.filter((r) => r.status === 200);
  const limited = results.filter((r) => r.status === 429);
  assert.equal(ok.length, 120, `successes: ${ok.length}, statuses: ${[...new Set(results.map((r) => r.status))]}`);
  assert.equal(limited.length, 30, '429s');
  for (const r of limited) assertRateLimited(r, 120);
  const remaining = ok.map((r) => rateLimitHeaders(r).remaining).sort((a, b) => a - b);
  assert.deepEqual(remaining, Array.from({ length: 120 }, (_, i) => i), 'each success saw its own Remaining value');
  assertRateLimited(await server.req('/v1/key', { key: k.secret }), 120);
});

test('--rate-limit 5 allows exactly 5 requests', async () => {
  const k = await env.createKey(org, { name: 'five', rateLimit: 5 });
  for (let i = 0; i < 5; i++) {
    const r = await server.req('/v1/leads', { key: k.secret });
    assert.equal(r.status, 200, `request ${i + 1}: ${r.text}`);
    const h = rateLimitHeaders(r);
    assert.equal(h.limit, 5);
    assert.equal(h.remaining, 4 - i);
  }
  assertRateLimited(await server.req('/v1/leads', { key: k.secret }), 5);
  const me = await server.req('/v1/key', { key: k.secret });
  assertRateLimited(me, 5);
});

test('limits are per key: another key of the same org is unaffected', async () => {
  const a = await env.createKey(org, { name: 'exhausted', rateLimit: 2 });
  const b = await env.createKey(org, { name: 'fresh' });
  await server.req('/v1/key', { key: a.secret });
  await server.req('/v1/key', { key: a.secret });
  assertRateLimited(await server.req('/v1/key', { key: a.secret }), 2);
  const r = await server.req('/v1/key', { key: b.secret });
  assert.equal(r.status, 200);
  const h = rateLimitHeaders(r);
  assert.equal(h.limit, 120);
  assert.equal(h.remaining, 119);
});

test('the limit applies before routing and scope checks, and 404/403 count against it', async () => {
  const k = await env.createKey(org, { name: 'order', scopes: ['leads:read'], rateLimit: 3 });
  const r1 = await server.req('/v1/nope', { key: k.secret });
  assertError(r1, 404, 'not_found');
  assert.equal(rateLimitHeaders(r1).remaining, 2);
  const r2 = await server.req('/v1/invoices', { key: k.secret });
  assertError(r2, 403, 'insufficient_scope');
  assert.equal(rateLimitHeaders(r2).remaining, 1);
  const r3 = await server.req('/v1/leads', { key: k.secret, method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
  assertError(r3, 405, 'method_not_allowed');
  assert.equal(rateLimitHeaders(r3).remaining, 0);
  assertRateLimited(await server.req('/v1/nope', { key: k.secret }), 3);
  assertRateLimited(await server.req('/v1/invoices', { key: k.secret }), 3);
  assertRateLimited(await server.req('/v1/leads', { key: k.secret, method: 'DELETE' }), 3);
  assertRateLimited(await server.req('/v1/leads', { key: k.secret }), 3);
});

test('a key\'s own limit is reported on every response, including 404 and 403', async () => {
  const k = await env.createKey(org, { name: 'limit 77', scopes: ['invoices:read'], rateLimit: 77 });
  for (const p of ['/v1/key', '/v1/nope', '/v1/leads', '/v1/invoices']) {
    const r = await server.req(p, { key: k.secret });
    assert.equal(rateLimitHeaders(r).limit, 77, `${p}: X-RateLimit-Limit`);
  }
});

test('failed authentications draw on a per-client budget of 1200 per minute', async () => {
  const first = await server.req('/v1/key', { key: forgeValidKey() });
  assertInvalidKey(first);
  const h1 = rateLimitHeaders(first);
  assert.equal(h1.limit, 1200, 'X-RateLimit-Limit on a 401');
  const second = await server.req('/v1/leads');
  assertInvalidKey(second);
  const h2 = rateLimitHeaders(second);
  assert.equal(h2.limit, 1200);
  assert.equal(h2.remaining, h1.remaining - 1, 'each failed authentication uses one');
  // A valid key is counted on its own budget, not the client's.
  const k = await env.createKey(org, { name: 'after failures' });
  const ok = await server.req('/v1/key', { key: k.secret });
  assert.equal(ok.status, 200);
  const h3 = rateLimitHeaders(ok);
  assert.equal(h3.limit, 120);
  assert.equal(h3.remaining, 119);
  const third = await server.req('/v1/key', { auth: 'Bearer nope' });
  assertInvalidKey(third);
  assert.equal(rateLimitHeaders(third).remaining, h2.remaining - 1, 'successful requests do not use the failure budget');
});
