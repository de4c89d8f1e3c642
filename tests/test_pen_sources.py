"""Sets of real pen strokes (UNIPEN, Chars74K, Quick, Draw!): read from small files in the shared layout that the
tests write, checked, held out by writer or category, look-alikes never taught as "not a digit", and drawn by
the one renderer (training.render) the way the app's canvas and a photo of paper show them."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from model.constants import CANVAS_SIZE, NOT_A_DIGIT, PEN_WIDTH
from model.preprocess import preprocess
from training import render
from training.data import DataUnavailableError, load_dataset
from training.glyphs import DIGIT_STYLES
from training.sources import SOURCES, chars74k, pen, quickdraw, unipen
from training.sources.base import ChecksumError, Dataset, Split, held_out_groups

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WRITERS = [f"{contributor}/w{index}" for contributor in ("aga", "apa") for index in range(5)]
SHAPES = {  # letters as strokes in a unit box: a non-look-alike (E, H, +) and look-alikes (O, l)
    "E": [[(1, 0), (0, 0), (0, 1), (1, 1)], [(0, 0.5), (0.8, 0.5)]],
    "H": [[(0, 0), (0, 1)], [(1, 0), (1, 1)], [(0, 0.5), (1, 0.5)]],
    "+": [[(0.5, 0), (0.5, 1)], [(0, 0.5), (1, 0.5)]],
    "O": [[(0.5 + 0.5 * np.cos(a), 0.5 + 0.5 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 20)]],
    "l": [[(0.5, 0), (0.5, 1)]],
}


def stroke_arrays(drawings: list[list], scale: float = 300.0) -> dict[str, np.ndarray]:
    """Drawings (each a list of strokes of (x, y) in a unit box) in the shared layout, in tablet units."""
    points, point_offsets, sample_offsets = [], [0], [0]
    for strokes in drawings:
        for stroke in strokes:
            points += [(x * scale + 50, y * scale + 80) for x, y in stroke]
            point_offsets.append(len(points))
        sample_offsets.append(len(point_offsets) - 1)
    return {"stroke_points": np.array(points, np.float32), "stroke_point_offsets": np.array(point_offsets, np.int64),
            "sample_stroke_offsets": np.array(sample_offsets, np.int64)}


def _patched(monkeypatch, module, attribute, path: Path):
    """The source's file checked against the SHA-256 of the file the test wrote (the published one is not it)."""
    from model.artifacts import file_sha256

    monkeypatch.setattr(module, attribute, dataclasses.replace(getattr(module, attribute), sha256=file_sha256(path)))


@pytest.fixture
def unipen_folder(tmp_path, monkeypatch):
    """10 writers of two contributors: each writes the ten digits, and E H + O l (O and l are look-alikes,
    one + of each writer is a bar)."""
    folder = tmp_path / "unipen"
    folder.mkdir()
    (folder / unipen.WRITERS_FILE).write_text(json.dumps(WRITERS))
    from model.artifacts import file_sha256

    monkeypatch.setattr(unipen, "WRITERS_SHA256", file_sha256(folder / unipen.WRITERS_FILE))
    digits, labels, writers = [], [], []
    for writer in range(len(WRITERS)):
        for digit in range(10):
            digits.append(DIGIT_STYLES[digit][writer % len(DIGIT_STYLES[digit])])
            labels.append(digit)
            writers.append(writer)
    np.savez(folder / unipen.DIGITS_FILE.name, **stroke_arrays(digits), labels=np.array(labels, np.int16),
             classes=np.array(list("0123456789")), writer=np.array(writers, np.int32))
    _patched(monkeypatch, unipen, "DIGITS_FILE", folder / unipen.DIGITS_FILE.name)
    names = list(SHAPES)
    others, other_labels, other_writers = [], [], []
    for writer in range(len(WRITERS)):
        for label, name in enumerate(names):
            others.append(SHAPES[name])
            other_labels.append(label)
            other_writers.append(writer)
    labels = np.array(other_labels, np.int16)
    lookalike = np.isin(np.array(names)[labels], ["O", "l"])
    line_like = (np.array(names)[labels] == "+") & (np.array(other_writers) % 2 == 0)
    files = []
    for pen_file in unipen.OTHER_FILES:
        np.savez(folder / pen_file.name, **stroke_arrays(others), labels=labels, classes=np.array(names),
                 writer=np.array(other_writers, np.int32), lookalike=lookalike, line_like=line_like)
        from model.artifacts import file_sha256
        files.append(dataclasses.replace(pen_file, sha256=file_sha256(folder / pen_file.name)))
    monkeypatch.setattr(unipen, "OTHER_FILES", tuple(files))
    return tmp_path


