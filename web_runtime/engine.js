// One loaded session, independent of where it runs: the worker drives it by messages, the
// {worker: false} fallback calls it directly on the page's thread.
//
// Backends: 'wasm'; 'webgpu' (BackendError where there is no adapter); 'auto' (webgpu where an
// adapter exists and the bundle has webgpu kernels, else wasm). A WebGPU session also fetches and
// verifies the wasm kernels up front (small, and a tampered one fails at create, not mid-session)
// but not a second copy of the weights: when the GPU fails (device lost, a GPU error), the engine
// re-fetches weights.bin, builds the wasm backend and re-runs the request that failed on it.
import { fetchKernel, fetchWeights, loadBundle, openBundle, webgpuGap } from './bundle.js';
import { WasmBackend, relaxedSimdSupported } from './backends/wasm.js';
import { GpuFailure, WebGPUBackend, requestGpu } from './backends/webgpu.js';
import { BackendError, InputError } from './errors.js';
import { startTuning } from './tune_session.js';
import { generate } from './generate.js';
import { prepareMoe } from './moe.js';
import { attachMoe } from './moe_swap.js';
import { attachSwitch, pickStrategy } from './lora_switch.js';

const BACKENDS = ['wasm', 'webgpu', 'auto'];

async function pickBackend(opened, requested) {
  if (requested === 'wasm') return { gpu: null, reason: null };
  if (requested === 'webgpu') return { gpu: await requestGpu(), reason: null };
  const gap = webgpuGap(opened);
  if (gap) return { gpu: null, reason: gap };
  try {
    return { gpu: await requestGpu(), reason: null };
  } catch (e) {
    if (e instanceof BackendError) return { gpu: null, reason: e.message };
    throw e;
  }
}

/** 'cpu' for adapters that emulate a GPU on the CPU (the bundle may carry schedules made for them), else 'gpu'. */
function deviceClassOf(info) {
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  return info.fallbackAdapter || /swiftshader|llvmpipe|lavapipe/i.test(text) ? 'cpu' : 'gpu';
}

/**
 * `tune`: {budgetMs} (default 30000; 0 = off). `emit(event, data)` receives the tuner's 'progress'
 * and 'tuned' events (the worker forwards them to the page).
 */
/**
 * How many threads a wasm session gets: `requested` (default: the device's cores, and never more) where
 * the page allows shared memory, else 1, with the reason.
 */
function threadCount(requested) {
  const want = requested ?? globalThis.navigator?.hardwareConcurrency ?? 1;
  if (!Number.isInteger(want) || want < 1 || want > 64) throw new BackendError(`threads must be an integer from 1 to 64, got ${JSON.stringify(requested)}`);
  if (want === 1) return { threads: 1, reason: null };
  let reason = null;
  if (!globalThis.crossOriginIsolated || typeof SharedArrayBuffer !== 'function') {
    reason = 'the page is not cross-origin isolated (serve it with COOP: same-origin and COEP: require-corp), so there is no shared memory';
  }
  if (reason) {
    console.warn(`nnjit: running wasm on 1 thread instead of ${want}: ${reason}`);
    return { threads: 1, reason };
  }
  // More threads than cores only queue for them: every split step waits for its slowest part, and a
  // part whose thread has no core waits a whole time slice (Firefox, 4 threads on 2 cores: a model
  // that took 0.1 ms stalled for minutes). Run one thread per core.
  const cores = globalThis.navigator?.hardwareConcurrency;
  if (Number.isInteger(cores) && cores >= 1 && want > cores) {
    reason = `${want} threads requested, the device has ${cores} cores: running ${cores}`;
    console.warn(`nnjit: ${reason}`);
    return { threads: cores, reason };
  }
  return { threads: want, reason: null };
}

