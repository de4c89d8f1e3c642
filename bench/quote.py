"""The one script that writes the figures the README and docs quote from the benches' results.

A quoted table sits between two markers in a Markdown file, naming what renders it:

    <!-- quote: speed -->
    | ... generated from bench/results/*.json ... |
    <!-- /quote -->

and a figure inside a sentence between ``<!--q:NAME-->`` and ``<!--/q-->``. Each NAME is a
function below that reads the JSON it names (and the shipped model's card) and returns the
Markdown. Run it after a bench, and the docs follow:

    .venv/bin/python -m bench.quote            # rewrite every quoted block and figure
    .venv/bin/python -m bench.quote --check    # list the ones that differ from the JSON; exit 1 if any

tests/test_quoted_figures.py runs the check: a quoted figure that differs from its JSON fails the suite.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOCUMENTS = ("README.md", "docs/*.md")
BLOCK = re.compile(r"(<!-- quote: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /quote -->)", re.S)
INLINE = re.compile(r"(<!--q:(?P<name>[\w-]+)-->)(?P<body>.*?)(<!--/q-->)", re.S)


def results(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def card() -> dict:
    return json.loads((ROOT / "model" / "digits.json").read_text())


def pct(value: float, digits: int = 2) -> str:
    return f"{value * 100:.{digits}f}%"


def trio(figures: dict) -> str:
    """Read right / refused / wrong with ≥ 90% confidence, as percentages."""
    return " / ".join(f"{figures[key] * 100:.2f}" for key in ("right", "refused", "wrong_confident")) + " %"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def measured(*names: str) -> str:
    """Which results a table quotes, and when each was measured."""
    return ", ".join(f"`bench/results/{name}.json` ({results(name)['date']})" for name in names)


# ----------------------------------------------------------------------------- tables


# The README's "not digits" row: real letters and doodles of held-out writers and categories, then Omniglot.
README_NON_DIGITS = ("unipen_others_canvas", "quickdraw_canvas", "omniglot_canvas", "omniglot_photo")


def readme_results() -> str:
    trust, robust, latency = results("trust")["sets"], results("robustness")["results"], results("latency")
    gated = "gate_versus_reader_alone" in latency  # the shipped model has a gate: one prediction runs both
    png = results("mnist_png_accuracy")
    test = card()["metrics"]["test_mnist"]
    ours = latency["methods"][latency["ours"]]
    rows = [
        ["MNIST test accuracy", f"**{pct(test['accuracy'])}** ({test['errors']} errors in {test['count']:,})",
         "`python -m training.evaluate`"],
        ["MNIST test as PNG files: right / refused / wrong ≥ 90%",
         f"**{png['accuracy_png_through_predict'] * 100:.2f} / {png['refused'] * 100:.2f} / "
         f"{png['wrong_with_90_percent_confidence'] * 100:.2f} %**", "`bench/mnist_png_accuracy.py`"],
        ["USPS (other writers), photographed scans: right / refused / wrong ≥ 90%",
         f"**{trio(trust['usps_photo'])}**", "`bench/trust.py`"],
        ["USPS drawn again on the canvas", f"**{trio(trust['usps_canvas'])}**", "`bench/trust.py`"],
        ["real people's pen digits, held-out writers: UNIPEN on the canvas (right / refused / wrong ≥ 90%); "
         "on paper, Chars74K: right", f"**{trio(trust['unipen_canvas'])}**; {pct(trust['unipen_paper']['right'])}, "
         f"{pct(trust['chars74k_canvas']['right'])}", "`bench/trust.py`"],
        ["not digits, refused: held-out UNIPEN letters and symbols / Quick, Draw! categories / Omniglot canvas, photos",
         f"**{' / '.join(pct(trust[k]['refused'], 1) for k in README_NON_DIGITS)}**; a digit at ≥ 90% for at most "
         f"{pct(max(trust[k]['wrong_confident'] for k in README_NON_DIGITS), 1)}", "`bench/trust.py`"],
        ["continental 1, 4, 7, 9, fat markers, small scans", f"**{trio(trust['continental'])}**", "`bench/trust.py`"],
        [f"photos of paper ({robust['photo']['n']}, rendered from MNIST test digits)",
         f"**{pct(robust['photo']['accuracy'])}** right, {pct(robust['photo']['refused'])} refused",
         "`bench/robustness.py`"],
        [f"canvas drawings in three styles ({robust['canvas']['n']:,})",
         f"**{pct(robust['canvas']['accuracy'])}** right, {pct(robust['canvas']['refused'])} refused",
         "`bench/robustness.py`"],
        [f"whole numbers of 2–5 digits, read exactly ({robust['number']['n']})",
         f"**{pct(robust['number']['accuracy'])}**", "`bench/robustness.py`"],
        ["other writers, held out: ARDIS (Swedish) / optdigits-orig / scikit-learn's 8x8 digits, right",
         f"**{' / '.join(pct(trust[k]['right']) for k in ('ardis_heldout', 'optdigits_heldout', 'sklearn_digits'))}**",
         "`bench/trust.py`"],
        [f"blank canvases, blank paper, noise ({robust['empty']['n']})",
         f"**{pct(robust['empty']['accuracy'], 0)}** given no digit", "`bench/robustness.py`"],
        ["one prediction in process (preprocessing + LiteRT" + (", reader and gate)" if gated else ")"),
         f"p50 **{ours['p50_ms']:.2f} ms**: **{latency['speedup_vs_fastest_tensorflow']:.1f}x** the fastest "
         f"TensorFlow path ({latency['fastest_tensorflow']}), {latency['speedup_vs_model_predict']:.0f}x "
         "`model.predict`, same run", "`bench/latency.py`"],
    ]
    return table(["what", "shipped model (`model/digits.keras`)", "command"], rows)


def speed() -> str:
    latency, cli, app = results("latency"), results("cli_throughput"), results("app_speed")
    why, training, upload = results("why"), results("training_speed"), results("upload_memory")
    before = results("upload_memory_before")
    gated = "gate_versus_reader_alone" in latency
    methods = latency["methods"]
    ours, fastest, predict = methods[latency["ours"]], methods[latency["fastest_tensorflow"]], \
        methods["model.predict (baseline)"]
    stages = cli["stages_seconds"]
    per_image = {k: v / cli["count"] * 1e3 for k, v in stages.items() if k != "startup"}
    total = sum(per_image.values())
    cold, blank = (statistics.median(v) for v in app["cold_start_seconds"].values())
    stroke, with_why = app["stroke_ms"], app["stroke_with_why_ms"]
    float32, bf16 = training["runs"]["float32"], training["runs"]["bfloat16"]
    step = training["pipeline_step_seconds"]
    rows = [
        ["**one prediction**, a 280x280 canvas drawing, preprocessing + model" + (" (reader and gate; the TensorFlow "
         "paths run the reader alone)" if gated else "") + ", in process (`bench/latency.py`, "
         f"{latency['date']})", f"p50 **{ours['p50_ms']:.2f} ms**, p95 {ours['p95_ms']:.2f} ms",
         f"the fastest TensorFlow path ({latency['fastest_tensorflow']}): p50 {fastest['p50_ms']:.2f} ms → "
         f"**{latency['speedup_vs_fastest_tensorflow']:.1f}x**; `model.predict` on one image: p50 "
         f"{predict['p50_ms']:.1f} ms → {latency['speedup_vs_model_predict']:.0f}x"],
        ["· of which preprocessing", f"{methods['preprocessing alone']['p50_ms']:.2f} ms", ""],
        ["· same answers", f"largest probability difference {latency['max_probability_difference']:.1e} over "
                           f"{latency['compared_inputs']:,} inputs", "(also a test: ≤ 1e-5)"],
        [f"**the CLI**, {cli['count']:,} JPEG photos ({cli['megabytes']} MB), one `python -m model.predict --json` "
         f"(`bench/cli_throughput.py`, {cli['date']})",
         f"**{cli['images_per_second']:.0f} images/s**, {cli['wall_seconds']:.1f} s wall, "
         f"{pct(cli['accuracy'], 1)} read right",
         f"one by one with `model.predict`: {cli['baseline_images_per_second']:.0f} images/s "
         f"({cli['images_per_second'] / cli['baseline_images_per_second']:.1f}x)"],
        ["· where the time goes, per image", ", ".join(
            f"{name} {ms:.1f} ms ({ms / total:.0%})" for name, ms in per_image.items())
         + f", process start {stages['startup']:.2f} s once", ""],
        [f"· the {cli['hostile_corpus']['files']} hostile files (bomb, truncated, fake, transparent paper…)",
         f"{cli['hostile_corpus']['hostile_seconds']:.1f} s through the command",
         f"as many good photos: {cli['hostile_corpus']['good_seconds']:.1f} s → ratio "
         f"**{cli['hostile_corpus']['ratio']:.2f}**"],
        ["**app cold start**, server process start → first prediction shown in Chromium (upload) "
         f"(`bench/app_speed.py`, {app['date']})", f"median **{cold:.1f} s** over "
                                                   f"{len(app['cold_start_seconds']['app'])} starts",
         f"a blank Streamlit app with an uploader: {blank:.1f} s ({cold / blank:.2f}x)"],
        [f"**server time per canvas stroke**, {stroke['n']} strokes drawn with the mouse in Chromium",
         f"p50 **{stroke['p50']:.0f} ms**, p95 **{stroke['p95']:.0f} ms**",
         f"a whole-page run: {app['full_page_ms_p50']:.0f} ms"],
        ["· with **\"Why this digit?\"** on", f"p50 {with_why['p50']:.0f} ms, p95 {with_why['p95']:.0f} ms: "
                                              f"**+{with_why['added_ms_p50']:.0f} ms**",
         f"the same strokes without it, same run ({with_why['over_without']:.1f}x)"],
        [f"· the map alone, in process (`bench/why.py`, {why['digits']} MNIST digits, {why['date']})",
         f"{why['map_ms_median']:.1f} ms", f"one plain reading: {why['read_ms_median']:.1f} ms "
                                           f"({why['map_over_read']:.1f}x)"],
        ["**peak memory (RSS)** of the app serving strokes", f"**{app['peak_rss_mb']['serving_strokes']:.0f} MB**",
         f"blank Streamlit app: {app['peak_rss_mb']['blank Streamlit app (baseline)']:.0f} MB"],
        [f"**a 40-megapixel upload**, read and boxed (`bench/upload_memory.py`, {upload['date']}): peak RSS of the "
         "process, " + " / ".join(UPLOAD_KINDS.values()),
         " / ".join(f"**{upload['uploads'][kind]['peak_rss_mb']:,} MB**" for kind in UPLOAD_KINDS)
         + (", each read right" if all(upload["uploads"][kind]["answer"] == "47" for kind in UPLOAD_KINDS) else ""),
         "before (issue 34: decoded in colour at full size, a copy for EXIF), same files: "
         + " / ".join(f"{before['uploads'][kind]['peak_rss_mb']:,} MB" for kind in UPLOAD_KINDS)],
        [f"**training step**, deep CNN, batch 256 (`bench/training_speed.py`, {training['date']})",
         f"{step['real pipeline'] * 1e3:.0f} ms fed by the real `tf.data` pipeline",
         f"{step['cached batch'] * 1e3:.0f} ms fed one cached batch: "
         f"**{step['real pipeline'] / step['cached batch']:.2f}x**; the pipeline alone makes a batch in "
         f"{step['pipeline alone, per batch'] * 1e3:.0f} ms"],
        [f"**epoch** of the default architecture ({step['steps_per_epoch']} steps)",
         f"**{float32['epoch_seconds_median']:.1f} s** (float32), peak RSS {float32['peak_rss_mb']:,.0f} MB", ""],
        [f"**mixed precision** (`--mixed-precision`, bfloat16), {training['epochs']} epochs each, same seed",
         f"epoch {bf16['epoch_seconds_median']:.1f} s (**{training['bf16_epoch_ratio']:.2f}x**), MNIST test "
         f"{pct(bf16['test_accuracy'])}", f"float32: {float32['epoch_seconds_median']:.1f} s, "
                                          f"{pct(float32['test_accuracy'])}"],
    ]
    return table(["what", "measured", "baseline, same run"], rows)


def answer_latency() -> str:
    """Pen-up to answer in Chromium, against the bare Streamlit floor of the same run, with where the time goes."""
    data = results("answer_latency")
    rows = []
    for device, how in (("desktop", "mouse, 1400x1000"), ("phone", "touch, 390x844")):
        if device not in data:
            continue
        figures = data[device]
        floor = figures["floor"]["answer_ms"]["p50"]
        rows.append([f"**{device}** ({how}): the floor, a bare page's click → metric", f"{floor:.0f} ms",
                     f"{figures['floor']['answer_ms']['p90']:.0f} ms", "1.0x", ""])
        canvas = figures["canvas_floor"]["answer_ms"]
        rows.append(["· the canvas's floor, the app's canvas alone: one stroke → a metric, nothing read",
                     f"{canvas['p50']:.0f} ms", f"{canvas['p90']:.0f} ms", f"{canvas['p50'] / floor:.1f}x",
                     f"the app's digit takes {figures['canvas']['digit_vs_canvas_floor']:.2f}x this"])
        for kind, label in (("digit", "one stroke → the digit"), ("number", "4th stroke → a 4-digit number"),
                            ("why", "one stroke → the digit, *Why this digit?* on")):
            f = figures[kind]
            p50 = f["answer_ms"]["p50"]
            rows.append([f"· {label}", f"**{p50:.0f} ms**", f"{f['answer_ms']['p90']:.0f} ms", f"{p50 / floor:.1f}x",
                         f"sent {f['input_sent_ms']['p50']:.0f} ms, server run {f['server_ms']['p50']:.0f} ms, "
                         f"{f['messages']['p50']:.0f} messages / {f['bytes']['p50'] / 1000:.1f} kB, "
                         f"last message {f['rerun_end_ms']['p50']:.0f} ms, painted {f['painted_ms']['p50']:.0f} ms"])
    return (table(["what (`bench/answer_latency.py`, " + data["date"] + f", {data['rounds']} rounds each)", "p50",
                   "p90", "p50 / floor", "where the time goes (p50, from pen-up)"], rows))


def number_losses() -> str:
    every = results("number_losses")["kinds"]["all"]
    return (f"{pct(every['right'])} read exactly; refused {pct(every['refused'])}, wrong digit count "
            f"{pct(every['digit count'])}, a digit misread {pct(every['misread'])}")


PART_LABELS = {"number_unipen_canvas": "held-out UNIPEN writers' own digits side by side, canvas",
               "number_unipen_paper": "the same, on paper"}


UPLOAD_KINDS = {"jpeg_rgb": "JPEG photo", "png_rgb": "PNG photo", "png_rgba": "PNG with transparency"}


def robustness() -> str:
    report = results("robustness")["results"]
    kinds = [
        ("photo", "photos: paper colour, gradient and shadow, ink colour, size, position, rotation ±10°, blur, "
                  "noise, JPEG 40–95, a quarter stored sideways with EXIF", ()),
        ("canvas", "canvas drawings, uniform round pen (5–16% of the digit's height), random size and position",
         ("canvas_white_on_black", "canvas_black_on_white", "canvas_black_on_transparent")),
        ("number", "whole numbers of 2–5 digits, read exactly",
         ("number_canvas", "number_photo", "number_unipen_canvas", "number_unipen_paper")),
        ("empty", "empty: blank canvases in 3 styles, blank paper photos, uniform and Gaussian noise, salt and "
                  "pepper (share given no digit)", ()),
        ("optdigits", "writers outside MNIST: scikit-learn's bundled UCI optdigits (8x8, upsampled to 32x32)", ()),
    ]
    rows = []
    for key, label, parts in kinds:
        row = report[key]
        rows.append([label, f"{row['n']:,}", f"**{pct(row['accuracy'])}**", pct(row["refused"]),
                     pct(row["without_refusals"]), pct(row["baseline"])])
        for part in parts:
            sub = report[part]
            name = PART_LABELS.get(part, part.split("_", 1)[1].replace("_", " "))
            rows.append([f"· {name}", f"{sub['n']:,}", pct(sub["accuracy"]),
                         pct(sub["refused"]), pct(sub["without_refusals"]), pct(sub["baseline"])])
    return table(["inputs (rendered from MNIST **test** digits, but UNIPEN's)", "n", "ours", "refused",
                  "ours if nothing were refused", "baseline"], rows)


NON_DIGIT_SETS = ("omniglot_canvas", "omniglot_photo", "generated_non_digits")
SET_LABELS = {
    "mnist_test": "MNIST test, as arrays (as PNG files through the command: `bench/mnist_png_accuracy.py`)",
    "usps_photo": "USPS (other writers), photographed scans",
    "usps_canvas": "USPS, drawn again on the canvas",
    "omniglot_canvas": "Omniglot characters (not digits), canvas",
    "omniglot_photo": "Omniglot characters, photos of paper",
    "generated_non_digits": "our generated non-digits, canvas",
    "issue_table": "issue 14's shapes (dash, A, S, x, +, ?, smiley, scribble) × 3 canvas styles",
    "continental": "continental 1, 4, 7, 9; fat markers; 8–16 px scans",
    "ardis_heldout": "ARDIS, held-out 20% (Swedish writers, never trained on)",
    "optdigits_heldout": "optdigits-orig, held-out 20% (UCI's 30 training writers, never trained on)",
    "sklearn_digits": "scikit-learn's 8x8 digits (the study's other 13 writers), upsampled to 32x32",
    "unipen_canvas": "UNIPEN digits of held-out writers (pen strokes), on the canvas",
    "unipen_paper": "UNIPEN digits of held-out writers, in ink on paper, photographed",
    "chars74k_canvas": "Chars74K digits of held-out writers, on the canvas",
    "hwd1000": "HwD-1000 (one writer's 1,000 digits; measuring only), as its pictures",
    "unipen_others_canvas": "UNIPEN letters and symbols of held-out writers (not digits, look-alikes out), canvas",
    "chars74k_letters_canvas": "Chars74K letters of held-out writers (not digits, look-alikes out), canvas",
    "quickdraw_canvas": "Quick, Draw! doodles of held-out categories (not digits, look-alikes out), canvas",
    "quickdraw_bitmaps": "Quick, Draw! bitmaps of held-out categories (not digits), as pictures",
}


def trust_shipped() -> str:
    sets = results("trust")["sets"]
    rows = [[label, f"{sets[key]['n']:,}", f"**{trio(sets[key])}**",
             pct(sets[key]["ece"]) if "ece" in sets[key] else "–"] for key, label in SET_LABELS.items()]
    return table(["set", "n", "right / refused / wrong ≥ 90%", "ECE"], rows)


def _curve(points: list[dict], chosen: float) -> str:
    """A threshold's trade-off: what it refuses of non-digits and of real digits, the one in use in bold."""
    rows = []
    for point in points:
        cells = [f"{point['threshold']:.3f}", pct(point["non_digits_refused"], 1), pct(point["usps_refused"]),
                 pct(point["mnist_refused"]), pct(point["ardis_refused"])]
        if abs(point["threshold"] - chosen) < 1e-9:
            cells = [f"**{cells[0]} (in use)**", *(f"**{c}**" for c in cells[1:])]
        rows.append(cells)
    return table(["threshold", "non-digits refused (Omniglot both ways + generated)", "USPS refused",
                  "MNIST test refused", "ARDIS held out refused"], rows)


