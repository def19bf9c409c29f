// A stand-in for the management API, for working on the portal without
// building the C++ service: `node tests/e2e/mock-api.mjs [PORT]`, then open
// http://127.0.0.1:PORT/ and sign in as ceo@example.com or member@example.com
// with the password "correct horse". It serves web/ as the binary does
// (index.html at /, web/NAME at /assets/NAME) under a strict CSP, and keeps
// everything in memory. The e2e tests never use it: they run the real binary.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'web');
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png' };
const SECURITY = {
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};
const PASSWORD = 'correct horse';
const B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const rnd = (n) => Array.from(crypto.randomBytes(n), (b) => B62[b % 62]).join('');
const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

const org = { id: 'org_mock', name: 'Acme Robotics' };
const users = [
  { id: 'usr_ceo', email: 'ceo@example.com', role: 'ceo' },
  { id: 'usr_member', email: 'member@example.com', role: 'member' },
];
const sessions = new Map();
const keys = [];      // newest first
const secrets = new Map();
const requests = [];  // {key_id, ...}
const events = [];

function status(k) {
  if (k.revoked_at) return 'revoked';
  if (k.expires_at && Date.parse(k.expires_at) <= Date.now()) return 'expired';
  return 'active';
}
const pub = (k) => ({ ...k, status: status(k) });

function issue(name, scopes, expiresAt, rate, by) {
  const random = rnd(32);
  const secret = `dvs_live_${random}${rnd(6)}`;
  const k = { id: `key_${rnd(20)}`, object: 'api_key', name, hint: `dvs_live_${random.slice(0, 4)}`, scopes,
    status: 'active', rate_limit_per_minute: rate ?? 120, created_at: iso(Date.now()),
    created_by: by ? { id: by.id, email: by.email } : null, expires_at: expiresAt ?? null,
    last_used_at: null, revoked_at: null };
  keys.unshift(k);
  secrets.set(secret, k);
  return { k, secret };
}

function event(type, actor, k, ip) {
  events.unshift({ id: `evt_${rnd(16)}`, object: 'audit_event', type,
    actor: actor ? { id: actor.id, email: actor.email } : null, key_id: k.id, key_name: k.name, ip,
    created_at: iso(Date.now()) });
}

// Some history, so the screens are not empty.
{
  const ceo = users[0];
  const { k } = issue('Billing export', ['invoices:read'], null, 600, ceo);
  k.created_at = iso(Date.now() - 40 * 86400e3);
  event('api_key.created', ceo, k, '10.0.0.7');
  for (let i = 0; i < 140; i++) {
    const t = Date.now() - Math.floor(Math.random() * 86400e3);
    requests.push({ key_id: k.id, id: `req_${rnd(16)}`, object: 'request', method: 'GET',
      path: i % 9 ? '/v1/invoices?limit=100' : '/v1/invoices/inv_8Kd02', status: i % 23 ? 200 : 429,
      latency_ms: 3 + (i % 7), client_ip: '203.0.113.24', user_agent: 'billing-sync/2.1', created_at: iso(t) });
  }
  requests.sort((a, b) => b.created_at.localeCompare(a.created_at));
  k.last_used_at = requests[0].created_at;
}

function send(res, code, body, headers = {}) {
  const text = body === null ? '' : JSON.stringify(body);
  res.writeHead(code, { ...SECURITY, 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers });
  res.end(text);
}
const fail = (res, code, errCode, message, param) =>
  send(res, code, { error: { code: errCode, message, ...(param ? { param } : {}) } });

function readBody(req) {
  return new Promise((resolve) => {
    let s = '';
    req.on('data', (d) => (s += d));
    req.on('end', () => { try { resolve(s ? JSON.parse(s) : {}); } catch { resolve(null); } });
  });
}

