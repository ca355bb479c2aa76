// The alert forms' matcher reader (node --test; run by tests/dashboard_js.rs).

import test from 'node:test';
import assert from 'node:assert/strict';
import { parseMatchers } from '../src/matchers.js';

test('matchers split on commas and new lines, every operator kept', () => {
  assert.deepEqual(parseMatchers('namespace="prod", pod=~"web.*"\ncontainer!="", node !~ "n[0-9]"'),
    ['namespace="prod"', 'pod=~"web.*"', 'container!=""', 'node!~"n[0-9]"']);
  assert.deepEqual(parseMatchers('  '), []);
  assert.deepEqual(parseMatchers('msg="a, \\"b\\""'), ['msg="a, \\"b\\""']);
});

test('a malformed matcher is an error that quotes where reading stopped', () => {
  assert.throws(() => parseMatchers('pod=busy'), /scope: cannot read a matcher at "pod=busy"/);
  assert.throws(() => parseMatchers('a="1" b="2"'), /cannot read a matcher/);
});
