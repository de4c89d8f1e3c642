"""The app's wiring, with streamlit.testing.v1.AppTest and a fake canvas."""

import contextlib
import io
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


class FakeCanvas(types.ModuleType):
    """Stands in for streamlit_drawable_canvas: returns whatever image the test 'drew'."""

    def __init__(self):
        super().__init__("streamlit_drawable_canvas")
        self.image = None
        self.calls = []

    def st_canvas(self, **kwargs):
        self.calls.append(kwargs)
        return types.SimpleNamespace(image_data=self.image, json_data=None)


@pytest.fixture
def canvas(monkeypatch, tmp_path):
    import streamlit as st

    fake = FakeCanvas()
    monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", fake)
    monkeypatch.setenv("DIGITS_DATA_DIR", str(tmp_path / "data"))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield fake
    st.cache_resource.clear()


def _app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(APP, default_timeout=60)


def _open_panels(at):
    """The sidebar's panels opened, as a user opens them before using what is in them: they are drawn only
    while open (test_the_sidebar_panels_and_the_gallery_are_drawn_only_while_open)."""
    from ui import state

    at.session_state[state.CORRECTIONS_OPEN] = True
    at.session_state[state.VERSIONS_OPEN] = True
    return at


def _canvas_rgba(digit_image, size=280):
    """An MNIST digit as the canvas sends it: white strokes on black, RGBA."""
    big = np.array(Image.fromarray(digit_image).resize((size, size), Image.BILINEAR))
    return np.dstack([big, big, big, np.full_like(big, 255)])


def _predictions(at):
    return [m.value for m in at.metric if m.label == "Prediction"]


def _confidences(at):
    """What the page says of its reading: the digit and its confidence, or the refusal and the closest guess."""
    return ([m.value for m in at.metric if m.label == "Prediction"]
            + [md.value for md in at.markdown if md.value.startswith("Confidence")]
            + [c.value for c in at.caption if c.value.startswith("If it were a digit")])


def _shown(reading):
    """What the page should say of a reading (see _confidences)."""
    from model.confidence import VERDICT_LABELS

    if reading.refused:
        return [VERDICT_LABELS[reading.verdict], f"If it were a digit, the likeliest would be {reading.closest} "
                f"({reading.confidence:.0%} of the reader's probability, which only splits among 0-9)."]
    return [str(reading.digit), f"Confidence: **{reading.confidence:.1%}**"]


def test_a_refused_reading_is_called_so_with_the_closest_guess(canvas, stand_in_model):
    """With a model that claims nothing (untrained), the page says so on the metric, names the closest
    guess in small type, explains the percentage, and offers "Right" to confirm that it is not a digit."""
    from bench import styles, synth
    from model.confidence import VERDICT_LABELS
    from model.inference import Recognizer
    from model.registry import Registry

    canvas.image = synth.canvas_style(styles.canvas_drawing(styles.ISSUE_TABLE["smiley"], pen=14), "white_on_black")
    registry = Registry()
    registry.activate(registry.add(stand_in_model).version)
    reading = Recognizer(registry.active().path).read(canvas.image)
    assert reading.refused
    at = _app().run()
    assert not at.exception
    assert _predictions(at) == [VERDICT_LABELS[reading.verdict]] and _confidences(at) == _shown(reading)
    assert any(reading.reason in warning.value.lower() for warning in at.warning)
    assert at.metric[0].help and "calibrated" in at.metric[0].help  # what the percentage means
    assert len(at.get("vega_lite_chart")) == 1 and any("What the model saw" in c for i in at.image for c in i.captions)
    # issue 33, item 1: the chart of a refusal does not look like an answer: no bar stands out, and it says so
    chart = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert "field" not in chart["encoding"]["color"]  # one pale colour for every bar
    assert chart["title"]["text"].startswith("Not an answer") and chart["mark"]["opacity"] < 1


def test_a_claimed_digit_has_its_bar_highlighted(canvas, mnist_sample):
    x, y = mnist_sample
    canvas.image = _canvas_rgba(x[35])
    at = _app().run()
    chart = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert chart["encoding"]["color"]["field"] == "pick" and chart["mark"]["opacity"] == 1


def test_a_right_not_a_digit_is_confirmed_as_not_a_digit(canvas, stand_in_model):
    """Issue 33, item 5: "Right" under "Not a digit" stores the drawing as the not-a-digit kind, counted as
    confirmed."""
    from bench import styles, synth
    from model.confidence import NOT_A_DIGIT as REFUSED
    from model.constants import NOT_A_DIGIT
    from model.inference import Recognizer
    from model.registry import Registry

    canvas.image = synth.canvas_style(styles.canvas_drawing(styles.ISSUE_TABLE["smiley"], pen=14), "white_on_black")
    registry = Registry()
    registry.activate(registry.add(stand_in_model).version)
    reading = Recognizer(registry.active().path).read(canvas.image)
    assert reading.verdict == REFUSED
    at = _app().run()
    at.button(key="feedback_canvas_right").click().run()
    assert not at.exception
    (confirmed,) = _store().recent()
    assert confirmed.not_a_digit and confirmed.label == NOT_A_DIGIT and confirmed.predicted == reading.closest
    assert any("Saved as not a digit" in s.value for s in at.success)


