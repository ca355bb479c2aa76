// Dashboards: the list (create, import, delete), and one dashboard on its
// 24-column grid with variables, the shared time range and auto-refresh;
// panels graph/timeseries, singlestat/stat, text, table and logs; edit mode
// with the panel editor (editor.js), panels moved and resized by dragging,
// save, export.

import { api, chartQuery, instant, qs, serves } from './api.js';
import { drawChart, sparkline, thresholdColor } from './chart.js';
import { fmt } from './units.js';
import { markdown } from './markdown.js';
import { el } from './table.js';
import { timeState, readUrl } from './time.js';
import { editPanel } from './editor.js';
import { logLinesTable } from './logs.js';
import { dropPosition, place, resizeTo } from './layout.js';

const enc = encodeURIComponent;

// ---------------------------------------------------------------- list

export async function dashboardsPage(main, page, who) {
  const b = await api('/api/v1/dashboards', { signal: page.signal });
  const admin = who.role === 'admin';
  const list = el('table', { class: 'data', id: 'dashboards-table' },
    el('tr', {}, el('th', {}, 'Title'), el('th', {}, 'Tags'), el('th', {}, '')),
    b.data.map((d) => el('tr', { dataset: { uid: d.uid } },
      el('td', {}, el('a', { href: `#/d/${enc(d.uid)}` }, d.title)),
      el('td', {}, (d.tags || []).join(', '), d.provisioned ? el('span', { class: 'muted' }, ' (provisioned)') : ''),
      el('td', {}, admin && !d.provisioned ? el('button', { class: 'danger', onclick: async () => {
        if (!confirm(`Delete the dashboard “${d.title}”?`)) return;
        await api(`/api/v1/dashboards/${enc(d.uid)}`, { method: 'DELETE' });
        location.reload();
      } }, 'Delete') : ''))));
  const importBox = el('details', { id: 'import' }, el('summary', {}, 'Import JSON'),
    el('p', { class: 'muted' }, 'Paste a dashboard exported from Osprey or Grafana (a documented subset of the model is used; other fields are kept).'),
    el('textarea', { id: 'import-json', rows: 10 }),
    el('div', { class: 'toolbar' },
      el('label', {}, el('input', { type: 'checkbox', id: 'import-overwrite' }), ' Replace a dashboard with the same uid'),
      el('button', { class: 'primary', id: 'import-button', onclick: async () => {
        const msg = document.getElementById('import-msg');
        let body;
        try { body = JSON.parse(document.getElementById('import-json').value); } catch (e) { msg.textContent = `Not JSON: ${e.message}`; return; }
        if (document.getElementById('import-overwrite').checked) body = { dashboard: body.dashboard || body, overwrite: true };
        try {
          const r = await api('/api/v1/dashboards', { method: 'POST', body: JSON.stringify(body) });
          location.hash = `#/d/${enc(r.data.uid)}`;
        } catch (e) { msg.textContent = e.message; }
      } }, 'Import')),
    el('p', { class: 'error', id: 'import-msg' }));
  main.replaceChildren(
    el('h1', {}, 'Dashboards'),
    el('div', { class: 'toolbar' }, admin ? el('a', { href: '#/new', id: 'new-dashboard' }, el('button', { class: 'primary' }, 'New dashboard')) : el('span', { class: 'muted' }, 'Viewers cannot create dashboards.')),
    list, admin ? importBox : '');
}

// ---------------------------------------------------------- variables

const ALL = '$__all';

/** Replaces $var, ${var} and [[var]] (longest names first). */
export function substitute(text, vars) {
  if (!text) return text;
  const names = Object.keys(vars).sort((a, b) => b.length - a.length);
  let out = String(text);
  for (const n of names) {
    const v = vars[n];
    out = out.split(`\${${n}}`).join(v).split(`[[${n}]]`).join(v).split(`$${n}`).join(v);
  }
  return out;
}

function varValue(v) {
  const val = v.current;
  if (val === ALL || val === undefined || val === null || val === '' || (Array.isArray(val) && val.includes(ALL))) return '.*';
  return Array.isArray(val) ? val.join('|') : String(val);
}

