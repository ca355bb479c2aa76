// The alerting pages: policies overview (#/alerts), the rule form with its
// preview chart (#/alerts/new, #/alerts/rule/<id>), channels
// (#/alerts/channels), history (#/alerts/history) and silences
// (#/alerts/silences). Everything goes through /api/v1/alerting/…; viewers
// (read role) get the same pages without edit controls.

import { api, qs } from './api.js';
import { drawChart } from './chart.js';
import { el, sortableTable, searchBox } from './table.js';
import { parseMatchers } from './matchers.js';

const BASE = '/api/v1/alerting';
const KINDS = [
  ['threshold', 'Threshold'],
  ['rate_of_change', 'Rate of change'],
  ['absence', 'Absence'],
  ['group_aggregate', 'Group aggregate'],
  ['baseline', 'Baseline (learned band)'],
  ['host_comparison', 'Host comparison'],
  ['promql', 'PromQL expression'],
];

const when = (v) => {
  if (v === null || v === undefined || v === '') return '—';
  const d = typeof v === 'number' ? new Date(v) : new Date(v);
  return Number.isNaN(d.getTime()) ? String(v) : d.toISOString().replace('T', ' ').slice(0, 19);
};
const labelText = (l) => Object.entries(l || {}).map(([k, v]) => `${k}="${v}"`).join(', ');
const isAdmin = (who) => who && who.role === 'admin';

function tabs(current) {
  const t = [['', 'Policies'], ['history', 'History'], ['silences', 'Silences'], ['channels', 'Channels']];
  return el('div', { class: 'tabs', id: 'alert-tabs' }, ...t.map(([k, name]) => el('a', {
    href: `#/alerts${k ? `/${k}` : ''}`, class: k === current ? 'active' : '',
  }, name)));
}

/** Replaces `main`'s content, skipping absent parts (a viewer's forms). */
function show(main, ...parts) {
  main.replaceChildren(...parts.filter((p) => p !== null && p !== undefined));
}

function errorBox(id) {
  return el('p', { class: 'error', id, hidden: 'hidden' });
}
function showError(box, e) {
  box.hidden = !e;
  box.textContent = e ? (e.message || String(e)) : '';
}

/** #/alerts/… */
export async function alertsPage(main, page, who, rest, params) {
  const [sub, id] = rest;
  switch (sub) {
    case undefined: return policiesPage(main, page, who, params);
    case 'new': return ruleForm(main, page, who, null);
    case 'rule': return ruleForm(main, page, who, id);
    case 'history': return historyPage(main, page, params);
    case 'silences': return silencesPage(main, page, who);
    case 'channels': return channelsPage(main, page, who);
    default: show(main, el('p', { class: 'error' }, `No alerting page ${sub}.`));
  }
  return undefined;
}

/** The newest delivery that names the rule's alertname in its group. */
function lastNotifications(history) {
  const out = [];
  for (const h of history) if (h.kind === 'notified') out.push(h);
  return (rule) => {
    const needle = `alertname=${JSON.stringify(rule.name)}`;
    const hit = out.find((h) => h.group_key.includes(needle));
    return hit ? hit.at_ms : null;
  };
}

async function policiesPage(main, page, who, params) {
  const [rules, hist] = await Promise.all([
    api(`${BASE}/rules`, { signal: page.signal }).then((b) => b.data),
    api(`${BASE}/history?limit=1000`, { signal: page.signal }).then((b) => b.data).catch(() => []),
  ]);
  const lastNote = lastNotifications(hist);
  const rows = rules.map((r) => ({
    key: r.id,
    name: r.name,
    kind: r.condition.kind,
    state: r.enabled === false ? 'disabled' : r.state,
    health: r.health,
    last_error: r.last_error,
    last_evaluation: r.last_evaluation ? Date.parse(r.last_evaluation) : null,
    last_notification: lastNote(r),
    firing: (r.alerts || []).filter((a) => a.state === 'firing').length,
    origin: r.origin,
  }));
  const box = el('div', { id: 'rules' });
  const filter = searchBox((v) => table.setFilter(v), 'Filter rules…');
  filter.id = 'rule-filter';
  if (params && params.get('q')) filter.value = params.get('q');
  show(main,
    tabs(''),
    el('div', { class: 'toolbar' }, el('h2', {}, 'Alert policies'), filter,
      isAdmin(who) ? el('a', { class: 'button', id: 'new-rule', href: '#/alerts/new' }, 'New rule') : null),
    box,
  );
  const table = sortableTable(box, [
    { key: 'name', title: 'Rule', render: (r) => el('a', { href: `#/alerts/rule/${encodeURIComponent(r.key)}` }, r.name) },
    { key: 'kind', title: 'Condition' },
    { key: 'state', title: 'State', render: (r) => el('span', { class: `state ${r.state}`, title: r.last_error || '' }, r.health === 'err' ? `${r.state} (error)` : r.state) },
    { key: 'last_evaluation', title: 'Last evaluation', num: true, render: (r) => when(r.last_evaluation) },
    { key: 'last_notification', title: 'Last notification', num: true, render: (r) => when(r.last_notification) },
    { key: 'firing', title: 'Firing', num: true },
  ], rows, { sort: 'name', desc: false, id: 'rules-table', search: filter.value });
  main.dataset.rules = String(rows.length);
}

