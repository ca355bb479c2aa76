// The panel editor: title, type, PromQL queries with metric and label
// completion (from /api/v1/label/__name__/values and /api/v1/labels), a
// simple builder that writes the PromQL, units, thresholds, stat options,
// text content, logs query and the panel's place on the grid.

import { api } from './api.js';
import { UNITS } from './units.js';
import { el } from './table.js';

const enc = encodeURIComponent;
const FUNCTIONS = ['rate', 'irate', 'increase', 'sum', 'avg', 'max', 'min', 'count', 'topk', 'bottomk', 'histogram_quantile', 'avg_over_time', 'max_over_time', 'min_over_time', 'abs', 'clamp_min', 'clamp_max', 'label_replace', 'by', 'without'];

let metricNames = null; let labelNames = null;
const labelValues = new Map();
const metrics = () => (metricNames ||= api('/api/v1/label/__name__/values').then((b) => b.data).catch(() => []));
const labels = () => (labelNames ||= api('/api/v1/labels').then((b) => b.data).catch(() => []));
function values(name) {
  if (!labelValues.has(name)) labelValues.set(name, api(`/api/v1/label/${enc(name)}/values`).then((b) => b.data).catch(() => []));
  return labelValues.get(name);
}

/** What to complete at the cursor: {kind: metric|label|value, word, label}. */
export function completionContext(text, pos) {
  const before = text.slice(0, pos);
  const open = before.lastIndexOf('{'); const close = before.lastIndexOf('}');
  const inBraces = open > close;
  const val = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)$/.exec(before);
  if (inBraces && val) return { kind: 'value', label: val[1], word: val[3] };
  const w = /[a-zA-Z_:][a-zA-Z0-9_:]*$/.exec(before);
  const word = w ? w[0] : '';
  const by = /\b(by|without)\s*\(\s*([a-zA-Z0-9_,\s]*)$/.exec(before);
  if (inBraces || by) return { kind: 'label', word };
  return { kind: 'metric', word };
}

