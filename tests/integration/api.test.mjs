// Management API (contract section 6), the keys half: create (and its
// validation), list, the 100-active-key cap, rotate (with and without a grace
// period), revoke, a key's request log and hourly usage, audit events (with
// expiry), roles (CEO, admin, member, nobody) and organization isolation.
// Sessions, Content-Type/Origin checks, routing and the portal page are in
// api-session.test.mjs.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Env, Portal, KEY_RE, hasValidChecksum, assertApiKeyShape, assertError, assertJsonContentType,
  assertRequestId, assertNewestFirst, assertListShape, assertNotInFiles, assertTimestamp, checkAll,
  pollUntil, rfc3339, sortedKeys, assertInvalidKey,
} from './lib/harness.mjs';

const env = new Env('dvs-api');
let server;
let portal;
let orgA; // {org, email, password} of A's CEO
let orgB;
let ceo; // Session
let admin; // {user, s}
let member;
let ceoB;
let capped; // {s, ids}: an organization at the 100-active-key cap

const nowS = () => Math.floor(Date.now() / 1000);

before(async () => {
  await env.migrate();
  orgA = await env.createOrgWithOwner({ name: 'Org A', email: 'ceo@a.example', password: 'a-ceo-Pa55word' });
  orgB = await env.createOrgWithOwner({ name: 'Org B', email: 'ceo@b.example', password: 'b-ceo-Pa55word' });
  const adminUser = await env.addUserWithPassword(orgA.org, 'admin', { email: 'admin@a.example' });
  const memberUser = await env.addUserWithPassword(orgA.org, 'member', { email: 'member@a.example' });
  server = await env.startServer();
  portal = new Portal(env, server);
  ceo = await portal.session(orgA.email, orgA.password);
  admin = { user: adminUser, s: await portal.session(adminUser.email, adminUser.password) };
  member = { user: memberUser, s: await portal.session(memberUser.email, memberUser.password) };
  ceoB = await portal.session(orgB.email, orgB.password);
});

after(async () => {
  await env.cleanup();
});

function assertNoStore(res, what) {
  assert.equal(res.headers.get('cache-control'), 'no-store', `${what}: Cache-Control must be no-store`);
}

async function v1(secret, p = '/v1/leads', headers = {}) {
  return server.req(p, { key: secret, headers });
}

async function listKeys(s = ceo) {
  const r = await s.get('/api/keys');
  assert.equal(r.status, 200, `GET /api/keys: ${r.status} ${r.text}`);
  return r.json.data;
}

async function auditEvents(s = ceo, query = '?limit=100') {
  const r = await s.get(`/api/audit-events${query}`);
  assert.equal(r.status, 200, `GET /api/audit-events: ${r.status} ${r.text}`);
  assertListShape(r.json);
  return r.json.data;
}

// ---------------------------------------------------------------------------
// Create and list

test('POST /api/keys creates a key: 201 with the key and its secret, which works on /v1 at once', async () => {
  const r = await ceo.post('/api/keys', { name: 'CRM sync', scopes: ['leads:read'] });
  assert.equal(r.status, 201, r.text);
  assertJsonContentType(r);
  assertRequestId(r);
  assertNoStore(r, 'a response carrying a secret');
  assert.deepEqual(sortedKeys(r.json), ['key', 'secret']);
  const { key, secret } = r.json;
  assertApiKeyShape(key);
  assert.match(secret, KEY_RE);
  assert.ok(hasValidChecksum(secret), 'the secret has a valid checksum');
  assert.equal(key.hint, secret.slice(0, 13), 'hint is dvs_live_ + the first 4 random characters');
  assert.equal(key.name, 'CRM sync');
  assert.deepEqual(key.scopes, ['leads:read']);
  assert.equal(key.status, 'active');
  assert.equal(key.rate_limit_per_minute, 120, 'default limit');
  assert.equal(key.expires_at, null);
  assert.equal(key.last_used_at, null);
  assert.equal(key.revoked_at, null);
  assert.deepEqual(key.created_by, { id: ceo.me.user.id, email: orgA.email }, 'created_by is the signed-in user');
  assert.ok(Math.abs(Date.parse(key.created_at) / 1000 - nowS()) < 300, `created_at is about now: ${key.created_at}`);

  const use = await v1(secret);
  assert.equal(use.status, 200, `the new secret on /v1/leads: ${use.status} ${use.text}`);
  const me = await v1(secret, '/v1/key');
  assert.equal(me.json.id, key.id);
  assert.equal(me.json.org_id, orgA.org);
  assertError(await v1(secret, '/v1/invoices'), 403, 'insufficient_scope');

  const listed = (await listKeys()).find((k) => k.id === key.id);
  assert.ok(listed, 'the key is listed');
  assertApiKeyShape(listed);
  assert.equal(listed.name, 'CRM sync');
  const raw = await ceo.get('/api/keys');
  assert.ok(!raw.text.includes(secret.slice(9)), 'the list never shows the secret');
});

test('POST /api/keys stores expires_at and rate_limit_per_minute as given', async () => {
  const exp = rfc3339(nowS() + 30 * 86400);
  const { key, secret } = await ceo.createKey({ name: 'with options', scopes: ['invoices:read', 'leads:read'], expires_at: exp, rate_limit_per_minute: 7 });
  assert.equal(key.expires_at, exp);
  assert.equal(key.rate_limit_per_minute, 7);
  assert.deepEqual([...key.scopes].sort(), ['invoices:read', 'leads:read']);
  const r = await v1(secret, '/v1/invoices');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('x-ratelimit-limit'), '7');

  // RFC 3339 with an offset names the same instant; output is UTC.
  const base = nowS() + 40 * 86400;
  const withOffset = new Date((base + 7200) * 1000).toISOString().replace(/\.\d{3}Z$/, '+02:00');
  const o = await ceo.post('/api/keys', { name: 'offset', scopes: ['leads:read'], expires_at: withOffset });
  assert.equal(o.status, 201, `expires_at ${withOffset}: ${o.text}`);
  assert.equal(o.json.key.expires_at, rfc3339(base), `${withOffset} is ${rfc3339(base)}`);
  const n = await ceo.post('/api/keys', { name: 'null options', scopes: ['leads:read'], expires_at: null });
  assert.equal(n.status, 201, n.text);
  assert.equal(n.json.key.expires_at, null);
});

