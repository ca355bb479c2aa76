// The alerting pages in Chromium against a live server holding pushed
// data: a channel is created, a threshold rule is filled in through the
// form, its preview shows the threshold line and a fired region exactly
// over the data's plateau, the rule is saved and shows in the overview with
// the state the engine gave it, a silence is created and expired, and the
// history lists the rule's transition. Fails on any console error.
// Then a viewer (read token) sees the pages without any edit control.
// Usage: node alerts.mjs <base-url> <artifact-dir> <plateau-start-ms> <plateau-end-ms> <admin-token> <read-token> <webhook-url>

import assert from 'node:assert/strict';
import path from 'node:path';
import { launch, waitReady, reportFailure } from './chromium.mjs';

const [base, artifacts, plateauStart, plateauEnd, adminToken, readToken, hookUrl] = process.argv.slice(2);

async function login(token, next) {
  await page.goto(`${base}/#/login?next=${encodeURIComponent(next)}`);
  await page.fill('#login-token', token);
  await page.click('#login-submit');
  await page.waitForFunction((n) => location.hash === n && document.body.dataset.ready === 'true', next);
}
const { page, errors, close } = await launch();
const shot = (name) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
let step = 'start';
const passed = [];
function check(name) { passed.push(name); console.log(`ok - ${name}`); }
const STEP_MS = 60000; // the engine's default interval: the preview's evaluation step

