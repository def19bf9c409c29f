// The devsphere subcommands: migrate, org create, user add, keys create/list/
// revoke/rotate, import (JSONL and CSV, errors with line numbers, atomicity),
// and clean failures for bad flags and bad database URLs.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  Env, run, lastLine, assertCleanFailure, assertOk, sqliteOnly, hasValidChecksum, KEY_RE,
  assertApiKeyShape, assertTimestamp, LEAD_FIELDS, INVOICE_FIELDS, sortedKeys, randomBase62,
} from './lib/harness.mjs';

const env = new Env('dvs-cli');
let server;

before(async () => {
  await env.migrate();
  server = await env.startServer();
});

after(async () => {
  await env.cleanup();
});

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Asserts a failed import names FILE:LINE on its single stderr line. */
function assertImportError(r, file, line, what) {
  assertCleanFailure(r, what);
  const msg = r.stderr.trim();
  const re = new RegExp(`^(?:.*/)?${escapeRe(path.basename(file))}:${line}: \\S`);
  assert.match(msg, re, `${what}: stderr must be "FILE:${line}: message", got ${JSON.stringify(msg)}`);
}

/** All leads (or invoices) the key can see, via the API. */
async function allItems(kind, key) {
  const { items } = await server.walk(`/v1/${kind}?limit=100`, key);
  return items;
}

test('migrate creates the database and is idempotent', async () => {
  // On PostgreSQL the harness creates the (empty) database; migrate creates its tables, checked below.
  if (env.dbKind === 'sqlite') assert.ok(fs.existsSync(env.dbPath), 'the database file exists after migrate');
  const again = await env.cli(['migrate']);
  assertOk(again, 'second migrate');

  const logCols = await env.columns('request_log');
  for (const c of ['key_id', 'org_id', 'request_id', 'method', 'path', 'status', 'latency_us', 'client_ip', 'user_agent', 'created_at']) {
    assert.ok(logCols.includes(c), `request_log has column ${c} (has ${logCols.join(',')})`);
  }
  const keyCols = await env.columns('api_keys');
  for (const c of ['id', 'expires_at', 'created_at', 'revoked_at', 'last_used_at']) {
    assert.ok(keyCols.includes(c), `api_keys has column ${c} (has ${keyCols.join(',')})`);
  }
});

test('migrate creates a database in a fresh directory given by --db', { skip: sqliteOnly('a database file in a new directory') }, async () => {
  const p = path.join(env.dir, 'fresh', 'other.db');
  fs.mkdirSync(path.dirname(p));
  const r = await run(['migrate', '--db', `sqlite:${p}`]);
  assertOk(r, 'migrate fresh db');
  assert.ok(fs.existsSync(p), 'database file created');
});

test('org create prints the org id alone on its last line; user add prints user ids', async () => {
  const a = await env.createOrg('Org One', 'one@example.com');
  const b = await env.createOrg('Org Two', 'two@example.com');
  assert.notEqual(a, b, 'two orgs get different ids');
  const ids = new Set();
  for (const role of ['ceo', 'admin', 'member']) {
    ids.add(await env.addUser(a, `${role}@one.example.com`, role));
  }
  assert.equal(ids.size, 3, 'each user gets its own id');
});

test('user add rejects a bad role and an unknown org', async () => {
  const org = await env.createOrg('Org Roles');
  assertCleanFailure(await env.cli(['user', 'add', '--org', org, '--email', 'x@example.com', '--role', 'overlord']), 'bad role');
  assertCleanFailure(
    await env.cli(['user', 'add', '--org', 'org_doesnotexist000000', '--email', 'y@example.com', '--role', 'member']),
    'unknown org',
  );
});