// ---- the rule form -------------------------------------------------------

function field(label, input, help) {
  return el('label', { class: 'afield' }, el('span', {}, label), input, help ? el('small', { class: 'muted' }, help) : null);
}
function select(name, options, value) {
  const s = el('select', { name, id: `f-${name}` });
  for (const [v, t] of options) s.append(el('option', { value: v }, t));
  if (value !== undefined && value !== null) s.value = value;
  return s;
}
function input(name, value, attrs = {}) {
  const i = el('input', { name, id: `f-${name}`, ...attrs });
  if (value !== undefined && value !== null) i.value = String(value);
  return i;
}

const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);
const num = (name, v) => {
  const n = Number(v);
  if (v === '' || !Number.isFinite(n)) throw new Error(`${name}: a number is needed`);
  return n;
};

async function ruleForm(main, page, who, id) {
  const admin = isAdmin(who);
  const [channels, existing] = await Promise.all([
    api(`${BASE}/channels`, { signal: page.signal }).then((b) => b.data),
    id ? api(`${BASE}/rules/${encodeURIComponent(id)}`, { signal: page.signal }).then((b) => b.data) : null,
  ]);
  const rule = existing || { name: '', condition: { kind: 'threshold', op: 'above', threshold: 80, query: '' }, for: '5m', channels: [] };
  const c = rule.condition;
  const readOnly = !admin || (existing && existing.origin && existing.origin !== 'api');

  const f = {
    name: input('name', rule.name, { placeholder: 'HighCPU', required: 'required' }),
    description: input('description', rule.description || ''),
    scope: el('textarea', { name: 'scope', id: 'f-scope', rows: '2', placeholder: 'namespace="prod", container!=""' }),
    kind: select('kind', KINDS, c.kind),
    query: input('query', c.kind === 'promql' ? c.expr : c.query, { placeholder: 'rate(container_cpu_usage_seconds_total[1m])', class: 'wide' }),
    op: select('op', [['above', 'above'], ['below', 'below']], c.op || 'above'),
    threshold: input('threshold', c.threshold ?? '', { type: 'number', step: 'any' }),
    trigger: select('trigger', [['any', 'any member'], ['all', 'all members']], typeof c.trigger === 'string' ? c.trigger : 'any'),
    percent: input('percent', c.percent ?? 50, { type: 'number', step: 'any' }),
    window: input('window', c.window || '10m'),
    duration: input('duration', c.duration || '5m'),
    aggregation: select('aggregation', ['avg', 'sum', 'min', 'max', 'count'].map((a) => [a, a]), c.aggregation || 'avg'),
    by: input('by', (c.by || []).join(', '), { placeholder: 'node' }),
    group_by: input('group_by', (c.group_by || []).join(', '), { placeholder: 'cluster' }),
    season: select('season', [['daily', 'daily'], ['weekly', 'weekly'], ['auto', 'auto'], ['none', 'none']], (c.detector && c.detector.season) || 'daily'),
    sensitivity: input('sensitivity', (c.detector && c.detector.sensitivity) ?? '', { type: 'number', step: 'any', placeholder: 'default' }),
    for: input('for', rule.for || '0s', { placeholder: '5m' }),
    range: select('range', [['1h', 'last 1 h'], ['6h', 'last 6 h'], ['24h', 'last 24 h'], ['7d', 'last 7 days']], '6h'),
  };
  f.scope.value = (c.scope || []).join(',\n');
  const chanBox = el('div', { id: 'f-channels', class: 'checks' });
  for (const ch of channels) {
    const cb = el('input', { type: 'checkbox', value: ch.id, name: 'channel' });
    cb.checked = (rule.channels || []).includes(ch.id);
    chanBox.append(el('label', {}, cb, ` ${ch.name || ch.id} (${ch.type})`));
  }
  if (!channels.length) chanBox.append(el('span', { class: 'muted' }, 'No channels yet (see Channels).'));

  // Which inputs each kind shows after the metric.
  const byKind = {
    threshold: ['op', 'threshold', 'trigger'],
    rate_of_change: ['op', 'percent', 'window', 'trigger'],
    absence: ['duration'],
    group_aggregate: ['aggregation', 'by', 'op', 'threshold'],
    baseline: ['season', 'sensitivity'],
    host_comparison: ['group_by', 'sensitivity'],
    promql: [],
  };
  const labels = {
    op: 'Violates when the value is', threshold: 'Threshold', trigger: 'Fires when', percent: 'Change, %',
    window: 'Over', duration: 'No data for', aggregation: 'Aggregate', by: 'Grouped by (labels)',
    group_by: 'Peers grouped by (labels)', season: 'Season', sensitivity: 'Sensitivity (lower = more alerts)',
  };
  const condFields = Object.fromEntries(Object.keys(labels).map((k) => [k, field(labels[k], f[k])]));
  const condBox = el('div', { class: 'cond', id: 'cond-fields' });
  const queryField = field('Metric (PromQL)', f.query);
  function showKind() {
    condBox.replaceChildren(...byKind[f.kind.value].map((k) => condFields[k]));
    queryField.firstChild.textContent = f.kind.value === 'promql' ? 'Expression (every result series alerts)' : 'Metric (PromQL, one value per member)';
  }
  f.kind.onchange = showKind;
  showKind();

  function build() {
    const kind = f.kind.value;
    const q = f.query.value.trim();
    const scope = parseMatchers(f.scope.value);
    let cond;
    const prev = c.kind === kind ? { ...c } : {};
    switch (kind) {
      case 'threshold': cond = { ...prev, query: q, scope, op: f.op.value, threshold: num('threshold', f.threshold.value), trigger: f.trigger.value }; break;
      case 'rate_of_change': cond = { ...prev, query: q, scope, op: f.op.value, percent: num('percent', f.percent.value), window: f.window.value.trim(), trigger: f.trigger.value }; break;
      case 'absence': cond = { ...prev, query: q, scope, duration: f.duration.value.trim() }; break;
      case 'group_aggregate': cond = { ...prev, query: q, scope, aggregation: f.aggregation.value, by: list(f.by.value), op: f.op.value, threshold: num('threshold', f.threshold.value) }; break;
      case 'baseline': case 'host_comparison': {
        const detector = { ...(prev.detector || {}) };
        if (kind === 'baseline') detector.season = f.season.value;
        if (f.sensitivity.value !== '') detector.sensitivity = num('sensitivity', f.sensitivity.value);
        else delete detector.sensitivity;
        cond = { ...prev, query: q, scope, detector };
        if (kind === 'host_comparison') cond.group_by = list(f.group_by.value);
        break;
      }
      default: cond = { ...prev, expr: q };
    }
    cond.kind = kind;
    const out = {
      name: f.name.value.trim(),
      condition: cond,
      for: f.for.value.trim() || '0s',
      channels: [...chanBox.querySelectorAll('input:checked')].map((x) => x.value),
    };
    if (f.description.value.trim()) out.description = f.description.value.trim();
    if (existing) {
      for (const k of ['id', 'group', 'interval', 'keep_firing_for', 'labels', 'annotations', 'enabled']) {
        if (existing[k] !== undefined && existing[k] !== null) out[k] = existing[k];
      }
    }
    return out;
  }

  const err = errorBox('rule-error');
  const chartBox = el('div', { class: 'pbody chartbox', id: 'preview-chart' });
  const summary = el('p', { class: 'muted', id: 'preview-summary' }, admin ? 'Preview: press “Preview” to replay the rule over the last hours.' : 'The preview is for editors (admin role).');
  const preview = el('div', { class: 'panel', id: 'preview' }, el('div', { class: 'ptitle' }, 'Preview'), summary, chartBox);
  let chart = null;
  page.onDispose(() => { if (chart) chart.destroy(); });

  async function runPreview() {
    showError(err, null);
    let body;
    try { body = build(); } catch (e) { showError(err, e); return; }
    if (!body.name) body.name = 'preview';
    preview.dataset.state = 'loading';
    const width = Math.max(200, chartBox.clientWidth - 80);
    try {
      const r = await api(`${BASE}/rules/preview`, {
        method: 'POST', body: JSON.stringify({ ...body, range: f.range.value, width }), signal: page.signal,
      });
      drawPreview(r.data);
    } catch (e) {
      if (e.name === 'AbortError') return;
      preview.dataset.state = 'error';
      showError(err, e);
    }
  }

  function drawPreview(d) {
    const sim = d.simulation;
    const firing = sim.intervals.filter((i) => i.state === 'firing');
    const pending = sim.intervals.filter((i) => i.state === 'pending');
    const regions = [
      ...pending.map((i) => ({ from: i.start_ms, to: i.end_ms, color: 'rgba(255,152,48,0.18)' })),
      ...firing.map((i) => ({ from: i.start_ms, to: i.end_ms, color: 'rgba(224,47,68,0.25)' })),
    ];
    if (chart) chart.destroy();
    chart = drawChart(chartBox, [d.chart], {
      start: d.start, end: d.end, legend: 'list',
      thresholds: sim.threshold !== null ? [{ value: sim.threshold, color: 'red' }] : [],
      regions,
      bands: sim.bands,
    });
    preview.dataset.firing = String(firing.length);
    preview.dataset.pending = String(pending.length);
    preview.dataset.threshold = sim.threshold === null ? '' : String(sim.threshold);
    preview.dataset.bands = String(sim.bands.length);
    preview.dataset.intervals = JSON.stringify(firing.map((i) => [i.start_ms, i.end_ms]));
    preview.dataset.state = 'ready';
    const total = firing.reduce((a, i) => a + (i.end_ms - i.start_ms), 0);
    summary.replaceChildren(
      `${sim.evaluations} evaluations every ${Math.round(sim.step_ms / 1000)} s: `,
      el('b', {}, `would have fired ${firing.length} time${firing.length === 1 ? '' : 's'}`),
      firing.length ? ` (${Math.round(total / 60000)} min in all)` : '',
      pending.length ? `, pending ${pending.length} time${pending.length === 1 ? '' : 's'}` : '',
      sim.failed_evaluations ? el('span', { class: 'error' }, ` — ${sim.failed_evaluations} evaluations failed: ${sim.first_error}`) : '',
    );
    const list2 = el('ul', { class: 'intervals', id: 'preview-intervals' });
    for (const i of firing.slice(0, 20)) {
      list2.append(el('li', {}, `${when(i.start_ms)} → ${i.open ? 'still firing' : when(i.end_ms)}  ${labelText(i.labels)}`));
    }
    summary.append(list2);
  }

  const save = el('button', { id: 'save-rule', type: 'button', class: 'primary' }, existing ? 'Save' : 'Create');
  save.onclick = async () => {
    showError(err, null);
    let body;
    try { body = build(); } catch (e) { showError(err, e); return; }
    try {
      if (existing) await api(`${BASE}/rules/${encodeURIComponent(existing.id)}`, { method: 'PUT', body: JSON.stringify(body) });
      else await api(`${BASE}/rules`, { method: 'POST', body: JSON.stringify(body) });
      location.hash = '#/alerts';
    } catch (e) { showError(err, e); }
  };
  const del = existing ? el('button', { id: 'delete-rule', type: 'button', class: 'danger' }, 'Delete') : null;
  if (del) {
    del.onclick = async () => {
      if (!window.confirm(`Delete rule ${existing.name}?`)) return;
      try {
        await api(`${BASE}/rules/${encodeURIComponent(existing.id)}`, { method: 'DELETE' });
        location.hash = '#/alerts';
      } catch (e) { showError(err, e); }
    };
  }
  const previewBtn = el('button', { id: 'preview-rule', type: 'button' }, 'Preview');
  previewBtn.onclick = runPreview;

  const form = el('form', { id: 'rule-form', class: 'ruleform', onsubmit: (e) => { e.preventDefault(); } },
    field('Name', f.name),
    field('Description', f.description),
    el('h3', {}, '1. Scope'),
    field('Label matchers (members the rule watches; empty: all)', f.scope),
    el('h3', {}, '2. Condition'),
    field('Type', f.kind),
    el('h3', {}, '3. Metric'),
    queryField,
    el('h3', {}, '4. Threshold / sensitivity'),
    condBox,
    el('h3', {}, '5. Duration'),
    field('For (must hold this long before firing)', f.for),
    el('h3', {}, '6. Channels'),
    chanBox,
    err,
    el('div', { class: 'toolbar' }, admin ? field('Preview range', f.range) : null, admin ? previewBtn : null, readOnly ? null : save, readOnly ? null : del),
  );
  if (readOnly) {
    for (const x of form.querySelectorAll('input, select, textarea')) if (x.name !== 'range') x.disabled = true;
  }
  show(main,
    tabs(''),
    el('h2', {}, existing ? `Rule ${existing.name}` : 'New rule'),
    existing && existing.origin !== 'api' ? el('p', { class: 'muted' }, `From ${existing.origin} (read-only here).`) : null,
    el('div', { class: 'rulecols' }, form, preview),
  );
  // The preview needs the admin role (it accompanies editing).
  if (existing && admin) await runPreview();
}

