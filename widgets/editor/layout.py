"""Automatic layered layout of a design for the canvas (top-to-bottom flow). Pure Python, no Qt.

Each layer goes on the row given by its longest path from a source (the Input), so every edge
points down. Within a row, nodes are ordered by the mean position of their inputs (barycentre),
ties kept in design order, so a chain stays a straight column and parallel branches sit side by
side. Edges that skip rows get a placeholder on each row they cross, which keeps the column
they run down free of nodes (residual connections do not pass behind the blocks they skip).

Long designs are wrapped like newspaper columns when the caller says how big the view is
(``view``): rows 0..R-1 form the first column, rows R..2R-1 the next one to its right, and so on,
with R chosen so the whole design, fitted into that view, is drawn as large as possible. An
11-layer CNN is then three short columns read left to right, instead of one column so tall that
fitting it shrinks its cards below legibility. A design that already fits at a comfortable zoom
stays one column: that reads most naturally.
"""
from __future__ import annotations

import math

from engine.layers import topo_order
from engine.spec import Spec

# Node cards on the canvas are 184 x 68 (widgets/editor/canvas_items.NODE_W/H); positions are card centres.
NODE_W, NODE_H = 184.0, 68.0
COLUMN_SPACING = 228.0
ROW_SPACING = 156.0
BAND_GAP = 96.0  # between wrapped columns: wider than between side-by-side nodes, so the bands read apart
FIT_MARGIN = 80.0  # what fit_to_view adds around the cards (both sides together), in scene pixels
COMFORTABLE_ZOOM = 0.75  # a single column fitted at this zoom or more is not wrapped
_DUMMY_WIDTH = 0.45  # a skipping edge needs less room than a node, in columns


