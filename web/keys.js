// Settings → API keys: the list, one key's page, and the create / secret /
// rotate / revoke dialogs.
//
// A secret lives only in the secret dialog's input while that dialog is open:
// it is never logged, stored or put in the URL, and it is wiped on close.

import { $, h, cell, replace, notice } from './dom.js';
import { api } from './api.js';
import { timeEl, relative, formatFull, formatNumber, toRfc3339, localDateString } from './format.js';
import { toBuckets, summarize, drawChart } from './chart.js';

const DAY = 86_400_000;
const SCOPES = {
  'leads:read': 'Read leads',
  'invoices:read': 'Read invoices',
};
const STATUS = { active: 'Active', expired: 'Expired', revoked: 'Revoked' };
const CREATE_PARAMS = ['name', 'scopes', 'expires_at', 'rate_limit_per_minute'];

let ctx = null;
let loadedOnce = false;
let highlightId = null;    // the key created or rotated last: flashed in the list, focused after the secret closes
let detail = null;         // {key, buckets, cursor} of the key page on screen
let focusNewRow = false;   // the secret dialog closed before the list showed the new key

export function init(context) {
  ctx = context;
  for (const btn of document.querySelectorAll('dialog [data-close]')) {
    btn.addEventListener('click', () => btn.closest('dialog').close());
  }
  $('create-key').addEventListener('click', openCreate);
  $('create-key-empty').addEventListener('click', openCreate);
  $('create-form').addEventListener('submit', submitCreate);
  $('create-expiry').addEventListener('change', onExpiryChange);
  $('create-form').addEventListener('input', onCreateInput);
  $('create-form').addEventListener('change', onCreateInput);
  $('secret-copy').addEventListener('click', copySecret);
  // Wipe before closing: the dialog's 'close' event (onSecretClosed) fires a
  // task later, and the secret must not outlive the click.
  $('secret-done').addEventListener('click', () => {
    $('secret-value').value = '';
    $('dlg-secret').close();
  });
  $('dlg-secret').addEventListener('cancel', (ev) => {
    // Escape must not lose the secret by accident: closing is explicit.
    ev.preventDefault();
    $('secret-copy-status').textContent = 'Copy the secret, then choose “I have stored it” to close.';
  });
  $('dlg-secret').addEventListener('close', onSecretClosed);
  $('rotate-form').addEventListener('submit', submitRotate);
  $('revoke-form').addEventListener('submit', submitRevoke);
  $('key-rotate').addEventListener('click', () => detail && openRotate(detail.key));
  $('key-revoke').addEventListener('click', () => detail && openRevoke(detail.key));
  $('requests-more').addEventListener('click', () => detail && loadRequests(detail.token, detail.key.id, true));
  $('requests-refresh').addEventListener('click', () => ctx.refresh());
  new ResizeObserver(() => redrawChart(false)).observe($('chart'));
}

/** Forgets everything about the signed-out session. */
export function reset() {
  loadedOnce = false;
  focusNewRow = false;
  highlightId = null;
  detail = null;
  replace($('keys-body'));
  replace($('requests-body'));
  replace($('key-details'));
  replace($('chart'));
}

function handleLoadError(e, el, what) {
  if (e.status === 401) return;               // the session-ended handler takes over
  if (e.status === 403) { ctx.forbidden(); return; }
  notice(el, `Could not load ${what}. ${e.message}`);
}

// ---------------------------------------------------------------------------
// Small pieces

function scopePills(scopes) {
  return h('span', { class: 'pills' },
    scopes.map((s) => h('span', { class: 'pill', text: s, attrs: { title: SCOPES[s] ?? s } })));
}

function statusBadge(k) {
  const b = h('span', { class: `badge badge-${k.status}`, text: STATUS[k.status] ?? k.status });
  if (k.status === 'revoked' && k.revoked_at) b.title = `Revoked ${formatFull(new Date(k.revoked_at))}`;
  return b;
}

