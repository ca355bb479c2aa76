// Where a page's main-thread time goes, from a Chromium performance trace
// (DevTools protocol `Tracing`): after `warm` untraced loads, one traced
// load of the URL, then per task over 30 ms on the renderer's main thread
// its wall and CPU time and the CPU of what ran in it (script, microtasks,
// canvas raster = `CanvasRenderingContext2D::FinalizeFrame`, GC, layout),
// then the API requests' timing. The trace itself is written to
// `trace.json` in the given directory (load it in chrome://tracing or
// Perfetto). Usage: node profile.mjs <url> [out-dir] [warm=2] [devicePixelRatio=1]

import fs from 'node:fs';
import path from 'node:path';
import { launch, waitReady } from './chromium.mjs';

const [url, outDir = '.', warmArg = '2', dprArg = '1'] = process.argv.slice(2);
const CATEGORIES = ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8.execute', 'blink', 'toplevel', 'loading'];
const { page, close } = await launch({ width: 1400, height: 2400, deviceScaleFactor: Number(dprArg) || 1 });
const cdp = await page.context().newCDPSession(page);
try {
  for (let i = 0; i < Number(warmArg); i++) {
    await page.goto('about:blank');
    await page.goto(url);
    await waitReady(page, 60000);
  }
  await page.goto('about:blank');
  const events = [];
  cdp.on('Tracing.dataCollected', (e) => events.push(...e.value));
  await cdp.send('Tracing.start', { categories: CATEGORIES.join(','), transferMode: 'ReportEvents' });
  await page.goto(url);
  await waitReady(page, 60000);
  const timing = await page.evaluate(() => ({
    drawn: Math.max(...[...document.querySelectorAll('[data-ready-at]')].map((e) => Number(e.dataset.readyAt))),
    api: performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/'))
      .map((e) => ({ path: new URL(e.name).pathname, start: e.startTime, sent: e.requestStart, end: e.responseEnd })),
  }));
  const complete = new Promise((resolve) => cdp.once('Tracing.tracingComplete', resolve));
  await cdp.send('Tracing.end');
  await complete;
  fs.writeFileSync(path.join(outDir, 'trace.json'), JSON.stringify({ traceEvents: events }));

  const thread = (e) => `${e.pid}:${e.tid}`;
  const mains = new Set(events.filter((e) => e.name === 'thread_name' && e.args.name === 'CrRendererMain').map(thread));
  const main = events.filter((e) => mains.has(thread(e)) && e.ph === 'X').sort((a, b) => a.ts - b.ts);
  const nav = events.find((e) => e.name === 'navigationStart' && mains.has(thread(e)))?.ts ?? main[0].ts;
  const WHAT = { FunctionCall: 'script', RunMicrotasks: 'microtasks', 'CanvasRenderingContext2D::FinalizeFrame': 'canvas raster',
    MinorGC: 'gc', MajorGC: 'gc', Layout: 'layout', UpdateLayoutTree: 'style', Paint: 'paint', EvaluateScript: 'script' };
  const ms = (us) => (us / 1000).toFixed(1);
  const total = {};
  console.log(`navigation → all drawn: ${timing.drawn.toFixed(0)} ms`);
  // Tasks: the outermost RunTask events (some tasks nest a second one).
  const tasks = [];
  for (const e of main) {
    if ((e.name !== 'RunTask' && e.name !== 'ThreadControllerImpl::RunTask') || (tasks.length && e.ts < tasks.at(-1).ts + tasks.at(-1).dur)) continue;
    tasks.push(e);
  }
  for (const t of tasks.filter((e) => e.dur > 30000)) {
    const parts = {};
    // Top-level occurrences only (a FunctionCall inside RunMicrotasks counts once).
    let until = 0;
    for (const e of main) {
      if (e.ts < t.ts || e.ts + e.dur > t.ts + t.dur || !WHAT[e.name] || e.ts < until) continue;
      parts[WHAT[e.name]] = (parts[WHAT[e.name]] || 0) + (e.tdur ?? e.dur);
      until = e.ts + e.dur;
    }
    for (const [k, v] of Object.entries(parts)) total[k] = (total[k] || 0) + v;
    console.log(`task at ${ms(t.ts - nav)} ms: wall ${ms(t.dur)}, cpu ${ms(t.tdur ?? t.dur)}: ${Object.entries(parts).map(([k, v]) => `${k} ${ms(v)}`).join(', ')}`);
  }
  console.log(`tasks over 30 ms, cpu by kind: ${Object.entries(total).map(([k, v]) => `${k} ${ms(v)}`).join(', ')}`);
  for (const a of timing.api) console.log(`${a.path}: queued ${a.start.toFixed(0)}, sent ${a.sent.toFixed(0)}, answered ${a.end.toFixed(0)} ms`);
} finally {
  await close();
}
