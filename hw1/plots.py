"""Figures: each producer draws from plain arrays, saves the PNG and the data behind it (JSON)
side by side, and returns the figure's structure (titles, axes, series) for the snapshot ledger.

Every figure JSON names its drawer (`"kind"`) and holds all that drawer reads, so the PNG can be
redrawn from the JSON alone:

    python -m hw1.plots redraw figures/interpolation.json [more.json ...]   # or a folder: all in it

A figure JSON written before figures recorded their kind is brought to today's format first (in
place, every old key kept; hw1.plots_legacy says what it infers and what it defaults):

    python -m hw1.plots upgrade figures/paper [more folders or JSONs ...]

Plotting never imports the statistics: it draws what it is given.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .plots_grids import draw_ladder, draw_outcome_grid  # noqa: E402


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
    structure = _render_panels(path, panels, suptitle)
    _save(path, "panels", structure, {"suptitle": suptitle, "panels": [_panel_data(p) for p in panels]})
    return structure


def _render_panels(path: Path, panels: list[Panel], suptitle: str) -> dict:
    fig, axes = _figure(path, len(panels), (6.4 * len(panels), 4.6))
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
    _finish(fig, path, suptitle)
    return {
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


_PANEL_KEYS = ("title", "xlabel", "ylabel", "xscale", "yscale", "text")


def _panel_data(p: Panel) -> dict:
    return {
        **{k: getattr(p, k) for k in _PANEL_KEYS},
        **p.extra,
        "series": [
            {
                "label": s.label,
                "x": _jsonable(s.x),
                "y": _jsonable(s.y),
                "lo": _jsonable(s.lo),
                "hi": _jsonable(s.hi),
                "style": s.style,
                "notes": s.notes,
            }
            for s in p.series
        ],
    }


def _panel_from(d: dict) -> Panel:
    """The Panel that _panel_data saved (None in the arrays back to NaN)."""
    series = [
        Series(
            s["label"],
            _array(s["x"]),
            _array(s["y"]),
            _array(s["lo"]),
            _array(s["hi"]),
            s["style"],
            s["notes"],
        )
        for s in d["series"]
    ]
    extra = {k: v for k, v in d.items() if k not in (*_PANEL_KEYS, "series")}
    return Panel(**{k: d[k] for k in _PANEL_KEYS}, series=series, extra=extra)


def _array(a) -> np.ndarray | None:
    return None if a is None else np.asarray(a, dtype=float)


def _figure(path: Path, n: int, size: tuple[float, float], **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    return plt.subplots(1, n, figsize=size, squeeze=False, **kw)


def _finish(fig, path: Path, suptitle: str = "") -> None:
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _save(path: Path, kind: str, structure: dict, data: dict, **dumps) -> None:
    """path.with_suffix('.json'): the drawer's `kind`, the structure it returned, and its inputs."""
    path.with_suffix(".json").write_text(json.dumps({"kind": kind, "structure": structure, **data}, **dumps))


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
    structure = _render_trajectories(path, projections, losses, labels, suptitle, note_every)
    data = {
        "projections": {m: _jsonable(np.asarray(z).reshape(len(z), -1)) for m, z in projections.items()},
        "loss": _jsonable(losses),
        "labels": list(labels),
        "suptitle": suptitle,
        "note_every": note_every,
    }
    _save(path, "trajectories", structure, data)
    return structure


def _render_trajectories(path, projections, losses, labels, suptitle, note_every) -> dict:
    fig, axes = _figure(path, len(projections), (6.8 * len(projections), 5.6))
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
    _finish(fig, path, suptitle)
    return _structure(suptitle, meta)


def _trajectories_from(d: dict) -> tuple:
    proj = {m: _array(z).reshape(len(z), -1, 2) for m, z in d["projections"].items()}
    return proj, _array(d["loss"]), d["labels"], d["suptitle"], d["note_every"]


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
    path = Path(path)
    structure = _render_contour(path, coords, values, title, xlabel, ylabel, label, suptitle)
    data = {"coords": _jsonable(coords), "values": _jsonable(values)}
    labels = {"title": title, "xlabel": xlabel, "ylabel": ylabel, "label": label, "suptitle": suptitle}
    _save(path, "contour", structure, {**data, **labels})
    return structure


