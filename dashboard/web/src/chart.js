// Time-series charts with uPlot: data from /api/v1/dashboard/query_range
// (one min/max bucket per pixel), drawn as both points of each bucket so
// that peaks stay visible; a legend table with min/max/avg/last; drag to
// zoom (sets the shared time range); a cursor shared by every chart.

// Relative: the page loads every module from one versioned directory.
import uPlot from './uPlot.esm.js';
import { fmt } from './units.js';
import { timeState } from './time.js';
import { orNull } from './wire.js';
import { lineWidth } from './pixels.js';

export const PALETTE = ['#7EB26D', '#EAB839', '#6ED0E0', '#EF843C', '#E24D42', '#1F78C1', '#BA43A9', '#705DA0', '#508642', '#CCA300'];

export const THRESHOLD_COLORS = { green: '#56a64b', red: '#e02f44', orange: '#ff780a', yellow: '#f2cc0c', blue: '#3274d9', purple: '#a352cc' };
export const color = (c) => THRESHOLD_COLORS[c] || c || '#56a64b';

/** Merges several query results (same grid) into uPlot's columnar data. */
export function toUplot(results) {
  const first = results.find((r) => r && r.t);
  if (!first) return { data: [[]], series: [] };
  const half = first.bucket_ms / 2;
  const xs = new Float64Array(first.t.length * 2);
  first.t.forEach((t, i) => { xs[2 * i] = t / 1000; xs[2 * i + 1] = (t + half) / 1000; });
  const data = [xs];
  const series = [];
  for (const r of results) {
    if (!r || !r.series) continue;
    for (const s of r.series) {
      const ys = new Array(first.t.length * 2);
      for (let i = 0; i < first.t.length; i++) {
        ys[2 * i] = orNull(s.min[i]);
        ys[2 * i + 1] = orNull(s.max[i]);
      }
      data.push(ys);
      series.push(s);
    }
  }
  return { data, series };
}

function thresholdsPlugin(thresholds) {
  return {
    hooks: {
      draw: [(u) => {
        const { ctx } = u;
        ctx.save();
        ctx.setLineDash([6, 4]);
        ctx.lineWidth = 1;
        for (const t of thresholds) {
          if (t.value === null || t.value === undefined) continue;
          const y = u.valToPos(t.value, 'y', true);
          if (y < u.bbox.top || y > u.bbox.top + u.bbox.height) continue;
          ctx.strokeStyle = color(t.color);
          ctx.beginPath();
          ctx.moveTo(u.bbox.left, y);
          ctx.lineTo(u.bbox.left + u.bbox.width, y);
          ctx.stroke();
        }
        ctx.restore();
      }],
    },
  };
}

/**
 * Shaded time regions ([{from, to, color}], ms) and bands ([{t, lo, hi}],
 * ms and values), drawn under the series (the alert preview's fired
 * intervals and learned bands).
 */
function regionsPlugin(regions = [], bands = []) {
  return {
    hooks: {
      drawAxes: [(u) => {
        const { ctx, bbox } = u;
        ctx.save();
        for (const r of regions) {
          const a = Math.max(bbox.left, u.valToPos(r.from / 1000, 'x', true));
          const b = Math.min(bbox.left + bbox.width, u.valToPos(r.to / 1000, 'x', true));
          if (!(b > a - 1)) continue;
          ctx.fillStyle = r.color || 'rgba(224,47,68,0.2)';
          ctx.fillRect(a, bbox.top, Math.max(1, b - a), bbox.height);
        }
        ctx.fillStyle = 'rgba(50,116,217,0.15)';
        for (const band of bands) {
          // One polygon per run of points that have both edges.
          let run = [];
          const flush = () => {
            if (run.length > 1) {
              ctx.beginPath();
              run.forEach(([x, lo], i) => (i ? ctx.lineTo(x, lo) : ctx.moveTo(x, lo)));
              for (let i = run.length - 1; i >= 0; i--) ctx.lineTo(run[i][0], run[i][2]);
              ctx.closePath();
              ctx.fill();
            }
            run = [];
          };
          band.t.forEach((t, i) => {
            if (band.lo[i] === null || band.hi[i] === null) { flush(); return; }
            run.push([u.valToPos(t / 1000, 'x', true), u.valToPos(band.lo[i], 'y', true), u.valToPos(band.hi[i], 'y', true)]);
          });
          flush();
        }
        ctx.restore();
      }],
    },
  };
}