def test_empty_canvas_shows_a_hint_and_no_digit(canvas):
    at = _app().run()
    assert not at.exception
    assert _predictions(at) == []
    assert any("Draw a digit" in info.value for info in at.info)
    call = canvas.calls[-1]
    assert call["return_image_data"] is True and call["key"] == "canvas"
    assert call["stroke_width"] == at.slider(key="pen_width").value


def test_blank_canvas_after_clear_shows_the_hint(canvas):
    canvas.image = np.dstack([np.zeros((280, 280, 3), np.uint8), np.full((280, 280), 255, np.uint8)])
    at = _app().run()
    # issue 33: a cleared canvas asks for a digit as a fresh one does, not in the words for a photo
    assert _predictions(at) == [] and any("Draw a digit" in info.value for info in at.info)
    assert not [info for info in at.info if "Nothing to read" in info.value or "contrast" in info.value]


def test_drawing_shows_prediction_chart_and_model_input(canvas, mnist_sample):
    x, y = mnist_sample
    canvas.image = _canvas_rgba(x[35])
    at = _app().run()
    assert not at.exception
    assert _predictions(at) == [str(y[35])]
    assert any("What the model saw" in caption for image in at.image for caption in image.captions)
    assert len(at.get("vega_lite_chart")) == 1  # the probability chart
    assert any("Confidence" in md.value for md in at.markdown)


def test_pen_width_is_passed_to_the_canvas(canvas):
    at = _app().run()
    at.slider(key="pen_width").set_value(30).run()
    assert canvas.calls[-1]["stroke_width"] == 30


def _png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_upload_goes_through_the_photo_pipeline(canvas, mnist_sample):
    x, y = mnist_sample
    photo = np.kron(255 - x[12], np.ones((5, 5), np.uint8))  # dark ink on paper
    at = _app().run()
    at.file_uploader(key="upload").set_value(("digit.png", _png(photo), "image/png")).run()
    assert not at.exception
    assert _predictions(at) == [str(y[12])]


def test_unreadable_upload_gets_a_clear_message(canvas):
    at = _app().run()
    at.file_uploader(key="upload").set_value(("fake.png", b"<html>not an image</html>", "image/png")).run()
    assert not at.exception
    assert any("not an image" in error.value for error in at.error)
    assert _predictions(at) == []


def test_camera_photo_is_read(canvas, mnist_sample):
    x, y = mnist_sample
    photo = np.kron(255 - x[20], np.ones((8, 8), np.uint8))
    buffer = io.BytesIO()
    Image.fromarray(photo).convert("RGB").save(buffer, format="JPEG", quality=90)
    at = _app().run()
    at.camera_input(key="camera").set_value(("photo.jpg", buffer.getvalue(), "image/jpeg")).run()
    assert not at.exception
    assert _predictions(at) == [str(y[20])]


def test_sidebar_shows_the_active_model(canvas):
    at = _app().run()
    text = " ".join(md.value for md in at.sidebar.markdown)
    assert "shipped" in text and "MNIST test accuracy" in text
    assert at.sidebar.button(key="train_start") is not None
    from model.artifacts import SHIPPED_MODEL
    from model.gate import Gate

    gate = Gate.beside(SHIPPED_MODEL)  # the sidebar says whether a gate decides what is not a digit, and which
    # issue 33, item 10: the gate is told apart by when and on what it was trained, not by an id alone
    if gate:
        assert f"Gate (is it a digit at all?): trained {gate.card.created[:10]}" in text
        assert f"on {gate.card.trained_on}" in text and f"**{gate.threshold:.0%}**" in text
    else:
        assert "No gate: the reader's own confidence" in text
    assert "Reader (which digit): trained" in text


def test_second_training_start_is_refused(canvas, monkeypatch):
    from services import jobs as jobs_module

    started = []

    def fake_start(self, config):
        if started:
            raise jobs_module.TrainingAlreadyRunning("A training run is already running on this server")
        started.append(config)

    monkeypatch.setattr(jobs_module.TrainingJobs, "start", fake_start)
    at = _app().run()
    at.sidebar.button(key="train_start").click().run()
    assert started and started[0].data == ("mnist",)  # the quick preset:
    assert (started[0].architecture, started[0].epochs, started[0].fine_tune) == ("compact", 3, False)
    at.sidebar.button(key="train_start").click().run()
    assert any("already running" in w.value for w in at.sidebar.warning)


def _two_digits_canvas(x, first, second):
    """Two MNIST digits side by side on a canvas-like RGBA image."""
    row = np.hstack([np.zeros((28, 6), np.uint8), x[first], np.zeros((28, 8), np.uint8), x[second],
                     np.zeros((28, 6), np.uint8)])
    big = np.kron(row, np.ones((5, 5), np.uint8))
    return np.dstack([big, big, big, np.full_like(big, 255)])


