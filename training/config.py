"""The one training configuration: each option declared once, as a field of TrainConfig.

A field carries its default, its help and its choices; the command line
(`build_parser`), the app's retrain form (fields with a `Form`) and the
background job (which hands the worker a config file, `--config`) are all
derived from these declarations. The app's presets are overrides of them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from pathlib import Path
from typing import NamedTuple

from model.architectures import ARCHITECTURES, DEFAULT_ARCHITECTURE
from model.registry import data_dir, new_name
from training.data import DATASETS, DEFAULT_CACHE_DIR, MISSING_DATA
from training.sources import describe
from training.distribute import LR_SCALING, STRATEGIES
from training.feedback import FEEDBACK_MODES

LR_SCHEDULES = ("cosine", "exponential", "constant")
# The held-out digits a refusal threshold may be chosen on (training.calibrate) -> generated digits pooled in. A
# gate refuses almost none of its validation digits, so its threshold at a small budget was their lowest score or
# two, and a fine-tune that moved one digit moved the threshold (0.224 -> 0.108, and the non-digits it refused
# 86% -> 69%). Pooled with 20,000 generated digits, which it finds harder, the budget falls a dozen digits deep
# and no single digit sets it.
# With "validation+writers", the held-out writers of every other set of real digits trained on (their test
# splits: UNIPEN's and Chars74K's held-out writers, ARDIS's and optdigits-orig's held-out parts) are pooled in
# instead: a gate taught real doodles finds a few generated digits "like nothing" (20 of 20,000 at its lowest
# score), so a threshold on them fell to 0.10 and admitted nearly everything (issue 32, docs/reliability.md).
# With "each-collection", the same digits, but each collection (MNIST's validation split, UNIPEN's, ARDIS's...)
# weighs alike: the budget bounds the mean share refused over collections, not the share of a pool that MNIST's
# 5,000 dominate. A gate draws its line tightest around MNIST, so a pooled threshold refused 0.30% of the pool
# and 1.7% of USPS, writers from elsewhere (issue 32, docs/reliability.md "Sixth round").
THRESHOLD_ON = {"validation": 0, "validation+generated": 20000, "validation+writers": 0, "each-collection": 0}
WRITERS_POOLED = "validation+writers"
EACH_COLLECTION = "each-collection"
WITH_WRITERS = (WRITERS_POOLED, EACH_COLLECTION)
SCALE = "scale: several devices or machines, streamed data (see docs/distributed-training.md)"
CORRECTIONS = "corrections and fine-tuning"


class Form(NamedTuple):
    """How an option appears in the app's retrain form (ui.retrain draws it from this)."""

    label: str  # may name {corrections}: how many are stored
    when: dict = {}  # shown only while these other options have these values
    limits: tuple = ()  # (min, max) of a number
    names: dict = {}  # how each choice is called; named choices are buttons side by side, others a list
    help: str | None = None
    needs_corrections: bool = False  # off, and cannot be switched on, while no correction is stored


