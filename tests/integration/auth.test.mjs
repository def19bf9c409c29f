// Bearer authentication on /v1: the key format and checksum, every 401
// variant, scheme case, scopes (403), /v1/key, revocation, rotation, expiry.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import {
  Env, checkAll, crc32, base62, checksumOf, forgeValidKey, hasValidChecksum, KEY_RE, randomBase62,
  assertApiKeyShape, assertInvalidKey, assertError, assertJsonContentType, assertRequestId,
  rateLimitHeaders,
} from './lib/harness.mjs';

const env = new Env('dvs-auth');
let server;
let org;
let otherOrg;
let full; // leads:read + invoices:read
let leadsOnly;
let invoicesOnly;

before(async () => {
  await env.migrate();
  org = await env.createOrg('Auth Org');
  otherOrg = await env.createOrg('Other Org');
  full = await env.createKey(org, { name: 'full access', scopes: ['leads:read', 'invoices:read'] });
  leadsOnly = await env.createKey(org, { name: 'leads only', scopes: ['leads:read'] });
  invoicesOnly = await env.createKey(org, { name: 'invoices only', scopes: ['invoices:read'] });
  server = await env.startServer();
});

after(async () => {
  await env.cleanup();
});

test('the test\'s own CRC-32 and base62 match the reference values', () => {
  assert.equal(crc32('123456789'), 0xcbf43926, 'CRC-32 check value');
  if (typeof zlib.crc32 === 'function') {
    const s = randomBase62(32);
    assert.equal(crc32(s), zlib.crc32(s) >>> 0, 'agrees with zlib.crc32');
  }
  assert.equal(base62(0), '000000');
  assert.equal(base62(61), '00000z');
  assert.equal(base62(62), '000010');
  assert.equal(base62(0xffffffff), '4gfFC3');
});

test('issued secrets are dvs_live_ + 32 base62 + a CRC-32 base62 checksum', () => {
  for (const k of [full, leadsOnly, invoicesOnly]) {
    assert.equal(k.secret.length, 47);
    assert.match(k.secret, KEY_RE);
    const random = k.secret.slice(9, 41);
    assert.equal(k.secret.slice(41), checksumOf(random), 'checksum = base62(crc32(random part)), 6 chars');
  }
});

test('GET /v1/key returns the calling key with org_id and never the secret', async () => {
  const r = await server.req('/v1/key', { key: full.secret });
  assert.equal(r.status, 200, r.text);
  assertJsonContentType(r);
  assertRequestId(r);
  rateLimitHeaders(r);
  assertApiKeyShape(r.json, { extra: ['org_id'] });
  assert.equal(r.json.id, full.id);
  assert.equal(r.json.org_id, org);
  assert.equal(r.json.name, 'full access');
  assert.equal(r.json.hint, full.secret.slice(0, 13));
  assert.deepEqual([...r.json.scopes].sort(), ['invoices:read', 'leads:read']);
  assert.equal(r.json.status, 'active');
  assert.equal(r.json.rate_limit_per_minute, 120);
  assert.equal(r.json.revoked_at, null);
  assert.equal(r.json.expires_at, null);
  assert.ok(!r.text.includes(full.secret.slice(9)), 'the body must not contain the secret');
  assert.ok(!r.text.includes(full.secret.slice(13, 41)), 'the body must not contain the random part');
});

test('GET /v1/key needs no scope and reports the key\'s own scopes', async () => {
  const a = await server.req('/v1/key', { key: leadsOnly.secret });
  assert.equal(a.status, 200, a.text);
  assert.equal(a.json.id, leadsOnly.id);
  assert.deepEqual(a.json.scopes, ['leads:read']);
  const b = await server.req('/v1/key', { key: invoicesOnly.secret });
  assert.equal(b.status, 200, b.text);
  assert.equal(b.json.id, invoicesOnly.id);
  assert.deepEqual(b.json.scopes, ['invoices:read']);
});

test('a key of another organization reports that organization', async () => {
  const k = await env.createKey(otherOrg, { name: 'other', scopes: ['leads:read'] });
  const r = await server.req('/v1/key', { key: k.secret });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.org_id, otherOrg);
  assert.equal(r.json.id, k.id);
});

test('the Bearer scheme is case-insensitive', async () => {
  for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
    const r = await server.req('/v1/key', { auth: `${scheme} ${full.secret}` });
    assert.equal(r.status, 200, `scheme "${scheme}": ${r.status} ${r.text}`);
    assert.equal(r.json.id, full.id);
  }
});

