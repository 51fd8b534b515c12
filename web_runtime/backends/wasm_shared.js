// Kernels declare their one import as `(memory 1)`; a threaded session gives them a *shared*
// memory, and a module links to a shared memory only when its import says `shared` with a maximum.
// Rather than shipping a second build of every kernel, the import's limits are rewritten here
// (after the sha256 check of the original bytes): the code section is untouched.
import { BundleError } from '../errors.js';

function readU32(bytes, pos) {
  let result = 0;
  let shift = 0;
  for (;;) {
    if (pos >= bytes.length || shift > 28) throw new BundleError('malformed LEB128 in a kernel module');
    const b = bytes[pos++];
    result |= (b & 0x7f) << shift;
    if (!(b & 0x80)) return [result >>> 0, pos];
    shift += 7;
  }
}

function u32(n) {
  const out = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

/** A copy of `bytes` whose memory import is `(memory min maxPages shared)`. */
export function withSharedMemoryImport(bytes, maxPages, file = 'kernel') {
  const src = new Uint8Array(bytes);
  let pos = 8;
  while (pos < src.length) {
    const id = src[pos];
    const [size, body] = readU32(src, pos + 1);
    const end = body + size;
    if (id === 2) {
      let p = body;
      let count;
      [count, p] = readU32(src, p);
      for (let i = 0; i < count; i++) {
        for (let s = 0; s < 2; s++) { // module and field names
          let len;
          [len, p] = readU32(src, p);
          p += len;
        }
        const kind = src[p++];
        if (kind === 0x02) {
          const flagAt = p;
          const flag = src[p++];
          let min;
          [min, p] = readU32(src, p);
          if (flag & 1) [, p] = readU32(src, p);
          const limits = [0x03, ...u32(min), ...u32(maxPages)];
          const newBody = [...src.subarray(body, flagAt), ...limits, ...src.subarray(p, end)];
          const out = [...src.subarray(0, pos), 2, ...u32(newBody.length), ...newBody, ...src.subarray(end)];
          return new Uint8Array(out).buffer;
        }
        if (kind === 0x00) [, p] = readU32(src, p); // function import: type index
        else throw new BundleError(`${file}: imports something other than env.memory`);
      }
    }
    pos = end;
  }
  throw new BundleError(`${file}: has no memory import to share`);
}
