// Real log lines and the dashboard editor's grid in Chromium, against an
// `osprey server` that tests/dashboard_browser.rs filled with lines over
// Loki's push API: the log explorer lists them (and filters by a clicked
// field), live tail shows a line pushed while it is open (and not one its
// query excludes), a dashboard's logs panel shows its query's lines, and a
// panel dragged on the grid keeps its place, and one resized by its corner
// its size, through save and reload (read back through the dashboards
// API). Fails on any console error.
// Usage: node logs_layout.mjs <base-url> <artifact-dir> <dashboard-uid>

import assert from 'node:assert/strict';
import path from 'node:path';
import { launch, waitReady, reportFailure } from './chromium.mjs';

const [base, artifacts, uid] = process.argv.slice(2);
const { page, errors, close } = await launch({ width: 1280, height: 1000 });
const shot = (name) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
let step = 'start';
const passed = [];
function check(name) { passed.push(name); console.log(`ok - ${name}`); }

/** Pushes one line now over Loki's JSON push API; the server answers 204 once it is searchable. */
async function push(labels, line) {
  const ns = `${BigInt(Date.now()) * 1000000n}`;
  const r = await fetch(`${base}/loki/api/v1/push`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ streams: [{ stream: labels, values: [[ns, line]] }] }),
  });
  assert.equal(r.status, 204, `push answered ${r.status}: ${await r.text()}`);
}
const messages = (scope) => page.locator(`${scope} tr.log-line td.msg`).allTextContents();