def test_a_number_on_the_canvas_is_read_with_a_box_per_digit(canvas, mnist_sample):
    x, y = mnist_sample
    canvas.image = _two_digits_canvas(x, 5, 12)
    at = _app().run()
    assert not at.exception
    assert at.radio(key="read_mode").value == "Auto"
    numbers = [m.value for m in at.metric if m.label == "Number"]
    assert numbers == [f"{y[5]}{y[12]}"]
    assert any("Each digit as read" in caption for image in at.image for caption in image.captions)
    # The same drawing read as one digit gives one prediction and its chart.
    at.radio(key="read_mode").set_value("One digit").run()
    assert len(_predictions(at)) == 1 and not [m for m in at.metric if m.label == "Number"]


def test_a_single_digit_in_whole_number_mode_is_a_one_digit_number(canvas, mnist_sample):
    x, y = mnist_sample
    canvas.image = _canvas_rgba(x[35])
    at = _app().run()
    at.radio(key="read_mode").set_value("Whole number").run()
    assert [m.value for m in at.metric if m.label == "Number"] == [str(y[35])]


def _store():
    from services.corrections import CorrectionStore

    return CorrectionStore()  # the one in $DIGITS_DATA_DIR, as the app uses


def test_right_and_wrong_store_the_sample_and_undo_removes_it(canvas, mnist_sample):
    x, y = mnist_sample
    canvas.image = _canvas_rgba(x[35])
    at = _app().run()
    at.button(key="feedback_canvas_right").click().run()
    assert not at.exception
    (confirmed,) = _store().recent()
    assert confirmed.label == confirmed.predicted == y[35] and confirmed.model_version == "shipped"
    assert confirmed.source == "canvas" and confirmed.model_input.shape == (28, 28)
    assert any("Saved as" in s.value for s in at.success)
    at.button(key="feedback_canvas_undo").click().run()
    assert len(_store()) == 0

    wrong = (int(y[35]) + 3) % 10
    at.button_group(key="feedback_canvas_digit").set_value(wrong).run()
    assert not at.exception
    (corrected,) = _store().recent()
    assert (corrected.label, corrected.predicted) == (wrong, y[35]) and corrected.confidence > 0.5
    assert at.session_state["feedback_canvas_digit"] is None  # cleared: the next drawing starts unanswered
    at.run()  # a rerun stores nothing twice
    assert len(_store()) == 1
    assert "Corrections (1 stored)" in " ".join(e.label for e in at.sidebar.expander)


def test_wrong_offers_not_a_digit_and_stores_it_for_the_gate(canvas, mnist_sample):
    from model.constants import NOT_A_DIGIT

    x, _ = mnist_sample
    canvas.image = _canvas_rgba(x[35])
    at = _app().run()
    pills = at.button_group(key="feedback_canvas_digit")
    assert "not a digit" in [pills.format_func(option) for option in pills.options]
    pills.set_value(NOT_A_DIGIT).run()
    assert not at.exception
    (stored,) = _store().recent()
    assert stored.not_a_digit and stored.label == NOT_A_DIGIT and stored.predicted is not None
    assert any("Saved as not a digit" in s.value for s in at.success)


def test_a_wrong_number_is_corrected_digit_by_digit(canvas, mnist_sample):
    x, y = mnist_sample
    canvas.image = _two_digits_canvas(x, 5, 12)
    at = _app().run()
    at.text_input(key="feedback_canvas_number").set_value("123").run()
    assert any("Type the 2 digits" in e.value for e in at.error) and len(_store()) == 0
    at.text_input(key="feedback_canvas_number").set_value(f"{y[5]}9").run()
    stored = sorted(_store().recent(), key=lambda c: c.id)
    assert [c.label for c in stored] == [y[5], 9] and [c.predicted for c in stored] == [y[5], y[12]]


def test_without_an_admin_token_the_app_is_open_and_says_so(canvas, monkeypatch):
    monkeypatch.delenv("ADMIN_TOKEN", raising=False)
    at = _open_panels(_app()).run()
    assert any("Open local tool" in c.value for c in at.sidebar.caption)
    assert at.sidebar.button(key="train_start") is not None
    assert not at.sidebar.button(key="version_rollback").disabled


@pytest.fixture
def clock(monkeypatch):
    """The admin guard's clock, moved by hand: wrong tokens are slowed (services.admin_guard)."""
    now = [1_800_000_000.0]
    monkeypatch.setattr("services.admin_guard._now", lambda: now[0])
    return now


def test_with_an_admin_token_only_reading_and_correcting_are_open(canvas, monkeypatch, mnist_sample, clock):
    x, y = mnist_sample
    monkeypatch.setenv("ADMIN_TOKEN", "s3cret-token")
    canvas.image = _canvas_rgba(x[35])
    at = _open_panels(_app()).run()
    locked = ("train_start",)
    assert not [b for b in at.sidebar.button if b.key in locked]  # no retrain form at all
    for key in ("version_rollback", "version_activate", "version_delete"):
        assert at.sidebar.button(key=key).disabled
    assert _predictions(at) == [str(y[35])]  # reading needs no token...
    at.button(key="feedback_canvas_right").click().run()
    assert len(_store()) == 1  # ...nor does sending a correction
    assert at.sidebar.button(key="correction_delete").disabled
    assert at.sidebar.get("download_button")[0].proto.disabled

    at.sidebar.text_input(key="admin_token").set_value("wrong").run()
    assert any("not right" in e.value for e in at.sidebar.error)
    assert at.sidebar.button(key="version_rollback").disabled

    clock[0] += 1  # the wait after one wrong token
    at.sidebar.text_input(key="admin_token").set_value("s3cret-token").run()
    assert at.sidebar.button(key="train_start") is not None
    assert not at.sidebar.button(key="version_rollback").disabled
    at.sidebar.button(key="correction_delete").click().run()
    assert len(_store()) == 0


