"""ARDIS and optdigits-orig: read from their official formats (small files the tests write), checked, framed
by the app's own pipeline, and a held-out part of each, stratified by digit."""

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from model.preprocess import preprocess
from training.sources import ardis, optdigits, pictures
from training.sources.base import FormatError
from training.data import ChecksumError, DataUnavailableError, load_dataset

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PUBLISHED = {"ardis": dict(ardis.SHA256), "optdigits": dict(optdigits.SHA256)}


def _digit_image(label: int, size: int, rng) -> np.ndarray:
    """A bar whose position encodes the digit, with a little noise: something with ink to frame."""
    image = np.zeros((size, size), np.float32)
    column = 2 + label * (size - 6) // 10
    image[size // 6 : size - size // 6, column : column + max(2, size // 10)] = 1.0
    image[size // 6 : size // 6 + 2, column : column + size // 3] = 1.0
    return np.clip(image + rng.uniform(0, 0.05, image.shape), 0, 1)


def write_ardis(folder: Path, per_digit: int = 5, compress: bool = False, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for label in range(10):
        for _ in range(per_digit):
            rows.append(" ".join(f"{v:.10f}" for v in (_digit_image(label, 28, rng) * 255).ravel()))
            labels.append(" ".join(f"{int(i == label):>10d}" for i in range(10)))
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in ((ardis.IMAGES, rows), (ardis.LABELS, labels)):
        data = ("\n".join(lines) + "\n").encode()
        (folder / (name + ".gz" if compress else name)).write_bytes(gzip.compress(data) if compress else data)
    return folder


def optdigits_text(per_digit: int, uci_header: bool, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    blocks = []
    for label in range(10):
        for _ in range(per_digit):
            bitmap = _digit_image(label, 32, rng) > 0.5
            blocks.append("\n".join("".join("1" if b else "0" for b in row) for row in bitmap) + f"\n {label}")
    header = ("Optical Recognition of Handwritten Digits\n32x32 bitmaps, 30 writers\n\n" if uci_header
              else f"{len(blocks)}\n")
    return header + "\n".join(blocks) + "\n"


def write_optdigits(folder: Path, per_digit: int = 4, uci_header: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(optdigits.FILES):
        (folder / name).write_text(optdigits_text(per_digit, uci_header, seed=index))
    return folder


@pytest.fixture(autouse=True)
def _no_known_checksums(monkeypatch):
    """The files the tests write are not the published ones: checksums are tested on their own below."""
    monkeypatch.setattr(ardis, "SHA256", {})
    monkeypatch.setattr(optdigits, "SHA256", {})


@pytest.mark.parametrize("compress", [False, True])
def test_ardis_is_read_framed_by_the_apps_pipeline_and_held_out_by_digit(tmp_path, compress):
    write_ardis(tmp_path / "ardis", per_digit=5, compress=compress)
    x, y = ardis.read_ardis(tmp_path)  # the folder, or its ardis/ subfolder
    assert x.shape == (50, 28, 28) and x.dtype == np.uint8 and np.bincount(y).tolist() == [5] * 10
    train, held = ardis.ardis(tmp_path)
    assert len(train) + len(held) == 50 and np.bincount(held.y, minlength=10).tolist() == [1] * 10
    # What training sees is what the app makes of the same picture.
    assert any(np.array_equal(held.x[0], preprocess(image).image) for image in x)
    again = ardis.ardis(tmp_path)[1]
    assert np.array_equal(again.x, held.x)  # seeded: the same digits are held out every time


def test_optdigits_is_read_in_both_layouts_and_a_bitmap_that_fills_its_box_is_framed_as_the_app_would(tmp_path):
    for uci_header in (False, True):
        folder = write_optdigits(tmp_path / ("uci" if uci_header else "shared"), uci_header=uci_header)
        bitmaps, labels = optdigits.read_optdigits(folder)
        assert bitmaps.shape == (80, 32, 32) and bitmaps.dtype == bool and np.bincount(labels).tolist() == [8] * 10
    train, held = optdigits.optdigits(tmp_path / "shared")
    assert np.bincount(held.y, minlength=10).tolist() == [2] * 10 and len(train) == 60
    picture = bitmaps[0].astype(np.uint8) * 255
    framed = preprocess(picture).image
    assert framed.shape == (28, 28) and framed.max() == 255
    rows, cols = np.nonzero(framed)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 <= 20  # MNIST's 20x20 box, like any upload


def test_held_out_parts_are_stratified_and_seeded():
    labels = np.repeat(np.arange(10), [30, 10, 20, 5, 50, 40, 10, 10, 15, 25])
    held = pictures.held_out_split(labels, 0.2, seed=1)
    for digit in range(10):
        assert held[labels == digit].sum() == round(0.2 * (labels == digit).sum())
    assert np.array_equal(held, pictures.held_out_split(labels, 0.2, seed=1))
    assert not np.array_equal(held, pictures.held_out_split(labels, 0.2, seed=2))


def test_missing_or_malformed_files_are_clear_errors_that_name_the_file(tmp_path):
    with pytest.raises(DataUnavailableError, match="ARDIS_train_2828.csv"):
        load_dataset("ardis", tmp_path, tmp_path / "cache")
    with pytest.raises(DataUnavailableError, match="no --data-dir given"):
        load_dataset("optdigits", None, tmp_path / "cache")
    write_ardis(tmp_path)
    (tmp_path / ardis.LABELS).write_text("1 0 0\n")
    with pytest.raises(FormatError, match="one-hot"):
        ardis.read_ardis(tmp_path)
    folder = write_optdigits(tmp_path / "opt")
    (folder / "optdigits-orig.tes").write_text("3\n0101\n 7\n")
    with pytest.raises(FormatError, match="bitmap|line"):
        optdigits.read_optdigits(folder)
    (folder / "optdigits-orig.tes").write_bytes(b"\x1f\x8b not gzip")
    with pytest.raises(FormatError):
        optdigits.read_optdigits(folder)


def test_a_file_with_a_known_checksum_must_match_it(tmp_path, monkeypatch):
    folder = write_optdigits(tmp_path)
    text = (folder / "optdigits-orig.tra").read_bytes()
    monkeypatch.setattr(optdigits, "SHA256", {"optdigits-orig.tra": hashlib.sha256(text).hexdigest(),
                                              "optdigits-orig.tes": "0" * 64})
    with pytest.raises(ChecksumError, match="optdigits-orig.tes"):
        optdigits.read_optdigits(folder)
    monkeypatch.setattr(optdigits, "SHA256", {"optdigits-orig.tra": hashlib.sha256(text).hexdigest()})
    assert len(optdigits.read_optdigits(folder)[0]) == 80


def test_the_sources_are_datasets_of_the_training_command_and_the_app_form(tmp_path):
    from training.config import FORM_OPTIONS, TrainConfig, build_parser, config_from_args

    config = config_from_args(build_parser().parse_args(["--data", "mnist,ardis,optdigits"]))
    assert config.data == ("mnist", "ardis", "optdigits")
    (data,) = [field for field in FORM_OPTIONS if field.name == "data"]
    assert {"ardis", "optdigits"} <= set(data.metadata["choices"])
    with pytest.raises(ValueError, match="other_writers_repeat"):
        TrainConfig(other_writers_repeat=0)
    write_ardis(tmp_path / "raw", per_digit=5)
    dataset = load_dataset("ardis", tmp_path / "raw", tmp_path / "cache")
    assert len(dataset.train) == 40 and len(dataset.test) == 10
    assert load_dataset("ardis", None, tmp_path / "cache").source.startswith("cache of")  # cached once


@pytest.mark.slow
def test_the_real_files_in_shared_data_are_read_and_checked(monkeypatch):
    if not (SHARED / "ardis").exists():
        pytest.skip(f"{SHARED} is not here")
    monkeypatch.setattr(ardis, "SHA256", PUBLISHED["ardis"])  # the published checksums, this time
    monkeypatch.setattr(optdigits, "SHA256", PUBLISHED["optdigits"])
    x, y = ardis.read_ardis(SHARED)
    assert x.shape == (6600, 28, 28) and np.bincount(y).tolist() == [660] * 10
    bitmaps, labels = optdigits.read_optdigits(SHARED)
    assert bitmaps.shape == (1934 + 946, 32, 32) and len(labels) == 2880
    train, held = optdigits.optdigits(SHARED)
    assert len(train) + len(held) >= 2870
