// The chart query's binary answer (`format=binary`, see
// src/server/chart_query.rs `encode_binary`): "OSC1", a u32 header length,
// a JSON header (labels, names, stats), padding to 4 bytes, then per
// series N minima and N maxima as little-endian f32 (NaN: no sample). The
// numbers are wrapped in Float32Arrays where they lie: no parsing.

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** f32 little-endian values at `offset` (a view when the platform is little-endian, else a copy). */
function floats(buf, offset, n) {
  if (LITTLE_ENDIAN) return new Float32Array(buf, offset, n);
  const dv = new DataView(buf, offset, n * 4);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
  return out;
}

/**
 * Decodes a binary answer to the JSON answer's shape: {start, end,
 * step_ms, bucket_ms, t, series: [{metric, name, stats, min, max}]}, with
 * `min`/`max` as Float32Arrays holding NaN where the JSON has null.
 */
export function decodeChart(buf) {
  const bytes = new Uint8Array(buf);
  if (bytes.length < 8 || String.fromCharCode(...bytes.subarray(0, 4)) !== 'OSC1') {
    throw new Error('not a binary chart answer (no OSC1 mark)');
  }
  const h = new DataView(buf).getUint32(4, true);
  const head = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + h)));
  const n = head.buckets;
  let at = Math.ceil((8 + h) / 4) * 4;
  if (buf.byteLength !== at + head.series.length * n * 8) {
    throw new Error(`binary chart answer of ${buf.byteLength} bytes does not hold ${head.series.length} series of ${n} buckets`);
  }
  const t = new Float64Array(n);
  for (let i = 0; i < n; i++) t[i] = head.start + i * head.bucket_ms;
  const series = head.series.map((s) => {
    const min = floats(buf, at, n); at += n * 4;
    const max = floats(buf, at, n); at += n * 4;
    return { ...s, min, max };
  });
  return { start: head.start, end: head.end, step_ms: head.step_ms, bucket_ms: head.bucket_ms, t, series };
}

/** A bucket value as uPlot wants it: null for a gap (JSON null or NaN). */
export const orNull = (v) => (v === null || v === undefined || v !== v ? null : v);

/**
 * Splits the batch answer of `POST /api/v1/dashboard/query_batch` (see
 * src/server/chart_batch.rs) into frames as its bytes arrive: "OSB1", then
 * per query its index, HTTP status and body length (u32 little-endian)
 * and the body (a binary chart answer for 200, a JSON error otherwise).
 * `push(chunk)` returns the frames completed by that chunk, each
 * {index, status, body: ArrayBuffer of its own}.
 */
export class BatchFrames {
  constructor() {
    this.buf = new Uint8Array(0);
    this.magic = false;
  }

  push(chunk) {
    const joined = new Uint8Array(this.buf.length + chunk.length);
    joined.set(this.buf, 0);
    joined.set(chunk, this.buf.length);
    let at = 0;
    const out = [];
    if (!this.magic) {
      if (joined.length < 4) { this.buf = joined; return out; }
      if (String.fromCharCode(...joined.subarray(0, 4)) !== 'OSB1') throw new Error('not a batch chart answer (no OSB1 mark)');
      this.magic = true;
      at = 4;
    }
    const dv = new DataView(joined.buffer, joined.byteOffset, joined.byteLength);
    while (joined.length - at >= 12) {
      const len = dv.getUint32(at + 8, true);
      if (joined.length - at - 12 < len) break;
      out.push({
        index: dv.getUint32(at, true),
        status: dv.getUint32(at + 4, true),
        body: joined.slice(at + 12, at + 12 + len).buffer,
      });
      at += 12 + len;
    }
    this.buf = joined.subarray(at);
    return out;
  }

  /** True when no partial frame is left over (the answer ended cleanly). */
  get clean() { return this.magic && this.buf.length === 0; }
}
