// The management API client: JSON over fetch with the session cookie.
// Every error becomes an ApiError carrying the contract's {code, message, param}.

export class ApiError extends Error {
  constructor(status, code, message, { param = null, retryAfter = null } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.param = param;
    this.retryAfter = retryAfter;
  }
}

let sessionEnded = null;

/** Registers the handler called when a request answers 401 (the session ended). */
export function onSessionEnded(fn) {
  sessionEnded = fn;
}

/**
 * Sends one request. `body` is sent as JSON on anything but GET (`{}` when
 * absent: the server refuses state-changing requests that are not JSON).
 * Resolves to the parsed body (null for 204); rejects with an ApiError.
 * A 401 also calls the session-ended handler unless `expect401` is set.
 */
export async function request(method, path, body, { expect401 = false } = {}) {
  const init = {
    method,
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { Accept: 'application/json' },
  };
  if (method !== 'GET') {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body ?? {});
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network_error', 'Could not reach DevSphere. Check your connection and try again.');
  }
  if (res.status === 204) return null;
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (res.ok) return data;

  const e = data && typeof data.error === 'object' && data.error ? data.error : {};
  const err = new ApiError(
    res.status,
    e.code || `http_${res.status}`,
    e.message ? sentence(e.message) : `Something went wrong (HTTP ${res.status}). Try again in a moment.`,
    { param: e.param ?? null, retryAfter: res.headers.get('Retry-After') },
  );
  if (res.status === 401 && !expect401 && sessionEnded) sessionEnded(err);
  throw err;
}

/** "name must be 1 to 100 characters" -> "Name must be 1 to 100 characters." */
function sentence(text) {
  const s = String(text).trim();
  if (!s) return s;
  const t = s.charAt(0).toUpperCase() + s.slice(1);
  return /[.!?…]$/.test(t) ? t : `${t}.`;
}

const enc = encodeURIComponent;

function query(params) {
  const q = Object.entries(params)
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${enc(k)}=${enc(v)}`)
    .join('&');
  return q ? `?${q}` : '';
}

export const api = {
  getSession: () => request('GET', '/api/session', null, { expect401: true }),
  signIn: (email, password) => request('POST', '/api/session', { email, password }, { expect401: true }),
  signOut: () => request('DELETE', '/api/session', {}, { expect401: true }),
  listKeys: () => request('GET', '/api/keys'),
  createKey: (body) => request('POST', '/api/keys', body),
  rotateKey: (id, expireOldInSeconds) =>
    request('POST', `/api/keys/${enc(id)}/rotate`, { expire_old_in_seconds: expireOldInSeconds }),
  revokeKey: (id) => request('POST', `/api/keys/${enc(id)}/revoke`, {}),
  keyRequests: (id, { limit = 20, cursor } = {}) =>
    request('GET', `/api/keys/${enc(id)}/requests${query({ limit, cursor })}`),
  keyUsage: (id) => request('GET', `/api/keys/${enc(id)}/usage`),
  auditEvents: ({ limit = 25, cursor } = {}) => request('GET', `/api/audit-events${query({ limit, cursor })}`),
};
