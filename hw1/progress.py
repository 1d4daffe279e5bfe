"""Progress of long trainings for whoever watches: one small JSON state file per process.

Off unless `HW1_PROGRESS_DIR` names a folder. The pytest plugin `claims/progress_plugin.py` sets it
on the controller, xdist workers inherit it, and the controller reads the files and prints one line
every so often; outside pytest, point it at a folder and read it with `summary`.

A process writes `<dir>/<label>.json` (label: `HW1_PROGRESS_LABEL`, which the plugin sets to the
xdist worker id, else `pid<pid>`), atomically and at most once per `INTERVAL` seconds: what trains,
the steps done, the total, the seconds so far and an ETA. Training loops call `start(name, total)`
once and `update(done)` every step; when progress is off that costs one attribute check.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path

DIR_ENV, LABEL_ENV = "HW1_PROGRESS_DIR", "HW1_PROGRESS_LABEL"
INTERVAL = 1.0  # seconds between two writes of one process: a long run costs ~1 small write a second
QUIET_AFTER = 10.0  # a state older than this (s) says how old it is: slow epochs look alive


def folder() -> Path | None:
    value = os.environ.get(DIR_ENV, "").strip()
    return Path(value) if value else None


def label() -> str:
    return os.environ.get(LABEL_ENV, "").strip() or f"pid{os.getpid()}"


class Task:
    """One training's progress: `update(done)` after each step, `close()` at the end.

    Writes nothing when progress is off (no HW1_PROGRESS_DIR at creation).
    """

    def __init__(self, name: str, total: int, unit: str = "epoch"):
        self.name, self.total, self.unit = name, int(total), unit
        self.dir = folder()
        self.start = time.monotonic()
        self.last = -float("inf")  # monotonic time of the last write
        self.done = 0
        if self.dir is not None:
            self._write(finished=False)

    def update(self, done: int) -> None:
        """`done` of `total` steps are finished (absolute, not an increment)."""
        self.done = done
        if self.dir is not None and time.monotonic() - self.last >= INTERVAL:
            self._write(finished=False)

    def close(self) -> None:
        if self.dir is not None:
            self._write(finished=True)

    def offset(self, steps: int) -> "_Offset":
        """A view that reports its own steps shifted by `steps` (one part of a longer task)."""
        return _Offset(self, steps)

    def eta(self) -> float | None:
        """Seconds left at the mean speed so far; None before the first step."""
        if self.done <= 0:
            return None
        elapsed = time.monotonic() - self.start
        return elapsed / self.done * max(self.total - self.done, 0)

    def state(self, finished: bool) -> dict:
        return {
            "label": label(),
            "pid": os.getpid(),
            "name": self.name,
            "unit": self.unit,
            "done": self.done,
            "total": self.total,
            "elapsed": time.monotonic() - self.start,
            "eta": None if finished else self.eta(),
            "finished": finished,
            "time": time.time(),
        }

    def _write(self, finished: bool) -> None:
        self.last = time.monotonic()
        try:  # progress must never stop a training: a vanished folder just ends the reporting
            self.dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".", suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump(self.state(finished), f)
            os.replace(tmp, self.dir / f"{label()}.json")  # readers see the old or the new state
        except OSError:
            self.dir = None


class _Offset:
    """Part of a Task: steps counted from `steps` (e.g. seed k of K trained one after another)."""

    def __init__(self, task: Task, steps: int):
        self.task, self.steps = task, steps

    def update(self, done: int) -> None:
        self.task.update(self.steps + done)

    def close(self) -> None:
        pass  # the whole task closes once, when its last part is done


def start(name: str, total: int, unit: str = "epoch") -> Task:
    """A Task for `total` steps of the training `name` (its first state is written at once)."""
    return Task(name, total, unit)


# ---------------------------------------------------------------- reading (the watcher's side)


def read_states(where: Path) -> list[dict]:
    """The states in the folder `where`, ordered by label (gw2 before gw10)."""
    states = []
    for path in Path(where).glob("*.json"):
        try:
            states.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # replaced or removed while we read it: the next round sees it
    return sorted(
        states,
        key=lambda s: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(s.get("label", "")))],
    )


def duration(seconds: float) -> str:
    """8s, 2m05s, 1h02m."""
    s = int(round(max(seconds, 0)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def describe(state: dict, now: float) -> str:
    """One process's part of the line, e.g. 'gw0: fit sinc epoch 1200/2000 ETA 8s'."""
    age = now - state["time"]
    head = f"{state['label']}: "
    if state["finished"]:
        return head + f"done {state['name']} ({duration(age)} ago)"
    text = head + f"{state['name']} {state['unit']} {state['done']}/{state['total']}"
    if state.get("eta") is not None:
        text += f" ETA {duration(state['eta'] - age)}"
    if age > QUIET_AFTER:
        text += f" (last update {duration(age)} ago)"
    return text


def summary(where: Path, started: float, since: float = 0.0, now: float | None = None) -> str | None:
    """The progress line for the states in `where`, or None when there is nothing new to say.

    started: wall time (time.time()) the session began; since: wall time of the previous line.
    A line is due while something trains, or when a state changed since the previous line.
    """
    now = time.time() if now is None else now
    states = read_states(where)
    if not any(not s["finished"] or s["time"] > since for s in states):
        return None
    elapsed = int(now - started)
    clock = f"{elapsed // 60:02d}:{elapsed % 60:02d}" if elapsed < 3600 else duration(elapsed)
    return f"[progress {clock}] " + " | ".join(describe(s, now) for s in states)
