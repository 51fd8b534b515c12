// String tensors and passthrough values on the page (web_runtime/values.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StringTable, decodeStrings, encodeStrings, takePassthrough } from '../../web_runtime/values.js';
import { InputError } from '../../web_runtime/errors.js';

test('one table per run: the model constants first, new strings after, decoded back', () => {
  const table = new StringTable(['cat', 'dog']);
  const spec = { name: 'a', shape: [2, 2] };
  const ids = new Int32Array(encodeStrings(spec, ['dog', 'émigré', '', 'dog'], table));
  assert.deepEqual([...ids], [1, 2, 3, 1]);
  assert.deepEqual(decodeStrings(ids, table), ['dog', 'émigré', '', 'dog']);
  assert.deepEqual([...new Int32Array(encodeStrings(spec, { data: ['cat', 'x', 'x', 'y'], dims: [2, 2] }, table))], [0, 4, 4, 5]);
});

test('bad string feeds are InputErrors naming the input', () => {
  const t = new StringTable();
  const spec = { name: 'a', shape: [3] };
  assert.throws(() => encodeStrings(spec, new Float32Array(3), t), (e) => e instanceof InputError && e.message === 'input "a": expected string data (string[]), got Float32Array');
  assert.throws(() => encodeStrings(spec, ['a', 'b'], t), /input "a": expected 3 strings \(\[3\]\), got 2/);
  assert.throws(() => encodeStrings(spec, { data: ['a', 'b', 'c'], dims: [1, 3] }, t), /input "a": expected dims \[3\], got \[1, 3\]/);
  assert.throws(() => encodeStrings(spec, ['a', 1, 'c'], t), /expected string data/);
});

const SEQ = { kind: 'sequence', elem: { kind: 'tensor', dtype: 'float32', shape: null } };
const OPT = { kind: 'optional', elem: { kind: 'tensor', dtype: 'int32', shape: [2] } };
const ENTRIES = [{ input: 's', output: 's2', type: SEQ }, { input: 'o', output: 'o2', type: OPT }];

test('passthrough values are checked, copied and handed back under their outputs', () => {
  const x = { data: new Float32Array([1, 2, 3]), dims: [3] };
  const { rest, outputs } = takePassthrough(ENTRIES, { a: 1, s: [x], o: { data: new Int32Array([4, 5]), dims: [2] } });
  assert.deepEqual(rest, { a: 1 });
  assert.deepEqual(outputs.s2, [{ data: new Float32Array([1, 2, 3]), dims: [3], dtype: 'float32' }]);
  assert.notEqual(outputs.s2[0].data, x.data); // a copy: the caller's array stays theirs
  assert.deepEqual(outputs.o2, { data: new Int32Array([4, 5]), dims: [2], dtype: 'int32' });
  assert.equal(takePassthrough(ENTRIES, { s: [] }).outputs.o2, null); // an optional may be left out
});

test('bad passthrough feeds are InputErrors naming the input and the item', () => {
  const bad = (feeds, re) => assert.throws(() => takePassthrough(ENTRIES, feeds), (e) => e instanceof InputError && re.test(e.message));
  bad({ o: null }, /missing input "s": expected sequence\(tensor\(float32\)\)/);
  bad({ s: { data: new Float32Array(1), dims: [1] } }, /input "s": expected a sequence \(an array\) of tensor\(float32\), got object/);
  bad({ s: [{ data: new Int32Array(1), dims: [1] }] }, /input "s"\[0\]: expected \{data: Float32Array, dims\}/);
  bad({ s: [], o: { data: new Int32Array(3), dims: [3] } }, /input "o": expected shape tensor\(int32 \[2\]\) holding its data, got dims \[3\]/);
  bad({ s: [{ data: new Float32Array(4), dims: [3] }] }, /input "s"\[0\]: .* got dims \[3\] for 4 elements/);
});

test('prepareFeeds interns string inputs and keeps the table off the transferable buffers', async () => {
  const { prepareFeeds } = await import('../../web_runtime/feeds.js');
  const inputs = [{ name: 'a', dtype: 'int32', shape: [3], encoding: 'string' }, { name: 'x', dtype: 'float32', shape: [2] }];
  const out = prepareFeeds({ a: ['q', 'cat', 'q'], x: [1, 2] }, inputs, ['cat']);
  assert.deepEqual([...new Int32Array(out.a)], [1, 0, 1]);
  assert.deepEqual(out.table.strings, ['cat', 'q']);
  assert.equal(Object.values(out).length, 2); // not enumerable: never posted or transferred
  assert.throws(() => prepareFeeds({ a: new Int32Array(3), x: [1, 2] }, inputs, []), /input "a": expected string data \(string\[\]\), got Int32Array/);
  assert.throws(() => prepareFeeds({ x: [1, 2] }, inputs, []), /missing input "a": expected string \[3\]/);
});