// ---- history -------------------------------------------------------------

async function historyPage(main, page, params) {
  const rule = params.get('rule') || '';
  const entries = await api(`${BASE}/history?${qs({ rule, limit: 500 })}`, { signal: page.signal }).then((b) => b.data);
  const rows = entries.map((h, i) => ({
    key: String(i),
    at: h.at_ms,
    kind: h.kind,
    what: h.kind === 'transition'
      ? `${h.rule_id}: ${h.from || 'new'} → ${h.to || 'forgotten'} (value ${h.value})`
      : h.kind === 'notified'
        ? `${h.status} notice to ${h.receiver} (${h.reason}, ${h.alerts.length} alert${h.alerts.length === 1 ? '' : 's'}, ${h.attempts} attempt${h.attempts === 1 ? '' : 's'})`
        : `delivery to ${h.receiver} failed after ${h.attempts} attempts: ${h.error}`,
    labels: h.labels ? labelText(h.labels) : h.group_key,
  }));
  const box = el('div', { id: 'history' });
  show(main, tabs('history'),
    el('div', { class: 'toolbar' }, el('h2', {}, rule ? `History of ${rule}` : 'Alert history'),
      searchBox((v) => t.setFilter(v), 'Filter…')),
    box);
  const t = sortableTable(box, [
    { key: 'at', title: 'When', num: true, render: (r) => when(r.at) },
    { key: 'kind', title: 'Event', render: (r) => el('span', { class: `state ${r.kind}` }, r.kind) },
    { key: 'what', title: 'What' },
    { key: 'labels', title: 'Alert / group' },
  ], rows, { sort: 'at', desc: true, id: 'history-table' });
  main.dataset.entries = String(rows.length);
}