def trust_tradeoff() -> str:
    """The reader's threshold on its calibrated confidence, alone (the gate's refusals are not in it)."""
    return _curve(results("trust")["trade_off"], card()["calibration"]["threshold"])


def gate_tradeoff() -> str:
    """The gate's threshold on its digit-likeness, alone (the reader's refusals are not in it)."""
    gate = results("trust")["gate"]
    return _curve(gate["trade_off"], gate["threshold"])


def gate_scores() -> str:
    """Other scores for "not a digit", each held to the shipped rule's refusals of real USPS digits."""
    bench = results("gate_scores")
    rows = []
    for rule, row in bench["rules"].items():
        cells = [rule, f"{pct(row['omniglot_canvas'], 1)} / {pct(row['omniglot_photo'], 1)}",
                 pct(row["generated_non_digits"], 1), f"{round(row['issue_table'] * bench['counts']['issue_table'])}"
                 f"/{bench['counts']['issue_table']}", pct(row["mnist_test"]), pct(row["ardis_heldout"]),
                 pct(row["continental"])]
        rows.append([f"**{c}**" for c in cells] if "shipped" in rule else cells)
    return table([f"score (USPS refused: {pct(bench['usps_refused_by_the_shipped_rule'])} for each)",
                  "Omniglot refused, canvas / photos", "generated non-digits", "issue 14's table",
                  "MNIST test refused", "ARDIS held out", "continental"], rows)


