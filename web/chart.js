// The requests-per-hour bar chart, drawn as SVG with DOM APIs (no library,
// no inline markup), plus a text summary and a data table for screen readers.

import { h, svg, replace } from './dom.js';
import { formatHour, formatNumber, plural } from './format.js';

/** The smallest "nice" number (1, 2, 2.5, 5 × 10^k, integers only) >= x. */
function niceStep(x) {
  if (x <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 2.5, 5, 10]) {
    const s = m * p;
    if (s >= x && Number.isInteger(s)) return s;
  }
  return 10 * p;
}

/** Normalises the API's buckets: [{start: Date, end: Date, count}] oldest first. */
export function toBuckets(data) {
  return (Array.isArray(data) ? data : [])
    .map((b) => ({ start: new Date(b.start), count: Number(b.count) || 0 }))
    .filter((b) => !Number.isNaN(b.start.getTime()))
    .sort((a, b) => a.start - b.start)
    .map((b) => ({ ...b, end: new Date(b.start.getTime() + 3_600_000) }));
}

/** One sentence describing the buckets, e.g. "42 requests in the last 24 hours; busiest hour …". */
export function summarize(buckets) {
  const total = buckets.reduce((s, b) => s + b.count, 0);
  if (total === 0) return { total, text: 'No requests in the last 24 hours.' };
  const peak = buckets.reduce((a, b) => (b.count > a.count ? b : a));
  return {
    total,
    peak,
    text: `${plural(total, 'request', 'requests')} in the last 24 hours; the busiest hour was ` +
      `${formatHour(peak.start)} to ${formatHour(peak.end)} with ${formatNumber(peak.count)}.`,
  };
}

/**
 * Draws `buckets` into `container` at its current width. `labelId` names the
 * element holding the text summary (the SVG's accessible name).
 */
export function drawChart(container, buckets, labelId) {
  const width = Math.max(280, Math.floor(container.getBoundingClientRect().width) || 600);
  const narrow = width < 480;
  const height = narrow ? 150 : 180;
  const pad = { top: 10, right: 4, bottom: 24, left: 36 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const max = buckets.reduce((m, b) => Math.max(m, b.count), 0);
  const step = niceStep(max / 2);
  const top = step * 2;
  const y = (v) => pad.top + plotH - (v / top) * plotH;

  const root = svg('svg', {
    width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-labelledby': labelId,
    focusable: 'false',
  });

  // Grid and y labels: 0, step, 2 × step.
  for (const v of [0, step, top]) {
    const yy = Math.round(y(v)) + 0.5;
    root.append(
      svg('line', { class: v === 0 ? 'axis' : 'grid', x1: pad.left, x2: width - pad.right, y1: yy, y2: yy }),
      svg('text', { class: 'label', x: pad.left - 8, y: yy + 4, 'text-anchor': 'end' }, formatNumber(v)),
    );
  }

  const n = Math.max(buckets.length, 1);
  const slot = plotW / n;
  const barW = Math.max(2, Math.min(28, slot * 0.7));
  const every = narrow ? 8 : 6;
  buckets.forEach((b, i) => {
    const cx = pad.left + slot * i + slot / 2;
    const x = cx - barW / 2;
    const tip = `${formatHour(b.start)} – ${formatHour(b.end)}: ${plural(b.count, 'request', 'requests')}`;
    if (b.count > 0) {
      const yTop = Math.min(y(b.count), pad.top + plotH - 2);
      root.append(svg('rect', {
        class: 'bar', x: x.toFixed(1), y: yTop.toFixed(1), width: barW.toFixed(1),
        height: (pad.top + plotH - yTop).toFixed(1), rx: Math.min(3, barW / 4),
      }, svg('title', {}, tip)));
    } else {
      root.append(svg('rect', {
        class: 'bar-zero', x: x.toFixed(1), y: pad.top + plotH - 2, width: barW.toFixed(1), height: 2,
      }, svg('title', {}, tip)));
    }
    if (i % every === 0) {
      root.append(svg('text', { class: 'label', x: cx.toFixed(1), y: height - 6, 'text-anchor': 'middle' },
        formatHour(b.start)));
    }
  });

  const rows = buckets.map((b) => h('tr', {},
    h('th', { attrs: { scope: 'row' }, text: `${formatHour(b.start)} – ${formatHour(b.end)}` }),
    h('td', { text: formatNumber(b.count) })));
  const table = h('details', { class: 'chart-data' },
    h('summary', { text: 'Show the numbers' }),
    h('table', {},
      h('thead', {}, h('tr', {}, h('th', { attrs: { scope: 'col' }, text: 'Hour' }),
        h('th', { attrs: { scope: 'col' }, text: 'Requests' }))),
      h('tbody', {}, rows)));

  // Keep the table open across redraws (resize) if the user opened it.
  const wasOpen = container.querySelector('details.chart-data')?.open;
  if (wasOpen) table.open = true;
  replace(container, root, table);
}
