"""Automatic layered layout of a design for the canvas (top-to-bottom flow). Pure Python, no Qt.

Each layer goes on the row given by its longest path from a source (the Input), so every edge
points down. Within a row, nodes are ordered by the mean position of their inputs (barycentre),
ties kept in design order, so a chain stays a straight column and parallel branches sit side by
side. Edges that skip rows get a placeholder on each row they cross, which keeps the column
they run down free of nodes (residual connections do not pass behind the blocks they skip).
"""
from __future__ import annotations

from engine.layers import topo_order
from engine.spec import Spec

# Node cards on the canvas are 184 x 68 (widgets/canvas_items.NODE_W/H); positions are card centres.
COLUMN_SPACING = 228.0
ROW_SPACING = 156.0
_DUMMY_WIDTH = 0.45  # a skipping edge needs less room than a node, in columns


def auto_layout(spec: Spec) -> dict[str, tuple[float, float]]:
    """{layer id: (x, y)} card centres, rows top to bottom, the first row at y = 0 centred on x = 0."""
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

    return {n: (round(x[n], 1), rank[n] * ROW_SPACING) for n in ids}