function cookieSession(req) {
  const m = /(?:^|;\s*)dvs_session=([^;]+)/.exec(req.headers.cookie || '');
  return m ? sessions.get(m[1]) : null;
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  const ip = req.socket.remoteAddress.replace('::ffff:', '');

  if (req.method === 'GET' && (p === '/' || p.startsWith('/assets/'))) {
    const name = p === '/' ? 'index.html' : p.slice('/assets/'.length);
    if (!/^[A-Za-z0-9._-]+$/.test(name) || !fs.existsSync(path.join(WEB, name))) return fail(res, 404, 'not_found', 'No such file.');
    res.writeHead(200, { ...SECURITY, 'Content-Type': TYPES[path.extname(name)] || 'application/octet-stream', 'Cache-Control': 'no-cache' });
    return res.end(fs.readFileSync(path.join(WEB, name)));
  }
  if (p === '/healthz') return send(res, 200, { status: 'ok' });

  if (p.startsWith('/v1/')) {
    const m = /^Bearer (\S+)$/.exec(req.headers.authorization || '');
    const k = m && secrets.get(m[1]);
    if (!k || status(k) !== 'active') return fail(res, 401, 'invalid_api_key', 'Invalid API key.');
    k.last_used_at = iso(Date.now());
    requests.unshift({ key_id: k.id, id: `req_${rnd(16)}`, object: 'request', method: req.method, path: url.pathname + url.search,
      status: 200, latency_ms: 2, client_ip: ip, user_agent: req.headers['user-agent'] || '', created_at: iso(Date.now()) });
    return send(res, 200, { object: 'list', data: [], has_more: false, next_cursor: null });
  }

  if (!p.startsWith('/api/')) return fail(res, 404, 'not_found', `Unrecognized request URL (${req.method} ${p}).`);
  if (req.method !== 'GET' && !(req.headers['content-type'] || '').startsWith('application/json')) {
    return fail(res, 415, 'unsupported_media_type', 'Send JSON.');
  }
  const body = req.method === 'GET' ? {} : await readBody(req);
  if (body === null) return fail(res, 400, 'invalid_request', 'The body is not valid JSON.');

  if (p === '/api/session') {
    if (req.method === 'POST') {
      const u = users.find((x) => x.email === body.email);
      if (!u || body.password !== PASSWORD) return fail(res, 401, 'unauthenticated', 'Incorrect email or password.');
      const sid = rnd(32);
      sessions.set(sid, u);
      return send(res, 200, { user: u, organization: org },
        { 'Set-Cookie': `dvs_session=${sid}; HttpOnly; SameSite=Strict; Path=/` });
    }
    const u = cookieSession(req);
    if (req.method === 'DELETE') {
      return send(res, 204, null, { 'Set-Cookie': 'dvs_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0' });
    }
    if (!u) return fail(res, 401, 'unauthenticated', 'Sign in first.');
    return send(res, 200, { user: u, organization: org });
  }

  const user = cookieSession(req);
  if (!user) return fail(res, 401, 'unauthenticated', 'Sign in first.');
  if (user.role === 'member') return fail(res, 403, 'forbidden', 'Only a CEO or admin can manage API keys.');

  if (p === '/api/keys' && req.method === 'GET') return send(res, 200, { object: 'list', data: keys.map(pub) });
  if (p === '/api/keys' && req.method === 'POST') {
    const name = typeof body.name === 'string' ? body.name.trim() : '';
    if (!name || name.length > 100) return fail(res, 400, 'invalid_request', 'Name must be 1 to 100 characters.', 'name');
    if (!Array.isArray(body.scopes) || !body.scopes.length || body.scopes.some((s) => !['leads:read', 'invoices:read'].includes(s))) {
      return fail(res, 400, 'invalid_request', 'Choose at least one known scope.', 'scopes');
    }
    if (body.expires_at != null && !(Date.parse(body.expires_at) > Date.now())) {
      return fail(res, 400, 'invalid_request', 'expires_at must be in the future.', 'expires_at');
    }
    const rate = body.rate_limit_per_minute;
    if (rate != null && !(Number.isInteger(rate) && rate >= 1 && rate <= 100000)) {
      return fail(res, 400, 'invalid_request', 'rate_limit_per_minute must be 1 to 100000.', 'rate_limit_per_minute');
    }
    const { k, secret } = issue(name, body.scopes, body.expires_at, rate, user);
    event('api_key.created', user, k, ip);
    return send(res, 201, { key: pub(k), secret });
  }
  let m = /^\/api\/keys\/([^/]+)\/(rotate|revoke|requests|usage)$/.exec(p);
  const k = m && keys.find((x) => x.id === m[1]);
  if (m && !k) return fail(res, 404, 'not_found', 'No such key.');
  if (m && m[2] === 'rotate' && req.method === 'POST') {
    if (status(k) !== 'active') return fail(res, 400, 'invalid_request', 'Only an active key can be rotated.');
    const secs = body.expire_old_in_seconds ?? 0;
    const { k: nk, secret } = issue(k.name, k.scopes, k.expires_at, k.rate_limit_per_minute, user);
    if (secs === 0) k.revoked_at = iso(Date.now());
    else k.expires_at = iso(Date.now() + secs * 1000);
    event('api_key.rotated', user, k, ip);
    return send(res, 201, { key: pub(nk), secret, replaced: pub(k) });
  }
  if (m && m[2] === 'revoke' && req.method === 'POST') {
    if (!k.revoked_at) { k.revoked_at = iso(Date.now()); event('api_key.revoked', user, k, ip); }
    return send(res, 200, { key: pub(k) });
  }
  if (m && m[2] === 'requests' && req.method === 'GET') {
    const all = requests.filter((r) => r.key_id === k.id);
    const start = Number(url.searchParams.get('cursor') || 0);
    const limit = Number(url.searchParams.get('limit') || 20);
    const page = all.slice(start, start + limit).map(({ key_id, ...r }) => r);
    const more = start + limit < all.length;
    return send(res, 200, { object: 'list', data: page, has_more: more, next_cursor: more ? String(start + limit) : null });
  }
  if (m && m[2] === 'usage' && req.method === 'GET') {
    const hour = 3600e3;
    const first = Math.floor(Date.now() / hour) * hour - 23 * hour;
    const data = Array.from({ length: 24 }, (_, i) => ({ start: iso(first + i * hour), count: 0 }));
    for (const r of requests) {
      if (r.key_id !== k.id) continue;
      const i = Math.floor((Date.parse(r.created_at) - first) / hour);
      if (i >= 0 && i < 24) data[i].count++;
    }
    return send(res, 200, { object: 'usage', interval: 'hour', data });
  }
  if (p === '/api/audit-events' && req.method === 'GET') {
    const start = Number(url.searchParams.get('cursor') || 0);
    const limit = Number(url.searchParams.get('limit') || 20);
    const more = start + limit < events.length;
    return send(res, 200, { object: 'list', data: events.slice(start, start + limit), has_more: more,
      next_cursor: more ? String(start + limit) : null });
  }
  return fail(res, 404, 'not_found', `Unrecognized request URL (${req.method} ${p}).`);
}

const port = Number(process.argv[2] || 0);
const server = http.createServer((req, res) => {
  handle(req, res).catch((e) => fail(res, 500, 'internal_error', String(e)));
});
server.listen(port, '127.0.0.1', () => {
  console.log(`mock API on http://127.0.0.1:${server.address().port}/`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
