// Types of the nnjit-web runtime (web_runtime/index.js).

export type DType = 'float32' | 'int64' | 'int32' | 'bool';

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** 'string': a string tensor (int32 ids inside); run() takes and returns string[] for it. */
  encoding?: 'string';
}

/** A sequence / optional value's declared type (docs/bundle.md passthrough). */
export type ValueType =
  | { kind: 'tensor'; dtype: DType; shape: (number | null)[] | null }
  | { kind: 'sequence' | 'optional'; elem: ValueType };
/** A sequence (array of tensors) or optional (null or its value) fed to or returned from a passthrough. */
export type PassValue = null | { data: FeedData; dims: number[]; dtype?: DType } | PassValue[];

/** What run() accepts per input. int64 inputs also take Int32Array or integer arrays (converted). */
export type FeedData = Float32Array | BigInt64Array | Int32Array | Uint8Array | number[] | bigint[] | boolean[];
export type Feed = FeedData | string[] | { data: FeedData | string[]; dims?: number[] } | PassValue;

export interface DataTypeMap {
  float32: Float32Array;
  int64: BigInt64Array;
  int32: Int32Array;
  bool: Uint8Array;
}

export interface OutputTensor<D extends DType = DType> {
  data: DataTypeMap[D];
  dims: number[];
  dtype: D;
}

export interface RunOptions {
  /**
   * Output name → a typed array of that output's type and element count to write it into (the result's
   * `data` is then that array): a stream of runs reuses its arrays instead of getting fresh ones.
   * Not for string outputs. A wrong array or name rejects with InputError.
   */
  outputs?: Record<string, DataTypeMap[DType]>;
}

export type Backend = 'wasm' | 'webgpu';

export interface SessionOptions {
  /**
   * 'wasm' (default); 'webgpu' (BackendError "WebGPU is not available: …" without navigator.gpu or an
   * adapter); 'auto': webgpu where an adapter exists and the bundle has webgpu kernels, else wasm.
   * A webgpu session whose GPU fails (device lost, a GPU error) continues on wasm: see fallbackReason.
   */
  backend?: Backend | 'auto';
  /** Run kernels in a dedicated Web Worker (default). false runs them on the calling thread. */
  worker?: boolean;
  /** undefined: use relaxed-SIMD kernels where the browser supports them; false: never; true: require. */
  relaxedSimd?: boolean;
  /** MoE bundles: keep only a committee of experts in wasm memory (docs/moe.md); wasm backend only. */
  moe?: MoeOptions;
  /**
   * Default true: worker sessions on cross-origin isolated pages whose threads leave a core free wake
   * the page thread just before a run of 2 ms or more should end and watch for its result (at most
   * 1.5 ms of spinning), instead of sleeping until the worker's message: ~0.3 ms less per run here.
   */
  wakeEarly?: boolean;
}

export interface MoeOptions {
  /** Experts resident per MoE layer (1..experts; default all), or the bytes of expert weights resident. */
  residentExperts?: number;
  budgetBytes?: number;
  /** 'swap' (default, exact): copy routed experts in, LRU; 'substitute': the most similar resident expert; 'skip'. */
  policy?: 'swap' | 'substitute' | 'skip';
  /** The JSON object `nnjit moe-plan` wrote: committee ranking and substitution order per layer. */
  plan?: object;
}

export interface GpuInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A software adapter (SwiftShader, lavapipe): correct but slow. */
  fallbackAdapter: boolean;
  /** The device has 'timestamp-query': profile() reads GPU timestamps. */
  timestampQuery: boolean;
}

