// Management API (contract section 6), the session half: sign-in and its
// cookie, sign-out, idle and absolute timeouts (by editing the sessions row),
// sign-in throttling, Content-Type and Origin checks on state-changing
// requests, /api routing errors, no-store, and the portal page's headers.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  Env, Portal, sessionSetCookie, SESSION_TOKEN_RE, assertError, assertJsonContentType, assertRequestId,
  assertNotInFiles, containsBytes, pollUntil, sortedKeys, checkAll, randomBase62,
} from './lib/harness.mjs';

const env = new Env('dvs-api-session');
let server;
let portal;
let owner; // {org, email, password}: the CEO
const passwords = new Set(); // every password sent in this file, right or wrong
const tokens = new Set(); // every session token issued in this file

before(async () => {
  await env.migrate();
  owner = await env.createOrgWithOwner({ name: 'Session Org', email: 'ceo@session.example', password: 'ceo-Pa55word!' });
  passwords.add(owner.password);
  server = await env.startServer();
  portal = new Portal(env, server);
});

after(async () => {
  await env.cleanup();
});

/** A fresh user of the org (so a test can edit its sessions rows alone). */
async function newUser(role = 'admin') {
  const u = await env.addUserWithPassword(owner.org, role);
  passwords.add(u.password);
  return u;
}

async function signedIn(user) {
  const s = await portal.session(user.email, user.password);
  tokens.add(s.token);
  return s;
}

function assertNoStore(res, what) {
  assert.equal(res.headers.get('cache-control'), 'no-store', `${what}: Cache-Control must be no-store`);
}

function assertSessionBody(body, user, orgName) {
  assert.deepEqual(sortedKeys(body), ['organization', 'user']);
  assert.deepEqual(sortedKeys(body.user), ['email', 'id', 'role']);
  assert.deepEqual(sortedKeys(body.organization), ['id', 'name']);
  assert.match(body.user.id, /^usr_[0-9A-Za-z_]+$/);
  assert.equal(body.user.email, user.email);
  assert.equal(body.user.role, user.role ?? 'ceo');
  assert.equal(body.organization.id, owner.org);
  assert.equal(body.organization.name, orgName);
}

test('POST /api/session signs in: 200 with user and organization, and an HttpOnly SameSite=Strict cookie', async () => {
  const { res, token } = await portal.signIn(owner.email, owner.password);
  assert.equal(res.status, 200, res.text);
  tokens.add(token);
  assertJsonContentType(res);
  assertRequestId(res);
  assertNoStore(res, 'sign-in');
  assertSessionBody(res.json, owner, 'Session Org');
  assert.equal(res.json.user.role, 'ceo');

  const c = sessionSetCookie(res);
  assert.ok(c, `Set-Cookie dvs_session is missing: ${res.headers.get('set-cookie')}`);
  assert.match(c.value, SESSION_TOKEN_RE, `cookie value: ${c.raw}`);
  assert.equal(c.attrs['max-age'], '43200', `Max-Age is 12 h: ${c.raw}`);
  assert.equal(c.attrs.path, '/', c.raw);
  assert.equal(c.attrs.httponly, true, `HttpOnly: ${c.raw}`);
  assert.equal(String(c.attrs.samesite).toLowerCase(), 'strict', `SameSite=Strict: ${c.raw}`);
  assert.equal(c.attrs.secure, undefined, `no Secure when serving plain HTTP on loopback: ${c.raw}`);
  assert.equal(c.attrs.domain, undefined, `no Domain attribute: ${c.raw}`);
  assert.ok(!res.text.includes(c.value), 'the token is not in the body');
});

