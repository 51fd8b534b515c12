"""GUI load impact (docs/metrics.md §6): FCP, LCP and the load event of a reference page
(bench/pages/gui/ref.html: text, a stylesheet, one large image) loaded without and with the cell's
runtime and model loading from its <head> (bench/pages/gui/load.js), alternating, N loads each way.

`gui_metrics` turns the page's marks into the metrics (pure, testable on planted marks);
`measure_gui` drives the loads in the cell's browser, after the cell's other phases.
"""
from __future__ import annotations

import json
import urllib.parse

from .qoe_metrics import CELL_METRICS, NA, pct

MARKS = {"fcp": "paint", "lcp": "largest-contentful-paint", "load": None}
GUI_METRICS = {k: v for k, v in CELL_METRICS.items() if k.startswith("gui_")}
PAGE = "/pages/gui/ref.html"


def gui_metrics(without: list[dict], with_: list[dict], engine: str) -> dict:
    """Medians of each mark over the loads each way and the delta with − without; n/a where the engine
    lacks the entry type, where no load recorded the mark, or (with, delta) where the runtime failed."""
    out: dict = {}
    failed = next((s["error"] for s in with_ if s.get("error")), None)
    for mark, entry_type in MARKS.items():
        keys = [f"gui_{mark}_{way}_ms" for way in ("without", "with", "delta")]
        types = set().union(*(s.get("types", []) for s in without + with_)) if without + with_ else set()
        if entry_type and entry_type not in types:
            out.update(dict.fromkeys(keys, NA(f"{engine}: no '{entry_type}' entry type")))
            continue
        if mark == "load" and not all(s.get("navigationTiming") for s in without + with_):
            out.update(dict.fromkeys(keys, NA(f"{engine}: no navigation timing entry")))
            continue
        medians = []
        for way, samples in (("without", without), ("with", with_)):
            values = [s[mark] for s in samples if s.get(mark) is not None]
            if way == "with" and failed:
                medians.append(NA(f"the runtime failed while the reference page loaded: {failed}"))
            elif not samples:
                medians.append(NA("no load of the reference page"))
            elif len(values) < len(samples):
                medians.append(NA(f"{len(samples) - len(values)} of {len(samples)} loads recorded no {mark} mark"))
            else:
                medians.append(pct(values, 50))
        delta = next((m for m in medians if isinstance(m, NA)), None) or medians[1] - medians[0]
        out.update(zip(keys, (*medians, delta)))
    return out


def page_url(server, cfg: dict | None) -> str:
    url = server.url(PAGE)
    return url if cfg is None else f"{url}?cfg={urllib.parse.quote(json.dumps(cfg))}"


def measure_gui(handle, server, cfg: dict, loads: int, engine: str, timeout_s: float, stage) -> dict:
    """`loads` loads each way in the handle's page (navigated; the server sends no-store, so nothing
    comes from the HTTP cache), after one uncounted warm-up load."""
    if loads <= 0:
        return dict.fromkeys(GUI_METRICS, NA("skipped (--gui-loads 0)"))
    samples: dict[str, list] = {"without": [], "with": []}

    def load(page_cfg: dict | None) -> dict:
        handle.open(page_url(server, page_cfg))
        return handle.evaluate("ms => nnjitGui.result(ms)", int(timeout_s * 1000), timeout_s=timeout_s + 5)

    # The first load of a page is slower (caches of the engine, the server's first reads): not counted.
    stage("GUI load impact: warm-up load")
    load(None)
    for i in range(loads):
        # ABBA order: a drift in the machine's load over the loads hits both ways alike.
        order = (("without", None), ("with", cfg)) if i % 2 == 0 else (("with", cfg), ("without", None))
        for way, page_cfg in order:
            stage(f"GUI load impact: load {i + 1}/{loads} {way} the runtime")
            samples[way].append(load(page_cfg))
    return gui_metrics(samples["without"], samples["with"], engine)
