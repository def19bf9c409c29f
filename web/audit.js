// Settings → Audit log: key events, newest first, a page at a time.

import { $, h, cell, replace, notice } from './dom.js';
import { api } from './api.js';
import { timeEl } from './format.js';

const EVENTS = {
  'api_key.created': ['Key created', 'badge-ok'],
  'api_key.rotated': ['Key rotated', 'badge-info'],
  'api_key.revoked': ['Key revoked', 'badge-bad'],
  'api_key.expired': ['Key expired', 'badge-expired'],
};
const PAGE = 25;

let ctx = null;
let cursor = null;
let token = 0;
let loadedOnce = false;

export function init(context) {
  ctx = context;
  $('audit-more').addEventListener('click', () => load(token, true));
}

export function reset() {
  cursor = null;
  loadedOnce = false;
  replace($('audit-body'));
}

export function show(t, { focus }) {
  token = t;
  $('view-audit').hidden = false;
  if (focus) $('audit-title').focus();
  notice($('audit-error'), '');
  if (!loadedOnce) {
    $('audit-loading').hidden = false;
    $('audit-empty').hidden = true;
    $('audit-table-wrap').hidden = true;
  }
  return load(t, false);
}

async function load(t, more) {
  const btn = $('audit-more');
  btn.disabled = true;
  try {
    const res = await api.auditEvents({ limit: PAGE, cursor: more ? cursor : undefined });
    if (!ctx.isCurrent(t)) return;
    loadedOnce = true;
    const rows = (res.data ?? []).map(eventRow);
    if (more) $('audit-body').append(...rows);
    else replace($('audit-body'), rows);
    cursor = res.has_more ? res.next_cursor : null;
    const any = $('audit-body').children.length > 0;
    $('audit-empty').hidden = any;
    $('audit-table-wrap').hidden = !any;
    $('audit-more-wrap').hidden = !cursor;
  } catch (e) {
    if (!ctx.isCurrent(t) || e.status === 401) return;
    if (e.status === 403) { ctx.forbidden(); return; }
    notice($('audit-error'), `Could not load the audit log. ${e.message}`);
  } finally {
    btn.disabled = false;
    if (ctx.isCurrent(t)) $('audit-loading').hidden = true;
  }
}

function eventRow(ev) {
  const [label, cls] = EVENTS[ev.type] ?? [ev.type, ''];
  const key = ev.key_id
    ? [h('a', { class: 'key-name', text: ev.key_name || ev.key_id, attrs: { href: `#/settings/api-keys/${ev.key_id}` } }),
      h('span', { class: 'sub mono key-id', text: ev.key_id })]
    : [h('span', { class: 'muted', text: '—' })];
  const actor = ev.actor
    ? h('span', { text: ev.actor.email })
    : h('span', { class: 'muted', text: ev.type === 'api_key.expired' ? 'Automatic' : 'System' });
  return h('tr', {},
    cell('Time', timeEl(ev.created_at, 'datetime'), h('span', { class: 'sub' }, timeEl(ev.created_at))),
    cell('Event', h('span', { class: `badge ${cls}`, text: label, attrs: { title: ev.type } })),
    cell('Key', key),
    cell('By', actor),
    cell('IP address', h('span', { class: 'path', text: ev.ip || '—' })));
}