test('wrong password and unknown email both get 401 unauthenticated with one message, no cookie, and a log line', async () => {
  const wrongPw = `wrong-${randomBase62(12)}`;
  const ghost = `ghost-${randomBase62(6).toLowerCase()}@session.example`;
  const ghostPw = `ghostpw-${randomBase62(12)}`;
  passwords.add(wrongPw);
  passwords.add(ghostPw);
  const a = await portal.signIn(owner.email, wrongPw);
  const b = await portal.signIn(ghost, ghostPw);
  for (const [r, what] of [[a.res, 'wrong password'], [b.res, 'unknown email']]) {
    const e = assertError(r, 401, 'unauthenticated');
    assert.equal(e.message, 'Incorrect email or password.', what);
    assert.equal(sessionSetCookie(r), null, `${what}: no session cookie`);
    assertNoStore(r, what);
  }
  assert.equal(a.res.text.replace(/req_\S+/g, ''), b.res.text.replace(/req_\S+/g, ''), 'the two bodies are the same');

  const lines = await pollUntil(() => {
    const l = server.stderr().split('\n').filter((x) => /sign-in failed/i.test(x));
    return l.some((x) => x.includes(owner.email)) && l.some((x) => x.includes(ghost)) ? l : undefined;
  }, { what: () => `"sign-in failed" lines for ${owner.email} and ${ghost} on stderr: ${server.stderr().slice(-2000)}` });
  assert.ok(lines.length >= 2);
});

test('every sign-in gets a new session id and both sessions stay valid', async () => {
  const u = await newUser('admin');
  const s1 = await signedIn(u);
  const s2 = await signedIn(u);
  assert.notEqual(s1.token, s2.token, 'a new session id at every sign-in');
  for (const s of [s1, s2]) {
    const r = await s.get('/api/session');
    assert.equal(r.status, 200, r.text);
    assertNoStore(r, 'GET /api/session');
    assert.deepEqual(r.json, s.me, 'GET /api/session returns what sign-in returned');
    assertSessionBody(r.json, u, 'Session Org');
  }
  const rows = await env.sql({
    sqlite: `SELECT typeof(token_hash) AS t, length(token_hash) AS n FROM sessions WHERE user_id = '${s1.me.user.id}'`,
    postgres: `SELECT pg_typeof(token_hash)::text AS t, length(token_hash) AS n FROM sessions WHERE user_id = '${s1.me.user.id}'`,
  });
  assert.equal(rows.length, 2, 'two sessions rows for the user');
  const binary = env.dbKind === 'postgres' ? 'bytea' : 'blob';
  for (const row of rows) assert.deepEqual(row, { t: binary, n: 32 }, `token_hash is a 32-byte (SHA-256) ${binary}`);
});

test('the session token and the password are not stored; the password hash is Argon2id', async () => {
  const u = await newUser('member');
  const s = await signedIn(u);
  const rows = await env.sql({
    sqlite: `SELECT hex(token_hash) AS h FROM sessions WHERE user_id = '${s.me.user.id}'`,
    postgres: `SELECT upper(encode(token_hash, 'hex')) AS h FROM sessions WHERE user_id = '${s.me.user.id}'`,
  });
  assert.equal(rows.length, 1);
  const raw = Buffer.from(s.token, 'base64url');
  assert.notEqual(rows[0].h, raw.toString('hex').toUpperCase(), 'token_hash is not the raw token');
  // SQLite: the data dir's files; PostgreSQL: a data-only dump (bytea as hex, which containsBytes also finds).
  const data = await env.dataSnapshot();
  assert.ok(data.some((d) => d.database), 'the database is scanned');
  assert.ok(data.some((d) => d.content.includes(s.me.user.id)), 'the scanned data holds the user\'s rows');
  const found = [];
  for (const { name, content } of data) {
    if (containsBytes(content, Buffer.from(s.token, 'latin1'))) found.push(`${name}: the cookie value`);
    if (raw.length >= 16 && containsBytes(content, raw)) found.push(`${name}: the decoded token bytes`);
    if (containsBytes(content, Buffer.from(u.password, 'utf8'))) found.push(`${name}: the password`);
  }
  assert.deepEqual(found, []);
  const pw = await env.sql(`SELECT password_hash FROM users WHERE id = '${s.me.user.id}'`);
  assert.match(pw[0].password_hash, /^\$argon2id\$/, 'passwords are stored with Argon2id (PHC string)');
});