def auto_layout(spec: Spec, view: tuple[float, float] | None = None) -> dict[str, tuple[float, float]]:
    """{layer id: (x, y)} card centres, rows top to bottom, the first row at y = 0 centred on x = 0.

    ``view`` (width, height in pixels, e.g. the canvas viewport's) lets a long design wrap into
    several columns of rows so that, fitted into that view, its cards come out largest.
    None keeps one column of rows.
    """
    ids = [lay.id for lay in spec.layers]
    if not ids:
        return {}
    known = set(ids)
    preds: dict[str, list[str]] = {i: [] for i in ids}
    seen_edges = set()
    for e in spec.edges:
        if e.src in known and e.dst in known and e.src != e.dst and (e.src, e.dst) not in seen_edges:
            seen_edges.add((e.src, e.dst))
            preds[e.dst].append(e.src)

    order, cyclic = topo_order(spec)
    rank: dict[str, int] = {}
    for n in order:
        rank[n] = max((rank[p] + 1 for p in preds[n] if p in rank), default=0)
    # Nodes in a cycle have no valid rank: park them on one row below everything else.
    last = max(rank.values(), default=-1) + 1
    for n in ids:
        if n in cyclic:
            rank[n] = last

    # Rows of real nodes plus placeholders for edges that skip rows.
    rows: dict[int, list[str]] = {}
    for n in ids:
        rows.setdefault(rank[n], []).append(n)
    ancestors: dict[str, set[str]] = {}
    for n in order:
        ancestors[n] = set().union(*([ancestors[p] | {p} for p in preds[n] if p in ancestors] or [set()]))
    chain_preds: dict[str, list[str]] = {n: [] for n in ids}  # inputs as seen on the row above
    is_dummy: dict[str, bool] = {n: False for n in ids}
    skip: set[str] = set()  # placeholders of a skip connection (its source also feeds another input)
    for dst in ids:
        for src in preds[dst]:
            if rank[dst] - rank[src] <= 1:
                chain_preds[dst].append(src)
                continue
            is_skip = any(src in ancestors.get(other, ()) for other in preds[dst] if other != src)
            prev = src
            for r in range(rank[src] + 1, rank[dst]):
                dummy = f"\0{src}->{dst}@{r}"
                rows.setdefault(r, []).append(dummy)
                chain_preds[dummy] = [prev]
                is_dummy[dummy] = True
                if is_skip:
                    skip.add(dummy)
                prev = dummy
            chain_preds[dst].append(prev)

    stable = {n: i for i, n in enumerate(ids)}
    x: dict[str, float] = {}
    for r in sorted(rows):
        members = rows[r]
        desired = {}
        for n in members:
            # A join follows its other inputs, not the placeholders of a skip connection: the main
            # path stays one straight column and the skip edge bends around it.
            placed_preds = [p for p in chain_preds[n] if p in x]
            main = [p for p in placed_preds if p not in skip]
            px = [x[p] for p in (main or placed_preds)]
            desired[n] = sum(px) / len(px) if px else 0.0
        # Real nodes before placeholders on ties so the main path keeps the straight column.
        members.sort(key=lambda n: (desired[n], is_dummy[n], stable.get(n, len(stable)), n))
        width = [(_DUMMY_WIDTH if is_dummy[n] else 1.0) * COLUMN_SPACING for n in members]
        placed = [desired[members[0]]]
        for i in range(1, len(members)):
            gap = (width[i - 1] + width[i]) / 2
            placed.append(max(desired[members[i]], placed[-1] + gap))
        # Shift the row so its real nodes sit as close as possible (on average) to where their
        # inputs want them; placeholders only make room.
        both = list(zip(members, placed, strict=True))
        pairs = [(n, p) for n, p in both if not is_dummy[n]] or both
        shift = sum(desired[n] - p for n, p in pairs) / len(pairs)
        for n, p in both:
            x[n] = p + shift

    n_rows = max(rank.values()) + 1
    wrap = view is not None and view[0] > 0 and view[1] > 0
    per_band = _rows_per_band(rows, x, n_rows, view) if wrap else n_rows
    if per_band >= n_rows:
        return {n: (round(x[n], 1), rank[n] * ROW_SPACING) for n in ids}
    # Wrapped: each band of rows keeps its own x layout, shifted right of the band before it.
    bands = _band_extents(rows, x, n_rows, per_band)
    offsets, left = [], 0.0
    for lo, hi in bands:
        offsets.append(left - lo)
        left += (hi - lo) + NODE_W + BAND_GAP
    centre = (left - BAND_GAP - NODE_W) / 2
    return {n: (round(x[n] + offsets[rank[n] // per_band] - centre, 1), (rank[n] % per_band) * ROW_SPACING)
            for n in ids}


def _band_extents(rows: dict[int, list[str]], x: dict[str, float], n_rows: int, per_band: int) -> list[tuple[float, float]]:
    """(min x, max x) of the card centres (placeholders included) in each band of ``per_band`` rows."""
    out = []
    for start in range(0, n_rows, per_band):
        xs = [x[n] for r in range(start, min(start + per_band, n_rows)) for n in rows.get(r, ())]
        out.append((min(xs), max(xs)) if xs else (0.0, 0.0))
    return out


def _rows_per_band(rows: dict[int, list[str]], x: dict[str, float], n_rows: int, view: tuple[float, float]) -> int:
    """The rows per column at which the design, fitted into ``view`` (never above 100 %), is drawn largest."""
    best, best_scale = n_rows, 0.0
    for n_bands in range(1, n_rows + 1):
        per_band = math.ceil(n_rows / n_bands)
        if n_bands > 1 and per_band == math.ceil(n_rows / (n_bands - 1)):
            continue  # the same split as one band fewer
        bands = _band_extents(rows, x, n_rows, per_band)
        width = sum(hi - lo + NODE_W for lo, hi in bands) + BAND_GAP * (len(bands) - 1) + FIT_MARGIN
        height = (per_band - 1) * ROW_SPACING + NODE_H + FIT_MARGIN
        scale = min(view[0] / width, view[1] / height, 1.0)
        if n_bands == 1 and scale >= COMFORTABLE_ZOOM:
            return n_rows
        if scale > best_scale * 1.05:  # one more column only for a real gain
            best, best_scale = per_band, scale
    return best
