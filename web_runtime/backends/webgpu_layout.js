// Where every binding of every step lives in the WebGPU backend's buffers, decided once at load
// time from the manifest and each kernel's WGSL. Pure functions: no GPU calls here.
import { describeStep } from '../bundle.js';
import { BackendError, BundleError } from '../errors.js';

export const pad4 = (n) => Math.ceil(Math.max(n, 4) / 4) * 4;
const alignUp = (n, a) => Math.ceil(n / a) * a;

// Comments blanked out character by character, so compiler messages keep their line and column.
const stripComments = (src) => src.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, (c) => c.replace(/[^\n]/g, ' '));
const STORAGE_VAR = /var\s*<\s*storage\s*(?:,\s*(read_write|read)\s*)?>/g;

/**
 * The kernel's storage bindings (index → writable, all in group 0, numbered 0..n-1 per
 * docs/kernels_wgsl.md) and its source with every storage variable declared read_write.
 *
 * Why the rewrite: inputs and outputs of a dispatch are ranges of the same arena buffer, and
 * WebGPU forbids one buffer in both a read-only and a writable binding of a dispatch (Dawn: "includes
 * writable usage and another usage in the same synchronization scope"; wgpu likewise). With every
 * binding read_write the only rule left is that bindings must not overlap (see planSteps).
 */
export function parseKernel(source, file) {
  const code = stripComments(source);
  const writable = [];
  for (const m of code.matchAll(STORAGE_VAR)) {
    const start = Math.max(code.lastIndexOf(';', m.index), code.lastIndexOf('}', m.index)) + 1;
    const attrs = code.slice(start, m.index);
    const group = /@group\s*\(\s*(\d+)u?\s*\)/.exec(attrs);
    const binding = /@binding\s*\(\s*(\d+)u?\s*\)/.exec(attrs);
    if (!group || !binding) throw new BundleError(`${file}: a storage variable has no @group/@binding attribute`);
    if (group[1] !== '0') throw new BundleError(`${file}: @group(${group[1]}) is used; kernels bind everything in group 0`);
    writable[Number(binding[1])] = m[1] === 'read_write';
  }
  const missing = [...writable.keys()].filter((i) => writable[i] === undefined);
  if (missing.length) throw new BundleError(`${file}: bindings must be numbered 0..n-1, ${missing.join(', ')} missing`);
  return { writable, code: code.replace(STORAGE_VAR, 'var<storage, read_write>') };
}

function checkTensor(t, end, where, align) {
  if (!(Number.isInteger(t.offset) && t.offset >= 0 && t.offset + t.bytes <= end)) {
    throw new BundleError(`manifest.json: tensor ${t.id} (${t.name}) spans [${t.offset}, ${t.offset + t.bytes}) outside the ${where} (${end} bytes)`);
  }
  if (t.offset % align) {
    throw new BundleError(`manifest.json: tensor ${t.id} (${t.name}) is at ${where} offset ${t.offset}, not a multiple of this adapter's `
      + `minStorageBufferOffsetAlignment ${align}: the bundle predates 256-byte tensor alignment, recompile it`);
  }
}

/**
 * Byte sizes of the arena buffer and of the weights, which live in as many buffers ("chunks") as the
 * adapter's maxBufferSize requires, each holding whole tensors: {arena, weight, chunks: [{start, end}]}.
 */
export function bufferSizes({ manifest, tensors }, weightsBytes, limits) {
  const arenaBytes = manifest.memory.arena_bytes;
  if (!Number.isInteger(arenaBytes)) throw new BundleError('manifest.json: "memory.arena_bytes" is missing');
  const sizes = { weight: pad4(weightsBytes), arena: pad4(arenaBytes) };
  for (const t of tensors.values()) {
    checkTensor(t, t.storage === 'weight' ? weightsBytes : arenaBytes, t.storage === 'weight' ? 'weights' : 'arena',
      limits.minStorageBufferOffsetAlignment);
    sizes[t.storage] = Math.max(sizes[t.storage], t.offset + pad4(t.bytes));
  }
  if (sizes.arena > limits.maxBufferSize) {
    throw new BackendError(`the arena buffer needs ${sizes.arena} bytes, over this adapter's maxBufferSize ${limits.maxBufferSize}`);
  }
  sizes.chunks = weightChunks(tensors, sizes.weight, limits.maxBufferSize);
  return sizes;
}