def option(default, help: str, *, choices: tuple = (), group: str | None = None, form: Form | None = None):
    """A TrainConfig field: its default, its --help text, its choices, its --help group and its form widget."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "group": group,
                                                        "form": form})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    architecture: str = option(DEFAULT_ARCHITECTURE, "compact: the light baseline; deep: the accurate default",
                               choices=tuple(sorted(ARCHITECTURES)),
                               form=Form("Architecture", when={"fine_tune": False}))
    data: tuple[str, ...] = option(("mnist",), f"comma-separated datasets (docs/training.md): {describe()}",
                                   choices=DATASETS,
                                   form=Form("Data", help="EMNIST Digits needs its files or internet access; ARDIS "
                                                          "and optdigits their files, fetched once into the cache "
                                                          "(python -m training.data fetch NAME --data-dir FOLDER; "
                                                          "see docs/training.md)."))
    missing_data: str = option("fail", "a dataset after the first that cannot be loaded: fail stops with what "
                                       "was tried and where to get it; skip trains without it and says so (the "
                                       "model card lists what was used)",
                               choices=MISSING_DATA)
    other_writers_repeat: int = option(2, "how many times each ARDIS and optdigits-orig training image is seen per "
                                          "epoch: they are 7,600 beside MNIST's 55,000")
    mnist_repeat: int = option(1, "how many times each MNIST training image is seen per epoch: a gate fine-tuned on "
                                  "other writers' digits and real non-digits drew its line tighter around MNIST's "
                                  "odd digits (issue 32, docs/reliability.md \"Seventh round\"), and more of them "
                                  "holds it where it was")
    epochs: int = option(40, "at most this many epochs", form=Form("Epochs", when={"fine_tune": False}, limits=(1, 200)))
    batch_size: int = option(256, "images per training step and replica: the global batch is this x the replicas")
    learning_rate: float = option(2e-3, "peak learning rate (Adam)")
    label_smoothing: float = option(0.0, "share of each digit's target spread over all ten (0: off)",
                                    form=Form("Label smoothing", limits=(0.0, 0.5)))
    lr_schedule: str = option("cosine", "cosine: warm-up then cosine decay; exponential: x0.9 per epoch",
                              choices=LR_SCHEDULES)
    warmup_epochs: int = option(1, "linear warm-up (cosine schedule)")
    patience: int = option(10, "early-stopping patience: epochs without a better validation loss before stopping")
    validation_size: int = option(5000, "images held out from the training data (never the test set) for early stopping")
    rotation_degrees: float = option(10.0, "random rotation, +-degrees")
    shift: float = option(0.1, "random translation, fraction of the image")
    zoom: float = option(0.1, "random zoom, +-fraction")
    stroke: float = option(0.4, "random pen-width change, 0 to 1 (see RandomStrokeWidth)")
    fat_pen: float = option(0.0, "a quarter of the images thickened by up to this many more 3x3 dilations, "
                                 "as a fat marker draws (0: off)")
    elastic: float = option(1.0, "random elastic distortion, largest displacement in pixels (0: off)")
    blur: float = option(0.3, "random blur, 0 (off) to 1 (sigma 1 px)")
    deskew: bool = option(False, "straighten each digit's slant by its image moments (model.preprocess.deskew) "
                                 "before training, and before reading with the trained model (measured for "
                                 "issue 32, docs/training.md: no gain as a fine-tune, so off)")
    aspect: float = option(0.0, "random squeeze or stretch sideways: width times exp(+-ASPECT) (0: off)")
    # Off by default: the trust recipe (docs/reliability.md) refuses far more non-digits but costs 0.2 points on MNIST.
    generated_digits: int = option(0, "generated digits in styles MNIST lacks (continental 1, 4, 7, 9; fat pens; "
                                      "small scans), per 55,000 training images (training.glyphs)")
    non_digits: int = option(0, "generated non-digits (letters, symbols, shapes, doodles) taught as 'no digit', "
                                "per 55,000 training images (0: off)")
    refusal_budget: float = option(0.0015, "share of held-out real digits the calibrated refusal threshold may "
                                           "refuse (training.calibrate); a gate (training/recipes/gate.json) "
                                           "takes a smaller one, as its refusals add to the reader's")
    refusal_held_out: str = option("validation", "the held-out digits the refusal threshold is chosen on: "
                                                 "validation (the validation split), or validation+generated (with "
                                                 f"{THRESHOLD_ON['validation+generated']:,} generated digits, for a "
                                                 "model that refuses almost none of its validation digits, as a gate "
                                                 "does), or validation+writers (with the held-out writers of the "
                                                 "other real digit sets it trained on: training.calibrate), or "
                                                 "each-collection (the same, each collection weighing alike)",
                                   choices=tuple(THRESHOLD_ON))
    mixed_precision: bool = option(False, "compute in bfloat16 where the CPU supports it "
                                          "(a fine-tune keeps its base model's precision)")
    strategy: str = option("none", "none: one device; mirrored: every GPU of this machine; "
                                   "multiworker: a cluster described by the TF_CONFIG environment variable",
                           choices=STRATEGIES, group=SCALE)
    cpu_devices: int = option(1, "split the CPU into N logical devices, to try --strategy mirrored without GPUs "
                                 "(no faster)", group=SCALE)
    lr_scaling: str = option("linear", "multiply the learning rate by the replicas (linear) or their square root",
                             choices=LR_SCALING, group=SCALE)
    backup_dir: Path | None = option(None, "end-of-epoch backup a restarted run resumes from; every worker must see "
                                           "the same folder (None: .<model name>.backup beside --output)", group=SCALE)
    shards: Path | None = option(None, "stream training data from TFRecord shards written by python -m training.shards "
                                       "(instead of loading --data into memory)", group=SCALE)
    shuffle_buffer: int = option(50000, "images shuffled at a time when streaming from --shards", group=SCALE)
    feedback: bool = option(False, "also train on the corrections sent from the app", group=CORRECTIONS,
                            form=Form("Include the {corrections} stored corrections", when={"fine_tune": False},
                                      needs_corrections=True))
    corrections: Path | None = option(None, "a SQLite corrections store (None: the configured one: "
                                            "DIGITS_DATABASE_URL, the secrets file, else "
                                            "$DIGITS_DATA_DIR/corrections.sqlite3)", group=CORRECTIONS)
    feedback_mode: str = option("oversample", "oversample: repeat each correction; weight: use it once with a "
                                              "larger loss weight", choices=FEEDBACK_MODES, group=CORRECTIONS,
                                form=Form("Corrections are", when={"feedback": True},
                                          names={"oversample": "repeated", "weight": "weighted"}))
    feedback_factor: int = option(20, "each correction counts like this many ordinary training images",
                                  group=CORRECTIONS, form=Form("Each counts like this many training images",
                                                               when={"feedback": True}, limits=(1, 1000)))
    feedback_holdout: float = option(0.2, "fraction of corrections held out to measure before/after "
                                          "(the same ones every run)", group=CORRECTIONS)
    fine_tune: bool = option(False, "update an existing model for a few epochs instead of training from scratch",
                             group=CORRECTIONS)
    base_model: Path | None = option(None, "the .keras model to fine-tune and to compare with (None: the active "
                                           "model)", group=CORRECTIONS)
    fine_tune_epochs: int = option(3, "epochs of a fine-tune", group=CORRECTIONS,
                                   form=Form("Epochs", when={"fine_tune": True}, limits=(1, 200)))
    fine_tune_learning_rate: float = option(3e-4, "starting learning rate of a fine-tune (cosine decay)",
                                            group=CORRECTIONS)
    blend_base: float = option(0.0, "after a fine-tune, move every weight back towards the base model's by this "
                                    "share (WiSE-FT, Wortsman et al. 2022): what the base read well is kept, what "
                                    "the fine-tune learnt mostly stays; 0: off (python -m training.blend tries "
                                    "several shares on one fine-tune)", group=CORRECTIONS)
    replay: int = option(20000, "original training images mixed into a fine-tune, so the model keeps what it knew",
                         group=CORRECTIONS)
    register: bool = option(False, "add the trained model to the registry (python -m services.versions), "
                                   "not activated")
    seed: int = option(42, "seeds the split, the shuffling, augmentation and weights")
    limit: int | None = option(None, "smoke run: at most N images per split")
    output: Path | None = option(None, "where to write the .keras model, which must not exist yet: training never "
                                       "writes over a model in place (None: a new folder under "
                                       "$DIGITS_DATA_DIR/trained/)")
    progress_file: Path | None = option(None, "also write progress (epoch, batch, curves) to this JSON file")
    data_dir: Path | None = option(None, "folder with mnist.npz or the IDX files (and EMNIST's, ARDIS's and "
                                         "optdigits-orig's, or subfolders ardis/ and optdigits-orig/), used before any "
                                         "download")
    cache_dir: Path = option(DEFAULT_CACHE_DIR, "where loaded datasets are cached as npz")

    def __post_init__(self):
        problems = [f"{field.name} must be one of {field.metadata['choices']}, got {getattr(self, field.name)!r}"
                    for field in dataclasses.fields(self) if field.metadata["choices"] and field.name != "data"
                    and getattr(self, field.name) not in field.metadata["choices"]]
        if not self.data or any(name not in DATASETS for name in self.data):
            problems.append(f"data must name datasets from {DATASETS}, got {','.join(self.data) or 'nothing'}")
        for name in ("epochs", "batch_size", "other_writers_repeat", "mnist_repeat"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        if self.learning_rate <= 0:
            problems.append("learning_rate must be positive")
        if not 0 <= self.label_smoothing < 1:
            problems.append("label_smoothing must be at least 0 and below 1")
        if not 0 <= self.blur <= 1 or not 0 <= self.stroke <= 1:
            problems.append("blur and stroke must be between 0 and 1")
        if not 0 < self.refusal_budget < 0.5:
            problems.append("refusal_budget must be a share between 0 and 0.5 (e.g. 0.0015)")
        if self.generated_digits < 0 or self.non_digits < 0 or self.aspect < 0 or not 0 <= self.fat_pen <= 3:
            problems.append("generated_digits, non_digits and aspect must be 0 (off) or positive; fat_pen 0 to 3")
        if self.elastic < 0:
            problems.append("elastic must be 0 (off) or a positive number of pixels")
        if self.feedback_factor < 1 or self.fine_tune_epochs < 1 or self.replay < 0:
            problems.append("feedback_factor and fine_tune_epochs must be at least 1, replay at least 0")
        if not 0 <= self.feedback_holdout < 1:
            problems.append("feedback_holdout must be at least 0 and below 1")
        if self.fine_tune_learning_rate <= 0:
            problems.append("fine_tune_learning_rate must be positive")
        if not 0 <= self.blend_base < 1 or (self.blend_base and not self.fine_tune):
            problems.append("blend_base must be a share at least 0 and below 1, and needs fine_tune (it blends the "
                            "fine-tuned weights with the base model's)")
        if self.limit is not None and self.limit < 10:
            problems.append("limit must be at least 10 images")
        if self.cpu_devices < 1 or self.shuffle_buffer < 1:
            problems.append("cpu_devices and shuffle_buffer must be at least 1")
        if self.shards is not None and (self.feedback or self.fine_tune):
            problems.append("shards cannot be combined with feedback or fine_tune yet: train from --data instead")
        if self.shards is not None and self.deskew:
            problems.append("deskew straightens loaded images; shards are streamed as written: train from --data")
        if self.output is not None and Path(self.output).suffix != ".keras":
            problems.append(f"output must end in .keras (the native Keras format), got {self.output}")
        if problems:
            raise ValueError("Invalid training configuration: " + "; ".join(problems) + ".")

    def with_output(self) -> TrainConfig:
        """This config with a concrete output: a new folder of its own when none was given."""
        if self.output is not None:
            return self
        if self.strategy == "multiworker":
            raise ValueError("A multiworker run needs --output: every worker must name the same one.")
        return dataclasses.replace(self, output=data_dir() / "trained" / new_name() / "digits.keras")

    def to_json(self) -> dict:
        return {key: (str(value) if isinstance(value, Path) else list(value) if isinstance(value, tuple) else value)
                for key, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, values: dict) -> TrainConfig:
        """A config from to_json's output (a job's config file, a model card's record)."""
        known = {name: _parse(name, value) for name, value in values.items() if name in FIELD_TYPES}
        return cls(**known)