/** A PromQL textarea with a completion list. */
export function promqlInput(value, onChange) {
  const ta = el('textarea', { rows: 2, class: 'promql', spellcheck: 'false', placeholder: 'PromQL, e.g. rate(container_cpu_usage_seconds_total[1m])' });
  ta.value = value || '';
  const ul = el('ul', { hidden: 'hidden', class: 'suggestions' });
  const wrap = el('div', { class: 'completion' }, ta, ul);
  let items = []; let sel = 0; let ctx = null;
  function close() { ul.hidden = true; items = []; }
  function accept(i) {
    const item = items[i];
    if (!item || !ctx) return;
    const pos = ta.selectionStart;
    const start = pos - ctx.word.length;
    ta.value = ta.value.slice(0, start) + item + ta.value.slice(pos);
    const np = start + item.length;
    ta.setSelectionRange(np, np);
    close();
    onChange(ta.value);
    ta.focus();
  }
  async function suggest() {
    ctx = completionContext(ta.value, ta.selectionStart);
    let pool;
    if (ctx.kind === 'metric') pool = [...(await metrics()), ...FUNCTIONS];
    else if (ctx.kind === 'label') pool = await labels();
    else pool = await values(ctx.label);
    const w = ctx.word.toLowerCase();
    items = pool.filter((x) => x.toLowerCase().includes(w) && x !== ctx.word).slice(0, 30);
    if ((ctx.kind === 'metric' && !w) || !items.length) { close(); return; }
    sel = 0;
    ul.replaceChildren(...items.map((x, i) => el('li', { class: i === sel ? 'sel' : '', onmousedown: (e) => { e.preventDefault(); accept(i); } }, x)));
    ul.hidden = false;
  }
  ta.addEventListener('input', () => { onChange(ta.value); suggest(); });
  ta.addEventListener('keydown', (e) => {
    if (ul.hidden) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      sel = (sel + (e.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length;
      [...ul.children].forEach((li, i) => li.classList.toggle('sel', i === sel));
    } else if (e.key === 'Enter' || e.key === 'Tab') { e.preventDefault(); accept(sel); }
    else if (e.key === 'Escape') close();
  });
  ta.addEventListener('blur', () => setTimeout(close, 150));
  return { elem: wrap, textarea: ta, set(v) { ta.value = v; onChange(v); } };
}

/** The builder: metric, function over a time window, aggregation, group by, where. */
export function buildPromQL({ metric, fn, window, agg, by, where }) {
  if (!metric) return '';
  const matchers = (where || []).filter((w) => w.label && w.value !== undefined && w.value !== '')
    .map((w) => `${w.label}${w.op || '='}"${String(w.value).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`);
  let e = `${metric}${matchers.length ? `{${matchers.join(',')}}` : ''}`;
  if (fn && fn !== 'none') e = `${fn}(${e}[${window || '1m'}])`;
  if (agg && agg !== 'none') {
    const g = (by || '').split(',').map((s) => s.trim()).filter(Boolean);
    e = `${agg}${g.length ? ` by (${g.join(', ')})` : ''} (${e})`;
  }
  return e;
}

function builder(onWrite) {
  const metric = el('input', { list: 'metric-names', placeholder: 'metric', class: 'b-metric', size: 36 });
  const dl = el('datalist', { id: 'metric-names' });
  metrics().then((ms) => dl.replaceChildren(...ms.map((m) => el('option', { value: m }))));
  const fn = el('select', { class: 'b-fn' }, ['none', 'rate', 'irate', 'increase', 'avg_over_time', 'max_over_time'].map((f) => el('option', { value: f }, f === 'none' ? 'value as is' : f)));
  const win = el('input', { value: '1m', size: 4, class: 'b-window', title: 'group by time interval' });
  const agg = el('select', { class: 'b-agg' }, ['none', 'sum', 'avg', 'max', 'min', 'count'].map((f) => el('option', { value: f }, f === 'none' ? 'no aggregation' : f)));
  const by = el('input', { placeholder: 'group by labels, e.g. pod', size: 20, class: 'b-by' });
  const wl = el('input', { placeholder: 'label', size: 10, class: 'b-wl', list: 'label-names' });
  const ldl = el('datalist', { id: 'label-names' });
  labels().then((ls) => ldl.replaceChildren(...ls.map((m) => el('option', { value: m }))));
  const wop = el('select', { class: 'b-wop' }, ['=', '!=', '=~', '!~'].map((o) => el('option', { value: o }, o)));
  const wv = el('input', { placeholder: 'value', size: 14, class: 'b-wv' });
  const write = el('button', { type: 'button', class: 'b-write', onclick: () => onWrite(buildPromQL({ metric: metric.value.trim(), fn: fn.value, window: win.value.trim(), agg: agg.value, by: by.value, where: [{ label: wl.value.trim(), op: wop.value, value: wv.value }] })) }, 'Write PromQL');
  return el('details', { class: 'builder' }, el('summary', {}, 'Builder'),
    el('div', { class: 'row' }, metric, dl, fn, 'over', win),
    el('div', { class: 'row' }, agg, 'by', by, 'where', wl, ldl, wop, wv, write));
}

function thresholdsText(steps) {
  return (steps || []).map((s) => (s.value === null || s.value === undefined ? s.color : `${s.value}:${s.color}`)).join(', ');
}
export function parseThresholds(text) {
  const steps = [];
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const i = part.lastIndexOf(':');
    if (i < 0) steps.push({ value: null, color: part });
    else {
      const v = Number(part.slice(0, i));
      if (!Number.isFinite(v)) throw new Error(`threshold “${part}”: ${part.slice(0, i)} is not a number`);
      steps.push({ value: v, color: part.slice(i + 1).trim() });
    }
  }
  if (steps.length && steps[0].value !== null) steps.unshift({ value: null, color: 'green' });
  return steps;
}