def _render_contour(path, coords, values, title, xlabel, ylabel, label, suptitle) -> dict:
    from matplotlib.colors import LogNorm

    v = np.asarray(values, float)
    fig, axes = _figure(path, 1, (6.4, 5.4))
    ax = axes[0][0]
    levels = np.geomspace(max(v.min(), 1e-12), v.max(), 25)
    cs = ax.contourf(coords, coords, v, levels=levels, norm=LogNorm(), cmap="viridis")
    ax.contour(coords, coords, v, levels=levels[::3], colors="white", linewidths=0.5, alpha=0.6)
    ax.plot(0, 0, "r*", ms=12, label="θ* (found minimum)")
    fig.colorbar(cs, ax=ax, label=label, format="%.2g")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=8, loc="upper right")
    _finish(fig, path, suptitle)
    return _structure(suptitle, [{"title": title, "xlabel": xlabel, "ylabel": ylabel, "series": [label]}])


def _contour_from(d: dict) -> tuple:
    names = ("title", "xlabel", "ylabel", "label", "suptitle")
    return (_array(d["coords"]), _array(d["values"]), *(d[k] for k in names))


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
    structure = _render_overview(path, labels, columns, groups)
    data = {"labels": list(labels), "groups": groups, "columns": columns}
    _save(path, "overview", structure, data, indent=1, default=lambda x: None)
    return structure


def _render_overview(path, labels, columns, groups) -> dict:
    height = 1.2 + 0.32 * len(labels)
    size = (4.2 * len(columns) + 3.2, height)
    fig, axes = _figure(path, len(columns), size, sharex=True, sharey=True)
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
    return _structure(
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


# ============================================================================ redrawing from the JSON
class NotAFigure(ValueError):
    """A JSON that no drawer can redraw: not JSON, no known "kind", or missing what its drawer reads."""


# kind -> (the drawer that renders the PNG only, the drawer's arguments read back from its JSON)
KINDS = {
    "panels": (_render_panels, lambda d: ([_panel_from(p) for p in d["panels"]], d["suptitle"])),
    "trajectories": (_render_trajectories, _trajectories_from),
    "contour": (_render_contour, _contour_from),
    "overview": (_render_overview, lambda d: (d["labels"], d["columns"], d["groups"])),
    "outcome-grid": (draw_outcome_grid, lambda d: (d["figure"],)),
    "ladder": (draw_ladder, lambda d: (d["family"], d["rows"], d["colours"])),
}


def redraw(json_path: Path, png: Path | None = None) -> dict:
    """Draw the PNG of a figure JSON again from the JSON alone, into png (default: beside it, the
    same name .png). The JSON is only read. -> the figure's structure, as its drawer returned it."""
    json_path = Path(json_path)
    try:
        data = json.loads(json_path.read_text())
    except (OSError, ValueError) as e:
        raise NotAFigure(f"{json_path}: cannot be read as JSON ({e})") from None
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind not in KINDS:
        raise NotAFigure(
            f"{json_path} is not a figure JSON: its 'kind' is {kind!r}, not one of {', '.join(KINDS)}. "
            "Figure JSONs lie beside their PNG; one written before figures recorded their kind "
            "cannot be redrawn before `python -m hw1.plots upgrade` brings it to today's format."
        )
    render, arguments = KINDS[kind]
    try:
        args = arguments(data)
    except (KeyError, TypeError, ValueError) as e:
        raise NotAFigure(
            f"{json_path}: a {kind!r} figure JSON without what its drawer reads ({e!r})"
        ) from None
    return render(Path(png) if png else json_path.with_suffix(".png"), *args)


def figure_jsons(folder: Path) -> list[Path]:
    """The figure JSONs under folder, recursively (the JSONs that name a known kind)."""
    out = []
    for p in sorted(Path(folder).rglob("*.json")):
        try:
            data = json.loads(p.read_text())
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("kind") in KINDS:
            out.append(p)
    return out


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m hw1.plots", description="Redraw figures from their JSON.")
    sub = ap.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("redraw", help="redraw each PNG beside its figure JSON from the JSON alone")
    cmd.add_argument("paths", nargs="+", type=Path, help="figure JSONs, or folders to search for them")
    old = sub.add_parser("upgrade", help="bring figure JSONs without a kind to today's format, in place")
    old.add_argument("paths", nargs="+", type=Path, help="JSONs, or folders to search (recursively)")
    args = ap.parse_args(argv)
    if args.command == "upgrade":
        from . import plots_legacy

        return plots_legacy.command(args.paths)
    failed = 0
    for given in args.paths:
        for path in figure_jsons(given) if given.is_dir() else [given]:
            try:
                redraw(path)
                print(f"redrew {path.with_suffix('.png')}")
            except NotAFigure as e:
                print(f"error: {e}", file=sys.stderr)
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