test('missing, malformed and wrong keys get 401 invalid_api_key with WWW-Authenticate: Bearer', async () => {
  const k = full.secret;
  const random = k.slice(9, 41);
  const sum = k.slice(41);
  const otherChar = (c) => (c === 'A' ? 'B' : 'A');
  const wrongSum = sum.slice(0, 5) + otherChar(sum[5]);
  const wrongRandom = otherChar(random[0]) + random.slice(1);
  const badAlphabet = random.slice(0, 20) + '-' + random.slice(21);
  const forged = forgeValidKey();
  assert.ok(hasValidChecksum(forged), 'the forged key has a valid checksum');
  assert.ok(!hasValidChecksum(`dvs_live_${random}${wrongSum}`), 'the mutated checksum is invalid');
  assert.ok(!hasValidChecksum(`dvs_live_${wrongRandom}${sum}`), 'the mutated random part is invalid');

  const cases = [
    [undefined, 'no Authorization header', null],
    [`Token ${k}`, 'Token scheme', k],
    [`Basic ${Buffer.from(`${k}:`).toString('base64')}`, 'Basic scheme', k],
    ['Bearer', 'Bearer without a token', null],
    [`Bearer ${forged}`, 'valid checksum, unknown key', forged],
    [`Bearer dvs_live_${random}${wrongSum}`, 'wrong checksum', random],
    [`Bearer dvs_live_${wrongRandom}${sum}`, 'random part changed, checksum kept', wrongRandom],
    [`Bearer dvs_test_${random}${sum}`, 'wrong prefix', random],
    [`Bearer DVS_LIVE_${random}${sum}`, 'upper-case prefix', random],
    [`Bearer ${k.slice(0, 46)}`, 'one character short', k.slice(9, 46)],
    [`Bearer ${k}a`, 'one character long', k],
    [`Bearer dvs_live_${badAlphabet}${sum}`, 'character outside base62', badAlphabet],
    [`Bearer ${k.toLowerCase()}`, 'lower-cased key', k.toLowerCase().slice(9)],
    [`Bearer ${k} extra`, 'trailing garbage after the key', k],
    [`Bearer ${k.slice(9)}`, 'no prefix', k.slice(9)],
  ];
  const bodies = new Set();
  await checkAll(cases, ([, what]) => what, async ([auth, , secretPart]) => {
    const r = await server.req('/v1/key', { auth });
    assertInvalidKey(r, secretPart);
    bodies.add(r.text);
  });
  // One body for every refusal, byte for byte: it never tells which (and it
  // is written once, then shared).
  assert.equal(bodies.size, 1, `one 401 body for every refused key: ${[...bodies].join(' | ')}`);
});

test('authentication comes before routing: no key on unknown paths and wrong methods is 401', async () => {
  assertInvalidKey(await server.req('/v1/does-not-exist'));
  assertInvalidKey(await server.req('/v1/leads', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }));
  assertInvalidKey(await server.req('/v1/leads/lead_whatever'));
  assertInvalidKey(await server.req('/v1/invoices', { key: forgeValidKey() }));
});

test('a key without the scope gets 403 insufficient_scope naming the scope', async () => {
  const cases = [
    [leadsOnly, '/v1/invoices', 'invoices:read'],
    [leadsOnly, '/v1/invoices/inv_doesnotexist00000000', 'invoices:read'],
    [invoicesOnly, '/v1/leads', 'leads:read'],
    [invoicesOnly, '/v1/leads/lead_doesnotexist0000000', 'leads:read'],
    [invoicesOnly, '/v1/leads?limit=5', 'leads:read'],
  ];
  for (const [k, p, scope] of cases) {
    const r = await server.req(p, { key: k.secret });
    const err = assertError(r, 403, 'insufficient_scope');
    assert.equal(err.required_scope, scope, `${p}: error.required_scope`);
    rateLimitHeaders(r);
  }
  // ...and the scopes it has work.
  assert.equal((await server.req('/v1/leads', { key: leadsOnly.secret })).status, 200);
  assert.equal((await server.req('/v1/invoices', { key: invoicesOnly.secret })).status, 200);
  assert.equal((await server.req('/v1/leads', { key: full.secret })).status, 200);
  assert.equal((await server.req('/v1/invoices', { key: full.secret })).status, 200);
});

test('revocation takes effect on the very next request', async () => {
  const k = await env.createKey(org, { name: 'to revoke' });
  assert.equal((await server.req('/v1/leads', { key: k.secret })).status, 200);
  await env.revokeKey(k.id);
  assertInvalidKey(await server.req('/v1/leads', { key: k.secret }), k.secret);
  assertInvalidKey(await server.req('/v1/key', { key: k.secret }), k.secret);
  // Other keys are unaffected.
  assert.equal((await server.req('/v1/key', { key: full.secret })).status, 200);
});

test('rotation: the new secret works at once, the old one stops at once', async () => {
  const old = await env.createKey(org, { name: 'rotating', scopes: ['leads:read'], rateLimit: 50 });
  assert.equal((await server.req('/v1/key', { key: old.secret })).status, 200);
  const neu = await env.rotateKey(old.id);
  assert.ok(hasValidChecksum(neu.secret));
  assertInvalidKey(await server.req('/v1/key', { key: old.secret }), old.secret);
  const r = await server.req('/v1/key', { key: neu.secret });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.id, neu.id);
  assert.equal(r.json.name, 'rotating');
  assert.deepEqual(r.json.scopes, ['leads:read']);
  assert.equal(r.json.rate_limit_per_minute, 50);
  assert.equal(r.json.hint, neu.secret.slice(0, 13));
  assert.equal((await server.req('/v1/leads', { key: neu.secret })).status, 200);
});

test('an expired key gets 401 and is listed as expired', async () => {
  const k = await env.createKey(org, { name: 'expiring', expiresIn: 30 });
  const before = await server.req('/v1/key', { key: k.secret });
  assert.equal(before.status, 200, before.text);
  assert.ok(before.json.expires_at, 'expires_at is set');
  const days = (Date.parse(before.json.expires_at) - Date.parse(before.json.created_at)) / 86400e3;
  assert.ok(Math.abs(days - 30) < 0.001, `expires 30 days after creation (got ${days})`);

  const past = Math.floor(Date.now() / 1000) - 3600;
  await env.sql(`UPDATE api_keys SET expires_at = ${past} WHERE id = '${k.id}'`);
  const check = await env.sql(`SELECT expires_at FROM api_keys WHERE id = '${k.id}'`);
  assert.deepEqual(check, [{ expires_at: past }], 'the test moved expires_at into the past');

  assertInvalidKey(await server.req('/v1/key', { key: k.secret }), k.secret);
  assertInvalidKey(await server.req('/v1/leads', { key: k.secret }), k.secret);

  const item = (await env.listKeys(org)).data.find((x) => x.id === k.id);
  assert.ok(item, 'the expired key is listed');
  assert.equal(item.status, 'expired');
  assert.equal(Date.parse(item.expires_at) / 1000, past);
});
