// Timing and enumeration. A caller must learn nothing about which keys exist:
//   (a) a well-formed key (valid checksum) that was never issued,
//   (b) a key that starts with a real key's hint (dvs_live_ + its first 4
//       random characters, what lists show) with a different secret and a
//       valid checksum,
//   (c) a key with a bad checksum,
// all get the same status, the same body byte for byte and the same
// authentication headers, and (a) and (b) take the same time: the
// comparison is statistical (below). And the key is only ever read from
// `Authorization: Bearer`: never from the query string, a cookie, another
// header or a body, and a portal session does not open /v1.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  Env, Portal, RawConnection, rawExchange, rawGet, forgeValidKey, checksumOf, BASE62, assertNotInFiles,
} from './lib/harness.mjs';

const env = new Env('dvs-timing');
let server;
let K; // a real key's secret
let K2; // another real key's secret, only ever sent in places it must not be read from
let K3; // a third, sent in the path and as a parameter name
let sessionToken;
// Failed authentications count against a budget per client IP (1,200 a
// minute); every block of requests below uses a loopback source address of
// its own, so none is answered 429.
let nextAddress = 10;
const freshAddress = () => `127.0.0.${nextAddress++}`;

before(async () => {
  await env.migrate();
  const owner = await env.createOrgWithOwner({ name: 'Timing Org' });
  // A few keys, so a look-up is not in a one-row table.
  for (let i = 0; i < 5; i++) await env.createKey(owner.org, { name: `filler ${i}` });
  K = (await env.createKey(owner.org, { name: 'target', rateLimit: 100000 })).secret;
  K2 = (await env.createKey(owner.org, { name: 'second', rateLimit: 100000 })).secret;
  K3 = (await env.createKey(owner.org, { name: 'third', rateLimit: 100000 })).secret;
  server = await env.startServer({ extraArgs: ['--threads', '2'] });
  sessionToken = (await new Portal(env, server).session(owner.email, owner.password)).token;
});

after(async () => {
  await env.cleanup();
});

const random = (n) => Array.from(crypto.randomBytes(n), (b) => BASE62[b % 62]).join('');

/** (a) never issued, valid checksum. */
const unknownKey = () => forgeValidKey(random(32));
/** (b) K's hint (its first 4 random characters) + 28 other characters, valid checksum. */
const hintKey = () => {
  let r;
  do r = K.slice(9, 13) + random(28); while (r === K.slice(9, 41));
  return `dvs_live_${r}${checksumOf(r)}`;
};
/** (c) well-shaped, checksum wrong. */
const badChecksumKey = () => {
  const r = random(32);
  const good = checksumOf(r);
  let bad;
  do bad = random(6); while (bad === good);
  return `dvs_live_${r}${bad}`;
};

/** What must not differ between two 401s: everything but the request id and the per-IP counters. */
function fingerprint(res) {
  const names = [...res.headers.keys()].sort().join(',');
  return JSON.stringify({
    status: res.status,
    body: res.body.toString('latin1'),
    names,
    contentType: res.headers.get('content-type'),
    www: res.headers.get('www-authenticate'),
    limit: res.headers.get('x-ratelimit-limit'),
  });
}

// ---------------------------------------------------------------------------
// Statistics

function median(xs) {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Two-sided Mann-Whitney U test (normal approximation with tie correction): {z, p}. */
function mannWhitney(a, b) {
  const all = [...a.map((v) => [v, 0]), ...b.map((v) => [v, 1])].sort((x, y) => x[0] - y[0]);
  const n = all.length;
  let r1 = 0;
  let tieTerm = 0;
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && all[j + 1][0] === all[i][0]) j++;
    const rank = (i + j) / 2 + 1;
    const t = j - i + 1;
    tieTerm += t * t * t - t;
    for (let k = i; k <= j; k++) if (all[k][1] === 0) r1 += rank;
    i = j + 1;
  }
  const n1 = a.length;
  const n2 = b.length;
  const u1 = r1 - (n1 * (n1 + 1)) / 2;
  const mu = (n1 * n2) / 2;
  const sigma = Math.sqrt(((n1 * n2) / 12) * ((n + 1) - tieTerm / (n * (n - 1))));
  const z = sigma === 0 ? 0 : (u1 - mu) / sigma;
  return { z, p: erfc(Math.abs(z) / Math.SQRT2) };
}

/** erfc, Numerical Recipes' Chebyshev fit (relative error < 1.2e-7). */
function erfc(x) {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
    + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? r : 2 - r;
}

