// Runs the real service for the browser tests: a throw-away SQLite database
// with one organization (its CEO, a member, a few leads) and `devsphere serve`
// on a free loopback port. No fixed ports; the only waiting is the bounded
// readiness poll of GET /healthz.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..', '..');
export const BIN = process.env.DEVSPHERE_BIN || path.join(REPO_ROOT, 'build', 'devsphere');

/** Runs the binary; resolves to {code, stdout, stderr}; rejects on a non-zero exit. */
function run(args, input = '') {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve({ code, stdout, stderr });
      else reject(new Error(`devsphere ${args.slice(0, 2).join(' ')} failed (code ${code}, signal ${signal}): ${stderr}`));
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

const lastLine = (s) => s.trim().split('\n').pop().trim();

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const password = () => `pw-${crypto.randomBytes(12).toString('base64url')}`;

/**
 * Sets up the database and starts the server. Resolves to
 * {base, ceo: {email, password}, member: {email, password}, org, stop()}.
 */
export async function startService() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvs-e2e-'));
  const db = `sqlite:${path.join(dir, 'db.sqlite')}`;
  const ceo = { email: 'ceo@example.com', password: password() };
  const member = { email: 'member@example.com', password: password() };

  await run(['migrate', '--db', db]);
  const org = lastLine((await run(['org', 'create', '--name', 'Acme Robotics', '--owner-email', ceo.email,
    '--owner-password-stdin', '--db', db], `${ceo.password}\n`)).stdout);
  if (!/^org_/.test(org)) throw new Error(`org create printed ${org}`);
  await run(['user', 'add', '--org', org, '--email', member.email, '--role', 'member', '--password-stdin',
    '--db', db], `${member.password}\n`);
  const leads = path.join(dir, 'leads.jsonl');
  fs.writeFileSync(leads, [
    { name: 'Ada Lovelace', email: 'ada@example.com', company: 'Analytical Engines' },
    { name: 'Grace Hopper', email: 'grace@example.com', company: 'Compilers Inc.' },
  ].map((l) => JSON.stringify(l)).join('\n') + '\n');
  await run(['import', 'leads', '--org', org, leads, '--db', db]);

  let proc;
  let base;
  let stderr = '';
  for (let attempt = 0; attempt < 5 && !base; attempt++) {
    const port = await freePort();
    stderr = '';
    proc = spawn(BIN, ['serve', '--listen', `127.0.0.1:${port}`, '--db', db], { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const exited = new Promise((resolve) => proc.once('exit', () => resolve(false)));
    const url = `http://127.0.0.1:${port}`;
    if (await Promise.race([waitHealthy(url), exited])) base = url;
    else proc.kill('SIGKILL');
  }
  if (!base) throw new Error(`devsphere serve did not become ready: ${stderr}`);

  const server = proc;
  const proxy = process.env.E2E_WEB_DIR ? await startWebProxy(base, path.resolve(process.env.E2E_WEB_DIR)) : null;
  return {
    base: proxy ? proxy.base : base,
    serverBase: base,
    org, ceo, member, dir,
    get stderr() { return stderr; },
    async stop() {
      if (proxy) await proxy.close();
      if (server.exitCode === null && server.signalCode === null) {
        const done = new Promise((resolve) => server.once('exit', resolve));
        server.kill('SIGTERM');
        await done;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls GET /healthz, at most 100 times 100 ms apart; resolves true once it answers 200. */
async function waitHealthy(base) {
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(`${base}/healthz`);
      if (res.status === 200) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/**
 * For working on the portal without rebuilding the binary (its copy of web/
 * is embedded at build time): E2E_WEB_DIR=web makes the tests talk to a
 * loopback proxy that forwards everything to the real server but, for `/` and
 * `/assets/NAME`, replaces the body with the file from that folder. Status and
 * headers (the CSP included) stay the server's. Off unless the variable is set.
 */
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };

async function startWebProxy(upstream, webDir) {
  const http = await import('node:http');
  const up = new URL(upstream);
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const headers = { ...req.headers, host: up.host };
      if (headers.origin) headers.origin = upstream;
      const preq = http.request({ host: up.hostname, port: up.port, path: req.url, method: req.method, headers },
        (pres) => {
          const p = new URL(req.url, upstream).pathname;
          const name = p === '/' ? 'index.html' : p.startsWith('/assets/') ? p.slice(8) : null;
          const file = name && /^[A-Za-z0-9._-]+$/.test(name) ? path.join(webDir, name) : null;
          if (req.method === 'GET' && file && fs.existsSync(file)) {
            const body = fs.readFileSync(file);
            const h = { ...pres.headers, 'content-length': String(body.length) };
            if (pres.statusCode === 404) h['content-type'] = TYPES[path.extname(name)] ?? 'application/octet-stream';
            pres.resume();
            res.writeHead(pres.statusCode === 404 ? 200 : pres.statusCode, h);
            res.end(body);
          } else {
            res.writeHead(pres.statusCode, pres.headers);
            pres.pipe(res);
          }
        });
      preq.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
      preq.end(Buffer.concat(chunks));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}
