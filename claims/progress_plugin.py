"""pytest plugin: one progress line every so often saying what trains where, also under xdist.

    [progress 02:10] gw0: fit sinc dnn 14-14-8 epoch 1200/2000 ETA 8s | gw1: mnist cnn 4-8| epoch 1/3 ETA 40s

Training loops write their state through `hw1.progress` into a temporary folder that this plugin
creates on the controller (or the only process) and names in HW1_PROGRESS_DIR, which xdist workers
inherit; each worker labels its file with its id. A daemon thread on the controller reads the folder
every `--progress-every` seconds and prints the line through the terminal reporter, so it shows
even where the workers' own output is captured. Lines come only while something trains or has
just finished: a warm-cache run prints none.

Off with `--progress-every 0` and under `-q`. Register it in the root conftest.py with
`pytest_plugins = ["claims.progress_plugin"]`, or per run with `-p claims.progress_plugin`
(from the repository root). Hooks: pytest_addoption, pytest_configure, pytest_sessionfinish,
pytest_unconfigure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time

from hw1 import progress


def pytest_addoption(parser):
    parser.getgroup("hw1", "hw1 claims").addoption(
        "--progress-every",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="print what trains (and its ETA) every SECONDS, also under -n (default 30; 0 = off; "
        "-q turns it off too)",
    )


class Reporter(threading.Thread):
    """Prints `progress.summary` of `folder` every `every` seconds until stopped."""

    def __init__(self, config, folder: str, every: float):
        super().__init__(name="hw1-progress", daemon=True)
        self.config, self.folder, self.every = config, folder, every
        self.started, self.last = time.time(), 0.0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.every):
            try:
                line = progress.summary(self.folder, self.started, since=self.last)
                if line:
                    self.write(line)
                    self.last = time.time()
            except Exception:  # a progress line is never worth failing or hanging the run
                continue

    def write(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if reporter is None:
            return
        # without xdist a test may be running with its output captured: step out of it, as
        # pytest's own live logging does
        quiet = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
        with quiet:
            after_dots = getattr(getattr(reporter, "_tw", None), "width_of_current_line", 0)
            if after_dots and not getattr(reporter, "currentfspath", None):  # (write_line ends a path line)
                reporter.write("\n")
            reporter.write_line(line)

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=5)


def _distributed(config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) or getattr(config.option, "dist", "no") != "no"


def pytest_configure(config):
    if hasattr(config, "workerinput"):  # an xdist worker: label our state file with our id
        os.environ[progress.LABEL_ENV] = config.workerinput["workerid"]
        return
    every = config.getoption("--progress-every")
    if every <= 0 or config.getoption("verbose") < 0:
        return
    folder = tempfile.mkdtemp(prefix="hw1-progress-")
    os.environ[progress.DIR_ENV] = folder  # before xdist starts the workers: they inherit it
    if not _distributed(config):
        os.environ[progress.LABEL_ENV] = "main"
    config._hw1_progress = Reporter(config, folder, every)
    config._hw1_progress.start()


def pytest_sessionfinish(session):
    reporter = getattr(session.config, "_hw1_progress", None)
    if reporter is not None:  # the tests are over: no line between them and the summary
        reporter.stop()


def pytest_unconfigure(config):
    reporter = getattr(config, "_hw1_progress", None)
    if reporter is None:
        return
    reporter.stop()
    for name in (progress.DIR_ENV, progress.LABEL_ENV):
        os.environ.pop(name, None)
    shutil.rmtree(reporter.folder, ignore_errors=True)
    del config._hw1_progress
