// Sizes in device pixels, for what the canvas draws.

/**
 * Charts with at least this many series draw them as hairlines; fewer
 * series keep 1 CSS px lines, whose raster cost is small and which read
 * better on a HiDPI screen.
 */
export const HAIRLINE_SERIES = 10;

/**
 * The series' line width in CSS px. A crowded chart (`HAIRLINE_SERIES` or
 * more series) draws one device pixel (1 at a devicePixelRatio of 1, 0.5
 * at 2): Skia draws a stroke of at most one device pixel as a hairline,
 * and anything wider as an outline polygon filled with antialiasing. For
 * 50 zig-zagging min/max series that was ~70 ms of canvas raster per chart
 * at 1.25 px against ~10 ms for a hairline, and at a devicePixelRatio of 2
 * the 12-panel bench dashboard took 1.3–1.5 s to draw with 1 CSS px
 * (2 device px) lines against 0.67–0.75 s with hairlines (see
 * docs/benchmarks.md, dashboard). Charts with fewer series, and every
 * chart with `lines=css` in the page's URL (the benchmark compares both),
 * draw 1 CSS px lines.
 */
export function lineWidth(dpr = globalThis.devicePixelRatio || 1, hash = globalThis.location?.hash || '', series = HAIRLINE_SERIES) {
  if (/[?&]lines=css(&|$)/.test(hash)) return 1;
  if (series < HAIRLINE_SERIES) return Math.max(1, dpr > 0 ? 1 / dpr : 1);
  return dpr > 0 ? 1 / dpr : 1;
}