/** Opens the editor for `panel` (a copy); `onSave(panel)` when applied. */
export function editPanel(panel, onSave) {
  panel.targets ||= [];
  panel.options ||= {};
  panel.fieldConfig ||= { defaults: {} };
  panel.fieldConfig.defaults ||= {};
  const d = panel.fieldConfig.defaults;
  const title = el('input', { value: panel.title || '', size: 40, id: 'panel-title' });
  const type = el('select', { id: 'panel-type' }, [['timeseries', 'Graph'], ['stat', 'Singlestat'], ['text', 'Text'], ['table', 'Table'], ['logs', 'Logs'], ['row', 'Row header']]
    .map(([v, l]) => el('option', { value: v }, l)));
  type.value = { graph: 'timeseries', singlestat: 'stat' }[panel.type] || panel.type;
  const targetsBox = el('div', { id: 'panel-targets' });
  function drawTargets() {
    if (!panel.targets.length) panel.targets.push({ refId: 'A', expr: '' });
    targetsBox.replaceChildren(...panel.targets.map((t, i) => {
      const input = promqlInput(t.expr, (v) => { t.expr = v; });
      const legend = el('input', { value: t.legendFormat || '', placeholder: 'legend, e.g. {{pod}}', size: 24, class: 'legend-format', oninput: (e) => { t.legendFormat = e.target.value; } });
      return el('div', { class: 'target' }, el('div', { class: 'row' }, el('b', {}, t.refId || String.fromCharCode(65 + i)), legend,
        el('button', { type: 'button', onclick: () => { panel.targets.splice(i, 1); drawTargets(); } }, 'Remove query')),
      input.elem, builder((q) => input.set(q)));
    }), el('button', { type: 'button', id: 'add-query', onclick: () => { panel.targets.push({ refId: String.fromCharCode(65 + panel.targets.length), expr: '' }); drawTargets(); } }, 'Add query'));
  }
  drawTargets();
  const unit = el('select', { id: 'panel-unit' }, UNITS.map(([v, l]) => el('option', { value: v }, l)));
  unit.value = d.unit || 'short';
  const min = el('input', { type: 'number', step: 'any', value: d.min ?? '', size: 6, id: 'panel-min' });
  const max = el('input', { type: 'number', step: 'any', value: d.max ?? '', size: 6, id: 'panel-max' });
  const thresholds = el('input', { value: thresholdsText(d.thresholds?.steps), size: 30, id: 'panel-thresholds', placeholder: 'green, 80:orange, 90:red' });
  const showThr = el('input', { type: 'checkbox', id: 'panel-threshold-lines' });
  showThr.checked = Boolean(d.custom?.thresholdsStyle?.mode && d.custom.thresholdsStyle.mode !== 'off');
  const legendMode = el('select', { id: 'panel-legend' }, ['table', 'list', 'hidden'].map((m) => el('option', { value: m }, m)));
  legendMode.value = panel.options.legend?.displayMode || 'table';
  const spark = el('input', { type: 'checkbox', id: 'panel-sparkline' });
  spark.checked = panel.options.graphMode === 'area';
  const colorMode = el('select', { id: 'panel-color-mode' }, [['value', 'Colour the value'], ['background', 'Colour the background'], ['none', 'No colour']].map(([v, l]) => el('option', { value: v }, l)));
  colorMode.value = panel.options.colorMode || 'value';
  const calc = el('select', { id: 'panel-calc' }, [['lastNotNull', 'Last'], ['mean', 'Mean'], ['max', 'Max'], ['min', 'Min']].map(([v, l]) => el('option', { value: v }, l)));
  calc.value = panel.options.reduceOptions?.calcs?.[0] || 'lastNotNull';
  const content = el('textarea', { rows: 8, id: 'panel-content', placeholder: 'Markdown' });
  content.value = panel.options.content ?? panel.content ?? '';
  const logsQuery = el('input', { value: panel.options.query || '', size: 50, id: 'panel-logs-query', placeholder: 'namespace:prod AND level:error' });
  const g = panel.gridPos;
  const pos = Object.fromEntries(['x', 'y', 'w', 'h'].map((k) => [k, el('input', { type: 'number', value: g[k], size: 3, id: `panel-${k}`, min: k === 'w' || k === 'h' ? 1 : 0 })]));
  const error = el('p', { class: 'error', id: 'panel-error' });
  const sections = {
    queries: el('div', {}, el('h3', {}, 'Queries'), targetsBox),
    axes: el('div', {}, el('div', { class: 'row' }, el('label', {}, 'Unit'), unit, el('label', {}, 'Min'), min, el('label', {}, 'Max'), max),
      el('div', { class: 'row' }, el('label', {}, 'Thresholds'), thresholds)),
    graph: el('div', { class: 'row' }, el('label', {}, 'Legend'), legendMode, el('label', {}, showThr, ' draw thresholds')),
    stat: el('div', { class: 'row' }, el('label', {}, 'Value'), calc, el('label', {}, spark, ' sparkline'), colorMode),
    text: el('div', { class: 'row' }, content),
    logs: el('div', { class: 'row' }, el('label', {}, 'Log query'), logsQuery),
  };
  function showSections() {
    const t = type.value;
    sections.queries.hidden = !['timeseries', 'stat', 'table'].includes(t);
    sections.axes.hidden = !['timeseries', 'stat', 'table'].includes(t);
    sections.graph.hidden = t !== 'timeseries';
    sections.stat.hidden = t !== 'stat';
    sections.text.hidden = t !== 'text';
    sections.logs.hidden = t !== 'logs';
  }
  type.onchange = showSections;
  showSections();
  const dlg = el('dialog', { id: 'panel-editor' },
    el('h2', {}, 'Panel'),
    el('div', { class: 'row' }, el('label', {}, 'Title'), title, el('label', {}, 'Type'), type),
    ...Object.values(sections),
    el('div', { class: 'row' }, el('label', {}, 'Grid'), 'x', pos.x, 'y', pos.y, 'width (of 24)', pos.w, 'height', pos.h),
    error,
    el('div', { class: 'toolbar' },
      el('button', { class: 'primary', id: 'panel-apply', onclick: () => {
        try {
          const out = structuredClone(panel);
          out.title = title.value;
          out.type = type.value;
          const dd = out.fieldConfig.defaults;
          dd.unit = unit.value;
          dd.min = min.value === '' ? undefined : Number(min.value);
          dd.max = max.value === '' ? undefined : Number(max.value);
          const steps = parseThresholds(thresholds.value);
          if (steps.length) dd.thresholds = { mode: 'absolute', steps }; else delete dd.thresholds;
          dd.custom = { ...(dd.custom || {}), thresholdsStyle: { mode: showThr.checked ? 'dashed' : 'off' } };
          out.options = { ...out.options };
          if (out.type === 'timeseries') out.options.legend = { ...(out.options.legend || {}), displayMode: legendMode.value, calcs: out.options.legend?.calcs || ['min', 'max', 'mean', 'lastNotNull'] };
          if (out.type === 'stat') Object.assign(out.options, { graphMode: spark.checked ? 'area' : 'none', colorMode: colorMode.value, reduceOptions: { calcs: [calc.value] } });
          if (out.type === 'text') Object.assign(out.options, { mode: 'markdown', content: content.value });
          if (out.type === 'logs') out.options.query = logsQuery.value;
          const gp = Object.fromEntries(Object.entries(pos).map(([k, i]) => [k, Math.round(Number(i.value))]));
          if (!(gp.w >= 1 && gp.w <= 24 && gp.x >= 0 && gp.x + gp.w <= 24 && gp.h >= 1 && gp.y >= 0)) throw new Error('the panel must fit the 24 columns (x + width ≤ 24)');
          out.gridPos = gp;
          out.targets = (out.targets || []).filter((t) => t.expr && t.expr.trim());
          dlg.close(); dlg.remove();
          onSave(out);
        } catch (e) { error.textContent = e.message; }
      } }, 'Apply'),
      el('button', { onclick: () => { dlg.close(); dlg.remove(); } }, 'Cancel')));
  document.body.append(dlg);
  dlg.showModal();
}

