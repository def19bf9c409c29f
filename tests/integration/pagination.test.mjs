// List endpoints: keyset pagination (order, no duplicates, no skips, also
// while rows are added), limit/cursor/status/updated_since, and 400s for bad
// parameters. Tests run in order; the walk-while-adding test adds rows.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Env, checkAll, assertError, assertListShape, assertNewestFirst, compareNewestFirst, rateLimitHeaders, rfc3339,
} from './lib/harness.mjs';

const env = new Env('dvs-pages');
let server;
let org;
let otherOrg;
let key;
let otherKey;

const T0 = Date.parse('2026-01-01T00:00:00Z') / 1000;
const STATUSES = ['new', 'contacted', 'qualified', 'won', 'lost'];
const N = 300;
const UPDATED_THRESHOLD = '2026-06-01T00:00:00Z';

/**
 * 300 leads: five groups of 50 sharing one created_at each (ties), then 50
 * with distinct created_at. Every third lead was updated 200 days later.
 */
function originalLeads() {
  const rows = [];
  for (let i = 0; i < N; i++) {
    const created = i < 250 ? T0 + Math.floor(i / 50) * 3600 : T0 + 5 * 3600 + (i - 250);
    const updated = i % 3 === 0 ? created + 200 * 86400 : created;
    rows.push({
      name: `P-${String(i).padStart(3, '0')}`,
      status: STATUSES[i % 5],
      value_cents: i * 100,
      currency: 'USD',
      created_at: rfc3339(created),
      updated_at: rfc3339(updated),
    });
  }
  return rows;
}

before(async () => {
  await env.migrate();
  org = await env.createOrg('Paging Org');
  otherOrg = await env.createOrg('Paging Other Org');
  key = (await env.createKey(org, { name: 'pager', rateLimit: 100000 })).secret;
  otherKey = (await env.createKey(otherOrg, { name: 'other pager', rateLimit: 100000 })).secret;
  await env.importRows('leads', org, originalLeads());
  // Another organization's rows share the same created_at values; they must never show up.
  await env.importRows('leads', otherOrg, Array.from({ length: 20 }, (_, i) => ({
    name: `Other-${i}`, status: 'won', created_at: rfc3339(T0 + (i % 5) * 3600), updated_at: rfc3339(T0 + 300 * 86400),
  })));
  const invStatuses = ['draft', 'open', 'paid', 'void', 'overdue'];
  await env.importRows('invoices', org, Array.from({ length: 15 }, (_, i) => ({
    number: `PI-${String(i).padStart(2, '0')}`,
    customer_name: `Customer ${i}`,
    status: invStatuses[i % 5],
    created_at: rfc3339(T0 + Math.floor(i / 4) * 60),
    updated_at: rfc3339(T0 + Math.floor(i / 4) * 60 + (i % 2) * 200 * 86400),
  })));
  server = await env.startServer();
});

after(async () => {
  await env.cleanup();
});

function names(items) {
  return items.map((x) => x.name);
}

function assertNoDuplicates(items, what) {
  const ids = items.map((x) => x.id);
  assert.equal(new Set(ids).size, ids.length, `${what}: an item was returned twice`);
}

test('walking with limit 7 returns every lead once, newest first, ties by id descending', async () => {
  const { items, pages } = await server.walk('/v1/leads?limit=7', key);
  assert.equal(pages.length, Math.ceil(N / 7));
  pages.forEach((p, i) => {
    assert.equal(p.data.length, i < pages.length - 1 ? 7 : N - 7 * (pages.length - 1), `page ${i} size`);
  });
  assert.equal(items.length, N);
  assertNoDuplicates(items, 'limit 7');
  assertNewestFirst(items, 'limit 7');
  assert.deepEqual(new Set(names(items)), new Set(originalLeads().map((l) => l.name)), 'exactly this org\'s leads');
  // The ties really are ties, so the id order was exercised.
  const tied = items.filter((l) => l.created_at === rfc3339(T0 + 3600));
  assert.equal(tied.length, 50);
});

test('a page that ends exactly at the last row has has_more false', async () => {
  const { pages } = await server.walk('/v1/leads?limit=100', key);
  assert.deepEqual(pages.map((p) => p.data.length), [100, 100, 100]);
  assert.equal(pages[2].has_more, false);
  assert.equal(pages[2].next_cursor, null);
  assert.equal(pages[0].has_more, true);
});

test('default limit is 20; limit 1 and 100 are accepted', async () => {
  const d = await server.req('/v1/leads', { key });
  assert.equal(d.status, 200, d.text);
  assertListShape(d.json);
  assert.equal(d.json.data.length, 20);
  assert.equal(d.json.has_more, true);
  const one = await server.req('/v1/leads?limit=1', { key });
  assert.equal(one.status, 200);
  assert.equal(one.json.data.length, 1);
  assert.equal(one.json.data[0].id, d.json.data[0].id, 'the first item does not depend on the limit');
  const hundred = await server.req('/v1/leads?limit=100', { key });
  assert.equal(hundred.status, 200);
  assert.equal(hundred.json.data.length, 100);
  assert.deepEqual(hundred.json.data.slice(0, 20), d.json.data);
});

