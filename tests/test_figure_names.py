"""One producer per figure file: no two claim cases declare the same figure (without training).

Each claim's catalogue entry names its figure files (`files`, "{param}" filled from the case); the
harness refuses to draw an undeclared figure, so the declared names are the files written.
"""

import importlib.util
import itertools
from collections import Counter
from pathlib import Path

import pytest

from hw1 import catalogue

ROOT = Path(__file__).resolve().parent.parent


def _modules():
    for path in sorted((ROOT / "claims").glob("test_*.py")):
        spec = importlib.util.spec_from_file_location(f"figures_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield path.stem, module


def _cases(fn) -> list[dict]:
    """The parameters of each case of a test function: the product of its parametrize marks."""
    axes = []
    for mark in getattr(fn, "pytestmark", []):
        if mark.name != "parametrize":
            continue
        names = mark.args[0].split(",") if isinstance(mark.args[0], str) else list(mark.args[0])
        values = [getattr(v, "values", v) for v in mark.args[1]]
        axes.append([dict(zip([n.strip() for n in names], v if len(names) > 1 else (v,))) for v in values])
    return [dict(kv for d in combo for kv in d.items()) for combo in itertools.product(*axes)]


def declared_files() -> list[tuple[str, str]]:
    """(case, figure name) for every case of every claim test."""
    out = []
    modules = dict(_modules())
    for claim in catalogue.claims().values():
        path, test = claim.test.split("::")
        for params in _cases(getattr(modules[Path(path).stem], test)):
            case = f"{claim.test}[{'-'.join(map(str, params.values()))}]"
            out += [(case, name) for name in claim.figure_files(params)]
    return out


def test_no_two_cases_write_the_same_figure_file():
    files = declared_files()
    twice = {name for name, n in Counter(name for _, name in files).items() if n > 1}
    assert not twice, {name: [c for c, f in files if f == name] for name in sorted(twice)}


def test_every_claim_declares_its_figures():
    assert all(c.files for c in catalogue.claims().values())


def test_a_shared_name_is_found():
    @pytest.mark.parametrize("task,kind", [("a", "x"), pytest.param("b", "y", id="b-y")])
    def fn(task, kind):
        pass

    assert _cases(fn) == [{"task": "a", "kind": "x"}, {"task": "b", "kind": "y"}]
    names = [n.format(**p) for p in _cases(fn) for n in ("fig-{task}", "fig")]
    assert [n for n, k in Counter(names).items() if k > 1] == ["fig"]


def test_the_harness_refuses_an_undeclared_figure(tmp_path):
    from types import SimpleNamespace

    from claims import harness

    record = SimpleNamespace(claim="c", case="", figures=[])
    filer = harness.ClaimFiler(record, tmp_path, None, None, 0, False, False, figures=("mine",))
    with pytest.raises(ValueError, match="declared figures"):
        filer.draw("theirs", lambda png: {})
    filer.draw("mine", lambda png: {"drawn": True})
    assert filer.structures == {"mine": {"drawn": True}}
