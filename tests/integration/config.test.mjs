// Configuration (flags, DVS_* environment, --config file, --print-config),
// logs (text or JSON lines, the access log) and the command line's help.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Env, run, pollUntil } from './lib/harness.mjs';

const env = new Env('dvs-config');
after(async () => env.cleanup());

test('--print-config shows the effective settings with secrets masked', async () => {
  const r = await run(['serve', '--print-config', '--db', 'postgresql://dvs:Sup3rSecret@db:5432/dvs',
    '--redis', 'redis://:R3disPass@cache:6379', '--threads', '3', '--nodes', '2'],
  { env: { ...process.env, DVS_KEY_PEPPER: 'PepperValue123' } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^db = postgresql:\/\/dvs:\*\*\*@db:5432\/dvs$/m);
  assert.match(r.stdout, /^redis = redis:\/\/:\*\*\*@cache:6379$/m);
  assert.match(r.stdout, /^threads = 3$/m);
  assert.match(r.stdout, /^nodes = 2$/m);
  assert.match(r.stdout, /^key_pepper = \(set\)$/m);
  for (const secret of ['Sup3rSecret', 'R3disPass', 'PepperValue123'])
    assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), `${secret} leaked`);
});

test('settings come from flags, then the --config file, then DVS_* variables', async () => {
  const file = path.join(env.dir, 'devsphere.toml');
  fs.writeFileSync(file, '[serve]\nlisten = "127.0.0.1:9999"\nthreads = 5\nmax-connections = 77\n');
  const fromFile = await run(['--config', file, 'serve', '--print-config']);
  assert.equal(fromFile.code, 0, fromFile.stderr);
  assert.match(fromFile.stdout, /^listen = 127\.0\.0\.1:9999$/m);
  assert.match(fromFile.stdout, /^threads = 5$/m);
  assert.match(fromFile.stdout, /^max_connections = 77$/m);
  const fileWins = await run(['--config', file, 'serve', '--print-config'],
    { env: { ...process.env, DVS_LISTEN: '127.0.0.1:8888', DVS_NODES: '3' } });
  assert.match(fileWins.stdout, /^listen = 127\.0\.0\.1:9999$/m);
  assert.match(fileWins.stdout, /^nodes = 3$/m, 'the environment fills what the file leaves out');
  const flagWins = await run(['--config', file, 'serve', '--print-config', '--listen', '127.0.0.1:7777'],
    { env: { ...process.env, DVS_LISTEN: '127.0.0.1:8888' } });
  assert.match(flagWins.stdout, /^listen = 127\.0\.0\.1:7777$/m);
  const viaEnv = await run(['serve', '--print-config'], { env: { ...process.env, DVS_CONFIG: file } });
  assert.match(viaEnv.stdout, /^threads = 5$/m);
});

test('a missing config file or a bad setting is one line on stderr and a non-zero exit', async () => {
  for (const args of [['--config', '/nonexistent/devsphere.toml', 'serve', '--print-config'],
    ['serve', '--log-level', 'loud'], ['serve', '--log-format', 'xml'], ['serve', '--threads', '0']]) {
    const r = await run(args);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.ok(r.code < 128, `crashed: ${r.code}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: ${r.stderr}`);
  }
});

test('JSON logs: one object per line, with the access log carrying request id, route, status, latency and key id', async () => {
  await env.migrate();
  const org = await env.createOrg('Logs Org');
  const { id, secret } = await env.createKey(org, { name: 'logs' });
  const server = await env.startServer({ extraArgs: ['--log-format', 'json', '--access-log'] });
  const ok = await server.req('/v1/leads', { key: secret });
  const bad = await server.req('/v1/leads', { key: 'dvs_live_wrong' });
  await server.stop('SIGTERM');
  const lines = server.stderr().trim().split('\n');
  const objects = lines.map((l) => {
    try { return JSON.parse(l); } catch { assert.fail(`not a JSON line: ${l}`); }
    return null;
  });
  for (const o of objects) {
    assert.match(o.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(['trace', 'debug', 'info', 'warning', 'warn', 'error', 'critical'].includes(o.level), o.level);
  }
  const access = objects.filter((o) => o.msg === 'request');
  const mine = access.find((o) => o.request_id === ok.headers.get('x-request-id'));
  assert.ok(mine, 'the access log has the request');
  assert.equal(mine.route, 'GET /v1/leads');
  assert.equal(mine.status, 200);
  assert.equal(mine.key_id, id);
  assert.ok(Number.isInteger(mine.latency_us) && mine.latency_us >= 0);
  const rejected = access.find((o) => o.request_id === bad.headers.get('x-request-id'));
  assert.equal(rejected.status, 401);
  assert.equal(rejected.key_id, null);
  const all = server.stderr() + server.stdout();
  assert.ok(!all.includes(secret.slice(9)), 'no secret in the logs');
});

test('--log-level warn hides info lines', async () => {
  const server = await env.startServer({ extraArgs: ['--log-level', 'warn', '--access-log'] });
  await server.req('/healthz');
  await server.stop('SIGTERM');
  assert.ok(!/ info /.test(server.stderr()), server.stderr());
});

test('--help of the program and of every subcommand exits 0 and names its options', async () => {
  const cases = [
    [[], ['serve', 'migrate', 'org', 'user', 'keys', 'import', 'demo', '--config']],
    [['serve'], ['--listen', '--db', '--redis', '--nodes', '--threads', '--db-pool', '--trusted-proxy',
      '--max-connections', '--read-timeout', '--idle-timeout', '--write-timeout', '--demo', '--log-format', '--log-level',
      '--access-log', '--print-config']],
    [['migrate'], ['--db']],
    [['org', 'create'], ['--name', '--owner-email', '--owner-password-stdin', '--db']],
    [['user', 'add'], ['--org', '--email', '--role', '--password-stdin', '--db']],
    [['keys', 'create'], ['--org', '--name', '--scope', '--expires-in', '--rate-limit', '--db']],
    [['keys', 'list'], ['--org', '--json', '--db']],
    [['keys', 'revoke'], ['KEY_ID', '--db']],
    [['keys', 'rotate'], ['KEY_ID', '--db']],
    [['import'], ['KIND', 'FILE', '--org', '--db']],
    [['demo'], ['--db']],
  ];
  for (const [cmd, names] of cases) {
    const r = await run([...cmd, '--help']);
    assert.equal(r.code, 0, `${cmd.join(' ')} --help: ${r.stderr}`);
    for (const n of names) assert.ok(r.stdout.includes(n), `${cmd.join(' ') || 'devsphere'} --help lacks ${n}`);
  }
});

test('the access log can be followed while serving (it is written as requests happen)', async () => {
  const server = await env.startServer({ extraArgs: ['--access-log'] });
  const r = await server.req('/healthz');
  const rid = r.headers.get('x-request-id');
  await pollUntil(() => server.stderr().includes(rid), { what: 'access line' });
  await server.stop('SIGTERM');
});