def test_unipen_digits_hold_out_whole_writers_of_every_contributor_and_render_each_drawing_afresh(unipen_folder):
    held = set(unipen.held_out_writers(WRITERS).tolist())
    assert len(held) == 2 and {WRITERS[w].split("/")[0] for w in held} == {"aga", "apa"}  # 1 of each 5
    _, train_indices, _ = unipen.digits_part(unipen_folder, held_out=False)
    drawings, test_indices, test_labels = unipen.digits_part(unipen_folder, held_out=True)
    assert len(test_indices) == 20 and not set(train_indices.tolist()) & set(test_indices.tolist())
    assert np.bincount(test_labels).tolist() == [2] * 10
    train, test = unipen.digits(unipen_folder)
    # every render the app would find ink in (faint ink on dark paper it may not: that render is left out)
    assert 0.95 * pen.RENDERS_PER_DIGIT * 80 <= len(train) <= pen.RENDERS_PER_DIGIT * 80 and len(test) == 20
    assert train.x.dtype == np.uint8 and train.x.shape[1:] == (28, 28) and set(train.y.tolist()) == set(range(10))
    first = train.x[: pen.RENDERS_PER_DIGIT]
    assert all(not np.array_equal(first[0], other) for other in first[1:])  # renders differ: pen, jitter, place
    again_train, again_test = unipen.digits(unipen_folder)
    assert np.array_equal(again_test.x, test.x) and np.array_equal(again_train.x, train.x)  # seeded


def test_unipen_others_are_not_digits_without_look_alikes_or_bars_and_hold_out_the_same_writers(unipen_folder):
    parts = unipen.others_part(unipen_folder, held_out=True)
    for (drawings, indices), pen_file in zip(parts, unipen.OTHER_FILES):
        with np.load(unipen_folder / "unipen" / pen_file.name) as arrays:
            assert not arrays["lookalike"][indices].any() and not arrays["line_like"][indices].any()
            assert set(arrays["writer"][indices].tolist()) == set(unipen.held_out_writers(WRITERS).tolist())
    train, test = unipen.others(unipen_folder)
    # per file: E and H of 8 training writers, and the + of those whose + is no bar; 3 files
    bars = sum(w % 2 == 0 for w in range(len(WRITERS)) if w not in unipen.held_out_writers(WRITERS))
    assert 0.95 * 3 * (8 * 3 - bars) <= len(train) <= 3 * (8 * 3 - bars) and set(train.y.tolist()) == {NOT_A_DIGIT}
    assert set(test.y.tolist()) == {NOT_A_DIGIT}


def test_a_source_of_non_digits_is_cached_and_loaded_with_its_label(unipen_folder, tmp_path):
    dataset = load_dataset("unipen-others", unipen_folder, tmp_path / "cache")
    cached = load_dataset("unipen-others", None, tmp_path / "cache")
    assert cached.source.startswith("cache of") and np.array_equal(cached.train.x, dataset.train.x)
    assert set(cached.train.y.tolist()) == {NOT_A_DIGIT}
    assert list((tmp_path / "cache").glob(f"unipen-others.{pen.RENDER_TAG}.npz"))  # the renders named in the cache


def test_a_missing_or_damaged_file_is_a_clear_error_naming_it_and_where_to_get_it(unipen_folder, tmp_path,
                                                                                 monkeypatch):
    with pytest.raises(DataUnavailableError, match="chars74k-pen.npz.*Chars74K") as error:
        load_dataset("chars74k", tmp_path / "nothing", tmp_path / "cache")
    assert "teodecampos" in str(error.value)  # where to get it
    digits_file = unipen_folder / "unipen" / unipen.DIGITS_FILE.name
    digits_file.write_bytes(digits_file.read_bytes()[:-10])
    with pytest.raises(ChecksumError, match="unipen-digits.npz"):
        unipen.digits(unipen_folder)
    with pytest.raises(DataUnavailableError, match="unipen-digits.npz"):
        load_dataset("unipen", unipen_folder, tmp_path / "cache")


