// Layout of the Int32Array control block shared by a threaded session's coordinator and helpers.
export const CTL = {
  GEN: 0, // bumped once per job; helpers wait on it
  OP: 1, // kernel slot to run, or YIELD
  REMAIN: 2, // helpers still working on the current job; the coordinator waits on it
  ERROR: 3, // the part (helpers are parts 1..T-1) whose kernel trapped, else 0
  NARGS: 4,
  ARGS: 8, // up to MAX_ARGS kernel arguments (byte addresses)
  MAX_ARGS: 24,
  YIELD: -1,
  MSG: 32, // the trapping helper's error message, UTF-8, MSG_BYTES at most (int32 index of its start)
  MSG_BYTES: 256,
  BYTES: 4 * 32 + 256,
};
