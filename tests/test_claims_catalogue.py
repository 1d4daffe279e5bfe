"""claims/CLAIMS.md, the claims' wording that the index links to, says what the claim markers say."""

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "claims" / "CLAIMS.md"


def _claim_marks() -> dict[str, str]:
    """{claim id: statement} of every @pytest.mark.claim in claims/test_*.py."""
    out = {}
    for path in sorted((ROOT / "claims").glob("test_*.py")):
        spec = importlib.util.spec_from_file_location(f"catalogue_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for fn in vars(module).values():
            for mark in getattr(fn, "pytestmark", []):
                if mark.name == "claim":
                    out[mark.args[0]] = mark.kwargs["statement"]
    return out


def test_every_claim_has_its_statement_under_its_heading():
    text = CATALOGUE.read_text()
    entries = dict(re.findall(r"^### (\S+)\n\n> (.*)$", text, flags=re.M))
    marks = _claim_marks()
    assert len(marks) == 13
    assert entries == marks, "claims/CLAIMS.md and the claim markers disagree: update the file"


def test_the_index_links_each_claim_to_its_heading():
    from hw1 import report

    assert report.CATALOGUE == CATALOGUE  # INDEX.md rows link to CATALOGUE#<claim id>
