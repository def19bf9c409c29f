// Lead and invoice objects exactly as contract section 4, isolation between
// organizations (404 identical to a missing id), unknown routes (404), wrong
// methods (405 with Allow), and that every error is JSON.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Env, checkAll, LEAD_FIELDS, INVOICE_FIELDS, sortedKeys, assertTimestamp, assertTimestampOrNull, assertInt,
  assertStringOrNull, assertError, assertJsonContentType, assertRequestId, rateLimitHeaders,
} from './lib/harness.mjs';

const env = new Env('dvs-objects');
let server;
let orgA;
let orgB;
let keyA;
let keyB;
let keyALeads;
let leadsA; // name -> lead
let leadsB;
let invoicesA; // number -> invoice
let invoicesB;

const LEAD_ADA = {
  name: 'Ada Lovelace', email: 'ada@example.com', phone: '+44 20 7946 0000', company: 'Analytical Engines Ltd',
  status: 'qualified', source: 'referral', value_cents: 1250000, currency: 'GBP',
  created_at: '2026-03-01T09:30:00Z', updated_at: '2026-03-02T10:00:00Z',
};
const LEAD_GRACE = {
  name: 'Grace Hopper', email: 'grace@example.com', phone: '555-0100', company: 'Navy',
  status: 'won', source: 'conference', value_cents: 990000, currency: 'USD',
  created_at: '2026-04-01T00:00:00Z', updated_at: '2026-04-05T12:34:56Z',
};

function byKey(items, field) {
  return Object.fromEntries(items.map((x) => [x[field], x]));
}

before(async () => {
  await env.migrate();
  orgA = await env.createOrg('Org A');
  orgB = await env.createOrg('Org B');
  keyA = (await env.createKey(orgA, { name: 'A all' })).secret;
  keyB = (await env.createKey(orgB, { name: 'B all' })).secret;
  keyALeads = (await env.createKey(orgA, { name: 'A leads', scopes: ['leads:read'] })).secret;
  await env.importRows('leads', orgA, [LEAD_ADA, LEAD_GRACE, { name: 'Bare Minimum' }]);
  await env.importRows('leads', orgB, [
    { name: 'B Lead One', status: 'new', created_at: '2026-03-01T09:30:00Z' },
    { name: 'B Lead Two', status: 'lost' },
  ]);
  server = await env.startServer();
  leadsA = byKey((await server.walk('/v1/leads?limit=100', keyA)).items, 'name');
  leadsB = byKey((await server.walk('/v1/leads?limit=100', keyB)).items, 'name');

  await env.importRows('invoices', orgA, [
    {
      number: 'INV-A-1', customer_name: 'Ada Lovelace', customer_email: 'ada@example.com',
      lead_id: leadsA['Ada Lovelace'].id, status: 'paid', currency: 'GBP', subtotal_cents: 10000,
      tax_cents: 2000, total_cents: 12000, amount_paid_cents: 12000, issued_at: '2026-03-03T00:00:00Z',
      due_at: '2026-04-02T00:00:00Z', paid_at: '2026-03-20T15:00:00Z', created_at: '2026-03-03T00:00:00Z',
      updated_at: '2026-03-20T15:00:00Z',
      line_items: [
        { description: 'Engine design', quantity: 2, unit_price_cents: 4000 },
        { description: 'Punch cards', quantity: 100, unit_price_cents: 20 },
      ],
    },
    { number: 'INV-A-2', customer_name: 'Walk-in' },
  ]);
  await env.importRows('invoices', orgB, [{ number: 'INV-B-1', customer_name: 'B customer', status: 'draft' }]);
  invoicesA = byKey((await server.walk('/v1/invoices?limit=100', keyA)).items, 'number');
  invoicesB = byKey((await server.walk('/v1/invoices?limit=100', keyB)).items, 'number');
});

after(async () => {
  await env.cleanup();
});