GATE_SOURCE_COLUMNS = (("unipen_canvas", "UNIPEN held-out digits"), ("unipen_others_canvas", "UNIPEN letters and symbols"),
                       ("quickdraw_canvas", "Quick, Draw! held-out categories"),
                       ("omniglot_canvas", "Omniglot canvas"), ("generated_non_digits", "generated non-digits"))
GATE_SOURCE_NAMES = {"shipped": "shipped gate", "doodles-once": "real, doodles drawn once",
                     "doodles-8": "real, doodles drawn 8 times",
                     "quarter-generated": "real, doodles 8 times, a quarter of the generated"}
ROUND4_GATES = {"shipped": "shipped gate", "fine-tune": "gate-real.json fine-tune",
                "blend-0.3": "blended, 0.3 of the shipped gate", "blend-0.5": "blended, 0.5 of the shipped gate"}


def _shipped_point(bench: dict) -> str:
    """The key of bench/gate_sources.py's SHIPPED_POINT in its results (derived: quote imports no model code)."""
    return next(key for key in bench["variants"]["shipped"] if key.startswith("at the shipped"))


def _refused_with_range(at: dict) -> list[str]:
    return [f"{pct(at['refused'][key], 1)} ({at['range'][key][0] * 100:.1f}–{at['range'][key][1] * 100:.1f})"
            for key, _ in GATE_SOURCE_COLUMNS]