test('GET /api/session without a valid session is 401 unauthenticated', async () => {
  const known = (await signedIn(owner)).token;
  const cases = [
    ['no cookie', null],
    ['a well-formed token the server never issued', crypto.randomBytes(32).toString('base64url')],
    ['an empty cookie', ''],
    ['garbage', 'not-a-token'],
    ['a valid token cut short', known.slice(0, 42)],
    ['a valid token with its last character changed', known.slice(0, 42) + (known[42] === 'A' ? 'B' : 'A')],
    ['a valid token with a character appended', `${known}A`],
  ];
  assert.equal((await portal.req('/api/session', { token: known })).status, 200, 'the unmodified token is valid');
  await checkAll(cases, ([what]) => what, async ([, token]) => {
    const r = await portal.req('/api/session', { token });
    assertError(r, 401, 'unauthenticated');
    assertNoStore(r, 'GET /api/session 401');
  });
});

test('DELETE /api/session signs out: 204, the cookie is cleared, and the old cookie is refused by the server', async () => {
  const u = await newUser('admin');
  const s = await signedIn(u);
  const other = await signedIn(u);
  assert.equal((await s.get('/api/keys')).status, 200);
  const r = await s.del('/api/session');
  assert.equal(r.status, 204, r.text);
  assert.equal(r.text, '', '204 has no body');
  assertNoStore(r, 'DELETE /api/session');
  const c = sessionSetCookie(r);
  assert.ok(c, `sign-out must clear the cookie: ${r.headers.get('set-cookie')}`);
  assert.equal(c.value, '');
  assert.equal(c.attrs['max-age'], '0', c.raw);
  assert.equal(c.attrs.path, '/', c.raw);
  assertError(await s.get('/api/session'), 401, 'unauthenticated');
  assertError(await s.get('/api/keys'), 401, 'unauthenticated');
  assertError(await s.post('/api/keys', { name: 'after sign-out', scopes: ['leads:read'] }), 401, 'unauthenticated');
  const left = await env.sql(`SELECT count(*) AS n FROM sessions WHERE user_id = '${s.me.user.id}'`);
  assert.equal(left[0].n, 1, 'the signed-out session row is gone, the other one stays');
  assert.equal((await other.get('/api/session')).status, 200, 'another session of the same user is not ended');
});

test('a session idle for over 30 minutes is refused', async () => {
  const u = await newUser('admin');
  const s = await signedIn(u);
  assert.equal((await s.get('/api/session')).status, 200);
  await env.sql(`UPDATE sessions SET last_seen_at = last_seen_at - 3600 WHERE user_id = '${s.me.user.id}'`);
  assertError(await s.get('/api/session'), 401, 'unauthenticated');
  assertError(await s.get('/api/keys'), 401, 'unauthenticated');
});

test('activity keeps a session alive: two 25-minute gaps with a request between stay signed in', async () => {
  const u = await newUser('admin');
  const s = await signedIn(u);
  const idle = (sec) => env.sql(`UPDATE sessions SET last_seen_at = last_seen_at - ${sec} WHERE user_id = '${s.me.user.id}'`);
  await idle(1500);
  assert.equal((await s.get('/api/session')).status, 200, '25 minutes idle is within the idle timeout');
  await idle(1500);
  const r = await s.get('/api/keys');
  assert.equal(r.status, 200, `the request after the first gap must have renewed the idle timer: ${r.text}`);
  await idle(1860);
  assertError(await s.get('/api/session'), 401, 'unauthenticated');
});

