// Time ranges: relative (`now-6h`, `now`) or absolute (epoch ms or ISO),
// the picker in the top bar, and auto-refresh. The range lives in the URL
// (`from`, `to`, `refresh`) so that a link shows the same thing.

const UNIT_MS = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 };

export function toMs(s, now = Date.now()) {
  if (s === undefined || s === null || s === '') return now;
  s = String(s).trim();
  if (s === 'now') return now;
  const m = /^now-(\d+)([smhdw])$/.exec(s);
  if (m) return now - Number(m[1]) * UNIT_MS[m[2]];
  if (/^\d+$/.test(s)) return Number(s);
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw new Error(`cannot read the time ${s}`);
  return t;
}

export const RELATIVE = [
  ['now-5m', 'Last 5 minutes'], ['now-15m', 'Last 15 minutes'], ['now-1h', 'Last 1 hour'],
  ['now-6h', 'Last 6 hours'], ['now-12h', 'Last 12 hours'], ['now-24h', 'Last 24 hours'],
  ['now-2d', 'Last 2 days'], ['now-7d', 'Last 7 days'],
];
export const REFRESH = ['off', '5s', '10s', '30s', '1m', '5m', '15m'];

/** The shared time state; listeners run on every change (and refresh tick). */
export const timeState = {
  from: 'now-1h', to: 'now', refresh: 'off', listeners: new Set(), timer: null,
  range() { const now = Date.now(); return [toMs(this.from, now), toMs(this.to, now)]; },
  set(from, to, { silent } = {}) {
    this.from = String(from); this.to = String(to);
    syncPicker();
    writeUrl();
    if (!silent) this.emit();
  },
  setRefresh(r) {
    this.refresh = r;
    clearInterval(this.timer);
    const m = /^(\d+)([smh])$/.exec(r);
    if (m) this.timer = setInterval(() => this.emit(), Number(m[1]) * UNIT_MS[m[2]]);
    syncPicker();
    writeUrl();
  },
  on(f) { this.listeners.add(f); return () => this.listeners.delete(f); },
  emit() { for (const f of [...this.listeners]) f(); },
};

function hashParts() {
  const h = location.hash || '#/';
  const i = h.indexOf('?');
  return i < 0 ? [h, new URLSearchParams()] : [h.slice(0, i), new URLSearchParams(h.slice(i + 1))];
}

function writeUrl() {
  const [path, params] = hashParts();
  params.set('from', timeState.from);
  params.set('to', timeState.to);
  if (timeState.refresh !== 'off') params.set('refresh', timeState.refresh); else params.delete('refresh');
  const next = `${path}?${params.toString()}`;
  if (next !== location.hash) history.replaceState(null, '', next);
}

/** Reads from/to/refresh from the URL (on navigation). */
export function readUrl(defaults = {}) {
  const [, params] = hashParts();
  timeState.from = params.get('from') || defaults.from || timeState.from;
  timeState.to = params.get('to') || defaults.to || timeState.to;
  const r = params.get('refresh') || defaults.refresh || 'off';
  if (r !== timeState.refresh) timeState.setRefresh(r); else syncPicker();
}

const fmtLocal = (ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60000).toISOString().slice(0, 16);

let picker = null;
function syncPicker() {
  if (!picker) return;
  const rel = RELATIVE.some(([v]) => v === timeState.from) && timeState.to === 'now';
  picker.sel.value = rel ? timeState.from : 'custom';
  picker.abs.hidden = rel;
  if (!rel) {
    const [a, b] = timeState.range();
    picker.fromI.value = fmtLocal(a);
    picker.toI.value = fmtLocal(b);
  }
  picker.ref.value = timeState.refresh;
}

export function mountPicker(el) {
  el.innerHTML = '';
  const sel = document.createElement('select');
  sel.id = 'range';
  sel.title = 'Time range';
  for (const [v, l] of RELATIVE) sel.add(new Option(l, v));
  sel.add(new Option('Absolute…', 'custom'));
  const abs = document.createElement('span');
  abs.hidden = true;
  const fromI = Object.assign(document.createElement('input'), { type: 'datetime-local', id: 'range-from' });
  const toI = Object.assign(document.createElement('input'), { type: 'datetime-local', id: 'range-to' });
  const apply = Object.assign(document.createElement('button'), { textContent: 'Apply' });
  abs.append(fromI, ' – ', toI, ' ', apply);
  const ref = document.createElement('select');
  ref.id = 'refresh';
  ref.title = 'Auto-refresh';
  for (const r of REFRESH) ref.add(new Option(r === 'off' ? 'Refresh off' : `Every ${r}`, r));
  const now = Object.assign(document.createElement('button'), { textContent: '⟳', title: 'Refresh now' });
  el.append(sel, abs, ref, now);
  picker = { sel, abs, fromI, toI, ref };
  sel.onchange = () => {
    if (sel.value === 'custom') {
      const [a, b] = timeState.range();
      fromI.value = fmtLocal(a); toI.value = fmtLocal(b);
      abs.hidden = false;
    } else timeState.set(sel.value, 'now');
  };
  apply.onclick = () => {
    const a = Date.parse(fromI.value); const b = Date.parse(toI.value);
    if (Number.isFinite(a) && Number.isFinite(b) && b > a) timeState.set(a, b);
  };
  ref.onchange = () => timeState.setRefresh(ref.value);
  now.onclick = () => timeState.emit();
  syncPicker();
}