async function variableOptions(v, vars, [start, end], signal) {
  const raw = typeof v.query === 'object' && v.query ? v.query.query : v.query;
  const q = substitute(raw || '', vars);
  if (v.type === 'custom') return q.split(',').map((s) => s.trim()).filter(Boolean);
  if (v.type === 'interval') return (q || '1m,5m,10m,30m,1h').split(',').map((s) => s.trim()).filter(Boolean);
  if (v.type === 'constant' || v.type === 'textbox') return [q];
  let m = /^\s*label_values\(\s*(.+?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/.exec(q);
  if (m) {
    const b = await api(`/api/v1/series?${qs({ 'match[]': m[1], start: start / 1000, end: end / 1000 })}`, { signal });
    return [...new Set(b.data.map((s) => s[m[2]]).filter((x) => x !== undefined && x !== ''))].sort();
  }
  m = /^\s*label_values\(\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/.exec(q);
  if (m) {
    const b = await api(`/api/v1/label/${enc(m[1])}/values`, { signal });
    return b.data;
  }
  if (q.trim()) { // any PromQL: the values of the result's first label
    const r = await instant(q, signal);
    return [...new Set(r.map((s) => Object.entries(s.metric).find(([k]) => k !== '__name__')?.[1]).filter(Boolean))].sort();
  }
  return [];
}

// ---------------------------------------------------------- dashboard

function blankDashboard() {
  return { title: 'New dashboard', tags: [], time: { from: 'now-1h', to: 'now' }, refresh: '', templating: { list: [] }, panels: [] };
}

export async function dashboardPage(main, page, who, uid, params) {
  const admin = who.role === 'admin';
  let dash; let meta = { provisioned: false };
  if (uid) {
    const b = await api(`/api/v1/dashboards/${enc(uid)}`, { signal: page.signal });
    dash = b.data.dashboard; meta = b.data.meta;
  } else dash = blankDashboard();
  readUrl({ from: dash.time?.from, to: dash.time?.to, refresh: dash.refresh || 'off' });
  const state = { dash, editing: !uid, dirty: false, vars: {}, variables: [] };
  const header = el('div', { class: 'toolbar' });
  const varsBox = el('div', { class: 'dash-vars', id: 'variables' });
  const grid = el('div', { class: 'grid', id: 'grid' });
  const status = el('span', { class: 'muted', id: 'save-status' });
  main.replaceChildren(header, varsBox, grid);

  async function loadVariables() {
    const list = state.dash.templating?.list || [];
    const range = timeState.range();
    const vars = {};
    const text = {};
    const out = [];
    const urlParams = new URLSearchParams(location.hash.split('?')[1] || '');
    for (const v of list) {
      let options = [];
      try { options = await variableOptions(v, vars, range, page.signal); } catch (e) { if (e.name === 'AbortError') throw e; }
      let current = urlParams.getAll(`var-${v.name}`);
      if (!current.length) current = v.current?.value ?? (v.includeAll ? ALL : options[0]);
      else if (current.length === 1) current = current[0];
      if (!v.includeAll && !Array.isArray(current) && current !== undefined && options.length && !options.includes(current) && current !== ALL) current = options[0];
      const item = { ...v, options, current };
      vars[v.name] = varValue(item);
      text[v.name] = vars[v.name] === '.*' ? 'All' : vars[v.name].split('|').join(', ');
      out.push(item);
    }
    const [s, e] = range;
    const rangeS = Math.max(1, Math.round((e - s) / 1000));
    vars.__range = `${rangeS}s`;
    vars.__interval = `${Math.max(10, Math.round(rangeS / 1000))}s`;
    vars.__rate_interval = `${Math.max(60, Math.round(rangeS / 1000) * 4)}s`;
    state.vars = vars; state.varsText = text; state.variables = out;
    drawVariables();
  }

  function drawVariables() {
    varsBox.replaceChildren(...state.variables.filter((v) => v.type !== 'constant').map((v) => {
      const sel = el('select', { id: `var-${v.name}`, 'data-var': v.name });
      if (v.includeAll) sel.add(new Option('All', ALL));
      for (const o of v.options) sel.add(new Option(o, o));
      sel.value = Array.isArray(v.current) ? v.current[0] : v.current;
      sel.onchange = () => {
        const [path, q] = location.hash.split('?');
        const p = new URLSearchParams(q || '');
        p.set(`var-${v.name}`, sel.value);
        history.replaceState(null, '', `${path}?${p}`);
        loadVariables().then(drawPanels);
      };
      return el('label', {}, `${v.label || v.name} `, sel);
    }));
  }

  function drawHeader() {
    const title = state.editing && admin
      ? el('input', { id: 'dash-title', value: state.dash.title, size: 40, oninput: (e) => { state.dash.title = e.target.value; state.dirty = true; } })
      : el('h1', { id: 'dash-title-text' }, state.dash.title);
    const buttons = [];
    if (admin && !meta.provisioned) {
      if (state.editing) {
        buttons.push(el('button', { id: 'add-panel', onclick: () => addPanel() }, 'Add panel'));
        buttons.push(el('button', { class: 'primary', id: 'save-dashboard', onclick: save }, 'Save'));
        if (uid) buttons.push(el('button', { onclick: () => { state.editing = false; route(); } }, 'Cancel'));
      } else buttons.push(el('button', { id: 'edit-dashboard', onclick: () => { state.editing = true; drawHeader(); drawPanels(); } }, 'Edit'));
    }
    if (uid) buttons.push(el('button', { id: 'export-dashboard', onclick: exportDash }, 'Export'));
    if (admin && meta.provisioned) buttons.push(el('button', { id: 'copy-dashboard', onclick: () => {
      const copy = structuredClone(state.dash);
      delete copy.uid; delete copy.version; copy.title = `${copy.title} (copy)`; copy.tags = (copy.tags || []).filter((t) => t !== 'built-in');
      api('/api/v1/dashboards', { method: 'POST', body: JSON.stringify(copy) }).then((r) => { location.hash = `#/d/${enc(r.data.uid)}`; });
    } }, 'Save a copy'));
    header.replaceChildren(el('a', { href: '#/dashboards' }, 'Dashboards'), ' › ', title, ...buttons, status,
      meta.provisioned ? el('span', { class: 'muted' }, 'provisioned (read-only)') : '');
  }

  async function save() {
    status.textContent = 'Saving…';
    try {
      const body = JSON.stringify({ ...state.dash, time: { from: timeState.from, to: timeState.to } });
      const r = state.dash.uid
        ? await api(`/api/v1/dashboards/${enc(state.dash.uid)}`, { method: 'PUT', body })
        : await api('/api/v1/dashboards', { method: 'POST', body });
      state.dash.uid = r.data.uid; state.dash.version = r.data.version; state.dirty = false;
      status.textContent = `Saved (version ${r.data.version})`;
      status.dataset.saved = String(r.data.version);
      if (!uid) location.hash = `#/d/${enc(r.data.uid)}`;
    } catch (e) { status.textContent = `Not saved: ${e.message}`; status.className = 'error'; }
  }

  function exportDash() {
    const json = JSON.stringify(state.dash, null, 2);
    const blob = new Blob([json], { type: 'application/json' });
    const a = el('a', { href: URL.createObjectURL(blob), download: `${state.dash.uid || 'dashboard'}.json`, id: 'export-download' }, 'Download JSON');
    const dlg = el('dialog', { id: 'export-dialog' }, el('h2', {}, 'Export'), el('textarea', { id: 'export-json', rows: 20, readonly: 'readonly' }, json),
      el('div', { class: 'toolbar' }, a, el('button', { onclick: () => { dlg.close(); dlg.remove(); } }, 'Close')));
    document.body.append(dlg);
    dlg.showModal();
  }

  function nextY() {
    return state.dash.panels.reduce((m, p) => Math.max(m, (p.gridPos?.y || 0) + (p.gridPos?.h || 0)), 0);
  }

  function addPanel() {
    const id = state.dash.panels.reduce((m, p) => Math.max(m, p.id || 0), 0) + 1;
    const panel = { id, type: 'timeseries', title: 'New panel', gridPos: { x: 0, y: nextY(), w: 12, h: 8 }, targets: [{ refId: 'A', expr: '' }], fieldConfig: { defaults: { unit: 'short' } }, options: {} };
    editPanel(panel, (p) => { state.dash.panels.push(p); state.dirty = true; drawPanels(); });
  }

  const gridStyle = (g) => `grid-column:${g.x + 1} / span ${g.w};grid-row:${g.y + 1} / span ${g.h}`;
  const elements = new Map(); // panel → its element

  /**
   * Edit mode gestures on the grid: pressing `handle` and moving the
   * pointer shows a dashed outline at `target(from, dx, dy, gridWidth)`
   * (layout.js); releasing puts the panel there, pushes the panels it
   * lands on down and calls `done()`. With `follow` the element moves with
   * the pointer meanwhile. Elements move without being redrawn.
   */
  function gridGesture(p, elem, handle, { target, follow = false, done }) {
    handle.addEventListener('pointerdown', (down) => {
      if (down.button !== 0 || down.target.closest('button')) return;
      down.preventDefault();
      handle.setPointerCapture(down.pointerId);
      const from = { ...p.gridPos };
      const width = grid.getBoundingClientRect().width;
      const ghost = el('div', { class: 'drop-target', id: 'drop-target', style: gridStyle(from) });
      grid.append(ghost);
      elem.classList.add('dragging');
      let to = from;
      const move = (ev) => {
        const dx = ev.clientX - down.clientX; const dy = ev.clientY - down.clientY;
        if (follow) elem.style.transform = `translate(${dx}px, ${dy}px)`;
        to = target(from, dx, dy, width);
        ghost.setAttribute('style', gridStyle(to));
      };
      const up = (ev) => {
        handle.removeEventListener('pointermove', move);
        handle.removeEventListener('pointerup', up);
        handle.removeEventListener('pointercancel', up);
        if (ev.type === 'pointerup') move(ev);
        ghost.remove();
        elem.classList.remove('dragging');
        elem.style.transform = '';
        if (ev.type !== 'pointerup' || ['x', 'y', 'w', 'h'].every((k) => to[k] === from[k])) return;
        Object.assign(p.gridPos, { x: to.x, y: to.y, w: to.w, h: to.h });
        for (const q of [p, ...place(state.dash.panels, p)]) {
          const e = elements.get(q);
          if (e) e.setAttribute('style', gridStyle(q.gridPos));
        }
        state.dirty = true;
        status.textContent = 'Layout changed: save to keep it.';
        if (done) done();
      };
      handle.addEventListener('pointermove', move);
      handle.addEventListener('pointerup', up);
      handle.addEventListener('pointercancel', up);
    });
  }

  /** Edit mode: dragging a panel by its title bar moves it on the grid. */
  function draggable(p, elem, handle) {
    handle.classList.add('drag-handle');
    handle.title = 'Drag to move the panel';
    gridGesture(p, elem, handle, { target: dropPosition, follow: true });
  }

  /**
   * Edit mode: dragging a panel's bottom-right corner resizes it in whole
   * grid cells; then the panel is loaded again, so that a chart has the
   * data its new width needs.
   */
  function resizable(p, elem, part) {
    const handle = el('div', { class: 'resize-handle', title: 'Drag to resize the panel' });
    elem.append(handle);
    gridGesture(p, elem, handle, {
      target: resizeTo,
      done: () => {
        part.stale = true;
        if (part.onScreen) page.run(part);
      },
    });
  }

  function drawPanels() {
    for (const p of page.visible.values()) if (p.chart) p.chart.destroy();
    for (const e of [...page.visible.keys()]) { page.observer.unobserve(e); page.visible.delete(e); }
    elements.clear();
    const panels = [...state.dash.panels].sort((a, b) => (a.gridPos.y - b.gridPos.y) || (a.gridPos.x - b.gridPos.x));
    grid.replaceChildren(...panels.map((p) => panelElement(p)));
    if (!panels.length) grid.append(el('p', { class: 'muted', style: 'grid-column: 1 / span 24' }, state.editing ? 'Empty: add a panel.' : 'This dashboard has no panels.'));
  }

  function panelElement(p) {
    const g = p.gridPos;
    const body = el('div', { class: 'pbody' });
    const tools = el('span', { class: 'tools' });
    if (state.editing && admin) {
      tools.append(
        el('button', { title: 'Edit', class: 'edit-panel', onclick: () => editPanel(structuredClone(p), (np) => { Object.assign(p, np); state.dirty = true; drawPanels(); }) }, '✎'),
        el('button', { title: 'Remove', class: 'remove-panel', onclick: () => { state.dash.panels = state.dash.panels.filter((x) => x !== p); state.dirty = true; drawPanels(); } }, '✕'));
    }
    const title = substitute(p.title || '', state.varsText || {});
    const elem = el('div', { class: `panel panel-${p.type}`, style: gridStyle(g), dataset: { panelId: p.id, type: p.type, title } },
      p.type === 'row' ? '' : el('div', { class: 'ptitle' }, title, tools), body);
    elements.set(p, elem);
    if (p.type === 'row') {
      elem.className = 'panel-row';
      const h = el('h2', {}, title, tools);
      elem.replaceChildren(h);
      elem.dataset.state = 'ready';
      if (state.editing && admin) draggable(p, elem, h);
      return elem;
    }
    const part = page.lazy(elem, (signal) => renderPanel(p, body, part, signal));
    if (state.editing && admin) {
      draggable(p, elem, elem.querySelector('.ptitle'));
      resizable(p, elem, part);
    }
    return elem;
  }

  async function renderPanel(p, body, part, signal) {
    const [start, end] = timeState.range();
    const d = p.fieldConfig?.defaults || {};
    const targets = (p.targets || []).filter((t) => t.expr && !t.hide);
    const exprs = targets.map((t) => ({ query: substitute(t.expr, state.vars), legend: substitute(t.legendFormat || '', state.vars) || undefined }));
    switch (p.type) {
      case 'graph': case 'timeseries': {
        if (!exprs.length) { body.replaceChildren(el('p', { class: 'muted' }, 'No query.')); return; }
        const width = Math.max(100, body.clientWidth - 80);
        const results = await Promise.all(exprs.map((e) => chartQuery({ ...e, start, end, width, signal })));
        if (signal.aborted) return;
        if (part.chart) part.chart.destroy();
        const legendOpt = p.options?.legend || {};
        const oldLegend = p.legend;
        let legend = legendOpt.displayMode || (oldLegend ? (oldLegend.show === false ? 'hidden' : oldLegend.alignAsTable || oldLegend.values ? 'table' : 'list') : 'table');
        if (legendOpt.showLegend === false) legend = 'hidden';
        const calcs = legendOpt.calcs?.length ? legendOpt.calcs
          : oldLegend ? ['min', 'max', 'avg', 'current'].filter((c) => oldLegend[c]).map((c) => (c === 'current' ? 'lastNotNull' : c === 'avg' ? 'mean' : c)) : undefined;
        const tmode = d.custom?.thresholdsStyle?.mode;
        const thresholds = tmode && tmode !== 'off' ? (d.thresholds?.steps || []).filter((s) => s.value !== null) : [];
        part.chart = drawChart(body, results, { unit: d.unit || p.yaxes?.[0]?.format || 'short', min: d.min, max: d.max, decimals: d.decimals, legend, calcs, thresholds, start, end });
        body.parentElement.dataset.series = String(part.chart.series.length);
        return;
      }
      case 'singlestat': case 'stat': return renderStat(p, body, exprs, [start, end], signal);
      case 'text': {
        const content = p.options?.content ?? p.content ?? '';
        const mode = p.options?.mode ?? p.mode ?? 'markdown';
        const div = el('div', { class: 'markdown' });
        if (mode === 'markdown') div.innerHTML = markdown(substitute(content, state.vars));
        else div.textContent = substitute(content, state.vars);
        body.replaceChildren(div);
        return;
      }
      case 'table': {
        const results = await Promise.all(exprs.map((e) => api(`/api/v1/query?${qs({ query: e.query, time: end / 1000 })}`, { signal })));
        const rows = results.flatMap((r) => (r.data.resultType === 'vector' ? r.data.result : []));
        const keys = [...new Set(rows.flatMap((r) => Object.keys(r.metric)))].sort();
        body.replaceChildren(el('table', { class: 'data' },
          el('tr', {}, keys.map((k) => el('th', {}, k)), el('th', { class: 'num' }, 'Value')),
          rows.map((r) => el('tr', {}, keys.map((k) => el('td', {}, r.metric[k] ?? '')), el('td', { class: 'num' }, fmt(Number(r.value[1]), d.unit, d.decimals))))));
        return;
      }
      case 'logs': {
        if (!(await serves('/api/v1/logs/search'))) { body.replaceChildren(el('p', { class: 'notice' }, 'The logs API is not available on this server.')); return; }
        const query = substitute(p.options?.query ?? targets[0]?.expr ?? '', state.vars);
        try {
          const b = await api(`/api/v1/logs/search?${qs({ query, start: start / 1000, end: end / 1000, limit: 100 })}`, { signal });
          body.replaceChildren(logLinesTable(b.data.lines, null));
        } catch (e) {
          if (e.status === 404) { body.replaceChildren(el('p', { class: 'notice' }, 'The logs API is not available on this server (it answered 404).')); return; }
          throw e;
        }
        return;
      }
      default:
        body.replaceChildren(el('p', { class: 'muted' }, `Panel type “${p.type}” is not supported by Osprey; it is kept as it was imported.`));
    }
  }

  async function renderStat(p, body, exprs, [start, end], signal) {
    const d = p.fieldConfig?.defaults || {};
    const o = p.options || {};
    if (!exprs.length) { body.replaceChildren(el('p', { class: 'muted' }, 'No query.')); return; }
    const r = await chartQuery({ ...exprs[0], start, end, width: 120, signal });
    const s = r.series[0];
    // Grafana's stat options, with the old singlestat's fields as fallbacks.
    const calc = o.reduceOptions?.calcs?.[0] || ({ current: 'lastNotNull', avg: 'mean' }[p.valueName] || p.valueName) || 'lastNotNull';
    const st = s?.stats;
    const value = !st ? null : calc === 'mean' ? st.avg : calc === 'max' ? st.max : calc === 'min' ? st.min : st.last;
    let steps = d.thresholds?.steps;
    if (!steps && typeof p.thresholds === 'string' && p.thresholds.trim()) { // singlestat: "80,90" + colors[3]
      const cols = p.colors || ['green', 'orange', 'red'];
      steps = [{ value: null, color: cols[0] }, ...p.thresholds.split(',').map((t, i) => ({ value: Number(t), color: cols[i + 1] || 'red' }))];
    }
    const c = thresholdColor(value, steps, { mode: d.thresholds?.mode, min: d.min ?? 0, max: d.max ?? 100 });
    const colorMode = o.colorMode || (p.colorBackground ? 'background' : p.colorValue ? 'value' : steps ? 'value' : 'none');
    const unit = d.unit || p.format || 'short';
    const v = el('div', { class: 'value', dataset: { value: value ?? '' } }, fmt(value, unit, d.decimals ?? (p.decimals ?? undefined)));
    const box = el('div', { class: 'stat', dataset: { color: c || '' } }, v);
    if (c && colorMode === 'value') v.style.color = c;
    if (c && colorMode === 'background') { box.style.background = c; box.style.color = '#fff'; }
    const spark = o.graphMode ? o.graphMode === 'area' : Boolean(p.sparkline?.show);
    if (spark && s) box.append(sparkline(s.max, colorMode === 'background' ? '#ffffff' : (c || '#1F78C1')));
    if (!s) v.textContent = 'No data';
    body.replaceChildren(box);
  }

  function route() { // back to the stored version: the router rebuilds the page
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  }

  page.onTime(() => { loadVariables().catch(() => {}); });
  drawHeader();
  await loadVariables();
  drawPanels();
}