test('a session older than 12 hours is refused even when active', async () => {
  const u = await newUser('admin');
  const young = await signedIn(u);
  await env.sql(`UPDATE sessions SET created_at = created_at - 11 * 3600 WHERE user_id = '${young.me.user.id}'`);
  assert.equal((await young.get('/api/session')).status, 200, 'an 11-hour-old active session is valid');
  await env.sql(`UPDATE sessions SET created_at = created_at - 2 * 3600 WHERE user_id = '${young.me.user.id}'`);
  const r = await young.get('/api/session');
  assertError(r, 401, 'unauthenticated');
  assertError(await young.get('/api/keys'), 401, 'unauthenticated');
});

test('state-changing requests must be application/json (a charset is allowed), else 415', async () => {
  const s = await signedIn(owner);
  const bad = [
    ['text/plain', 'text/plain'],
    ['text/plain;charset=UTF-8', 'text/plain;charset=UTF-8'],
    ['form', 'application/x-www-form-urlencoded'],
    ['multipart', 'multipart/form-data; boundary=x'],
    ['no Content-Type', null],
    ['application/jsonx', 'application/jsonx'],
    ['application/json-patch+json', 'application/json-patch+json'],
  ];
  const keyBody = JSON.stringify({ name: 'should not exist', scopes: ['leads:read'] });
  const k = await s.createKey({ name: 'content-type target', scopes: ['leads:read'] });
  await checkAll(bad, ([what]) => what, async ([, ct]) => {
    const signIn = await portal.req('/api/session', { method: 'POST', contentType: ct, body: JSON.stringify({ email: owner.email, password: owner.password }) });
    assertError(signIn, 415, 'unsupported_media_type');
    assert.equal(sessionSetCookie(signIn), null, 'no session from a refused sign-in');
    assertNoStore(signIn, 'POST /api/session 415');
    assertError(await s.req('/api/keys', { method: 'POST', contentType: ct, body: keyBody }), 415, 'unsupported_media_type');
    assertError(await s.req(`/api/keys/${k.key.id}/revoke`, { method: 'POST', contentType: ct, body: '{}' }), 415, 'unsupported_media_type');
    assertError(await s.req(`/api/keys/${k.key.id}/rotate`, { method: 'POST', contentType: ct, body: '{}' }), 415, 'unsupported_media_type');
    assertError(await s.req('/api/session', { method: 'DELETE', contentType: ct }), 415, 'unsupported_media_type');
  });
  const list = await s.get('/api/keys');
  assert.equal(list.status, 200);
  assert.ok(!list.json.data.some((x) => x.name === 'should not exist'), 'no key was created by a refused request');
  const target = list.json.data.filter((x) => x.name === 'content-type target');
  assert.equal(target.length, 1, 'the target key was not rotated');
  assert.equal(target[0].status, 'active', 'the target key was not revoked');
  assert.equal((await s.get('/api/session')).status, 200, 'the session was not ended by a refused DELETE');

  for (const ct of ['application/json; charset=utf-8', 'application/json;charset=UTF-8', 'Application/JSON']) {
    const r = await s.req('/api/keys', { method: 'POST', contentType: ct, body: JSON.stringify({ name: `ct ${ct}`, scopes: ['leads:read'] }) });
    assert.equal(r.status, 201, `Content-Type "${ct}": ${r.status} ${r.text}`);
    const si = await portal.req('/api/session', { method: 'POST', contentType: ct, body: JSON.stringify({ email: owner.email, password: owner.password }) });
    assert.equal(si.status, 200, `sign-in with Content-Type "${ct}": ${si.status} ${si.text}`);
    tokens.add(sessionSetCookie(si).value);
  }
});