test('keys create prints a well-formed secret last and an id line; keys list shows the key without its secret', async () => {
  const org = await env.createOrg('Org Keys');
  const k1 = await env.createKey(org, { name: 'Zapier sync', scopes: ['leads:read'] });
  const k2 = await env.createKey(org, { name: 'Billing', scopes: ['leads:read', 'invoices:read'], rateLimit: 7, expiresIn: 30 });

  for (const k of [k1, k2]) {
    assert.match(k.secret, KEY_RE);
    assert.equal(k.secret.length, 47);
    assert.ok(hasValidChecksum(k.secret), `checksum of ${k.secret.slice(0, 13)}... must be valid`);
  }
  assert.notEqual(k1.secret, k2.secret);
  assert.notEqual(k1.id, k2.id);

  const list = await env.listKeys(org);
  assert.equal(list.object, 'list');
  assert.ok(Array.isArray(list.data));
  assert.equal(list.data.length, 2, 'the org has exactly the two keys');
  const text = JSON.stringify(list);
  for (const k of [k1, k2]) assert.ok(!text.includes(k.secret.slice(9)), 'keys list must not contain a secret');

  const byId = Object.fromEntries(list.data.map((k) => [k.id, k]));
  for (const item of list.data) assertApiKeyShape(item);

  const a = byId[k1.id];
  assert.ok(a, 'key 1 is listed');
  assert.equal(a.name, 'Zapier sync');
  assert.equal(a.hint, k1.secret.slice(0, 13), 'hint is dvs_live_ + first 4 random chars');
  assert.deepEqual(a.scopes, ['leads:read']);
  assert.equal(a.status, 'active');
  assert.equal(a.rate_limit_per_minute, 120, 'default rate limit is 120');
  assert.equal(a.expires_at, null);
  assert.equal(a.revoked_at, null);
  assert.equal(a.last_used_at, null);
  assertTimestamp(a.created_at, 'created_at');
  assert.ok(Math.abs(Date.parse(a.created_at) - Date.now()) < 86400e3, 'created_at is about now');

  const b = byId[k2.id];
  assert.ok(b, 'key 2 is listed');
  assert.deepEqual([...b.scopes].sort(), ['invoices:read', 'leads:read']);
  assert.equal(b.rate_limit_per_minute, 7);
  assertTimestamp(b.expires_at, 'expires_at');
  const days = (Date.parse(b.expires_at) - Date.parse(b.created_at)) / 1000;
  assert.ok(Math.abs(days - 30 * 86400) <= 5, `expires_at is 30 days after created_at (got ${days}s)`);

  // Timestamps are stored as INTEGER unix seconds (SQLite INTEGER; PostgreSQL bigint).
  const rows = await env.sql({
    sqlite: `SELECT typeof(created_at) AS c, typeof(expires_at) AS e, created_at, expires_at FROM api_keys WHERE id = '${k2.id}'`,
    postgres: `SELECT pg_typeof(created_at)::text AS c, pg_typeof(expires_at)::text AS e, created_at, expires_at FROM api_keys WHERE id = '${k2.id}'`,
  });
  const int = env.dbKind === 'postgres' ? 'bigint' : 'integer';
  assert.deepEqual(rows, [{ c: int, e: int, created_at: Date.parse(b.created_at) / 1000, expires_at: Date.parse(b.expires_at) / 1000 }]);
});

test('keys create rejects unknown scopes, no scope, an unknown org and bad numbers', async () => {
  const org = await env.createOrg('Org Bad Keys');
  const cases = [
    [['--name', 'n', '--scope', 'leads:write'], 'unknown scope'],
    [['--name', 'n', '--scope', 'admin'], 'unknown scope admin'],
    [['--name', 'n'], 'no scope'],
    [['--name', 'n', '--scope', 'leads:read', '--rate-limit', 'abc'], 'rate limit abc'],
    [['--name', 'n', '--scope', 'leads:read', '--rate-limit', '0'], 'rate limit 0'],
    [['--name', 'n', '--scope', 'leads:read', '--expires-in', 'soon'], 'expires-in soon'],
  ];
  for (const [args, what] of cases) {
    assertCleanFailure(await env.cli(['keys', 'create', '--org', org, ...args]), what);
  }
  assertCleanFailure(
    await env.cli(['keys', 'create', '--org', 'org_doesnotexist000000', '--name', 'n', '--scope', 'leads:read']),
    'unknown org',
  );
  const list = await env.listKeys(org);
  assert.equal(list.data.length, 0, 'no key was created by the failed commands');
});

test('keys list shows only the given organization\'s keys', async () => {
  const a = await env.createOrg('Org List A');
  const b = await env.createOrg('Org List B');
  const ka = await env.createKey(a, { name: 'A key' });
  const kb = await env.createKey(b, { name: 'B key' });
  const la = await env.listKeys(a);
  const lb = await env.listKeys(b);
  assert.deepEqual(la.data.map((k) => k.id), [ka.id]);
  assert.deepEqual(lb.data.map((k) => k.id), [kb.id]);
});

