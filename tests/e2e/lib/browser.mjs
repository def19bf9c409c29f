// Debian's Chromium driven by playwright-core (which never downloads a browser).

import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { REPO_ROOT } from './service.mjs';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const SCREENSHOTS = path.join(REPO_ROOT, 'docs', 'screenshots');

export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'],
  });
}

/** A fresh browser context (own cookies) pointed at `base`, with clipboard access. */
export function newContext(browser, base, options = {}) {
  return browser.newContext({
    baseURL: base,
    viewport: { width: 1280, height: 800 },
    locale: 'en-US',
    timezoneId: 'UTC',
    permissions: ['clipboard-read', 'clipboard-write'],
    ...options,
  });
}

/**
 * Records what a page reports that it should not: script errors, CSP
 * violations, and any console text containing a key secret.
 */
export function watch(page) {
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    const text = m.text();
    if (/Content Security Policy/i.test(text)) problems.push(`CSP: ${text}`);
    if (/dvs_live_[0-9A-Za-z]{20,}/.test(text)) problems.push(`a secret was logged: ${m.type()}`);
    // Chromium logs every 4xx answer as an error (the boot-time GET /api/session is 401 when
    // signed out; a refused form is 400): those are expected. Anything else is not.
    if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of 4\d\d/.test(text)) {
      problems.push(`console error: ${text}`);
    }
  });
  return problems;
}

/** Saves docs/screenshots/NAME.png (overwritten on every run). */
export async function screenshot(page, name, options = {}) {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  // Dismiss the transient toast (as its timer would) so it covers nothing, and let
  // transitions finish so the picture shows the settled screen. (Playwright's
  // `style` option would inject a <style> element, which the CSP rightly blocks.)
  await page.evaluate(() => document.getElementById('toast')?.classList.remove('show'));
  await page.evaluate(() => Promise.all(document.getAnimations()
    .filter((a) => a.effect?.getComputedTiming().iterations !== Infinity)
    .map((a) => a.finished.catch(() => {}))));
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), ...options });
}