test('rows added while walking are neither skipped nor repeated', async () => {
  const inserts = []; // {cursorItem, names}
  let n = 0;
  const mk = (label, createdAt) => ({
    name: `New-${label}-${n++}`, status: 'new', created_at: rfc3339(createdAt), updated_at: rfc3339(createdAt),
  });
  const { items } = await server.walk('/v1/leads?limit=7', key, {
    onPage: async (page, pageNo) => {
      const last = page.data[page.data.length - 1];
      if (pageNo === 3) {
        // Newer than everything, older than everything, and into a tie group not reached yet.
        const rows = [
          ...Array.from({ length: 5 }, () => mk('newer', T0 + 365 * 86400)),
          ...Array.from({ length: 5 }, () => mk('older', T0 - 365 * 86400)),
          ...Array.from({ length: 5 }, () => mk('tie4', T0 + 4 * 3600)),
          mk('passed', T0 + 5 * 3600 + 45),
        ];
        await env.importRows('leads', org, rows);
        inserts.push({ cursorItem: last, names: rows.map((r) => r.name) });
      }
      if (pageNo === 25) {
        // Into the tie group being walked right now (created_at T0+2h).
        assert.equal(last.created_at, rfc3339(T0 + 2 * 3600), 'page 25 ends inside the T0+2h tie group');
        const rows = Array.from({ length: 8 }, () => mk('tie2', T0 + 2 * 3600));
        await env.importRows('leads', org, rows);
        inserts.push({ cursorItem: last, names: rows.map((r) => r.name) });
      }
    },
  });
  assert.equal(inserts.length, 2, 'rows were added twice during the walk');
  assertNoDuplicates(items, 'walk while adding');
  assertNewestFirst(items, 'walk while adding');

  const full = (await server.walk('/v1/leads?limit=100', key)).items;
  assert.equal(full.length, N + 24);
  assertNoDuplicates(full, 'fresh walk');
  assertNewestFirst(full, 'fresh walk');
  const byName = Object.fromEntries(full.map((l) => [l.name, l]));

  // Keyset rule: a row added after the cursor was handed out is returned iff it sorts after it.
  const expected = new Set(originalLeads().map((l) => l.name));
  for (const ins of inserts) {
    for (const name of ins.names) {
      const row = byName[name];
      assert.ok(row, `${name} was stored`);
      if (compareNewestFirst(ins.cursorItem, row) < 0) expected.add(name);
    }
  }
  assert.ok([...expected].some((x) => x.startsWith('New-older')), 'some added rows are expected in the walk');
  assert.deepEqual(new Set(names(items)), expected, 'the walk returned exactly the old rows plus the added rows after the cursor');
  assert.equal(items.length, expected.size);
});

test('status filters lists and paginates within the filter', async () => {
  const full = (await server.walk('/v1/leads?limit=100', key)).items;
  for (const status of STATUSES) {
    const { items } = await server.walk(`/v1/leads?status=${status}&limit=7`, key);
    const want = full.filter((l) => l.status === status).map((l) => l.id);
    assert.ok(want.length >= 60, `${status}: enough rows to page`);
    assert.deepEqual(items.map((l) => l.id), want, `status=${status}`);
  }
  const invFull = (await server.walk('/v1/invoices?limit=100', key)).items;
  const { items: paid } = await server.walk('/v1/invoices?status=paid&limit=2', key);
  assert.deepEqual(paid.map((i) => i.id), invFull.filter((i) => i.status === 'paid').map((i) => i.id));
  assert.equal(paid.length, 3);
});

test('updated_since returns rows updated at or after the instant, in list order', async () => {
  const full = (await server.walk('/v1/leads?limit=100', key)).items;
  const since = Date.parse(UPDATED_THRESHOLD);
  const want = full.filter((l) => Date.parse(l.updated_at) >= since).map((l) => l.id);
  // A third of the original leads, plus the 5 "newer" rows added while walking (created and updated in 2027).
  assert.equal(want.length, N / 3 + 5);
  for (const v of [UPDATED_THRESHOLD, '2026-06-01T00:00:00+00:00', '2026-06-01T02:00:00+02:00', '2026-05-31T19:00:00-05:00']) {
    const { items } = await server.walk(`/v1/leads?updated_since=${encodeURIComponent(v)}&limit=9`, key);
    assert.deepEqual(items.map((l) => l.id), want, `updated_since=${v}`);
  }
  const both = (await server.walk(`/v1/leads?updated_since=${encodeURIComponent(UPDATED_THRESHOLD)}&status=won&limit=5`, key)).items;
  assert.deepEqual(
    both.map((l) => l.id),
    full.filter((l) => l.status === 'won' && Date.parse(l.updated_at) >= since).map((l) => l.id),
  );
  assert.ok(both.length > 0);
  const invFull = (await server.walk('/v1/invoices?limit=100', key)).items;
  const invSince = (await server.walk(`/v1/invoices?updated_since=${encodeURIComponent(UPDATED_THRESHOLD)}`, key)).items;
  assert.deepEqual(invSince.map((i) => i.id), invFull.filter((i) => Date.parse(i.updated_at) >= since).map((i) => i.id));
  assert.equal(invSince.length, 7);
});