test('a cross-origin Origin on a state-changing request is 403 forbidden; the same origin is allowed', async () => {
  const s = await signedIn(owner);
  const port = server.port;
  const k = await s.createKey({ name: 'origin target', scopes: ['leads:read'] });
  const bad = ['http://evil.example', 'null', `http://localhost:${port}`, `http://127.0.0.1:${port + 1}`, `http://127.0.0.1`, `http://127.0.0.1:${port}.evil.example`];
  await checkAll(bad, (o) => `Origin: ${o}`, async (origin) => {
    const si = await portal.signIn(owner.email, owner.password, { origin });
    assertError(si.res, 403, 'forbidden');
    assert.equal(sessionSetCookie(si.res), null, 'no session from a cross-origin sign-in');
    assertError(await s.post('/api/keys', { name: 'cross-origin', scopes: ['leads:read'] }, { origin }), 403, 'forbidden');
    assertError(await s.post(`/api/keys/${k.key.id}/revoke`, {}, { origin }), 403, 'forbidden');
    assertError(await s.post(`/api/keys/${k.key.id}/rotate`, {}, { origin }), 403, 'forbidden');
    assertError(await s.del('/api/session', { origin }), 403, 'forbidden');
  });
  const list = await s.get('/api/keys');
  assert.ok(!list.json.data.some((x) => x.name === 'cross-origin'), 'no key was created cross-origin');
  const target = list.json.data.filter((x) => x.name === 'origin target');
  assert.deepEqual(target.map((x) => x.status), ['active'], 'the target key was neither rotated nor revoked');
  assert.equal((await s.get('/api/session')).status, 200, 'the session survived the cross-origin DELETE');

  const same = `http://127.0.0.1:${port}`;
  const r = await s.post('/api/keys', { name: 'same origin', scopes: ['leads:read'] }, { origin: same });
  assert.equal(r.status, 201, `Origin ${same}: ${r.status} ${r.text}`);
  const si = await portal.signIn(owner.email, owner.password, { origin: same });
  assert.equal(si.res.status, 200, si.res.text);
  tokens.add(si.token);
  // A GET is not state-changing: a foreign Origin does not block it.
  assert.equal((await s.get('/api/session', { origin: 'http://evil.example' })).status, 200);
});

test('every /api response is Cache-Control: no-store, errors included', async () => {
  const s = await signedIn(owner);
  const created = await s.post('/api/keys', { name: 'no-store', scopes: ['leads:read'] });
  const cases = [
    ['201 POST /api/keys (carries a secret)', created],
    ['200 GET /api/keys', await s.get('/api/keys')],
    ['200 GET /api/audit-events', await s.get('/api/audit-events')],
    ['201 rotate (carries a secret)', await s.post(`/api/keys/${created.json.key.id}/rotate`, {})],
    ['401 GET /api/keys', await portal.req('/api/keys')],
    ['404 /api/nope', await s.get('/api/nope')],
    ['405 PUT /api/keys', await s.req('/api/keys', { method: 'PUT', json: {} })],
    ['415 POST /api/keys', await s.req('/api/keys', { method: 'POST', contentType: 'text/plain', body: '{}' })],
    ['400 POST /api/keys', await s.post('/api/keys', { name: '' })],
  ];
  assert.equal(cases[0][1].status, 201);
  assert.equal(cases[3][1].status, 201);
  await checkAll(cases, ([what]) => what, async ([what, r]) => assertNoStore(r, what));
});

test('unknown /api paths are 404 JSON; a known path with another method is 405 with Allow', async () => {
  const s = await signedIn(owner);
  const k = await s.createKey({ name: 'routes', scopes: ['leads:read'] });
  const id = k.key.id;
  const notFound = ['/api/nope', '/api', '/api/', '/api/keys/', `/api/keys/${id}`, `/api/keys/${id}/bogus`, '/api/session/x', '/api/audit-events/x', `/api/keys/${id}/rotate/x`];
  await checkAll(notFound, (p) => `GET ${p}`, async (p) => {
    const r = await s.get(p);
    assertError(r, 404, 'not_found');
  });
  const allowSet = (r) => (r.headers.get('allow') || '').split(',').map((x) => x.trim()).filter(Boolean).sort();
  const wrong = [
    ['PUT', '/api/keys', ['GET', 'POST']],
    ['DELETE', '/api/keys', ['GET', 'POST']],
    ['PATCH', '/api/keys', ['GET', 'POST']],
    ['GET', `/api/keys/${id}/rotate`, ['POST']],
    ['GET', `/api/keys/${id}/revoke`, ['POST']],
    ['DELETE', `/api/keys/${id}/revoke`, ['POST']],
    ['POST', `/api/keys/${id}/requests`, ['GET']],
    ['POST', `/api/keys/${id}/usage`, ['GET']],
    ['POST', '/api/audit-events', ['GET']],
    ['PUT', '/api/session', ['DELETE', 'GET', 'POST']],
  ];
  await checkAll(wrong, ([m, p]) => `${m} ${p}`, async ([method, p, allow]) => {
    const r = await s.req(p, { method, json: method === 'GET' ? undefined : {} });
    assertError(r, 405, 'method_not_allowed');
    assert.deepEqual(allowSet(r), allow, `Allow: ${r.headers.get('allow')}`);
  });
  const put = await s.req('/api/keys', { method: 'PUT', json: {} });
  assert.equal(put.headers.get('allow'), 'GET, POST');
});