// The decision rule. A difference counts only when it is both
//   - statistically significant: two-sided Mann-Whitney p < 0.001, and
//   - material: the medians differ by at least 10% or by at least 20 µs;
// and the test fails only if that happens in at least 2 of 3 independent
// rounds, with the same sign. Why this is robust on a noisy machine: within a
// round, the order of (a) and (b) is randomized pair by pair, so scheduler
// noise, CPU frequency changes, GC and other processes fall on both groups
// alike and cannot create a difference, only widen both distributions (which
// makes the test less, not more, likely to flag). Under "no difference" the
// rank test's false-alarm rate is its nominal 0.1% per round whatever the
// noise, so two rounds agreeing by chance is about one in a million. This is a
// property of a comparison between two groups measured together, not a limit
// on how long anything may take.
const ALPHA_Z = 3.2905; // two-sided p = 0.001
const MIN_EFFECT_US = 20;
const MIN_EFFECT_REL = 0.10;
const ROUNDS = 3;
const PAIRS = 450; // per round: 900 failed authentications + 100 of (c), under the per-IP budget of 1,200

/** Compares samples (a) and (b) by the rule above: {ma, mb, delta, z, p, flagged}. */
function decide(a, b) {
  const ma = median(a);
  const mb = median(b);
  const { z, p } = mannWhitney(a, b);
  const delta = mb - ma;
  const material = Math.abs(delta) >= MIN_EFFECT_US || Math.abs(delta) >= MIN_EFFECT_REL * ma;
  return { ma, mb, delta, z, p, flagged: Math.abs(z) >= ALPHA_Z && material };
}

/** Times one request on a kept-alive connection: {us, res}. */
async function timed(conn, bytes) {
  const t0 = process.hrtime.bigint();
  const res = await conn.send(bytes);
  const t1 = process.hrtime.bigint();
  return { us: Number(t1 - t0) / 1000, res };
}

async function round(index) {
  const conn = await RawConnection.open(server.port, { localAddress: freshAddress() });
  try {
    const a = [];
    const b = [];
    const c = [];
    const prints = new Map(); // fingerprint -> count
    const see = (res, what) => {
      assert.equal(res.status, 401, `${what}: ${res.status} ${res.body}`);
      const f = fingerprint(res);
      prints.set(f, (prints.get(f) || 0) + 1);
    };
    // Warm up the connection, the page cache and the JIT on both sides.
    for (let i = 0; i < 40; i++) see((await timed(conn, rawGet('/v1/key', { key: i % 2 ? unknownKey() : hintKey() }))).res, 'warm-up');
    for (let i = 0; i < PAIRS; i++) {
      // Build both requests before timing either; random order within the pair.
      const ra = rawGet('/v1/key', { key: unknownKey() });
      const rb = rawGet('/v1/key', { key: hintKey() });
      const first = crypto.randomInt(2);
      for (const which of first ? [1, 0] : [0, 1]) {
        const r = await timed(conn, which ? rb : ra);
        see(r.res, which ? '(b) hint of a real key, other secret' : '(a) unknown key');
        (which ? b : a).push(r.us);
      }
      if (i % 4 === 0) {
        const r = await timed(conn, rawGet('/v1/key', { key: badChecksumKey() }));
        see(r.res, '(c) bad checksum');
        c.push(r.us);
      }
    }
    const d = decide(a, b);
    return { index, ...d, mc: median(c), controlZ: mannWhitney(a, c).z, prints };
  } finally {
    await conn.close();
  }
}

test('the decision rule: flags a 15 % shift buried in heavy-tailed noise, and not the same distribution', () => {
  // Synthetic samples shaped like loopback round trips on a busy machine:
  // about 100 µs plus exponential noise and rare 2 ms stalls.
  let seed = 7;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const sample = (shift) => Array.from({ length: PAIRS }, () => 100 + shift - 30 * Math.log(1 - rnd()) + (rnd() < 0.02 ? 2000 * rnd() : 0));
  assert.equal(decide(sample(0), sample(15)).flagged, true, 'a 15 µs (15 %) shift is detected');
  assert.equal(decide(sample(0), sample(-15)).flagged, true, 'in either direction');
  let falseAlarms = 0;
  for (let i = 0; i < 50; i++) if (decide(sample(0), sample(0)).flagged) falseAlarms++;
  assert.ok(falseAlarms <= 1, `no difference is flagged (at most by chance): ${falseAlarms} of 50`);
  assert.equal(decide(sample(0), sample(3)).flagged, false, 'a 3 µs (3 %) shift is below the material effect size');
});