def test_activation_and_rollback_switch_the_model_of_every_session(canvas, mnist_sample, stand_in_model):
    from model.inference import Recognizer
    from model.registry import Registry
    from services.versions import main as models_cli

    x, y = mnist_sample
    canvas.image = _canvas_rgba(x[35])
    registry = Registry()
    version = registry.add(stand_in_model).version
    untrained = Recognizer(registry.get(version).path).read(canvas.image)
    sessions = [_open_panels(_app()).run(), _open_panels(_app()).run()]
    shipped_answer = _confidences(sessions[0])
    assert shipped_answer == _confidences(sessions[1]) and _predictions(sessions[0]) == [str(y[35])]

    assert models_cli(["activate", version]) == 0  # from the command line, while both sessions are open
    for at in sessions:
        at.run()
        assert version in " ".join(md.value for md in at.sidebar.markdown)
        assert _confidences(at) == _shown(untrained), "every session reads with the activated model"

    sessions[0].sidebar.button(key="version_rollback").click().run()  # from one session's sidebar
    for at in sessions:
        at.run()
        assert "shipped" in " ".join(md.value for md in at.sidebar.markdown)
        assert _confidences(at) == shipped_answer


def test_versions_are_compared_side_by_side_in_a_dialog(canvas, stand_in_model):
    from model.registry import Registry

    version = Registry().add(stand_in_model).version
    at = _open_panels(_app()).run()
    assert at.sidebar.multiselect(key="version_compare").value == [version, "shipped"]
    at.sidebar.button(key="version_compare_open").click().run()
    assert not at.exception
    assert any("confusion matrices" in c.value for c in at.caption)
    assert any("No confusion matrix recorded" in c.value for c in at.caption)  # the stand-in has none
    assert len(at.dataframe) == 2  # the metrics table and the shipped model's confusion matrix
    # issue 33, item 9: the dialog names and shows figures as the sidebar does
    table = at.dataframe[0].value
    assert "MNIST test accuracy" in table.index and not [label for label in table.index if "test_mnist" in label]
    assert table.loc["MNIST test accuracy", version] == "—" and table.loc["MNIST test accuracy", "shipped"].endswith("%")
    assert "None" not in table.to_string()


def test_retraining_with_corrections_passes_how_they_count(canvas, monkeypatch, mnist_sample):
    from services import jobs as jobs_module

    started = []
    monkeypatch.setattr(jobs_module.TrainingJobs, "start", lambda self, config: started.append(config))
    x, _ = mnist_sample
    canvas.image = _canvas_rgba(x[35])
    at = _app().run()
    at.button(key="feedback_canvas_right").click().run()
    at.sidebar.checkbox(key="train_feedback").check().run()
    at.sidebar.radio(key="train_feedback_mode").set_value("weight").run()
    at.sidebar.number_input(key="train_feedback_factor").set_value(5).run()
    at.sidebar.button(key="train_start").click().run()
    assert not at.exception
    assert started[-1].feedback and started[-1].feedback_mode == "weight" and started[-1].feedback_factor == 5


def test_a_damaged_active_model_falls_back_to_the_last_good_one(canvas, mnist_sample, stand_in_model, tmp_path):
    import json
    import shutil

    from model.registry import Registry

    x, _ = mnist_sample
    canvas.image = _canvas_rgba(x[35])
    registry = Registry()
    good = registry.add(stand_in_model).version
    damaged_dir = tmp_path / "damaged"
    shutil.copytree(stand_in_model.parent, damaged_dir)
    sidecar = json.loads((damaged_dir / "digits.json").read_text())
    (damaged_dir / "digits.json").write_text(json.dumps({**sidecar, "version": "20990102-000000"}))
    damaged = registry.add(damaged_dir / "digits.keras").version
    registry.activate(good)
    registry.activate(damaged)
    path = registry.get(damaged).path
    path.write_bytes(path.read_bytes()[:2000])  # truncated on disk after it was activated

    at = _app().run()
    assert not at.exception
    assert any(f"Using {good}" in w.value and "SHA-256" in w.value for w in at.warning)
    assert good in " ".join(md.value for md in at.sidebar.markdown)
    assert len(_predictions(at)) == 1  # still reading digits, with the last good model


# ------------------------------------------------------------------ why, examples, downloads (issue 15)


