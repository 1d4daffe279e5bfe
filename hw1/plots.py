"""Figures: each producer draws from plain arrays, saves the PNG and the data behind it (JSON)
side by side, and returns the figure's structure (titles, axes, series) for the snapshot ledger.

Plotting never imports the statistics: it draws what it is given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


@dataclass
class Series:
    """One line (or cloud of points) with an optional band lo..hi (e.g. across seeds)."""

    label: str
    x: np.ndarray
    y: np.ndarray
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    style: str = "line"  # "line", "points", "dashed", "truth"
    notes: list[str] | None = None  # text written at each point (style "points")


@dataclass
class Panel:
    title: str
    xlabel: str
    ylabel: str
    series: list[Series]
    xscale: str = "linear"
    yscale: str = "linear"
    text: str = ""  # a note written in the corner (e.g. a tolerance or a verdict)
    extra: dict = field(default_factory=dict)


def _jsonable(a):
    if a is None:
        return None
    a = np.asarray(a, dtype=float)
    return (
        [None if not np.isfinite(v) else float(v) for v in a.ravel()]
        if a.ndim <= 1
        else [_jsonable(row) for row in a]
    )


def _draw_series(ax, s: Series, color) -> None:
    x, y = np.asarray(s.x, float), np.asarray(s.y, float)
    if s.style == "points":
        ax.scatter(x, y, s=18, color=color, label=s.label, alpha=0.8)
        for xi, yi, note in zip(x, y, s.notes or []):
            ax.annotate(note, (xi, yi), fontsize=6, alpha=0.7, xytext=(2, 2), textcoords="offset points")
        return
    ls = {"dashed": "--", "truth": "-"}.get(s.style, "-")
    lw, col = (2.5, "black") if s.style == "truth" else (1.5, color)
    ax.plot(x, y, ls, color=col, lw=lw, label=s.label, marker="o" if len(x) <= 12 else None, ms=4)
    if s.lo is not None and s.hi is not None:
        ax.fill_between(x, np.asarray(s.lo, float), np.asarray(s.hi, float), color=col, alpha=0.2)


def draw(path: Path, panels: list[Panel], suptitle: str = "") -> dict:
    """Draw panels side by side into path (.png) and the data into path.with_suffix('.json').

    -> structure {'suptitle', 'panels': [{title, xlabel, ylabel, xscale, yscale, series: [labels]}]}
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.6), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, p in zip(axes[0], panels):
        i = 0  # the truth is drawn in black and takes no colour: series keep their colours across figures
        for s in p.series:
            _draw_series(ax, s, colors[i % len(colors)])
            i += s.style != "truth"
        ax.set(title=p.title, xlabel=p.xlabel, ylabel=p.ylabel, xscale=p.xscale, yscale=p.yscale)
        ax.grid(alpha=0.3, which="both" if p.yscale == "log" else "major")
        if len(p.series) > 0:  # the note heads the legend: a separate box could sit on top of it
            ax.legend(fontsize=8, title=p.text or None, title_fontsize=8)
        elif p.text:
            ax.text(
                0.02,
                0.02,
                p.text,
                transform=ax.transAxes,
                fontsize=8,
                va="bottom",
                bbox=dict(facecolor="white", alpha=0.8, edgecolor="0.8"),
            )
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    structure = {
        "suptitle": suptitle,
        "panels": [
            {
                "title": p.title,
                "xlabel": p.xlabel,
                "ylabel": p.ylabel,
                "xscale": p.xscale,
                "yscale": p.yscale,
                "series": [s.label for s in p.series],
            }
            for p in panels
        ],
    }
    data = {
        "structure": structure,
        "panels": [
            {
                "title": p.title,
                "text": p.text,
                **p.extra,
                "series": [
                    {
                        "label": s.label,
                        "x": _jsonable(s.x),
                        "y": _jsonable(s.y),
                        "lo": _jsonable(s.lo),
                        "hi": _jsonable(s.hi),
                        "notes": s.notes,
                    }
                    for s in p.series
                ],
            }
            for p in panels
        ],
    }
    path.with_suffix(".json").write_text(json.dumps(data))
    return structure


def band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre and spread across seeds of values (seeds, T): median and the 25-75% quantiles."""
    v = np.asarray(values, float)
    q = np.nanquantile(v, [0.25, 0.5, 0.75], axis=0)
    return q[1], q[0], q[2]


# ============================================================================ HW1-2 Optimization
def _structure(suptitle: str, panels: list[dict]) -> dict:
    keys = ("title", "xlabel", "ylabel", "xscale", "yscale", "series")
    return {"suptitle": suptitle, "panels": [{k: p.get(k, "linear") for k in keys} for p in panels]}


def draw_trajectories(
    path: Path,
    projections: dict[str, np.ndarray],
    losses: np.ndarray,
    labels: list[str],
    suptitle: str = "",
    note_every: int = 25,
) -> dict:
    """2-D parameter trajectories, one panel per projection method, the loss written at points.

    projections: {method: (K, T, 2)}; losses (K, T) at the same snapshots; labels (K,).
    Each run is a line from a hollow start marker to a filled end marker; the loss is written
    every `note_every` snapshots and at the end. -> the structure dict of `draw`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(projections), figsize=(6.8 * len(projections), 5.6), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    meta = []
    for ax, (method, z) in zip(axes[0], projections.items()):
        for k, (zk, lk) in enumerate(zip(z, losses)):
            c = colors[k % len(colors)]
            ax.plot(zk[:, 0], zk[:, 1], "-", color=c, lw=1.0, alpha=0.8, label=labels[k])
            ax.scatter(*zk[0], s=40, facecolors="none", edgecolors=c)
            ax.scatter(*zk[-1], s=40, color=c, marker="s")
            for t in [*range(0, len(zk) - 1, note_every), len(zk) - 1]:
                ax.annotate(
                    f"{lk[t]:.2g}", zk[t], fontsize=6, color=c, xytext=(2, 2), textcoords="offset points"
                )
        name = {"pca": "PCA", "tsne": "t-SNE"}.get(method, method)
        title = f"{name} (fitted jointly on all runs; o start, ■ end, loss at points)"
        ax.set(title=title, xlabel=f"{name} component 1", ylabel=f"{name} component 2")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        meta.append(
            {
                "title": title,
                "xlabel": f"{name} component 1",
                "ylabel": f"{name} component 2",
                "series": list(labels),
            }
        )
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    structure = _structure(suptitle, meta)
    path.with_suffix(".json").write_text(
        json.dumps(
            {
                "structure": structure,
                "projections": {m: _jsonable(z.reshape(len(z), -1)) for m, z in projections.items()},
                "loss": _jsonable(losses),
                "labels": list(labels),
            }
        )
    )
    return structure