function expiresCell(k) {
  if (k.status === 'revoked') return h('span', { class: 'muted', text: '—', attrs: { title: 'Revoked keys never work again' } });
  if (!k.expires_at) return h('span', { class: 'muted', text: 'Never' });
  const t = timeEl(k.expires_at);
  const left = Date.parse(k.expires_at) - Date.now();
  if (k.status === 'active' && left < 7 * DAY) t.classList.add('soon');
  return t;
}

function lastUsed(k) {
  return k.last_used_at ? timeEl(k.last_used_at) : h('span', { class: 'muted', text: 'Never' });
}

function hint(k) {
  return h('code', { class: 'hint', text: `${k.hint}…`, attrs: { title: 'The start of the secret' } });
}

function button(label, cls, onClick, ariaLabel) {
  return h('button', {
    class: cls, text: label, attrs: { type: 'button', 'aria-label': ariaLabel }, on: { click: onClick },
  });
}

// ---------------------------------------------------------------------------
// The list

export async function showList(token, { focus }) {
  $('view-keys').hidden = false;
  if (focus) $('keys-title').focus();
  notice($('keys-error'), '');
  if (!loadedOnce) {
    $('keys-loading').hidden = false;
    $('keys-empty').hidden = true;
    $('keys-table-wrap').hidden = true;
  }
  try {
    const res = await api.listKeys();
    if (!ctx.isCurrent(token)) return;
    loadedOnce = true;
    renderList(res.data ?? []);
  } catch (e) {
    if (!ctx.isCurrent(token)) return;
    handleLoadError(e, $('keys-error'), 'your API keys');
  } finally {
    if (ctx.isCurrent(token)) $('keys-loading').hidden = true;
  }
}

function renderList(list) {
  $('keys-empty').hidden = list.length > 0;
  $('keys-table-wrap').hidden = list.length === 0;
  $('create-key').hidden = list.length === 0;   // the empty state has its own button
  replace($('keys-body'), list.map(keyRow));
  if (focusNewRow && !$('dlg-secret').open) {
    focusNewRow = false;
    newRowLink()?.focus();
  }
}

function newRowLink() {
  if (!highlightId) return null;
  const link = document.querySelector(`tr[data-key-id="${CSS.escape(highlightId)}"] .key-name`);
  return link && link.offsetParent !== null ? link : null;
}

function keyRow(k) {
  const classes = [];
  if (k.status !== 'active') classes.push('row-dim');
  if (k.id === highlightId) classes.push('row-new');
  const created = [timeEl(k.created_at)];
  if (k.created_by) created.push(h('span', { class: 'sub', text: `by ${k.created_by.email}` }));
  const actions = k.status === 'active'
    ? [
      // Names can repeat (a rotated key keeps its name): the hint tells the buttons apart.
      button('Rotate', 'btn btn-ghost btn-sm', () => openRotate(k), `Rotate ${k.name} (${k.hint}…)`),
      button('Revoke', 'btn btn-ghost btn-sm danger', () => openRevoke(k), `Revoke ${k.name} (${k.hint}…)`),
    ]
    : [];
  return h('tr', { class: classes.join(' '), data: { keyId: k.id } },
    h('td', { class: 'cell-primary', data: { label: 'Name' } },
      h('a', { class: 'key-name', text: k.name, attrs: { href: `#/settings/api-keys/${k.id}` } })),
    cell('Key', hint(k)),
    cell('Permissions', scopePills(k.scopes)),
    cell('Status', statusBadge(k)),
    cell('Created', created),
    cell('Last used', lastUsed(k)),
    cell('Expires', expiresCell(k)),
    h('td', { class: 'cell-actions' }, actions));
}

// ---------------------------------------------------------------------------
// One key

