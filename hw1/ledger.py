"""The verdict ledger's entry for a claim case: only what a machine cannot change.

Float results differ between CPUs (hw1.provenance), and thousands of training steps amplify the
last bits, so a borderline case can stop at another stage, and any number printed into a figure
label moves. The ledger (claims/__snapshots__/<scale>/) therefore pins, per case:

- the outcome and the test that decided it;
- each figure's structure (suptitle, panel titles, axes, scales, the kinds of series) with every
  number masked as `#` and repeated series kinds listed once ("seed # (final loss #)" stands for
  one line per seed, whatever the number of seeds).

Seeds used, p-values, effects and every measured number go to the records and the index instead
(figures/records/*.json, figures/INDEX.md), where nothing compares them exactly.

A case that the stability table (figures/stability.json) marks *fragile* has its outcome pinned
as its measured split ("fragile: contradicted | not shown"): any outcome within the split passes
and is listed as a difference; one outside it fails the run.
"""

from __future__ import annotations

import re

# A number as it appears in a label: 12, 0.00011, 2.4e-05, 1e3, -0.5. Digits inside words ("L2",
# "3πx") are masked too: the rule stays one regular expression, and the words around them remain.
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
MASK = "#"


def mask_numbers(text: str) -> str:
    """'seed 1 (final loss 0.00011)' -> 'seed # (final loss #)'."""
    return NUMBER.sub(MASK, text)


def figure_skeleton(structure: dict) -> dict:
    """A figure's structure (plots.draw's return) with numbers masked and series kinds listed once."""

    def mask(value):
        if isinstance(value, str):
            return mask_numbers(value)
        if isinstance(value, dict):
            return {k: mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v) for v in value]
        return value

    out = mask(structure)
    for panel in out.get("panels", []):
        if isinstance(panel.get("series"), list):
            panel["series"] = list(dict.fromkeys(panel["series"]))  # first-seen order
    return out


def fragile_split(stability: dict | None, label: str) -> frozenset[str] | None:
    """The outcomes a fragile case gave across seed sets, or None when the case is stable or was
    never measured. `stability` is figures/stability.json (hw1.stability)."""
    case = ((stability or {}).get("cases") or {}).get(label)
    if not case or case.get("stable"):
        return None
    return frozenset(s["status"] for s in case.get("sets", []))


def pinned_outcome(status: str, split: frozenset[str] | None) -> str:
    """What the ledger pins for this outcome: the outcome itself, or for a fragile case whose
    outcome lies within its split, the split."""
    if split and status in split:
        return "fragile: " + " | ".join(sorted(split))
    return status


def split_of_pinned(pinned: str) -> frozenset[str] | None:
    """The split a pinned outcome names ("fragile: a | b" -> {a, b}), or None for one outcome."""
    if not pinned.startswith("fragile: "):
        return None
    return frozenset(x.strip() for x in pinned[len("fragile: ") :].split("|"))


def entry(
    claim: str,
    case: str,
    status: str,
    test: str,
    structures: dict[str, dict],
    split: frozenset[str] | None = None,
) -> dict:
    """The ledger entry of one claim case (see the module docstring)."""
    return {
        "claim": claim,
        "case": case,
        "verdict": pinned_outcome(status, split),
        "test": test,
        "figures": {name: figure_skeleton(s) for name, s in structures.items()},
    }
