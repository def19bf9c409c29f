// Who gets in and what they see: security headers and no inline code, a
// member's view, signing out, a session that ends under the user's feet, and
// sign-in throttling.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startService, REPO_ROOT } from './lib/service.mjs';
import { launch, newContext, watch, screenshot } from './lib/browser.mjs';
import { signIn } from './lib/helpers.mjs';

const WEB = path.join(REPO_ROOT, 'web');
const webFiles = () => fs.readdirSync(WEB).filter((f) => !f.startsWith('.')).sort();

function directive(csp, name) {
  const d = csp.split(';').map((s) => s.trim()).find((s) => s === name || s.startsWith(`${name} `));
  return d ?? null;
}

describe('the portal files', () => {
  test('use no inline handlers, HTML strings, storage, console or other origins', () => {
    for (const f of webFiles()) {
      const text = fs.readFileSync(path.join(WEB, f), 'utf8');
      if (f.endsWith('.js')) {
        assert.doesNotMatch(text, /\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function\(/,
          `${f} builds no markup from strings`);
        assert.doesNotMatch(text, /setAttribute\(\s*['"](style|on\w+)['"]/, `${f} sets no style or handler attribute`);
        assert.doesNotMatch(text, /\.style\.cssText|\.setAttribute\('style/, `${f} writes no inline style text`);
        assert.doesNotMatch(text, /localStorage|sessionStorage|indexedDB/, `${f} stores nothing in the browser`);
        assert.doesNotMatch(text, /console\.\w+\(/, `${f} logs nothing`);
      }
      const urls = text.match(/\bhttps?:\/\/[^\s"')]+|["'(]\/\/[a-z0-9-]+\.[^\s"')]*/gi) ?? [];
      assert.deepEqual(urls.filter((u) => !u.startsWith('http://www.w3.org/')), [], `${f} loads nothing from elsewhere`);
    }
    const html = fs.readFileSync(path.join(WEB, 'index.html'), 'utf8');
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, 'no inline <script>');
    assert.doesNotMatch(html, /\son[a-z]+\s*=/i, 'no inline event handlers');
    assert.doesNotMatch(html, /\sstyle\s*=|<style/i, 'no inline styles');
    assert.match(html, /<script type="module" src="\/assets\/app\.js"><\/script>/);
    assert.match(html, /<link rel="stylesheet" href="\/assets\/style\.css">/);
  });
});

describe('access to the portal', () => {
  let svc;
  let browser;

  before(async () => {
    svc = await startService();
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    await svc?.stop();
  });

  test('every page and asset is served with the security headers and its content type', async () => {
    const types = { html: /^text\/html/, js: /^(text|application)\/javascript/, css: /^text\/css/, svg: /^image\/svg\+xml/ };
    const paths = ['/', ...webFiles().filter((f) => f !== 'index.html').map((f) => `/assets/${f}`)];
    for (const p of paths) {
      const res = await fetch(`${svc.base}${p}`);
      assert.equal(res.status, 200, `GET ${p}`);
      const ext = p === '/' ? 'html' : p.split('.').pop();
      if (types[ext]) assert.match(res.headers.get('content-type') ?? '', types[ext], `content type of ${p}`);
      const csp = res.headers.get('content-security-policy');
      assert.ok(csp, `${p} has a Content-Security-Policy`);
      const scripts = directive(csp, 'script-src') ?? directive(csp, 'default-src');
      assert.ok(scripts, `${p}: the CSP restricts scripts`);
      assert.doesNotMatch(scripts, /unsafe-inline|unsafe-eval|\*|https?:/, `${p}: ${scripts}`);
      const styles = directive(csp, 'style-src') ?? directive(csp, 'default-src');
      assert.doesNotMatch(styles ?? '', /unsafe-inline/, `${p}: ${styles}`);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', `${p}: nosniff`);
      assert.ok(res.headers.get('x-frame-options') === 'DENY' || /frame-ancestors 'none'/.test(csp), `${p}: no framing`);
      await res.arrayBuffer();
    }
  });

  test('a member sees that only a CEO or admin can manage keys, and no controls', async () => {
    const context = await newContext(browser, svc.base);
    const page = await context.newPage();
    const problems = watch(page);
    const managementCalls = [];
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (u.pathname.startsWith('/api/keys') || u.pathname.startsWith('/api/audit-events')) managementCalls.push(u.pathname);
    });

    await signIn(page, svc.member);
    const heading = page.getByRole('heading', { level: 1, name: 'Only a CEO or admin can manage API keys' });
    await heading.waitFor();
    const text = await page.locator('#view-forbidden').innerText();
    assert.ok(text.includes(svc.member.email), 'says who is signed in');
    assert.match(text, /member of Acme Robotics/);
    assert.equal(await page.locator('#user-role').textContent(), 'Member');
    const buttons = await page.locator('main').getByRole('button').allInnerTexts();
    assert.deepEqual(buttons, [], 'no controls in the page');
    assert.equal(await page.getByRole('table').count(), 0, 'no key table');
    await screenshot(page, 'member');

    for (const route of ['#/settings/audit', '#/settings/api-keys/key_doesnotexist']) {
      await page.goto(`/${route}`);
      await heading.waitFor();
      assert.equal(await page.locator('main').getByRole('button').count(), 0, `no controls at ${route}`);
    }
    assert.deepEqual(managementCalls, [], 'the portal did not call the management endpoints');

    // The API agrees with the page.
    const res = await page.request.get('/api/keys');
    assert.equal(res.status(), 403);
    assert.equal((await res.json()).error.code, 'forbidden');
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('signing out returns to the sign-in page and ends the session', async () => {
    const context = await newContext(browser, svc.base);
    const page = await context.newPage();
    await signIn(page, svc.ceo);
    await page.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();
    assert.equal((await page.request.get('/api/session')).status(), 200);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/#\/login$/);
    await page.getByRole('status').filter({ hasText: 'You have signed out.' }).waitFor();
    assert.equal((await page.request.get('/api/session')).status(), 401, 'the session is gone on the server');
    const cookies = await context.cookies();
    assert.ok(!cookies.some((c) => c.name === 'dvs_session' && c.value), 'the cookie is cleared');

    await page.goto('/#/settings/audit');
    await page.waitForURL(/#\/login$/);
    await page.getByRole('heading', { name: 'Sign in to your account' }).waitFor();
    assert.equal(await page.locator('#view-app').isVisible(), false);
    await context.close();
  });

  test('a session that ended sends the user to sign in, and back to where they were', async () => {
    const context = await newContext(browser, svc.base);
    const page = await context.newPage();
    await signIn(page, svc.ceo);
    await page.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();

    // The session ends behind the page's back (as after an idle timeout).
    const del = await page.request.delete('/api/session', { headers: { 'Content-Type': 'application/json' }, data: {} });
    assert.equal(del.status(), 204);

    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.waitForURL(/#\/login$/);
    await page.getByRole('status').filter({ hasText: 'Your session has ended. Sign in again to continue.' }).waitFor();
    await page.getByLabel('Email').fill(svc.ceo.email);
    await page.getByLabel('Password').fill(svc.ceo.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/#\/settings\/audit$/);
    await page.getByRole('heading', { level: 1, name: 'Audit log' }).waitFor();
    await context.close();
  });

  test('too many wrong passwords are answered with a clear wait message', async () => {
    const context = await newContext(browser, svc.base);
    const page = await context.newPage();
    await page.goto('/');
    const alert = page.getByRole('alert');
    let throttled = false;
    for (let i = 0; i < 10 && !throttled; i++) {
      await page.getByLabel('Email').fill('nobody@example.com');
      await page.getByLabel('Password').fill(`wrong-${i}`);
      const answered = page.waitForResponse((r) => r.url().endsWith('/api/session') && r.request().method() === 'POST');
      await page.getByRole('button', { name: 'Sign in' }).click();
      const res = await answered;
      if (res.status() === 429) throttled = true;
      else assert.equal(res.status(), 401);
      await page.locator('#signin-submit:not([disabled])').waitFor();
    }
    assert.ok(throttled, 'sign-in is throttled after repeated failures');
    await alert.filter({ hasText: /Too many sign-in attempts\. Try again in \d+ (seconds|minutes)\./ }).waitFor();
    await context.close();
  });
});