test('GET /api/keys lists the organization\'s keys newest first, CLI-created ones included', async () => {
  const cli = await env.createKey(orgA.org, { name: 'from the CLI', scopes: ['leads:read'] });
  const made = [];
  for (let i = 0; i < 3; i++) made.push((await ceo.createKey({ name: `order ${i}`, scopes: ['leads:read'] })).key);
  // Keys made within one second tie on created_at; spread them out so their order is known.
  for (let i = 0; i < 3; i++) {
    await env.sql(`UPDATE api_keys SET created_at = created_at - ${(3 - i) * 1000} WHERE id = '${made[i].id}'`);
  }
  const r = await ceo.get('/api/keys');
  assert.equal(r.status, 200);
  assertJsonContentType(r);
  assertNoStore(r, 'GET /api/keys');
  assert.equal(r.json.object, 'list');
  assert.ok(Array.isArray(r.json.data));
  for (const k of r.json.data) assertApiKeyShape(k);
  assertNewestFirst(r.json.data, 'GET /api/keys');
  const ids = r.json.data.map((k) => k.id);
  const pos = made.map((k) => ids.indexOf(k.id));
  assert.ok(pos.every((p) => p >= 0), 'every created key is listed');
  assert.ok(pos[2] < pos[1] && pos[1] < pos[0], `the latest created comes first: positions ${pos}`);
  const c = r.json.data.find((k) => k.id === cli.id);
  assert.ok(c, 'the CLI-created key is listed');
  assert.equal(c.created_by, null, 'a key created on the command line has created_by null');
});

test('POST /api/keys rejects bad input with 400 invalid_request naming the parameter', async () => {
  const past = rfc3339(nowS() - 3600);
  const future = rfc3339(nowS() + 86400);
  const ok = { name: 'valid', scopes: ['leads:read'] };
  const without = (f) => Object.fromEntries(Object.entries(ok).filter(([k]) => k !== f));
  const cases = [
    ['name missing', without('name'), 'name'],
    ['name empty', { ...ok, name: '' }, 'name'],
    ['name 101 characters', { ...ok, name: 'x'.repeat(101) }, 'name'],
    ['name 101 "é"', { ...ok, name: 'é'.repeat(101) }, 'name'],
    ['name a number', { ...ok, name: 123 }, 'name'],
    ['name an array', { ...ok, name: ['a'] }, 'name'],
    ['name null', { ...ok, name: null }, 'name'],
    ['name with a newline', { ...ok, name: 'two\nlines' }, 'name'],
    ['name with a NUL', { ...ok, name: 'nul\u0000byte' }, 'name'],
    ['scopes missing', without('scopes'), 'scopes'],
    ['scopes empty', { ...ok, scopes: [] }, 'scopes'],
    ['scopes unknown', { ...ok, scopes: ['leads:write'] }, 'scopes'],
    ['scopes one known one unknown', { ...ok, scopes: ['leads:read', 'admin'] }, 'scopes'],
    ['scopes a string', { ...ok, scopes: 'leads:read' }, 'scopes'],
    ['scopes with a number', { ...ok, scopes: ['leads:read', 5] }, 'scopes'],
    ['scopes null', { ...ok, scopes: null }, 'scopes'],
    ['expires_at in the past', { ...ok, expires_at: past }, 'expires_at'],
    ['expires_at not RFC 3339', { ...ok, expires_at: 'tomorrow' }, 'expires_at'],
    ['expires_at a date without time', { ...ok, expires_at: future.slice(0, 10) }, 'expires_at'],
    ['expires_at month 13', { ...ok, expires_at: '2031-13-01T00:00:00Z' }, 'expires_at'],
    ['expires_at a number', { ...ok, expires_at: nowS() + 86400 }, 'expires_at'],
    ['rate_limit_per_minute 0', { ...ok, rate_limit_per_minute: 0 }, 'rate_limit_per_minute'],
    ['rate_limit_per_minute -1', { ...ok, rate_limit_per_minute: -1 }, 'rate_limit_per_minute'],
    ['rate_limit_per_minute 100001', { ...ok, rate_limit_per_minute: 100001 }, 'rate_limit_per_minute'],
    ['rate_limit_per_minute huge', { ...ok, rate_limit_per_minute: 1e20 }, 'rate_limit_per_minute'],
    ['rate_limit_per_minute "5"', { ...ok, rate_limit_per_minute: '5' }, 'rate_limit_per_minute'],
    ['rate_limit_per_minute 1.5', { ...ok, rate_limit_per_minute: 1.5 }, 'rate_limit_per_minute'],
    ['rate_limit_per_minute true', { ...ok, rate_limit_per_minute: true }, 'rate_limit_per_minute'],
    ['unknown field', { ...ok, colour: 'blue' }, 'colour'],
    ['unknown field "secret"', { ...ok, secret: 'dvs_live_x' }, 'secret'],
  ];
  const before = (await listKeys()).length;
  await checkAll(cases, ([what]) => what, async ([, body, param]) => {
    const r = await ceo.post('/api/keys', body);
    const e = assertError(r, 400, 'invalid_request');
    assert.equal(e.param, param, `error.param: ${r.text}`);
    assertNoStore(r, '400');
  });
  const rawBodies = [
    ['invalid JSON', '{"name": "x", "scopes": ['],
    ['a JSON array', '[{"name":"x","scopes":["leads:read"]}]'],
    ['a JSON string', '"x"'],
    ['a JSON number', '42'],
    ['JSON null', 'null'],
    ['an empty body', ''],
    ['an empty object', '{}'],
  ];
  await checkAll(rawBodies, ([what]) => what, async ([, body]) => {
    const r = await ceo.req('/api/keys', { method: 'POST', body, contentType: 'application/json' });
    assertError(r, 400, 'invalid_request');
    assert.ok(!('secret' in (r.json || {})), 'no secret in an error');
  });
  assert.equal((await listKeys()).length, before, 'no key was created by a rejected request');
});

