// Unit tests of the front-end's pure modules (node --test; run by
// tests/dashboard_js.rs).

import test from 'node:test';
import assert from 'node:assert/strict';
import { markdown } from '../src/markdown.js';
import { fmt } from '../src/units.js';
import { toMs } from '../src/time.js';
import { completionContext, buildPromQL, parseThresholds } from '../src/editor.js';
import { addFilter } from '../src/logs.js';

test('markdown renders the basics and no raw HTML', () => {
  const html = markdown('# Title\nSome **bold** and *it* `code`\n\n- a\n- [b](https://x.example/?q=1&r=2)');
  assert.match(html, /<h1>Title<\/h1>/);
  assert.match(html, /<strong>bold<\/strong>/);
  assert.match(html, /<em>it<\/em>/);
  assert.match(html, /<code>code<\/code>/);
  assert.match(html, /<ul><li>a<\/li><li><a href="https:\/\/x.example\/\?q=1&amp;r=2" rel="noopener noreferrer">b<\/a><\/li><\/ul>/);
  const evil = markdown('<img src=x onerror=alert(1)> <script>alert(2)</script> [x](javascript:alert(3)) [y]("onmouseover=alert(4))');
  assert.doesNotMatch(evil, /<img|<script|javascript:|href="&quot;/);
  assert.match(evil, /&lt;img src=x onerror=alert\(1\)&gt;/);
});

test('units format like the server', () => {
  assert.equal(fmt(1.5 * 1024 ** 3, 'bytes'), '1.5 GiB');
  assert.equal(fmt(2048, 'Bps'), '2 KiB/s');
  assert.equal(fmt(42.123, 'percent'), '42.1%');
  assert.equal(fmt(0.5, 'percentunit'), '50%');
  assert.equal(fmt(0.25, 's'), '250 ms');
  assert.equal(fmt(0.98, 'cores'), '0.98 cores');
  assert.equal(fmt(12500, 'short'), '12.5K');
  assert.equal(fmt(null, 'bytes'), '–');
});

test('relative and absolute times', () => {
  const now = 1_790_000_000_000;
  assert.equal(toMs('now', now), now);
  assert.equal(toMs('now-6h', now), now - 6 * 3600e3);
  assert.equal(toMs('now-15m', now), now - 15 * 60e3);
  assert.equal(toMs('1790000000000', now), 1_790_000_000_000);
  assert.equal(toMs('2026-01-01T00:00:00Z', now), Date.UTC(2026, 0, 1));
  assert.throws(() => toMs('yesterday', now), /cannot read/);
});

test('completion knows metrics, labels and label values', () => {
  assert.deepEqual(completionContext('rate(container_cpu', 18), { kind: 'metric', word: 'container_cpu' });
  assert.deepEqual(completionContext('up{na', 5), { kind: 'label', word: 'na' });
  assert.deepEqual(completionContext('up{namespace="ku', 16), { kind: 'value', label: 'namespace', word: 'ku' });
  assert.deepEqual(completionContext('sum by (po', 10), { kind: 'label', word: 'po' });
});

test('the builder writes PromQL', () => {
  assert.equal(buildPromQL({ metric: 'container_cpu_usage_seconds_total', fn: 'rate', window: '5m', agg: 'sum', by: 'pod, node', where: [{ label: 'namespace', op: '=', value: 'prod' }] }),
    'sum by (pod, node) (rate(container_cpu_usage_seconds_total{namespace="prod"}[5m]))');
  assert.equal(buildPromQL({ metric: 'up', fn: 'none', agg: 'none', where: [{ label: 'job', op: '=~', value: 'a"b' }] }), 'up{job=~"a\\"b"}');
  assert.equal(buildPromQL({ metric: '' }), '');
});

test('thresholds parse with a base step', () => {
  assert.deepEqual(parseThresholds('green, 80:orange, 90:red'), [{ value: null, color: 'green' }, { value: 80, color: 'orange' }, { value: 90, color: 'red' }]);
  assert.deepEqual(parseThresholds('0.5:red'), [{ value: null, color: 'green' }, { value: 0.5, color: 'red' }]);
  assert.throws(() => parseThresholds('x:red'), /not a number/);
});

test('clicking a field adds a filter once', () => {
  assert.equal(addFilter('', 'pod', 'web'), 'pod:"web"');
  assert.equal(addFilter('error', 'namespace', 'a"b'), 'error AND namespace:"a\\"b"');
  assert.equal(addFilter('pod:"web"', 'pod', 'web'), 'pod:"web"');
});