test('unknown key, real hint with a wrong secret, bad checksum: same status, body and headers; (a) and (b) not distinguishable by timing', async (t) => {
  const rounds = [];
  const prints = new Map();
  for (let i = 0; i < ROUNDS; i++) {
    const r = await round(i);
    rounds.push(r);
    for (const [f, n] of r.prints) prints.set(f, (prints.get(f) || 0) + n);
    t.diagnostic(`round ${i}: median (a) ${r.ma.toFixed(1)} µs, (b) ${r.mb.toFixed(1)} µs, (b)-(a) ${r.delta.toFixed(1)} µs, `
      + `Mann-Whitney z ${r.z.toFixed(2)} p ${r.p.toExponential(2)}${r.flagged ? '  FLAGGED' : ''}; `
      + `control (c) bad checksum, no look-up: median ${r.mc.toFixed(1)} µs, z vs (a) ${r.controlZ.toFixed(2)}`);
  }
  assert.equal(prints.size, 1, `every 401 must be identical apart from the request id and the rate counters; saw ${prints.size} kinds:\n${[...prints.keys()].join('\n')}`);
  const [only] = prints.keys();
  const body = JSON.parse(JSON.parse(only).body);
  assert.equal(body.error.code, 'invalid_api_key');
  for (const sign of [1, -1]) {
    const agreeing = rounds.filter((r) => r.flagged && Math.sign(r.delta) === sign);
    assert.ok(agreeing.length < 2,
      `a known hint with a wrong secret is measurably ${sign > 0 ? 'slower' : 'faster'} than an unknown key in ${agreeing.length} of ${ROUNDS} rounds `
      + `(p < 0.001 and a median difference of at least ${MIN_EFFECT_US} µs or ${MIN_EFFECT_REL * 100}%): `
      + agreeing.map((r) => `round ${r.index}: ${r.delta.toFixed(1)} µs, z ${r.z.toFixed(2)}`).join('; '));
  }
});

// ---------------------------------------------------------------------------
// Where a key is read from.

/** `text` with K3 (whole, without its prefix, or its first 31 random characters) masked, for messages. */
const mask = (text) => text.replaceAll(K3.slice(9), '<key>').replaceAll(K3.slice(9, 40), '<key>');

async function exchange(bytes) {
  const r = await rawExchange(server.port, [bytes], { localAddress: freshAddress(), limitMs: 15000 });
  assert.equal(r.kind, 'response', `no answer: ${r.kind} ${r.text || r.error || ''}`);
  return r.res;
}

test('a key is accepted only from Authorization: Bearer, never from the query, a cookie, another header or a body', async () => {
  const reference = await exchange(rawGet('/v1/leads', { key: unknownKey(), close: true }));
  assert.equal(reference.status, 401);
  const refPrint = fingerprint(reference);
  // Sanity: the key itself works where it belongs.
  const okRes = await exchange(rawGet('/v1/leads', { key: K, close: true }));
  assert.equal(okRes.status, 200, `K in Authorization: Bearer: ${okRes.status} ${okRes.body}`);

  const basic = (u, p) => Buffer.from(`${u}:${p}`).toString('base64');
  const cases = [];
  for (const name of ['api_key', 'key', 'access_token', 'token', 'apikey', 'api-key', 'bearer', 'auth', 'authorization']) {
    cases.push([`?${name}=K on /v1/leads`, rawGet(`/v1/leads?${name}=${K}`, { close: true })]);
    cases.push([`?${name}=K on /v1/key`, rawGet(`/v1/key?${name}=${K}`, { close: true })]);
  }
  cases.push(['?access_token=Bearer%20K', rawGet(`/v1/leads?access_token=Bearer%20${K}`, { close: true })]);
  cases.push(['K as the path', rawGet(`/v1/${K}`, { close: true })]);
  for (const c of [`api_key=${K}`, `dvs_session=${K}`, `access_token=${K}`, `Authorization=Bearer ${K}`, `token=${K}`]) {
    cases.push([`Cookie: ${c.split('=')[0]}=K`, rawGet('/v1/leads', { headers: [`Cookie: ${c}`], close: true })]);
  }
  for (const h of ['X-API-Key', 'Api-Key', 'X-Auth-Token', 'X-Access-Token', 'Proxy-Authorization', 'X-Authorization']) {
    cases.push([`${h}: K`, rawGet('/v1/leads', { headers: [`${h}: ${K}`], close: true })]);
    cases.push([`${h}: Bearer K`, rawGet('/v1/leads', { headers: [`${h}: Bearer ${K}`], close: true })]);
  }
  for (const a of [K, `Basic ${basic(K, '')}`, `Basic ${basic('', K)}`, `Token ${K}`, `Bearer: ${K}`, `Bearer=${K}`, `Digest ${K}`]) {
    cases.push([`Authorization: ${a.replace(K, 'K').slice(0, 40)}`, rawGet('/v1/leads', { headers: [`Authorization: ${a}`], close: true })]);
  }
  const form = `api_key=${K}`;
  cases.push(['form body api_key=K', `POST /v1/leads HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\nConnection: close\r\n\r\n${form}`]);
  const json = JSON.stringify({ api_key: K });
  cases.push(['JSON body {"api_key":K}', `POST /v1/leads HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${json.length}\r\nConnection: close\r\n\r\n${json}`]);
  cases.push(['a signed-in portal session on /v1', rawGet('/v1/leads', { headers: [`Cookie: dvs_session=${sessionToken}`], close: true })]);

  const failures = [];
  for (const [label, bytes] of cases) {
    const res = await exchange(bytes);
    if (fingerprint(res) !== refPrint) failures.push(`${label}: ${res.status} ${res.body.toString('utf8').slice(0, 120)}`);
  }
  assert.deepEqual(failures, [], `each must be exactly the 401 an unknown key gets:\n${failures.join('\n')}`);
});