def test_the_why_toggle_shows_the_map_over_the_28x28_and_over_the_drawing(canvas, mnist_sample):
    x, y = mnist_sample
    canvas.image = _canvas_rgba(x[35])
    at = _app().run()
    captions = [c for image in at.image for c in image.captions]
    assert not any("rather than" in c for c in captions)  # off by default: it costs a batch of readings
    at.toggle(key="why_canvas").set_value(True).run()
    assert not at.exception
    captions = [c for image in at.image for c in image.captions]
    assert any(c.startswith(f"{y[35]} rather than ") for c in captions)
    assert "On your input" in captions
    assert any("Orange" in c.value and "Blue" in c.value for c in at.caption)
    canvas.image = None  # cleared...
    at.run()
    assert at.toggle(key="why_canvas").value and at.toggle(key="why_canvas").disabled
    canvas.image = _canvas_rgba(x[36])  # ...and drawn again: the choice was kept
    at.run()
    assert any(c.startswith(f"{y[36]} rather than ") for image in at.image for c in image.captions)


def test_each_example_goes_down_the_upload_path_and_is_read_as_an_upload_would_be(canvas):
    from model.images import decode_image
    from model.inference import NumberReading, Recognizer
    from ui import state

    gallery = json.loads((ROOT / "examples" / "gallery.json").read_text())
    assert len(gallery) == 5
    recognizer = Recognizer()
    at = _app()
    at.session_state[state.INPUT_TAB] = "Examples"  # the gallery is drawn only while its tab is shown
    at = at.run()
    shown = []
    for index, example in enumerate(gallery):
        at.button(key=f"example_{index}").click().run()
        assert not at.exception
        expected = recognizer.read_auto(decode_image((ROOT / "examples" / example["file"]).read_bytes()))
        if isinstance(expected, NumberReading):
            value = [m.value for m in at.metric if m.label == "Number"]
            assert value == [expected.number]
        else:
            assert _confidences(at) == _shown(expected)
        shown.append(value[0] if isinstance(expected, NumberReading) else _predictions(at)[0])
    # The gallery's own promises: an MNIST 7, a photographed 4, the number 2026, and a refused non-digit.
    from model.confidence import NOT_A_DIGIT, VERDICT_LABELS

    assert shown[0] == "7" and shown[1] == "4" and shown[2] == "2026" and shown[4] == VERDICT_LABELS[NOT_A_DIGIT]
    assert not [b for b in at.button if b.label == "Right"]  # examples teach the model nothing


