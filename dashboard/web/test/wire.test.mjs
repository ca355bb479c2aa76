// The binary chart answer's decoder (wire.js) on a buffer laid out as the
// server's encode_binary documents; tests/dashboard_api.rs checks the
// server's real answers against its JSON ones.

import test from 'node:test';
import assert from 'node:assert/strict';
import { BatchFrames, decodeChart, orNull } from '../src/wire.js';

function encode(head, columns) {
  const h = new TextEncoder().encode(JSON.stringify(head));
  const body = Math.ceil((8 + h.length) / 4) * 4;
  const buf = new ArrayBuffer(body + columns.length * 4);
  const dv = new DataView(buf);
  new Uint8Array(buf).set(new TextEncoder().encode('OSC1'), 0);
  dv.setUint32(4, h.length, true);
  new Uint8Array(buf).set(h, 8);
  columns.forEach((v, i) => dv.setFloat32(body + i * 4, v, true));
  return buf;
}

test('binary chart answers decode to the JSON shape', () => {
  const head = { start: 1000, end: 4000, step_ms: 1000, bucket_ms: 1000, buckets: 3,
    series: [{ metric: { pod: 'a' }, name: 'a', stats: { min: 1, max: 5, avg: 3, last: 5 } },
      { metric: { pod: 'b' }, name: 'b', stats: null }] };
  const d = decodeChart(encode(head, [1, NaN, 2, 3, NaN, 5, NaN, NaN, NaN, NaN, NaN, NaN]));
  assert.deepEqual([...d.t], [1000, 2000, 3000]);
  assert.equal(d.bucket_ms, 1000);
  assert.equal(d.series.length, 2);
  assert.equal(d.series[0].name, 'a');
  assert.deepEqual(d.series[0].stats, head.series[0].stats);
  assert.deepEqual(Array.from(d.series[0].min, orNull), [1, null, 2]);
  assert.deepEqual(Array.from(d.series[0].max, orNull), [3, null, 5]);
  assert.deepEqual(Array.from(d.series[1].max, orNull), [null, null, null]);
});

test('a truncated or foreign buffer is refused', () => {
  const head = { start: 0, end: 1, step_ms: 1, bucket_ms: 1, buckets: 2, series: [{ metric: {}, name: 'x', stats: null }] };
  const buf = encode(head, [1, 2, 3]);
  assert.throws(() => decodeChart(buf), /does not hold 1 series of 2 buckets/);
  assert.throws(() => decodeChart(new TextEncoder().encode('{"status":"success"}').buffer), /OSC1/);
});

function batch(frames) {
  const parts = [new TextEncoder().encode('OSB1')];
  for (const [index, status, body] of frames) {
    const head = new DataView(new ArrayBuffer(12));
    head.setUint32(0, index, true); head.setUint32(4, status, true); head.setUint32(8, body.byteLength, true);
    parts.push(new Uint8Array(head.buffer), new Uint8Array(body));
  }
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { all.set(p, at); at += p.length; }
  return all;
}

test('batch answers split into frames however the bytes arrive', () => {
  const head = { start: 0, end: 2000, step_ms: 1000, bucket_ms: 1000, buckets: 2, series: [{ metric: {}, name: 'x', stats: null }] };
  const chart = encode(head, [1, 2, 3, 4]);
  const err = new TextEncoder().encode('{"status":"error","errorType":"bad_data","error":"parse error"}').buffer;
  const bytes = batch([[1, 200, chart], [0, 422, err]]);
  for (const size of [1, 3, 5, 13, bytes.length]) {
    const f = new BatchFrames();
    const got = [];
    for (let i = 0; i < bytes.length; i += size) got.push(...f.push(bytes.subarray(i, i + size)));
    assert.ok(f.clean, `chunks of ${size}`);
    assert.deepEqual(got.map((x) => [x.index, x.status]), [[1, 200], [0, 422]]);
    const d = decodeChart(got[0].body);
    assert.deepEqual(Array.from(d.series[0].max), [3, 4]);
    assert.equal(JSON.parse(new TextDecoder().decode(got[1].body)).error, 'parse error');
  }
  const cut = new BatchFrames();
  assert.equal(cut.push(bytes.subarray(0, bytes.length - 1)).length, 1);
  assert.ok(!cut.clean, 'a frame cut short is noticed');
  assert.throws(() => new BatchFrames().push(new TextEncoder().encode('{"status":"error"}')), /OSB1/);
});
