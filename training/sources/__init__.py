"""Every data source, declared once: its name (what --data takes), what it gives and how to get it.

One small module per set (as torchvision's datasets do), each returning (train, test) Splits; this registry
is what training.data (cache, loading), the command line and the app's form read, so adding a set adds a
module and a line here. Sets of real pen strokes (training.sources.pen) give renders of each drawing and hold
out whole writers or categories; sets of pictures (training.sources.pictures) hold out a part of every digit.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from training.sources import ardis, chars74k, emnist, mnist, optdigits, quickdraw, unipen
from training.sources.base import DIGITS, NOT_DIGITS, Split

Loader = Callable[[Path | None], tuple[Split, Split]]
Tries = list[tuple[str, Callable[[], tuple[Split, Split]]]]  # (where from, how), in the order they are tried


def from_files(load: Loader) -> Callable[[Path | None], Tries]:
    """A set read only from its files in the folder the user names: nothing is downloaded."""
    return lambda data_dir: [(f"--data-dir ({data_dir})", lambda: load(data_dir))]


@dataclasses.dataclass(frozen=True)
class Source:
    name: str
    kind: str  # DIGITS or NOT_DIGITS (a gate's negatives, labelled NOT_A_DIGIT)
    title: str  # what it is, for --help
    tries: Callable[[Path | None], Tries]
    how_to_provide: str
    rendered: bool = False  # its training images are several renders of each drawing: never in the validation split
    other_writers: bool = False  # a few thousand digits beside MNIST's 55,000: repeated (--other-writers-repeat)


def from_folder(name: str, kind: str, title: str, module, load: Loader, **flags) -> Source:
    """A set read only from its files in the folder the user names, pointing at its module's WHERE."""
    return Source(name, kind, title, from_files(load), f"Get {module.WHERE}.", **flags)


MNIST = "mnist"  # the set every reader learns first (--mnist-repeat)
SOURCES = {source.name: source for source in (
    Source(MNIST, DIGITS, "MNIST", mnist.mnist_sources, mnist.HOW_TO_PROVIDE),
    Source("emnist", DIGITS, "EMNIST Digits", emnist.emnist_sources, emnist.HOW_TO_PROVIDE),
    from_folder("ardis", DIGITS, "ARDIS (Swedish writers)", ardis, ardis.ardis, other_writers=True),
    from_folder("optdigits", DIGITS, "optdigits-orig (Turkish writers)", optdigits, optdigits.optdigits,
                other_writers=True),
    from_folder("unipen", DIGITS, "UNIPEN digits (pen strokes of 227 writers)", unipen, unipen.digits, rendered=True),
    from_folder("chars74k", DIGITS, "Chars74K digits (pen strokes of 55 writers)", chars74k, chars74k.digits,
                rendered=True),
    from_folder("unipen-others", NOT_DIGITS, "UNIPEN letters and symbols", unipen, unipen.others, rendered=True),
    from_folder("chars74k-letters", NOT_DIGITS, "Chars74K letters", chars74k, chars74k.letters, rendered=True),
    from_folder("quickdraw", NOT_DIGITS, "Quick, Draw! doodles", quickdraw, quickdraw.doodles, rendered=True),
)}
OTHER_WRITERS = tuple(name for name, source in SOURCES.items() if source.other_writers)
RENDERED = tuple(name for name, source in SOURCES.items() if source.rendered)


def kind_of(name: str) -> str:
    """DIGITS or NOT_DIGITS: what a dataset's labels are."""
    return SOURCES[name].kind


def describe() -> str:
    """The sets by kind, for --help."""
    return "; ".join(f"{'digits' if kind == DIGITS else 'not digits (a gate learns them)'}: " +
                     ", ".join(f"{name} = {source.title}" for name, source in SOURCES.items() if source.kind == kind)
                     for kind in (DIGITS, NOT_DIGITS))
