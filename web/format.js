// Dates and numbers in the user's locale. Times are <time> elements whose
// text is relative ("3 minutes ago") where that reads better, with the exact
// local time in the title; refreshTimes() keeps the relative ones current.

import { h } from './dom.js';

const locale = undefined; // the browser's
const full = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'long' });
const dateOnly = new Intl.DateTimeFormat(locale, { dateStyle: 'medium' });
const dateTime = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' });
const timeSec = new Intl.DateTimeFormat(locale, { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit', second: '2-digit' });
const hourFmt = new Intl.DateTimeFormat(locale, { hour: 'numeric', minute: '2-digit' });
const rtf = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' });
const nf = new Intl.NumberFormat(locale);

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

export const formatNumber = (n) => nf.format(n);
export const formatFull = (d) => full.format(d);
export const formatDateTime = (d) => dateTime.format(d);
export const formatHour = (d) => hourFmt.format(d);

/** "just now", "3 minutes ago", "in 29 days"; an absolute date beyond ~45 days. */
export function relative(date, now = Date.now()) {
  const diff = date.getTime() - now;
  const abs = Math.abs(diff);
  if (abs < 45_000) return diff < 0 || abs < 5_000 ? 'just now' : rtf.format(Math.round(diff / 1000), 'second');
  if (abs < 45 * MIN) return rtf.format(Math.round(diff / MIN), 'minute');
  if (abs < 22 * HOUR) return rtf.format(Math.round(diff / HOUR), 'hour');
  if (abs < 45 * DAY) return rtf.format(Math.round(diff / DAY), 'day');
  return dateOnly.format(date);
}

/**
 * A <time> element for an RFC 3339 string. mode: 'relative' (default),
 * 'datetime' (date and time), 'seconds' (short date, time with seconds).
 */
export function timeEl(iso, mode = 'relative', cls) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h('span', { class: 'muted', text: '—' });
  const el = h('time', { attrs: { datetime: iso, title: full.format(d) }, class: cls });
  if (mode === 'relative') {
    el.dataset.relative = '1';
    el.textContent = relative(d);
  } else if (mode === 'seconds') {
    el.textContent = timeSec.format(d);
  } else {
    el.textContent = dateTime.format(d);
  }
  return el;
}

/** Re-renders every relative <time> under `root`. */
export function refreshTimes(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll('time[data-relative]')) {
    el.textContent = relative(new Date(el.getAttribute('datetime')), now);
  }
}

/** RFC 3339 without milliseconds, as the API writes it. */
export function toRfc3339(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** YYYY-MM-DD of a date in local time (for <input type="date">). */
export function localDateString(date) {
  const p = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())}`;
}

export function plural(n, one, many) {
  return `${formatNumber(n)} ${n === 1 ? one : many}`;
}
