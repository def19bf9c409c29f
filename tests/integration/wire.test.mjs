// Responses on the wire, read byte by byte from a raw socket: the server
// writes its status line, headers and framing itself (src/http/wire.cpp), so
// this checks what a strict client sees. The status line follows the
// request's version; Content-Length matches the body's bytes; HTTP/1.1 stays
// open unless the client says "Connection: close" (then the answer says it
// too and the server closes); HTTP/1.0 closes unless the client asks for
// keep-alive (then the answer says "Connection: keep-alive" and the next
// request is served on the same socket); HEAD announces GET's length and
// sends no body; a 204 carries neither Content-Length nor Content-Type nor a
// body. "No body" is proven by the next response on the same connection
// starting right after the head.
//
// Waiting: each read has a liveness bound that fails a case only if the
// server neither answers nor closes; nothing here measures speed.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Env, Portal } from './lib/harness.mjs';

const LIVENESS_MS = 15000;

const env = new Env('dvs-wire');
let server;
let key;
let owner;

before(async () => {
  await env.migrate();
  owner = await env.createOrgWithOwner({ name: 'Wire Org', email: 'ceo@wire.example', password: 'ceo-Pa55word!' });
  await env.importRows('leads', owner.org, [{ name: 'Ada Lovelace', email: 'ada@example.com', status: 'new' }]);
  key = await env.createKey(owner.org, { name: 'wire', scopes: ['leads:read'] });
  server = await env.startServer();
});

after(async () => {
  await env.cleanup();
});

/** A raw connection: send bytes, read whole responses, see the close. */
class Conn {
  constructor(port) {
    this.buf = Buffer.alloc(0);
    this.closed = false;
    this.waiters = [];
    this.sock = net.connect(port, '127.0.0.1');
    this.sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.#wake();
    });
    this.sock.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    this.sock.on('error', () => {});
    this.ready = new Promise((r) => this.sock.once('connect', r));
  }

  #wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  async #until(cond, what) {
    const deadline = Date.now() + LIVENESS_MS;
    while (!cond()) {
      if (this.closed) return false;
      const left = deadline - Date.now();
      assert.ok(left > 0, `liveness: the server neither sent ${what} nor closed`);
      await new Promise((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return true;
  }

  async send(text) {
    await this.ready;
    await new Promise((r) => this.sock.write(Buffer.from(text, 'latin1'), r));
  }

  /** The next response; `noBody` for HEAD. Framing by Content-Length only. */
  async response({ noBody = false } = {}) {
    const gotHead = await this.#until(() => this.buf.indexOf('\r\n\r\n') >= 0, 'a response head');
    assert.ok(gotHead, `the connection closed before a response head (had ${this.buf.length} bytes)`);
    const end = this.buf.indexOf('\r\n\r\n');
    const headText = this.buf.subarray(0, end).toString('latin1');
    const [statusLine, ...lines] = headText.split('\r\n');
    const headers = new Map();
    for (const l of lines) {
      const i = l.indexOf(':');
      assert.ok(i > 0, `a header line without a colon: ${JSON.stringify(l)}`);
      const name = l.slice(0, i).toLowerCase();
      assert.ok(!headers.has(name), `header ${name} sent twice`);
      headers.set(name, l.slice(i + 1).trim());
    }
    const m = /^(HTTP\/1\.[01]) (\d{3}) (.*)$/.exec(statusLine);
    assert.ok(m, `status line: ${JSON.stringify(statusLine)}`);
    const status = Number(m[2]);
    const bodyLen = noBody || status === 204 || status === 304 ? 0 : Number(headers.get('content-length'));
    assert.ok(Number.isInteger(bodyLen), `Content-Length of a ${status}: ${headers.get('content-length')}`);
    const full = await this.#until(() => this.buf.length >= end + 4 + bodyLen, 'the whole body');
    assert.ok(full, `the connection closed inside the body (${this.buf.length - end - 4} of ${bodyLen} bytes)`);
    const body = this.buf.subarray(end + 4, end + 4 + bodyLen).toString('utf8');
    this.buf = this.buf.subarray(end + 4 + bodyLen);
    return { version: m[1], status, reason: m[3], headers, body };
  }

  /** Resolves true once the server has closed the connection. */
  async closedByServer() {
    await this.#until(() => false, 'a close');
    return this.closed;
  }

  destroy() {
    this.sock.destroy();
  }
}

const get = (path, { version = 'HTTP/1.1', method = 'GET', extra = [] } = {}) =>
  [`${method} ${path} ${version}`, 'Host: 127.0.0.1', `Authorization: Bearer ${key.secret}`, ...extra, '', ''].join('\r\n');

/** Runs `fn` on a fresh connection, closed afterwards whatever happens. */
async function withConn(fn) {
  const c = new Conn(server.port);
  try {
    return await fn(c);
  } finally {
    c.destroy();
  }
}

test('HTTP/1.1: status line, exact Content-Length, and the connection stays open for the next request', async () => {
  await withConn(async (c) => {
    await c.send(get('/v1/leads?limit=5'));
    const r = await c.response();
    assert.equal(r.version, 'HTTP/1.1');
    assert.equal(r.status, 200);
    assert.equal(r.reason, 'OK');
    assert.equal(r.headers.get('content-type'), 'application/json');
    assert.equal(Number(r.headers.get('content-length')), Buffer.byteLength(r.body));
    assert.equal(JSON.parse(r.body).object, 'list');
    assert.equal(r.headers.has('connection'), false, 'HTTP/1.1 keep-alive needs no Connection header');
    assert.match(r.headers.get('x-request-id'), /^req_/);
    assert.ok(r.headers.has('x-ratelimit-remaining'));
    await c.send(get('/v1/leads?limit=5'));
    const again = await c.response();
    assert.equal(again.status, 200, 'a second request on the same connection');
    assert.equal(c.buf.length, 0, 'nothing after the second response');
  });
});

test('HTTP/1.1 with "Connection: close": the answer says close and the server closes', async () => {
  await withConn(async (c) => {
    await c.send(get('/v1/leads', { extra: ['Connection: close'] }));
    const r = await c.response();
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('connection'), 'close');
    assert.equal(await c.closedByServer(), true);
    assert.equal(c.buf.length, 0, 'no bytes after the response');
  });
});

