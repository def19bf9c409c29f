// The Settings portal in a real browser, against the real binary: a CEO signs
// in, creates keys (with the mouse and with the keyboard alone), copies the
// secret and uses it, looks at a key's requests and chart, rotates, revokes,
// reads the audit log, and the whole thing at 375 px wide.
//
// The tests in this file run in order and share one signed-in page: each one
// continues from where the previous one left the portal.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startService } from './lib/service.mjs';
import { launch, newContext, watch, screenshot } from './lib/browser.mjs';
import { KEY_RE, signIn, callApi, focusedId, tabTo, keyRow, waitForLoggedRequests } from './lib/helpers.mjs';

describe('Settings → API keys, as the CEO', () => {
  let svc;
  let browser;
  let context;
  let page;
  let problems;
  const keys = {};   // name -> {id, secret}

  before(async () => {
    svc = await startService();
    browser = await launch();
    context = await newContext(browser, svc.base);
    page = await context.newPage();
    problems = watch(page);
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await svc?.stop();
  });

  test('a wrong password shows a clear message and keeps the user on the sign-in page', async () => {
    await page.goto('/');
    await page.waitForURL(/#\/login$/);
    await page.getByRole('heading', { name: 'Sign in to your account' }).waitFor();
    await screenshot(page, 'signin');

    await page.getByLabel('Email').fill(svc.ceo.email);
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Incorrect email or password.' }).waitFor();
    assert.match(page.url(), /#\/login$/);
    assert.equal(await page.getByLabel('Password').inputValue(), '', 'the wrong password is cleared');
    assert.equal(await page.getByLabel('Password').getAttribute('aria-invalid'), 'true');
    assert.equal(await focusedId(page), 'signin-password', 'focus goes back to the password');
  });

  test('the CEO signs in and sees an empty state that explains what keys are for', async () => {
    await page.getByLabel('Password').fill(svc.ceo.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/#\/settings\/api-keys$/);
    await page.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();
    await page.getByRole('heading', { name: 'No API keys yet' }).waitFor();
    assert.match(await page.locator('#keys-empty').innerText(), /read this organization's leads and invoices/);
    assert.equal(await page.locator('#user-email').innerText(), svc.ceo.email);
    assert.equal(await page.locator('#org-name').innerText(), 'Acme Robotics');
    assert.equal(await page.getByRole('link', { name: 'API keys' }).getAttribute('aria-current'), 'page');
    assert.doesNotMatch(await page.evaluate(() => document.cookie), /dvs_session/, 'the session cookie is HttpOnly');
    await screenshot(page, 'keys-empty');
  });

  test('create a key: the form explains itself and shows errors next to the fields', async () => {
    await page.getByRole('button', { name: 'Create your first key' }).click();
    const dialog = page.getByRole('dialog', { name: 'Create API key' });
    await dialog.waitFor();
    assert.equal(await focusedId(page), 'create-name', 'focus starts in the name field');
    for (const scope of ['leads:read', 'invoices:read']) {
      const box = dialog.getByRole('checkbox', { name: new RegExp(scope) });
      assert.equal(await box.count(), 1, `a checkbox for ${scope}`);
      const help = await box.evaluate((el) => document.getElementById(el.getAttribute('aria-describedby')).textContent);
      assert.match(help, /List and fetch/, `${scope} has a one-line explanation`);
    }
    const expiry = dialog.getByLabel('Expires');
    const options = await expiry.locator('option').allTextContents();
    assert.deepEqual(options, ['Never', 'In 30 days', 'In 90 days', 'In 365 days', 'On a date…']);

    // Nothing filled in: the browser-side checks.
    await dialog.getByRole('button', { name: 'Create key' }).click();
    await dialog.getByText('Give the key a name').waitFor();
    await dialog.getByText('Choose at least one permission.').waitFor();
    assert.equal(await dialog.getByLabel('Name').getAttribute('aria-invalid'), 'true');
    assert.equal(await focusedId(page), 'create-name', 'focus goes to the first field in error');

    // A name the server refuses (a control character): its message is shown under the name field.
    await dialog.getByLabel('Name').fill('CRM\u0007sync');
    await dialog.getByRole('checkbox', { name: /leads:read/ }).check();
    await dialog.getByRole('button', { name: 'Create key' }).click();
    const nameError = page.locator('#create-name-error');
    await nameError.filter({ hasText: /name/i }).waitFor();
    assert.equal(await page.locator('#create-scopes-error').isVisible(), false, 'the scopes error is gone');
    assert.equal(await dialog.isVisible(), true, 'the dialog stays open');

    // A date in the past is refused before anything is sent.
    await expiry.selectOption({ label: 'On a date…' });
    await dialog.getByLabel('Expiry date').fill('2001-01-01');
    await dialog.getByLabel('Name').fill('CRM sync');
    await dialog.getByRole('button', { name: 'Create key' }).click();
    await dialog.getByText('Pick a date in the future.').waitFor();

    await expiry.selectOption({ label: 'In 30 days' });
    assert.equal(await dialog.getByLabel('Expiry date').isVisible(), false, 'the date field hides again');
    assert.equal(await page.locator('#create-expires_at-error').isVisible(), false, 'changing the field clears its error');
    assert.equal(await page.locator('#create-name-error').isVisible(), false);
    await dialog.getByLabel(/Rate limit/).fill('600');
    await screenshot(page, 'create-key');
  });

  test('the secret is shown once with a copy button, and the copied secret reads /v1/leads', async () => {
    const dialog = page.getByRole('dialog', { name: 'Create API key' });
    await dialog.getByRole('button', { name: 'Create key' }).click();
    const secretDialog = page.getByRole('dialog', { name: 'Save your secret key' });
    await secretDialog.waitFor();
    assert.equal(await dialog.isVisible(), false);
    await secretDialog.getByText('This is the only time the secret is shown.').waitFor();
    assert.match(await secretDialog.innerText(), /cannot be shown again/);

    await secretDialog.getByRole('button', { name: 'Copy the secret key' }).click();
    await secretDialog.getByText('Copied to your clipboard.').waitFor();
    const secret = await page.evaluate(() => navigator.clipboard.readText());
    assert.match(secret, KEY_RE, 'the clipboard holds a key');
    assert.equal(await secretDialog.getByLabel('Secret key', { exact: true }).inputValue(), secret, 'the page shows the same secret');
    await screenshot(page, 'secret');

    const res = await callApi(svc.base, secret, '/v1/leads');
    assert.equal(res.status, 200, 'the new key reads leads');
    const body = await res.json();
    assert.ok(body.data.some((l) => l.name === 'Ada Lovelace'), 'the imported lead is listed');

    const kept = await page.evaluate(() =>
      JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + location.href + document.cookie);
    assert.ok(!kept.includes(secret), 'the secret is not in storage, cookies or the URL');

    // Escape does not close it by accident; the explicit button does.
    await page.keyboard.press('Escape');
    assert.equal(await secretDialog.isVisible(), true, 'Escape does not dismiss the secret');
    await secretDialog.getByRole('button', { name: 'I have stored it' }).click();
    await secretDialog.waitFor({ state: 'hidden' });
    assert.equal(await page.locator('#secret-value').inputValue(), '', 'the secret is wiped from the input');
    assert.ok(!(await page.content()).includes(secret), 'the secret is nowhere in the page');

    const row = keyRow(page, 'CRM sync');
    await row.waitFor();
    const id = await row.getAttribute('data-key-id');
    assert.match(id, /^key_/);
    const text = await row.innerText();
    assert.ok(text.includes(`${secret.slice(0, 13)}…`), `the row shows the hint ${secret.slice(0, 13)}…`);
    assert.match(text, /leads:read/);
    assert.doesNotMatch(text, /invoices:read/);
    assert.match(text, /Active/);
    assert.match(text, /by ceo@example\.com/);
    assert.match(text, /in 30 days/);
    keys['CRM sync'] = { id, secret };
  });

  test('a key can be created with the keyboard alone', async () => {
    await page.getByRole('heading', { level: 1, name: 'API keys' }).focus();
    const create = page.getByRole('button', { name: 'Create key' });
    await tabTo(page, create);
    await page.keyboard.press('Enter');
    await page.getByRole('dialog', { name: 'Create API key' }).waitFor();
    assert.equal(await focusedId(page), 'create-name');
    await page.keyboard.type('Nightly export');
    await page.keyboard.press('Tab');                  // Read leads
    await page.keyboard.press('Tab');                  // Read invoices
    await page.keyboard.press('Space');
    await page.keyboard.press('Tab');                  // Expires
    assert.equal(await focusedId(page), 'create-expiry');
    await page.getByLabel('Expires').selectOption('never');
    await page.keyboard.press('Tab');                  // Rate limit
    assert.equal(await focusedId(page), 'create-rate');
    await page.keyboard.press('Enter');                // submits the form

    const secretDialog = page.getByRole('dialog', { name: 'Save your secret key' });
    await secretDialog.waitFor();
    assert.equal(await focusedId(page), 'secret-copy', 'focus lands on the copy button');
    const secret = await page.locator('#secret-value').inputValue();
    assert.match(secret, KEY_RE);
    await tabTo(page, secretDialog.getByRole('button', { name: 'I have stored it' }), 5);
    await page.keyboard.press('Enter');
    await secretDialog.waitFor({ state: 'hidden' });

    const row = keyRow(page, 'Nightly export');
    await row.waitFor();
    assert.equal(await focusedId(page), '', 'focus is on the new row link (no id)');
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Nightly export');
    const text = await row.innerText();
    assert.match(text, /invoices:read/);
    assert.match(text, /Never/);
    assert.equal((await callApi(svc.base, secret, '/v1/invoices')).status, 200, 'invoices:read reads invoices');
    assert.equal((await callApi(svc.base, secret, '/v1/leads')).status, 403, 'but not leads');
    keys['Nightly export'] = { id: await row.getAttribute('data-key-id'), secret };

    assert.equal(await page.locator('#keys-body tr').count(), 2);
    assert.match(await page.locator('#keys-body tr').first().innerText(), /Nightly export/, 'newest first');
    await screenshot(page, 'keys');
  });

  test("a key's page shows its recent requests and a chart of requests per hour", async () => {
    const { id, secret } = keys['CRM sync'];
    assert.equal((await callApi(svc.base, secret, '/v1/leads?limit=1')).status, 200);
    assert.equal((await callApi(svc.base, secret, '/v1/leads/lead_doesnotexist')).status, 404);
    await waitForLoggedRequests(page, id, 3);

    await page.getByRole('link', { name: 'CRM sync', exact: true }).click();
    await page.waitForURL(new RegExp(`#/settings/api-keys/${id}$`));
    await page.getByRole('heading', { level: 1, name: 'CRM sync' }).waitFor();
    const details = await page.locator('#key-details').innerText();
    assert.match(details, /600 requests per minute/);
    assert.match(details, /ceo@example\.com/);
    assert.ok(details.includes(id));

    const rows = page.locator('#requests-body tr');
    await rows.nth(2).waitFor();
    assert.equal(await rows.count(), 3);
    // The three calls usually share one second, so their order among themselves is not asserted.
    const texts = (await rows.allInnerTexts()).map((t) => t.replace(/\s+/g, ' '));
    const missing = texts.filter((t) => /GET \/v1\/leads\/lead_doesnotexist 404 127\.0\.0\.1$/.test(t));
    const ok = texts.filter((t) => /GET \/v1\/leads(\?\S*)? 200 127\.0\.0\.1$/.test(t));
    assert.equal(missing.length, 1, `one 404 row (time, method, path, status, IP) in ${JSON.stringify(texts)}`);
    assert.equal(ok.length, 2, `two 200 rows in ${JSON.stringify(texts)}`);
    for (const h of ['Time', 'Method', 'Path', 'Status', 'IP address']) {
      await page.locator('#requests-table').getByRole('columnheader', { name: h }).waitFor();
    }

    const chart = page.getByRole('img', { name: /in the last 24 hours/ });
    await chart.waitFor();
    assert.equal(await chart.evaluate((el) => el.tagName.toLowerCase()), 'svg');
    assert.equal(await page.locator('#chart rect.bar, #chart rect.bar-zero').count(), 24, 'one bar per hour');
    assert.ok(await page.locator('#chart rect.bar').count() >= 1, 'the last hour has a bar');
    assert.match(await page.locator('#chart-summary').innerText(), /^3 requests in the last 24 hours/);
    await screenshot(page, 'key-detail', { fullPage: true });
  });

  test('rotating with "now" replaces the secret: the old one fails at once, the new one works', async () => {
    const old = keys['CRM sync'];
    await page.getByRole('button', { name: 'Rotate CRM sync' }).click();
    const dialog = page.getByRole('dialog', { name: 'Rotate “CRM sync”?' });
    await dialog.waitFor();
    assert.equal(await dialog.getByRole('radio', { name: /Now/ }).isChecked(), true, '"now" is the default');
    await dialog.getByRole('radio', { name: /In 1 hour/ }).waitFor();
    await dialog.getByRole('radio', { name: /In 24 hours/ }).waitFor();
    await dialog.getByRole('button', { name: 'Rotate key' }).click();

    const secretDialog = page.getByRole('dialog', { name: 'Save the new secret' });
    await secretDialog.waitFor();
    await secretDialog.getByText(/has stopped working/).waitFor();
    const secret = await page.locator('#secret-value').inputValue();
    assert.match(secret, KEY_RE);
    assert.notEqual(secret, old.secret);
    assert.equal((await callApi(svc.base, old.secret)).status, 401, 'the old secret is refused');
    assert.equal((await callApi(svc.base, secret)).status, 200, 'the new secret works');
    await secretDialog.getByRole('button', { name: 'I have stored it' }).click();
    await secretDialog.waitFor({ state: 'hidden' });

    // The page moved to the new key.
    await page.waitForURL(/#\/settings\/api-keys\/key_/);
    const newId = page.url().split('/').pop();
    assert.notEqual(newId, old.id);
    await page.getByRole('heading', { level: 1, name: 'CRM sync' }).waitFor();
    await page.locator('#key-details').filter({ hasText: secret.slice(0, 13) }).waitFor();
    keys['CRM sync'] = { id: newId, secret };
    keys['CRM sync (old)'] = old;

    await page.getByRole('link', { name: 'API keys' }).first().click();
    // The list shows the rows it had while it loads again (keys.js): wait for
    // the reloaded row rather than read the one still on screen.
    const oldRow = page.locator(`#keys-body tr[data-key-id="${old.id}"]`);
    await oldRow.filter({ hasText: /Revoked|Expired/ }).waitFor();
    assert.match(await oldRow.innerText(), /Revoked|Expired/);
    assert.equal(await oldRow.getByRole('button').count(), 0, 'no actions on a dead key');
  });

  test('rotating with a grace period of 1 hour keeps the old secret working meanwhile', async () => {
    const old = keys['Nightly export'];
    await page.getByRole('button', { name: 'Rotate Nightly export' }).click();
    const dialog = page.getByRole('dialog', { name: 'Rotate “Nightly export”?' });
    await dialog.waitFor();
    await dialog.getByRole('radio', { name: /In 1 hour/ }).check();
    await dialog.getByRole('button', { name: 'Rotate key' }).click();
    const secretDialog = page.getByRole('dialog', { name: 'Save the new secret' });
    await secretDialog.waitFor();
    await secretDialog.getByText(/keeps working until/).waitFor();
    const secret = await page.locator('#secret-value').inputValue();
    await secretDialog.getByRole('button', { name: 'I have stored it' }).click();
    await secretDialog.waitFor({ state: 'hidden' });

    assert.equal((await callApi(svc.base, old.secret, '/v1/invoices')).status, 200, 'the old secret still works');
    assert.equal((await callApi(svc.base, secret, '/v1/invoices')).status, 200, 'the new one too');
    const oldRow = page.locator(`#keys-body tr[data-key-id="${old.id}"]`);
    await oldRow.filter({ hasText: 'in 1 hour' }).waitFor();
    assert.equal(await page.locator('#keys-body tr').count(), 4);
  });

  test('revoking asks for confirmation naming the key, then the key gets 401', async () => {
    const { id, secret } = keys['CRM sync'];
    const row = page.locator(`#keys-body tr[data-key-id="${id}"]`);
    await row.getByRole('button', { name: 'Revoke CRM sync' }).click();
    const dialog = page.getByRole('dialog', { name: 'Revoke “CRM sync”?' });
    await dialog.waitFor();
    assert.ok((await dialog.innerText()).includes(`${secret.slice(0, 13)}…`), 'the dialog shows the key hint');
    assert.match(await dialog.innerText(), /cannot be undone/);
    assert.equal(await focusedId(page), '', 'focus starts on Cancel, not on the destructive button');
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Cancel');

    // Cancel really cancels.
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    assert.equal((await callApi(svc.base, secret)).status, 200);

    await row.getByRole('button', { name: 'Revoke CRM sync' }).click();
    await dialog.getByRole('button', { name: 'Revoke key' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await page.locator('#toast').filter({ hasText: 'was revoked' }).waitFor();
    await row.filter({ hasText: 'Revoked' }).waitFor();
    assert.equal(await row.getByRole('button').count(), 0);
    const res = await callApi(svc.base, secret);
    assert.equal(res.status, 401, 'a revoked key is refused');
    assert.equal((await res.json()).error.code, 'invalid_api_key');
  });

  test('the audit log lists who created, rotated and revoked keys', async () => {
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.waitForURL(/#\/settings\/audit$/);
    await page.getByRole('heading', { level: 1, name: 'Audit log' }).waitFor();
    const rows = page.locator('#audit-body tr');
    await rows.nth(4).waitFor();
    const texts = await rows.allInnerTexts();
    const count = (label) => texts.filter((t) => t.includes(label)).length;
    assert.equal(count('Key created'), 2);
    assert.equal(count('Key rotated'), 2);
    assert.equal(count('Key revoked'), 1);
    assert.ok(texts.every((t) => t.includes('ceo@example.com')), 'every event names the CEO');
    assert.ok(texts.every((t) => t.includes('127.0.0.1')), 'and the IP address');
    assert.ok(texts.some((t) => t.includes('Nightly export')));
    assert.equal(await page.getByRole('link', { name: 'Audit log' }).getAttribute('aria-current'), 'page');
    await screenshot(page, 'audit');
  });

  test('at 375 px wide nothing overflows and the tables become stacked cards', async () => {
    await page.setViewportSize({ width: 375, height: 812 });
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

    await page.getByRole('link', { name: 'API keys' }).first().click();
    await page.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();
    await page.locator('#keys-body tr').first().waitFor();
    assert.equal(await overflow(), 0, 'no horizontal scrolling on the list');
    const head = await page.locator('#keys-table thead').boundingBox();
    assert.ok(!head || head.width <= 1, 'the table header is visually hidden');
    const label = await page.locator('#keys-body tr').first().locator('td').nth(2)
      .evaluate((td) => getComputedStyle(td, '::before').content);
    assert.equal(label, '"Permissions"', 'each value is labelled');
    const first = await page.locator('#keys-body tr').first().boundingBox();
    assert.ok(first.width <= 375, 'a card fits the screen');
    await screenshot(page, 'mobile', { fullPage: true });

    await page.getByRole('button', { name: 'Create key' }).click();
    const dialog = page.getByRole('dialog', { name: 'Create API key' });
    await dialog.waitFor();
    const box = await dialog.boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= 375, 'the dialog fits the screen');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });

    await page.getByRole('link', { name: 'Nightly export' }).first().click();
    await page.getByRole('img', { name: /in the last 24 hours|No requests/ }).waitFor();
    assert.equal(await overflow(), 0, 'no horizontal scrolling on a key page');
    // Measured in one step: the chart is redrawn whenever its width changes.
    const chartRight = await page.locator('#chart svg').evaluate((el) => el.getBoundingClientRect().right);
    assert.ok(chartRight <= 375, `the chart fits the screen (right edge at ${chartRight})`);

    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.locator('#audit-body tr').first().waitFor();
    assert.equal(await overflow(), 0, 'no horizontal scrolling on the audit log');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('no script errors, no CSP violations and no secret in the console along the way', () => {
    assert.deepEqual(problems, []);
  });
});
