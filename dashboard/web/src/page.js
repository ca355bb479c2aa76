// What a page shares with its parts: an abort signal for its requests,
// time-range subscriptions, and lazy loading — a part is queried only
// while on screen (IntersectionObserver); a part off screen when the range
// changes is marked stale and queried when it scrolls into view.

import { timeState } from './time.js';
import { chartQuery } from './api.js';
import { drawChart } from './chart.js';
import { el } from './table.js';

export class Page {
  constructor() {
    this.abort = new AbortController();
    this.cleanups = [];
    this.visible = new Map();
    this.observer = new IntersectionObserver((entries) => {
      for (const e of entries) {
        const part = this.visible.get(e.target);
        if (!part) continue;
        part.onScreen = e.isIntersecting;
        if (part.onScreen && part.stale) this.run(part);
      }
    }, { rootMargin: '100px' });
    this.cleanups.push(timeState.on(() => {
      for (const part of this.visible.values()) {
        part.stale = true;
        if (part.onScreen) this.run(part);
      }
    }));
  }

  get signal() { return this.abort.signal; }

  /** Calls `load()` for `elem` when it is on screen, again on time changes. */
  lazy(elem, load) {
    const part = { elem, load, stale: true, onScreen: false, running: null };
    elem.dataset.state = 'waiting';
    this.visible.set(elem, part);
    this.observer.observe(elem);
    return part;
  }

  async run(part) {
    part.stale = false;
    if (part.running) part.running.abort();
    const ctl = new AbortController();
    part.running = ctl;
    const onAbort = () => ctl.abort();
    this.signal.addEventListener('abort', onAbort, { once: true });
    part.elem.dataset.state = 'loading';
    try {
      await part.load(ctl.signal);
      if (!ctl.signal.aborted) {
        // When it was drawn, ms since navigation (read by the benchmark).
        part.elem.dataset.readyAt = performance.now().toFixed(1);
        part.elem.dataset.state = 'ready';
      }
    } catch (e) {
      if (ctl.signal.aborted || e.name === 'AbortError') return;
      part.elem.dataset.state = 'error';
      const body = part.elem.querySelector('.pbody') || part.elem;
      body.replaceChildren(el('p', { class: 'error' }, e.message));
    } finally {
      this.signal.removeEventListener('abort', onAbort);
    }
  }

  onTime(f) { this.cleanups.push(timeState.on(f)); }
  onDispose(f) { this.cleanups.push(f); }

  dispose() {
    this.abort.abort();
    this.observer.disconnect();
    for (const p of this.visible.values()) if (p.chart) p.chart.destroy();
    for (const f of this.cleanups) f();
  }
}

/**
 * A chart panel for fixed queries: targets [{expr, legend}], opts as
 * drawChart's. Returns the panel element (already lazy-loaded by page).
 */
export function chartPanel(page, title, targets, opts = {}) {
  const body = el('div', { class: 'pbody chartbox' });
  const panel = el('div', { class: 'panel', dataset: { title } }, el('div', { class: 'ptitle' }, title), body);
  const part = page.lazy(panel, async (signal) => {
    const [start, end] = timeState.range();
    const width = Math.max(100, body.clientWidth - 80);
    const results = await Promise.all(targets.map((t) => chartQuery({ query: t.expr, legend: t.legend, start, end, width, signal })));
    if (signal.aborted) return;
    if (part.chart) part.chart.destroy();
    part.chart = drawChart(body, results, { ...opts, start, end });
    panel.dataset.series = String(part.chart.series.length);
  });
  return panel;
}
