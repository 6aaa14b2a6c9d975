"""The documentation stays true to the repository: every link in the README and docs/ opens a
file of the repository (the README's never leave it), every setting recpipe reads is in
docs/configuration.md, every benchmark script in docs/benchmarks.md, every page of docs/ in
the README's index. The short tour itself runs in tests/e2e/test_readme.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from recpipe.config import ROLES

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", [ROOT / "README.md", *DOCS], ids=lambda p: p.name)
def test_every_link_opens_a_file_of_the_repository(page: Path) -> None:
    for target in LINK.findall(page.read_text()):
        if page.name == "README.md":
            assert not re.match(r"\w+://", target), f"README links outside the repository: {target}"
        # a docs page names code by its path instead: a ../ link breaks wherever the page is read alone
        assert not target.startswith("../"), f"{page.name}: {target} climbs out of its folder"
        if re.match(r"\w+://", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT), f"{page.name}: {target} leaves the repository"
        assert path.exists(), f"{page.name}: {target} does not exist"


def test_the_readme_indexes_every_page_of_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert DOCS and all(f"](docs/{page.name})" in readme for page in DOCS)
    assert "shared/DESIGN" not in readme


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    missing = [role.env for role in ROLES.values() if f"`{role.env}`" not in text]
    assert missing == []
    documented = set(re.findall(r"`(RECPIPE_[A-Z_]+)`", text))
    assert documented <= {role.env for role in ROLES.values()} | {"RECPIPE_TEST_MYSQL_URL"}


def test_every_benchmark_is_documented_with_its_results() -> None:
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    scripts = sorted(p.name for p in (ROOT / "bench").glob("*.py") if p.name != "common.py")
    assert scripts and [s for s in scripts if f"bench/{s}" not in text] == []
