"""The claims catalogue (claims/catalogue.toml) is the one place a claim is described: CLAIMS.md is
generated from it, the claim tests name its ids, and the GPU shards and multiverse families agree
with it. Adding a claim touches the catalogue and its test function, nothing else."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hw1 import catalogue, config, departures, multiverse

ROOT = Path(__file__).resolve().parent.parent


def _claim_marks() -> dict[str, str]:
    """{claim id: 'module::function'} of every @pytest.mark.claim in claims/test_*.py."""
    out = {}
    for path in sorted((ROOT / "claims").glob("test_*.py")):
        spec = importlib.util.spec_from_file_location(f"catalogue_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for name, fn in vars(module).items():
            for mark in getattr(fn, "pytestmark", []):
                if mark.name == "claim":
                    assert mark.args and not mark.kwargs, (
                        f"{name}: the marker names the claim's id, nothing more"
                    )
                    out[mark.args[0]] = f"claims/{path.name}::{name}"
    return out


def test_every_claim_test_names_a_catalogue_entry_and_every_entry_has_its_test():
    entries = catalogue.claims()
    assert _claim_marks() == {c.id: c.test for c in entries.values()}


def test_the_committed_claims_md_is_the_generated_one():
    assert catalogue.CLAIMS_MD.read_text() == catalogue.claims_md(), "run `python -m hw1.catalogue write`"


def test_the_index_links_each_claim_to_its_heading():
    from hw1 import report

    assert report.CATALOGUE == catalogue.CLAIMS_MD  # INDEX.md rows link to CLAIMS.md#<claim id>
    for c in catalogue.claims():
        assert f"\n### {c}\n" in catalogue.CLAIMS_MD.read_text()


def _workflow_matrix(path: Path) -> dict[str, tuple[str, ...]]:
    """group -> claims of a GitHub workflow's matrix (`- group: G` then `claims: --claim ...`)."""
    text = path.read_text()
    pairs = re.findall(r"- (?:group|family): (\S+).*\n\s+claims: (.*)", text)
    return {g: tuple(re.findall(r"--claim (\S+)", c)) for g, c in pairs}


def test_the_gpu_shards_are_the_catalogue_shards():
    assert _workflow_matrix(ROOT / ".github" / "workflows" / "claims-gpu.yml") == catalogue.shard_groups()


def test_the_multiverse_families_are_the_catalogue_families():
    families = catalogue.multiverse_families()
    assert {f: tuple(g["claims"]) for f, g in multiverse.MULTIVERSE.items()} == families
    jobs = _workflow_matrix(ROOT / ".github" / "workflows" / "multiverse-gpu.yml")
    assert jobs == {f: families[f] for f in jobs}  # each GPU family job runs its family's claims


def test_each_case_reads_its_settings_and_belongs_to_one_family():
    for c in catalogue.claims().values():
        for case in c.cases or ("",):
            assert config.settings_read(c.id, case), c.id
            assert departures.Case(c.id, case).family in departures.FAMILIES


def test_an_unknown_claim_lists_the_catalogue(tmp_path):
    with pytest.raises(catalogue.CatalogueError, match="the catalogue .* has: function-depth"):
        catalogue.get("nope")
    bad = tmp_path / "c.toml"
    bad.write_text('[[section]]\nname = "S"\n[[claim]]\nid = "x"\nsection = "S"\n')
    with pytest.raises(catalogue.CatalogueError, match="missing statement"):
        catalogue.load(bad)


TOY_ENTRY = """
[[claim]]
id = "toy-depth"
section = "HW1-1 Deep vs shallow"
statement = "A toy claim: a 3-layer net ends at a lower training loss on sinc than a 1-layer one."
setting = "the fit task of HW1-1"
figures = ["training loss per depth"]
cases = []
test = "claims/test_toy.py::test_toy_depth"
files = ["toy-depth-loss"]
settings = ["fit.epochs", "fit.seeds", "fit.budget"]
shard = "toy"
family = "fit"
"""

TOY_TEST = '''
    import numpy as np
    import pytest

    from hw1 import cache, stats
    from hw1.experiments import fit_runs
    from hw1.plots import Panel, Series


    @pytest.mark.claim("toy-depth")
    def test_toy_depth(scale, device, claim):
        """Report: a toy sentence."""
        cfg = scale.fit

        def measure(s, alpha):
            runs = cache.each_free((1, 3), lambda d: fit_runs(cfg, "sinc", d, cfg.budget, s, device))
            loss = np.stack([runs[d].history["loss"][:, -1].numpy() for d in (1, 3)], 1)  # (seeds, depths)
            # Criterion: Page's trend test, one-sided (decreasing with depth)
            return stats.trend_test(np.log10(loss), direction="decreasing", alpha=alpha), loss

        verdict, s, loss = claim.stage(measure, cfg.seeds)
        claim.figure(
            "toy-depth-loss",
            [Panel("toy", "depth", "final loss", [Series("median", np.array([1, 3]), np.median(loss, 0))])],
        )
        claim.conclude(verdict, s)
'''


def test_adding_a_claim_touches_the_catalogue_and_its_test(tmp_path):
    """A toy claim in a copy of the project: one catalogue entry and one test function, and it is
    in the generated CLAIMS.md, in the departures and in the index of a smoke run."""
    copy = tmp_path / "project"
    for name in ("hw1", "claims", "data/grids", "conftest.py", "pytest.ini", ".github"):
        src, dst = ROOT / name, copy / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "__snapshots__"))
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
    with open(copy / "claims" / "catalogue.toml", "a") as f:
        f.write(TOY_ENTRY)
    (copy / "claims" / "test_toy.py").write_text(textwrap.dedent(TOY_TEST))
    env = {**os.environ, "PYTHONPATH": str(copy), "HW1_NO_CACHE": "1"}

    def run(*args):
        return subprocess.run(args, cwd=copy, env=env, capture_output=True, text=True, timeout=600)

    done = run(sys.executable, "-m", "hw1.catalogue", "write")
    assert done.returncode == 0, done.stderr
    assert "### toy-depth\n\n> A toy claim" in (copy / "claims" / "CLAIMS.md").read_text()
    probe = (
        "from hw1.config import departures, get_scale; "
        "print([d['field'] for d in departures(get_scale('ci'), 'toy-depth')])"
    )
    done = run(sys.executable, "-c", probe)
    assert "fit.epochs" in done.stdout, done.stderr
    out = tmp_path / "figures"
    # a new claim has no ledger entry yet: the first run pins it (and says so), the next checks it
    smoke = ("-m", "pytest", "claims/test_toy.py", "--scale", "smoke", "--figures-dir", str(out))
    done = run(sys.executable, *smoke, "--snapshot-update")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (copy / "claims" / "__snapshots__" / "smoke" / "test_toy" / "test_toy_depth.json").is_file()
    done = run(sys.executable, *smoke)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    index = (out / "INDEX.md").read_text()
    assert "[toy-depth]" in index and "toy-depth-loss.png" in index
