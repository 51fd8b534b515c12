// The thread pool spins between split steps only when every thread has a core of its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spinMs } from '../../web_runtime/backends/wasm_threads.js';

test('threads within the cores spin, more threads than cores sleep at once', () => {
  assert.equal(spinMs(1, 2), 1);
  assert.equal(spinMs(2, 2), 1);
  assert.equal(spinMs(3, 2), 0);
  assert.equal(spinMs(4, 2), 0);
  assert.equal(spinMs(8, 16), 1);
});
