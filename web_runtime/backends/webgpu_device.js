// Getting a WebGPU device, and compiling a bundle's WGSL kernels into pipelines on it.
import { BackendError, BundleError } from '../errors.js';
import { parseKernel } from './webgpu_layout.js';

/** An adapter and a device with the adapter's buffer limits, or BackendError("WebGPU is not available: …"). */
export async function requestGpu() {
  const gpu = globalThis.navigator?.gpu;
  if (!gpu) {
    const why = globalThis.isSecureContext === false ? 'the page is not a secure context (https or localhost)' : 'this browser does not expose WebGPU here';
    throw new BackendError(`WebGPU is not available: navigator.gpu is missing (${why})`);
  }
  let adapter;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    throw new BackendError(`WebGPU is not available: requestAdapter() failed (${e.message})`);
  }
  if (!adapter) {
    throw new BackendError('WebGPU is not available: navigator.gpu.requestAdapter() returned no adapter (WebGPU is disabled '
      + 'or blocklisted for this GPU; Chromium on Linux needs --enable-unsafe-webgpu, Firefox dom.webgpu.enabled)');
  }
  // The defaults (128 MiB bindings, 256 MiB buffers) are far below what adapters offer and what models need.
  const requiredLimits = {};
  for (const k of ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxStorageBuffersPerShaderStage']) requiredLimits[k] = adapter.limits[k];
  const timestampQuery = adapter.features.has('timestamp-query');
  let device;
  try {
    device = await adapter.requestDevice({ requiredLimits, requiredFeatures: timestampQuery ? ['timestamp-query'] : [] });
  } catch (e) {
    throw new BackendError(`WebGPU is not available: requestDevice() failed (${e.message})`);
  }
  const a = adapter.info ?? {};
  const info = {
    vendor: a.vendor ?? '', architecture: a.architecture ?? '', device: a.device ?? '', description: a.description ?? '',
    fallbackAdapter: Boolean(a.isFallbackAdapter ?? adapter.isFallbackAdapter), timestampQuery,
  };
  return { device, info };
}

/** Kernel id → {pipeline, layout, writable, dispatch}; a WGSL or pipeline error is a BundleError naming the file. */
export async function createPipelines(device, kernels) {
  const layouts = new Map();
  const layoutFor = (n) => {
    if (!layouts.has(n)) {
      const entries = Array.from({ length: n }, (_, i) => ({ binding: i, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'storage' } }));
      const group = device.createBindGroupLayout({ entries });
      layouts.set(n, { group, pipeline: device.createPipelineLayout({ bindGroupLayouts: [group] }) });
    }
    return layouts.get(n);
  };
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const made = [...kernels].map(([id, k]) => {
    let source;
    try {
      source = decoder.decode(k.bytes);
    } catch {
      throw new BundleError(`${k.file}: not UTF-8 text`);
    }
    const { writable, code } = parseKernel(source, k.file);
    const layout = layoutFor(writable.length);
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ code, label: k.file });
    const pipeline = device.createComputePipelineAsync({ layout: layout.pipeline, compute: { module, entryPoint: k.entry }, label: id });
    return { id, k, writable, layout, module, pipeline, scope: device.popErrorScope() };
  });
  const settled = await Promise.allSettled(made.map((m) => m.pipeline));
  const out = new Map();
  for (const [i, m] of made.entries()) {
    const errors = (await m.module.getCompilationInfo()).messages.filter((msg) => msg.type === 'error');
    await m.scope;
    if (errors.length) {
      const [e] = errors;
      throw new BundleError(`${m.k.file}: invalid WGSL at line ${e.lineNum}:${e.linePos}: ${e.message}`);
    }
    if (settled[i].status === 'rejected') throw new BundleError(`${m.k.file}: cannot create its compute pipeline (${settled[i].reason.message})`);
    out.set(m.id, { pipeline: settled[i].value, layout: m.layout.group, writable: m.writable, dispatch: m.k.dispatch });
  }
  return out;
}
