// Logging in to the dashboard in Chromium: a server with users and a token
// sends the browser to the login page; a viewer sees no editing controls;
// logging out and in with an admin token brings them back.
// Usage: node login.mjs <base-url> <artifact-dir> <viewer-password> <admin-token>

import assert from 'node:assert/strict';
import path from 'node:path';
import { launch, waitReady, reportFailure } from './chromium.mjs';

const [base, artifacts, viewerPassword, adminToken] = process.argv.slice(2);
const { page, errors, close } = await launch();
const shot = (name) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
let step = 'start';
const passed = [];
function check(name) { passed.push(name); console.log(`ok - ${name}`); }

try {
  step = 'redirect';
  await page.goto(`${base}/#/dashboards`);
  await page.locator('#login-user').waitFor();
  assert.ok(page.url().includes('#/login'), page.url());
  await shot('login');
  check('without a session the dashboard shows the login page');

  step = 'wrong password';
  await page.fill('#login-user', 'vic');
  await page.fill('#login-password', 'not it');
  await page.click('#login-submit');
  await page.waitForFunction(() => document.getElementById('login-error').textContent.length > 0);
  assert.match(await page.locator('#login-error').textContent(), /do not match/);
  check('a wrong password is refused with a message');

  step = 'viewer';
  await page.fill('#login-password', viewerPassword);
  await page.click('#login-submit');
  await page.waitForFunction(() => location.hash.startsWith('#/dashboards') && document.body.dataset.ready === 'true');
  await waitReady(page);
  assert.match(await page.locator('#who').textContent(), /vic \(viewer\)/);
  assert.equal(await page.locator('#new-dashboard').count(), 0, 'no New button for a viewer');
  await page.goto(`${base}/#/d/osprey-cluster`);
  await waitReady(page);
  assert.equal(await page.locator('#edit-dashboard, #copy-dashboard').count(), 0, 'no editing for a viewer');
  assert.ok(await page.locator('.panel[data-state="ready"]').count() >= 4, 'the viewer sees the panels');
  await shot('viewer');
  check('a viewer logs in with a password, reads and cannot edit');

  step = 'logout';
  await page.click('#logout');
  await page.locator('#login-token').waitFor();
  check('logout returns to the login page');

  step = 'token';
  await page.fill('#login-token', adminToken);
  await page.click('#login-submit');
  await page.waitForFunction(() => document.body.dataset.ready === 'true' && !location.hash.startsWith('#/login'));
  await page.goto(`${base}/#/dashboards`);
  await waitReady(page);
  await page.locator('#new-dashboard').waitFor();
  assert.match(await page.locator('#who').textContent(), /\(admin\)/);
  check('an admin token logs in and may create dashboards');

  // The only console errors allowed: the browser's own report of the
  // refused login (401), which this test provoked on purpose.
  const unexpected = errors.filter((e) => !/status of 401/.test(e));
  assert.deepEqual(unexpected, [], 'no other console errors');
  check('no unexpected console errors');
  console.log(`${passed.length} passed, 0 failed`);
} catch (e) {
  await reportFailure(e, { step, errors, shot, prefix: 'login-' });
} finally {
  await close();
}
