// Dragging and resizing panels on the dashboard grid (layout.js).

import test from 'node:test';
import assert from 'node:assert/strict';

import { dropPosition, place, resizeTo } from '../src/layout.js';

test('a dragged panel lands on the nearest grid cell, inside the 24 columns', () => {
  const pos = { x: 0, y: 0, w: 12, h: 4 };
  // 24 columns of 50 px with 8 px gaps: 1384 px wide; a column is 58 px, a row 38 px.
  assert.deepEqual(dropPosition(pos, 6 * 58 + 20, 3 * 38 - 15, 1384), { x: 6, y: 3, w: 12, h: 4 });
  assert.deepEqual(dropPosition(pos, 5000, -500, 1384), { x: 12, y: 0, w: 12, h: 4 });
});

test('placing a panel pushes the ones under it down, in a chain', () => {
  const a = { id: 1, gridPos: { x: 12, y: 0, w: 12, h: 4 } };
  const b = { id: 2, gridPos: { x: 12, y: 0, w: 12, h: 4 } };
  const c = { id: 3, gridPos: { x: 0, y: 4, w: 24, h: 2 } };
  const d = { id: 4, gridPos: { x: 0, y: 0, w: 6, h: 2 } };
  const pushed = place([a, b, c, d], a);
  assert.deepEqual(b.gridPos, { x: 12, y: 4, w: 12, h: 4 });
  assert.deepEqual(c.gridPos, { x: 0, y: 8, w: 24, h: 2 }, 'pushed below b');
  assert.deepEqual(d.gridPos, { x: 0, y: 0, w: 6, h: 2 }, 'not in the way: stays');
  assert.deepEqual(pushed.map((p) => p.id), [2, 3]);
});

test('a resized panel snaps to whole cells, keeps its place and stays inside the grid', () => {
  const pos = { x: 6, y: 2, w: 12, h: 4 };
  // As above: a column is 58 px, a row 38 px.
  assert.deepEqual(resizeTo(pos, -4 * 58 - 20, 2 * 38 + 15, 1384), { x: 6, y: 2, w: 8, h: 6 });
  assert.deepEqual(resizeTo(pos, 5000, 0, 1384), { x: 6, y: 2, w: 18, h: 4 }, 'up to the 24th column');
  assert.deepEqual(resizeTo(pos, -5000, -5000, 1384), { x: 6, y: 2, w: 1, h: 1 }, 'at least one cell');
});

test('a panel grown over others pushes them down', () => {
  const a = { id: 1, gridPos: { x: 0, y: 0, w: 12, h: 4 } };
  const b = { id: 2, gridPos: { x: 0, y: 4, w: 12, h: 4 } };
  const c = { id: 3, gridPos: { x: 12, y: 0, w: 12, h: 4 } };
  a.gridPos = resizeTo(a.gridPos, 0, 2 * 38, 1384);
  assert.deepEqual(place([a, b, c], a).map((p) => p.id), [2]);
  assert.deepEqual(b.gridPos, { x: 0, y: 6, w: 12, h: 4 });
  assert.deepEqual(c.gridPos, { x: 12, y: 0, w: 12, h: 4 }, 'beside it: stays');
});