function assertLeadTypes(l) {
  assert.deepEqual(sortedKeys(l), [...LEAD_FIELDS].sort(), 'lead field names');
  assert.match(l.id, /^lead_\S+$/);
  assert.equal(l.object, 'lead');
  assert.equal(typeof l.name, 'string');
  for (const f of ['email', 'phone', 'company', 'source']) assertStringOrNull(l[f], `lead.${f}`);
  assert.ok(['new', 'contacted', 'qualified', 'won', 'lost'].includes(l.status), `lead.status ${l.status}`);
  if (l.value_cents !== null) assertInt(l.value_cents, 'lead.value_cents');
  if (l.currency !== null) assert.match(l.currency, /^[A-Z]{3}$/, 'lead.currency is ISO 4217');
  assertTimestamp(l.created_at, 'lead.created_at');
  assertTimestamp(l.updated_at, 'lead.updated_at');
}

function assertInvoiceTypes(i) {
  assert.deepEqual(sortedKeys(i), [...INVOICE_FIELDS].sort(), 'invoice field names');
  assert.match(i.id, /^inv_\S+$/);
  assert.equal(i.object, 'invoice');
  assert.equal(typeof i.number, 'string');
  assert.equal(typeof i.customer_name, 'string');
  assertStringOrNull(i.customer_email, 'invoice.customer_email');
  assertStringOrNull(i.lead_id, 'invoice.lead_id');
  if (i.lead_id !== null) assert.match(i.lead_id, /^lead_/);
  assert.ok(['draft', 'open', 'paid', 'void', 'overdue'].includes(i.status), `invoice.status ${i.status}`);
  assert.match(i.currency, /^[A-Z]{3}$/, 'invoice.currency is ISO 4217');
  for (const f of ['subtotal_cents', 'tax_cents', 'total_cents', 'amount_paid_cents']) assertInt(i[f], `invoice.${f}`);
  assertTimestampOrNull(i.issued_at, 'invoice.issued_at');
  assertTimestampOrNull(i.due_at, 'invoice.due_at');
  assertTimestampOrNull(i.paid_at, 'invoice.paid_at');
  assert.ok(Array.isArray(i.line_items), 'line_items is an array');
  for (const li of i.line_items) {
    assert.deepEqual(sortedKeys(li), ['amount_cents', 'description', 'quantity', 'unit_price_cents']);
    assert.equal(typeof li.description, 'string');
    assertInt(li.quantity, 'quantity');
    assertInt(li.unit_price_cents, 'unit_price_cents');
    assert.equal(li.amount_cents, li.quantity * li.unit_price_cents, 'amount_cents = quantity * unit_price_cents');
  }
  assertTimestamp(i.created_at, 'invoice.created_at');
  assertTimestamp(i.updated_at, 'invoice.updated_at');
}

test('GET /v1/leads/{id} returns the lead with exactly the contract fields', async () => {
  for (const given of [LEAD_ADA, LEAD_GRACE]) {
    const id = leadsA[given.name].id;
    const r = await server.req(`/v1/leads/${id}`, { key: keyA });
    assert.equal(r.status, 200, r.text);
    assertJsonContentType(r);
    assertRequestId(r);
    rateLimitHeaders(r);
    assert.deepEqual(r.json, { id, object: 'lead', ...given });
    assert.deepEqual(r.json, leadsA[given.name], 'the list item equals the single object');
  }
});

test('every lead in the list has the contract types', async () => {
  assert.equal(Object.keys(leadsA).length, 3);
  for (const l of Object.values(leadsA)) assertLeadTypes(l);
  for (const l of Object.values(leadsB)) assertLeadTypes(l);
  const bare = leadsA['Bare Minimum'];
  assert.equal(bare.status, 'new', 'a lead imported without status is new');
});

