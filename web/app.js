// The DevSphere Settings portal: session, hash routing and the app shell.
// Views live in keys.js and audit.js; the markup is static in index.html.
//
// Routes: #/login, #/settings/api-keys, #/settings/api-keys/{key id}, #/settings/audit.
// The session cookie is HttpOnly: the portal learns who is signed in from
// GET /api/session, and any 401 from the API sends it back to the sign-in page.

import { $, notice } from './dom.js';
import { api, onSessionEnded } from './api.js';
import { refreshTimes } from './format.js';
import * as keys from './keys.js';
import * as audit from './audit.js';

const DEFAULT_ROUTE = '#/settings/api-keys';
const MANAGER_ROLES = new Set(['ceo', 'admin']);
const ROLE_NAMES = { ceo: 'CEO', admin: 'Admin', member: 'Member' };

const state = {
  session: null,       // {user: {id, email, role}, organization: {id, name}}
  wanted: null,        // the route to open after signing in
  seq: 0,              // bumped on every render; stale async results are dropped
  focusNext: true,     // move focus to the new view's heading after navigating
  signinNotice: null,  // {kind: 'info'|'error', text}
};

function parseRoute(hash) {
  const path = (hash || '').replace(/^#/, '');
  if (path === '/login') return { name: 'login' };
  if (path === '/settings/api-keys') return { name: 'keys' };
  if (path === '/settings/audit') return { name: 'audit' };
  const m = path.match(/^\/settings\/api-keys\/([A-Za-z0-9_-]{1,100})$/);
  if (m) return { name: 'key', id: m[1] };
  return { name: 'unknown' };
}

/** Goes to `hash`; `focus: false` keeps focus where it is (e.g. in an open dialog). */
function navigate(hash, { focus = true } = {}) {
  state.focusNext = focus;
  if (location.hash === hash) render();
  else location.hash = hash;
}

function setHash(hash) {
  history.replaceState(null, '', hash);
}

const ctx = {
  get session() { return state.session; },
  get canManage() { return MANAGER_ROLES.has(state.session?.user?.role); },
  isCurrent: (token) => token === state.seq,
  navigate,
  /** Re-renders the current view without moving focus. */
  refresh: () => { state.focusNext = false; render(); },
  /** Shows the "only a CEO or admin" explanation (also used when the API answers 403). */
  forbidden: () => showForbidden(),
  toast,
};

// ---------------------------------------------------------------------------
// Rendering

const APP_VIEWS = ['view-forbidden', 'view-keys', 'view-key', 'view-audit'];

function render() {
  const token = ++state.seq;
  const focus = state.focusNext;
  state.focusNext = true;
  let route = parseRoute(location.hash);

  if (!state.session) {
    if (route.name !== 'login') {
      if (route.name !== 'unknown') state.wanted = location.hash;
      setHash('#/login');
    }
    showSignin(focus);
    return;
  }
  if (route.name === 'login' || route.name === 'unknown') {
    setHash(DEFAULT_ROUTE);
    route = parseRoute(DEFAULT_ROUTE);
  }

  $('view-signin').hidden = true;
  $('view-app').hidden = false;
  for (const id of APP_VIEWS) $(id).hidden = true;
  setCurrentTab(route.name === 'audit' ? 'tab-audit' : 'tab-keys');

  if (!ctx.canManage) {
    showForbidden(focus);
    return;
  }
  if (route.name === 'keys') {
    document.title = 'API keys · Settings · DevSphere';
    keys.showList(token, { focus });
  } else if (route.name === 'key') {
    document.title = 'API key · Settings · DevSphere';
    keys.showDetail(token, route.id, { focus });
  } else if (route.name === 'audit') {
    document.title = 'Audit log · Settings · DevSphere';
    audit.show(token, { focus });
  }
}

function setCurrentTab(id) {
  for (const tab of ['tab-keys', 'tab-audit']) {
    if (tab === id) $(tab).setAttribute('aria-current', 'page');
    else $(tab).removeAttribute('aria-current');
  }
}

function showForbidden(focus = false) {
  for (const id of APP_VIEWS) $(id).hidden = id !== 'view-forbidden';
  const { user, organization } = state.session;
  $('forbidden-text').textContent =
    `You are signed in as ${user.email}, a ${ROLE_NAMES[user.role]?.toLowerCase() ?? user.role} of ${organization.name}.`;
  document.title = 'API keys · Settings · DevSphere';
  if (focus) $('forbidden-title').focus();
}

function fillShell() {
  const { user, organization } = state.session;
  $('org-name').textContent = organization.name;
  $('user-email').textContent = user.email;
  const role = $('user-role');
  role.textContent = ROLE_NAMES[user.role] ?? user.role;
  role.className = `role-badge ${user.role}`;
  role.title = `Your role in ${organization.name}`;
}

// ---------------------------------------------------------------------------
// Sign in and out

function showSignin(focus) {
  closeDialogs();
  document.title = 'Sign in · DevSphere';
  $('view-app').hidden = true;
  $('view-signin').hidden = false;
  const n = state.signinNotice;
  state.signinNotice = null;
  notice($('signin-notice'), n?.kind === 'info' ? n.text : '');
  notice($('signin-error'), n?.kind === 'error' ? n.text : '');
  if (focus || !document.activeElement || document.activeElement === document.body) {
    const email = $('signin-email');
    (email.value ? $('signin-password') : email).focus();
  }
}

async function onSignin(ev) {
  ev.preventDefault();
  const emailEl = $('signin-email');
  const passEl = $('signin-password');
  const button = $('signin-submit');
  if (button.disabled) return;
  const email = emailEl.value.trim();
  const password = passEl.value;
  notice($('signin-notice'), '');
  emailEl.removeAttribute('aria-invalid');
  passEl.removeAttribute('aria-invalid');
  if (!email || !password) {
    notice($('signin-error'), !email ? 'Enter your email address.' : 'Enter your password.');
    const bad = !email ? emailEl : passEl;
    bad.setAttribute('aria-invalid', 'true');
    bad.focus();
    return;
  }
  notice($('signin-error'), '');
  button.disabled = true;
  button.textContent = 'Signing in…';
  try {
    state.session = await api.signIn(email, password);
    passEl.value = '';
    fillShell();
    const target = state.wanted && parseRoute(state.wanted).name !== 'unknown' ? state.wanted : DEFAULT_ROUTE;
    state.wanted = null;
    navigate(target);
  } catch (e) {
    let msg = e.message;
    if (e.status === 401) msg = e.message || 'Incorrect email or password.';
    if (e.status === 429) {
      const s = Number.parseInt(e.retryAfter, 10);
      msg = Number.isFinite(s)
        ? `Too many sign-in attempts. Try again in ${s < 90 ? `${s} seconds` : `${Math.ceil(s / 60)} minutes`}.`
        : 'Too many sign-in attempts. Wait a moment and try again.';
    }
    notice($('signin-error'), msg);
    passEl.value = '';
    passEl.setAttribute('aria-invalid', 'true');
    passEl.focus();
  } finally {
    button.disabled = false;
    button.textContent = 'Sign in';
  }
}

async function onSignout() {
  const button = $('signout');
  button.disabled = true;
  try {
    await api.signOut();
  } catch (e) {
    if (e.status !== 401) {
      toast(`Could not sign out: ${e.message}`);
      button.disabled = false;
      return;
    }
  }
  button.disabled = false;
  endSession({ kind: 'info', text: 'You have signed out.' }, false);
}

function endSession(message, remember) {
  if (!state.session) return;
  state.session = null;
  state.wanted = remember ? location.hash : null;
  state.signinNotice = message;
  closeDialogs();
  keys.reset();
  audit.reset();
  navigate('#/login');
}

function closeDialogs() {
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
}

// ---------------------------------------------------------------------------
// Toast (the aria-live status region)

let toastTimer = 0;
function toast(text) {
  const el = $('toast');
  el.textContent = text;
  el.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove('show'), 5000);
}

// ---------------------------------------------------------------------------
// Boot

async function boot() {
  $('signin-form').addEventListener('submit', onSignin);
  $('signout').addEventListener('click', onSignout);
  // The skip link must not change the hash (that is the router's).
  document.querySelector('.skip-link').addEventListener('click', (ev) => {
    ev.preventDefault();
    const target = $('view-app').hidden ? $('signin-email') : $('main');
    target.focus();
  });
  onSessionEnded(() => endSession({ kind: 'info', text: 'Your session has ended. Sign in again to continue.' }, true));
  keys.init(ctx);
  audit.init(ctx);

  try {
    state.session = await api.getSession();
    fillShell();
  } catch (e) {
    state.session = null;
    if (e.status !== 401) {
      state.signinNotice = { kind: 'error', text: `Could not check your session: ${e.message}` };
    }
  }
  $('boot').hidden = true;
  window.addEventListener('hashchange', () => render());
  state.focusNext = false;
  render();
  setInterval(() => refreshTimes(), 30_000);
}

boot();
