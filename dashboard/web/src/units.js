// Value formatting by unit: the same table as the server's
// dashboard/src/units.rs (bytes, Bps, percent, percentunit, s, ms, cores,
// millicores, short).

function digits(v, decimals) {
  if (decimals !== undefined && decimals !== null) return v.toFixed(decimals);
  if (v === 0) return '0';
  const mag = Math.floor(Math.log10(Math.abs(v)));
  const d = Math.min(6, Math.max(0, 2 - mag));
  let s = v.toFixed(d);
  if (s.includes('.')) s = s.replace(/0+$/, '').replace(/\.$/, '');
  return s;
}

function scaled(v, base, names, decimals) {
  let x = v; let i = 0;
  while (Math.abs(x) >= base && i + 1 < names.length) { x /= base; i++; }
  const n = names[i];
  if (!n) return digits(x, decimals);
  return n.includes('B') ? `${digits(x, decimals)} ${n}` : `${digits(x, decimals)}${n}`;
}

function duration(s, decimals) {
  const a = Math.abs(s);
  if (a === 0) return '0 s';
  if (a < 1e-6) return `${digits(s * 1e9, decimals)} ns`;
  if (a < 1e-3) return `${digits(s * 1e6, decimals)} µs`;
  if (a < 1) return `${digits(s * 1e3, decimals)} ms`;
  if (a < 60) return `${digits(s, decimals)} s`;
  if (a < 3600) return `${digits(s / 60, decimals)} min`;
  if (a < 86400) return `${digits(s / 3600, decimals)} h`;
  return `${digits(s / 86400, decimals)} d`;
}

export const UNITS = [
  ['short', 'Number'], ['bytes', 'Bytes (IEC)'], ['Bps', 'Bytes/s'], ['percent', 'Percent (0-100)'],
  ['percentunit', 'Percent (0.0-1.0)'], ['s', 'Seconds'], ['ms', 'Milliseconds'], ['cores', 'CPU cores'],
  ['millicores', 'Millicores'], ['reqps', 'Requests/s'],
];

export function fmt(v, unit = 'short', decimals) {
  if (v === null || v === undefined) return '–';
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  switch (unit) {
    case 'bytes': case 'decbytes': return scaled(v, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'], decimals);
    case 'Bps': case 'bytes/s': return scaled(v, 1024, ['B/s', 'KiB/s', 'MiB/s', 'GiB/s', 'TiB/s'], decimals);
    case 'percent': return `${digits(v, decimals)}%`;
    case 'percentunit': return `${digits(v * 100, decimals)}%`;
    case 's': case 'seconds': return duration(v, decimals);
    case 'ms': return duration(v / 1000, decimals);
    case 'cores': return `${digits(v, decimals)} cores`;
    case 'millicores': return `${digits(v, decimals)}m`;
    case 'reqps': return `${scaled(v, 1000, ['', 'K', 'M', 'G'], decimals)} req/s`;
    case '': case 'short': case 'none': case undefined: case null:
      return scaled(v, 1000, ['', 'K', 'M', 'G', 'T', 'P'], decimals);
    default: return `${scaled(v, 1000, ['', 'K', 'M', 'G', 'T', 'P'], decimals)} ${unit}`;
  }
}

export function pct(v) {
  return v === null || v === undefined || !Number.isFinite(v) ? '–' : `${v.toFixed(1)}%`;
}
