"""The README stays short, its layout section matches the tree, and its links lead somewhere."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PACKAGES = ("model", "training", "services", "ui")


def _layout() -> dict[str, set[str]]:
    """The layout block: top-level entries, and the files listed under each package."""
    block = README.split("## Project layout", 1)[1].split("```", 2)[1]
    listed: dict[str, set[str]] = {"": set()}
    folder = ""
    for line in block.splitlines():
        if not line.strip():
            continue
        name = line.split()[0]
        if line.startswith("  "):
            listed[folder].add(name)
        else:
            folder = name.rstrip("/") if name.endswith("/") else ""
            listed[""].update(part.strip(",") for part in line.split("  ")[0].split())
            listed.setdefault(folder, set())
    return listed


def test_the_readme_is_at_most_300_lines():
    assert len(README.splitlines()) <= 300


def test_the_layout_lists_every_module_and_only_files_that_exist():
    listed = _layout()
    for package in PACKAGES:
        on_disk = {path.name for path in (ROOT / package).glob("*.py") if path.name != "__init__.py"}
        assert listed[package] - {"digits.keras"} == on_disk, package
    for entry in listed[""]:
        assert (ROOT / entry.rstrip("/")).exists(), entry
    tracked = {path.name for path in ROOT.iterdir() if path.is_dir() and not path.name.startswith(".")
               and (path / "__init__.py").exists() or path.name in ("docs", "examples")}
    assert tracked <= {entry.rstrip("/") for entry in listed[""]}


def test_every_link_to_a_file_leads_to_one():
    for target in re.findall(r"\]\(([^)#]+?)(?:#[^)]*)?\)", README):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target
    for doc in (ROOT / "docs").glob("*.md"):
        for target in re.findall(r"\]\(([^)#]+?)(?:#[^)]*)?\)", doc.read_text()):
            if not target.startswith("http"):
                assert (doc.parent / target).exists(), (doc.name, target)