@pytest.fixture
def media(monkeypatch):
    """What the page offers for download, by URL: the bytes the browser would get."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    files = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def recorded(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        files[self.get_url(file_id)] = path_or_data
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", recorded)
    return files


def test_downloads_are_the_28x28_input_and_the_json_that_the_command_prints(canvas, mnist_sample, media, tmp_path):
    from model.predict import main as predict

    x, y = mnist_sample
    photo = np.kron(255 - x[12], np.ones((5, 5), np.uint8))
    (tmp_path / "digit.png").write_bytes(_png(photo))
    at = _app().run()
    at.file_uploader(key="upload").set_value(("digit.png", _png(photo), "image/png")).run()
    assert not at.exception
    png = Image.open(io.BytesIO(media[at.get("download_button")[0].proto.url]))
    from model.inference import Recognizer

    reading = Recognizer().read(photo)
    assert png.size == (28, 28) and np.array_equal(np.asarray(png), reading.model_input)
    downloaded = json.loads(media[at.get("download_button")[1].proto.url])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert predict(["--json", str(tmp_path / "digit.png")]) == 0
    printed = json.loads(out.getvalue())
    assert downloaded["path"] == "digit.png" and downloaded["digit"] == y[12]
    assert {**downloaded, "path": None} == {**printed, "path": None}


def test_the_sidebar_panels_and_the_gallery_are_drawn_only_while_open(canvas, mnist_sample):
    """Every element on the page delays each stroke's answer (docs/speed.md), so what is folded away is not
    drawn: opened, it is, and nothing was lost meanwhile."""
    from ui import state

    x, y = mnist_sample
    canvas.image = _canvas_rgba(x[3])
    at = _app().run()
    at.button(key="feedback_canvas_right").click().run()
    folded = {"version_rollback", "version_compare_open", "correction_delete", "example_0"}
    assert not folded & {b.key for b in at.button} and not at.sidebar.get("download_button")  # nor the export
    assert "Corrections (1 stored)" in [e.label for e in at.sidebar.expander]  # the count shows while folded
    at.session_state[state.CORRECTIONS_OPEN] = True
    at.session_state[state.VERSIONS_OPEN] = True
    at.session_state[state.INPUT_TAB] = "Examples"
    at.run()
    assert not at.exception
    assert folded <= {b.key for b in at.button}
    assert at.sidebar.get("download_button")  # the export
    assert _predictions(at) == [str(y[3])]  # the drawing is still there and read
    assert [c.label for c in _store().recent()] == [y[3]]


def test_the_versions_table_shows_every_headline_figure_of_the_model_cards(canvas, tmp_path):
    from model.artifacts import file_sha256
    from model.card import HEADLINE, Metrics, ModelCard
    from model.registry import Registry

    model = tmp_path / "run" / "m.keras"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"weights")
    ModelCard(version="20990101-000000", model_sha256=file_sha256(model),
              metrics={"test_mnist": Metrics(accuracy=0.99, errors=100, count=10000)}).write(model)
    Registry().add(model)
    at = _open_panels(_app()).run()
    assert not at.exception
    table = at.sidebar.table[0].value
    # short, and without the error count (the accuracy says it), to fit the sidebar (issue 33, item 9)
    assert list(table.columns) == [figure.short for figure in HEADLINE if figure.metric != "errors"]
    shipped = Registry().get("shipped").card.test_accuracy  # whatever model ships: the figure its card records
    assert table.loc["20990101-000000", "MNIST"] == "99.00%"
    assert table.loc["● shipped", "MNIST"] == f"{shipped:.2%}"
    assert any("MNIST: MNIST test" in c.value for c in at.sidebar.caption)  # and what each short name means


def test_the_retrain_form_offers_label_smoothing_and_passes_it_on(canvas, monkeypatch):
    from services import jobs as jobs_module

    started = []
    monkeypatch.setattr(jobs_module.TrainingJobs, "start", lambda self, config: started.append(config))
    at = _app().run()
    at.sidebar.number_input(key="train_label_smoothing").set_value(0.1).run()
    at.sidebar.button(key="train_start").click().run()
    assert not at.exception
    assert started[-1].label_smoothing == pytest.approx(0.1) and started[-1].architecture == "compact"


@pytest.fixture
def secrets_file(monkeypatch, tmp_path):
    """Point Streamlit's secrets at a file of the test's own (written by the test), and forget what it read."""
    import streamlit as st
    from streamlit import config

    path = tmp_path / "secrets.toml"
    monkeypatch.delenv("ADMIN_TOKEN", raising=False)
    saved = config.get_option("secrets.files")
    config.set_option("secrets.files", [str(path)])
    st.secrets._secrets = None
    yield path
    config.set_option("secrets.files", saved)
    # Streamlit copies a secrets file's top-level strings into os.environ (ADMIN_TOKEN among them): forget both,
    # or every later test (and every app server a test starts) would inherit the token.
    st.secrets._reset()
    os.environ.pop("ADMIN_TOKEN", None)


@pytest.mark.parametrize("content", ['ADMIN_TOKEN = "abc\nbroken = \n', "ADMIN_TOKEN = 12345\n"],
                         ids=["unparsable", "not-a-string"])
def test_a_secrets_file_that_cannot_be_read_keeps_the_admin_tools_locked(canvas, secrets_file, content, caplog):
    secrets_file.write_text(content)
    at = _open_panels(_app()).run()
    assert not at.exception
    assert any("Admin tools are locked" in e.value and "secrets" in e.value for e in at.sidebar.error)
    assert not [b for b in at.sidebar.button if b.key == "train_start"]  # no retrain form
    for key in ("version_rollback", "version_activate", "version_delete"):
        assert at.sidebar.button(key=key).disabled
    assert not [c for c in at.sidebar.caption if "Open local tool" in c.value]
    assert any("Admin tools locked" in record.getMessage() for record in caplog.records)


def test_a_readable_secrets_file_sets_the_admin_token(canvas, secrets_file):
    secrets_file.write_text('ADMIN_TOKEN = "from-the-file"\n')
    at = _app().run()
    assert not [b for b in at.sidebar.button if b.key == "train_start"]
    at.sidebar.text_input(key="admin_token").set_value("from-the-file").run()
    assert at.sidebar.button(key="train_start") is not None


def test_no_secrets_file_leaves_the_local_tool_open(canvas, secrets_file):
    at = _app().run()  # secrets_file names a file that was never written
    assert any("Open local tool" in c.value for c in at.sidebar.caption)


def _finished_job(status="done", model=None):
    """A training job that ended (as services.jobs records it), its folder holding `model` if given."""
    import shutil
    import time

    from model.artifacts import atomic_write_json
    from model.registry import data_dir

    run_dir = data_dir() / "runs" / "20260101-000000-abcdef"
    run_dir.mkdir(parents=True)
    if model is not None:
        for companion in model.parent.glob(f"{model.stem}.*"):
            shutil.copy2(companion, run_dir / companion.name.replace(model.stem, "digits", 1))
    atomic_write_json(data_dir() / "runs" / "current.json",
                      {"run_id": run_dir.name, "pid": 999999, "run_dir": str(run_dir), "started": time.time(),
                       "status": status, "message": "it broke" if status == "failed" else ""})
    return run_dir


def test_a_finished_model_that_cannot_be_read_is_an_error_on_the_page(canvas, stand_in_model):
    run_dir = _finished_job(model=stand_in_model)
    (run_dir / "digits.json").write_text("{not json")
    at = _app().run()
    assert not at.exception
    assert any("cannot be read" in e.value for e in at.sidebar.error)
    at.sidebar.button(key="train_dismiss").click().run()
    assert not at.exception and not [b for b in at.sidebar.button if b.key == "train_dismiss"]


@pytest.mark.parametrize("button", ["train_promote", "train_keep"])
def test_promote_or_keep_never_stores_another_model_under_the_same_name(canvas, stand_in_model, tmp_path, button):
    """A different model already holds the finished one's version name: an error, not a silent keep."""
    import json as json_module

    from model.artifacts import atomic_write_json, file_sha256, sidecar_path
    from model.registry import Registry

    _finished_job(model=stand_in_model)
    other = tmp_path / "other" / "digits.keras"
    other.parent.mkdir()
    other.write_bytes(stand_in_model.read_bytes() + b"another model")
    card = json_module.loads(sidecar_path(stand_in_model).read_text())
    atomic_write_json(sidecar_path(other), {**card, "model_sha256": file_sha256(other)})
    registry = Registry()
    registry.add(other)
    at = _app().run()
    at.sidebar.button(key=button).click().run()
    assert not at.exception
    assert any("could not be" in e.value and "different model" in e.value for e in at.sidebar.error)
    assert registry.active().version == "shipped"
    assert registry.get(card["version"]).card.model_sha256 == file_sha256(other)


