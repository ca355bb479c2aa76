import { decodeChart } from './wire.js';

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
  if (r.status === 401 && !location.hash.startsWith('#/login')) {
    location.hash = '#/login?next=' + enc(location.hash || '#/');
  }
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

/**
 * Range query reduced to one min/max bucket per pixel (see docs), in the
 * binary format (wire.js): a 50-series answer is a third of the JSON's
 * bytes and needs no JSON.parse of its numbers.
 */
export async function chartQuery({ query, start, end, width, legend, signal }) {
  const params = {
    query, start: (start / 1000).toFixed(3), end: (end / 1000).toFixed(3),
    width: Math.max(1, Math.min(10000, Math.round(width))), legend,
  };
  // `wire=json` in the page's URL takes the JSON answer instead (the
  // benchmark compares both in one run).
  if (/[?&]wire=json(&|$)/.test(location.hash)) {
    return (await api(`/api/v1/dashboard/query_range?${qs(params)}`, { signal })).data;
  }
  const path = `/api/v1/dashboard/query_range?${qs({ ...params, format: 'binary' })}`;
  let r;
  try {
    r = await fetch(path, { credentials: 'same-origin', signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, `the server did not answer (${e.message})`);
  }
  if (!r.ok) { // errors are JSON, as everywhere
    if (r.status === 401 && !location.hash.startsWith('#/login')) location.hash = '#/login?next=' + enc(location.hash || '#/');
    let body = null;
    try { body = await r.json(); } catch { body = null; }
    throw new ApiError(r.status, (body && body.error) || `${r.status} ${r.statusText}`);
  }
  return decodeChart(await r.arrayBuffer());
}

let openapi = null;
/** True when the server documents `path` (used to find whether the logs API is there, without a 404). */
export async function serves(path) {
  if (!openapi) openapi = api('/api/openapi.json').catch(() => ({ paths: {} }));
  const doc = await openapi;
  return Boolean(doc && doc.paths && doc.paths[path]);
}

export const whoami = () => api('/api/v1/whoami').then((b) => b.data);