export async function showDetail(token, id, { focus }) {
  $('view-key').hidden = false;
  notice($('key-error'), '');
  const sameKey = detail?.key.id === id;
  if (!sameKey) {
    // Another key: drop what the page showed for the previous one.
    $('key-body').hidden = true;
    $('key-crumb').textContent = 'Loading…';
    replace($('chart-summary'), 'Loading usage…');
    replace($('chart'));
    replace($('requests-body'));
    $('requests-table').hidden = true;
    $('requests-empty').hidden = true;
    $('requests-more-wrap').hidden = true;
  }
  try {
    const res = await api.listKeys();
    if (!ctx.isCurrent(token)) return;
    const k = (res.data ?? []).find((x) => x.id === id);
    if (!k) {
      detail = null;
      $('key-body').hidden = true;
      $('key-crumb').textContent = 'Not found';
      notice($('key-error'), 'There is no such key in your organization. It may have been deleted, or the link is wrong.');
      return;
    }
    detail = { key: k, token, buckets: sameKey ? detail.buckets : null, cursor: null };
    renderDetail(k);
    $('key-body').hidden = false;
    if (focus) $('key-title').focus();
    loadUsage(token, id);
    loadRequests(token, id, false);
  } catch (e) {
    if (!ctx.isCurrent(token)) return;
    handleLoadError(e, $('key-error'), 'this key');
  }
}

function renderDetail(k) {
  document.title = `${k.name} · API keys · DevSphere`;
  $('key-crumb').textContent = k.name;
  $('key-title').textContent = k.name;
  const status = $('key-status');
  status.className = `badge badge-${k.status}`;
  status.textContent = STATUS[k.status] ?? k.status;
  $('key-actions').hidden = k.status !== 'active';
  $('key-rotate').setAttribute('aria-label', `Rotate ${k.name} (${k.hint}…)`);
  $('key-revoke').setAttribute('aria-label', `Revoke ${k.name} (${k.hint}…)`);

  const item = (term, ...value) => [h('div', {}, h('dt', { text: term }), h('dd', {}, value))];
  const wide = (term, ...value) => [h('div', { class: 'wide' }, h('dt', { text: term }), h('dd', {}, value))];
  const created = [timeEl(k.created_at, 'datetime')];
  if (k.created_by) created.push(h('span', { class: 'sub', text: `by ${k.created_by.email}` }));
  const expires = k.expires_at
    ? [timeEl(k.expires_at, 'datetime'), h('span', { class: 'sub', text: relative(new Date(k.expires_at)) })]
    : [h('span', { class: 'muted', text: 'Never' })];
  replace($('key-details'),
    item('Secret', hint(k)),
    wide('Key ID', h('code', { class: 'hint', text: k.id })),
    item('Permissions', h('span', { class: 'pills' },
      k.scopes.map((s) => h('span', { class: 'pill', text: s, attrs: { title: SCOPES[s] ?? s } })))),
    item('Rate limit', `${formatNumber(k.rate_limit_per_minute)} requests per minute`),
    item('Created', created),
    item('Last used', lastUsed(k)),
    item(k.status === 'expired' ? 'Expired' : 'Expires', expires),
    k.revoked_at ? item('Revoked', timeEl(k.revoked_at, 'datetime')) : null);
}

async function loadUsage(token, id) {
  try {
    const res = await api.keyUsage(id);
    if (!ctx.isCurrent(token) || detail?.key.id !== id) return;
    detail.buckets = toBuckets(res.data);
  } catch (e) {
    if (!ctx.isCurrent(token)) return;
    if (e.status === 401) return;
    detail.buckets = null;
    replace($('chart-summary'), `Could not load usage. ${e.message}`);
    replace($('chart'));
    return;
  }
  const s = summarize(detail.buckets);
  if (s.total > 0) {
    const rest = s.text.slice(s.text.indexOf(' '));   // the sentence after the number
    replace($('chart-summary'), h('strong', { text: formatNumber(s.total) }), rest);
  } else {
    replace($('chart-summary'), s.text);
  }
  redrawChart();
}

let lastChartWidth = 0;
function redrawChart(force = true) {
  const el = $('chart');
  if (!detail?.buckets || el.offsetParent === null) return;
  const w = Math.floor(el.getBoundingClientRect().width);
  if (!force && w === lastChartWidth) return;
  lastChartWidth = w;
  drawChart(el, detail.buckets, 'chart-summary');
}