/** Split [0, total) of the weights at tensor starts into ranges of at most `max` bytes. */
function weightChunks(tensors, total, max) {
  if (total <= max) return [{ start: 0, end: total }];
  const spans = [...tensors.values()].filter((t) => t.storage === 'weight').map((t) => [t.offset, t.offset + pad4(t.bytes)]);
  spans.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  const chunks = [];
  let cur = null;
  for (const [lo, hi] of spans) {
    if (hi - lo > max) throw new BackendError(`a weight tensor of ${hi - lo} bytes is over this adapter's maxBufferSize ${max}`);
    if (cur && hi <= cur.end) continue; // an alias of bytes already placed
    if (cur && Math.max(cur.end, hi) - cur.start <= max) {
      cur.end = Math.max(cur.end, hi);
    } else {
      if (cur && lo < cur.end) throw new BackendError(`weight tensors overlapping at byte ${lo} cannot be split across buffers of ${max} bytes`);
      cur = { start: lo, end: hi };
      chunks.push(cur);
    }
  }
  return chunks.length ? chunks : [{ start: 0, end: Math.min(total, max) }];
}

/** {storage: 'weight<k>', offset} of a weights range in its chunk. */
export function inChunk(chunks, offset) {
  const k = chunks.findIndex((c) => offset >= c.start && offset < c.end);
  return { storage: `weight${k}`, offset: offset - chunks[k].start };
}

const overlaps = (a, b) => a.storage === b.storage && a.offset < b.offset + b.size && b.offset < a.offset + a.size;

/**
 * Per step: its bindings [{tensor, storage: 'weight'|'arena'|'scratch', offset, size}] and the
 * copies into scratch to make before its dispatch. A binding that overlaps another of the same
 * dispatch (x·x, an in-place op) is a validation error in WebGPU, so an overlapping *input* is
 * read from its own copy in a scratch buffer; two overlapping outputs are a bundle error. Returns
 * {steps, scratchBytes} (scratch is reused by every step: it only lives for one dispatch).
 */
export function planSteps({ manifest, tensors }, plan, kernels, limits, stepList = manifest.steps) {
  let scratchBytes = 0;
  const steps = stepList.map((step, i) => {
    const kernel = kernels.get(plan[i]);
    if (kernel.writable.length !== step.args.length) {
      throw new BundleError(`manifest.json: ${describeStep(step)} passes ${step.args.length} arguments to kernel ${plan[i]}, `
        + `whose shader declares ${kernel.writable.length} bindings`);
    }
    if (step.args.length > limits.maxStorageBuffersPerShaderStage) {
      throw new BackendError(`${describeStep(step)} binds ${step.args.length} buffers, over this adapter's maxStorageBuffersPerShaderStage ${limits.maxStorageBuffersPerShaderStage}`);
    }
    const binds = step.args.map((id, j) => {
      const t = tensors.get(id);
      const b = { tensor: t, storage: t.storage, offset: t.offset, size: pad4(t.bytes), write: kernel.writable[j] };
      if (b.size > limits.maxStorageBufferBindingSize) {
        throw new BackendError(`${describeStep(step)}: tensor ${t.id} (${t.name}) needs a ${b.size}-byte binding, `
          + `over this adapter's maxStorageBufferBindingSize ${limits.maxStorageBufferBindingSize}`);
      }
      return b;
    });
    const kept = [];
    for (const b of binds.filter((x) => x.write)) {
      const other = kept.find((k) => overlaps(k, b));
      if (other) throw new BundleError(`manifest.json: ${describeStep(step)} writes tensors ${other.tensor.id} and ${b.tensor.id}, which overlap`);
      kept.push(b);
    }
    const copies = [];
    let scratch = 0;
    for (const b of binds.filter((x) => !x.write)) {
      if (!kept.some((k) => overlaps(k, b))) {
        kept.push(b);
        continue;
      }
      copies.push({ storage: b.storage, offset: b.offset, to: scratch, size: b.size });
      Object.assign(b, { storage: 'scratch', offset: scratch });
      scratch = alignUp(scratch + b.size, limits.minStorageBufferOffsetAlignment);
    }
    scratchBytes = Math.max(scratchBytes, scratch);
    const { dispatch } = kernel;
    if (dispatch.some((d) => d > limits.maxComputeWorkgroupsPerDimension)) {
      throw new BackendError(`kernel ${plan[i]} dispatches ${JSON.stringify(dispatch)} workgroups, over this adapter's maxComputeWorkgroupsPerDimension ${limits.maxComputeWorkgroupsPerDimension}`);
    }
    return { step, kernel: plan[i], binds, copies, dispatch };
  });
  return { steps, scratchBytes };
}