def _bold_if_shipped(name: str, cells: list[str], shipped: str = "shipped") -> list[str]:
    return [f"**{c}**" for c in cells] if name == shipped else cells


def _gate_source_rows(names, points, source: str = "gate_sources", labels=GATE_SOURCE_NAMES) -> list[list[str]]:
    variants = results(source)["variants"]
    rows = []
    for point in points:
        for name in names:
            refused = variants[name][point]["refused"]
            cells = [labels.get(name, name), point.split(" of")[0].removeprefix("at "),
                     f"{variants[name][point]['threshold']:.3f}"] + [pct(refused[key], 1)
                                                                       for key, _ in GATE_SOURCE_COLUMNS]
            rows.append(_bold_if_shipped(name, cells))
    return rows


def gate_sources_compare() -> str:
    """The gates taught real non-digits against the shipped one, at the same USPS refusals."""
    points = [key for key in results("gate_sources")["variants"]["shipped"] if key.startswith("at ")]
    return table(["gate", "USPS refused", "threshold", *(label for _, label in GATE_SOURCE_COLUMNS)],
                 _gate_source_rows(list(GATE_SOURCE_NAMES), points))


def gate_sources_round4() -> str:
    """The fourth round's gates, and their blends with the shipped one, at the same USPS refusals."""
    points = ["at 0.75% of USPS refused", "at 1.00% of USPS refused", "at 2.00% of USPS refused"]
    return table(["gate", "USPS refused", "threshold", *(label for _, label in GATE_SOURCE_COLUMNS)],
                 _gate_source_rows(list(ROUND4_GATES), points, "gate_sources_round4", ROUND4_GATES))