test('keys revoke marks the key revoked; unknown ids fail cleanly', async () => {
  const org = await env.createOrg('Org Revoke');
  const k = await env.createKey(org);
  await env.revokeKey(k.id);
  const item = (await env.listKeys(org)).data.find((x) => x.id === k.id);
  assert.ok(item, 'revoked key is still listed');
  assertApiKeyShape(item);
  assert.equal(item.status, 'revoked');
  assertTimestamp(item.revoked_at, 'revoked_at');
  assertCleanFailure(await env.cli(['keys', 'revoke', 'key_doesnotexist0000000']), 'revoke unknown key');
});

test('keys rotate issues a new secret and id with the same name, scopes and limit; the old key stops', async () => {
  const org = await env.createOrg('Org Rotate');
  const old = await env.createKey(org, { name: 'Rotating', scopes: ['invoices:read'], rateLimit: 33 });
  const neu = await env.rotateKey(old.id);
  assert.notEqual(neu.id, old.id);
  assert.notEqual(neu.secret, old.secret);
  assert.ok(hasValidChecksum(neu.secret), 'rotated secret has a valid checksum');
  const list = (await env.listKeys(org)).data;
  const o = list.find((x) => x.id === old.id);
  const n = list.find((x) => x.id === neu.id);
  assert.ok(o && n, 'both keys are listed');
  assert.notEqual(o.status, 'active', 'the old key is no longer active');
  assert.equal(n.status, 'active');
  assert.equal(n.name, 'Rotating');
  assert.deepEqual(n.scopes, ['invoices:read']);
  assert.equal(n.rate_limit_per_minute, 33);
  assert.equal(n.hint, neu.secret.slice(0, 13));
  assertCleanFailure(await env.cli(['keys', 'rotate', 'key_doesnotexist0000000']), 'rotate unknown key');
});

test('DVS_DB selects the database when --db is absent', async () => {
  const org = await env.createOrg('Org Env');
  const r = await run(['keys', 'create', '--org', org, '--name', 'via env', '--scope', 'leads:read'], {
    env: { DVS_DB: env.dbUrl },
  });
  assertOk(r, 'keys create with DVS_DB');
  const secret = lastLine(r.stdout);
  assert.match(secret, KEY_RE);
  env.secrets.add(secret);
  const list = await env.listKeys(org);
  assert.deepEqual(list.data.map((k) => k.name), ['via env']);
});

test('import leads from JSONL stores every field as given', async () => {
  const org = await env.createOrg('Org Import JSONL');
  const { secret } = await env.createKey(org);
  const explicitId = `lead_${randomBase62(24)}`;
  await env.importRows('leads', org, [
    {
      id: explicitId, name: 'Ada Lovelace', email: 'ada@example.com', phone: '+44 20 7946 0000',
      company: 'Analytical Engines Ltd', status: 'qualified', source: 'referral', value_cents: 1250000,
      currency: 'GBP', created_at: '2026-03-01T09:30:00Z', updated_at: '2026-03-02T10:00:00Z',
    },
    { name: 'Minimal Lead' },
  ]);
  const items = await allItems('leads', secret);
  assert.equal(items.length, 2);
  const ada = items.find((l) => l.name === 'Ada Lovelace');
  assert.deepEqual(ada, {
    id: explicitId, object: 'lead', name: 'Ada Lovelace', email: 'ada@example.com', phone: '+44 20 7946 0000',
    company: 'Analytical Engines Ltd', status: 'qualified', source: 'referral', value_cents: 1250000,
    currency: 'GBP', created_at: '2026-03-01T09:30:00Z', updated_at: '2026-03-02T10:00:00Z',
  });
  const min = items.find((l) => l.name === 'Minimal Lead');
  assert.ok(min, 'minimal lead imported');
  assert.deepEqual(sortedKeys(min), [...LEAD_FIELDS].sort());
  assert.match(min.id, /^lead_/);
  assert.equal(min.status, 'new', 'a lead without status is new');
  assertTimestamp(min.created_at, 'created_at defaults to now');
  assertTimestamp(min.updated_at, 'updated_at defaults');
});

