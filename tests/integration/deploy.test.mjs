// The deployment example of docs/deploy.md, run for real: nginx with
// docs/deploy/nginx.conf in front of two `serve` nodes that trust it as a
// proxy. Requests pass through, a node can die without the service failing,
// and the client address the nodes log is the client's, not nginx's.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { Env, REPO_ROOT, pollUntil } from './lib/harness.mjs';

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => fs.existsSync(p));

function freePortOn(host) {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// GET through nginx from a chosen loopback source address.
function get(port, p, { key, from = '127.0.0.3' } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.2', port, path: p, localAddress: from, agent: false,
      headers: key ? { authorization: `Bearer ${key}` } : {},
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

let env;
let nodes;
let nginxDir;
let nginxPort;
let key;

before(async () => {
  env = new Env('dvs-deploy');
  await env.migrate();
  const org = await env.createOrg('Deploy Org');
  await env.importRows('leads', org, [{ name: 'Ada' }, { name: 'Grace' }]);
  key = (await env.createKey(org, { name: 'through nginx' })).secret;
  nodes = [
    await env.startServer({ extraArgs: ['--trusted-proxy', '127.0.0.1'] }),
    await env.startServer({ extraArgs: ['--trusted-proxy', '127.0.0.1'] }),
  ];
  if (!NGINX) return;
  nginxDir = path.join(env.dir, 'nginx');
  fs.mkdirSync(path.join(nginxDir, 'logs'), { recursive: true });
  nginxPort = await freePortOn('127.0.0.2');
  const conf = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'deploy', 'nginx.conf'), 'utf8')
    .replaceAll('__LISTEN__', `127.0.0.2:${nginxPort}`)
    .replaceAll('__NODE_A__', `127.0.0.1:${nodes[0].port}`)
    .replaceAll('__NODE_B__', `127.0.0.1:${nodes[1].port}`);
  fs.writeFileSync(path.join(nginxDir, 'nginx.conf'), conf);
  const r = spawnSync(NGINX, ['-p', `${nginxDir}/`, '-c', path.join(nginxDir, 'nginx.conf')], { encoding: 'utf8' });
  assert.equal(r.status, 0, `nginx failed to start: ${r.stderr}`);
  await pollUntil(async () => (await get(nginxPort, '/healthz')).status === 200, { what: 'nginx up' });
});

after(async () => {
  if (nginxDir && fs.existsSync(path.join(nginxDir, 'nginx.pid'))) {
    const pid = Number(fs.readFileSync(path.join(nginxDir, 'nginx.pid'), 'utf8'));
    try { process.kill(pid, 'SIGQUIT'); } catch { /* already gone */ }
  }
  await env.cleanup();
});

test('the documented nginx config serves the API through both nodes', { skip: !NGINX && 'nginx is not installed' }, async () => {
  for (let i = 0; i < 20; i++) {
    const r = await get(nginxPort, '/v1/leads', { key });
    assert.equal(r.status, 200, r.text);
    assert.equal(JSON.parse(r.text).data.length, 2);
    assert.match(r.headers['x-request-id'], /^req_/);
  }
  const bad = await get(nginxPort, '/v1/leads', { key: 'nope' });
  assert.equal(bad.status, 401);
  assert.equal(JSON.parse(bad.text).error.code, 'invalid_api_key');
});

async function loggedClientIp(rid) {
  let rows = [];
  // The request log is written by a background thread every ~200 ms.
  await pollUntil(async () => {
    rows = await env.sql(`SELECT client_ip FROM request_log WHERE request_id = '${rid}'`);
    return rows.length === 1;
  }, { what: `request ${rid} logged` });
  return rows[0].client_ip;
}

test('nodes log the client address from X-Forwarded-For of the trusted proxy', { skip: !NGINX && 'nginx is not installed' }, async () => {
  const r = await get(nginxPort, '/v1/leads', { key, from: '127.0.0.5' });
  assert.equal(r.status, 200);
  assert.equal(await loggedClientIp(r.headers['x-request-id']), '127.0.0.5');
});

test('a node dying does not fail the service behind nginx', { skip: !NGINX && 'nginx is not installed' }, async () => {
  await nodes[0].stop('SIGKILL');
  for (let i = 0; i < 20; i++) {
    const r = await get(nginxPort, '/v1/leads', { key });
    assert.equal(r.status, 200, `request ${i} after node A died: ${r.status} ${r.text}`);
  }
});

test('without --trusted-proxy a forged X-Forwarded-For is ignored', async () => {
  const direct = await env.startServer();
  const res = await fetch(`${direct.base}/v1/leads`, {
    headers: { authorization: `Bearer ${key}`, 'x-forwarded-for': '203.0.113.9' },
  });
  assert.equal(res.status, 200);
  assert.equal(await loggedClientIp(res.headers.get('x-request-id')), '127.0.0.1');
});
