// GET /metrics: Prometheus's text exposition format, and counters that move
// with the traffic they count.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Env } from './lib/harness.mjs';

let env;
let server;
let key;
let leadsOnly;

before(async () => {
  env = new Env('dvs-metrics');
  await env.migrate();
  const org = await env.createOrg('Metrics Org');
  key = (await env.createKey(org, { name: 'metrics', rateLimit: 3 })).secret;
  leadsOnly = (await env.createKey(org, { name: 'leads only', scopes: ['leads:read'] })).secret;
  server = await env.startServer();
});

after(async () => env.cleanup());

async function scrape() {
  const r = await fetch(`${server.base}/metrics`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  return r.text();
}

// name{labels} value -> Map
function parse(text) {
  const samples = new Map();
  const typed = new Set();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      assert.ok(['counter', 'gauge', 'histogram'].includes(type), line);
      typed.add(name);
      continue;
    }
    if (line.startsWith('# HELP ')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+]+|\+Inf|NaN)$/);
    assert.ok(m, `not an exposition line: ${JSON.stringify(line)}`);
    const base = m[1].replace(/_(bucket|sum|count)$/, '');
    assert.ok(typed.has(m[1]) || typed.has(base), `sample before its TYPE: ${line}`);
    if (m[2]) assert.match(m[2], /^\{([a-z_]+="[^"\\]*",?)+\}$/, line);
    samples.set(m[1] + (m[2] || ''), Number(m[3]));
  }
  return samples;
}

const get = (s, k) => s.get(k) ?? 0;

test('counters move with requests, key outcomes and 429s', async () => {
  const before = parse(await scrape());
  await server.req('/v1/leads', { key });
  await server.req('/v1/leads', { key });
  await server.req('/v1/leads', { key: 'dvs_live_nope' });
  await server.req('/v1/leads');
  await server.req('/v1/invoices', { key: leadsOnly });
  for (let i = 0; i < 3; i++) await server.req('/v1/key', { key });  // 1 allowed, 2 over the limit of 3
  const after = parse(await scrape());
  const d = (k) => get(after, k) - get(before, k);
  assert.equal(d('dvs_http_requests_total{route="GET /v1/leads",status="200"}'), 2);
  assert.equal(d('dvs_http_requests_total{route="GET /v1/leads",status="401"}'), 2);
  assert.equal(d('dvs_http_requests_total{route="GET /v1/invoices",status="403"}'), 1);
  assert.equal(d('dvs_http_requests_total{route="GET /v1/key",status="429"}'), 2);
  assert.equal(d('dvs_api_key_checks_total{outcome="valid"}'), 6);
  assert.equal(d('dvs_api_key_checks_total{outcome="malformed"}'), 1);
  assert.equal(d('dvs_api_key_checks_total{outcome="missing"}'), 1);
  assert.equal(d('dvs_api_key_checks_total{outcome="wrong_scope"}'), 1);
  assert.equal(d('dvs_rate_limited_total'), 2);
  assert.equal(d('dvs_http_request_duration_seconds_count{route="GET /v1/leads"}'), 4);
});

test('the latency histogram is cumulative and ends at +Inf = count', async () => {
  await server.req('/v1/leads', { key: leadsOnly });
  const s = parse(await scrape());
  const route = 'route="GET /v1/leads"';
  const buckets = [...s.entries()]
    .filter(([k]) => k.startsWith(`dvs_http_request_duration_seconds_bucket{${route},`));
  assert.ok(buckets.length >= 2);
  for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i][1] >= buckets[i - 1][1], 'cumulative');
  assert.equal(s.get(`dvs_http_request_duration_seconds_bucket{${route},le="+Inf"}`),
    s.get(`dvs_http_request_duration_seconds_count{${route}}`));
});

test('gauges: request-log queue, pool and the rate limiter state', async () => {
  const s = parse(await scrape());
  assert.ok(s.has('dvs_request_log_queue'));
  assert.ok(s.has('dvs_request_log_dropped_total'));
  assert.equal(s.get('dvs_rate_limiter_state{state="local"}'), 1);
  assert.equal(s.get('dvs_rate_limiter_state{state="shared"}'), 0);
  assert.ok(s.has('dvs_db_pool_connections'));
});

test('the document cache: a repeated page is served from memory, on either backend', async () => {
  const before = parse(await scrape());
  const bodies = [];
  for (let i = 0; i < 3; i++) {
    const r = await server.req('/v1/leads?limit=7', { key: leadsOnly });
    assert.equal(r.status, 200);
    assert.equal(Number(r.headers.get('content-length')), Buffer.byteLength(r.text), 'Content-Length');
    bodies.push(r.text);
  }
  // A hit sends the cached whole answer: the same bytes as the read.
  assert.equal(bodies[1], bodies[0]);
  assert.equal(bodies[2], bodies[0]);
  assert.equal(JSON.parse(bodies[0]).object, 'list');
  const after = parse(await scrape());
  const d = (k) => get(after, k) - get(before, k);
  // The first read misses (nothing cached yet), the next two hit.
  assert.equal(d('dvs_doc_cache_misses_total'), 1);
  assert.equal(d('dvs_doc_cache_hits_total'), 2);
  assert.ok(get(after, 'dvs_doc_cache_bytes') > 0);
});

test('metrics never carry a key', async () => {
  const text = await scrape();
  assert.ok(!text.includes('dvs_live_'));
  const r = await fetch(`${server.base}/metrics`, { method: 'POST' });
  assert.equal(r.status, 405);
});