test('POST /api/keys accepts the bounds: a 100-character name (counted in characters) and limits 1 and 100000', async () => {
  const cases = [
    ['name of 100 ASCII characters', { name: 'n'.repeat(100) }],
    ['name of 100 "é" (200 bytes)', { name: 'é'.repeat(100) }],
    ['name of 100 emoji-free CJK characters', { name: '鍵'.repeat(100) }],
    ['name of 1 character', { name: 'k' }],
    ['rate_limit_per_minute 1', { name: 'min limit', rate_limit_per_minute: 1 }],
    ['rate_limit_per_minute 100000', { name: 'max limit', rate_limit_per_minute: 100000 }],
  ];
  await checkAll(cases, ([what]) => what, async ([, extra]) => {
    const r = await ceo.post('/api/keys', { scopes: ['leads:read'], ...extra });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.key.name, extra.name);
    if (extra.rate_limit_per_minute !== undefined) assert.equal(r.json.key.rate_limit_per_minute, extra.rate_limit_per_minute);
    const listed = (await listKeys()).find((k) => k.id === r.json.key.id);
    assert.equal(listed.name, extra.name, 'the name is stored as sent');
  });
});

test('an organization has at most 100 active keys; revoking one makes room', async () => {
  const cap = await env.createOrgWithOwner({ name: 'Cap Org' });
  const s = await portal.session(cap.email, cap.password);
  const ids = []; // ids[0] is revoked below; ids[1] and ids[2] stay active for the next test
  for (let i = 0; i < 100; i++) {
    const r = await s.post('/api/keys', { name: `cap ${i}`, scopes: ['leads:read'] });
    assert.equal(r.status, 201, `key ${i + 1} of 100: ${r.status} ${r.text}`);
    ids.push(r.json.key.id);
  }
  const over = await s.post('/api/keys', { name: 'one too many', scopes: ['leads:read'] });
  assertError(over, 400, 'invalid_request');
  assert.ok(!('secret' in over.json), 'no secret for a refused key');
  assert.equal((await listKeys(s)).length, 100);

  const rv = await s.post(`/api/keys/${ids[0]}/revoke`, {});
  assert.equal(rv.status, 200, rv.text);
  const again = await s.post('/api/keys', { name: 'after a revoke', scopes: ['leads:read'] });
  assert.equal(again.status, 201, `after revoking one: ${again.status} ${again.text}`);
  assertError(await s.post('/api/keys', { name: 'full again', scopes: ['leads:read'] }), 400, 'invalid_request');
  // The cap is per organization: org A is not affected.
  assert.equal((await ceo.post('/api/keys', { name: 'A is not capped', scopes: ['leads:read'] })).status, 201);
  capped = { s, ids };
});

test('at the cap, a rotation with a grace period (a 101st active key) is refused; one without grace is allowed', async () => {
  assert.ok(capped, 'the previous test filled an organization to the cap');
  const { s, ids } = capped;
  const activeCount = async () => (await listKeys(s)).filter((k) => k.status === 'active').length;
  assert.equal(await activeCount(), 100);
  const swap = await s.post(`/api/keys/${ids[2]}/rotate`, { expire_old_in_seconds: 0 });
  assert.equal(swap.status, 201, `rotating without grace at the cap keeps 100 active keys: ${swap.status} ${swap.text}`);
  assert.equal(await activeCount(), 100, 'still 100 active keys after a rotation without grace');
  const grace = await s.post(`/api/keys/${ids[1]}/rotate`, { expire_old_in_seconds: 3600 });
  assertError(grace, 400, 'invalid_request');
  assert.equal(await activeCount(), 100, 'never more than 100 active keys');
});

// ---------------------------------------------------------------------------
// Rotate

test('rotate with no grace: a new key with the same settings; the old one is revoked and refused at once', async () => {
  const exp = rfc3339(nowS() + 10 * 86400);
  const old = await ceo.createKey({ name: 'rotate me', scopes: ['invoices:read'], rate_limit_per_minute: 33, expires_at: exp });
  assert.equal((await v1(old.secret, '/v1/invoices')).status, 200);
  const r = await ceo.post(`/api/keys/${old.key.id}/rotate`, {});
  assert.equal(r.status, 201, r.text);
  assertNoStore(r, 'rotate');
  assert.deepEqual(sortedKeys(r.json), ['key', 'replaced', 'secret']);
  const { key, secret, replaced } = r.json;
  assertApiKeyShape(key);
  assertApiKeyShape(replaced);
  assert.match(secret, KEY_RE);
  assert.ok(hasValidChecksum(secret));
  assert.notEqual(secret, old.secret);
  assert.notEqual(key.id, old.key.id);
  assert.equal(key.hint, secret.slice(0, 13));
  assert.equal(key.name, 'rotate me');
  assert.deepEqual(key.scopes, ['invoices:read']);
  assert.equal(key.rate_limit_per_minute, 33);
  assert.equal(key.expires_at, exp);
  assert.equal(key.status, 'active');
  assert.equal(replaced.id, old.key.id);
  assert.equal(replaced.status, 'revoked');
  assertTimestamp(replaced.revoked_at, 'replaced.revoked_at');

  assertInvalidKey(await v1(old.secret, '/v1/invoices'), old.secret);
  const n = await v1(secret, '/v1/invoices');
  assert.equal(n.status, 200, n.text);
  assert.equal(n.headers.get('x-ratelimit-limit'), '33');
  const list = await listKeys();
  assert.equal(list.find((k) => k.id === old.key.id).status, 'revoked');
  assert.equal(list.find((k) => k.id === key.id).status, 'active');
  // Explicit 0 is the same as the default.
  const z = await ceo.createKey({ name: 'explicit zero', scopes: ['leads:read'] });
  const rz = await ceo.post(`/api/keys/${z.key.id}/rotate`, { expire_old_in_seconds: 0 });
  assert.equal(rz.status, 201, rz.text);
  assert.equal(rz.json.replaced.status, 'revoked');
  assertInvalidKey(await v1(z.secret), z.secret);
});

