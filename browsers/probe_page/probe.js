// Feature probe (nnjit browsers probe). Every value is measured in this page, never assumed: a
// feature that is missing or fails says why in `reason`. The wasm feature modules come from the
// caller (assembled from WAT by wat2wasm in browsers/probe.py) so they are readable there.
'use strict';

const within = (promise, ms, what) => Promise.race([
  promise,
  new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)),
]);
const why = e => `${e && e.name || 'Error'}: ${e && e.message || e}`;

// Validation says the decoder knows the opcodes; simd_runs says this engine and tier also execute them
// (WebKit with its JIT tiers off validates SIMD but cannot run it).
async function wasmFeatures(modules) {
  if (typeof WebAssembly !== 'object') return {present: false, reason: 'no WebAssembly object'};
  const ok = bytes => { try { return WebAssembly.validate(new Uint8Array(bytes)); } catch (e) { return false; } };
  const out = {present: true, simd: ok(modules.simd), relaxed_simd: ok(modules.relaxed_simd), atomics: ok(modules.atomics),
               simd_runs: false};
  try {
    const {instance} = await WebAssembly.instantiate(new Uint8Array(modules.simd_run));
    out.simd_runs = instance.exports.f(1.5) === 3;
  } catch (e) {
    out.reason = why(e);
  }
  return out;
}

// Threads = a shared wasm memory that a Worker really writes to through Atomics.
async function threads() {
  const out = {cross_origin_isolated: self.crossOriginIsolated === true,
               shared_array_buffer: typeof SharedArrayBuffer === 'function', shared_memory: false, worker_atomics: false};
  try {
    const memory = new WebAssembly.Memory({initial: 1, maximum: 1, shared: true});
    out.shared_memory = typeof SharedArrayBuffer === 'function' && memory.buffer instanceof SharedArrayBuffer;
    const src = 'onmessage = e => { Atomics.store(new Int32Array(e.data), 0, 42); postMessage("done"); };';
    const worker = new Worker(URL.createObjectURL(new Blob([src], {type: 'text/javascript'})));
    try {
      await within(new Promise((resolve, reject) => {
        worker.onmessage = resolve;
        worker.onerror = e => reject(new Error(e.message || 'worker error'));
        worker.postMessage(memory.buffer);
      }), 5000, 'worker');
      out.worker_atomics = Atomics.load(new Int32Array(memory.buffer), 0) === 42;
    } finally {
      worker.terminate();
    }
  } catch (e) {
    out.reason = why(e);
  }
  out.available = out.shared_memory && out.worker_atomics;
  if (!out.available && !out.reason) {
    out.reason = `crossOriginIsolated=${out.cross_origin_isolated}, SharedArrayBuffer=${out.shared_array_buffer}`;
  }
  return out;
}

// WebGPU = an adapter, a device, and a 4-element compute dispatch read back correctly.
async function webgpu() {
  if (!navigator.gpu) return {available: false, reason: 'navigator.gpu is missing'};
  const out = {available: false};
  try {
    const adapter = await within(navigator.gpu.requestAdapter(), 10000, 'requestAdapter');
    if (!adapter) return {available: false, reason: 'no adapter (requestAdapter returned null)'};
    const info = adapter.info || {};
    out.adapter = {vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description,
                   is_fallback_adapter: info.isFallbackAdapter ?? adapter.isFallbackAdapter ?? null};
    out.features = [...adapter.features].sort();
    const L = adapter.limits;
    out.limits = {maxComputeWorkgroupSizeX: L.maxComputeWorkgroupSizeX, maxComputeInvocationsPerWorkgroup: L.maxComputeInvocationsPerWorkgroup,
                  maxComputeWorkgroupStorageSize: L.maxComputeWorkgroupStorageSize,
                  maxStorageBufferBindingSize: L.maxStorageBufferBindingSize, maxBufferSize: L.maxBufferSize};
    const device = await within(adapter.requestDevice(), 10000, 'requestDevice');
    try {
      const module = device.createShaderModule({code: `@group(0) @binding(0) var<storage, read_write> x: array<f32>;
        @compute @workgroup_size(4) fn main(@builtin(global_invocation_id) i: vec3u) { x[i.x] = x[i.x] * 2.0; }`});
      const pipeline = device.createComputePipeline({layout: 'auto', compute: {module, entryPoint: 'main'}});
      const data = device.createBuffer({size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST});
      const read = device.createBuffer({size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST});
      device.queue.writeBuffer(data, 0, new Float32Array([1, 2, 3, 4]));
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, device.createBindGroup({layout: pipeline.getBindGroupLayout(0), entries: [{binding: 0, resource: {buffer: data}}]}));
      pass.dispatchWorkgroups(1);
      pass.end();
      enc.copyBufferToBuffer(data, 0, read, 0, 16);
      device.queue.submit([enc.finish()]);
      await within(read.mapAsync(GPUMapMode.READ), 10000, 'mapAsync');
      const got = [...new Float32Array(read.getMappedRange())];
      out.compute_ok = got.join() === '2,4,6,8';
      out.available = out.compute_ok;
      if (!out.compute_ok) out.reason = `compute returned ${got.join()} instead of 2,4,6,8`;
    } finally {
      device.destroy();
    }
  } catch (e) {
    out.reason = why(e);
  }
  return out;
}

async function memory() {
  const pm = performance.memory;
  const out = {performance_memory: pm ? {usedJSHeapSize: pm.usedJSHeapSize, totalJSHeapSize: pm.totalJSHeapSize,
                                         jsHeapSizeLimit: pm.jsHeapSizeLimit} : null,
               measure_user_agent_specific_memory: null};
  if (typeof performance.measureUserAgentSpecificMemory !== 'function') {
    out.measure_reason = 'performance.measureUserAgentSpecificMemory is missing';
  } else {
    try {
      const t0 = performance.now();
      const m = await within(performance.measureUserAgentSpecificMemory(), 8000, 'measureUserAgentSpecificMemory');
      out.measure_user_agent_specific_memory = {bytes: m.bytes, ms: Math.round(performance.now() - t0)};
    } catch (e) {
      out.measure_reason = why(e);
    }
  }
  return out;
}

function observers() {
  const types = (typeof PerformanceObserver === 'function' && PerformanceObserver.supportedEntryTypes) || [];
  const has = t => types.includes(t);
  return {supported_entry_types: [...types], event_timing: has('event'), first_input: has('first-input'),
          longtask: has('longtask'), long_animation_frame: has('long-animation-frame'), paint: has('paint'),
          largest_contentful_paint: has('largest-contentful-paint'), navigation: has('navigation')};
}

// rAF rate over 1 s: what the smoothness metric's animation can reach here at best.
function rafRate(ms = 1000) {
  return new Promise(resolve => {
    let frames = 0, t0 = null;
    const tick = t => {
      if (t0 === null) t0 = t;
      else frames++;
      if (t - t0 < ms) requestAnimationFrame(tick);
      else resolve({fps: Math.round(frames * 1000 / (t - t0) * 10) / 10, frames});
    };
    requestAnimationFrame(tick);
  });
}

self.nnjitProbe = async modules => ({
  user_agent: navigator.userAgent,
  hardware_concurrency: navigator.hardwareConcurrency,
  secure_context: self.isSecureContext === true,
  wasm: await wasmFeatures(modules),
  threads: await threads(),
  webgpu: await webgpu(),
  memory: await memory(),
  observers: observers(),
  raf: await within(rafRate(), 5000, 'requestAnimationFrame').catch(e => ({fps: null, reason: why(e)})),
});
