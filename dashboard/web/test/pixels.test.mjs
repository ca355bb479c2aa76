// Chart line widths (pixels.js): one device pixel at any devicePixelRatio
// for crowded charts, 1 CSS px for few series or with `lines=css` in the
// page's URL.

import test from 'node:test';
import assert from 'node:assert/strict';
import { HAIRLINE_SERIES, lineWidth } from '../src/pixels.js';

test('series lines are one device pixel wide', () => {
  assert.equal(lineWidth(1, '#/d/x'), 1);
  assert.equal(lineWidth(2, '#/d/x'), 0.5);
  assert.equal(lineWidth(1.5, ''), 1 / 1.5);
  assert.equal(lineWidth(0.5, ''), 2, 'zoomed out: still one device pixel');
});

test('lines=css in the URL draws 1 CSS px lines', () => {
  assert.equal(lineWidth(2, '#/d/x?from=now-6h&lines=css'), 1);
  assert.equal(lineWidth(2, '#/d/x?lines=css&to=now'), 1);
  assert.equal(lineWidth(2, '#/d/x?lines=cssx'), 0.5);
  assert.equal(lineWidth(0, ''), 1, 'no ratio known');
});

test('charts with few series keep 1 CSS px lines', () => {
  const few = HAIRLINE_SERIES - 1;
  assert.equal(lineWidth(2, '#/d/x', few), 1);
  assert.equal(lineWidth(1, '#/d/x', few), 1);
  assert.equal(lineWidth(0.5, '#/d/x', few), 2, 'zoomed out: still at least one device pixel');
  assert.equal(lineWidth(2, '#/d/x', HAIRLINE_SERIES), 0.5);
  assert.equal(lineWidth(2, '#/d/x', 50), 0.5);
});
