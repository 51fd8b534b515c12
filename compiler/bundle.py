"""Write and read bundles (docs/bundle.md): manifest.json, weights.bin, kernels/*.wasm, sha256 of each."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from . import weights_codec
from .errors import BundleError
from .manifest_check import check_manifest  # noqa: F401 - re-exported: bundle.check_manifest

FORMAT = "nnjit-bundle"
VERSION = 1


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bundle(out: Path, manifest: dict, weights: bytes, kernel_files: dict[str, bytes],
                 f16_ranges: list[tuple[int, int]] | None = None) -> Path:
    """`f16_ranges`: write weights.bin f16-encoded (weights_codec), halving those float32 ranges."""
    out = Path(out)
    (out / "kernels").mkdir(parents=True, exist_ok=True)
    for old in (out / "kernels").glob("*.wasm"):
        if old.name not in {Path(p).name for p in kernel_files}:
            old.unlink()
    for rel, data in kernel_files.items():
        (out / rel).write_bytes(data)
    manifest = {"format": FORMAT, "version": VERSION, **manifest}
    if f16_ranges is None:
        data = weights
        manifest["weights"] = {"file": "weights.bin", "bytes": len(weights), "sha256": sha256(data)}
    else:
        data, segments = weights_codec.encode(weights, f16_ranges)
        manifest["weights"] = {"file": "weights.bin", "bytes": len(weights), "sha256": sha256(data), "encoding": "f16",
                               "file_bytes": len(data), "segments": segments}
    (out / "weights.bin").write_bytes(data)
    (out / "manifest.json").write_text(json.dumps(_json_safe(manifest), indent=1, allow_nan=False))
    return out


def _json_safe(v):
    """Non-finite floats (a Clip's default bounds in a kernel's config) as the strings "inf", "-inf",
    "nan": JSON has no literal for them, and browsers' JSON.parse rejects Python's Infinity."""
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    return v


def read_manifest(bundle: Path) -> dict:
    path = Path(bundle) / "manifest.json"
    if not path.is_file():
        raise BundleError(f"{bundle}: no manifest.json (not a bundle directory?)")
    try:
        m = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # JSONDecodeError, huge ints, deep nesting
        raise BundleError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise BundleError(f"{path}: format is {m.get('format') if isinstance(m, dict) else None!r}, expected {FORMAT!r}")
    if m.get("version") != VERSION:
        raise BundleError(f"{path}: bundle version {m.get('version')!r}, this nnjit reads version {VERSION}")
    return m


def verify_file(bundle: Path, rel: str, expected: str) -> bytes:
    path = Path(bundle) / rel
    if not path.is_file():
        raise BundleError(f"{path}: missing (listed in manifest.json)")
    data = path.read_bytes()
    got = sha256(data)
    if got != expected:
        raise BundleError(f"{path}: sha256 mismatch: manifest expects {expected}, file has {got} (altered or corrupt)")
    return data


def load_bundle(bundle: Path) -> tuple[dict, bytes, dict[str, bytes]]:
    """Manifest (structure and tensor ranges checked), verified weights and every verified kernel file
    (keyed by relative path)."""
    m = read_manifest(bundle)
    check_manifest(m)
    weights = weights_codec.decode(verify_file(bundle, m["weights"]["file"], m["weights"]["sha256"]), m["weights"])
    if len(weights) != m["weights"]["bytes"]:
        raise BundleError(f"{Path(bundle) / m['weights']['file']}: manifest.json weights.bytes expects "
                          f"{m['weights']['bytes']} bytes, the file has {len(weights)}")
    files = {}
    for k in m["kernels"]:
        files[k["file"]] = verify_file(bundle, k["file"], k["sha256"])
        if k.get("relaxed"):
            files[k["relaxed"]["file"]] = verify_file(bundle, k["relaxed"]["file"], k["relaxed"]["sha256"])
    return m, weights, files