def test_chars74k_digits_and_letters_by_writer_with_look_alike_letters_left_out(tmp_path, monkeypatch):
    characters = list("0123456789") + list("EHOl")
    drawings, labels, writers = [], [], []
    for writer in range(10):
        for label, character in enumerate(characters):
            drawings.append(DIGIT_STYLES[int(character)][0] if character.isdigit() else SHAPES[character])
            labels.append(label)
            writers.append(writer)
    folder = tmp_path / "chars74k-pen"
    folder.mkdir()
    path = folder / chars74k.FILE.name
    np.savez(path, **stroke_arrays(drawings), labels=np.array(labels, np.int16), classes=np.array(characters),
             writer=np.array(writers, np.int16))
    _patched(monkeypatch, chars74k, "FILE", path)
    _, digits_test, digit_labels = chars74k.digits_part(tmp_path, held_out=True)
    assert len(digits_test) == 20 and np.bincount(digit_labels).tolist() == [2] * 10  # 2 of 10 writers
    letters_drawings, letters_train = chars74k.letters_part(tmp_path, held_out=False)
    assert len(letters_train) == 16  # E and H of 8 writers: O and l are written like 0 and 1
    train, test = chars74k.digits(tmp_path)
    assert sorted(set(train.y.tolist())) == list(range(10)) and len(test) == 20
    train, test = chars74k.letters(tmp_path)
    assert set(train.y.tolist()) == {NOT_A_DIGIT} and len(test) == 4


def test_quickdraw_holds_out_whole_categories_in_both_files_and_leaves_look_alikes_out(tmp_path, monkeypatch):
    names = [f"thing{i}" for i in range(20)] + ["circle", "square", "star"]
    drawings, labels, lookalike = [], [], []
    for label, name in enumerate(names[:20] + ["circle"]):
        for _ in range(3):
            drawings.append(SHAPES["E" if label % 2 else "H"])
            labels.append(label)
            lookalike.append(name == "circle")
    folder = tmp_path / "quickdraw"
    folder.mkdir()
    strokes_path = folder / quickdraw.STROKES.name
    np.savez(strokes_path, **stroke_arrays(drawings), labels=np.array(labels, np.int16), classes=np.array(names),
             lookalike=np.array(lookalike), line_like=np.zeros(len(labels), bool))
    _patched(monkeypatch, quickdraw, "STROKES", strokes_path)
    bitmap_classes = np.array(["circle", "square", "star", "thing0"])
    rng = np.random.default_rng(0)
    images = np.zeros((40, 28, 28), np.uint8)
    for image in images:
        top, left = rng.integers(2, 10, 2)
        image[top : top + 16, left : left + 3] = 255
        image[top : top + 3, left : left + 14] = 255
    bitmap_path = folder / quickdraw.BITMAPS
    np.savez(bitmap_path, images=images, labels=np.repeat(np.arange(4), 10).astype(np.int16), classes=bitmap_classes)
    from model.artifacts import file_sha256

    monkeypatch.setattr(quickdraw, "BITMAPS_SHA256", file_sha256(bitmap_path))
    monkeypatch.setattr(quickdraw, "BITMAPS_PER_CATEGORY", 4)
    held_names = quickdraw.held_out_categories(np.array(names), bitmap_classes)
    assert len(held_names) == round(0.2 * 19) + round(0.2 * 4)  # a fifth of each file's categories
    strokes, train_indices = quickdraw.strokes_part(tmp_path, held_out=False)
    _, test_indices = quickdraw.strokes_part(tmp_path, held_out=True)
    train_names = {names[labels[i]] for i in train_indices}
    test_names = {names[labels[i]] for i in test_indices}
    assert not train_names & test_names and "circle" not in train_names | test_names
    assert test_names <= held_names and train_names.isdisjoint(held_names)
    kept_bitmaps = len(quickdraw.bitmaps_part(tmp_path, False)) + len(quickdraw.bitmaps_part(tmp_path, True))
    assert kept_bitmaps == 4 * 2  # star and thing0, 4 each: circle and square are look-alikes
    train, test = quickdraw.doodles(tmp_path)
    assert set(train.y.tolist()) | set(test.y.tolist()) == {NOT_A_DIGIT}
    # few drawings of many kinds: each training doodle is drawn RENDERS_PER_DOODLE times, each held-out one once
    framed_bitmaps = len(quickdraw.bitmaps_part(tmp_path, False))
    assert pen.RENDERS_PER_DOODLE > pen.RENDERS_PER_OTHER
    renders = len(train) - framed_bitmaps  # a render the app would find no ink in is left out, as for UNIPEN
    assert 0.95 * pen.RENDERS_PER_DOODLE * len(train_indices) <= renders <= pen.RENDERS_PER_DOODLE * len(train_indices)
    assert len(test) - len(quickdraw.bitmaps_part(tmp_path, True)) <= len(test_indices)


