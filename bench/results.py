"""results/results.csv: one row per (cell, metric), appended and fsync'ed as each is measured, so a
harness killed with -9 loses nothing it wrote; a cell is complete once its `cell_status` row is
there (written last), which is what --resume skips. results.parquet: a typed copy of the CSV, written
after a run and after --resume.
"""
from __future__ import annotations

import csv
import datetime
import functools
import os
import platform
import socket
from pathlib import Path

COLUMNS = ["config", "runtime", "placement", "model", "metric", "value", "unit", "status", "reason",
           "engine", "driver", "backend", "threads", "cpu_throttle", "tier", "browser_version",
           "nnjit_version", "host", "cpu", "cores", "mem_gib", "os", "time"]
STATUS_ROW = "cell_status"
KEY = ("config", "runtime", "placement", "model")


@functools.lru_cache(maxsize=1)
def machine_facts() -> dict:
    """nnjit version and the machine, on every row (results from many machines can be concatenated)."""
    import importlib.metadata

    import psutil

    from .compare import _cpu_name

    try:
        version = importlib.metadata.version("nnjit-web")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return {"nnjit_version": version, "host": socket.gethostname(), "cpu": _cpu_name(), "cores": os.cpu_count(),
            "mem_gib": round(psutil.virtual_memory().total / 2**30, 1), "os": f"{platform.system()} {platform.release()}"}


def fmt(value) -> str:
    return "" if value is None else repr(float(value)) if isinstance(value, float) else str(value)


class ResultsFile:
    """Appends rows to `path` (header written when the file is new)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._f = open(self.path, "a", newline="", encoding="utf-8")
        self._w = csv.DictWriter(self._f, fieldnames=COLUMNS, extrasaction="ignore")
        if new:
            self._w.writeheader()
            self._flush()

    def _flush(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())

    def append(self, row: dict) -> None:
        full = {**machine_facts(), "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), **row}
        self._w.writerow({k: fmt(full.get(k)) for k in COLUMNS})
        self._flush()

    def close(self) -> None:
        self._f.close()


def read_rows(path: Path) -> list[dict]:
    """The rows of a results file; a last line cut short by a kill is dropped (it has too few fields)."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r for r in rows if None not in r and all(r.get(c) is not None for c in COLUMNS)]


def completed(rows: list[dict]) -> set[tuple]:
    return {tuple(r[k] for k in KEY) for r in rows if r["metric"] == STATUS_ROW}


def compact_for_resume(path: Path) -> set[tuple]:
    """Drop the rows of unfinished cells (they are measured again), rewriting the file atomically;
    the set of complete cells."""
    rows = read_rows(path)
    done = completed(rows)
    keep = [r for r in rows if tuple(r[k] for k in KEY) in done]
    tmp = Path(path).with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(keep)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return done


# Typed columns of the frame (Parquet, nnjit report); the others stay text ("" where the CSV is empty).
NUMERIC = {"value": "float64", "threads": "Int64", "cpu_throttle": "float64", "cores": "Int64", "mem_gib": "float64"}


def write_parquet(csv_path: Path) -> str:
    """results.parquet next to the CSV: the same rows and columns, typed (load_frame); says what it did.
    Rewritten whole each time (after a run, after --resume): the CSV stays the record."""
    try:
        import pandas  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError as e:
        return f"no Parquet copy: {e.name} is not installed (results.csv has everything)"
    out = Path(csv_path).with_suffix(".parquet")
    tmp = out.with_suffix(".parquet.tmp")
    load_frame(csv_path).to_parquet(tmp, index=False, engine="pyarrow")
    os.replace(tmp, out)  # a reader never sees half a file
    return f"wrote {out}"


def results_file(results_dir: Path) -> Path:
    """The results of `nnjit bench --out DIR`: results.csv, else results.parquet (a copy without the CSV)."""
    d = Path(results_dir)
    return d / "results.csv" if (d / "results.csv").is_file() or not (d / "results.parquet").is_file() else d / "results.parquet"


def load_frame(path):
    """results.csv or results.parquet as a pandas DataFrame: value and the machine/config numbers numeric
    (NaN / <NA> for n/a and empty cells), time a UTC timestamp, the rest text."""
    import pandas as pd

    if Path(path).suffix == ".parquet":
        return pd.read_parquet(path)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    # A cut last line (a kill mid-write) reads as missing fields: read_rows drops it, so drop it here too.
    df = df.dropna(subset=["time"]) if "time" in df else df
    for col, dtype in NUMERIC.items():
        if col in df:
            df[col] = pd.to_numeric(df[col].replace("", None), errors="coerce").astype(dtype)
    if "time" in df:
        df["time"] = pd.to_datetime(df["time"].replace("", None), utc=True, errors="coerce")
    return df