test('a key sent in the path or as a parameter name is not echoed back, with or without its prefix', async () => {
  // Clients get URLs wrong: a key pasted into the path, or without its
  // dvs_live_ prefix. The 38 characters after the prefix are the key (the
  // prefix is public), and the checksum identifies them as one.
  const random = K3.slice(9, 41);
  const halves = [random.slice(0, 16), random.slice(16)];
  const failures = [];
  for (const [label, target] of [
    ['/v1/leads/<key>', `/v1/leads/${K3}`],
    ['/v1/leads/<key without prefix>', `/v1/leads/${K3.slice(9)}`],
    ['/v1/<key without prefix>', `/v1/${K3.slice(9)}`],
    ['/<key without prefix>', `/${K3.slice(9)}`],
    ['/v1/leads?<key>=1', `/v1/leads?${K3}=1`],
    ['/v1/leads?<key without prefix>=1', `/v1/leads?${K3.slice(9)}=1`],
  ]) {
    const res = await exchange(rawGet(target, { key: K, close: true }));
    const text = res.body.toString('latin1');
    if (res.status < 400 || res.status > 499) failures.push(`${label}: status ${res.status}`);
    if (halves.some((h) => text.includes(h))) failures.push(`GET ${label} with a valid Bearer: ${res.status} echoes the key: ${mask(text).slice(0, 160)}`);
  }
  assert.deepEqual(failures, [], failures.join('\n'));
});

test('a key in the query next to a valid Bearer is refused and never stored', async () => {
  const res = await exchange(rawGet(`/v1/leads?api_key=${K2}`, { key: K, close: true }));
  assert.equal(res.status, 400, `${res.status} ${res.body}`);
  const body = JSON.parse(res.body.toString('utf8'));
  assert.equal(body.error.code, 'invalid_request');
  assert.ok(!res.body.toString('latin1').includes(K2.slice(9, 41)), 'the error does not echo the key');
  // SIGTERM flushes the request log; the second key must be nowhere at rest.
  const stopped = await server.stop('SIGTERM');
  assert.deepEqual(stopped, { code: 0, signal: null });
  const rows = await env.sql("SELECT path FROM request_log WHERE path LIKE '%leads%'");
  assert.ok(rows.length >= 1, 'the refused request was logged (so the check below looks at a real row)');
  const files = typeof env.dataSnapshot === 'function' ? await env.dataSnapshot() : env.dataFiles();
  assertNotInFiles([...files, server.stdoutPath, server.stderrPath], [K2], 'key sent in a query string');
});

test('a key sent in the path is not stored in the request log (which the portal shows to every admin)', async () => {
  assert.equal(server.running, false, 'the previous test stopped the server, flushing the request log');
  const rows = await env.sql("SELECT path FROM request_log");
  const random = K3.slice(9, 41);
  const stored = rows.map((r) => r.path).filter((p) => p.includes(random.slice(0, 16)) || p.includes(random.slice(16)));
  assert.deepEqual(stored.map(mask), [], 'request_log.path holds the key');
  const files = typeof env.dataSnapshot === 'function' ? await env.dataSnapshot() : env.dataFiles();
  assertNotInFiles([...files, server.stdoutPath, server.stderrPath], [K3], 'key sent in the path');
});
