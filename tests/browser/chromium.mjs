// Launches Debian's Chromium through playwright-core with the project's
// flags and a fresh profile; collects console errors and page errors.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const CHROMIUM = process.env.OSPREY_CHROMIUM || '/usr/bin/chromium';
export const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

export async function launch({ width = 1280, height = 900, deviceScaleFactor = 1 } = {}) {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`Chromium is missing at ${CHROMIUM} (apt-get install chromium)`);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'osprey-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: FLAGS,
    viewport: { width, height }, deviceScaleFactor, timezoneId: 'UTC', locale: 'en-US',
  });
  const errors = [];
  const watch = (page) => {
    page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()} (${m.location().url || ''})`); });
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  };
  context.on('page', watch);
  const page = context.pages()[0] || await context.newPage();
  watch(page);
  return {
    context, page, errors,
    async close() { await context.close(); fs.rmSync(profile, { recursive: true, force: true }); },
  };
}

// Follows `link` to the app's page `route` and waits until that page is
// ready. The app routes on `hashchange`, which fires after the click has
// returned: waiting for readiness alone could see the old page, still
// ready, and go on with it.
export async function follow(page, link, route) {
  await link.click();
  await page.waitForFunction((r) => document.body.dataset.route === r, route, { polling: 50 });
  await waitReady(page);
}

/** Waits until the page's route is drawn and every on-screen panel has loaded. */
export async function waitReady(page, timeout = 20000) {
  await page.waitForFunction(() => {
    if (document.body.dataset.ready !== 'true') return false;
    // Parts off screen wait (they are queried when scrolled to); parts on
    // screen must have loaded.
    const onScreen = (e) => { const r = e.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight && r.width > 0; };
    const parts = [...document.querySelectorAll('[data-state]')];
    return parts.every((e) => e.dataset.state === 'ready' || e.dataset.state === 'error' || (e.dataset.state === 'waiting' && !onScreen(e)));
  }, null, { timeout, polling: 50 });
  const failed = await page.$$eval('[data-state="error"]', (els) => els.map((e) => `${e.dataset.title || e.id}: ${e.textContent.trim()}`));
  if (failed.length) throw new Error(`parts failed to load: ${failed.join('; ')}`);
}

/**
 * What every browser test does when a step fails: a screenshot named after
 * the step, the error and the console errors so far on stderr, and a
 * failing exit code.
 */
export async function reportFailure(e, { step, errors, shot, prefix = '' }) {
  await shot(`${prefix}failed-${step.replace(/\W+/g, '-')}`).catch(() => {});
  console.error(`FAILED at ${step}: ${e.stack || e}`);
  if (errors.length) console.error(`console errors:\n${errors.join('\n')}`);
  process.exitCode = 1;
}