try {
  step = 'log explorer';
  await page.goto(`${base}/#/logs?from=now-1h&to=now`);
  await page.waitForFunction(() => document.body.dataset.ready === 'true' && document.getElementById('logs-lines')?.dataset.state === 'ready');
  let shown = await messages('#logs-lines');
  assert.ok(shown.some((m) => m.includes('payment gateway timeout')), `the shop line is listed: ${JSON.stringify(shown)}`);
  assert.ok(shown.some((m) => m.includes('user alice logged in')), `the auth line is listed: ${JSON.stringify(shown)}`);
  const row = page.locator('#logs-lines tr.log-line', { hasText: 'payment gateway timeout' });
  for (const [f, v] of [['namespace', 'shop'], ['pod', 'cart-7d9'], ['container', 'app']]) {
    assert.equal(await row.locator(`.field[data-field="${f}"]`).textContent(), v, `the line shows its ${f}`);
  }
  assert.match(await page.locator('#logs-info').textContent(), /^3 matching lines/);
  await shot('logs-explorer');
  check('the log explorer lists the pushed lines with their fields');

  step = 'filter';
  await row.locator('.field[data-field="namespace"]').click();
  await page.waitForFunction(() => document.getElementById('logs-query').value === 'namespace:"shop"'
    && document.getElementById('logs-lines').dataset.state === 'ready' && /^2 matching/.test(document.getElementById('logs-info').textContent));
  shown = await messages('#logs-lines');
  assert.equal(shown.length, 2, JSON.stringify(shown));
  assert.ok(shown.every((m) => !m.includes('alice')), 'the auth line is filtered out');
  check('clicking a field value filters the lines');

  step = 'live tail';
  await page.click('#logs-tail');
  await page.waitForFunction(() => document.getElementById('logs-tail').dataset.state === 'open', null, { timeout: 10000 });
  const token = `tail-${process.pid}-${Date.now()}`;
  await push({ namespace: 'auth', pod: 'login-1', container: 'app', node: 'n1' }, `excluded ${token}`);
  await push({ namespace: 'shop', pod: 'cart-7d9', container: 'app', node: 'n1' }, `level=warn msg="retrying payment" ${token}`);
  const tailed = `level=warn msg="retrying payment" ${token}`;
  await page.locator('#logs-lines tr.log-line td.msg', { hasText: tailed }).waitFor({ timeout: 15000 });
  shown = await messages('#logs-lines');
  assert.equal(shown[0], tailed, `the new line is on top: ${JSON.stringify(shown)}`);
  assert.ok(shown.every((m) => !m.includes(`excluded ${token}`)), 'the line the query excludes is not tailed');
  await shot('logs-tail');
  await page.click('#logs-tail');
  check('live tail shows a line pushed while it is open, and only matching ones');

  step = 'logs panel';
  await page.goto(`${base}/#/d/${uid}?from=now-1h&to=now`);
  await waitReady(page);
  const panel = page.locator('.panel[data-type="logs"]');
  await panel.locator('tr.log-line').first().waitFor();
  shown = await messages('.panel[data-type="logs"]');
  assert.ok(shown.some((m) => m.includes('payment gateway timeout')), `the logs panel lists the shop line: ${JSON.stringify(shown)}`);
  assert.ok(shown.some((m) => m === tailed), 'and the tailed one');
  assert.ok(shown.every((m) => !m.includes('alice')), 'and nothing outside its query');
  check('a dashboard logs panel shows its query\'s lines');

  step = 'drag';
  await page.click('#edit-dashboard');
  const left = page.locator('.panel[data-title="Left"]');
  const right = page.locator('.panel[data-title="Right"]');
  const grid = await page.locator('#grid').boundingBox();
  const colPx = (grid.width + 8) / 24;
  const handle = await left.locator('.ptitle').boundingBox();
  const [x0, y0] = [handle.x + 30, handle.y + handle.height / 2];
  // Twelve columns right and two rows down: onto Right, which must move down.
  const [dx, dy] = [12 * colPx, 2 * 38];
  await page.mouse.move(x0, y0);
  await page.mouse.down();
  for (let i = 1; i <= 10; i++) await page.mouse.move(x0 + (dx * i) / 10, y0 + (dy * i) / 10);
  assert.equal(await page.locator('#drop-target').getAttribute('style'), 'grid-column:13 / span 12;grid-row:13 / span 4', 'the outline shows where it lands');
  await page.mouse.up();
  assert.equal(await page.locator('#drop-target').count(), 0);
  assert.match(await left.getAttribute('style'), /grid-column:13 \/ span 12;grid-row:13 \/ span 4/);
  assert.match(await right.getAttribute('style'), /grid-row:17 \/ span 4/, 'the panel it landed on moved below it');
  await shot('drag');
  await page.click('#save-dashboard');
  await page.waitForFunction(() => document.getElementById('save-status').dataset.saved);
  const saved = await (await fetch(`${base}/api/v1/dashboards/${uid}`)).json();
  const pos = (title) => saved.data.dashboard.panels.find((p) => p.title === title).gridPos;
  assert.deepEqual(pos('Left'), { x: 12, y: 12, w: 12, h: 4 }, 'the saved layout has the new place');
  assert.deepEqual(pos('Right'), { x: 12, y: 16, w: 12, h: 4 }, 'and the pushed panel');
  assert.deepEqual(pos('Recent shop logs'), { x: 0, y: 0, w: 24, h: 10 }, 'others stay');
  check('a dragged panel\'s place is saved (read back from the API)');

  step = 'reload';
  await page.reload();
  await waitReady(page);
  const l = await left.boundingBox(); const r = await right.boundingBox();
  assert.ok(Math.abs(l.x - r.x) < 1 && r.y > l.y + l.height - 1, `after a reload Right is under Left (${JSON.stringify({ l, r })})`);
  assert.ok(l.x > grid.x + grid.width / 2 - 10, 'Left is in the right half');
  await shot('drag-reloaded');
  check('the layout survives a reload');

  step = 'resize';
  await page.click('#edit-dashboard');
  const corner = await left.locator('.resize-handle').boundingBox();
  const [cx, cy] = [corner.x + corner.width / 2, corner.y + corner.height / 2];
  // Six columns narrower and two rows taller: it grows over Right, which must move down.
  const [rx, ry] = [-6 * colPx, 2 * 38];
  await page.mouse.move(cx, cy);
  await page.mouse.down();
  for (let i = 1; i <= 10; i++) await page.mouse.move(cx + (rx * i) / 10, cy + (ry * i) / 10);
  assert.equal(await page.locator('#drop-target').getAttribute('style'), 'grid-column:13 / span 6;grid-row:13 / span 6', 'the outline shows the new size');
  await page.mouse.up();
  assert.equal(await page.locator('#drop-target').count(), 0);
  assert.match(await left.getAttribute('style'), /grid-column:13 \/ span 6;grid-row:13 \/ span 6/);
  assert.match(await right.getAttribute('style'), /grid-column:13 \/ span 12;grid-row:19 \/ span 4/, 'the panel it grew over moved below it');
  await page.waitForFunction(() => document.querySelector('.panel[data-title="Left"]').dataset.state === 'ready');
  await shot('resize');
  await page.click('#save-dashboard');
  await page.waitForFunction(() => document.getElementById('save-status').dataset.saved); // a fresh page since the reload
  const resized = await (await fetch(`${base}/api/v1/dashboards/${uid}`)).json();
  const rpos = (title) => resized.data.dashboard.panels.find((p) => p.title === title).gridPos;
  assert.deepEqual(rpos('Left'), { x: 12, y: 12, w: 6, h: 6 }, 'the saved layout has the new size');
  assert.deepEqual(rpos('Right'), { x: 12, y: 18, w: 12, h: 4 }, 'and the pushed panel');
  assert.deepEqual(rpos('Recent shop logs'), { x: 0, y: 0, w: 24, h: 10 }, 'others stay');
  await page.reload();
  await waitReady(page);
  const l2 = await left.boundingBox(); const r2 = await right.boundingBox();
  assert.ok(Math.abs(l2.width - (r2.width - 8) / 2) < 4, `after a reload Left is half as wide as Right (${JSON.stringify({ l2, r2 })})`);
  assert.ok(Math.abs(l2.height - (6 * 38 - 8)) < 4 && r2.y > l2.y + l2.height - 1, `six rows tall, Right under it (${JSON.stringify({ l2, r2 })})`);
  check('a resized panel\'s size is saved and survives a reload');

  assert.deepEqual(errors, [], 'no console errors');
  check('no console errors');
  console.log(`${passed.length} passed, 0 failed`);
} catch (e) {
  await reportFailure(e, { step, errors, shot });
} finally {
  await close();
}