// ---- silences -------------------------------------------------------------

async function silencesPage(main, page, who) {
  const admin = isAdmin(who);
  const box = el('div', { id: 'silences' });
  const err = errorBox('silence-error');
  const matchers = el('textarea', { id: 's-matchers', rows: '2', placeholder: 'alertname="HighCPU", namespace="prod"' });
  const hours = input('s-hours', '2', { type: 'number', min: '0.1', step: 'any' });
  const comment = input('s-comment', '', { placeholder: 'why' });
  const create = el('button', { id: 'create-silence', type: 'button', class: 'primary' }, 'Silence');
  const form = admin ? el('form', { class: 'inline', id: 'silence-form', onsubmit: (e) => e.preventDefault() },
    field('Matchers', matchers), field('For (hours)', hours), field('Comment', comment), create, err) : null;
  show(main, tabs('silences'), el('h2', {}, 'Silences'), form, box);
  let table = null;
  async function load() {
    const rows = (await api(`${BASE}/silences`, { signal: page.signal })).data.map((s) => ({ ...s, key: s.id }));
    const cols = [
      { key: 'matchers', title: 'Matchers', value: (r) => r.matchers.join(', ') },
      { key: 'state', title: 'State', render: (r) => el('span', { class: `state ${r.state}` }, r.state) },
      { key: 'starts_at', title: 'Starts', render: (r) => when(r.starts_at) },
      { key: 'ends_at', title: 'Ends', render: (r) => when(r.ends_at) },
      { key: 'created_by', title: 'By' },
      { key: 'comment', title: 'Comment' },
    ];
    if (admin) {
      cols.push({ key: 'actions', title: '', render: (r) => (r.state === 'expired' ? null : el('button', {
        class: 'expire', type: 'button', onclick: async () => {
          try { await api(`${BASE}/silences/${encodeURIComponent(r.id)}`, { method: 'DELETE' }); await load(); } catch (e) { showError(err, e); }
        },
      }, 'Expire')) });
    }
    box.replaceChildren();
    table = sortableTable(box, cols, rows, { sort: 'ends_at', desc: true, id: 'silences-table' });
    main.dataset.silences = String(rows.length);
  }
  create.onclick = async () => {
    showError(err, null);
    try {
      const m = parseMatchers(matchers.value, 'matchers');
      const h = num('hours', hours.value);
      const body = {
        matchers: m,
        ends_at: new Date(Date.now() + h * 3600e3).toISOString(),
        created_by: who.user || '',
        comment: comment.value,
      };
      await api(`${BASE}/silences`, { method: 'POST', body: JSON.stringify(body) });
      matchers.value = '';
      await load();
    } catch (e) { showError(err, e); }
  };
  await load();
  return table;
}

