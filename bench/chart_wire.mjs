// The chart query's two encodings, decoded in V8 (Node; Chromium runs the
// same engine): a 50-series × 641-bucket answer shaped as the server sends
// it (JSON values with 7 significant digits, as chart_query rounds them;
// binary f32 as encode_binary lays them out), JSON.parse against
// wire.js's decodeChart, median of 30 after 5 warm-ups.
// Run: node bench/chart_wire.mjs
import { decodeChart } from '../dashboard/web/src/wire.js';
import { performance } from 'node:perf_hooks';
const S = 50, N = 641, start = 1795700000000, bucket = 33750;
const r7 = (v) => Number(v.toPrecision(7));
const series = [];
for (let s = 0; s < S; s++) {
  const min = [], max = [];
  for (let i = 0; i < N; i++) { const w = (Math.sin(i / 30 + s) * 0.5 + 0.5) * 1e8 * (1 + s % 17); min.push(r7(w * 0.97)); max.push(r7(w * 1.03 + i)); }
  series.push({ metric: { __name__: 'container_memory_working_set_bytes', container: `c${s % 2}`, id: `/kubepods/pod-0-${s >> 1}/c${s}`, image: 'registry.example/app:1', job: 'osprey-agent', namespace: `ns-${s % 10}`, node: 'node-0', pod: `pod-0-${s >> 1}` }, name: `pod-0-${s >> 1}/c${s % 2}`, min, max, stats: { min: 1, max: 2, avg: 1.5, last: 2 } });
}
const t = Array.from({ length: N }, (_, i) => start + i * bucket);
const json = JSON.stringify({ status: 'success', data: { start, end: start + 6 * 3600e3, step_ms: 10000, bucket_ms: bucket, t, series } });
const head = new TextEncoder().encode(JSON.stringify({ start, end: start + 6 * 3600e3, step_ms: 10000, bucket_ms: bucket, buckets: N, series: series.map(({ metric, name, stats }) => ({ metric, name, stats })) }));
const body = Math.ceil((8 + head.length) / 4) * 4;
const buf = new ArrayBuffer(body + S * N * 8); const dv = new DataView(buf);
new Uint8Array(buf).set(new TextEncoder().encode('OSC1')); dv.setUint32(4, head.length, true); new Uint8Array(buf).set(head, 8);
let at = body; for (const s of series) for (const v of [...s.min, ...s.max]) { dv.setFloat32(at, v, true); at += 4; }
const time = (f, n = 30) => { for (let i = 0; i < 5; i++) f(); const xs = []; for (let i = 0; i < n; i++) { const a = performance.now(); f(); xs.push(performance.now() - a); } xs.sort((a, b) => a - b); return xs[n >> 1]; };
const tj = time(() => JSON.parse(json));
const tb = time(() => decodeChart(buf));
console.log(`bytes: JSON ${(json.length / 1024).toFixed(0)} KiB, binary ${(buf.byteLength / 1024).toFixed(0)} KiB`);
console.log(`median of 30: JSON.parse ${tj.toFixed(2)} ms, decodeChart ${tb.toFixed(3)} ms`);
