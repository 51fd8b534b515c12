// The TF.js peer in a Worker (placement 'worker'): the same runner as on the main thread, driven by
// {id, method, arg} messages from bench/pages/tfjs_peer.js. Outputs are transferred, not copied.
importScripts('/tfjs-core/tf-core.min.js', '/tfjs-wasm/tf-backend-wasm.min.js', './tfjs_runner.js');

onmessage = async ({ data: { id, method, arg } }) => {
  try {
    const value = await self.nnjitTfjs[method](arg);
    const transfer = method === 'run' ? Object.values(value).map((o) => o.data.buffer) : [];
    postMessage({ id, ok: true, value }, transfer);
  } catch (e) {
    postMessage({ id, ok: false, error: `${e?.name ?? 'Error'}: ${e?.message ?? e}` });
  }
};
