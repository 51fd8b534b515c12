"""The WASM gemm schedule space ("lite" search space) and its pruning, per device class.

A schedule is a dict merged into the gemm kernel's params (kernels_wasm/gemm.wat.j2; every key but
mr/nr optional, the template's default in brackets):
    mr, nr   register tile: mr rows × nr columns of C (nr a multiple of 4)
    kb       K block: C accumulates over blocks of kb k steps, so that the kb×nr B slice and the
             mr A rows stay in L1 between row tiles                          [0 = one block]
    mb       row block (a multiple of mr): an mb×kb block of A stays in L2 while every column
             panel passes                                                   [0 = no blocking]
    kunroll  k steps per K-loop iteration (1, 2, 4)                         [1]
    pw       packed B only: width of the packed panels (nr divides it)      [nr]
Entries for a packed B carry only keys that differ from the template's defaults (all entries of
one space share pw). Entries for a run-time B always carry kb and mb (0 = none), because their
default is blocked and the pipeline merges an entry over the default's params.

Pruning (docs/space.md gives the measurements behind each rule):
  1. Registers: vregs_needed(mr, nr) (relaxed: accumulators + nr/4 B vectors + mr splats) ≤ the
     device's allocatable v128 registers. Past it V8 spills accumulators on every k step.
  2. Shape: mr ≤ M and nr ≤ N rounded up to 4 (a larger tile only computes padding).
  3. Fill: a tile uses ≥ FILL of the register file, or of the most any tile passing 1-2 can use
     (tiny M or N), because a small tile reloads B and A more per multiply-add.
  4. Packed B: nr divides the panel width the weights were packed with.
  5. Variants (kb, mb) only on the VARIANT_TILES best tiles of each device, and only when they
     change the loops: kb < K, mb < M. Duplicates (after normalising kb ≥ K to 0 and mb ≥ M to 0)
     are dropped, never more than one entry per distinct kernel.
  6. kunroll u ∈ {2, 4} (same tiles) only when K ≥ 2u and the loads of the extra u − 1 steps fit
     the registers too (V8 hoists them all): vregs_needed + (u−1)·(nr/4 + mr) ≤ registers. On
     x86-64 this rules every unroll out, as measured (4x8 and 2x16 lose ~40% with kunroll 2 or 4);
     on arm64 it leaves kunroll 2 for the smaller tiles.
The first entry is the default: the one the bundle runs before (or without) tuning. Its tile is
gemm_pack.gemm_candidates' first (measured in V8 on x86-64, fits the plain mul + add variant in 15
registers) for every class, so a bundle has one default whatever the space was generated for; with
a run-time B it is blocked by rule 5's kb and mb for the x86-64 caches (when they apply).
"""
from __future__ import annotations

from dataclasses import dataclass

from .codegen.gemm_pack import _GENERAL, _SKINNY, gemm_candidates, vregs_needed


@dataclass(frozen=True)
class Device:
    name: str
    vregs: int   # v128 registers V8's register allocator may use for wasm
    l1d: int     # bytes of L1 data cache per core
    l2: int      # bytes of L2 per core (the smaller end of the class)


DEVICES = {
    # V8 src/codegen/x64/register-x64.h: xmm0-xmm14 allocatable, xmm15 is kScratchDoubleReg (no
    # AVX-512 registers are used by wasm SIMD). Caches: Intel since Skylake and AMD Zen 1-4 have a
    # 32 KiB L1d; L2 is 512 KiB (Zen 1-3) to 1-2 MiB (Zen 4, Intel server/P-cores): the small end.
    "x86-64": Device("x86-64", vregs=15, l1d=32 * 1024, l2=512 * 1024),
    # V8 src/codegen/arm64/register-arm64.h ALLOCATABLE_DOUBLE_REGISTERS: d0-d14, d16-d28 = 28 of the
    # 32 NEON registers (d15 fp_zero, d29 kept for alignment, d30/d31 scratch). Caches: Cortex-A76/
    # A78/X1 have a 64 KiB L1d, Apple M1+ 128 KiB; L2 ≥ 1 MiB on current phones' big cores and Apple.
    "arm64": Device("arm64", vregs=28, l1d=64 * 1024, l2=1024 * 1024),
}

FILL = 0.7
VARIANT_TILES = 3
MR_MAX = 8
NR_CHOICES = (4, 8, 12, 16, 20, 24, 28, 32)
# Width constant B is packed with (rule 4 and `packing_width`): see docs/space.md for the figures.
PACK_WIDTH = 16