test('rotate with a grace period: both keys work, the old one expires when the grace ends', async () => {
  const old = await ceo.createKey({ name: 'graceful', scopes: ['leads:read'], rate_limit_per_minute: 50 });
  const t0 = nowS();
  const r = await ceo.post(`/api/keys/${old.key.id}/rotate`, { expire_old_in_seconds: 3600 });
  const t1 = nowS();
  assert.equal(r.status, 201, r.text);
  const { key, secret, replaced } = r.json;
  assert.equal(replaced.id, old.key.id);
  assert.equal(replaced.status, 'active');
  assert.equal(replaced.revoked_at, null);
  const e = Date.parse(replaced.expires_at) / 1000;
  assert.ok(e >= t0 + 3600 - 1 && e <= t1 + 3600 + 1, `old expires_at ${replaced.expires_at} is 1 h after the rotation`);
  assert.equal(key.expires_at, null, 'the new key keeps the original (no) expiry');
  assert.equal(key.name, 'graceful');
  assert.equal(key.rate_limit_per_minute, 50);
  assert.equal((await v1(old.secret)).status, 200, 'the old key works during the grace period');
  assert.equal((await v1(secret)).status, 200, 'the new key works');
  const listed = (await listKeys()).find((k) => k.id === old.key.id);
  assert.equal(listed.status, 'active');
  assert.equal(listed.expires_at, replaced.expires_at);

  // An already-replaced key cannot be rotated again.
  assertError(await ceo.post(`/api/keys/${old.key.id}/rotate`, {}), 404, 'not_found');
  // When the grace period is over, the old key is expired (simulated by moving its expiry back).
  await env.sql(`UPDATE api_keys SET expires_at = ${nowS() - 5} WHERE id = '${old.key.id}'`);
  assertInvalidKey(await v1(old.secret), old.secret);
  assert.equal((await v1(secret)).status, 200, 'the new key is unaffected');
});

test('rotating a key that expires sooner than the grace period never extends its life', async () => {
  const exp = rfc3339(nowS() + 600);
  const old = await ceo.createKey({ name: 'short-lived', scopes: ['leads:read'], expires_at: exp });
  const r = await ceo.post(`/api/keys/${old.key.id}/rotate`, { expire_old_in_seconds: 3600 });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.replaced.expires_at, exp, 'the old key\'s expires_at is unchanged');
  assert.equal(r.json.replaced.status, 'active');
  assert.equal(r.json.key.expires_at, exp, 'the new key keeps the expiry');
  assert.equal((await listKeys()).find((k) => k.id === old.key.id).expires_at, exp);

  const exp2 = rfc3339(nowS() + 7200);
  const o2 = await ceo.createKey({ name: 'shortened', scopes: ['leads:read'], expires_at: exp2 });
  const t0 = nowS();
  const r2 = await ceo.post(`/api/keys/${o2.key.id}/rotate`, { expire_old_in_seconds: 60 });
  assert.equal(r2.status, 201, r2.text);
  const e2 = Date.parse(r2.json.replaced.expires_at) / 1000;
  assert.ok(e2 >= t0 + 59 && e2 <= nowS() + 61, `a shorter grace moves the old expiry to 60 s ahead: ${r2.json.replaced.expires_at}`);
  assert.equal(r2.json.key.expires_at, exp2);
});

test('rotate validates expire_old_in_seconds and refuses unknown, revoked and replaced keys with 404', async () => {
  const k = await ceo.createKey({ name: 'rotate validation', scopes: ['leads:read'] });
  const bad = [
    ['-1', { expire_old_in_seconds: -1 }, 'expire_old_in_seconds'],
    ['604801', { expire_old_in_seconds: 604801 }, 'expire_old_in_seconds'],
    ['"x"', { expire_old_in_seconds: 'x' }, 'expire_old_in_seconds'],
    ['"60"', { expire_old_in_seconds: '60' }, 'expire_old_in_seconds'],
    ['1.5', { expire_old_in_seconds: 1.5 }, 'expire_old_in_seconds'],
    ['true', { expire_old_in_seconds: true }, 'expire_old_in_seconds'],
    ['1e20', { expire_old_in_seconds: 1e20 }, 'expire_old_in_seconds'],
    ['unknown field', { expire_old_in_seconds: 5, name: 'renamed' }, 'name'],
  ];
  await checkAll(bad, ([what]) => what, async ([, body, param]) => {
    const e = assertError(await ceo.post(`/api/keys/${k.key.id}/rotate`, body), 400, 'invalid_request');
    assert.equal(e.param, param);
  });
  for (const [what, body] of [['invalid JSON', '{'], ['a JSON array', '[]']]) {
    const r = await ceo.req(`/api/keys/${k.key.id}/rotate`, { method: 'POST', body, contentType: 'application/json' });
    assert.equal(r.status, 400, `${what}: ${r.text}`);
  }
  assert.equal((await listKeys()).find((x) => x.id === k.key.id).status, 'active', 'nothing was rotated');
  assert.equal((await v1(k.secret)).status, 200);

  const max = await ceo.post(`/api/keys/${k.key.id}/rotate`, { expire_old_in_seconds: 604800 });
  assert.equal(max.status, 201, `604800 is allowed: ${max.text}`);
  const e = Date.parse(max.json.replaced.expires_at) / 1000;
  assert.ok(Math.abs(e - (nowS() + 604800)) <= 60, `7 days of grace: ${max.json.replaced.expires_at}`);

  const revoked = await ceo.createKey({ name: 'revoked then rotated', scopes: ['leads:read'] });
  assert.equal((await ceo.post(`/api/keys/${revoked.key.id}/revoke`, {})).status, 200);
  const cases = [
    ['a revoked key', revoked.key.id],
    ['an already replaced key (in its grace period)', k.key.id],
    ['a key that does not exist', 'key_doesnotexist000000000'],
    ['a malformed id', 'nope'],
  ];
  await checkAll(cases, ([what]) => what, async ([, id]) => {
    const r = await ceo.post(`/api/keys/${id}/rotate`, {});
    assertError(r, 404, 'not_found');
    assert.ok(!('secret' in r.json));
  });
  const now = await ceo.createKey({ name: 'rotated twice', scopes: ['leads:read'] });
  assert.equal((await ceo.post(`/api/keys/${now.key.id}/rotate`, {})).status, 201);
  assertError(await ceo.post(`/api/keys/${now.key.id}/rotate`, {}), 404, 'not_found');
});