test('import leads from CSV with a header row and quoted fields', async () => {
  const org = await env.createOrg('Org Import CSV');
  const { secret } = await env.createKey(org);
  const csv = [
    'name,email,phone,company,status,source,value_cents,currency,created_at,updated_at',
    'Grace Hopper,grace@example.com,555-0100,"Navy, Inc.",won,conference,990000,USD,2026-04-01T00:00:00Z,2026-04-05T12:34:56Z',
    '"Alan ""Prof"" Turing",alan@example.com,555-0101,Bletchley,contacted,web,0,EUR,2026-04-02T00:00:00Z,2026-04-02T00:00:00Z',
  ].join('\n') + '\n';
  const file = env.writeFile('leads.csv', csv);
  assertOk(await env.cli(['import', 'leads', '--org', org, file]), 'import leads csv');
  const items = await allItems('leads', secret);
  assert.equal(items.length, 2);
  const g = items.find((l) => l.name === 'Grace Hopper');
  assert.ok(g, 'Grace imported');
  assert.equal(g.company, 'Navy, Inc.');
  assert.equal(g.status, 'won');
  assert.equal(g.value_cents, 990000);
  assert.equal(g.currency, 'USD');
  assert.equal(g.created_at, '2026-04-01T00:00:00Z');
  assert.equal(g.updated_at, '2026-04-05T12:34:56Z');
  const t = items.find((l) => l.email === 'alan@example.com');
  assert.ok(t, 'Alan imported');
  assert.equal(t.name, 'Alan "Prof" Turing');
  assert.equal(t.value_cents, 0);
});

test('import invoices from JSONL and CSV computes line item amounts', async () => {
  const org = await env.createOrg('Org Import Invoices');
  const { secret } = await env.createKey(org);
  await env.importRows('invoices', org, [
    {
      number: 'INV-0001', customer_name: 'Wayne Enterprises', customer_email: 'ap@wayne.example.com',
      status: 'open', currency: 'USD', subtotal_cents: 7500, tax_cents: 750, total_cents: 8250,
      amount_paid_cents: 0, issued_at: '2026-05-01T00:00:00Z', due_at: '2026-05-31T00:00:00Z',
      paid_at: null, created_at: '2026-05-01T00:00:00Z', updated_at: '2026-05-01T00:00:00Z',
      line_items: [
        { description: 'Consulting', quantity: 3, unit_price_cents: 2000 },
        { description: 'Travel', quantity: 1, unit_price_cents: 1500 },
      ],
    },
  ]);
  const csv = [
    'number,customer_name,customer_email,status,currency,subtotal_cents,tax_cents,total_cents,amount_paid_cents,issued_at,due_at,created_at,updated_at,line_items',
    'INV-0002,Stark Industries,billing@stark.example.com,paid,USD,5000,0,5000,5000,2026-06-01T00:00:00Z,2026-06-15T00:00:00Z,2026-06-01T00:00:00Z,2026-06-02T00:00:00Z,"[{""description"":""Repulsor, mk II"",""quantity"":2,""unit_price_cents"":2500}]"',
  ].join('\n') + '\n';
  const file = env.writeFile('invoices.csv', csv);
  assertOk(await env.cli(['import', 'invoices', '--org', org, file]), 'import invoices csv');

  const items = await allItems('invoices', secret);
  assert.equal(items.length, 2);
  for (const inv of items) assert.deepEqual(sortedKeys(inv), [...INVOICE_FIELDS].sort());
  const i1 = items.find((i) => i.number === 'INV-0001');
  assert.ok(i1);
  assert.deepEqual(i1.line_items, [
    { description: 'Consulting', quantity: 3, unit_price_cents: 2000, amount_cents: 6000 },
    { description: 'Travel', quantity: 1, unit_price_cents: 1500, amount_cents: 1500 },
  ]);
  assert.equal(i1.customer_name, 'Wayne Enterprises');
  assert.equal(i1.total_cents, 8250);
  assert.equal(i1.due_at, '2026-05-31T00:00:00Z');
  const i2 = items.find((i) => i.number === 'INV-0002');
  assert.ok(i2);
  assert.deepEqual(i2.line_items, [
    { description: 'Repulsor, mk II', quantity: 2, unit_price_cents: 2500, amount_cents: 5000 },
  ]);
  assert.equal(i2.status, 'paid');
  assert.equal(i2.amount_paid_cents, 5000);
  assert.equal(i2.updated_at, '2026-06-02T00:00:00Z');
});