def test_dismiss_is_behind_the_admin_gate(canvas, monkeypatch):
    from services.jobs import TrainingJobs

    monkeypatch.setenv("ADMIN_TOKEN", "s3cret-token")
    _finished_job(status="failed")
    at = _app().run()
    assert any("it broke" in e.value for e in at.sidebar.error)
    assert at.sidebar.button(key="train_dismiss").disabled  # (the code checks the gate on a click as well)
    assert TrainingJobs().state().resolved is None
    at.sidebar.text_input(key="admin_token").set_value("s3cret-token").run()
    at.sidebar.button(key="train_dismiss").click().run()
    assert TrainingJobs().state().resolved == "dismissed"


def test_a_blank_canvas_in_whole_number_mode_gives_the_hint_and_no_empty_guess(canvas):
    canvas.image = np.dstack([np.zeros((280, 280, 3), np.uint8), np.full((280, 280), 255, np.uint8)])
    at = _app().run()
    at.radio(key="read_mode").set_value("Whole number").run()
    assert not at.exception
    assert any("Draw a digit" in info.value for info in at.info)
    assert not [info for info in at.info if "Nothing to read" in info.value]
    assert not [c for c in at.caption if c.value.startswith("If ")]
    assert not [m for m in at.metric if m.label == "Number"]


def test_the_gil_switch_interval_is_set_once_per_process_not_per_rerun(canvas, monkeypatch):
    calls = []
    monkeypatch.setattr(sys, "setswitchinterval", lambda value: calls.append(value))
    at = _app().run()
    at.run()
    at.radio(key="read_mode").set_value("One digit").run()
    _app().run()  # another session
    assert calls == [0.0005]


def test_past_its_limit_a_session_is_told_plainly_and_admins_delete_its_batch(canvas, monkeypatch, mnist_sample):
    import services.corrections as corrections

    monkeypatch.setattr(corrections, "DEFAULT_LIMITS", corrections.Limits(per_session=2))
    x, y = mnist_sample
    canvas.image = _canvas_rgba(x[35])
    other = _app().run()  # another browser session sends one first
    other.button(key="feedback_canvas_right").click().run()
    at = _open_panels(_app()).run()
    for index in (36, 37):
        canvas.image = _canvas_rgba(x[index])
        at.run()
        at.button(key="feedback_canvas_right").click().run()
    assert len(_store()) == 3
    canvas.image = _canvas_rgba(x[38])
    at.run()
    at.button_group(key="feedback_canvas_digit").set_value((int(y[38]) + 1) % 10).run()
    assert not at.exception
    assert any("one session may send 2" in e.value for e in at.error)
    assert len(_store()) == 3  # nothing stored past the limit, nothing lost

    sessions = _store().sessions()
    assert len(sessions) == 2 and all(s.session for s in sessions)
    mine = at.session_state["session_id"]
    assert {s.session for s in sessions} == {mine, other.session_state["session_id"]}
    at.sidebar.selectbox(key="correction_session_choice").set_value(mine).run()
    at.sidebar.button(key="correction_session_delete").click().run()
    assert not at.exception
    assert [s.session for s in _store().sessions()] == [other.session_state["session_id"]]


def test_a_finished_run_says_it_is_saved_and_not_active_and_promote_and_roll_back_confirm(canvas, stand_in_model):
    """Issue 33, item 7: before the user decides, the run is "saved, not active"; Promote and Roll back say what
    they did where the user looks (above the Active model line, which changes), and as a toast; item 8: a worse
    model's shortfall is in points."""
    import json as json_module

    from model.artifacts import atomic_write_json, sidecar_path

    card = json_module.loads(sidecar_path(stand_in_model).read_text())
    atomic_write_json(sidecar_path(stand_in_model), {**card, "metrics": {"test_mnist": {"accuracy": 0.95}}})
    _finished_job(model=stand_in_model)
    version = card["version"]
    at = _open_panels(_app()).run()
    finished = [i.value for i in at.sidebar.info if "Training finished" in i.value]
    assert finished and f"Saved as version {version}, not active" in finished[0]
    assert not [s for s in at.sidebar.success if "Kept as version" in s.value]
    assert [w.value for w in at.sidebar.warning if "points less accurate" in w.value]  # an untrained stand-in
    assert not [w.value for w in at.sidebar.warning if "% less accurate" in w.value]
    at.sidebar.checkbox(key="promote_anyway").check().run()
    at.sidebar.button(key="train_promote").click().run()
    assert not at.exception
    assert [s.value for s in at.sidebar.success] == [f"Promoted {version}: it reads every drawing now."]
    assert [t.value for t in at.toast] == [f"Promoted {version}: it reads every drawing now."]
    assert any(f"**{version}**" in md.value for md in at.sidebar.markdown)  # the Active model line
    at.sidebar.button(key="version_rollback").click().run()
    assert [s.value for s in at.sidebar.success] == ["Rolled back to shipped: it reads every drawing now."]
    assert any("**shipped**" in md.value for md in at.sidebar.markdown)
    at.run()  # told once
    assert not at.sidebar.success


