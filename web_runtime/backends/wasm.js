// The WebAssembly SIMD backend: one linear memory holds weights and the arena at the addresses the
// compiler planned; each step calls its kernel's `run` with the byte addresses of its tensors.
import { BackendError, BundleError, InputError } from '../errors.js';

// (module (func (param v128) (result v128) local.get 0 local.get 0 local.get 0 f32x4.relaxed_madd)),
// assembled by wasmtime.wat2wasm. validate() accepts it exactly where relaxed SIMD is enabled.
const RELAXED_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 6, 1, 96, 1, 123, 1, 123, 3, 2, 1, 0, 10, 13, 1, 11, 0, 32, 0, 32,
  0, 32, 0, 253, 133, 2, 11,
]);

export const relaxedSimdSupported = () => WebAssembly.validate(RELAXED_PROBE);

const PAGE_BYTES = 65536;

async function instantiateKernel({ file, entry, bytes }, memory) {
  let module;
  try {
    module = await WebAssembly.compile(bytes);
  } catch (e) {
    throw new BundleError(`${file}: not a valid WebAssembly module (${e.message})`);
  }
  let instance;
  try {
    instance = await WebAssembly.instantiate(module, { env: { memory } });
  } catch (e) {
    throw new BundleError(`${file}: cannot link with the only import a kernel may have, env.memory (${e.message})`);
  }
  const fn = instance.exports[entry];
  if (typeof fn !== 'function') throw new BundleError(`${file}: exports no function "${entry}"`);
  return fn;
}

export class WasmBackend {
  /** `bundle` is what loadBundle() returned. */
  static async create({ manifest, tensors, plan, weights, kernels }) {
    const { memory: mem } = manifest;
    const addrOf = (t) => (t.storage === 'weight' ? mem.weights_base : mem.arena_base) + t.offset;
    if (mem.weights_base + weights.byteLength > mem.total_bytes) {
      throw new BundleError(`manifest.json: weights (${weights.byteLength} bytes at ${mem.weights_base}) exceed memory.total_bytes ${mem.total_bytes}`);
    }
    for (const t of tensors.values()) {
      // A kernel that addressed past the memory would trap on its first run; say which tensor is wrong now.
      const end = addrOf(t) + t.bytes;
      if (!(addrOf(t) >= 0 && end <= mem.total_bytes)) {
        throw new BundleError(`manifest.json: tensor ${t.id} (${t.name}) spans [${addrOf(t)}, ${end}) outside memory.total_bytes ${mem.total_bytes}`);
      }
    }

    let memory;
    try {
      memory = new WebAssembly.Memory({ initial: Math.ceil(mem.total_bytes / PAGE_BYTES) });
    } catch (e) {
      throw new BackendError(`cannot allocate ${mem.total_bytes} bytes of WebAssembly memory (${e.message})`);
    }
    new Uint8Array(memory.buffer, mem.weights_base, weights.byteLength).set(new Uint8Array(weights));

    const t0 = performance.now();
    const ids = [...kernels.keys()];
    const fns = await Promise.all(ids.map((id) => instantiateKernel(kernels.get(id), memory)));
    const fnOf = new Map(ids.map((id, i) => [id, fns[i]]));
    const compileMs = performance.now() - t0;

    const calls = manifest.steps.map((step, i) => {
      const fn = fnOf.get(plan[i]);
      if (fn.length !== step.args.length) {
        throw new BundleError(`manifest.json: step ${step.id} passes ${step.args.length} arguments to kernel ${plan[i]}, which takes ${fn.length}`);
      }
      return { fn, args: step.args.map((a) => addrOf(tensors.get(a))), step, kernel: plan[i] };
    });
    const io = (list) => list.map((v) => ({ name: v.name, addr: addrOf(tensors.get(v.tensor)), bytes: tensors.get(v.tensor).bytes }));
    return new WasmBackend(memory, calls, io(manifest.inputs), io(manifest.outputs), compileMs);
  }

  constructor(memory, calls, inputs, outputs, compileMs) {
    this.memory = memory;
    this.calls = calls;
    this.inputs = inputs;
    this.outputs = outputs;
    this.compileMs = compileMs;
    /** Always null: only a GPU backend can fail under the session (see engine.js). */
    this.failure = null;
  }

  destroy() {
    this.memory = null;
  }

  /** `feeds`: input name → ArrayBuffer holding exactly the tensor's bytes. Returns output name → ArrayBuffer (copies). */
  run(feeds) {
    this.#write(feeds);
    const { calls } = this;
    let i = 0;
    try {
      for (; i < calls.length; i++) calls[i].fn(...calls[i].args);
    } catch (e) {
      throw this.#stepError(i, e);
    }
    const out = {};
    for (const { name, addr, bytes } of this.outputs) out[name] = this.memory.buffer.slice(addr, addr + bytes);
    return out;
  }

  /** Time every step `runs` times on `feeds`; the median per step, in manifest order. */
  profile(feeds, runs) {
    this.#write(feeds);
    const { calls } = this;
    const times = calls.map(() => []);
    for (let r = 0; r < runs; r++) {
      for (let i = 0; i < calls.length; i++) {
        const t0 = performance.now();
        try {
          calls[i].fn(...calls[i].args);
        } catch (e) {
          throw this.#stepError(i, e);
        }
        times[i].push(performance.now() - t0);
      }
    }
    const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
    return calls.map(({ step, kernel }, i) => ({
      step: step.id, op: step.op, node: step.node ?? '', family: step.family ?? '', kernel, ms: median(times[i]),
    }));
  }

  #stepError(i, e) {
    const { step, kernel } = this.calls[i];
    return new BackendError(`step ${step.id} (${step.op} ${step.node ?? ''}, kernel ${kernel}) failed: ${e.message}`);
  }

  #write(feeds) {
    const heap = new Uint8Array(this.memory.buffer);
    for (const { name, addr, bytes } of this.inputs) {
      const buf = feeds[name];
      if (!buf || buf.byteLength !== bytes) {
        throw new InputError(`input "${name}": expected ${bytes} bytes, got ${buf ? buf.byteLength : 'nothing'}`);
      }
      heap.set(new Uint8Array(buf), addr);
    }
  }
}
