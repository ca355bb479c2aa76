// Sizes in device pixels, for what the canvas draws.

/**
 * The series' line width in CSS px: one device pixel (1 at a
 * devicePixelRatio of 1, 0.5 at 2). Skia draws a stroke of at most one
 * device pixel as a hairline, and anything wider as an outline polygon
 * filled with antialiasing: for 50 zig-zagging min/max series that was
 * ~70 ms of canvas raster per chart at 1.25 px against ~10 ms for a
 * hairline, and at a devicePixelRatio of 2 the 12-panel bench dashboard
 * took 1.3–1.5 s to draw with 1 CSS px (2 device px) lines against
 * 0.67–0.75 s with hairlines. See docs/benchmarks.md, dashboard. `lines=css` in the page's URL draws 1 CSS px lines instead
 * (the benchmark compares both).
 */
export function lineWidth(dpr = globalThis.devicePixelRatio || 1, hash = globalThis.location?.hash || '') {
  if (/[?&]lines=css(&|$)/.test(hash)) return 1;
  return dpr > 0 ? 1 / dpr : 1;
}
