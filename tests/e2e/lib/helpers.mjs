// Small helpers shared by the browser tests.

import assert from 'node:assert/strict';

export const KEY_RE = /^dvs_live_[0-9A-Za-z]{38}$/;

/** Signs in through the form. */
export async function signIn(page, who) {
  await page.goto('/');
  await page.getByRole('heading', { name: 'Sign in to your account' }).waitFor();
  await page.getByLabel('Email').fill(who.email);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Calls the public API with a key; resolves to the Response. */
export function callApi(base, secret, path = '/v1/leads') {
  return fetch(`${base}${path}`, { headers: { Authorization: `Bearer ${secret}` } });
}

/** The id of the focused element. */
export function focusedId(page) {
  return page.evaluate(() => document.activeElement?.id ?? '');
}

/**
 * Presses Tab until `locator` has focus; fails if it takes more than `max`
 * presses (the element is not reachable by keyboard).
 */
export async function tabTo(page, locator, max = 25) {
  for (let i = 0; i < max; i++) {
    if (await locator.evaluate((el) => el === document.activeElement)) return;
    await page.keyboard.press('Tab');
  }
  assert.fail(`not reachable with Tab in ${max} presses: ${locator}`);
}

/** The key row of the keys table whose name is exactly `name`. */
export function keyRow(page, name) {
  return page.locator('#keys-body tr').filter({ has: page.getByRole('link', { name, exact: true }) });
}

/**
 * The request log is written in the background (batched every ~200 ms).
 * Polls GET /api/keys/{id}/requests with the page's session, at most 100
 * times 50 ms apart, until it lists at least `n` requests.
 */
export async function waitForLoggedRequests(page, keyId, n) {
  for (let i = 0; i < 100; i++) {
    const res = await page.request.get(`/api/keys/${keyId}/requests?limit=100`);
    assert.equal(res.status(), 200, `GET /api/keys/${keyId}/requests`);
    const body = await res.json();
    if (body.data.length >= n) return body.data;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`the request log never listed ${n} requests for ${keyId}`);
}
