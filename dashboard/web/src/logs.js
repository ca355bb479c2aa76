// The log explorer: query box (tantivy syntax with field filters, see the
// logs API), the shared time range, a histogram of matching lines, the
// lines newest first with their fields (click a value to filter on it),
// more lines by cursor, and live tail over Server-Sent Events.

import { api, qs, serves } from './api.js';
import { el } from './table.js';
import { timeState } from './time.js';

const FIELDS = ['node', 'namespace', 'pod', 'container', 'stream', 'level'];

function quote(v) { return `"${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`; }

/** Adds `field:"value"` to a query (AND). */
export function addFilter(query, field, value) {
  const f = `${field}:${quote(value)}`;
  const q = (query || '').trim();
  if (q.includes(f)) return q;
  return q ? `${q} AND ${f}` : f;
}

/** A table of log lines; `onField(field, value)` when a value is clicked (null: not clickable). */
export function logLinesTable(lines, onField) {
  const rows = lines.map((l) => lineRow(l, onField));
  return el('table', { class: 'data logs-lines' }, el('tr', {}, el('th', {}, 'Time'), el('th', {}, 'Source'), el('th', {}, 'Message')), rows);
}

function lineRow(l, onField) {
  const fields = FIELDS.filter((f) => l[f]).map((f) => el('span', {
    class: `field${f === 'level' ? ` lvl-${l.level}` : ''}`, title: `${f}: click to filter`, dataset: { field: f, value: l[f] },
    onclick: onField ? () => onField(f, l[f]) : null,
  }, l[f]));
  const src = [];
  fields.forEach((f, i) => { if (i) src.push(' '); src.push(f); });
  return el('tr', { class: 'log-line' }, el('td', {}, (l.ts || '').replace('T', ' ').replace(/\.\d+Z$/, 'Z')), el('td', {}, src), el('td', { class: 'msg' }, l.message));
}

function histogram(buckets, stepMs, onPick) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('class', 'histogram');
  svg.setAttribute('viewBox', `0 0 ${Math.max(1, buckets.length)} 100`);
  svg.setAttribute('preserveAspectRatio', 'none');
  const max = Math.max(1, ...buckets.map((b) => b.count));
  buckets.forEach((b, i) => {
    const r = document.createElementNS(ns, 'rect');
    const h = (b.count / max) * 98;
    r.setAttribute('x', String(i + 0.1)); r.setAttribute('width', '0.8');
    r.setAttribute('y', String(100 - h)); r.setAttribute('height', String(h));
    const t = document.createElementNS(ns, 'title');
    t.textContent = `${new Date(b.t).toISOString()}: ${b.count} lines`;
    r.append(t);
    r.addEventListener('click', () => onPick(b.t, b.t + stepMs));
    svg.append(r);
  });
  return svg;
}

export async function logsPage(main, page, params) {
  let query = params.get('query') || '';
  const input = el('input', { id: 'logs-query', value: query, size: 70, placeholder: 'e.g. namespace:prod AND level:error AND "connection refused"' });
  const run = el('button', { class: 'primary', id: 'logs-run' }, 'Search');
  const tail = el('button', { id: 'logs-tail' }, 'Live tail');
  const hist = el('div', { id: 'logs-histogram' });
  const lines = el('div', { id: 'logs-lines' });
  const more = el('button', { id: 'logs-more', hidden: 'hidden' }, 'Older lines');
  const info = el('p', { class: 'muted', id: 'logs-info' });
  main.replaceChildren(el('h1', {}, 'Logs'), el('div', { class: 'toolbar' }, input, run, tail), hist, info, lines, more);

  if (!(await serves('/api/v1/logs/search'))) {
    main.dataset.logs = 'unavailable';
    info.replaceChildren(el('span', { class: 'notice', id: 'logs-unavailable' }, 'The logs API is not available on this server (GET /api/v1/logs/search answers 404). Logs appear here once the server stores them.'));
    return;
  }
  let cursor = null; let source = null;
  const onField = (f, v) => { input.value = addFilter(input.value, f, v); search(); };
  function setUrl() {
    const [path, q] = location.hash.split('?');
    const p = new URLSearchParams(q || '');
    if (input.value) p.set('query', input.value); else p.delete('query');
    history.replaceState(null, '', `${path}?${p}`);
  }
  function stopTail() { if (source) { source.close(); source = null; tail.textContent = 'Live tail'; delete tail.dataset.state; } }
  page.onDispose(stopTail);
  async function search() {
    stopTail();
    query = input.value.trim();
    setUrl();
    const [start, end] = timeState.range();
    const common = { query, start: start / 1000, end: end / 1000 };
    lines.dataset.state = 'loading';
    try {
      const [h, s] = await Promise.all([
        api(`/api/v1/logs/histogram?${qs(common)}`, { signal: page.signal }),
        api(`/api/v1/logs/search?${qs({ ...common, limit: 200 })}`, { signal: page.signal }),
      ]);
      hist.replaceChildren(histogram(h.data.buckets, h.data.step_ms, (a, b) => timeState.set(a, b)));
      const total = h.data.buckets.reduce((n, b) => n + b.count, 0);
      info.textContent = `${total} matching lines in the range; newest first.`;
      lines.replaceChildren(logLinesTable(s.data.lines, onField));
      cursor = s.data.next_cursor;
      more.hidden = !cursor;
      lines.dataset.state = 'ready';
    } catch (e) {
      if (e.name === 'AbortError') return;
      lines.dataset.state = 'error';
      info.replaceChildren(el('span', { class: e.status === 404 ? 'notice' : 'error' },
        e.status === 404 ? 'The logs API is not available on this server (it answered 404).' : e.message));
    }
  }
  more.onclick = async () => {
    const [start, end] = timeState.range();
    const s = await api(`/api/v1/logs/search?${qs({ query, start: start / 1000, end: end / 1000, limit: 200, cursor })}`, { signal: page.signal });
    const table = lines.querySelector('table');
    for (const l of s.data.lines) table.append(lineRow(l, onField));
    cursor = s.data.next_cursor;
    more.hidden = !cursor;
  };
  run.onclick = search;
  input.addEventListener('keydown', (e) => { if (e.key === 'Enter') search(); });
  tail.onclick = () => {
    if (source) { stopTail(); return; }
    let table = lines.querySelector('table');
    if (!table) { table = logLinesTable([], onField); lines.replaceChildren(table); }
    source = new EventSource(`/api/v1/logs/tail?${qs({ query: input.value.trim() })}`);
    tail.textContent = 'Stop tail';
    tail.dataset.state = 'connecting';
    // Lines committed from here on are sent (the server subscribes before it answers).
    source.onopen = () => { tail.dataset.state = 'open'; info.textContent = 'Live tail: new matching lines appear at the top.'; };
    source.onmessage = (ev) => {
      try {
        const l = JSON.parse(ev.data);
        const head = table.querySelector('tr');
        head.after(lineRow(l, onField));
      } catch { /* a malformed event is skipped */ }
    };
    source.onerror = () => { tail.dataset.state = 'retrying'; info.textContent = 'Live tail interrupted; the browser retries.'; };
  };
  page.onTime(search);
  await search();
}