FIELD_TYPES = typing.get_type_hints(TrainConfig)
DEFAULTS = TrainConfig()


def _parse(name: str, value):
    """A JSON or command-line value of an option -> its Python type."""
    kind = FIELD_TYPES[name]
    if value is None:
        return None
    if kind == tuple[str, ...]:
        return tuple(part.strip() for part in value.split(",") if part.strip()) if isinstance(value, str) \
            else tuple(value)
    if kind in (Path, Path | None):
        return Path(value)
    if kind in (int, int | None):
        return int(value)
    if kind is float:
        return float(value)
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m training`, generated from TrainConfig's fields."""
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train the digit CNN and write <name>.keras with its JSON model card, history and curves.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--config", type=Path, help="a JSON file of options (as a model card's `config` records "
                                                    "them): the defaults that the other flags override")
    groups: dict[str | None, argparse._ActionsContainer] = {None: parser}
    for field in dataclasses.fields(TrainConfig):
        meta = field.metadata
        if meta["group"] not in groups:
            groups[meta["group"]] = parser.add_argument_group(meta["group"])
        group = groups[meta["group"]]
        flag = "--" + field.name.replace("_", "-")
        if FIELD_TYPES[field.name] is bool:
            group.add_argument(flag, action="store_true", help=meta["help"])
            continue
        several = isinstance(field.default, tuple)  # given comma-separated, its choices checked by TrainConfig
        group.add_argument(flag, type=lambda text, name=field.name: _parse(name, text),
                           default=",".join(field.default) if several else field.default,
                           choices=None if several else meta["choices"] or None, help=meta["help"])
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(**{field.name: getattr(args, field.name) for field in dataclasses.fields(TrainConfig)})


def parse_config(argv=None) -> tuple[TrainConfig, argparse.Namespace]:
    """The config a command line asks for: --config's file, if any, with the flags given on top.

    Raises ValueError (with what is wrong) for a config that does not validate or a file that cannot be read."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config is not None:
        try:
            values = json.loads(Path(args.config).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"--config {args.config} could not be read as JSON ({error}).") from None
        in_file = TrainConfig.from_json(values)
        parser.set_defaults(**{name: getattr(in_file, name) for name in values if name in FIELD_TYPES})
        args = parser.parse_args(argv)
    return config_from_args(args), args


class Preset(NamedTuple):
    """A named starting point of the app's retrain form: overrides of TrainConfig's defaults."""

    label: str
    overrides: dict
    note: str = ""  # shown under the choice; may name {corrections} and {replay}


PRESETS = {
    "quick": Preset("Quick: compact CNN, 3 epochs (about a minute)", {"architecture": "compact", "epochs": 3}),
    "full": Preset("Full: the default deep CNN, 40 epochs (35-45 minutes on 2 cores)",
                   {"architecture": "deep", "epochs": 40},
                   "MNIST (and the sets you tick) from scratch: the first of the shipped reader's two steps. "
                   "The shipped reader then learnt real people's pen strokes for another 6 epochs "
                   "(training/recipes/reader-real.json, about 35 minutes more, from the command line; "
                   "docs/training.md)."),
    "finetune": Preset("Fine-tune: update the active model with the corrections, 3 epochs (2-3 minutes)",
                       {"fine_tune": True, "feedback": True, "fine_tune_epochs": 3},
                       "Starts from the active model and learns the {corrections} stored corrections, replaying "
                       "{replay:,} training images so it keeps what it knew. Those marked \"not a digit\" teach its "
                       "gate, which replays its own recipe."),
}


FORM_OPTIONS = [field for field in dataclasses.fields(TrainConfig) if field.metadata["form"] is not None]


def in_form(field: dataclasses.Field, values: dict) -> bool:
    """Whether the retrain form shows this option, given the values chosen so far (a preset's, then the user's)."""
    return all(values.get(name, getattr(DEFAULTS, name)) == wanted
               for name, wanted in field.metadata["form"].when.items())