// ---------------------------------------------------------------------------
// Revoke

test('revoke: 200 with the key revoked, refused on /v1 at once; revoking again is fine', async () => {
  const k = await ceo.createKey({ name: 'revoke me', scopes: ['leads:read'] });
  assert.equal((await v1(k.secret)).status, 200);
  const r = await ceo.post(`/api/keys/${k.key.id}/revoke`, {});
  assert.equal(r.status, 200, r.text);
  assertNoStore(r, 'revoke');
  assert.deepEqual(sortedKeys(r.json), ['key']);
  assertApiKeyShape(r.json.key);
  assert.equal(r.json.key.id, k.key.id);
  assert.equal(r.json.key.status, 'revoked');
  assertTimestamp(r.json.key.revoked_at, 'revoked_at');
  assertInvalidKey(await v1(k.secret), k.secret);
  assertInvalidKey(await v1(k.secret, '/v1/key'), k.secret);

  const again = await ceo.post(`/api/keys/${k.key.id}/revoke`, {});
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.key.status, 'revoked');
  assert.equal((await listKeys()).find((x) => x.id === k.key.id).status, 'revoked');

  // An empty body with the JSON content type is accepted.
  const k2 = await ceo.createKey({ name: 'revoke with empty body', scopes: ['leads:read'] });
  const e = await ceo.req(`/api/keys/${k2.key.id}/revoke`, { method: 'POST', contentType: 'application/json' });
  assert.equal(e.status, 200, e.text);
  assert.equal(e.json.key.status, 'revoked');
  assertInvalidKey(await v1(k2.secret), k2.secret);

  assertError(await ceo.post('/api/keys/key_doesnotexist000000000/revoke', {}), 404, 'not_found');
  const bad = await ceo.post(`/api/keys/${k2.key.id}/revoke`, { reason: 'x' });
  assert.equal(bad.json.error?.param, 'reason', `an unknown field is named: ${bad.text}`);
  assert.equal(bad.status, 400);
});

// ---------------------------------------------------------------------------
// Request log and usage

test('GET /api/keys/{id}/requests pages through the key\'s request log, newest first', async () => {
  const k = await ceo.createKey({ name: 'logged', scopes: ['leads:read'] });
  const other = await ceo.createKey({ name: 'not this one', scopes: ['leads:read'] });
  const UA = 'api-itest-requests/1.0';
  const sent = new Map(); // request id -> {path, status}
  const plan = [
    ...Array.from({ length: 20 }, () => ['/v1/leads', 200]),
    ...Array.from({ length: 3 }, () => ['/v1/invoices', 403]),
    ...Array.from({ length: 2 }, () => ['/v1/leads/lead_nope', 404]),
  ];
  for (const [p, status] of plan) {
    const r = await v1(k.secret, p, { 'user-agent': UA });
    assert.equal(r.status, status, `${p}: ${r.text}`);
    sent.set(assertRequestId(r), { path: p, status });
  }
  assert.equal((await v1(other.secret, '/v1/leads', { 'user-agent': UA })).status, 200);
  assert.equal(sent.size, 25);

  await pollUntil(async () => {
    const r = await ceo.get(`/api/keys/${k.key.id}/requests?limit=100`);
    return r.status === 200 && r.json.data.length >= 25 ? true : undefined;
  }, { what: 'all 25 requests in the request log', tries: 200 });

  const pages = [];
  const items = [];
  let cursor = null;
  for (let i = 0; i < 10; i++) {
    const q = cursor === null ? '?limit=10' : `?limit=10&cursor=${encodeURIComponent(cursor)}`;
    const r = await ceo.get(`/api/keys/${k.key.id}/requests${q}`);
    assert.equal(r.status, 200, r.text);
    assertNoStore(r, 'requests');
    assertListShape(r.json);
    pages.push(r.json.data.length);
    items.push(...r.json.data);
    if (!r.json.has_more) break;
    cursor = r.json.next_cursor;
  }
  assert.deepEqual(pages, [10, 10, 5], 'three pages of 10, 10 and 5');
  assert.equal(new Set(items.map((x) => x.id)).size, 25, 'no request repeated');
  assert.deepEqual(items.map((x) => x.id).sort(), [...sent.keys()].sort(), 'exactly this key\'s requests, by X-Request-Id');
  assertNewestFirst(items, 'request log');
  for (const e of items) {
    assert.deepEqual(sortedKeys(e), ['client_ip', 'created_at', 'id', 'latency_ms', 'method', 'object', 'path', 'status', 'user_agent']);
    assert.match(e.id, /^req_\S+$/);
    assert.equal(e.object, 'request');
    assert.equal(e.method, 'GET');
    const s = sent.get(e.id);
    assert.equal(e.path, s.path);
    assert.equal(e.status, s.status);
    assert.equal(typeof e.latency_ms, 'number');
    assert.ok(e.latency_ms >= 0, `latency_ms ${e.latency_ms}`);
    assert.equal(e.client_ip, '127.0.0.1');
    assert.equal(e.user_agent, UA);
    assertTimestamp(e.created_at, 'request.created_at');
  }
});

