// Time from navigation to every chart drawn, in Chromium, for each URL
// given: a fresh page load per run (files revalidated by ETag), then the
// latest `data-ready-at` (performance.now() when the page or a panel
// finished drawing) among the page and its panels. Prints one JSON line
// per URL: {url, runs_ms: [...], median_ms, panels, series}.
// Usage: node bench.mjs <runs> <url>...

import { launch, waitReady } from './chromium.mjs';

const [runsArg, ...urls] = process.argv.slice(2);
const runs = Number(runsArg) || 5;
// Tall enough for a 12-panel dashboard to be on screen at once (panels
// off screen are not queried by design, which would flatter the figure).
const { page, errors, close } = await launch({ width: 1400, height: 2400 });
try {
  for (const url of urls) {
    const times = [];
    let panels = 0; let series = 0;
    for (let i = 0; i <= runs; i++) {
      await page.goto('about:blank');
      await page.goto(url);
      await waitReady(page, 60000);
      const r = await page.evaluate(() => {
        const parts = [...document.querySelectorAll('[data-ready-at]')];
        const charts = [...document.querySelectorAll('.panel[data-state="ready"]')];
        return {
          ms: Math.max(...parts.map((e) => Number(e.dataset.readyAt))),
          panels: charts.length,
          series: charts.reduce((n, e) => n + Number(e.dataset.series || 0), 0),
        };
      });
      if (i > 0) times.push(r.ms); // run 0 warms the server's caches and the browser's
      panels = r.panels; series = r.series;
    }
    const sorted = [...times].sort((a, b) => a - b);
    console.log(JSON.stringify({ url, runs_ms: times, median_ms: sorted[Math.floor(sorted.length / 2)], panels, series }));
  }
  if (errors.length) { console.error(errors.join('\n')); process.exitCode = 1; }
} finally {
  await close();
}
