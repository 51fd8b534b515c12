// Named errors of the runtime. Every class sets `name` explicitly (not from the constructor's
// name) so the names survive minifiers, and the worker can revive them on the page by name.

export class NnjitError extends Error {}
NnjitError.prototype.name = 'NnjitError';

/** The bundle is unreachable, malformed, of another format version, or fails its sha256 check. */
export class BundleError extends NnjitError {}
BundleError.prototype.name = 'BundleError';

/** session.run() got an unknown or missing input, or one with the wrong dims or dtype. */
export class InputError extends NnjitError {}
InputError.prototype.name = 'InputError';

/** The backend cannot run here (unsupported, failed to start, a kernel trapped, session released). */
export class BackendError extends NnjitError {}
BackendError.prototype.name = 'BackendError';

const CLASSES = { NnjitError, BundleError, InputError, BackendError };

/** Structured-clone-safe form of an error, to post across the worker boundary. */
export function serializeError(err) {
  if (err instanceof Error) return { name: err.name, message: err.message, stack: err.stack };
  return { name: 'Error', message: String(err) };
}

/** The inverse of serializeError: our own classes come back as themselves, others as Error with the name kept. */
export function reviveError({ name, message, stack }) {
  const Cls = CLASSES[name];
  const err = Cls ? new Cls(message) : new Error(message);
  if (!Cls) err.name = name;
  if (stack) err.workerStack = stack;
  return err;
}