async function loadRequests(token, id, more) {
  const moreBtn = $('requests-more');
  moreBtn.disabled = true;
  try {
    const res = await api.keyRequests(id, { limit: 20, cursor: more ? detail.cursor : undefined });
    if (!ctx.isCurrent(token) || detail?.key.id !== id) return;
    const rows = (res.data ?? []).map(requestRow);
    if (more) $('requests-body').append(...rows);
    else replace($('requests-body'), rows);
    detail.cursor = res.has_more ? res.next_cursor : null;
    const any = $('requests-body').children.length > 0;
    $('requests-table').hidden = !any;
    $('requests-empty').hidden = any;
    $('requests-more-wrap').hidden = !detail.cursor;
  } catch (e) {
    if (!ctx.isCurrent(token) || e.status === 401) return;
    ctx.toast(`Could not load requests. ${e.message}`);
  } finally {
    moreBtn.disabled = false;
  }
}

function statusClass(code) {
  if (code >= 500) return 'badge-bad';
  if (code >= 400) return 'badge-warn';
  if (code >= 300) return 'badge-info';
  return 'badge-ok';
}

function requestRow(r) {
  return h('tr', {},
    cell('Time', timeEl(r.created_at, 'seconds', 'nowrap')),
    cell('Method', h('span', { class: 'method', text: r.method })),
    cell('Path', h('span', { class: 'path', text: r.path })),
    cell('Status', h('span', { class: `badge nodot ${statusClass(r.status)}`, text: String(r.status) })),
    cell('IP address', h('span', { class: 'path', text: r.client_ip || '—' })));
}

// ---------------------------------------------------------------------------
// Create

function openCreate() {
  const form = $('create-form');
  form.reset();
  clearCreateErrors();
  onExpiryChange();
  $('create-submit').disabled = false;
  $('dlg-create').showModal();
  $('create-name').focus();
}

function onExpiryChange() {
  const isDate = $('create-expiry').value === 'date';
  $('create-date-field').hidden = !isDate;
  const date = $('create-date');
  date.min = localDateString(new Date(Date.now() + DAY));
  if (isDate && !date.value) date.value = localDateString(new Date(Date.now() + 30 * DAY));
}

function createInputs(param) {
  switch (param) {
    case 'name': return [$('create-name')];
    case 'scopes': return [...document.querySelectorAll('#create-form input[name="scopes"]')];
    case 'expires_at': return [$('create-expiry').value === 'date' ? $('create-date') : $('create-expiry')];
    case 'rate_limit_per_minute': return [$('create-rate')];
    default: return [];
  }
}

const PARAM_OF_INPUT = {
  'create-name': 'name', 'create-expiry': 'expires_at', 'create-date': 'expires_at', 'create-rate': 'rate_limit_per_minute',
};

/** Editing a field clears its error. */
function onCreateInput(ev) {
  const param = ev.target.name === 'scopes' ? 'scopes' : PARAM_OF_INPUT[ev.target.id];
  if (!param) return;
  notice($(`create-${param}-error`), '');
  for (const el of createInputs(param)) el.removeAttribute('aria-invalid');
}

function clearCreateErrors() {
  notice($('create-error'), '');
  for (const p of CREATE_PARAMS) {
    notice($(`create-${p}-error`), '');
    for (const el of createInputs(p)) el.removeAttribute('aria-invalid');
  }
}

function showCreateError(param, message) {
  notice($(`create-${param}-error`), message);
  for (const el of createInputs(param)) el.setAttribute('aria-invalid', 'true');
}