ROUND5_GATES = {"shipped": "shipped gate", "fine-tune": "gate-real.json fine-tune (5 epochs)",
                "doodles-16": "the same, doodles drawn 16 times", "fine-tune-10": "the fine-tune, 5 epochs more",
                "fine-tune-15": "the fine-tune, 10 epochs more"}


def gate_sources_round5() -> str:
    """The fifth round's gates, each figure the mean over three drawings of the sets, with its range: where the
    shipped gate's own threshold refuses USPS, and at 1% of USPS."""
    bench = results("gate_sources_round5")
    rows = []
    for point, usps in [(_shipped_point(bench), pct(bench["shipped_usps_refused"])), ("at 1.00% of USPS refused", "1.00%")]:
        for name, label in ROUND5_GATES.items():
            rows.append(_bold_if_shipped(name, [label, usps] + _refused_with_range(bench["variants"][name][point])))
    return table(["gate", "USPS refused", *(label for _, label in GATE_SOURCE_COLUMNS)], rows)


ROUND6_GATES = {"shipped": "shipped gate", "pooled-0.3%": "15 epochs in one run, pooled, 0.3% (its card)",
                "each-0.3%": "the same, each collection alike, 0.3%",
                "each-0.15%": "the same, each collection alike, 0.15%"}


def gate_sources_round6() -> str:
    """The sixth round's gate at its own threshold by each rule of choosing it on held-out digits, then where
    the shipped gate's threshold refuses USPS; each figure the mean over three drawings of the sets."""
    bench = results("gate_sources_round6")
    rows = []
    for name, label in ROUND6_GATES.items():
        own = bench["variants"][name]["refused_at_own_threshold"]
        cells = [label, f"{bench['variants'][name]['own_threshold']:.3f}",
                 pct((own["usps_canvas"] + own["usps_photo"]) / 2)] + [pct(own[key], 1)
                                                                      for key, _ in GATE_SOURCE_COLUMNS]
        rows.append(_bold_if_shipped(name, cells))
    at = bench["variants"]["pooled-0.3%"][_shipped_point(bench)]
    rows.append(["the new gate where the shipped one refuses USPS (chosen on USPS)", f"{at['threshold']:.3f}",
                 pct(bench["shipped_usps_refused"])] + _refused_with_range(at))
    return table(["gate, threshold rule", "threshold", "USPS refused",
                  *(label for _, label in GATE_SOURCE_COLUMNS)], rows)


ROUND7_GATES = {"shipped": "gate shipped before", "each-0.3%": "MNIST twice, 15 epochs, each collection 0.3% (its card)",
                "each-0.15%": "the same at 0.15%", "blend-0.3": "the same blended with 0.3 of the gate before (shipped)"}


def gate_sources_round7() -> str:
    """The seventh round's gates (MNIST seen twice an epoch) at their own thresholds, then where the gate shipped
    before refuses USPS; each figure the mean over three drawings of the sets."""
    bench = results("gate_sources_round7")
    rows = []
    for name, label in ROUND7_GATES.items():
        own = bench["variants"][name]["refused_at_own_threshold"]
        cells = [label, f"{bench['variants'][name]['own_threshold']:.3f}",
                 pct((own["usps_canvas"] + own["usps_photo"]) / 2), pct(own["usps_canvas"]), pct(own["usps_photo"]),
                 *(pct(own[key], 1) for key, _ in GATE_SOURCE_COLUMNS)]
        rows.append(_bold_if_shipped(name, cells, shipped="blend-0.3"))
    for name in ("each-0.15%", "blend-0.3"):
        at = bench["variants"][name][_shipped_point(bench)]
        rows.append([f"{ROUND7_GATES[name]}, where the gate before refuses USPS (chosen on USPS)",
                     f"{at['threshold']:.3f}", pct(bench["shipped_usps_refused"]), "", ""] + _refused_with_range(at))
    return table(["gate, threshold", "threshold", "USPS refused", "of the canvas", "of the scans",
                  *(label for _, label in GATE_SOURCE_COLUMNS)], rows)


def gate_sources_ablation() -> str:
    """Each real source left out in turn, and the share of generated non-digits."""
    variants = results("gate_sources")["variants"]
    names = [name for name in variants if name not in GATE_SOURCE_NAMES]
    return table(["variant", "USPS refused", "threshold", *(label for _, label in GATE_SOURCE_COLUMNS)],
                 _gate_source_rows(names, ["at 1.00% of USPS refused"]))