test('a body over 1 MiB to /api is 413 payload_too_large', async () => {
  const s = await signedIn(owner);
  const size = 1024 * 1024 + 1024;
  for (const p of ['/api/keys', '/api/session']) {
    const r = await server.raw(
      `POST ${p} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nCookie: dvs_session=${s.token}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`,
      { bodySize: size },
    );
    assertError(r, 413, 'payload_too_large');
  }
});

test('GET / serves the portal with a strict CSP and framing, sniffing and referrer protections', async () => {
  const r = await server.req('/');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') || '', /^text\/html\b/i);
  const csp = r.headers.get('content-security-policy') || '';
  assert.match(csp, /(^|;)\s*script-src 'self'(\s*;|\s*$)/, `CSP script-src 'self': ${csp}`);
  assert.ok(!/unsafe-inline/i.test(csp), `no 'unsafe-inline' in the CSP: ${csp}`);
  assert.ok(!/unsafe-eval/i.test(csp), `no 'unsafe-eval' in the CSP: ${csp}`);
  assert.equal(r.headers.get('x-frame-options'), 'DENY');
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
  assert.match(r.text, /<html/i);
  // With script-src 'self' an inline script would not run: every script must have a src, and it must load.
  const scripts = [...r.text.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
  assert.ok(scripts.length >= 1, 'the page loads a script');
  for (const [, attrs, inner] of scripts) {
    assert.equal(inner.trim(), '', `no inline script: ${inner.slice(0, 80)}`);
    const m = attrs.match(/\bsrc\s*=\s*"([^"]+)"/i);
    assert.ok(m, `script without src: ${attrs}`);
    const src = new URL(m[1], `${server.base}/`);
    assert.equal(src.origin, server.base, `scripts come from the same origin: ${m[1]}`);
    const js = await server.req(src.pathname);
    assert.equal(js.status, 200, `GET ${src.pathname}: ${js.status}`);
    assert.match(js.headers.get('content-type') || '', /javascript/i, `${src.pathname} Content-Type`);
    assert.equal(js.headers.get('x-content-type-options'), 'nosniff');
    assert.match(js.headers.get('content-security-policy') || '', /script-src 'self'/, `${src.pathname} carries the CSP too`);
  }
  assert.ok(!/\son[a-z]+\s*=/i.test(r.text), 'no inline event handler attributes');
});

test('only / serves the page: /assets/index.html and unknown assets are 404 JSON', async () => {
  for (const p of ['/assets/index.html', '/assets/nope.js', '/index.html', '/assets/../index.html']) {
    const r = await server.req(p);
    assertError(r, 404, 'not_found');
  }
});