export interface SessionInfo {
  /** The backend the session runs on now (as of its last reply: run, profile). */
  backend: Backend;
  /**
   * LoRA-Switch decoder bundles (docs/lora_switch.md): the one-token strategy timed on this device at
   * create ('switch': merge only when the adapter set changed; 'unfused': every adapter every token),
   * the ms per decode run of each, and the change rate below which switching wins. null otherwise.
   */
  loraSwitch: { strategy: 'switch' | 'unfused'; mergeMs: number; skipMs: number; unfusedMs: number; crossoverF: number; mergedShare: number } | null;
  requestedBackend: Backend | 'auto';
  /**
   * Why the session runs on wasm although webgpu was requested or possible ('auto' without an adapter,
   * a lost device, a GPU error), else null.
   */
  fallbackReason: string | null;
  /** The adapter of a session created on webgpu (kept after a fallback), else null. */
  gpu: GpuInfo | null;
  /** Whether the wasm kernels (also a webgpu session's fallback) are the relaxed-SIMD variants. */
  relaxedSimd: boolean;
  worker: boolean;
  /** Constructor name of the global scope that runs the kernels, e.g. 'DedicatedWorkerGlobalScope'. */
  ranIn: string;
  model: { name?: string; source_sha256?: string; opset?: number } | null;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  /** Kernel id → the bundle file that was loaded for it (plain or relaxed variant, or WGSL). */
  kernelFiles: Record<string, string>;
  timings: { fetchMs: number; compileMs: number };
  /**
   * Bytes the session holds, as of create: `wasm` its WebAssembly memory (weights, arena, scratch;
   * shared by its threads), `gpu` the sum of its GPU buffers; null for the backend it does not use.
   */
  memoryBytes: { wasm: number | null; gpu: number | null };
  /** The model's string constants: ids 0.. of every run's string table. */
  strings: string[];
  /** Sequence / optional inputs passed through Identity to outputs, with their declared types. */
  passthrough: { input: string; output: string; type: ValueType }[];
}

export interface RunStats {
  /**
   * Time spent in the kernels, measured where they ran (excludes messaging). On webgpu: from the
   * input upload to the outputs read back (one submit).
   */
  computeMs: number;
  ranIn: string;
  /** The backend that produced this run's outputs. */
  backend: Backend;
}

export interface StepProfile {
  step: number;
  op: string;
  node: string;
  family: string;
  kernel: string;
  /** Median time of this step over the profile runs, in ms. */
  ms: number;
}

export interface GenerateOptions {
  maxNewTokens?: number;
  /** 0 (default): greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  /** Token ids that end generation (default: the model's end-of-text id). */
  stop?: number[];
  returnLogits?: boolean;
  /** LoRA-Switch bundles: 'auto' (default) runs the strategy in info.loraSwitch; 'switch' / 'unfused' force one. */
  loraSwitch?: 'auto' | 'switch' | 'unfused';
}

export interface GenerateStats {
  tokens: number[];
  promptTokens: number;
  prefillMs: number;
  decodeMs: number;
  prefillTokensPerS: number;
  decodeTokensPerS: number | null;
  logits?: Float32Array[];
  /** LoRA-Switch bundles (docs/lora_switch.md), wasm and WebGPU: decode steps that merged adapters / skipped the merge (set unchanged). */
  mergeDispatches?: number;
  mergeSkipped?: number;
}

export class Session {
  private constructor();
  /** url: the bundle directory or its manifest.json, absolute or relative to the page. */
  static create(url: string | URL, options?: SessionOptions): Promise<Session>;
  readonly inputs: TensorInfo[];
  readonly outputs: TensorInfo[];
  readonly info: SessionInfo;
  lastRunStats: RunStats | null;
  run(feeds: Record<string, Feed>, options?: RunOptions): Promise<Record<string, OutputTensor>>;
  /** Decoder bundles: new token ids, each yielded as soon as it is picked (streaming). */
  generate(promptIds: ArrayLike<number | bigint>, options?: GenerateOptions): AsyncGenerator<number, void, undefined>;
  lastGenerateStats?: GenerateStats;
  /**
   * Time every step of the plan on `feeds`; median per step over `runs` (default 10). On webgpu,
   * timer 'timestamp' (default where available) reads GPU timestamps per dispatch; 'submit' times
   * each dispatch as its own submit on the CPU clock.
   */
  profile(feeds: Record<string, Feed>, options?: { runs?: number; timer?: 'timestamp' | 'submit' }): Promise<StepProfile[]>;
  release(): Promise<void>;
  /**
   * Test hook for the WebGPU fallback, not for applications: destroy the GPU device now or after the
   * next submit; byValidationError destroys a buffer instead. BackendError on a wasm session.
   */
  debugLoseDeviceForTesting(options?: { afterNextSubmit?: boolean; byValidationError?: boolean }): Promise<void>;
}

export class NnjitError extends Error {}
/** Bundle unreachable, malformed, wrong format version, or a sha256 mismatch (message names file, expected, actual). */
export class BundleError extends NnjitError {
  name: 'BundleError';
}
/** Unknown/missing input, wrong dims, element count or dtype (message names the input, expected and got). */
export class InputError extends NnjitError {
  name: 'InputError';
}
/** Backend unavailable (e.g. "WebGPU is not available: …"), adapter limits exceeded, worker failure, kernel trap, or use after release(). */
export class BackendError extends NnjitError {
  name: 'BackendError';
}
