"""String tensors as interned ids. In the ONNX ops compiled here strings only meet equality and data
movement, so each distinct string becomes an int32 id — one table per run, which starts with the
model's own string constants (interned at compile time, kept in the manifest's `strings`) and grows
with the strings fed — and the kernels move and compare ids. A string is never parsed, cut or joined:
an op that would (Cast, StringConcat, RegexFullMatch, ...) is refused by name.

The same table rules run in every runtime: encode_feeds / decode_outputs here (wasmtime, wgpu) and
web_runtime/feeds.js.
"""
from __future__ import annotations

import numpy as np

from .errors import InputError, UnsupportedOpError

COMPARES = ("Equal",)
# Ops that only move, pick or repeat elements: on ids they do what they do on the strings.
# Which inputs hold the elements (the others are indices, shapes, conditions); Equal and Concat: all.
DATA_INPUTS = {"Where": (1, 2)}
MOVES = ("Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Gather", "GatherElements",
         "GatherND", "Concat", "Slice", "Expand", "Tile", "Split", "Where", "Compress")


def _text(s, where: str) -> str:
    if isinstance(s, bytes):
        try:
            return s.decode("utf-8")
        except UnicodeDecodeError:
            raise UnsupportedOpError(f"{where}: a string that is not UTF-8 ({s[:40]!r}); strings must be UTF-8 text") from None
    return str(s)


class Table:
    """Strings → ids, in first-seen order."""

    def __init__(self, strings=()):
        self.strings: list[str] = []
        self.ids: dict[str, int] = {}
        for s in strings:
            self.id(s)

    def id(self, s: str) -> int:
        if s not in self.ids:
            self.ids[s] = len(self.strings)
            self.strings.append(s)
        return self.ids[s]

    def encode(self, arr, where: str) -> np.ndarray:
        a = np.asarray(arr, dtype=object)
        flat = [self.id(_text(s, where)) for s in a.reshape(-1)]
        return np.asarray(flat, dtype=np.int32).reshape(a.shape)


def intern_graph(g, source: str) -> None:
    """Turn the graph's string values into int32 id values: constants (initializers, Constant nodes)
    become ids of g.strings, the compile-time table; g.string_values names every value that holds
    ids. Raises UnsupportedOpError for a node that would treat a string as anything but a whole value."""
    table = Table()
    g.string_values = set()
    for name, v in g.values.items():
        if v.dtype == "string":
            g.string_values.add(name)
            if v.const is not None:
                v.const = table.encode(v.const, f"{source}: initializer {name!r}")
            v.dtype = "int32"
    for n in g.nodes:
        if n.op == "Constant":
            for key in ("value", "value_strings", "value_string"):
                val = n.attrs.get(key)
                if key == "value" and not (isinstance(val, np.ndarray) and val.dtype == object):
                    continue
                if val is not None:
                    del n.attrs[key]
                    n.attrs["value"] = table.encode(val, f"{source}: node {n.name} (Constant)")
            continue
        takes = [i for i in n.inputs if i in g.string_values]
        gives = [o for o in n.outputs if o in g.string_values]
        if not takes and not gives:
            continue
        if n.op not in COMPARES + MOVES:
            what = f"input {takes[0]!r}" if takes else f"output {gives[0]!r}"
            raise UnsupportedOpError(f"{source}: node {n.name} ({n.op}): {what} is a string tensor; strings are compiled "
                                     f"only for {', '.join(COMPARES)} and data movement ({', '.join(MOVES)})")
        # Ids mean nothing next to numbers: every data input of the node is a string, or the model is wrong.
        data = [i for k, i in enumerate(n.inputs) if i and (k in DATA_INPUTS.get(n.op, (0,)) or n.op in ("Equal", "Concat"))]
        mixed = [i for i in data if i not in g.string_values]
        if mixed or (n.op in MOVES and gives and not takes):
            raise UnsupportedOpError(f"{source}: node {n.name} ({n.op}): input {(mixed or data)[0]!r} is not a string "
                                     f"tensor, but {'its other data inputs are' if mixed else 'its output is'}")
    g.strings = table.strings


def encode_feeds(specs: list[dict], feeds: dict, strings: list[str]) -> tuple[dict, Table | None]:
    """Feeds with each string input (spec `encoding: "string"`) replaced by its ids in this run's table
    (the manifest's `strings` first); the table, to decode string outputs, or None without string inputs."""
    named = [s for s in specs if s.get("encoding") == "string"]
    if not named or not isinstance(feeds, dict):
        return feeds, None
    table = Table(strings)
    out = dict(feeds)
    for spec in named:
        name = spec["name"]
        if name not in feeds:
            continue  # check_feeds names the missing input
        a = np.asarray(feeds[name], dtype=object)
        bad = next((x for x in a.reshape(-1) if not isinstance(x, (str, bytes, np.str_, np.bytes_))), None)
        if bad is not None:
            raise InputError(f"input {name!r}: expected strings (str or UTF-8 bytes), got {type(bad).__name__} {bad!r}")
        try:
            out[name] = table.encode(a, f"input {name!r}")
        except UnsupportedOpError as e:
            raise InputError(str(e)) from None
    return out, table


def decode_outputs(specs: list[dict], outputs: dict, table: Table | None, strings: list[str]) -> dict:
    """String outputs back from ids to strings (numpy object arrays of str)."""
    named = [s for s in specs if s.get("encoding") == "string"]
    if not named:
        return outputs
    table = table or Table(strings)
    for spec in named:
        ids = outputs[spec["name"]]
        words = table.strings
        out = np.empty(ids.shape, dtype=object)
        out.reshape(-1)[:] = [words[i] if 0 <= i < len(words) else None for i in ids.reshape(-1).tolist()]
        outputs[spec["name"]] = out
    return outputs
