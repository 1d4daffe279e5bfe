"""Progress: state files written atomically and throttled, a sane ETA, a readable line, and the
pytest plugin that prints it, with and without xdist."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from hw1 import progress
from hw1.data import sample_target
from hw1.models import dnn_arch
from hw1.train import TrainOptions, train_ensemble

ROOT = Path(__file__).resolve().parent.parent


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """Progress switched on into an empty folder, this process labelled 'gw7'."""
    monkeypatch.setenv(progress.DIR_ENV, str(tmp_path / "progress"))
    monkeypatch.setenv(progress.LABEL_ENV, "gw7")
    return tmp_path / "progress"


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(progress.time, "monotonic", c)
    return c


def _state(folder: Path) -> dict:
    return json.loads((folder / "gw7.json").read_text())


def test_off_without_a_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(progress.DIR_ENV, raising=False)
    task = progress.start("fit", 10)
    task.update(5)
    task.close()
    assert task.dir is None


def test_writes_the_state_at_once_then_at_most_once_per_interval(folder, clock):
    task = progress.start("fit sinc", 1000)
    assert _state(folder)["done"] == 0 and _state(folder)["eta"] is None
    clock.now += 0.5
    task.update(10)  # within the interval: no write
    assert _state(folder)["done"] == 0
    clock.now += progress.INTERVAL
    task.update(300)
    assert _state(folder)["done"] == 300
    assert [p.name for p in folder.iterdir()] == ["gw7.json"]  # no temporary file left behind


def test_eta_is_the_mean_pace_so_far(folder, clock):
    task = progress.start("fit", 1000)
    clock.now += 10
    task.update(100)  # 10 s for 100 epochs: 900 more take 90 s
    assert _state(folder)["eta"] == pytest.approx(90)
    assert _state(folder)["elapsed"] == pytest.approx(10)
    task.close()
    state = _state(folder)
    assert state["finished"] and state["eta"] is None and state["done"] == 100


def test_a_folder_that_vanishes_never_stops_training(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(progress.DIR_ENV, str(blocker / "sub"))
    task = progress.start("fit", 3)
    task.update(3)
    task.close()
    assert task.dir is None  # gave up reporting, quietly


def test_training_reports_its_epochs(folder):
    x, y = sample_target("sinc", 16)
    train_ensemble(dnn_arch(1, 20), [0, 1], x, y, TrainOptions(epochs=4, lr=1e-2, name="fit probe"))
    state = _state(folder)
    assert (state["name"], state["done"], state["total"], state["finished"]) == ("fit probe", 4, 4, True)


def test_members_trained_one_by_one_report_as_one_task(folder):
    x, y = torch.randn(12, 1, 28, 28), torch.randint(0, 10, (12,))
    opts = TrainOptions(epochs=2, lr=1e-3, loss="ce", batch_size=6, vectorize=False, name="mnist probe")
    train_ensemble(dnn_arch(1, 20, n_in=784, n_out=10), [0, 1, 2], x.flatten(1), y, opts)
    state = _state(folder)
    assert (state["done"], state["total"], state["finished"]) == (6, 6, True)


def _put(folder: Path, label: str, **state) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    base = {
        "label": label,
        "pid": 1,
        "name": "fit",
        "unit": "epoch",
        "done": 1,
        "total": 2,
        "elapsed": 1.0,
        "eta": 1.0,
        "finished": False,
        "time": 1000.0,
    }
    (folder / f"{label}.json").write_text(json.dumps({**base, **state}))


def test_the_line_names_each_worker_in_order_with_its_epoch_and_eta(tmp_path):
    _put(tmp_path, "gw10", name="mnist cnn 4|", done=1, total=3, eta=40.0)
    _put(tmp_path, "gw2", name="fit sinc dnn 14-14-8", done=1200, total=2000, eta=8.0)
    _put(tmp_path, "gw1", name="fit sincos dnn 5", finished=True, time=988.0)
    line = progress.summary(tmp_path, started=1000.0 - 130, now=1000.0)
    assert line == (
        "[progress 02:10] gw1: done fit sincos dnn 5 (12s ago) | "
        "gw2: fit sinc dnn 14-14-8 epoch 1200/2000 ETA 8s | gw10: mnist cnn 4| epoch 1/3 ETA 40s"
    )


def test_the_line_says_how_old_a_quiet_state_is_and_nothing_when_nothing_is_new(tmp_path):
    _put(tmp_path, "gw0", eta=100.0, time=1000.0)
    line = progress.summary(tmp_path, started=0.0, now=1030.0)
    assert "ETA 1m10s (last update 30s ago)" in line and line.startswith("[progress 17:10]")
    _put(tmp_path, "gw0", finished=True, time=1000.0)
    assert progress.summary(tmp_path, started=0.0, since=1001.0, now=1030.0) is None
    assert progress.summary(tmp_path, started=0.0, since=999.0, now=1030.0) is not None
    assert progress.summary(tmp_path / "empty", started=0.0) is None


INNER_TEST = """
import time
from hw1 import progress

def test_slow_training():
    task = progress.start("fit demo", 30)
    for epoch in range(30):
        time.sleep(0.1)
        task.update(epoch + 1)
    task.close()
"""


@pytest.mark.parametrize("workers", [[], ["-n", "1"]], ids=["one process", "xdist"])
def test_the_plugin_prints_progress_lines(tmp_path, workers):
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER_TEST))
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(tmp_path / "test_inner.py"),
        "-p",
        "claims.progress_plugin",
        "--progress-every",
        "0.5",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(tmp_path),
        *workers,
    ]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [line for line in run.stdout.splitlines() if line.startswith("[progress ")]
    who = "gw0" if workers else "main"
    assert any(f"{who}: fit demo epoch " in line and " ETA " in line for line in lines), run.stdout


class Config:
    """What pytest_configure reads of a controller's config."""

    def __init__(self, every: float, verbose: int):
        self.values = {"--progress-every": every, "verbose": verbose}
        self.option = type("Option", (), {"dist": "no"})()

    def getoption(self, name):
        return self.values[name]


@pytest.mark.parametrize("every, verbose", [(0, 0), (30, -1)], ids=["--progress-every 0", "-q"])
def test_the_plugin_stays_off_when_asked(monkeypatch, every, verbose):
    from claims import progress_plugin

    monkeypatch.delenv(progress.DIR_ENV, raising=False)
    config = Config(every, verbose)
    progress_plugin.pytest_configure(config)
    assert progress.folder() is None and not hasattr(config, "_hw1_progress")
    progress_plugin.pytest_unconfigure(config)