test('invoices paginate with ties in order', async () => {
  const { items, pages } = await server.walk('/v1/invoices?limit=4', key);
  assert.equal(items.length, 15);
  assert.equal(pages.length, 4);
  assertNoDuplicates(items, 'invoices');
  assertNewestFirst(items, 'invoices');
});

test('the other organization\'s lists stay separate', async () => {
  const { items } = await server.walk('/v1/leads?limit=7', otherKey);
  assert.equal(items.length, 20);
  assert.ok(items.every((l) => l.name.startsWith('Other-')));
  const inv = await server.req('/v1/invoices', { key: otherKey });
  assert.equal(inv.status, 200);
  assert.deepEqual(inv.json.data, []);
  assert.equal(inv.json.has_more, false);
  assert.equal(inv.json.next_cursor, null);
});

test('bad parameters are 400 invalid_request naming the parameter', async () => {
  const first = await server.req('/v1/leads?limit=5', { key });
  const cursor = first.json.next_cursor;
  assert.equal(typeof cursor, 'string');
  const mid = Math.floor(cursor.length / 2);
  const swap = (c) => (c === 'A' ? 'B' : 'A');
  const tampered = cursor.slice(0, mid) + swap(cursor[mid]) + cursor.slice(mid + 1);
  const tamperedEnd = cursor.slice(0, -1) + swap(cursor[cursor.length - 1]);

  // If the cursor is readable (base64url text), change a digit of its longest
  // number and re-encode it: a well-formed cursor that the server never issued.
  const forgedCursor = (() => {
    const text = Buffer.from(cursor, 'base64url').toString('latin1');
    if (!/^[\x20-\x7e]+$/.test(text) || Buffer.from(text, 'latin1').toString('base64url') !== cursor.replace(/=+$/, '')) return null;
    const runs = [...text.matchAll(/\d+/g)].sort((a, b) => b[0].length - a[0].length);
    if (!runs.length) return null;
    const end = runs[0].index + runs[0][0].length - 1;
    const d = text[end] === '1' ? '2' : '1';
    return Buffer.from(text.slice(0, end) + d + text.slice(end + 1), 'latin1').toString('base64url');
  })();

  const q = encodeURIComponent;
  const cases = [
    ...(forgedCursor ? [[`/v1/leads?cursor=${q(forgedCursor)}`, 'cursor']] : []),
    ['/v1/leads?limit=0', 'limit'],
    ['/v1/leads?limit=101', 'limit'],
    ['/v1/leads?limit=abc', 'limit'],
    ['/v1/leads?limit=-1', 'limit'],
    ['/v1/leads?limit=1.5', 'limit'],
    ['/v1/leads?limit=', 'limit'],
    ['/v1/leads?limit=99999999999999999999', 'limit'],
    ['/v1/invoices?limit=0', 'limit'],
    ['/v1/leads?cursor=garbage', 'cursor'],
    [`/v1/leads?cursor=${q(tampered)}`, 'cursor'],
    [`/v1/leads?cursor=${q(tamperedEnd)}`, 'cursor'],
    [`/v1/leads?cursor=${q(cursor.slice(0, -4))}`, 'cursor'],
    ['/v1/invoices?cursor=%00%01', 'cursor'],
    ['/v1/leads?status=pending', 'status'],
    ['/v1/leads?status=open', 'status'],
    ['/v1/invoices?status=won', 'status'],
    ['/v1/leads?updated_since=yesterday', 'updated_since'],
    ['/v1/leads?updated_since=2026-13-01T00:00:00Z', 'updated_since'],
    ['/v1/leads?updated_since=2026-06-01', 'updated_since'],
    ['/v1/leads?updated_since=2026-06-01T00:00:00', 'updated_since'],
    ['/v1/leads?updated_since=1767225600', 'updated_since'],
    ['/v1/leads?foo=1', 'foo'],
    ['/v1/leads?Limit=5', 'Limit'],
    ['/v1/invoices?expand=lines', 'expand'],
    ['/v1/key?foo=1', 'foo'],
    ['/v1/leads?limit=5&limit=5', 'limit'],
    ['/v1/leads?status=new&status=won', 'status'],
  ];
  await checkAll(cases, ([p]) => p, async ([p, param]) => {
    const r = await server.req(p, { key });
    const err = assertError(r, 400, 'invalid_request');
    assert.equal(err.param, param, 'error.param');
    rateLimitHeaders(r);
  });
  // The untampered cursor still works.
  const ok = await server.req(`/v1/leads?limit=5&cursor=${q(cursor)}`, { key });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.data.length, 5);
});