def test_a_running_training_shows_at_the_top_with_time_left_and_start_is_off(canvas, monkeypatch):
    """Issue 33, item 6: the progress (epoch, time left, Cancel) is the first thing in the sidebar under the
    token, and Start training is disabled while a run goes, saying why."""
    import time

    from model.artifacts import atomic_write_json
    from model.registry import data_dir

    run_dir = data_dir() / "runs" / "20260101-000000-abcdef"
    run_dir.mkdir(parents=True)
    atomic_write_json(run_dir / "progress.json", {"status": "training", "epoch": 2, "epochs": 4, "batch": 50,
                                                   "steps": 100})
    atomic_write_json(data_dir() / "runs" / "current.json",  # this test's own process: alive, so running
                      {"run_id": run_dir.name, "pid": os.getpid(), "run_dir": str(run_dir),
                       "started": time.time() - 600, "status": "training", "message": ""})
    at = _app().run()
    assert not at.exception
    (progress,) = at.sidebar.get("progress")
    assert progress.proto.text == "Training: epoch 2 of 4, about 17 min left"  # 1.5 of 4 epochs in 10 minutes
    order = [getattr(e, "key", None) or getattr(e, "value", None) for e in at.sidebar]
    assert order.index("train_cancel") < order.index("Active model") < order.index("train_start")
    assert at.sidebar.button(key="train_start").disabled
    assert any("A training is running" in c.value for c in at.sidebar.caption)


def test_the_upload_limits_are_told_up_front_and_a_refused_file_replaces_the_answer(canvas, mnist_sample):
    """Issue 33, item 11: both limits are on the uploader; a file over them replaces the previous answer with
    the reason (up to the server's own limit, which is above ours so that our reason is the one shown)."""
    import tomllib

    from model.images import MAX_FILE_BYTES

    x, y = mnist_sample
    buffer = io.BytesIO()
    Image.fromarray(255 - x[3]).save(buffer, format="PNG")
    at = _app().run()
    assert any("25 MB and 40 megapixels" in c.value for c in at.caption)
    at.file_uploader(key="upload").set_value(("seven.png", buffer.getvalue(), "image/png")).run()
    assert _predictions(at) == [str(y[3])]
    at.file_uploader(key="upload").set_value(("huge.png", bytes(26 * 2**20), "image/png")).run()
    assert not at.exception and _predictions(at) == []
    assert any("huge.png is 26.0 MB; the limit is 25 MB" in e.value for e in at.error)
    server = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    assert server["maxUploadSize"] * 2**20 > MAX_FILE_BYTES


def test_the_corrections_chart_has_a_band_per_label_and_a_legend_that_fits(canvas, mnist_sample):
    """Issue 33, item 9: upright bars under rotated labels left the sidebar's chart no room for its bars."""
    from model.constants import NOT_A_DIGIT

    x, y = mnist_sample
    _store().add(NOT_A_DIGIT, x[0], x[0], int(y[0]), 0.9, "shipped", "canvas", "s")
    at = _open_panels(_app()).run()
    (chart,) = [json.loads(c.proto.spec) for c in at.sidebar.get("vega_lite_chart")]
    assert chart["encoding"]["y"]["field"] == "label" and chart["encoding"]["x"]["field"] == "samples"
    assert chart["height"] == {"step": 14} and chart["encoding"]["color"]["legend"]["direction"] == "vertical"


def test_an_upload_has_its_answer_and_right_wrong_beside_it_before_the_details(canvas, mnist_sample):
    """Issue 33, item 12: the answer and Right / Wrong come first, beside the uploader, not under the details."""
    x, y = mnist_sample
    buffer = io.BytesIO()
    Image.fromarray(255 - x[3]).save(buffer, format="PNG")
    at = _app().run()
    at.file_uploader(key="upload").set_value(("seven.png", buffer.getvalue(), "image/png")).run()
    assert _predictions(at) == [str(y[3])]
    upload_tab = at.tabs[1]
    uploader_column, answer_column = upload_tab.columns[:2]
    assert [m.value for m in answer_column.metric] == [str(y[3])]
    order = [getattr(e, "key", None) or getattr(e, "label", None) or getattr(e, "type", None) for e in answer_column]
    right, details = order.index("feedback_upload_right"), order.index("why_upload")
    assert order.index("Prediction") < right < details
