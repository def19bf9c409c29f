// The client snippets of docs/examples/clients/ run against a live server:
// curl.sh (bash + curl), python_stdlib.py (urllib), python_requests.py
// (requests) and fetch.mjs (Node's fetch). Each lists leads, gets one lead and
// pages through all of them with the cursor; the test compares what each
// prints with what the API returns, then checks their error paths (a bad key:
// 401, an exhausted key: 429, no key at all). A snippet whose interpreter is
// missing is skipped with the reason.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import path from 'node:path';
import { Env, REPO_ROOT, forgeValidKey } from './lib/harness.mjs';

const DIR = path.join(REPO_ROOT, 'docs', 'examples', 'clients');

function has(cmd, args = ['--version']) {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const PYTHON = has('python3');
const REQUESTS = PYTHON && has('python3', ['-c', 'import requests']);
const CURL = has('curl') && has('bash');

const CLIENTS = [
  { name: 'curl.sh', cmd: 'bash', args: [path.join(DIR, 'curl.sh')], skip: CURL ? false : 'bash or curl is not installed' },
  { name: 'python_stdlib.py', cmd: 'python3', args: [path.join(DIR, 'python_stdlib.py')], skip: PYTHON ? false : 'python3 is not installed' },
  {
    name: 'python_requests.py', cmd: 'python3', args: [path.join(DIR, 'python_requests.py')],
    skip: !PYTHON ? 'python3 is not installed' : !REQUESTS ? 'the Python requests package is not installed (python_stdlib.py covers the standard library)' : false,
  },
  { name: 'fetch.mjs', cmd: process.execPath, args: [path.join(DIR, 'fetch.mjs')], skip: false },
];

/** Runs a snippet with `vars` in its environment; resolves to {code, stdout, stderr}. */
function runClient(c, vars) {
  const env = { ...process.env, ...vars };
  for (const k of ['DVS_API_KEY', 'DVS_API_URL', 'DVS_PAGE_SIZE']) if (!(k in vars)) delete env[k];
  return new Promise((resolve) => {
    execFile(c.cmd, c.args, { env, timeout: 60_000, maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** Splits the snippets' common output into its parts. */
function parseOutput(out) {
  const lines = out.split('\n').filter((l) => l.length > 0);
  const at = (prefix) => lines.findIndex((l) => l.startsWith(prefix));
  const iList = at('# GET /v1/leads?limit=2');
  const iOne = at('# GET /v1/leads/');
  const iAll = at('# all leads');
  assert.ok(iList >= 0 && iOne > iList && iAll > iOne, `output has its three sections:\n${out}`);
  const pages = lines.slice(iAll + 1).filter((l) => l.startsWith('page ')).map((l) => l.replace(/^page \d+:\s*/, '').split(' ').filter(Boolean));
  const total = lines.find((l) => l.startsWith('total: '));
  return {
    list: JSON.parse(lines[iList + 1]),
    oneId: lines[iOne].slice('# GET /v1/leads/'.length),
    one: JSON.parse(lines[iOne + 1]),
    pages,
    total,
  };
}

const env = new Env('dvs-clients');
let server;
let key; // leads:read
let limited; // one request a minute, used up
let expected; // {list, pages: [[ids]], all: [ids]}

before(async () => {
  await env.migrate();
  const org = await env.createOrg('Clients Org');
  await env.importRows('leads', org, [
    { name: 'Ada Lovelace', email: 'ada@example.com', company: 'Analytical Engines', status: 'qualified', value_cents: 1250000, currency: 'GBP', created_at: '2026-11-01T09:00:00Z' },
    { name: 'Grace "Amazing" Hopper', company: 'COBOL, Inc.', status: 'new', created_at: '2026-11-02T09:00:00Z' },
    { name: 'Alan Turing', status: 'won', created_at: '2026-11-03T09:00:00Z' },
    { name: 'Edsger Dijkstra', status: 'lost', created_at: '2026-11-04T09:00:00Z' },
    { name: 'Barbara Liskov', status: 'contacted', created_at: '2026-11-05T09:00:00Z' },
  ]);
  key = await env.createKey(org, { name: 'clients', scopes: ['leads:read'] });
  limited = await env.createKey(org, { name: 'clients limited', scopes: ['leads:read'], rateLimit: 1 });
  server = await env.startServer();
  const list = await server.req('/v1/leads?limit=2', { key: key.secret });
  assert.equal(list.status, 200);
  const walk = await server.walk('/v1/leads?limit=2', key.secret);
  expected = { list: list.json, pages: walk.pages.map((p) => p.data.map((l) => l.id)), all: walk.items.map((l) => l.id) };
  assert.equal(expected.all.length, 5);
  assert.equal(expected.pages.length, 3);
  const used = await server.req('/v1/key', { key: limited.secret });
  assert.equal(used.status, 200, 'the limited key spends its one request');
});

after(async () => {
  if (typeof env.cleanup === 'function') await env.cleanup();
  else for (const s of env.servers) await s.stop('SIGKILL');
});

for (const c of CLIENTS) {
  test(`${c.name}: lists leads, gets one, pages through all with the cursor`, { skip: c.skip }, async () => {
    const r = await runClient(c, { DVS_API_URL: server.base, DVS_API_KEY: key.secret, DVS_PAGE_SIZE: '2' });
    assert.equal(r.code, 0, `${c.name} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.equal(r.stderr, '', `${c.name} printed on stderr: ${r.stderr}`);
    const out = parseOutput(r.stdout);
    assert.deepEqual(out.list, expected.list, 'the first page is what GET /v1/leads?limit=2 returns');
    assert.equal(out.oneId, expected.list.data[0].id, 'it gets the first lead of the page');
    const one = await server.req(`/v1/leads/${out.oneId}`, { key: key.secret });
    assert.deepEqual(out.one, one.json, 'the lead is what GET /v1/leads/{id} returns');
    assert.deepEqual(out.pages, expected.pages, 'the pages, in order, following next_cursor');
    assert.equal(out.total, `total: ${expected.all.length} leads in ${expected.pages.length} pages`);
    assert.ok(!r.stdout.includes(key.secret) && !r.stdout.includes(key.secret.slice(9)), 'the key is never printed');
  });

  test(`${c.name}: a bad key is reported with the error code and request id, exit 1`, { skip: c.skip }, async () => {
    const bad = forgeValidKey();
    const r = await runClient(c, { DVS_API_URL: server.base, DVS_API_KEY: bad });
    assert.equal(r.code, 1, `${c.name} must exit 1 on an API error\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stderr, /^error: GET \/v1\/leads: HTTP 401 invalid_api_key: Invalid API key provided\. \(request req_[0-9A-Za-z]+\)$/m);
    assert.ok(!r.stderr.includes(bad) && !r.stdout.includes(bad), 'the key is never printed');
  });

  test(`${c.name}: over the rate limit it says how long to wait, exit 1`, { skip: c.skip }, async () => {
    const r = await runClient(c, { DVS_API_URL: server.base, DVS_API_KEY: limited.secret });
    assert.equal(r.code, 1, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stderr, /^error: GET \/v1\/leads: HTTP 429 rate_limited: .+ \(request req_[0-9A-Za-z]+\)$/m);
    assert.match(r.stderr, /^rate limited: retry after [1-9]\d* seconds$/m);
  });

  test(`${c.name}: without DVS_API_KEY it says what to set, exit non-zero`, { skip: c.skip }, async () => {
    const r = await runClient(c, { DVS_API_URL: server.base });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /set DVS_API_KEY/);
  });
}