test('HTTP/1.0: answered in HTTP/1.0 and closed, unless the client asks for keep-alive', async () => {
  await withConn(async (plain) => {
    await plain.send(get('/v1/leads', { version: 'HTTP/1.0' }));
    const r = await plain.response();
    assert.equal(r.version, 'HTTP/1.0');
    assert.equal(r.status, 200);
    assert.equal(r.headers.has('connection'), false);
    assert.equal(await plain.closedByServer(), true, 'HTTP/1.0 closes by default');
  });
  await withConn(async (kept) => {
    await kept.send(get('/v1/leads', { version: 'HTTP/1.0', extra: ['Connection: keep-alive'] }));
    const r = await kept.response();
    assert.equal(r.version, 'HTTP/1.0');
    assert.equal(r.headers.get('connection'), 'keep-alive');
    await kept.send(get('/v1/key', { version: 'HTTP/1.0', extra: ['Connection: keep-alive'] }));
    const again = await kept.response();
    assert.equal(again.status, 200, 'served on the same connection');
    assert.equal(JSON.parse(again.body).object, 'api_key');
  });
});

test('HEAD: the length GET would send, and no body (the next response follows the head directly)', async () => {
  await withConn(async (c) => {
    await c.send(get('/v1/openapi.json'));
    const full = await c.response();
    assert.equal(full.status, 200);
    await c.send(get('/v1/openapi.json', { method: 'HEAD' }));
    const head = await c.response({ noBody: true });
    assert.equal(head.status, 200);
    assert.equal(Number(head.headers.get('content-length')), Buffer.byteLength(full.body));
    await c.send(get('/v1/leads?limit=1'));
    const next = await c.response();
    assert.equal(next.status, 200, 'the bytes after the HEAD answer are the next response');
    assert.equal(JSON.parse(next.body).object, 'list');
  });
});

test('204 No Content: no Content-Length, no Content-Type, no body', async () => {
  const portal = new Portal(env, server);
  const s = await portal.session(owner.email, owner.password);
  await withConn(async (c) => {
    const del = [
      'DELETE /api/session HTTP/1.1', `Host: 127.0.0.1:${server.port}`, `Origin: ${server.base}`,
      'Content-Type: application/json', `Cookie: dvs_session=${s.token}`, '', '',
    ].join('\r\n');
    await c.send(del);
    const r = await c.response();
    assert.equal(r.status, 204, r.body);
    assert.equal(r.reason, 'No Content');
    assert.equal(r.headers.has('content-length'), false);
    assert.equal(r.headers.has('content-type'), false);
    assert.match(r.headers.get('set-cookie'), /Max-Age=0/);
    await c.send(get('/v1/leads?limit=1'));
    const next = await c.response();
    assert.equal(next.status, 200, 'the next response follows the 204 head directly');
  });
});

test('an error answer is framed like any other: JSON, exact length, connection kept', async () => {
  await withConn(async (c) => {
    await c.send(['GET /v1/leads HTTP/1.1', 'Host: 127.0.0.1', 'Authorization: Bearer nope', '', ''].join('\r\n'));
    const r = await c.response();
    assert.equal(r.status, 401);
    assert.equal(r.reason, 'Unauthorized');
    assert.equal(Number(r.headers.get('content-length')), Buffer.byteLength(r.body));
    assert.equal(JSON.parse(r.body).error.code, 'invalid_api_key');
    assert.match(r.headers.get('www-authenticate'), /^Bearer /);
    await c.send(get('/v1/leads?limit=1'));
    assert.equal((await c.response()).status, 200);
  });
});