export async function createEngine(url, { backend = 'wasm', relaxedSimd, tune = {}, threads: requestedThreads, moe = null } = {}, emit = () => {}) {
  if (!BACKENDS.includes(backend)) {
    throw new BackendError(`backend "${backend}" is not available (available: ${BACKENDS.join(', ')})`);
  }
  // A parameter committee (docs/moe.md) rewrites slot tables and swaps between steps: wasm only for now
  // (a MoE bundle without these options runs on WebGPU too).
  if (moe && backend === 'webgpu') throw new BackendError('moe committee options run on the wasm backend only (WebGPU runs MoE bundles without them)');
  if (moe) backend = 'wasm';
  const supported = relaxedSimdSupported();
  if (relaxedSimd === true && !supported) {
    throw new BackendError('relaxed SIMD was required, but this browser does not support it');
  }
  const relaxed = relaxedSimd ?? supported;
  const { threads, reason: threadsReason } = threadCount(requestedThreads);
  const opened = await openBundle(url);
  const wasmExtras = { relaxed, threads, fetchKernel: (id, rel) => fetchKernel(opened, id, { relaxed: rel }) };
  let { gpu, reason } = await pickBackend(opened, backend);
  let bundle;
  let impl = null;
  let moeState = null;
  let switchStats = null; // LoRA-Switch merge counter (lora_switch.js attachSwitch)
  let switchPick = null; // and the decode strategy timed on this device
  try {
    // A bundle compiled with --backend webgpu alone has no wasm kernels: no fallback then.
    // (A graph folded to constants has no steps and needs no kernels at all.)
    const { manifest: m } = opened;
    const hasWasm = !m.steps.length || m.kernels.some((k) => (k.backend ?? 'wasm') === 'wasm');
    if (!gpu && !hasWasm) throw new BackendError(`the bundle has webgpu kernels only (compiled with --backend webgpu)${reason ? ` and WebGPU is not usable here: ${reason}` : ''}`);
    bundle = await loadBundle(opened, { backends: gpu ? (hasWasm ? ['webgpu', 'wasm'] : ['webgpu']) : ['wasm'], relaxed, deviceClass: gpu ? deviceClassOf(gpu.info) : null });
    if (gpu) {
      try {
        impl = await WebGPUBackend.create(bundle, gpu, (id) => fetchKernel(opened, id, { backend: 'webgpu' }));
      } catch (e) {
        // 'auto' settles for wasm when the adapter is too small for the model; a broken bundle is still an error.
        if (backend !== 'auto' || !(e instanceof BackendError)) throw e;
        gpu.device.destroy();
        gpu = null;
        reason = e.message;
      }
    }
    if (moe && !impl) ({ bundle, state: moeState } = prepareMoe(bundle, moe));
    impl ??= await WasmBackend.create({ ...bundle, plan: bundle.plans.wasm, decodePlan: bundle.plans['wasm:decode'], decodeUnfusedPlan: bundle.plans['wasm:decode_unfused'], kernels: bundle.kernels.wasm, ...wasmExtras });
    if (moeState) await attachMoe(impl, moeState);
    switchStats = attachSwitch(impl);
    switchPick = await pickStrategy(impl, bundle.manifest.decoder, switchStats);
  } catch (e) {
    gpu?.device.destroy();
    throw e;
  }
  const { manifest } = bundle;
  const compileMs = impl.compileMs;
  bundle.weights = null; // on the GPU now, or in the wasm memory: never kept twice
  const io = (v) => ({ name: v.name, dtype: v.dtype, shape: [...v.shape], ...(v.encoding ? { encoding: v.encoding } : {}) });
  const ranIn = globalThis.constructor?.name ?? 'unknown';
  const info = {
    backend: gpu ? 'webgpu' : 'wasm',
    requestedBackend: backend,
    fallbackReason: reason,
    gpu: gpu?.info ?? null,
    loraSwitch: switchPick,
    relaxedSimd: relaxed,
    threads: gpu ? 1 : threads,
    threadsReason,
    ranIn,
    model: manifest.model ?? null,
    inputs: manifest.inputs.map(io),
    decoder: manifest.decoder ? (({ decode, layers, ...d }) => ({ ...d, layers: layers.length }))(manifest.decoder) : null,
    decodeInputs: manifest.decoder ? manifest.decoder.decode.inputs.map(io) : null,
    outputs: manifest.outputs.map(io),
    strings: manifest.strings ?? [],
    passthrough: manifest.passthrough ?? [],
    kernelFiles: Object.fromEntries(Object.values(bundle.kernels).flatMap((m) => [...m].map(([id, k]) => [id, k.file]))),
    timings: { fetchMs: bundle.fetchMs, compileMs },
    moe: moeState && { policy: moeState.policy, residentExperts: moeState.R, residentExpertBytes: moeState.residentExpertBytes,
      storeBytes: moeState.storeBytes, wasmMemoryBytes: manifest.memory.total_bytes, committee: moeState.layers.map((l) => l.committee) },
  };

  async function fallBack(why) {
    impl.destroy();
    if (!bundle.plans.wasm) throw new BackendError(`WebGPU failed (${why}) and the bundle has no wasm kernels to fall back to`);
    let weights;
    try {
      weights = await fetchWeights(opened);
      impl = await WasmBackend.create({ ...bundle, weights, plan: bundle.plans.wasm, decodePlan: bundle.plans['wasm:decode'], decodeUnfusedPlan: bundle.plans['wasm:decode_unfused'], kernels: bundle.kernels.wasm, ...wasmExtras });
      switchStats = attachSwitch(impl);
      switchPick = await pickStrategy(impl, bundle.manifest.decoder, switchStats);
      info.loraSwitch = switchPick;
    } catch (e) {
      throw new BackendError(`WebGPU failed (${why}) and the wasm fallback could not start: ${e.message}`);
    }
    info.backend = 'wasm';
    info.fallbackReason = why;
    info.threads = threads;
  }

  // Requests run one at a time: a GPU run awaits its readback, and the staging buffer, the error
  // scopes and a fallback in progress must not be shared with the next request.
  let queue = Promise.resolve();
  const serial = (task) => {
    const done = queue.then(task);
    queue = done.catch(() => {});
    return done;
  };
  let released = false;
  const onBackend = (fn) => serial(async () => {
    if (released) throw new BackendError('the session was released');
    if (impl.failure) await fallBack(impl.failure);
    try {
      return await fn(impl);
    } catch (e) {
      if (!(e instanceof GpuFailure)) throw e;
      if (released) throw new BackendError('the session was released while it ran');
      await fallBack(e.reason);
      return fn(impl);
    }
  });
  const state = () => ({ backend: info.backend, fallbackReason: info.fallbackReason, tuning: tuning.state });

  const tunedImpl = impl;
  const tuning = startTuning({
    impl,
    manifest,
    backend: info.backend,
    device: gpu ? `${gpu.info.vendor}|${gpu.info.architecture}|${gpu.info.device}|${gpu.info.description}` : `cpu:${globalThis.navigator?.hardwareConcurrency ?? 0}`,
    threads: info.threads,
    budgetMs: tune === false ? 0 : tune?.budgetMs,
    serial: (task) => serial(async () => {
      if (released || impl !== tunedImpl) throw new BackendError('the session changed while it was tuned');
      return task();
    }),
    emit,
    isStopped: () => released || impl !== tunedImpl,
  });
  info.tuning = tuning.state;

  return {
    get info() {
      return structuredClone({ ...info, memoryBytes: released ? { wasm: 0, gpu: 0 } : impl.memoryBytes });
    },
    /** Resolves to the final tuning state (at once when tuning is off, cached or has nothing to do). */
    tuned() {
      return tuning.done.then((st) => structuredClone(st));
    },
    /**
     * `feeds`: input name → bytes (ArrayBuffer or Uint8Array). With `sinks` (output name → Uint8Array,
     * e.g. views of a SharedArrayBuffer the page reads) outputs are written there and not returned.
     */
    run(feeds, sinks = null) {
      return onBackend(async (b) => {
        const t0 = performance.now();
        const outputs = await b.run(feeds, sinks);
        const moeStats = moeState && { swaps: moeState.swaps, swapBytes: moeState.swapBytes };
        return { outputs, stats: { computeMs: performance.now() - t0, ranIn, backend: info.backend, moe: moeStats }, state: state() };
      });
    },
    /** Decoder bundles: a whole generation in this thread; emit('token', {stream, token, index}) per token. */
    generate(promptIds, options = {}) {
      if (!manifest.decoder) throw new BackendError('generate() needs a decoder bundle (a model compiled with past.* inputs)');
      return onBackend(async (b) => {
        const { stream = 0, loraSwitch = 'auto', ...rest } = options;
        // LoRA-Switch bundles: 'auto' runs the strategy timed at create; 'switch' / 'unfused' force one.
        if (!['auto', 'switch', 'unfused'].includes(loraSwitch)) throw new InputError(`loraSwitch: expected 'auto', 'switch' or 'unfused', got ${JSON.stringify(loraSwitch)}`);
        const strategy = loraSwitch === 'auto' ? switchPick?.strategy : loraSwitch;
        if (strategy === 'unfused') rest.decodeVariant = 'decode_unfused';
        const before = await switchStats?.count();
        const result = await generate(b, manifest.decoder, promptIds, rest, (token, index) => emit('token', { stream, token, index }));
        if (before) {
          const after = await switchStats.count();
          result.mergeDispatches = after.merges - before.merges;
          result.mergeSkipped = after.skipped - before.skipped;
        }
        return { result, state: state() };
      });
    },
    profile(feeds, runs, options) {
      return onBackend(async (b) => ({ profile: await b.profile(feeds, runs, options), state: state() }));
    },
    /** Test hook: destroy the GPU device now or after the next submit (see Session.debugLoseDeviceForTesting). */
    debugLoseDevice(options) {
      if (info.backend !== 'webgpu') throw new BackendError(`the session runs on ${info.backend}: it has no GPU device to lose`);
      impl.loseDevice(options);
      return state();
    },
    release() {
      released = true;
      impl.destroy();
    },
  };
}
