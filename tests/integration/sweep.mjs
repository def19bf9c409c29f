#!/usr/bin/env node
// Secrets sweep, run by scripts/test.sh after the whole integration suite:
//
//   DVS_TEST_SWEEP_DIR=DIR node --test tests/integration/   # each Env saves into DIR
//   node tests/integration/sweep.mjs DIR [EXTRA_DIR...]
//
// DIR holds one folder per test Env (see the recorder at the end of
// lib/harness.mjs): files/ — everything the service wrote for that Env (the
// database at rest: SQLite files incl. -wal, or a dump of its PostgreSQL
// database; each server's stdout and stderr) — and needles.json — every key
// secret the Env saw issued, every password and session cookie it used, every
// Authorization credential it sent. EXTRA_DIRs (e.g. a PostgreSQL data
// directory) are searched as they are.
//
// Checks, each counted once per Env (and once per extra dir):
//   1. no recorded key secret (nor its 32-character random part), password,
//      session token or Authorization credential from ANY Env, raw or
//      hex-encoded, in any file;
//   2. no well-formed key (dvs_live_ + 38, valid checksum) at all, recorded
//      or not — the server may not write one anywhere;
//   3. no session token after "dvs_session=";
//   4. no "Authorization: ..." / "Bearer <token>" dump and no JSON "password" field.
// Prints "sweep: N passed, M failed" and exits 1 on any failure, and also if
// there is nothing to search (the recorder did not run) or a save failed.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checksumOf } from './lib/keyformat.mjs';

const KIND_LABEL = {
  secrets: 'key secret', passwords: 'password', cookies: 'session cookie', authorization: 'Authorization credential',
};
const validKey = (k) => checksumOf(k.slice(9, 41)) === k.slice(41, 47);

function walk(dir) {
  const out = [];
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** Byte patterns for a needle (at least 8 bytes): raw, and hex as PostgreSQL dumps bytea. */
function forms(s) {
  const raw = Buffer.from(s, 'utf8');
  const hex = raw.toString('hex');
  return [raw, Buffer.from(hex), Buffer.from(hex.toUpperCase())];
}

export function sweep(sweepDir, extraDirs = []) {
  const results = []; // {name, ok, details}
  const check = (name, details) => results.push({ name, ok: details.length === 0, details });

  const errorsFile = path.join(sweepDir, 'ERRORS');
  check('every Env was saved for the sweep', fs.existsSync(errorsFile) ? fs.readFileSync(errorsFile, 'utf8').split('\n').filter(Boolean) : []);

  const envDirs = fs.existsSync(sweepDir)
    ? fs.readdirSync(sweepDir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join(sweepDir, e.name))
    : [];
  const needles = []; // {kind, value, env}
  const envs = [];
  for (const d of envDirs) {
    const f = path.join(d, 'needles.json');
    if (!fs.existsSync(f)) continue;
    const n = JSON.parse(fs.readFileSync(f, 'utf8'));
    envs.push({ dir: d, name: n.env || path.basename(d), files: walk(path.join(d, 'files')) });
    for (const kind of ['secrets', 'passwords', 'cookies', 'authorization']) {
      for (const v of n[kind] || []) {
        const label = KIND_LABEL[kind];
        // Named in reports without revealing it: a key by its public hint, anything else by its length.
        const shown = /^dvs_live_/.test(v) ? `${v.slice(0, 13)}…` : `${v.length} characters`;
        needles.push({ kind: label, value: v, env: n.env, shown });
        // A key's random part alone is as good as the key.
        if (kind !== 'passwords' && /^dvs_live_[0-9A-Za-z]{38}$/.test(v)) needles.push({ kind: `${label} (its random part)`, value: v.slice(9, 41), env: n.env, shown });
      }
    }
  }
  check('there is something to sweep (Envs saved, needles recorded)', [
    ...(envs.length === 0 ? [`no Env folders with needles.json under ${sweepDir}`] : []),
    ...Object.values(KIND_LABEL).filter((l) => !needles.some((n) => n.kind === l)).map((l) => `no ${l} was recorded`),
  ]);
  // Index every form of every needle by its first 8 bytes, then slide an
  // 8-byte window over each file once (thousands of needles, megabytes of files).
  const index = new Map(); // 8-byte prefix (latin1) -> [{needle, form}]
  for (const n of needles) {
    for (const f of forms(n.value)) {
      const key = f.subarray(0, 8).toString('latin1');
      if (!index.has(key)) index.set(key, []);
      index.get(key).push({ n, form: f.toString('latin1') });
    }
  }
  const findNeedles = (text) => {
    const hits = new Set();
    for (let i = 0; i + 8 <= text.length; i++) {
      const cands = index.get(text.substr(i, 8));
      if (!cands) continue;
      for (const c of cands) if (text.startsWith(c.form, i)) hits.add(c.n);
    }
    return hits;
  };

  const groups = [
    ...envs.map((e) => ({ label: `Env ${e.name} (${path.basename(e.dir)})`, files: e.files })),
    ...extraDirs.map((d) => ({ label: `extra dir ${d}`, files: walk(d) })),
  ];
  let bytes = 0;
  let fileCount = 0;
  for (const g of groups) {
    const recorded = [];
    const keys = [];
    const cookies = [];
    const dumps = [];
    for (const f of g.files) {
      let content;
      try {
        content = fs.readFileSync(f);
      } catch {
        continue; // a file of a running PostgreSQL that went away
      }
      bytes += content.length;
      fileCount++;
      const rel = path.relative(sweepDir, f).startsWith('..') ? f : path.relative(sweepDir, f);
      const text = content.toString('latin1');
      for (const n of findNeedles(text)) recorded.push(`${rel}: ${n.kind} of ${n.env} (${n.shown})`);
      for (const m of text.matchAll(/dvs_live_[0-9A-Za-z]{38}/g)) if (validKey(m[0])) keys.push(`${rel}: a well-formed key ${m[0].slice(0, 13)}…`);
      for (const m of text.matchAll(/dvs_session=([A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])/g)) cookies.push(`${rel}: a session cookie`);
      for (const m of text.matchAll(/(authorization\s*[:=]\s*\S+|bearer\s+[A-Za-z0-9_\-.~+/]{20,}|"password"\s*:\s*")/gi)) dumps.push(`${rel}: ${JSON.stringify(m[0].slice(0, 16))}…`);
    }
    check(`${g.label}: no recorded secret, password, cookie or credential`, recorded);
    check(`${g.label}: no well-formed API key`, keys);
    check(`${g.label}: no session cookie`, cookies);
    check(`${g.label}: no Authorization header, Bearer token or password field`, dumps);
  }
  return { results, envs: envs.length, needles: needles.length, files: fileCount, bytes };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [dir, ...extra] = process.argv.slice(2);
  if (!dir) {
    console.error('usage: node tests/integration/sweep.mjs SWEEP_DIR [EXTRA_DIR...]');
    process.exit(2);
  }
  const r = sweep(dir, extra);
  const failed = r.results.filter((x) => !x.ok);
  for (const f of failed) {
    console.log(`FAIL ${f.name}`);
    for (const d of f.details.slice(0, 20)) console.log(`  ${d}`);
    if (f.details.length > 20) console.log(`  … and ${f.details.length - 20} more`);
  }
  console.log(`sweep: searched ${r.files} files (${(r.bytes / 1048576).toFixed(1)} MiB) of ${r.envs} test environments for ${r.needles} recorded values`);
  console.log(`sweep: ${r.results.length - failed.length} passed, ${failed.length} failed`);
  process.exit(failed.length ? 1 : 0);
}