test('GET /v1/invoices/{id} returns the invoice with exactly the contract fields', async () => {
  const inv = invoicesA['INV-A-1'];
  assert.ok(inv, 'invoice INV-A-1 is listed');
  const r = await server.req(`/v1/invoices/${inv.id}`, { key: keyA });
  assert.equal(r.status, 200, r.text);
  assertJsonContentType(r);
  assert.deepEqual(r.json, {
    id: inv.id, object: 'invoice', number: 'INV-A-1', customer_name: 'Ada Lovelace',
    customer_email: 'ada@example.com', lead_id: leadsA['Ada Lovelace'].id, status: 'paid', currency: 'GBP',
    subtotal_cents: 10000, tax_cents: 2000, total_cents: 12000, amount_paid_cents: 12000,
    issued_at: '2026-03-03T00:00:00Z', due_at: '2026-04-02T00:00:00Z', paid_at: '2026-03-20T15:00:00Z',
    line_items: [
      { description: 'Engine design', quantity: 2, unit_price_cents: 4000, amount_cents: 8000 },
      { description: 'Punch cards', quantity: 100, unit_price_cents: 20, amount_cents: 2000 },
    ],
    created_at: '2026-03-03T00:00:00Z', updated_at: '2026-03-20T15:00:00Z',
  });
  assert.deepEqual(r.json, inv, 'the list item equals the single object');
});

test('every invoice in the list has the contract types', async () => {
  assert.equal(Object.keys(invoicesA).length, 2);
  for (const i of Object.values(invoicesA)) assertInvoiceTypes(i);
  for (const i of Object.values(invoicesB)) assertInvoiceTypes(i);
  const walkIn = invoicesA['INV-A-2'];
  assert.equal(walkIn.lead_id, null, 'an invoice without lead has lead_id null');
  assert.equal(walkIn.paid_at, null, 'an unpaid invoice has paid_at null');
  assert.deepEqual(walkIn.line_items, []);
});

test('each organization sees only its own leads and invoices', () => {
  assert.deepEqual(Object.keys(leadsA).sort(), ['Ada Lovelace', 'Bare Minimum', 'Grace Hopper']);
  assert.deepEqual(Object.keys(leadsB).sort(), ['B Lead One', 'B Lead Two']);
  assert.deepEqual(Object.keys(invoicesA).sort(), ['INV-A-1', 'INV-A-2']);
  assert.deepEqual(Object.keys(invoicesB).sort(), ['INV-B-1']);
});

/** An id of the same length and prefix that exists nowhere. */
function missingLike(id) {
  const head = id.slice(0, id.length - 4);
  const tail = id.slice(-4).split('').map((c) => (c === 'Z' ? 'Y' : 'Z')).join('');
  return head + tail;
}

/** The body with the requested id and the request id blanked out. */
function normalized(r, id) {
  return r.text.split(id).join('<ID>').split(r.headers.get('x-request-id')).join('<REQ>');
}

test('another organization\'s id is 404 not_found, identical to an id that does not exist', async () => {
  const pairs = [
    ['leads', leadsB['B Lead One'].id, keyA],
    ['invoices', invoicesB['INV-B-1'].id, keyA],
    ['leads', leadsA['Ada Lovelace'].id, keyB],
    ['invoices', invoicesA['INV-A-1'].id, keyB],
  ];
  for (const [kind, foreignId, key] of pairs) {
    const missing = missingLike(foreignId);
    assert.equal(missing.length, foreignId.length);
    const a = await server.req(`/v1/${kind}/${foreignId}`, { key });
    const b = await server.req(`/v1/${kind}/${missing}`, { key });
    assertError(a, 404, 'not_found');
    assertError(b, 404, 'not_found');
    rateLimitHeaders(a);
    assert.equal(normalized(a, foreignId), normalized(b, missing), `${kind}: the two 404 bodies must not differ`);
    assert.equal(a.headers.get('content-type'), b.headers.get('content-type'));
  }
});