def doodles_through(gate: str = "doodles-8", point: str = "at 0.75% of USPS refused", shown: int = 6) -> str:
    """The held-out doodle categories a gate refuses least, at the shipped gate's USPS cost."""
    by_category = results("gate_sources")["variants"][gate][point]["doodle_categories_refused"]
    return ", ".join(f"{name} {pct(share, 0)}" for name, share in sorted(by_category.items(),
                                                                         key=lambda item: item[1])[:shown])


def doodles_all_refused(gate: str = "doodles-8", point: str = "at 0.75% of USPS refused") -> str:
    by_category = results("gate_sources")["variants"][gate][point]["doodle_categories_refused"]
    return ", ".join(name for name, share in by_category.items() if share == 1.0)


def unipen_audit() -> str:
    """UNIPEN's held-out digits read wrong at >= 90%: how many, and how many come from one contributor's writers."""
    sets = results("unipen_audit")["sets"]

    def one(name: str, where: str) -> str:
        row = sets[name]
        top, count = next(iter(row["by_contributor"].items()), ("none", 0))
        return (f"{row['wrong_confident_count']} of {row['n']:,} {where} ({pct(row['wrong_confident'])}), "
                f"{count} of them by {top.upper()}'s writers")

    return f"{one('unipen_canvas', 'on the canvas')}; {one('unipen_paper', 'on paper')}"


def unipen_agreement(shown: int = 3, at_least: int = 100) -> str:
    """The contributors (of `at_least` digits) whose digits a reader that never saw UNIPEN reads as labelled
    least often."""
    rows = [(name, row) for name, row in results("unipen_audit")["second_opinion_agrees_by_contributor"].items()
            if row["n"] >= at_least]
    return ", ".join(f"{name.upper()} {pct(row['agrees'], 1)} of {row['n']:,}" for name, row in rows[:shown])


CANDIDATE_SETS = (("mnist_test", "MNIST test"), ("usps_photo", "USPS scans"), ("usps_canvas", "USPS on the canvas"),
                  ("unipen_canvas", "UNIPEN held-out writers, canvas"),
                  ("unipen_paper", "UNIPEN held-out writers, paper"),
                  ("continental", "continental, fat pens, small scans"))
CANDIDATE_REFUSALS = (("unipen_others_canvas", "UNIPEN letters and symbols, held-out writers"),
                      ("quickdraw_canvas", "Quick, Draw! held-out categories"), ("omniglot_canvas", "Omniglot, canvas"),
                      ("generated_non_digits", "generated non-digits"))


def candidates(name: str, pairs: dict[str, str], margin: str = "0.15") -> str:
    """Reader and gate pairs side by side (bench/candidates.py): right / refused / wrong at >= 90% on digits,
    refused (a digit at >= 90%) on non-digits."""
    sets = results(name)["sets"]

    def row(key, label, cell):
        return [label] + [cell(sets[key]["rows"][f"{pair}, margin {margin}"]) for pair in pairs]

    rows = [row(key, label, lambda r: " / ".join(f"{100 * r[k]:.2f}" for k in ("right", "refused", "wrong_confident")))
            for key, label in CANDIDATE_SETS]
    rows += [row(key, label + ": refused (a digit at ≥ 90%)",
                 lambda r: f"{100 * r['refused']:.1f} ({100 * r['wrong_confident']:.1f})")
             for key, label in CANDIDATE_REFUSALS]
    return table(["set (right / refused / wrong at ≥ 90%, %)", *pairs.values()], rows)


_ROUND5_GATE = "gate fine-tune-15-budget-0.15%"
# Each bench/candidates.py results file quoted, and the pairs its table shows (the column heads): one table each,
# named like its file ("candidates_round3" -> "candidates-round3").
CANDIDATE_TABLES: dict[str, dict[str, str]] = {
    "candidates_round3": {
        "shipped + gate shipped": "shipped pair", "half-rate + gate shipped": "reader at half the rate, shipped gate",
        "deskew + gate shipped": "deskewing reader, shipped gate",
        "shipped + gate quarter-generated": "shipped reader, new gate",
        "half-rate + gate quarter-generated": "reader at half the rate, new gate"},
    "candidates_round4": {
        "shipped + gate shipped": "shipped pair", "blend-0.5 + gate shipped": "blended reader, shipped gate",
        "fine-tune + gate shipped": "fine-tuned reader, shipped gate",
        "blend-0.5 + gate none": "blended reader alone", "shipped + gate none": "shipped reader alone",
        "blend-0.5 + gate blend-0.3": "blended reader, gate blended at 0.3",
        "blend-0.5 + gate fine-tune": "blended reader, fine-tuned gate"},
    "candidates_round5": {
        "shipped + gate shipped": "shipped pair", f"shipped + {_ROUND5_GATE}": "shipped reader, new gate at 0.15%",
        f"fine-tune + {_ROUND5_GATE}": "fine-tuned reader, new gate at 0.15%",
        f"blend-0.5 + {_ROUND5_GATE}": "blended reader, new gate at 0.15%",
        "fine-tune + gate fine-tune-15": "fine-tuned reader, new gate at its card's 0.3%"},
    "candidates_round6": {
        "shipped + gate shipped": "shipped pair", "shipped + gate each-0.15%": "shipped reader, new gate at 0.15%",
        "fine-tune + gate shipped": "fine-tuned reader, shipped gate",
        "fine-tune + gate each-0.15%": "fine-tuned reader, new gate at 0.15%"},
    "candidates_round7": {
        "shipped + gate shipped": "pair before", "shipped + gate each-0.15%": "shipped reader, new gate unblended",
        "shipped + gate blend-0.3": "**shipped pair now** (the blended gate)"},
    "candidates_round7_reader": {
        "shipped + gate blend-0.3": "shipped pair now",
        "r5m + gate blend-0.3": "reader fine-tuned (MNIST twice), new gate",
        "r5m + gate shipped": "the same reader, gate before", "shipped + gate none": "shipped reader alone",
        "r5m + gate none": "fine-tuned reader alone"},
    "candidates_round7_reader_blend": {
        "shipped + gate blend-0.3": "shipped pair now", "r5m + gate blend-0.3": "fine-tuned reader, gate now",
        "r5m-blend-0.3 + gate blend-0.3": "the fine-tuned reader blended with 0.3 of the one before"},
    "candidates_round9": {
        "shipped + gate shipped": "**shipped pair**", "styled + gate shipped": "reader with the styles, gate shipped",
        "shipped + gate styled": "shipped reader, gate with the styles",
        "styled + gate styled": "both with the styles"},
}