test('a bad row fails the import with FILE:LINE and stores nothing from that file', async () => {
  const org = await env.createOrg('Org Import Errors');
  const { secret } = await env.createKey(org);
  const good = (i) => JSON.stringify({ name: `Lead ${i}`, status: 'new' });

  const cases = [
    ['leads', 'missing-name.jsonl', [good(1), good(2), JSON.stringify({ email: 'no-name@example.com' }), good(4)].join('\n') + '\n', 3],
    ['leads', 'bad-status.jsonl', [good(1), JSON.stringify({ name: 'X', status: 'pending' })].join('\n') + '\n', 2],
    ['leads', 'bad-json.jsonl', [good(1), good(2), good(3), '{"name": "broken",'].join('\n') + '\n', 4],
    ['leads', 'late-error.jsonl', [...Array.from({ length: 50 }, (_, i) => good(i)), JSON.stringify({ name: 'Y', status: 'WON!' })].join('\n') + '\n', 51],
    ['leads', 'bad-status.csv', 'name,status\nGood One,new\nGood Two,won\nBad Three,maybe\n', 4],
    ['leads', 'no-name.csv', 'name,email\nGood,g@example.com\n,nobody@example.com\n', 3],
    ['invoices', 'no-customer.jsonl', [JSON.stringify({ number: 'A-1', customer_name: 'C' }), JSON.stringify({ number: 'A-2' })].join('\n') + '\n', 2],
    ['invoices', 'no-number.jsonl', [JSON.stringify({ customer_name: 'C' })].join('\n') + '\n', 1],
    ['invoices', 'bad-items.jsonl', [
      JSON.stringify({ number: 'B-1', customer_name: 'C' }),
      JSON.stringify({ number: 'B-2', customer_name: 'C', line_items: 'lots' }),
    ].join('\n') + '\n', 2],
    ['invoices', 'bad-items.csv', 'number,customer_name,line_items\nC-1,Cust,[]\nC-2,Cust,"[{""description"":"\n', 3],
  ];
  for (const [kind, name, content, line] of cases) {
    const file = env.writeFile(name, content);
    const r = await env.cli(['import', kind, '--org', org, file]);
    assertImportError(r, file, line, `import ${kind} ${name}`);
  }
  assert.equal((await allItems('leads', secret)).length, 0, 'no lead from any failed file is stored');
  assert.equal((await allItems('invoices', secret)).length, 0, 'no invoice from any failed file is stored');

  // The same org accepts a good file afterwards, so the zero counts above were meaningful.
  await env.importRows('leads', org, [{ name: 'After errors' }]);
  assert.equal((await allItems('leads', secret)).length, 1);
});

test('import fails cleanly on an unknown kind, a missing file, an unknown extension or an unknown org', async () => {
  const org = await env.createOrg('Org Import Misc');
  const ok = env.writeFile('ok.jsonl', JSON.stringify({ name: 'x' }) + '\n');
  assertCleanFailure(await env.cli(['import', 'widgets', '--org', org, ok]), 'unknown import kind');
  assertCleanFailure(await env.cli(['import', 'leads', '--org', org, path.join(env.dir, 'nope.jsonl')]), 'missing file');
  const txt = env.writeFile('leads.txt', 'name\nx\n');
  assertCleanFailure(await env.cli(['import', 'leads', '--org', org, txt]), 'unknown extension');
  assertCleanFailure(await env.cli(['import', 'leads', '--org', 'org_doesnotexist000000', ok]), 'unknown org');
});

test('bad flags, unknown subcommands and malformed --db URLs fail with one line on stderr', async () => {
  const cases = [
    [['frobnicate'], 'unknown subcommand'],
    [['keys', 'frobnicate', '--db', env.dbUrl], 'unknown keys subcommand'],
    [['migrate', '--bogus-flag', '--db', env.dbUrl], 'unknown flag'],
    [['org', 'create', '--owner-email', 'a@example.com', '--db', env.dbUrl], 'missing --name'],
    [['keys', 'create', '--name', 'n', '--scope', 'leads:read', '--db', env.dbUrl], 'missing --org'],
    [['migrate', '--db', 'mysql://root@localhost/devsphere'], 'unsupported db scheme'],
    [['migrate', '--db', 'not a url'], 'malformed db url'],
    [['migrate', '--db', 'postgresql://'], 'incomplete postgresql url'],
    [['migrate', '--db'], '--db without a value'],
  ];
  for (const [args, what] of cases) assertCleanFailure(await run(args), what);
});

test('an unusable database path fails with one line on stderr', async () => {
  const blocker = env.writeFile('a-regular-file', 'x');
  const r = await run(['migrate', '--db', `sqlite:${blocker}/sub/devsphere.db`]);
  assertCleanFailure(r, 'sqlite path under a regular file');
  const pg = await run(['migrate', '--db', 'postgresql://nobody@127.0.0.1:1/devsphere']);
  assertCleanFailure(pg, 'unreachable postgresql');
});
