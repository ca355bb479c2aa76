import { BatchFrames, decodeChart } from './wire.js';

// HTTP calls to the Osprey server. Every call sends the session cookie;
// a 401 sends the browser to the login page.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const enc = encodeURIComponent;

export function qs(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    parts.push(`${enc(k)}=${enc(v)}`);
  }
  return parts.join('&');
}

export async function api(path, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  if (typeof opts.body === 'string') headers['Content-Type'] = 'application/json';
  let r;
  try {
    r = await fetch(path, { credentials: 'same-origin', ...opts, headers });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, `the server did not answer (${e.message})`);
  }
  if (r.status === 401) toLogin();
  let body = null;
  const text = await r.text();
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!r.ok) throw new ApiError(r.status, (body && body.error) || `${r.status} ${r.statusText}`);
  return body;
}

/** Instant PromQL query: the result vector. */
export async function instant(query, signal) {
  const b = await api(`/api/v1/query?${qs({ query })}`, { signal });
  return b.data.result;
}

function chartParams({ query, start, end, width, legend }) {
  return {
    query, start: (start / 1000).toFixed(3), end: (end / 1000).toFixed(3),
    width: Math.max(1, Math.min(10000, Math.round(width))), legend,
  };
}

function toLogin() {
  if (!location.hash.startsWith('#/login')) location.hash = '#/login?next=' + enc(location.hash || '#/');
}

/** The ApiError of a failed answer (errors are JSON, as everywhere). */
async function answerError(r) {
  if (r.status === 401) toLogin();
  let body = null;
  try { body = await r.json(); } catch { body = null; }
  return new ApiError(r.status, (body && body.error) || `${r.status} ${r.statusText}`);
}

/** One chart query on its own, in the binary format. */
async function chartQueryOne(opts) {
  const path = `/api/v1/dashboard/query_range?${qs({ ...chartParams(opts), format: 'binary' })}`;
  let r;
  try {
    r = await fetch(path, { credentials: 'same-origin', signal: opts.signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, `the server did not answer (${e.message})`);
  }
  if (!r.ok) throw await answerError(r);
  return decodeChart(await r.arrayBuffer());
}

const aborted = () => new DOMException('the chart query was aborted', 'AbortError');

/**
 * Sends the queued chart queries as one batch (POST
 * /api/v1/dashboard/query_batch) and settles each query's promise as its
 * frame arrives, so that each panel draws as soon as its answer is in.
 * The request is aborted only when every query in it is.
 */
async function sendBatch(items) {
  const live = items.filter((it) => {
    if (it.opts.signal?.aborted) { it.reject(aborted()); return false; }
    return true;
  });
  if (live.length <= 1) {
    for (const it of live) chartQueryOne(it.opts).then(it.resolve, it.reject);
    return;
  }
  const ctl = new AbortController();
  let open = live.length;
  const settle = (it, f, v) => { if (it.done) return; it.done = true; f(v); if (--open === 0) ctl.abort(); };
  for (const it of live) it.opts.signal?.addEventListener('abort', () => settle(it, it.reject, aborted()), { once: true });
  const failAll = (e) => { for (const it of live) settle(it, it.reject, e); };
  try {
    const r = await fetch('/api/v1/dashboard/query_batch', {
      method: 'POST', credentials: 'same-origin', signal: ctl.signal,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ queries: live.map((it) => chartParams(it.opts)) }),
    });
    if (!r.ok) { failAll(await answerError(r)); return; }
    const frames = new BatchFrames();
    const reader = r.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      for (const f of frames.push(value)) {
        const it = live[f.index];
        if (!it || it.done) continue;
        if (f.status === 200) {
          let d;
          try { d = decodeChart(f.body); } catch (e) { settle(it, it.reject, new ApiError(0, e.message)); continue; }
          settle(it, it.resolve, d);
        } else {
          let body = null;
          try { body = JSON.parse(new TextDecoder().decode(f.body)); } catch { body = null; }
          settle(it, it.reject, new ApiError(f.status, (body && body.error) || `${f.status}`));
        }
      }
    }
    failAll(new ApiError(0, 'the server ended the batch answer without this query'));
  } catch (e) {
    if (e.name === 'AbortError' && ctl.signal.aborted) { failAll(aborted()); return; }
    failAll(e instanceof ApiError ? e : new ApiError(0, `the server did not answer (${e.message})`));
  }
}

let queued = null;

/**
 * Range query reduced to one min/max bucket per pixel (see docs), in the
 * binary format (wire.js): a 50-series answer is a third of the JSON's
 * bytes and needs no JSON.parse of its numbers. The queries made in the
 * same task (the panels that came on screen together) go to the server as
 * one batch, which answers each as soon as it is ready; only parts on
 * screen ask, so panels off screen are still not queried.
 */
export function chartQuery(opts) {
  // `wire=json` in the page's URL takes the JSON answer instead, and
  // `batch=off` one request per query (the benchmark compares them).
  if (/[?&]wire=json(&|$)/.test(location.hash)) {
    return api(`/api/v1/dashboard/query_range?${qs(chartParams(opts))}`, { signal: opts.signal }).then((b) => b.data);
  }
  if (/[?&]batch=off(&|$)/.test(location.hash)) return chartQueryOne(opts);
  return new Promise((resolve, reject) => {
    if (!queued) {
      queued = [];
      queueMicrotask(() => { const items = queued; queued = null; sendBatch(items); });
    }
    queued.push({ opts, resolve, reject, done: false });
  });
}

let openapi = null;
/** True when the server documents `path` (used to find whether the logs API is there, without a 404). */
export async function serves(path) {
  if (!openapi) openapi = api('/api/openapi.json').catch(() => ({ paths: {} }));
  const doc = await openapi;
  return Boolean(doc && doc.paths && doc.paths[path]);
}

export const whoami = () => api('/api/v1/whoami').then((b) => b.data);
