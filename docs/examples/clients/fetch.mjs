#!/usr/bin/env node
// The DevSphere API v1 with fetch (Node 18 or later, no packages): list leads,
// get one lead, then page through all of them with the cursor.
//
//   export DVS_API_KEY=dvs_live_...               # a key with the leads:read scope
//   export DVS_API_URL=http://127.0.0.1:8080      # optional; this is the default
//   DVS_PAGE_SIZE=100 node docs/examples/clients/fetch.mjs
//
// The same code runs in a browser or Deno, given the URL and the key (never
// ship a key to a browser you do not control).

const API_URL = (process.env.DVS_API_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
const API_KEY = process.env.DVS_API_KEY || '';
const PAGE_SIZE = Number(process.env.DVS_PAGE_SIZE || 100);

/** An error answer: HTTP status, error.code, error.message, X-Request-Id, Retry-After. */
class ApiError extends Error {
  constructor(what, status, code, message, requestId, retryAfter) {
    super(`${what}: HTTP ${status} ${code}: ${message} (request ${requestId})`);
    Object.assign(this, { status, code, requestId, retryAfter });
  }
}

/** GETs a /v1 path with the key; resolves to the decoded JSON body or rejects with ApiError. */
async function get(path, params = {}) {
  const url = new URL(API_URL + path);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
  const res = await fetch(url, { headers: { Authorization: `Bearer ${API_KEY}` }, signal: AbortSignal.timeout(30_000) });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const error = body.error || {};
    throw new ApiError(`GET ${path}`, res.status, error.code, error.message, res.headers.get('x-request-id'), res.headers.get('retry-after'));
  }
  return body;
}

/** Yields every page of leads, newest first, following next_cursor. */
async function* allLeads(pageSize = PAGE_SIZE, filters = {}) {
  let cursor;
  for (;;) {
    const page = await get('/v1/leads', { limit: pageSize, cursor, ...filters });
    yield page;
    if (!page.has_more) return;
    cursor = page.next_cursor;
  }
}

async function main() {
  if (!API_KEY) {
    console.error('set DVS_API_KEY to an API key (dvs_live_...)');
    process.exit(2);
  }
  try {
    console.log('# GET /v1/leads?limit=2');
    const first = await get('/v1/leads', { limit: 2 });
    console.log(JSON.stringify(first));
    if (first.data.length > 0) {
      const id = first.data[0].id;
      console.log(`# GET /v1/leads/${id}`);
      console.log(JSON.stringify(await get(`/v1/leads/${encodeURIComponent(id)}`)));
    }
    console.log(`# all leads, ${PAGE_SIZE} per page`);
    let total = 0;
    let pages = 0;
    for await (const page of allLeads()) {
      pages += 1;
      total += page.data.length;
      console.log(`page ${pages}: ${page.data.map((l) => l.id).join(' ')}`);
    }
    console.log(`total: ${total} lead${total === 1 ? '' : 's'} in ${pages} page${pages === 1 ? '' : 's'}`);
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    console.error(`error: ${e.message}`);
    if (e.status === 429) console.error(`rate limited: retry after ${e.retryAfter} seconds`);
    process.exit(1);
  }
}

await main();