function readCreateForm() {
  const errors = {};
  const name = $('create-name').value.trim();
  if (!name) errors.name = 'Give the key a name, e.g. the system that will use it.';
  else if (name.length > 100) errors.name = 'Use at most 100 characters.';

  const scopes = [...document.querySelectorAll('#create-form input[name="scopes"]:checked')].map((i) => i.value);
  if (scopes.length === 0) errors.scopes = 'Choose at least one permission.';

  let expiresAt = null;
  const expiry = $('create-expiry').value;
  if (expiry === 'date') {
    const v = $('create-date').value;
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v);
    if (!m) {
      errors.expires_at = 'Pick the date the key should stop working.';
    } else {
      // The key works until the end of the chosen day, in the user's time zone.
      const end = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), 23, 59, 59);
      if (end.getTime() <= Date.now()) errors.expires_at = 'Pick a date in the future.';
      else expiresAt = toRfc3339(end);
    }
  } else if (expiry !== 'never') {
    expiresAt = toRfc3339(new Date(Date.now() + Number(expiry) * DAY));
  }

  const rateEl = $('create-rate');
  const rateRaw = rateEl.value.trim();
  let rate;
  if (rateRaw !== '' || rateEl.validity.badInput) {
    const n = Number(rateRaw);
    if (!rateRaw || !Number.isInteger(n) || n < 1 || n > 100000) {
      errors.rate_limit_per_minute = 'Enter a whole number from 1 to 100,000, or leave it empty for 120.';
    } else {
      rate = n;
    }
  }

  const body = { name, scopes, expires_at: expiresAt };
  if (rate !== undefined) body.rate_limit_per_minute = rate;
  return { body, errors };
}

async function submitCreate(ev) {
  ev.preventDefault();
  const submit = $('create-submit');
  if (submit.disabled) return;
  clearCreateErrors();
  const { body, errors } = readCreateForm();
  const bad = CREATE_PARAMS.filter((p) => errors[p]);
  if (bad.length) {
    for (const p of bad) showCreateError(p, errors[p]);
    createInputs(bad[0])[0]?.focus();
    return;
  }
  submit.disabled = true;
  submit.textContent = 'Creating…';
  try {
    const res = await api.createKey(body);
    $('dlg-create').close();
    highlightId = res.key.id;
    showSecret(res.secret, res.key, null);
    ctx.toast(`API key “${res.key.name}” created.`);
    ctx.refresh();
  } catch (e) {
    if (e.status === 401) return;
    if (e.status === 403) { $('dlg-create').close(); ctx.forbidden(); return; }
    if (e.param && CREATE_PARAMS.includes(e.param)) {
      showCreateError(e.param, e.message);
      createInputs(e.param)[0]?.focus();
    } else {
      notice($('create-error'), e.message);
    }
  } finally {
    submit.disabled = false;
    submit.textContent = 'Create key';
  }
}

// ---------------------------------------------------------------------------
// The secret, shown once

let copyTimer = 0;

function showSecret(secret, key, replaced) {
  $('secret-title').textContent = replaced ? 'Save the new secret' : 'Save your secret key';
  $('secret-intro').textContent = replaced
    ? `“${key.name}” has a new secret. Put it in place of the old one.`
    : `“${key.name}” is ready to use.`;
  $('secret-value').value = secret;
  $('secret-copy-status').textContent = '';
  $('secret-copy').textContent = 'Copy';
  $('secret-copy').setAttribute('aria-label', 'Copy the secret key');
  $('secret-usage').textContent =
    `curl ${location.origin}/v1/leads \\\n  -H "Authorization: Bearer $DEVSPHERE_API_KEY"`;

  const old = $('secret-old');
  if (replaced) {
    const until = replaced.expires_at ? Date.parse(replaced.expires_at) : NaN;
    const stillWorks = replaced.status === 'active' && Number.isFinite(until) && until > Date.now();
    old.textContent = stillWorks
      ? `The old secret (${replaced.hint}…) keeps working until ${formatFull(new Date(until))}, ${relative(new Date(until))}.`
      : `The old secret (${replaced.hint}…) has stopped working.`;
    old.hidden = false;
  } else {
    old.hidden = true;
    old.textContent = '';
  }
  $('dlg-secret').showModal();
  $('secret-copy').focus();
}