// ---- channels -------------------------------------------------------------

const CHANNEL_TEMPLATES = {
  webhook: { url: 'http://alert-receiver.example:9000/hook' },
  email: { to: ['ops@example.com'], from: 'osprey@example.com', smarthost: 'smtp.example.com:587' },
};

async function channelsPage(main, page, who) {
  const admin = isAdmin(who);
  const box = el('div', { id: 'channels' });
  const err = errorBox('channel-error');
  const result = el('p', { id: 'test-result', class: 'muted' });
  const name = input('c-name', '', { placeholder: 'ops-mail' });
  const type = select('c-type', [['webhook', 'webhook'], ['email', 'e-mail']], 'webhook');
  const settings = el('textarea', { id: 'c-settings', rows: '5', class: 'mono' });
  settings.value = JSON.stringify(CHANNEL_TEMPLATES.webhook, null, 2);
  type.onchange = () => { settings.value = JSON.stringify(CHANNEL_TEMPLATES[type.value], null, 2); };
  const create = el('button', { id: 'create-channel', type: 'button', class: 'primary' }, 'Create channel');
  create.onclick = async () => {
    showError(err, null);
    try {
      let s;
      try { s = JSON.parse(settings.value); } catch (e) { throw new Error(`settings: not JSON (${e.message})`); }
      await api(`${BASE}/channels`, { method: 'POST', body: JSON.stringify({ ...s, name: name.value.trim(), id: name.value.trim(), type: type.value }) });
      await load();
    } catch (e) { showError(err, e); }
  };
  show(main, tabs('channels'), el('h2', {}, 'Notification channels'),
    admin ? el('form', { class: 'inline', id: 'channel-form', onsubmit: (e) => e.preventDefault() },
      field('Name', name), field('Type', type), field('Settings (JSON)', settings), create, err) : null,
    result, box);
  async function load() {
    const rows = (await api(`${BASE}/channels`, { signal: page.signal })).data.map((c) => ({ ...c, key: c.id }));
    const cols = [
      { key: 'id', title: 'Channel', render: (r) => r.name && r.name !== r.id ? `${r.name} (${r.id})` : r.id },
      { key: 'type', title: 'Type' },
      { key: 'target', title: 'Target', value: (r) => r.url || (r.to || []).join(', ') },
      { key: 'origin', title: 'From' },
    ];
    if (admin) {
      cols.push({ key: 'actions', title: '', render: (r) => el('span', {},
        el('button', { type: 'button', class: 'test', onclick: async () => {
          result.textContent = `Sending a test to ${r.id}…`;
          try {
            const d = (await api(`${BASE}/channels/${encodeURIComponent(r.id)}/test`, { method: 'POST' })).data;
            result.textContent = d.delivered ? `Test to ${r.id} delivered (${d.attempts} attempt${d.attempts === 1 ? '' : 's'}).` : `Test to ${r.id} failed: ${d.error}`;
            result.className = d.delivered ? 'ok' : 'error';
          } catch (e) { result.textContent = e.message; result.className = 'error'; }
        } }, 'Test'),
        r.origin === 'config' ? null : el('button', { type: 'button', class: 'danger', onclick: async () => {
          if (!window.confirm(`Delete channel ${r.id}?`)) return;
          try { await api(`${BASE}/channels/${encodeURIComponent(r.id)}`, { method: 'DELETE' }); await load(); } catch (e) { showError(err, e); }
        } }, 'Delete')) });
    }
    box.replaceChildren();
    sortableTable(box, cols, rows, { sort: 'id', desc: false, id: 'channels-table' });
  }
  await load();
}