def test_held_out_groups_are_whole_seeded_and_stratified():
    groups = np.repeat(np.arange(30), 4)
    strata = (groups >= 20).astype(int)  # 20 groups of one stratum, 10 of the other
    held = held_out_groups(groups, strata, 0.2, seed=3)
    held_groups = set(groups[held].tolist())
    assert len(held_groups) == 6 and len({g for g in held_groups if g >= 20}) == 2
    assert all(held[groups == g].all() for g in held_groups)  # whole groups
    assert np.array_equal(held, held_out_groups(groups, strata, 0.2, seed=3))
    assert not np.array_equal(held, held_out_groups(groups, strata, 0.2, seed=4))


def test_the_canvas_render_draws_with_the_apps_pen_inside_the_canvas_and_frames_like_the_app():
    strokes = [np.array(stroke, float) * 100 for stroke in DIGIT_STYLES[7][0]]
    rng = np.random.default_rng(0)
    picture = render.on_canvas(strokes, rng, pen=PEN_WIDTH, style="white_on_black")
    assert picture.shape == (CANVAS_SIZE, CANVAS_SIZE, 4) and picture.dtype == np.uint8
    ink = picture[..., 0] > 127
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    assert rows[0] > 0 and cols[0] > 0 and rows[-1] < CANVAS_SIZE - 1 and cols[-1] < CANVAS_SIZE - 1  # all of it
    assert PEN_WIDTH * 0.35 * CANVAS_SIZE / CANVAS_SIZE <= rows[-1] - rows[0]  # a drawing, not a dot
    # the stroke is as wide as the pen: a horizontal bar's ink is PEN_WIDTH rows thick
    bar = render.on_canvas([np.array([[0.0, 0.0], [100.0, 0.0]])], rng, pen=PEN_WIDTH, style="white_on_black")
    thickness = (bar[..., 0] > 127).sum(axis=0).max()
    assert abs(int(thickness) - PEN_WIDTH) <= 2
    framed = render.model_input(strokes, np.random.default_rng(1), "canvas")
    assert framed.shape == (28, 28)
    again = render.model_input(strokes, np.random.default_rng(1), "canvas")
    assert np.array_equal(framed, again)  # seeded
    assert render.canvas_pen(np.random.default_rng(2)) in range(4, 41)


def test_the_paper_render_is_a_photo_of_dark_ink_that_the_app_frames_and_a_tap_is_a_dot():
    strokes = [np.array(stroke, float) * 100 for stroke in DIGIT_STYLES[4][0]]
    photo = render.rendered(strokes, np.random.default_rng(0), "paper")
    assert photo.ndim == 3 and photo.shape[2] == 3 and min(photo.shape[:2]) >= 240
    assert np.median(photo) > 150  # light paper, dark ink
    assert preprocess(photo).image is not None
    dot = render.draw([np.array([[10.0, 10.0]])], (20, 20), pen=6)
    assert dot[10, 10] == 255 and dot[0, 0] == 0
    with pytest.raises(ValueError, match="canvas"):
        render.rendered(strokes, np.random.default_rng(0), "wall")


def test_numbers_are_written_side_by_side_and_read_digit_by_digit(recognizer):
    rng = np.random.default_rng(0)
    drawings = [[np.array(stroke, float) * 80 for stroke in DIGIT_STYLES[d][0]] for d in (3, 0, 7)]
    picture = render.number_on_canvas(drawings, rng)
    assert picture.shape == (CANVAS_SIZE, CANVAS_SIZE, 4)
    number = recognizer.read_number(picture)
    assert len(number.digits) == 3