def draw_contour(
    path: Path,
    coords: np.ndarray,
    values: np.ndarray,
    title: str,
    xlabel: str,
    ylabel: str,
    label: str,
    suptitle: str = "",
) -> dict:
    """A filled contour of values (n, n) (indexed [y, x]) over coords (n,) x coords, log-coloured,
    with the centre marked. -> the structure dict of `draw`."""
    from matplotlib.colors import LogNorm

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    v = np.asarray(values, float)
    fig, ax = plt.subplots(figsize=(6.4, 5.4))
    levels = np.geomspace(max(v.min(), 1e-12), v.max(), 25)
    cs = ax.contourf(coords, coords, v, levels=levels, norm=LogNorm(), cmap="viridis")
    ax.contour(coords, coords, v, levels=levels[::3], colors="white", linewidths=0.5, alpha=0.6)
    ax.plot(0, 0, "r*", ms=12, label="θ* (found minimum)")
    fig.colorbar(cs, ax=ax, label=label, format="%.2g")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=8, loc="upper right")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    structure = _structure(
        suptitle, [{"title": title, "xlabel": xlabel, "ylabel": ylabel, "series": [label]}]
    )
    path.with_suffix(".json").write_text(
        json.dumps({"structure": structure, "coords": _jsonable(coords), "values": _jsonable(v)})
    )
    return structure


# ============================================================================ the report's overview
OUTCOME_COLORS = {
    "reproduced": "#2a9d44",
    "contradicted": "#d1352b",
    "not shown": "#e0a100",
    "inconclusive": "#8c8c8c",
}


def _overview_panel(ax, rows: list[dict | None], title: str) -> None:
    """One column of the overview: a dot and its interval per case (row 0 at the top)."""
    ax.axvline(0, color="black", lw=0.8)
    for y, row in enumerate(rows):
        if row is None:
            ax.text(0, y, "not run", ha="center", va="center", fontsize=8, color="0.55")
            continue
        d, lo, hi = (row[k] if row[k] is not None else np.nan for k in ("d", "low", "high"))
        color = OUTCOME_COLORS.get(row["status"], "0.5")
        if not np.isfinite(d):
            ax.text(0, y, "no estimate", ha="center", va="center", fontsize=8, color=color)
            continue
        ax.plot([lo, hi], [y, y], color=color, lw=2.2, solid_capstyle="butt")
        ax.plot(d, y, "o", color=color, ms=7, mec="white", mew=0.8)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("standardized effect z/√n  (claimed direction →)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_ylim(len(rows) - 0.5, -0.5)


def draw_overview(
    path: Path, labels: list[str], columns: dict[str, list[dict | None]], groups: list[str] | None = None
) -> dict:
    """Every claim case on one signed scale, one panel per scale (e.g. ci, paper), side by side.

    labels: (cases,) row labels, top to bottom; columns: {scale: (cases,) of None (not run) or
    {'status', 'd', 'low', 'high', ...}}: the effect d with its interval on a scale where the
    claimed direction is positive; groups: (cases,) e.g. the report section of each row, ruled
    off from the next. Saves the PNG and the data (JSON). -> the structure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height = 1.2 + 0.32 * len(labels)
    fig, axes = plt.subplots(
        1, len(columns), figsize=(4.2 * len(columns) + 3.2, height), sharex=True, sharey=True, squeeze=False
    )
    for ax, (name, rows) in zip(axes[0], columns.items()):
        _overview_panel(ax, rows, f"{name} scale")
    ends = [
        abs(row[k])
        for rows in columns.values()
        for row in rows
        if row
        for k in ("low", "high")
        if row[k] is not None and np.isfinite(row[k])
    ]
    reach = max([1.0, *ends]) * 1.08  # symmetric about 0: the claimed side is the right half
    axes[0][0].set_xlim(-reach, reach)
    for y in [k for k in range(1, len(labels)) if groups and groups[k] != groups[k - 1]]:
        for ax in axes[0]:
            ax.axhline(y - 0.5, color="0.6", lw=0.8, ls="--")
    axes[0][0].set_yticks(range(len(labels)), labels, fontsize=9)
    handles = [plt.Line2D([], [], color=c, marker="o", lw=2.2, label=s) for s, c in OUTCOME_COLORS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.35 / height, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    structure = _structure(
        "",
        [
            {
                "title": f"{name} scale",
                "xlabel": "standardized effect z/√n",
                "ylabel": "",
                "series": list(labels),
            }
            for name in columns
        ],
    )
    path.with_suffix(".json").write_text(
        json.dumps(
            {"structure": structure, "labels": list(labels), "groups": groups, "columns": columns},
            indent=1,
            default=lambda x: None,
        )
    )
    return structure
