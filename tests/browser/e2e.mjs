// The dashboard end to end in Chromium against a live `osprey up`
// (started by tests/dashboard_browser.rs): overview → node → the loaded
// container (CPU near one core) → its logs; a new dashboard with a graph,
// a singlestat (sparkline, thresholds) and a text panel, saved, found
// again after a reload, exported and imported. Fails on any console error.
// Usage: node e2e.mjs <base-url> <artifact-dir> <node> <cgroup-id> <node-address>

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { launch, waitReady, follow, reportFailure } from './chromium.mjs';

const [base, artifacts, node, cgroup, address] = process.argv.slice(2);
const { page, errors, close } = await launch();
const shot = (name) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
let step = 'start';
const passed = [];
function check(name) { passed.push(name); console.log(`ok - ${name}`); }

try {
  step = 'overview';
  await page.goto(`${base}/`);
  await waitReady(page);
  const nodeLink = page.locator('#nodes-table a', { hasText: node });
  await nodeLink.waitFor();
  const containers = Number(await page.locator(`#nodes-table tr[data-key="${node}"] td[data-col="n"]`).getAttribute('data-value'));
  assert.ok(containers >= 1, `the node lists its containers (${containers})`);
  // The address the agent ships (machine_info{address}), within a poll:
  // the agent's first collection may not have been shipped yet.
  const addrCell = page.locator(`#nodes-table tr[data-key="${node}"] td[data-col="address"]`);
  for (let i = 0; i < 40 && (await addrCell.textContent()) !== address; i++) {
    await page.waitForTimeout(250);
    await page.reload();
    await waitReady(page);
  }
  assert.equal(await addrCell.textContent(), address, 'the overview shows the node address');
  await shot('overview');
  check('overview lists the node with its address');

  step = 'node';
  await follow(page, nodeLink, 'node');
  // The loaded cgroup's CPU: a rate over 1 minute, near one core once it has run a while.
  const cell = page.locator(`#containers-table tr[data-key="${cgroup}"] td[data-col="cpu"]`);
  let cpu = NaN;
  for (let i = 0; i < 60; i++) {
    if (await cell.count()) cpu = Number(await cell.getAttribute('data-value'));
    if (cpu > 0.85) break;
    await page.waitForTimeout(500); // the agent ships every second: poll the page
    await page.reload();
    await waitReady(page);
  }
  const load = fs.readFileSync('/proc/loadavg', 'utf8').trim();
  assert.ok(cpu > 0.6 && cpu < 1.4, `the busy loop uses about one core, the table says ${cpu} (load average ${load})`);
  assert.equal(await page.locator('#node-address').textContent(), address, 'the node page shows the address');
  await shot('node');
  check(`node page shows the address and the loaded container at ${cpu.toFixed(2)} cores`);

  step = 'container';
  await follow(page, page.locator(`#containers-table tr[data-key="${cgroup}"] a.container-link`), 'container');
  const charts = await page.locator('.panel[data-state="ready"] canvas').count();
  assert.ok(charts >= 4, `container charts drawn (${charts})`);
  const cpuSeries = await page.locator('.panel[data-title="CPU vs limit"]').getAttribute('data-series');
  assert.ok(Number(cpuSeries) >= 1, 'the CPU chart has the usage series');
  await shot('container');
  check('container page draws CPU, memory, network and filesystem charts');

  step = 'logs';
  await page.locator('#container-logs').click();
  await page.waitForFunction(() => document.body.dataset.route === 'logs' && document.body.dataset.ready === 'true');
  const query = await page.locator('#logs-query').inputValue();
  assert.ok(query.includes(node) || query.includes('pod:'), `the logs link carries the container's query (${query})`);
  const unavailable = await page.locator('#logs-unavailable').count();
  if (!unavailable) await page.waitForFunction(() => ['ready', 'error'].includes(document.getElementById('logs-lines').dataset.state));
  await shot('logs');
  check(unavailable ? 'logs page explains the logs API is not there' : 'logs page searched the container\'s lines');

  step = 'new dashboard';
  await page.goto(`${base}/#/new`);
  await waitReady(page);
  await page.fill('#dash-title', 'E2E board');
  const expr = `rate(container_cpu_usage_seconds_total{id="${cgroup}"}[1m])`;

  // Graph, with metric completion in the PromQL editor.
  await page.click('#add-panel');
  await page.fill('#panel-title', 'Busy loop CPU');
  const ta = page.locator('#panel-targets textarea.promql').first();
  await ta.click();
  await ta.pressSequentially('container_cpu_usage_sec');
  const suggestion = page.locator('.completion li', { hasText: 'container_cpu_usage_seconds_total' }).first();
  await suggestion.waitFor();
  await suggestion.dispatchEvent('mousedown');
  assert.equal(await ta.inputValue(), 'container_cpu_usage_seconds_total');
  check('PromQL editor completes metric names');
  await ta.fill(expr);
  await page.selectOption('#panel-unit', 'cores');
  await page.click('#panel-apply');

  // Singlestat with sparkline and thresholds (red above half a core).
  await page.click('#add-panel');
  await page.selectOption('#panel-type', 'stat');
  await page.fill('#panel-title', 'Busy loop now');
  await page.locator('#panel-targets textarea.promql').first().fill(`sum(${expr})`);
  await page.selectOption('#panel-unit', 'cores');
  await page.fill('#panel-thresholds', 'green, 0.5:red');
  await page.check('#panel-sparkline');
  await page.selectOption('#panel-color-mode', 'background');
  await page.fill('#panel-x', '12');
  await page.fill('#panel-y', '0');
  await page.click('#panel-apply');

  // Text: markdown, sanitised.
  await page.click('#add-panel');
  await page.selectOption('#panel-type', 'text');
  await page.fill('#panel-title', 'Notes');
  await page.fill('#panel-content', '# Runbook\nThe **busy loop** is expected. <img src=x onerror="alert(1)">');
  await page.fill('#panel-y', '8');
  await page.fill('#panel-w', '24');
  await page.fill('#panel-h', '4');
  await page.click('#panel-apply');

  step = 'save';
  await page.click('#save-dashboard');
  await page.waitForFunction(() => /^#\/d\/[A-Za-z0-9_-]+/.test(location.hash));
  const uid = await page.evaluate(() => location.hash.split('/')[2].split('?')[0]);
  await waitReady(page);
  check(`dashboard saved as ${uid}`);

  async function assertPanels() {
    const graph = page.locator('.panel[data-title="Busy loop CPU"]');
    await graph.locator('canvas').first().waitFor();
    assert.ok(Number(await graph.getAttribute('data-series')) >= 1, 'graph has a series');
    const stat = page.locator('.panel[data-title="Busy loop now"] .stat');
    const v = Number(await stat.locator('.value').getAttribute('data-value'));
    assert.ok(v > 0.5 && v < 1.5, `singlestat shows about one core (${v})`);
    assert.equal(await stat.getAttribute('data-color'), '#e02f44', 'above the 0.5 threshold the tile is red');
    assert.equal(await stat.locator('svg.spark path').count(), 2, 'sparkline drawn');
    const text = page.locator('.panel[data-title="Notes"] .markdown');
    assert.equal(await text.locator('h1').textContent(), 'Runbook');
    assert.equal(await text.locator('strong').textContent(), 'busy loop');
    assert.equal(await text.locator('img').count(), 0, 'raw HTML is not rendered');
  }
  await assertPanels();
  await shot('dashboard');
  check('graph, singlestat (sparkline, red threshold) and text panels drawn');

  step = 'reload';
  await page.reload();
  await waitReady(page);
  await assertPanels();
  // The graph's and the singlestat's queries (on screen together) went to
  // the server as one batch request, not one request each.
  const chartRequests = await page.evaluate(() => performance.getEntriesByType('resource')
    .map((e) => new URL(e.name).pathname).filter((p) => p.startsWith('/api/v1/dashboard/')));
  assert.deepEqual(chartRequests, ['/api/v1/dashboard/query_batch'], 'one batch for the charts on screen');
  await page.goto(`${base}/#/dashboards`);
  await waitReady(page);
  await page.locator('#dashboards-table a', { hasText: 'E2E board' }).waitFor();
  check('the dashboard is found again after a reload, its charts queried in one batch');

  step = 'export';
  await page.goto(`${base}/#/d/${uid}`);
  await waitReady(page);
  await page.click('#export-dashboard');
  const exported = JSON.parse(await page.locator('#export-json').inputValue());
  assert.equal(exported.title, 'E2E board');
  assert.equal(exported.panels.length, 3);
  await shot('export');
  check('export gives the dashboard JSON');

  step = 'import';
  exported.title = 'E2E board (imported)';
  delete exported.uid;
  delete exported.version;
  await page.goto(`${base}/#/dashboards`);
  await waitReady(page);
  await page.click('#import summary');
  await page.fill('#import-json', JSON.stringify(exported));
  await page.click('#import-button');
  await page.waitForFunction((old) => /^#\/d\//.test(location.hash) && !location.hash.includes(old), uid);
  await waitReady(page);
  assert.equal(await page.locator('#dash-title-text').textContent(), 'E2E board (imported)');
  await assertPanels();
  await shot('imported');
  check('re-import creates a second dashboard with the same panels');

  assert.deepEqual(errors, [], 'no console errors');
  check('no console errors');
  console.log(`${passed.length} passed, 0 failed`);
} catch (e) {
  await reportFailure(e, { step, errors, shot });
} finally {
  await close();
}
