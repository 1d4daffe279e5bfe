"""Figures of outcomes over a grid of runs: the multiverse and departures heatmaps, and the
departures' data-size ladders. Each drawer takes one JSON-able spec, the same one that its figure
JSON holds, so `hw1.plots.redraw` can draw it again from the JSON alone.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

STRUCTURE = ("title", "x", "y", "columns", "rows")  # what a grid drawer returns of its spec


def draw_outcome_grid(png: Path, grid: dict) -> dict:
    """A heatmap of cases (rows) x columns, each cell coloured by its outcome.

    grid: {'title', 'x', 'y' (what the axes are), 'columns' (ids), 'rows' (labels), 'xlabel',
    'ylabel', 'xticks' (labels,
    one per column), 'cells' (rows x columns outcome names), 'colours' {outcome: colour, in the
    legend's order}, 'legend' {outcome: legend label when not the outcome's name}, 'blank' (the
    outcome of an empty grid), 'marks' [[row, column, text, colour]] written in cells,
    'row_notes' (text at each row's end, or None), 'divider' (a rule after this column, or None),
    'cell_width' (inches per column), 'lines' (rule off every cell), 'legend_x'}.
    -> its structure {title, x, y, columns, rows}."""
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    names, rows, cols = list(grid["colours"]), grid["rows"], grid["columns"]
    fig, ax = plt.subplots(figsize=(3.5 + grid["cell_width"] * len(cols), 1.8 + 0.32 * max(len(rows), 1)))
    ax.imshow(
        [[names.index(c) for c in row] for row in grid["cells"]] or [[names.index(grid["blank"])]],
        cmap=ListedColormap(list(grid["colours"].values())),
        vmin=0,
        vmax=len(names) - 1,
        aspect="auto",
    )
    ax.set_xticks(range(len(cols)), grid["xticks"], rotation=90, fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    if grid["lines"]:
        ax.set_xticks([x - 0.5 for x in range(1, len(cols))], minor=True)
        ax.set_yticks([y - 0.5 for y in range(1, len(rows))], minor=True)
        ax.grid(which="minor", color="#dddddd", linewidth=0.6)
        ax.tick_params(which="minor", length=0)
    if grid["divider"] is not None:
        ax.axvline(grid["divider"] + 0.5, color="black", linewidth=1.5)
    for y, x, text, colour in grid["marks"]:
        ax.text(x, y, text, ha="center", va="center", fontsize=6, color=colour)
    for y, note in enumerate(grid["row_notes"] or []):
        ax.text(len(cols) - 0.35, y, note, va="center", fontsize=8)
    ax.set_xlabel(grid["xlabel"])
    ax.set_ylabel(grid["ylabel"])
    ax.set_title(grid["title"], fontsize=10)
    legend = grid["legend"]
    handles = [
        Patch(facecolor=c, edgecolor="#888888", label=legend.get(n, n)) for n, c in grid["colours"].items()
    ]
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(grid["legend_x"], 1), fontsize=8, title="outcome"
    )
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return {k: grid[k] for k in STRUCTURE}


LADDER_LEGEND = ("reproduced", "not shown", "contradicted", "inconclusive")


def draw_ladder(png: Path, family: str, rows: list[dict], colours: dict[str, str]) -> dict:
    """One panel per case: its effect and interval against the fraction of the report's training
    set. rows: [{'case', 'points': [{'fraction', 'effect', 'low', 'high', 'status', 'effect_name'}]}]
    (a point without an effect is a rung not run); colours: {status: colour}.
    -> its structure {title, x, panels}."""
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, max(len(rows), 1), figsize=(4.8 * max(len(rows), 1), 3.6), squeeze=False)
    for ax, row in zip(axes[0], rows):
        _ladder_panel(ax, row, colours)
    handles = [
        plt.Line2D([], [], marker="o", linestyle="", color=c, label=n)
        for n, c in colours.items()
        if n in LADDER_LEGEND
    ]
    handles.append(
        plt.Line2D([], [], linestyle=":", color="#bbbbbb", label="rung not run (too dear / not yet)")
    )
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=8, bbox_to_anchor=(0.5, 0.0))
    title = f"{family}: the standardized effect (95% interval) as the training set grows toward the report's"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return {"title": title, "x": "fraction of the report's training set", "panels": [r["case"] for r in rows]}


def _ladder_panel(ax, row: dict, colours: dict[str, str]) -> None:
    pts = [p for p in row["points"] if p.get("effect") is not None]
    ax.plot(
        [p["fraction"] for p in pts], [p["effect"] for p in pts], color="#555555", linewidth=1, label="effect"
    )
    for p in pts:
        ax.errorbar(
            p["fraction"],
            p["effect"],
            yerr=[[p["effect"] - p["low"]], [p["high"] - p["effect"]]],
            fmt="o",
            color=colours.get(p["status"], "#000000"),
            capsize=3,
        )
    for p in row["points"]:
        if p.get("effect") is None and p.get("fraction"):
            ax.axvline(p["fraction"], color="#bbbbbb", linestyle=":", linewidth=1)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xscale("log")
    ticks = sorted({p["fraction"] for p in row["points"] if p.get("fraction")} | {1.0})
    ax.minorticks_off()
    ax.set_xticks(ticks, [f"{100 * t:.3g}%" for t in ticks], fontsize=8)
    ax.set_xlim(min(ticks) / 1.6, 1.6)
    ax.set_xlabel("training set, % of the report's 60000 images")
    ax.set_ylabel(pts[0]["effect_name"] if pts else "effect", fontsize=8)
    ax.set_title(row["case"], fontsize=9)
