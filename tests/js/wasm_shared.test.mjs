// Rewriting a kernel's memory import to shared: the module links to a shared memory and computes
// the same as the original on a plain one (the kernel comes from tests/test_js_units.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { withSharedMemoryImport } from '../../web_runtime/backends/wasm_shared.js';

const path = process.env.NNJIT_TEST_KERNEL;

test('a kernel with a shared memory import links to a shared memory and computes the same', { skip: !path && 'NNJIT_TEST_KERNEL not set' }, async () => {
  const bytes = readFileSync(path);
  const plainMem = new WebAssembly.Memory({ initial: 2 });
  await assert.rejects(WebAssembly.instantiate(bytes, { env: { memory: new WebAssembly.Memory({ initial: 2, maximum: 2, shared: true }) } }));
  const shared = withSharedMemoryImport(bytes, 2);
  assert.ok(WebAssembly.validate(shared));
  const sharedMem = new WebAssembly.Memory({ initial: 2, maximum: 2, shared: true });
  const a = (await WebAssembly.instantiate(bytes, { env: { memory: plainMem } })).instance.exports.run;
  const b = (await WebAssembly.instantiate(shared, { env: { memory: sharedMem } })).instance.exports.run;
  // The kernel is a relu over 37 floats at 0 → 1024 (see the Python side).
  for (const mem of [plainMem, sharedMem]) {
    const x = new Float32Array(mem.buffer, 0, 37);
    for (let i = 0; i < 37; i++) x[i] = i - 18.5;
  }
  a(0, 1024);
  b(0, 1024);
  const ya = new Float32Array(plainMem.buffer, 1024, 37);
  const yb = new Float32Array(sharedMem.buffer, 1024, 37);
  assert.deepEqual(Array.from(yb), Array.from(ya));
  assert.equal(ya[0], 0);
  assert.equal(ya[36], 17.5);
});

test('a module without a memory import is refused with a named error', () => {
  const empty = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
  assert.throws(() => withSharedMemoryImport(empty, 1, 'k9.wasm'), /k9.wasm: has no memory import/);
});