def finetune() -> str:
    bench = results("feedback_finetune")
    digit, before = str(bench["style_digit"]), bench["calculator_digits_before"]
    rows = []
    for run in bench["runs"]:
        after = run["calculator_digits_after"]
        others = run["other_digits_each"]
        stored = f"{run['stored'] - 9 * others} corrected {digit}s" + (
            f" + {others} of each other calculator digit" if others else "")
        held = run["store_holdout"]
        if held["count"]:
            stored += f" (the store held {held['count']} out: {pct(held['before'], 0)} → {pct(held['after'], 0)})"
        rows.append([stored, f"{run['mode']} ×20", f"{pct(before[digit], 1)} → **{pct(after[digit], 1)}**",
                     f"{pct(before['8'], 0)} → {pct(after['8'], 0)} / {pct(before['3'], 0)} → {pct(after['3'], 0)}",
                     f"{pct(run['mnist_test']['before'])} → {pct(run['mnist_test']['after'])}",
                     f"{run['seconds']:.0f} s"])
    return table(["stored in the app", "mode", f"held-out calculator {digit}s", "calculator 8s / 3s",
                  "MNIST test (10,000)", "command, wall"], rows)


def gate_feedback() -> str:
    """Before → after a fine-tune of the gate on users' "not a digit" corrections of one doodle."""
    bench = results("gate_feedback")
    groups = {"doodles": "doodle", "non_digits": "non-digits", "digits": "digits"}
    names = {"usps_photo": "USPS, photographed scans", "usps_canvas": "USPS, drawn again on the canvas",
             "mnist_test": "MNIST test", "ardis_heldout": "ARDIS held out", "omniglot_canvas": "Omniglot, canvas",
             "omniglot_photo": "Omniglot, photos", "generated_non_digits": "our generated non-digits"}
    rows = []
    for group, kind in groups.items():
        for name, row in bench[group].items():
            before, after = row["before"], row["after"]
            label = names.get(name, name) + (f" (**taught**: {bench['corrections']} stored)"
                                             if name == bench["doodle"] else "")
            right = "–" if kind != "digits" else f"{pct(before['right'])} → {pct(after['right'])}"
            places = 2 if kind == "digits" else 1
            refused = f"{pct(before['refused'], places)} → **{pct(after['refused'], places)}**"
            rows.append([label, kind, f"{before['n']:,}", refused, right])
    return table(["set", "kind", "n", "refused, old gate → taught gate", "read right"], rows)


def store_speed() -> str:
    bench = results("store_speed")
    names = {"sqlite": "SQLite (WAL, synchronous=FULL)", "postgresql": "PostgreSQL 15, local, fsync on"}
    rows = [[names[name], f"{m['writes_per_second']:.0f}", f"{m['sidebar_ms']:.1f} ms"]
            for name, m in bench["medians"].items()]
    rows.append(["reading a digit (never touches the store), same run", "–", f"{bench['reading_ms']:.2f} ms"])
    return table(["store", "corrections stored per second (one at a time, with a 280x280 drawing)",
                  "what each app rerun asks (counts + latest 12), median"], rows)


def distributed() -> str:
    bench = results("distributed")
    rows = []
    for name, run in bench["runs"].items():
        rows.append([f"`{name}`", str(run["replicas"]), str(run["global_batch_size"]),
                     f"{run['epoch_seconds_median']:.1f} s", f"{run['epoch_ratio']:.2f}x", pct(run["test_accuracy"]),
                     " + ".join(f"{mb:,}" for mb in run["peak_rss_mb_per_process"]) + " MB"])
    return table(["run", "replicas", "global batch", "epoch (median)", "vs one device", "MNIST test", "peak RSS"],
                 rows)


def results_models() -> str:
    shipped, png = card(), results("mnist_png_accuracy")
    test = shipped["metrics"]["test_mnist"]
    rows = [[f"`{shipped['architecture']}` (shipped, `model/digits.keras`, "
             f"{' + '.join(d['name'] for d in shipped['data']['datasets'])})", f"**{pct(test['accuracy'])}**",
             f"{test['errors']} / {test['count']:,}",
             f"**{pct(png['accuracy_png_through_predict'])}** read right, {pct(png['refused'])} refused "
             f"({png['disagreements_with_raw']} images read differently from the raw arrays)",
             f"{shipped['training_seconds'] / 60:.1f} min", str(shipped["epochs_run"]),
             f"{shipped.get('epoch_seconds_median') or 0:.0f} s"]]
    return table(["model", "MNIST test accuracy", "errors", "via `model.predict` on PNG files "
                                                           f"(`bench/mnist_png_accuracy.py`, {png['date']})",
                  "training time", "epochs", "median epoch"], rows)


# ----------------------------------------------------------------------------- figures inside sentences