test('requests refused because the key was revoked or expired are in that key\'s request log, with 401', async () => {
  const revoked = await ceo.createKey({ name: 'revoked, still called', scopes: ['leads:read'] });
  const expired = await ceo.createKey({ name: 'expired, still called', scopes: ['leads:read'] });
  assert.equal((await v1(revoked.secret)).status, 200);
  assert.equal((await ceo.post(`/api/keys/${revoked.key.id}/revoke`, {})).status, 200);
  await env.sql(`UPDATE api_keys SET expires_at = ${nowS() - 5} WHERE id = '${expired.key.id}'`);
  const refused = new Map();
  for (const k of [revoked, expired]) {
    const r = await v1(k.secret, '/v1/leads', { 'user-agent': 'still-calling/1.0' });
    assertError(r, 401, 'invalid_api_key');
    refused.set(k.key.id, assertRequestId(r));
  }
  // An unknown key has no log to go to: it is only counted (/metrics).
  assertError(await v1(`dvs_live_${'A'.repeat(32)}000000`), 401, 'invalid_api_key');
  for (const [id, rid] of refused) {
    const entry = await pollUntil(async () => {
      const r = await ceo.get(`/api/keys/${id}/requests?limit=10`);
      return r.status === 200 ? r.json.data.find((e) => e.id === rid) : undefined;
    }, { what: `the refused request ${rid} in the log of ${id}`, tries: 200 });
    assert.equal(entry.status, 401);
    assert.equal(entry.path, '/v1/leads');
    assert.equal(entry.user_agent, 'still-calling/1.0');
  }
});

test('GET /api/keys/{id}/requests rejects a bad limit or cursor with 400 naming it', async () => {
  const k = await ceo.createKey({ name: 'log params', scopes: ['leads:read'] });
  const cases = [
    ['limit=0', 'limit'], ['limit=101', 'limit'], ['limit=-1', 'limit'], ['limit=abc', 'limit'], ['limit=1.5', 'limit'], ['limit=', 'limit'],
    ['cursor=garbage', 'cursor'], ['cursor=', 'cursor'], [`cursor=${'A'.repeat(40)}`, 'cursor'],
  ];
  await checkAll(cases, ([q]) => q, async ([q, param]) => {
    const e = assertError(await ceo.get(`/api/keys/${k.key.id}/requests?${q}`), 400, 'invalid_request');
    assert.equal(e.param, param);
  });
  assert.equal((await ceo.get(`/api/keys/${k.key.id}/requests?limit=1`)).status, 200);
  assert.equal((await ceo.get(`/api/keys/${k.key.id}/requests?limit=100`)).status, 200);
  assertError(await ceo.get('/api/keys/key_doesnotexist000000000/requests'), 404, 'not_found');
  assertError(await ceo.get('/api/keys/key_doesnotexist000000000/usage'), 404, 'not_found');
});

test('GET /api/keys/{id}/usage: 24 hourly buckets, oldest first, the last one counting this hour\'s requests', async () => {
  const k = await ceo.createKey({ name: 'usage', scopes: ['leads:read'] });
  const N = 7;
  const hourBefore = Math.floor(nowS() / 3600);
  for (let i = 0; i < N; i++) assert.equal((await v1(k.secret)).status, 200);
  let body;
  await pollUntil(async () => {
    const r = await ceo.get(`/api/keys/${k.key.id}/usage`);
    assert.equal(r.status, 200, r.text);
    body = r.json;
    const total = body.data.reduce((a, b) => a + b.count, 0);
    return total >= N ? true : undefined;
  }, { what: () => `usage adding up to ${N}: ${JSON.stringify(body?.data?.slice(-2))}`, tries: 200 });
  const hourAfter = Math.floor(nowS() / 3600);
  assert.deepEqual(sortedKeys(body), ['data', 'interval', 'object']);
  assert.equal(body.object, 'usage');
  assert.equal(body.interval, 'hour');
  assert.equal(body.data.length, 24);
  for (let i = 0; i < 24; i++) {
    const b = body.data[i];
    assert.deepEqual(sortedKeys(b), ['count', 'start']);
    assertTimestamp(b.start, `bucket ${i}.start`);
    assert.ok(Number.isInteger(b.count) && b.count >= 0);
    assert.equal(Date.parse(b.start) % 3600000, 0, `bucket ${i} starts on the hour: ${b.start}`);
    if (i > 0) assert.equal(Date.parse(b.start) - Date.parse(body.data[i - 1].start), 3600000, 'consecutive hours, oldest first');
  }
  const last = Date.parse(body.data[23].start) / 3600000;
  assert.ok(last === hourBefore || last === hourAfter, `the last bucket is the current hour: ${body.data[23].start}`);
  assert.equal(body.data.reduce((a, b) => a + b.count, 0), N, 'a new key has exactly the requests made here');
  if (hourBefore === hourAfter) assert.equal(body.data[23].count, N, 'all in the last bucket');
  else assert.equal(body.data[22].count + body.data[23].count, N, 'split over the hour that just turned');
  assertNoStore(await ceo.get(`/api/keys/${k.key.id}/usage`), 'usage');
});

// ---------------------------------------------------------------------------
// Audit events

test('audit events record created, rotated and revoked with the actor, the key and the IP', async () => {
  const k = await ceo.createKey({ name: 'audited', scopes: ['leads:read'] });
  const rot = await admin.s.post(`/api/keys/${k.key.id}/rotate`, { expire_old_in_seconds: 600 });
  assert.equal(rot.status, 201, rot.text);
  const newId = rot.json.key.id;
  assert.equal((await ceo.post(`/api/keys/${newId}/revoke`, {})).status, 200);

  const r = await ceo.get('/api/audit-events?limit=100');
  assert.equal(r.status, 200, r.text);
  assertNoStore(r, 'audit-events');
  assertListShape(r.json);
  assertNewestFirst(r.json.data, 'audit events');
  for (const e of r.json.data) {
    assert.deepEqual(sortedKeys(e), ['actor', 'created_at', 'id', 'ip', 'key_id', 'key_name', 'object', 'type']);
    assert.match(e.id, /^evt_[0-9A-Za-z_]+$/);
    assert.equal(e.object, 'audit_event');
    assert.ok(['api_key.created', 'api_key.rotated', 'api_key.revoked', 'api_key.expired'].includes(e.type), e.type);
    if (e.actor !== null) {
      assert.deepEqual(sortedKeys(e.actor), ['email', 'id']);
      assert.match(e.actor.id, /^usr_/);
    }
    assertTimestamp(e.created_at, 'event.created_at');
  }
  const mine = r.json.data.filter((e) => e.key_id === k.key.id || e.key_id === newId);
  const find = (type, keyIds) => mine.filter((e) => e.type === type && keyIds.includes(e.key_id));
  const created = find('api_key.created', [k.key.id]);
  assert.equal(created.length, 1, `one created event: ${JSON.stringify(mine)}`);
  assert.deepEqual(created[0].actor, { id: ceo.me.user.id, email: orgA.email });
  assert.equal(created[0].ip, '127.0.0.1');
  assert.equal(created[0].key_name, 'audited');
  const rotated = find('api_key.rotated', [k.key.id, newId]);
  assert.equal(rotated.length, 1, `one rotated event: ${JSON.stringify(mine)}`);
  assert.equal(rotated[0].key_id, k.key.id, 'the rotated event is on the old key');
  assert.deepEqual(rotated[0].actor, { id: admin.user.id, email: admin.user.email }, 'the admin rotated it');
  assert.equal(rotated[0].ip, '127.0.0.1');
  assert.equal(rotated[0].key_name, 'audited');
  const revoked = find('api_key.revoked', [newId]);
  assert.equal(revoked.length, 1, `one revoked event for the new key: ${JSON.stringify(mine)}`);
  assert.deepEqual(revoked[0].actor, { id: ceo.me.user.id, email: orgA.email });
  assert.equal(revoked[0].ip, '127.0.0.1');
  assert.doesNotMatch(r.text, /dvs_live_[0-9A-Za-z]{38}/, 'no secret in audit events');
  assert.ok(Date.parse(revoked[0].created_at) >= Date.parse(created[0].created_at));
});

