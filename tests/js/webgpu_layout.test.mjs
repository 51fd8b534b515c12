// Weights over the adapter's maxBufferSize split into buffers of whole tensors (backends/webgpu_layout.js).
import assert from 'node:assert/strict';
import test from 'node:test';

import { bufferSizes, inChunk } from '../../web_runtime/backends/webgpu_layout.js';

const limits = (maxBufferSize) => ({ maxBufferSize, minStorageBufferOffsetAlignment: 256 });
const tensorsOf = (list) => new Map(list.map(([offset, bytes], id) => [id, { id, name: `t${id}`, storage: 'weight', offset, bytes }]));
const manifest = { memory: { arena_bytes: 1024 } };

test('weights that fit stay in one buffer', () => {
  const t = tensorsOf([[0, 1000], [1024, 500]]);
  assert.deepEqual(bufferSizes({ manifest, tensors: t }, 1536, limits(4096)).chunks, [{ start: 0, end: 1536 }]);
});

test('weights over maxBufferSize split at tensor starts, aliases stay with their tensor', () => {
  // 3 tensors of 1 KiB + an alias of the first one's bytes; buffers of at most 2 KiB.
  const t = tensorsOf([[0, 1024], [1024, 1024], [2048, 1024], [0, 512]]);
  const { chunks } = bufferSizes({ manifest, tensors: t }, 3072, limits(2048));
  assert.deepEqual(chunks, [{ start: 0, end: 2048 }, { start: 2048, end: 3072 }]);
  assert.deepEqual(inChunk(chunks, 1024), { storage: 'weight0', offset: 1024 });
  assert.deepEqual(inChunk(chunks, 2048), { storage: 'weight1', offset: 0 });
});

test('a single tensor over maxBufferSize is a BackendError naming the limit', () => {
  const t = tensorsOf([[0, 4096], [4096, 256]]);
  assert.throws(() => bufferSizes({ manifest, tensors: t }, 4352, limits(2048)), /over this adapter's maxBufferSize 2048/);
});
