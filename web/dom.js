// Small DOM helpers. Everything is built with createElement/textContent:
// no innerHTML, so data from the server can never become markup.

/**
 * Creates an element. `props`: {class, text, attrs: {name: value}, data: {k: v},
 * on: {event: handler}, hidden}. Children: nodes, strings (as text), arrays,
 * or null/undefined/false (skipped).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  applyProps(el, props);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Like h() for SVG elements; `attrs` values are set with setAttribute. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function applyProps(el, props) {
  if (!props) return;
  if (props.class) el.className = props.class;
  if (props.text !== undefined && props.text !== null) el.textContent = String(props.text);
  if (props.hidden) el.hidden = true;
  if (props.attrs) {
    for (const [k, v] of Object.entries(props.attrs)) {
      if (v === null || v === undefined || v === false) continue;
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  if (props.data) for (const [k, v] of Object.entries(props.data)) el.dataset[k] = String(v);
  if (props.on) for (const [ev, fn] of Object.entries(props.on)) el.addEventListener(ev, fn);
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** document.getElementById that fails loudly when the page and the script disagree. */
export function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  return el;
}

/** Replaces all children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** Shows `msg` in a notice element, or hides it when msg is empty. */
export function notice(el, msg) {
  el.textContent = msg || '';
  el.hidden = !msg;
}

/**
 * A table cell labelled for the stacked (narrow-screen) layout. The content
 * is wrapped in one element so that it stays in the value column there.
 */
export function cell(label, ...children) {
  return h('td', { data: { label } }, h('div', { class: 'cell' }, children));
}