test('audit events paginate with limit and cursor without repeats', async () => {
  const all = await auditEvents();
  assert.ok(all.length >= 6, `enough events to page: ${all.length}`);
  const seen = [];
  let cursor = null;
  for (let i = 0; i < 200; i++) {
    const q = cursor === null ? '?limit=4' : `?limit=4&cursor=${encodeURIComponent(cursor)}`;
    const r = await ceo.get(`/api/audit-events${q}`);
    assert.equal(r.status, 200, r.text);
    assertListShape(r.json);
    assert.ok(r.json.data.length <= 4);
    seen.push(...r.json.data.map((e) => e.id));
    if (!r.json.has_more) break;
    cursor = r.json.next_cursor;
  }
  assert.equal(new Set(seen).size, seen.length, 'no event repeated');
  assert.ok(seen.length >= all.length, `every event is reached: ${seen.length} >= ${all.length}`);
  assert.deepEqual(all.map((e) => e.id).filter((id) => !seen.includes(id)), [], 'the pages cover the first listing');
  for (const [q, param] of [['limit=0', 'limit'], ['limit=101', 'limit'], ['cursor=garbage', 'cursor']]) {
    const e = assertError(await ceo.get(`/api/audit-events?${q}`), 400, 'invalid_request');
    assert.equal(e.param, param);
  }
});

test('an expired key produces exactly one api_key.expired event, with no actor', async () => {
  const k = await ceo.createKey({ name: 'will expire', scopes: ['leads:read'], expires_at: rfc3339(nowS() + 86400) });
  assert.equal((await v1(k.secret)).status, 200);
  const expiredAt = nowS() - 60;
  await env.sql(`UPDATE api_keys SET expires_at = ${expiredAt} WHERE id = '${k.key.id}'`);
  assertInvalidKey(await v1(k.secret), k.secret);
  const expiredOf = (events) => events.filter((e) => e.key_id === k.key.id && e.type === 'api_key.expired');
  const first = await pollUntil(async () => {
    const ev = expiredOf(await auditEvents());
    return ev.length > 0 ? ev : undefined;
  }, { what: 'an api_key.expired event' });
  assert.equal(first.length, 1, JSON.stringify(first));
  assert.equal(first[0].actor, null, 'the system expired it: actor null');
  assert.equal(first[0].key_name, 'will expire');
  assert.equal(first[0].created_at, rfc3339(expiredAt), 'the event is dated at the expiry');
  assert.equal(expiredOf(await auditEvents()).length, 1, 'listing again does not duplicate it');
  assert.equal((await listKeys()).find((x) => x.id === k.key.id).status, 'expired');
  assert.equal(expiredOf(await auditEvents()).length, 1, 'listing keys does not duplicate it either');
});

test('a key revoked before its expiry does not also get an api_key.expired event', async () => {
  // Revoked keys past their expiry are not "expired" events: they ended by revocation.
  const rv = await ceo.createKey({ name: 'revoked, then past expiry', scopes: ['leads:read'], expires_at: rfc3339(nowS() + 86400) });
  assert.equal((await ceo.post(`/api/keys/${rv.key.id}/revoke`, {})).status, 200);
  // Simulate "revoked an hour ago, expiry reached a minute ago": move both back in time.
  await env.sql(`UPDATE api_keys SET revoked_at = revoked_at - 3600, expires_at = ${nowS() - 60} WHERE id = '${rv.key.id}'`);
  assert.equal((await listKeys()).find((x) => x.id === rv.key.id).status, 'revoked', 'it stays revoked');
  const evs = (await auditEvents()).filter((e) => e.key_id === rv.key.id).map((e) => e.type).sort();
  assert.deepEqual(evs, ['api_key.created', 'api_key.revoked']);
});

// ---------------------------------------------------------------------------
// Roles and isolation

test('an admin can do everything a CEO can', async () => {
  const s = admin.s;
  const c = await s.post('/api/keys', { name: 'by admin', scopes: ['leads:read'] });
  assert.equal(c.status, 201, c.text);
  assert.deepEqual(c.json.key.created_by, { id: admin.user.id, email: admin.user.email });
  assert.equal((await v1(c.json.secret)).status, 200);
  const list = await s.get('/api/keys');
  assert.equal(list.status, 200);
  assert.ok(list.json.data.some((k) => k.id === c.json.key.id));
  assert.ok(list.json.data.some((k) => k.created_by?.email === orgA.email), 'the admin sees the CEO\'s keys too');
  assert.equal((await s.get(`/api/keys/${c.json.key.id}/requests`)).status, 200);
  assert.equal((await s.get(`/api/keys/${c.json.key.id}/usage`)).status, 200);
  assert.equal((await s.get('/api/audit-events')).status, 200);
  const rot = await s.post(`/api/keys/${c.json.key.id}/rotate`, {});
  assert.equal(rot.status, 201, rot.text);
  const rv = await s.post(`/api/keys/${rot.json.key.id}/revoke`, {});
  assert.equal(rv.status, 200, rv.text);
  const me = await s.get('/api/session');
  assert.equal(me.json.user.role, 'admin');
});

