"""Figures the README and docs quote from a bench are written from its JSON (bench/quote.py): none may drift."""

import json
from pathlib import Path

from bench import quote

ROOT = Path(__file__).resolve().parents[1]


def test_every_quoted_table_and_figure_matches_the_json_it_names():
    problems = []
    for path in quote.documents():
        _, found = quote.render(path.read_text(), str(path.relative_to(ROOT)))
        problems += found
    assert problems == [], "run `python -m bench.quote` after a bench: " + "; ".join(problems)


def test_the_docs_quote_the_benches_through_the_script():
    quoted = {match.group("name") for path in quote.documents() for match in quote.BLOCK.finditer(path.read_text())}
    assert quoted == set(quote.TABLES)  # every renderer is used, and nothing names one that does not exist
    speed = (ROOT / "docs" / "speed.md").read_text()
    assert "<!-- quote: speed -->" in speed and "the fastest TensorFlow path" in quote.speed()


def test_a_figure_that_drifts_from_its_json_is_caught(tmp_path, monkeypatch):
    figures = json.loads((quote.RESULTS / "latency.json").read_text())
    text = "<!-- quote: readme-results -->\n" + quote.readme_results() + "<!-- /quote -->\n"
    assert quote.render(text, "x")[1] == []
    figures["speedup_vs_fastest_tensorflow"] *= 20  # the "41x" kind of claim
    (tmp_path / "latency.json").write_text(json.dumps(figures))
    for name in ("trust", "robustness", "mnist_png_accuracy"):
        (tmp_path / f"{name}.json").write_text((quote.RESULTS / f"{name}.json").read_text())
    monkeypatch.setattr(quote, "RESULTS", tmp_path)
    assert quote.render(text, "x")[1] == ["x: table 'readme-results' differs from its JSON"]


def test_every_bench_writes_its_results_the_same_way():
    from bench.report import envelope

    keys = set(envelope("x"))
    benches = [path for path in (ROOT / "bench").glob("*.py") if "write_results(" in path.read_text()]
    assert len(benches) >= 14
    for path in (ROOT / "bench").glob("*.py"):  # no bench writes a results file of its own
        source = path.read_text()
        assert path.name == "report.py" or ".write_text(json.dumps(" not in source or "manifest" in source, path
    for path in quote.RESULTS.glob("*.json"):
        stored = set(json.loads(path.read_text()))
        assert {"date", "cpus"} <= stored, path  # every results file says when and on how many CPUs
        if "bench" in stored:  # written since the envelope came: all of it
            assert keys <= stored, path