const LEGEND_CALCS = { min: 'Min', max: 'Max', mean: 'Avg', avg: 'Avg', lastNotNull: 'Last', last: 'Last' };

/**
 * Draws a chart into `el` (replacing its content). Options: unit, min, max,
 * decimals, thresholds [{value,color}], legend ('table' | 'list' | 'hidden'),
 * calcs (['min','max','mean','lastNotNull']), start/end (ms) for the x axis,
 * regions [{from,to,color}] (ms) shaded and bands [{t,lo,hi}] filled under the series.
 * Returns {uplot, destroy()}.
 */
export function drawChart(el, results, opts = {}) {
  const { data, series } = toUplot(results);
  el.innerHTML = '';
  el.classList.add('chart');
  const plot = document.createElement('div');
  plot.className = 'plot';
  el.append(plot);
  let legend = null;
  const mode = opts.legend || 'table';
  if (mode !== 'hidden') {
    legend = document.createElement('div');
    legend.className = 'legend';
    el.append(legend);
  }
  const unit = opts.unit || 'short';
  const sizeOf = () => ({ width: Math.max(100, plot.clientWidth), height: Math.max(60, plot.clientHeight || 150) });
  const u = new uPlot({
    ...sizeOf(),
    pxAlign: 0,
    legend: { show: false },
    cursor: {
      sync: { key: 'osprey' },
      drag: { x: true, y: false, setScale: false },
      points: { show: false },
    },
    select: { show: true },
    scales: {
      x: { time: true, range: opts.start ? () => [opts.start / 1000, opts.end / 1000] : undefined },
      y: { range: (u2, lo, hi) => {
        let a = opts.min ?? Math.min(0, lo ?? 0); let b = opts.max ?? hi ?? 1;
        if (!(b > a)) b = a + 1;
        return [a, opts.max ?? b + (b - a) * 0.05];
      } },
    },
    axes: [
      { stroke: '#666', grid: { stroke: '#eee' }, ticks: { stroke: '#ddd' } },
      { stroke: '#666', grid: { stroke: '#eee' }, ticks: { stroke: '#ddd' },
        // Wide enough for the longest label (uPlot clips what does not fit).
        size: (u2, vals) => 16 + 7 * Math.max(4, ...(vals || []).map((v) => String(v).length)),
        values: (u2, vals) => vals.map((v) => fmt(v, unit, opts.decimals)) },
    ],
    series: [{}, ...series.map((s, i) => ({
      label: s.name,
      stroke: PALETTE[i % PALETTE.length],
      width: lineWidth(undefined, undefined, series.length),
      spanGaps: false,
      points: { show: false },
    }))],
    plugins: [
      ...(opts.thresholds && opts.thresholds.length ? [thresholdsPlugin(opts.thresholds)] : []),
      ...((opts.regions && opts.regions.length) || (opts.bands && opts.bands.length) ? [regionsPlugin(opts.regions, opts.bands)] : []),
    ],
    hooks: {
      setSelect: [(uu) => {
        if (uu.select.width < 4) return;
        const a = uu.posToVal(uu.select.left, 'x') * 1000;
        const b = uu.posToVal(uu.select.left + uu.select.width, 'x') * 1000;
        uu.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
        if (b > a) timeState.set(Math.round(a), Math.round(b));
      }],
    },
  }, data, plot);

  if (legend) {
    const calcs = (opts.calcs && opts.calcs.length ? opts.calcs : ['min', 'max', 'mean', 'lastNotNull'])
      .filter((c) => LEGEND_CALCS[c]);
    const table = document.createElement('table');
    const head = mode === 'table' ? `<tr><th></th>${calcs.map((c) => `<th>${LEGEND_CALCS[c]}</th>`).join('')}</tr>` : '';
    table.innerHTML = head;
    series.forEach((s, i) => {
      const tr = document.createElement('tr');
      const name = document.createElement('td');
      const sw = document.createElement('span');
      sw.className = 'sw';
      sw.style.background = PALETTE[i % PALETTE.length];
      name.append(sw, document.createTextNode(s.name));
      name.title = s.name;
      tr.append(name);
      if (mode === 'table') {
        for (const c of calcs) {
          const td = document.createElement('td');
          const st = s.stats;
          const v = !st ? null : c === 'min' ? st.min : c === 'max' ? st.max : (c === 'mean' || c === 'avg') ? st.avg : st.last;
          td.textContent = fmt(v, unit, opts.decimals);
          tr.append(td);
        }
      }
      tr.onclick = () => {
        const show = !u.series[i + 1].show;
        u.setSeries(i + 1, { show });
        tr.classList.toggle('off', !show);
      };
      table.append(tr);
    });
    legend.append(table);
  }
  const ro = new ResizeObserver(() => {
    const s = sizeOf();
    if (Math.abs(s.width - u.width) > 2 || Math.abs(s.height - u.height) > 2) u.setSize(s);
  });
  ro.observe(plot);
  return { uplot: u, series, destroy() { ro.disconnect(); u.destroy(); } };
}