def _three_sources(mnist: int, unipen: int, quickdraw: int) -> list[Dataset]:
    """A set of distinct pictures (labels 1), one of pen renders (2) and one of non-digits, each 10 held out."""
    def split(count, label):
        return Split(np.full((count, 28, 28), label, np.uint8), np.full(count, label, np.uint8))

    return [Dataset("mnist", "t", split(mnist, 1), split(10, 1)), Dataset("unipen", "t", split(unipen, 2), split(10, 2)),
            Dataset("quickdraw", "t", split(quickdraw, NOT_A_DIGIT), split(10, NOT_A_DIGIT))]


def test_rendered_and_non_digit_sets_never_reach_the_validation_split_and_only_digits_are_tested():
    from training.config import TrainConfig
    from training.splits import make_datasets

    train, validation, tests = make_datasets(_three_sources(100, 40, 30), TrainConfig(validation_size=20))
    assert set(validation.y.tolist()) == {1}  # distinct MNIST pictures only
    assert len(train) == 80 + 40 + 30 and set(tests) == {"mnist", "unipen"}


def test_mnist_repeat_shows_each_mnist_training_image_more_often_and_holds_out_the_same_validation_images():
    from training.config import TrainConfig
    from training.splits import make_datasets

    once, validation, _ = make_datasets(_three_sources(100, 40, 30), TrainConfig(validation_size=20))
    twice, same_validation, _ = make_datasets(_three_sources(100, 40, 30), TrainConfig(validation_size=20, mnist_repeat=2))
    assert np.bincount(twice.y, minlength=NOT_A_DIGIT + 1)[[1, 2, NOT_A_DIGIT]].tolist() == [160, 40, 30]
    assert np.bincount(once.y, minlength=NOT_A_DIGIT + 1)[[1, 2, NOT_A_DIGIT]].tolist() == [80, 40, 30]
    assert np.array_equal(validation.x, same_validation.x)
    with pytest.raises(ValueError, match="mnist_repeat"):
        TrainConfig(mnist_repeat=0)


def test_a_limited_run_is_a_seeded_sample_of_every_source_not_the_first_images():
    from training.config import TrainConfig
    from training.splits import make_datasets

    datasets = _three_sources(600, 200, 200)
    config = TrainConfig(validation_size=100, limit=200)
    train, validation, _ = make_datasets(datasets, config)
    shares = np.bincount(train.y, minlength=NOT_A_DIGIT + 1)
    assert len(train) == 200 and len(validation) == 100
    assert 60 <= shares[1] <= 140 and 20 <= shares[2] <= 80 and 20 <= shares[NOT_A_DIGIT] <= 80  # ~ 100 / 40 / 40
    again, _, _ = make_datasets(datasets, config)
    assert np.array_equal(again.y, train.y)  # seeded


def test_every_source_is_declared_once_with_its_kind_and_how_to_get_it():
    from training.config import TrainConfig

    assert {"unipen", "chars74k", "unipen-others", "chars74k-letters", "quickdraw"} <= set(SOURCES)
    for source in SOURCES.values():
        assert source.how_to_provide and source.title
    TrainConfig(data=("mnist", "unipen", "quickdraw"))  # every source is a --data choice
    with pytest.raises(ValueError, match="data must name"):
        TrainConfig(data=("mnist", "usps"))  # measuring only: never a training source


@pytest.mark.slow
def test_the_real_files_in_shared_data_are_read_checked_and_split_by_writer_and_category():
    if not (SHARED / "unipen").exists():
        pytest.skip(f"{SHARED} is not here")
    names = unipen.writers(SHARED)
    held = unipen.held_out_writers(names)
    assert len(names) >= 227 and 0.15 < len(held) / len(names) < 0.25
    _, train_indices, _ = unipen.digits_part(SHARED, held_out=False)
    _, test_indices, test_labels = unipen.digits_part(SHARED, held_out=True)
    assert len(train_indices) + len(test_indices) == 10930 and np.bincount(test_labels).min() > 150
    for drawings, indices in unipen.others_part(SHARED, held_out=False):
        assert len(indices) > 1000
    _, letters = chars74k.letters_part(SHARED, held_out=True)
    _, digits_held, _ = chars74k.digits_part(SHARED, held_out=True)
    assert len(digits_held) == 110 and len(letters) > 200
    _, doodles_held = quickdraw.strokes_part(SHARED, held_out=True)
    _, doodles_train = quickdraw.strokes_part(SHARED, held_out=False)
    assert len(doodles_held) > 500 and len(doodles_train) > 2500
