// Full-jitter backoff: bounds (0.5 s .. 20 s by default), growth of the ceiling, reset.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Backoff } from '../dist/index.js';

test('defaults are 500 ms .. 20 s and every delay stays inside them', () => {
  const b = new Backoff();
  assert.equal(b.minMs, 500);
  assert.equal(b.maxMs, 20_000);
  for (let i = 0; i < 2000; i++) {
    const d = b.next();
    assert.ok(d >= 500 && d <= 20_000, `delay ${d} out of bounds`);
  }
});

test('the ceiling doubles per attempt up to the maximum (random = 1 - ε)', () => {
  const b = new Backoff({ minMs: 500, maxMs: 20_000 }, () => 0.999999);
  const seen = Array.from({ length: 9 }, () => b.next());
  assert.deepEqual(seen, [499, 999, 1999, 3999, 7999, 15999, 19999, 19999, 19999].map((x) => Math.max(500, x)));
});

test('full jitter: random 0 gives the floor, reset starts over', () => {
  let r = 0;
  const b = new Backoff({ minMs: 500, maxMs: 20_000 }, () => r);
  assert.equal(b.next(), 500);
  r = 0.5;
  assert.equal(b.next(), 500); // 0.5 × 1000, floored at min
  assert.equal(b.next(), 1000); // 0.5 × 2000
  b.reset();
  r = 0.999;
  assert.ok(b.next() <= 500);
});

test('the delays are spread, not a fixed schedule', () => {
  const b = new Backoff();
  for (let i = 0; i < 8; i++) b.next();
  const samples = new Set(Array.from({ length: 50 }, () => b.next()));
  assert.ok(samples.size > 40, `only ${samples.size} distinct delays`);
});