test('ids of the wrong kind or odd characters are 404 not_found', async () => {
  const ids = [
    `/v1/leads/${invoicesA['INV-A-1'].id}`,
    `/v1/invoices/${leadsA['Ada Lovelace'].id}`,
    `/v1/leads/${encodeURIComponent("x' OR '1'='1")}`,
    `/v1/leads/${encodeURIComponent('%00')}`,
    `/v1/invoices/${'z'.repeat(500)}`,
  ];
  for (const p of ids) assertError(await server.req(p, { key: keyA }), 404, 'not_found');
});

test('unknown routes are 404 not_found as JSON, with rate-limit headers on /v1', async () => {
  for (const p of ['/v1/nope', '/v1/leads/x/y', '/v1/keys', '/v1/invoices/inv_x/lines', '/v1']) {
    const r = await server.req(p, { key: keyA });
    assertError(r, 404, 'not_found');
    rateLimitHeaders(r);
  }
  const outside = await server.req('/no-such-route-xyz', {});
  assertError(outside, 404, 'not_found');
});

test('a known path with another method is 405 method_not_allowed with Allow: GET', async () => {
  const cases = [
    ['POST', '/v1/leads'],
    ['PUT', `/v1/leads/${leadsA['Ada Lovelace'].id}`],
    ['DELETE', `/v1/invoices/${invoicesA['INV-A-1'].id}`],
    ['PATCH', '/v1/key'],
    ['POST', '/v1/invoices'],
    ['DELETE', '/v1/key'],
  ];
  for (const [method, p] of cases) {
    const r = await server.req(p, {
      key: keyA, method,
      body: method === 'DELETE' ? undefined : '{}',
      headers: method === 'DELETE' ? {} : { 'content-type': 'application/json' },
    });
    assertError(r, 405, 'method_not_allowed');
    rateLimitHeaders(r);
    const allow = (r.headers.get('allow') || '').split(',').map((s) => s.trim().toUpperCase());
    assert.ok(allow.includes('GET'), `${method} ${p}: Allow must list GET, got "${r.headers.get('allow')}"`);
  }
  // The resource was not touched.
  const again = await server.req(`/v1/invoices/${invoicesA['INV-A-1'].id}`, { key: keyA });
  assert.equal(again.status, 200);
});

test('routing comes before the scope check', async () => {
  assertError(await server.req('/v1/invoices', { key: keyALeads, method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }), 405, 'method_not_allowed');
  assertError(await server.req('/v1/invoicez', { key: keyALeads }), 404, 'not_found');
  assertError(await server.req('/v1/invoices', { key: keyALeads }), 403, 'insufficient_scope');
});

test('every response has a distinct X-Request-Id', async () => {
  const seen = new Set();
  const paths = ['/v1/leads', '/v1/nope', '/v1/key', '/healthz', '/no-such-route-xyz'];
  for (let i = 0; i < 3; i++) {
    for (const p of paths) {
      const r = await server.req(p, { key: keyA });
      const id = assertRequestId(r);
      assert.ok(!seen.has(id), `request id ${id} repeated`);
      seen.add(id);
    }
  }
  assert.equal(seen.size, 15);
});

test('a body over 1 MiB is 413 payload_too_large', async () => {
  const size = 1024 * 1024 + 1024;
  const r = await server.raw(
    `POST /v1/leads HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${keyA}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`,
    { bodySize: size },
  );
  assertError(r, 413, 'payload_too_large');
});

test('malformed HTTP requests get a JSON 400 with an X-Request-Id', async () => {
  const heads = [
    ['bad Content-Length', 'GET /v1/key HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n'],
    ['garbage request line', 'BLAH\r\n\r\n'],
    ['bad percent-encoding', 'GET /v1/leads?limit=%zz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'],
  ];
  await checkAll(heads, ([what]) => what, async ([, head]) => {
    const r = await server.raw(head);
    assertError(r, 400, 'invalid_request');
  });
});
