"""Write and read bundles (docs/bundle.md): manifest.json, weights.bin, kernels/*.wasm, sha256 of each."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .errors import BundleError

FORMAT = "nnjit-bundle"
VERSION = 1


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bundle(out: Path, manifest: dict, weights: bytes, kernel_files: dict[str, bytes]) -> Path:
    out = Path(out)
    (out / "kernels").mkdir(parents=True, exist_ok=True)
    for old in (out / "kernels").glob("*.wasm"):
        if old.name not in {Path(p).name for p in kernel_files}:
            old.unlink()
    for rel, data in kernel_files.items():
        (out / rel).write_bytes(data)
    (out / "weights.bin").write_bytes(weights)
    manifest = {"format": FORMAT, "version": VERSION, **manifest}
    manifest["weights"] = {"file": "weights.bin", "bytes": len(weights), "sha256": sha256(weights)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out


def read_manifest(bundle: Path) -> dict:
    path = Path(bundle) / "manifest.json"
    if not path.is_file():
        raise BundleError(f"{bundle}: no manifest.json (not a bundle directory?)")
    try:
        m = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
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
    """Manifest, verified weights and every verified kernel file (keyed by relative path)."""
    m = read_manifest(bundle)
    weights = verify_file(bundle, m["weights"]["file"], m["weights"]["sha256"])
    files = {}
    for k in m["kernels"]:
        files[k["file"]] = verify_file(bundle, k["file"], k["sha256"])
        if k.get("relaxed"):
            files[k["relaxed"]["file"]] = verify_file(bundle, k["relaxed"]["file"], k["relaxed"]["sha256"])
    return m, weights, files