/** A small SVG sparkline of a series' bucket maxima. */
export function sparkline(values, stroke = '#1F78C1') {
  const pts = Array.from(values, (v, i) => [i, orNull(v)]).filter(([, v]) => v !== null);
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('viewBox', '0 0 100 30');
  svg.setAttribute('preserveAspectRatio', 'none');
  if (pts.length < 2) return svg;
  const lo = Math.min(...pts.map((p) => p[1])); const hi = Math.max(...pts.map((p) => p[1]));
  const n = values.length - 1 || 1;
  const y = (v) => (hi === lo ? 15 : 28 - ((v - lo) / (hi - lo)) * 26);
  const d = pts.map(([i, v], k) => `${k ? 'L' : 'M'}${((i / n) * 100).toFixed(2)},${y(v).toFixed(2)}`).join('');
  const area = document.createElementNS(ns, 'path');
  area.setAttribute('d', `${d}L${((pts[pts.length - 1][0] / n) * 100).toFixed(2)},30L${((pts[0][0] / n) * 100).toFixed(2)},30Z`);
  area.setAttribute('fill', stroke);
  area.setAttribute('fill-opacity', '0.15');
  const line = document.createElementNS(ns, 'path');
  line.setAttribute('d', d);
  line.setAttribute('fill', 'none');
  line.setAttribute('stroke', stroke);
  line.setAttribute('stroke-width', '1');
  line.setAttribute('vector-effect', 'non-scaling-stroke');
  svg.append(area, line);
  return svg;
}

/** The colour of the threshold step `v` falls in (steps: [{value|null, color}]). */
export function thresholdColor(v, thresholds, { mode = 'absolute', min = 0, max = 100 } = {}) {
  if (!thresholds || !thresholds.length || v === null || v === undefined) return null;
  const x = mode === 'percentage' ? ((v - min) / ((max - min) || 1)) * 100 : v;
  const steps = [...thresholds].sort((a, b) => (a.value ?? -Infinity) - (b.value ?? -Infinity));
  let c = steps[0].color;
  for (const s of steps) if (s.value === null || s.value === undefined || x >= s.value) c = s.color;
  return color(c);
}