FIGURES: dict[str, Callable[[], str]] = {
    "why-map-ms": lambda: f"{results('why')['map_ms_median']:.0f} ms",
    "why-stroke-ms": lambda: f"+{results('app_speed')['stroke_with_why_ms']['added_ms_p50']:.0f} ms",
    "why-area": lambda: f"{results('why')['map_over_random_median']:.2f}",
    "why-faster-share": lambda: pct(results("why")["map_better_than_random_share"], 0),
    "why-digits": lambda: str(results("why")["digits"]),
    "doodles-through": doodles_through,
    "doodles-all-refused": doodles_all_refused,
    "unipen-audit": unipen_audit,
    "unipen-agreement": unipen_agreement,
    "smileys-one": lambda: pct(results("smileys")["one_digit_claimed"], 1),
    "smileys-number": lambda: pct(results("smileys")["number_claimed"], 1),
    "threshold": lambda: f"{card()['calibration']['threshold']:.2f}",
    "png-images-per-second": lambda: f"{results('mnist_png_accuracy')['images_per_second']:.0f}",
    "robustness-files-per-second": lambda: f"{results('robustness')['files_per_second']:.0f}",
    "number-losses": number_losses,
    "trust-ece": lambda: ", ".join(f"{label} {pct(results('trust')['sets'][key]['ece'])}" for key, label in
                                   (("mnist_test", "MNIST test"), ("usps_photo", "USPS scans"),
                                    ("usps_canvas", "USPS canvas"), ("continental", "continental"))),
    "finetune-date": lambda: results("feedback_finetune")["date"],
    "distributed-date": lambda: results("distributed")["date"],
    "gate-feedback-date": lambda: results("gate_feedback")["date"],
    "store-speed-date": lambda: results("store_speed")["date"],
    "gate-feedback-summary": lambda: (lambda b: f"{b['fine_tune_seconds']:.0f} s; the gate's threshold "
                                                f"{b['thresholds']['before']:.3f} → {b['thresholds']['after']:.3f}")(
        results("gate_feedback")),
    "gate-feedback-cloud": lambda: (lambda b: (
        f"{pct(b['doodles']['cloud']['before']['refused'], 0)} → {pct(b['doodles']['cloud']['after']['refused'], 0)} "
        f"of new clouds refused; Omniglot {pct(b['non_digits']['omniglot_canvas']['before']['refused'], 1)} → "
        f"{pct(b['non_digits']['omniglot_canvas']['after']['refused'], 1)} (canvas); USPS photos refused "
        f"{pct(b['digits']['usps_photo']['before']['refused'])} → {pct(b['digits']['usps_photo']['after']['refused'])}"
        f"; threshold {b['thresholds']['before']:.3f} → {b['thresholds']['after']:.3f}"))(
        results("gate_feedback_cloud")),
    "gate-threshold": lambda: f"{results('trust')['gate']['threshold']:.3f}",
    "gate-latency": lambda: (lambda g: f"p50 {g['ours_p50_ms']:.2f} ms with the gate, {g['previous_p50_ms']:.2f} ms "
                                       f"for the reader alone: {g['ratio']:.2f}x")(
        results("latency")["gate_versus_reader_alone"]),
    "browser-canvas": lambda: (lambda b: f"{b['correct']} of {b['digits']} read right ({pct(b['accuracy'], 0)})"
                               f"; from releasing the mouse to the prediction appearing: median "
                               f"{b['stroke_to_result_seconds']['median']:.2f} s, p95 "
                               f"{b['stroke_to_result_seconds']['p95']:.2f} s")(results("browser_canvas")),
}
TABLES: dict[str, Callable[[], str]] = {
    "readme-results": readme_results, "speed": speed, "robustness": robustness, "trust-shipped": trust_shipped,
    "trust-tradeoff": trust_tradeoff, "finetune": finetune, "distributed": distributed,
    "results-models": results_models, "answer-latency": answer_latency,
    "gate-tradeoff": gate_tradeoff, "gate-feedback": gate_feedback, "store-speed": store_speed,
    "gate-scores": gate_scores, "gate-sources-compare": gate_sources_compare,
    "gate-sources-ablation": gate_sources_ablation,
    "gate-sources-round4": gate_sources_round4,
    "gate-sources-round5": gate_sources_round5,
    "gate-sources-round6": gate_sources_round6,
    "gate-sources-round7": gate_sources_round7,
    **{name.replace("_", "-"): functools.partial(candidates, name, pairs)
       for name, pairs in CANDIDATE_TABLES.items()},
}


def render(text: str, where: str) -> tuple[str, list[str]]:
    """The text with every quote rendered afresh, and what changed (or is unknown)."""
    problems = []

    def replace(pattern, renderers, kind):
        def one(match):
            name = match.group("name")
            if name not in renderers:
                problems.append(f"{where}: unknown {kind} {name!r}")
                return match.group(0)
            fresh = renderers[name]()
            if fresh != match.group("body"):
                problems.append(f"{where}: {kind} {name!r} differs from its JSON")
            return match.group(1) + fresh + match.group(4)
        return one

    text = BLOCK.sub(replace(BLOCK, TABLES, "table"), text)
    text = INLINE.sub(replace(INLINE, FIGURES, "figure"), text)
    return text, problems


def documents() -> list[Path]:
    return sorted({path for pattern in DOCUMENTS for path in ROOT.glob(pattern)})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only list the quotes that differ; exit 1 if any")
    args = parser.parse_args(argv)
    problems = []
    for path in documents():
        text = path.read_text()
        fresh, found = render(text, str(path.relative_to(ROOT)))
        problems += found
        if not args.check and fresh != text:
            path.write_text(fresh)
            print(f"rewrote {path.relative_to(ROOT)}")
    for problem in problems:
        print(problem, file=sys.stderr if args.check else sys.stdout)
    return 1 if args.check and problems else 0


if __name__ == "__main__":
    sys.exit(main())