def _tiles(M: int, N: int, dev: Device, packed_nr: int | None) -> list[tuple[int, int]]:
    """Tiles passing rules 1-4 for this device, in preference order."""
    n4 = -(-N // 4) * 4
    fit = [(mr, nr) for mr in range(1, MR_MAX + 1) for nr in NR_CHOICES
           if vregs_needed(mr, nr) <= dev.vregs and mr <= max(M, 1) and nr <= max(n4, 4)]
    if packed_nr:
        fit = [t for t in fit if packed_nr % t[1] == 0]
    if not fit:
        return []
    floor = FILL * min(dev.vregs, max(vregs_needed(*t) for t in fit))
    fit = [t for t in fit if vregs_needed(*t) >= floor]
    return sorted(fit, key=lambda t: _rank(t, M, N, dev))


def _rank(t: tuple[int, int], M: int, N: int, dev: Device) -> tuple:
    """Preference: the measured x86-64 order (gemm_pack) where it lists the tile, then a model:
    padded work (tile waste on both edges), then loads per multiply-add (nr/4 B vectors and mr
    splats feed mr·nr/4 madds), then the larger tile."""
    mr, nr = t
    measured = list(_SKINNY.get(M, _GENERAL)) if dev.name == "x86-64" else []
    pos = measured.index(t) if t in measured else len(measured)
    waste = (-(-M // mr) * mr) * (-(-N // nr) * nr) / (max(M, 1) * max(N, 1))
    loads = (nr // 4 + mr) / (mr * nr // 4)
    return (pos, round(waste, 2), round(loads, 3), -mr * nr)


def _kb(K: int, mr: int, nr: int, dev: Device) -> int:
    """K block whose B slice (kb×nr) and mr A rows fill half of L1, split into equal blocks."""
    kmax = max(4, dev.l1d // 2 // (4 * (nr + mr)))
    if kmax >= K:
        return 0
    blocks = -(-K // kmax)
    return -(-(-(-K // blocks)) // 4) * 4


def _mb(M: int, K: int, kb: int, mr: int, dev: Device) -> int:
    """Rows of A (a multiple of mr) whose kb-wide (or K-wide) block fills half of L2."""
    rows = dev.l2 // 2 // (4 * (kb or K))
    rows = max(mr, rows // mr * mr)
    if rows >= M:
        return 0
    blocks = -(-M // rows)
    return -(-(-(-M // blocks)) // mr) * mr


def _entry(mr, nr, kb=0, mb=0, kunroll=1, pw=None) -> dict:
    e = {"mr": mr, "nr": nr}
    if kb or not pw:
        e["kb"] = kb
    if mb or not pw:
        e["mb"] = mb
    if kunroll != 1:
        e["kunroll"] = kunroll
    if pw and pw != nr:
        e["pw"] = pw
    return e


def _key(e: dict, M: int, K: int) -> tuple:
    kb = e.get("kb", 0)
    mb = e.get("mb", 0)
    return (e["mr"], e["nr"], 0 if kb >= K else kb, 0 if mb >= M else mb, e.get("kunroll", 1))


def default_schedule(M: int, N: int, K: int, packed_nr: int | None = None) -> dict:
    return wasm_gemm_space(M, N, K, packed_nr=packed_nr)[0]


def wasm_gemm_space(M: int, N: int, K: int, *, packed_nr: int | None = None,
                    device: str = "x86-64") -> list[dict]:
    """Schedules for an M×N×K gemm on one device class, default first. `packed_nr`: B is a constant
    packed into panels of that width (only tiles reading that layout, and each entry carries pw)."""
    dev = DEVICES[device]
    tiles = _tiles(M, N, dev, packed_nr)
    # The default is gemm_pack's measured x86-64 default whatever the class (it fits the plain
    # variant in 15 registers, so every class), or the best tile when a packing rules it out.
    head = [(c["mr"], c["nr"]) for c in gemm_candidates(M, N, K)
            if not packed_nr or packed_nr % c["nr"] == 0][:1] or tiles[:1]
    out, seen = [], set()

    def add(e):
        k = _key(e, M, K)
        if k not in seen:
            seen.add(k)
            out.append(e)

    if head and not packed_nr:
        # Run-time (row-major) B: blocking the default, with the x86-64 caches whatever the class,
        # measured +10% to +65% over no blocking (docs/space.md); packed B gains nothing from it.
        x86 = DEVICES["x86-64"]
        kb = _kb(K, *head[0], x86)
        add(_entry(*head[0], kb=kb, mb=_mb(M, K, kb, head[0][0], x86)))
    for mr, nr in head + tiles:
        add(_entry(mr, nr, pw=packed_nr))
    for mr, nr in (head + tiles)[:VARIANT_TILES]:
        kb = _kb(K, mr, nr, dev)
        mb = _mb(M, K, 0, mr, dev)
        mbk = _mb(M, K, kb, mr, dev)
        if kb:
            add(_entry(mr, nr, kb=kb, pw=packed_nr))
        if mb:
            add(_entry(mr, nr, mb=mb, pw=packed_nr))
        if kb and mbk:
            add(_entry(mr, nr, kb=kb, mb=mbk, pw=packed_nr))
        for u in (2, 4):
            if K >= 2 * u and vregs_needed(mr, nr) + (u - 1) * (nr // 4 + mr) <= dev.vregs:
                add(_entry(mr, nr, kunroll=u, pw=packed_nr))
    return out


def wasm_gemm_space_all(M: int, N: int, K: int, packed_nr: int | None = None) -> list[dict]:
    """Union over every device class, deduplicated, the default first: what a bundle carries."""
    out, seen = [], set()
    for device in DEVICES:
        for e in wasm_gemm_space(M, N, K, packed_nr=packed_nr, device=device):
            k = _key(e, M, K)
            if k not in seen:
                seen.add(k)
                out.append(e)
    return out


def packing_width(M: int, N: int, K: int) -> int:
    """Panel width to pack a constant B with: the default tile's nr, widened to PACK_WIDTH when N
    fills such a panel and the default nr divides it, so tiles of nr ∈ divisors(PACK_WIDTH) can be
    tuned without repacking. Narrow N keeps nr (a wide panel would pad the weights)."""
    nr = wasm_gemm_space(M, N, K)[0]["nr"]
    if N >= PACK_WIDTH and PACK_WIDTH % nr == 0:
        return PACK_WIDTH
    return nr