async function copySecret() {
  const input = $('secret-value');
  const value = input.value;
  if (!value) return;
  let ok = false;
  try {
    await navigator.clipboard.writeText(value);
    ok = true;
  } catch {
    input.focus();
    input.select();
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
  }
  const status = $('secret-copy-status');
  status.textContent = ok
    ? 'Copied to your clipboard.'
    : 'Could not copy automatically. The secret is selected: press Ctrl+C (⌘C on a Mac).';
  status.classList.toggle('copied', ok);
  if (ok) {
    const btn = $('secret-copy');
    btn.textContent = 'Copied ✓';
    clearTimeout(copyTimer);
    copyTimer = setTimeout(() => { btn.textContent = 'Copy'; }, 2500);
  }
}

function onSecretClosed() {
  // Wipe the secret from the page.
  $('secret-value').value = '';
  $('secret-copy-status').textContent = '';
  $('secret-copy-status').classList.remove('copied');
  clearTimeout(copyTimer);
  // Put focus somewhere sensible: the new key's row, else the page heading.
  const link = newRowLink();
  if (link) {
    link.focus();
  } else if (!$('view-key').hidden && !$('key-body').hidden) {
    $('key-title').focus();
  } else if (!$('view-keys').hidden) {
    focusNewRow = true;              // the list is still loading: focus the row when it arrives
    $('keys-title').focus();
  }
}

// ---------------------------------------------------------------------------
// Rotate and revoke

let rotating = null;
let revoking = null;

function openRotate(k) {
  rotating = k;
  $('rotate-title').textContent = `Rotate “${k.name}”?`;
  $('rotate-form').reset();
  notice($('rotate-error'), '');
  $('rotate-submit').disabled = false;
  $('dlg-rotate').showModal();
  $('rotate-form').querySelector('input[name="expire_old"]:checked').focus();
}

async function submitRotate(ev) {
  ev.preventDefault();
  const submit = $('rotate-submit');
  if (!rotating || submit.disabled) return;
  const k = rotating;
  const seconds = Number($('rotate-form').querySelector('input[name="expire_old"]:checked').value);
  submit.disabled = true;
  submit.textContent = 'Rotating…';
  try {
    const res = await api.rotateKey(k.id, seconds);
    $('dlg-rotate').close();
    highlightId = res.key.id;
    showSecret(res.secret, res.key, res.replaced ?? null);
    ctx.toast(`“${k.name}” was rotated.`);
    if (!$('view-key').hidden && detail?.key.id === k.id) {
      ctx.navigate(`#/settings/api-keys/${res.key.id}`, { focus: false });
    } else {
      ctx.refresh();
    }
  } catch (e) {
    if (e.status === 401) return;
    notice($('rotate-error'), e.status === 404
      ? 'This key cannot be rotated: it has already been rotated, or it is no longer active.'
      : e.message);
    if (e.status === 404) ctx.refresh();
  } finally {
    submit.disabled = false;
    submit.textContent = 'Rotate key';
  }
}

function openRevoke(k) {
  revoking = k;
  $('revoke-title').textContent = `Revoke “${k.name}”?`;
  $('revoke-desc').textContent =
    `Anything that uses the key ${k.hint}… will be refused with 401 errors from its next request. ` +
    'This cannot be undone. To replace the secret without an outage, rotate the key instead.';
  notice($('revoke-error'), '');
  $('revoke-submit').disabled = false;
  $('dlg-revoke').showModal();
  $('dlg-revoke').querySelector('[data-close].btn').focus();
}

async function submitRevoke(ev) {
  ev.preventDefault();
  const submit = $('revoke-submit');
  if (!revoking || submit.disabled) return;
  const k = revoking;
  submit.disabled = true;
  submit.textContent = 'Revoking…';
  try {
    await api.revokeKey(k.id);
    $('dlg-revoke').close();
    ctx.toast(`“${k.name}” was revoked. It no longer works.`);
    ctx.refresh();
  } catch (e) {
    if (e.status === 401) return;
    notice($('revoke-error'), e.message);
  } finally {
    submit.disabled = false;
    submit.textContent = 'Revoke key';
  }
}
