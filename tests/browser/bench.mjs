// Time from navigation to every chart drawn, in Chromium, for each URL
// given: a fresh page load per run (files revalidated by ETag), then the
// latest `data-ready-at` (performance.now() when the page or a panel
// finished drawing) among the page and its panels. Also where the time
// went, per run: `net_ms`, when the last API answer had arrived (resource
// timing), and `main_ms`, the main thread's long tasks (over 50 ms) added
// up. Prints one JSON line per URL: {url, runs_ms, median_ms, net_ms,
// main_ms (medians), panels, series}.
// Usage: node bench.mjs [--dpr=N] <runs> <url>...
// (`--dpr=2`: a HiDPI screen, devicePixelRatio 2; default 1.)

import { launch, waitReady } from './chromium.mjs';

const args = process.argv.slice(2);
const dprArg = args[0]?.startsWith('--dpr=') ? Number(args.shift().slice(6)) : 1;
const [runsArg, ...urls] = args;
const runs = Number(runsArg) || 5;
// Tall enough for a 12-panel dashboard to be on screen at once (panels
// off screen are not queried by design, which would flatter the figure).
const { page, errors, close } = await launch({ width: 1400, height: 2400, deviceScaleFactor: dprArg || 1 });
await page.addInitScript(() => {
  window.__longTasks = 0;
  try {
    new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__longTasks += e.duration; })
      .observe({ type: 'longtask', buffered: true });
  } catch { /* no long-task timing: reported as 0 */ }
});
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
try {
  for (const url of urls) {
    const times = []; const net = []; const main = [];
    let panels = 0; let series = 0;
    for (let i = 0; i <= runs; i++) {
      await page.goto('about:blank');
      await page.goto(url);
      await waitReady(page, 60000);
      const r = await page.evaluate(() => {
        const parts = [...document.querySelectorAll('[data-ready-at]')];
        const charts = [...document.querySelectorAll('.panel[data-state="ready"]')];
        const api = performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/'));
        return {
          ms: Math.max(...parts.map((e) => Number(e.dataset.readyAt))),
          net: Math.max(0, ...api.map((e) => e.responseEnd)),
          main: window.__longTasks,
          panels: charts.length,
          series: charts.reduce((n, e) => n + Number(e.dataset.series || 0), 0),
        };
      });
      if (i > 0) { // run 0 warms the server's caches and the browser's
        times.push(r.ms); net.push(r.net); main.push(r.main);
      }
      panels = r.panels; series = r.series;
    }
    console.log(JSON.stringify({ url, dpr: dprArg || 1, runs_ms: times, median_ms: median(times), net_ms: median(net), main_ms: median(main), panels, series }));
  }
  if (errors.length) { console.error(errors.join('\n')); process.exitCode = 1; }
} finally {
  await close();
}