try {
  step = 'overview (empty)';
  await login(adminToken, '#/alerts');
  await waitReady(page);
  await page.locator('#rules-table').waitFor();
  assert.match(await page.locator('#rules-table').textContent(), /Nothing reported yet/);
  await page.locator('nav a[data-nav="alerts"].active').waitFor();
  check('the policies overview opens from the nav, empty');

  step = 'channel';
  await page.goto(`${base}/#/alerts/channels`);
  await waitReady(page);
  await page.fill('#f-c-name', 'ops-hook');
  await page.fill('#c-settings', JSON.stringify({ url: hookUrl }));
  await page.click('#create-channel');
  await page.locator('#channels-table tr[data-key="ops-hook"]').waitFor();
  await page.click('#channels-table tr[data-key="ops-hook"] button.test');
  await page.waitForFunction(() => /delivered|failed/.test(document.getElementById('test-result').textContent), null, { timeout: 30000 });
  assert.match(await page.locator('#test-result').textContent(), /Test to ops-hook delivered/);
  check('a webhook channel is created through its form and its test notification is delivered');

  step = 'form';
  await page.goto(`${base}/#/alerts/new`);
  await waitReady(page);
  const order = await page.$$eval('#rule-form h3', (hs) => hs.map((h) => h.textContent));
  assert.deepEqual(order, ['1. Scope', '2. Condition', '3. Metric', '4. Threshold / sensitivity', '5. Duration', '6. Channels']);
  await page.fill('#f-name', 'BusyPod');
  await page.fill('#f-scope', 'pod="busy"');
  await page.selectOption('#f-kind', 'threshold');
  await page.fill('#f-query', 'load');
  await page.selectOption('#f-op', 'above');
  await page.fill('#f-threshold', '50');
  await page.fill('#f-for', '5m');
  await page.check('#f-channels input[value="ops-hook"]');
  check('the form asks scope → condition → metric → threshold → duration → channels');

  step = 'preview';
  await page.click('#preview-rule');
  await page.locator('#preview[data-state="ready"]').waitFor({ timeout: 30000 });
  const pv = await page.locator('#preview').evaluate((e) => ({ ...e.dataset }));
  assert.equal(pv.threshold, '50');
  assert.ok(Number(pv.firing) >= 1, `fired regions: ${pv.firing}`);
  const intervals = JSON.parse(pv.intervals);
  // The plateau fires once `for` (5 min) has passed, at the step's grid,
  // and stops with it (the evaluation after its end).
  const [s0, e0] = intervals[0];
  const wantStart = Number(plateauStart) + 5 * 60000;
  assert.ok(s0 >= wantStart && s0 < wantStart + STEP_MS, `firing starts ${s0}, want ${wantStart} (+ one step)`);
  assert.ok(e0 >= Number(plateauEnd) && e0 < Number(plateauEnd) + STEP_MS, `firing ends ${e0}, want ${plateauEnd} (+ one step)`);
  // The chart has drawn: a canvas, the red shade over the fired region.
  const shaded = await page.locator('#preview-chart canvas').evaluate((c, [from, to]) => {
    const ctx = c.getContext('2d');
    const u = c.closest('.chartbox');
    void u;
    // Look along a row below the threshold line and above the low level
    // for the fired shade (reddish; the pending shade is orange).
    const y = Math.floor(c.height * 0.7);
    const row = ctx.getImageData(0, y, c.width, 1).data;
    let red = 0;
    for (let i = 0; i < row.length; i += 4) if (row[i] > 200 && row[i + 1] < 210 && row[i + 2] < 215 && row[i] - row[i + 2] > 20) red++;
    return { red, width: c.width, from, to };
  }, intervals[0]);
  assert.ok(shaded.red > 3, `a shaded fired region on the chart: ${JSON.stringify(shaded)}`);
  await shot('preview');
  check('the preview draws the threshold, and shades where the plateau would have fired');

  step = 'save';
  await page.click('#save-rule');
  await page.waitForFunction(() => location.hash === '#/alerts' && document.body.dataset.ready === 'true');
  await page.locator('#rules-table tr[data-key="busypod"], #rules-table tr[data-key="BusyPod"]').first().waitFor();
  // The engine evaluates a new rule at once: the plateau of the last
  // minutes is over the threshold, so the rule pends (for 5m) or fires.
  const deadline = Date.now() + 60000;
  let state = '';
  for (;;) {
    state = (await page.locator('#rules-table tbody tr td[data-col="state"]').first().textContent()).trim();
    if (/pending|firing/.test(state) || Date.now() > deadline) break;
    await page.waitForTimeout(1000); // a poll: the overview is read again until the engine has run
    await page.reload();
    await waitReady(page);
  }
  assert.match(state, /pending|firing/);
  const lastEval = (await page.locator('#rules-table tbody tr td[data-col="last_evaluation"]').first().textContent()).trim();
  assert.notEqual(lastEval, '—');
  await shot('policies');
  check(`the saved rule is listed with its state (${state}) and last evaluation`);

  step = 'edit';
  await page.click('#rules-table tbody tr td[data-col="name"] a');
  await page.locator('#preview[data-state="ready"]').waitFor({ timeout: 30000 });
  assert.equal(await page.inputValue('#f-threshold'), '50');
  assert.equal(await page.inputValue('#f-scope'), 'pod="busy"');
  assert.ok(await page.isChecked('#f-channels input[value="ops-hook"]'));
  check('editing shows the saved rule and its preview');

  step = 'silence';
  await page.goto(`${base}/#/alerts/silences`);
  await waitReady(page);
  await page.fill('#s-matchers', 'alertname="BusyPod"');
  await page.fill('#f-s-comment', 'browser test');
  await page.click('#create-silence');
  const row = page.locator('#silences-table tbody tr', { hasText: 'alertname="BusyPod"' });
  await row.waitFor();
  assert.match(await row.locator('td[data-col="state"]').textContent(), /active/);
  await shot('silences');
  await row.locator('button.expire').click();
  await page.locator('#silences-table tbody tr td[data-col="state"]', { hasText: 'expired' }).waitFor();
  check('a silence is created (active) and expired');

  step = 'history';
  await page.goto(`${base}/#/alerts/history`);
  await waitReady(page);
  await page.locator('#history-table tbody tr', { hasText: 'pending' }).first().waitFor();
  await shot('history');
  check('the history lists the rule\'s transitions');

  step = 'viewer';
  await page.click('#logout');
  await page.locator('#login-token').waitFor();
  await login(readToken, '#/alerts');
  await waitReady(page);
  assert.match(await page.locator('#who').textContent(), /\(viewer\)/);
  await page.locator('#rules-table tbody tr td[data-col="name"] a').waitFor();
  const controls = '#new-rule, #save-rule, #delete-rule, #preview-rule, #create-silence, #create-channel, button.expire, button.test, button.danger';
  assert.equal(await page.locator(controls).count(), 0, 'no edit controls in the overview');
  await page.click('#rules-table tbody tr td[data-col="name"] a');
  await page.locator('#rule-form').waitFor();
  await waitReady(page);
  assert.equal(await page.locator(controls).count(), 0, 'no edit controls in the rule form');
  assert.ok(await page.locator('#f-threshold').isDisabled(), 'the viewer\'s form is read-only');
  for (const sub of ['silences', 'channels', 'history']) {
    await page.goto(`${base}/#/alerts/${sub}`);
    await waitReady(page);
    assert.equal(await page.locator(controls).count(), 0, `no edit controls on ${sub}`);
  }
  await page.goto(`${base}/#/alerts/channels`);
  await waitReady(page);
  await page.locator('#channels-table tr[data-key="ops-hook"]').waitFor();
  await shot('viewer');
  check('a viewer sees the alert pages without edit controls');

  assert.deepEqual(errors, [], 'no console errors');
  check('no console errors');
  console.log(`${passed.length} passed, 0 failed`);
} catch (e) {
  await reportFailure(e, { step, errors, shot, prefix: 'alerts-' });
} finally {
  await close();
}