test('a member gets 403 forbidden on every key endpoint but can read the session', async () => {
  const k = await ceo.createKey({ name: 'member target', scopes: ['leads:read'] });
  const s = member.s;
  const me = await s.get('/api/session');
  assert.equal(me.status, 200, me.text);
  assert.equal(me.json.user.role, 'member');
  assert.equal(me.json.organization.id, orgA.org);
  const cases = [
    ['GET /api/keys', () => s.get('/api/keys')],
    ['POST /api/keys', () => s.post('/api/keys', { name: 'by member', scopes: ['leads:read'] })],
    ['POST rotate', () => s.post(`/api/keys/${k.key.id}/rotate`, {})],
    ['POST revoke', () => s.post(`/api/keys/${k.key.id}/revoke`, {})],
    ['GET requests', () => s.get(`/api/keys/${k.key.id}/requests`)],
    ['GET usage', () => s.get(`/api/keys/${k.key.id}/usage`)],
    ['GET audit-events', () => s.get('/api/audit-events')],
  ];
  await checkAll(cases, ([what]) => what, async ([, call]) => {
    const r = await call();
    assertError(r, 403, 'forbidden');
    assert.ok(!('secret' in r.json));
    assertNoStore(r, '403');
  });
  const after = (await listKeys()).filter((x) => x.name === 'member target' || x.name === 'by member');
  assert.deepEqual(after.map((x) => [x.id, x.status]), [[k.key.id, 'active']], 'the member changed nothing');
  assert.equal((await v1(k.secret)).status, 200);
});

test('without a session every management endpoint is 401 unauthenticated', async () => {
  const k = await ceo.createKey({ name: 'anonymous target', scopes: ['leads:read'] });
  const cases = [
    ['GET /api/session', '/api/session', 'GET'],
    ['GET /api/keys', '/api/keys', 'GET'],
    ['POST /api/keys', '/api/keys', 'POST', { name: 'anon', scopes: ['leads:read'] }],
    ['POST rotate', `/api/keys/${k.key.id}/rotate`, 'POST', {}],
    ['POST revoke', `/api/keys/${k.key.id}/revoke`, 'POST', {}],
    ['GET requests', `/api/keys/${k.key.id}/requests`, 'GET'],
    ['GET usage', `/api/keys/${k.key.id}/usage`, 'GET'],
    ['GET audit-events', '/api/audit-events', 'GET'],
  ];
  await checkAll(cases, ([what]) => what, async ([, p, method, json]) => {
    const r = await portal.req(p, { method, json });
    assertError(r, 401, 'unauthenticated');
    assertNoStore(r, '401');
    // A Bearer API key is not a session.
    const b = await portal.req(p, { method, json, headers: { authorization: `Bearer ${k.secret}` } });
    assertError(b, 401, 'unauthenticated');
  });
  assert.equal((await listKeys()).find((x) => x.id === k.key.id).status, 'active');
});

test('organizations are isolated: org B sees none of org A\'s keys or events and cannot touch them', async () => {
  const a = await ceo.createKey({ name: 'A private', scopes: ['leads:read'] });
  assert.equal((await v1(a.secret)).status, 200);
  const b = await ceoB.createKey({ name: 'B own', scopes: ['leads:read'] });
  const aKeys = new Set((await listKeys(ceo)).map((k) => k.id));
  const bKeys = (await listKeys(ceoB)).map((k) => k.id);
  assert.ok(bKeys.includes(b.key.id));
  assert.deepEqual(bKeys.filter((id) => aKeys.has(id)), [], 'B lists none of A\'s keys');
  assert.ok(!aKeys.has(b.key.id), 'A does not list B\'s key');
  const bEvents = await auditEvents(ceoB);
  assert.ok(bEvents.some((e) => e.key_id === b.key.id), 'B sees its own events');
  assert.deepEqual(bEvents.filter((e) => aKeys.has(e.key_id)), [], 'B sees none of A\'s events');
  assert.ok(!(await auditEvents(ceo)).some((e) => e.key_id === b.key.id), 'A sees none of B\'s events');

  const cases = [
    ['rotate', () => ceoB.post(`/api/keys/${a.key.id}/rotate`, {})],
    ['revoke', () => ceoB.post(`/api/keys/${a.key.id}/revoke`, {})],
    ['requests', () => ceoB.get(`/api/keys/${a.key.id}/requests`)],
    ['usage', () => ceoB.get(`/api/keys/${a.key.id}/usage`)],
  ];
  await checkAll(cases, ([what]) => `B ${what} A's key`, async ([, call]) => {
    const r = await call();
    assertError(r, 404, 'not_found');
  });
  const still = (await listKeys(ceo)).find((k) => k.id === a.key.id);
  assert.equal(still.status, 'active', 'A\'s key is untouched');
  assert.equal(still.revoked_at, null);
  assert.equal((await v1(a.secret)).status, 200);
});

// ---------------------------------------------------------------------------

test('no secret issued through the API appears in the database files or the server output', async () => {
  const secrets = [...env.secrets];
  assert.ok(secrets.length >= 100, `the test collected the secrets it was issued (${secrets.length})`);
  for (const s of secrets) assert.match(s, KEY_RE);
  // SQLite: the data dir's files; PostgreSQL: a data-only dump of the database.
  const data = await env.dataSnapshot();
  assert.ok(data.some((d) => d.database), 'the database is scanned');
  const keyIds = (await listKeys()).map((k) => k.id);
  assert.ok(keyIds.length > 0 && data.some((d) => d.content.includes(keyIds[0])), 'the scanned data holds the keys (a key id is found)');
  assertNotInFiles([...data, server.stdoutPath, server.stderrPath], secrets, 'secret');
  assertNotInFiles([server.stdoutPath, server.stderrPath], [orgA.password, orgB.password, admin.user.password, member.user.password], 'password');
});
