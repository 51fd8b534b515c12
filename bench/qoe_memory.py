"""OS-side memory of the browser under test: PSS (RSS where PSS cannot be read) of its process tree,
by process type, sampled every 0.5 s in a thread (docs/metrics.md §4). Not faster: one PSS sample
of a Chromium tree costs ~50 ms of kernel time here (the kernel walks each process's page tables),
and at 10 samples/s that took half a core of this 2-core machine away from what is measured.

The browser is found under this process: the first descendant that is not a driver (Playwright's
node, chromedriver, WebKitWebDriver) or Xvfb, i.e. Chromium's or Firefox's main process or
MiniBrowser; it and all its descendants are summed. The drivers are excluded: they are harness, not
browser.
"""
from __future__ import annotations

import os
import threading
import time

import psutil

NOT_BROWSER = {"node", "chromedriver", "WebKitWebDriver", "Xvfb", "python", "python3"}
FIREFOX_TYPES = {"tab": "content", "rdd": "rdd", "socket": "socket", "utility": "utility", "gpu": "gpu",
                 "forkserver": "forkserver"}


def browser_root(pid: int | None = None) -> psutil.Process | None:
    """The browser's main process under `pid` (default: this process), breadth first."""
    try:
        queue = list(psutil.Process(pid or os.getpid()).children())
    except psutil.NoSuchProcess:
        return None
    while queue:
        p = queue.pop(0)
        try:
            # By executable, not name(): Playwright's node driver names itself "MainThread", as
            # does Chromium's main process.
            cmd = p.cmdline()
            name = os.path.basename(cmd[0]) if cmd else p.name()
            if name not in NOT_BROWSER and not name.startswith("python"):
                return p
            queue += p.children()
        except psutil.NoSuchProcess:
            continue
    return None


def process_type(p: psutil.Process) -> str:
    """browser | renderer | gpu-process | utility | zygote (Chromium's --type=), Firefox's content
    process kinds, WebKit's executable names."""
    cmd = p.cmdline()
    for a in cmd:
        if a.startswith("--type="):
            return a[7:]
    if "-contentproc" in cmd:
        return FIREFOX_TYPES.get(cmd[-1], cmd[-1])
    name = p.name()
    if name.startswith("WebKit"):
        return name.removeprefix("WebKit").removesuffix("Process").lower() or name
    return "browser"


def _pss(p: psutil.Process) -> int:
    """PSS from /proc/PID/smaps_rollup (the kernel's sum; cheaper than parsing every mapping of smaps
    as psutil's memory_full_info() does). RSS where it cannot be read."""
    try:
        with open(f"/proc/{p.pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, PermissionError, ProcessLookupError):
        pass
    return p.memory_info().rss


_TYPES: dict[tuple[int, float], str] = {}


def sample(root: psutil.Process) -> dict[str, int]:
    """{'total': bytes, type: bytes, ...} for `root` and its descendants now."""
    out: dict[str, int] = {"total": 0}
    procs = [root]
    try:
        procs += root.children(recursive=True)
    except psutil.NoSuchProcess:
        return {}
    for p in procs:
        try:
            value = _pss(p)
            key = (p.pid, p.create_time())
            kind = _TYPES.get(key) or _TYPES.setdefault(key, process_type(p))
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        out["total"] += value
        out[kind] = out.get(kind, 0) + value
    return out


class Sampler:
    """Samples the browser tree every `period_s` in a thread; mark() starts a new window and
    peak() / median_of_last() read the samples since the last mark. Use as a context manager."""

    def __init__(self, root: psutil.Process | None, period_s: float = 0.5, na_reason: str | None = None):
        # na_reason: why there is deliberately no root (a remote browser); the memory rows carry it.
        self.root, self.period_s, self.na_reason = root, period_s, na_reason
        self._samples: list[dict] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nnjit-pss", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            s = sample(self.root) if self.root is not None else {}
            if s:
                with self._lock:
                    self._samples.append(s)
            self._stop.wait(self.period_s)

    def mark(self) -> None:
        with self._lock:
            self._samples = []

    def samples(self) -> list[dict]:
        with self._lock:
            return list(self._samples)

    def peak(self) -> dict:
        """Per key, the largest sample since the last mark (the total's peak and each type's peak)."""
        out: dict = {}
        for s in self.samples():
            for k, v in s.items():
                out[k] = max(out.get(k, 0), v)
        return out

    def median_of_last(self, n: int = 5) -> dict:
        last = self.samples()[-n:]
        if not last:
            return {}
        keys = set().union(*last)
        return {k: int(sorted(s.get(k, 0) for s in last)[len(last) // 2]) for k in keys}

    def wait_for(self, n: int, timeout_s: float = 10.0) -> None:
        if self.root is None:
            return  # nothing will ever come
        deadline = time.monotonic() + timeout_s
        while len(self.samples()) < n and time.monotonic() < deadline:
            time.sleep(self.period_s / 2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(2)