test('sign-in throttle per email: after 5 failures the next attempt, even the right password, is 429 with Retry-After', async () => {
  const victim = await newUser('admin');
  const bystander = await newUser('admin');
  const own = await env.startServer(); // in-process budgets: its own server keeps the others' IP budget intact
  const p = new Portal(env, own);
  const wrong = Array.from({ length: 5 }, (_, i) => `bad-${i}-${randomBase62(10)}`);
  wrong.forEach((w) => passwords.add(w));
  for (const w of wrong) {
    const { res } = await p.signIn(victim.email, w);
    assertError(res, 401, 'unauthenticated');
  }
  const { res } = await p.signIn(victim.email, victim.password);
  assertError(res, 429, 'rate_limited');
  assert.equal(sessionSetCookie(res), null, 'no session while throttled');
  const ra = res.headers.get('retry-after');
  assert.match(ra || '', /^\d+$/, `Retry-After must be whole seconds, got ${ra}`);
  assert.ok(Number(ra) >= 1 && Number(ra) <= 60, `Retry-After within the minute: ${ra}`);
  assertNoStore(res, '429');
  assertError((await p.signIn(victim.email, wrong[0])).res, 429, 'rate_limited');

  const ok = await p.signIn(bystander.email, bystander.password);
  assert.equal(ok.res.status, 200, `another email is not throttled: ${ok.res.text}`);
  tokens.add(ok.token);

  const lines = await pollUntil(() => {
    const l = own.stderr().split('\n').filter((x) => /sign-in failed/i.test(x) && x.includes(victim.email));
    return l.length >= 5 ? l : undefined;
  }, { what: () => `5 "sign-in failed" lines for ${victim.email}: ${own.stderr().slice(-2000)}` });
  assert.ok(lines.length >= 5);
  assertNotInFiles([own.stdoutPath, own.stderrPath], [...wrong, victim.password], 'password');
});

test('no password or session token appears in the server output, and no token in the database', async () => {
  const files = [];
  for (const s of env.servers) files.push(s.stdoutPath, s.stderrPath);
  assert.ok(passwords.size >= 10 && tokens.size >= 10, `collected ${passwords.size} passwords and ${tokens.size} tokens`);
  assertNotInFiles(files, [...passwords], 'password');
  const data = await env.dataSnapshot(); // SQLite: the data dir's files; PostgreSQL: a data-only dump
  assert.ok(data.some((d) => d.database), 'the database is scanned');
  assertNotInFiles([...files, ...data], [...tokens], 'session token');
  assertNotInFiles([...files, ...data], [...env.secrets], 'API key secret');
});

// The per-IP budget blocks 127.0.0.1 for a minute: a server and database of its own.
test('sign-in throttle per client IP: 20 failures a minute over distinct emails, then 429 for everyone', async () => {
  const ipEnv = new Env('dvs-api-ip');
  try {
    await ipEnv.migrate();
    const o = await ipEnv.createOrgWithOwner({ name: 'IP Org' });
    const srv = await ipEnv.startServer();
    const p = new Portal(ipEnv, srv);
    const attempts = Array.from({ length: 20 }, (_, i) => [`nobody-${i}-${randomBase62(6).toLowerCase()}@ip.example`, `pw-${randomBase62(12)}`]);
    const statuses = [];
    for (const [email, pw] of attempts) statuses.push((await p.signIn(email, pw)).res.status);
    assert.deepEqual(statuses, Array(20).fill(401), 'the first 20 failures are 401');
    const next = await p.signIn(`fresh-${randomBase62(6).toLowerCase()}@ip.example`, 'whatever-123');
    assertError(next.res, 429, 'rate_limited');
    const right = await p.signIn(o.email, o.password);
    assertError(right.res, 429, 'rate_limited');
    assert.equal(sessionSetCookie(right.res), null);
    const ra = right.res.headers.get('retry-after');
    assert.match(ra || '', /^\d+$/, `Retry-After: ${ra}`);
    assert.ok(Number(ra) >= 1 && Number(ra) <= 60, `Retry-After within the minute: ${ra}`);
    assertNotInFiles([srv.stdoutPath, srv.stderrPath], [...attempts.map((a) => a[1]), o.password], 'password');
  } finally {
    await ipEnv.cleanup();
  }
});
