// The TF.js wasm peer (tfjs-wasm in `nnjit bench`), as a classic script so the same code runs on the
// page's main thread (after <script> tags for tf-core and tf-backend-wasm) and in a classic Worker
// (after importScripts of them): module workers cannot load TF.js's UMD builds, and its ES builds
// import bare specifiers that workers cannot map.
//
// It runs one program prepared by bench/tfjs_program.py: one tf.matMul / tf.conv2d /
// tf.depthwiseConv2d with the ONNX model's weights, already in TF.js layout (no transposes here).
(function install(scope) {
  let S = null;

  function operand(ref, feeds) {
    return 'input' in ref ? feeds[ref.input] : S.consts[ref.const];
  }

  function compute(tf, p, feeds) {
    let y;
    if (p.op === 'matMul') {
      y = tf.matMul(operand(p.a, feeds), operand(p.b, feeds), p.transposeA, p.transposeB);
    } else if (p.op === 'conv2d') {
      y = tf.conv2d(operand(p.x, feeds), operand(p.filter, feeds), p.strides, p.pad, 'NHWC', p.dilations);
    } else if (p.op === 'depthwiseConv2d') {
      y = tf.depthwiseConv2d(operand(p.x, feeds), operand(p.filter, feeds), p.strides, p.pad, 'NHWC', p.dilations);
    } else {
      throw new Error(`tfjs runner: unknown op ${p.op}`);
    }
    return p.bias ? tf.add(y, operand(p.bias, feeds)) : y;
  }

  scope.nnjitTfjs = {
    /** Backend up, program and constants loaded; what ran where. */
    async load({ wasmUrl, programUrl, constsUrl, threads }) {
      const tf = scope.tf;
      // Must precede setBackend: the backend reads both once, when it instantiates its wasm binary.
      tf.wasm.setWasmPaths(wasmUrl);
      tf.wasm.setThreadsCount(threads);
      if (!(await tf.setBackend('wasm'))) throw new Error('tfjs: the wasm backend did not initialise');
      await tf.ready();
      const [program, consts] = await Promise.all([
        fetch(programUrl).then((r) => (r.ok ? r.json() : Promise.reject(new Error(`tfjs program: HTTP ${r.status}`)))),
        fetch(constsUrl).then((r) => (r.ok ? r.arrayBuffer() : Promise.reject(new Error(`tfjs constants: HTTP ${r.status}`)))),
      ]);
      S = {
        program,
        consts: program.consts.map((c) => tf.tensor(new Float32Array(consts, c.offset, c.bytes / 4), c.shape, 'float32')),
      };
      const [simd, multithread] = await Promise.all(['WASM_HAS_SIMD_SUPPORT', 'WASM_HAS_MULTITHREAD_SUPPORT'].map((f) => tf.env().getAsync(f)));
      return { backend: tf.getBackend(), version: tf.version_core, threadsReported: tf.wasm.getThreadsCount(), simd, multithread };
    },

    /** One inference: inputs copied into TF.js, the op, the output read back (all of it timed by the caller). */
    async run(tensors) {
      const tf = scope.tf;
      const p = S.program;
      const feeds = Object.fromEntries(tensors.map((t) => [t.name, tf.tensor(t.data, t.shape, 'float32')]));
      try {
        const y = tf.tidy(() => compute(tf, p, feeds));
        const data = await y.data();
        const dims = y.shape;
        y.dispose();
        return { [p.output]: { data, dims, dtype: 'float32' } };
      } finally {
        for (const t of Object.values(feeds)) t.dispose();
      }
    },

    release() {
      for (const t of S?.consts ?? []) t.dispose();
      S = null;
      return true;
    },
  };
})(self);
