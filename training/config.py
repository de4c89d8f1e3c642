"""The one training configuration: a frozen dataclass and the CLI that fills it."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from model.architectures import ARCHITECTURES, DEFAULT_ARCHITECTURE
from training.data import DATASETS, DEFAULT_CACHE_DIR
from training.distribute import LR_SCALING, STRATEGIES
from training.feedback import FEEDBACK_MODES

DEFAULT_OUTPUT = Path("model") / "digits.keras"
LR_SCHEDULES = ("cosine", "exponential", "constant")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    architecture: str = DEFAULT_ARCHITECTURE
    data: tuple[str, ...] = ("mnist",)
    epochs: int = 40
    batch_size: int = 256
    learning_rate: float = 2e-3
    lr_schedule: str = "cosine"
    warmup_epochs: int = 1
    patience: int = 10  # epochs without a better validation loss before stopping
    validation_size: int = 5000  # held out from the training data, never the test set
    rotation_degrees: float = 10.0
    shift: float = 0.1  # fraction of the image
    zoom: float = 0.1
    stroke: float = 0.4  # pen-width change, see RandomStrokeWidth
    elastic: float = 1.0  # largest elastic displacement in pixels, see RandomDistortion
    blur: float = 0.3  # largest blend towards a 1 px Gaussian blur, see RandomBlur
    aspect: float = 0.0  # random squeeze or stretch sideways: width times exp(+-aspect)
    # Added to the training data (training.glyphs), per 55,000 real training images (fewer for a smaller set).
    # Off by default: the trust recipe (README, "Trust") refuses far more non-digits but costs 0.2 points on MNIST.
    generated_digits: int = 0  # digits in styles MNIST lacks
    non_digits: int = 0  # things that are not digits, trained towards "no digit is likely"
    mixed_precision: bool = False  # bfloat16 compute where the CPU supports it
    strategy: str = "none"  # see training.distribute
    cpu_devices: int = 1  # split the CPU into this many logical devices (to try `mirrored` without GPUs)
    lr_scaling: str = "linear"  # how the learning rate follows the number of replicas
    backup_dir: Path | None = None  # None: .<model name>.backup beside the output
    shards: Path | None = None  # train from TFRecord shards (python -m training.shards) instead of --data
    shuffle_buffer: int = 50000  # images shuffled at a time when streaming from shards
    feedback: bool = False  # also train on the corrections users sent from the app
    corrections: Path | None = None  # the corrections store; None: <data dir>/corrections.sqlite3
    feedback_mode: str = "oversample"
    feedback_factor: int = 20  # each correction counts like this many ordinary images
    feedback_holdout: float = 0.2  # fraction of corrections kept out of training, to measure on
    fine_tune: bool = False  # start from an existing model instead of from scratch
    base_model: Path | None = None  # the model to fine-tune and compare with; None: the active model
    fine_tune_epochs: int = 3
    fine_tune_learning_rate: float = 3e-4
    replay: int = 20000  # original training images mixed into a fine-tune
    register: bool = False  # add the result to the model registry (inactive)
    seed: int = 42
    limit: int | None = None  # smoke run: use at most this many images per split
    output: Path = DEFAULT_OUTPUT
    progress_file: Path | None = None  # JSON progress for another process to show
    data_dir: Path | None = None
    cache_dir: Path = DEFAULT_CACHE_DIR

    def __post_init__(self):
        problems = []
        if self.architecture not in ARCHITECTURES:
            problems.append(f"architecture must be one of {sorted(ARCHITECTURES)}, got {self.architecture!r}")
        unknown = [name for name in self.data if name not in DATASETS]
        if not self.data or unknown:
            problems.append(f"data must name datasets from {DATASETS}, got {','.join(self.data) or 'nothing'}")
        if self.lr_schedule not in LR_SCHEDULES:
            problems.append(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        if self.learning_rate <= 0:
            problems.append("learning_rate must be positive")
        if not 0 <= self.blur <= 1 or not 0 <= self.stroke <= 1:
            problems.append("blur and stroke must be between 0 and 1")
        if self.generated_digits < 0 or self.non_digits < 0 or self.aspect < 0:
            problems.append("generated_digits, non_digits and aspect must be 0 (off) or positive")
        if self.elastic < 0:
            problems.append("elastic must be 0 (off) or a positive number of pixels")
        if self.feedback_mode not in FEEDBACK_MODES:
            problems.append(f"feedback_mode must be one of {FEEDBACK_MODES}, got {self.feedback_mode!r}")
        if self.feedback_factor < 1 or self.fine_tune_epochs < 1 or self.replay < 0:
            problems.append("feedback_factor and fine_tune_epochs must be at least 1, replay at least 0")
        if not 0 <= self.feedback_holdout < 1:
            problems.append("feedback_holdout must be at least 0 and below 1")
        if self.fine_tune_learning_rate <= 0:
            problems.append("fine_tune_learning_rate must be positive")
        if self.limit is not None and self.limit < 10:
            problems.append("limit must be at least 10 images")
        if self.strategy not in STRATEGIES:
            problems.append(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.lr_scaling not in LR_SCALING:
            problems.append(f"lr_scaling must be one of {LR_SCALING}, got {self.lr_scaling!r}")
        if self.cpu_devices < 1 or self.shuffle_buffer < 1:
            problems.append("cpu_devices and shuffle_buffer must be at least 1")
        if self.shards is not None and (self.feedback or self.fine_tune):
            problems.append("shards cannot be combined with feedback or fine_tune yet: train from --data instead")
        if self.output.suffix != ".keras":
            problems.append(f"output must end in .keras (the native Keras format), got {self.output}")
        if problems:
            raise ValueError("Invalid training configuration: " + "; ".join(problems) + ".")

    def to_json(self) -> dict:
        return {key: (str(value) if isinstance(value, Path) else list(value) if isinstance(value, tuple) else value)
                for key, value in dataclasses.asdict(self).items()}


def _datasets(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def build_parser() -> argparse.ArgumentParser:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train the digit CNN and write <name>.keras with its JSON sidecar, history and curves.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--architecture", choices=sorted(ARCHITECTURES), default=defaults.architecture,
                        help="compact: the light baseline; deep: the accurate default")
    parser.add_argument("--data", type=_datasets, default=",".join(defaults.data),
                        help="comma-separated datasets: mnist, emnist (EMNIST Digits)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help="at most this many epochs")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size,
                        help="images per training step and replica: the global batch is this x the replicas")
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help="peak learning rate (Adam)")
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=defaults.lr_schedule,
                        help="cosine: warm-up then cosine decay; exponential: x0.9 per epoch")
    parser.add_argument("--warmup-epochs", type=int, default=defaults.warmup_epochs, help="linear warm-up (cosine schedule)")
    parser.add_argument("--patience", type=int, default=defaults.patience, help="early-stopping patience in epochs")
    parser.add_argument("--validation-size", type=int, default=defaults.validation_size,
                        help="images held out from the training data for early stopping")
    parser.add_argument("--rotation-degrees", type=float, default=defaults.rotation_degrees, help="random rotation, +-degrees")
    parser.add_argument("--shift", type=float, default=defaults.shift, help="random translation, fraction of the image")
    parser.add_argument("--zoom", type=float, default=defaults.zoom, help="random zoom, +-fraction")
    parser.add_argument("--stroke", type=float, default=defaults.stroke, help="random pen-width change, 0 to 1")
    parser.add_argument("--elastic", type=float, default=defaults.elastic,
                        help="random elastic distortion, largest displacement in pixels (0: off)")
    parser.add_argument("--blur", type=float, default=defaults.blur, help="random blur, 0 (off) to 1 (sigma 1 px)")
    parser.add_argument("--aspect", type=float, default=defaults.aspect,
                        help="random squeeze or stretch sideways: width times exp(+-ASPECT) (0: off)")
    parser.add_argument("--generated-digits", type=int, default=defaults.generated_digits,
                        help="generated digits in styles MNIST lacks (continental 1, 4, 7, 9; fat pens; small scans), "
                             "per 55,000 training images")
    parser.add_argument("--non-digits", type=int, default=defaults.non_digits,
                        help="generated non-digits (letters, symbols, shapes, doodles) taught as 'no digit', "
                             "per 55,000 training images (0: off)")
    parser.add_argument("--mixed-precision", action="store_true",
                        help="compute in bfloat16 where the CPU supports it (a fine-tune keeps its base model's precision)")
    scale = parser.add_argument_group("scale: several devices or machines, streamed data (see the README)")
    scale.add_argument("--strategy", choices=STRATEGIES, default=defaults.strategy,
                       help="none: one device; mirrored: every GPU of this machine; "
                            "multiworker: a cluster described by the TF_CONFIG environment variable")
    scale.add_argument("--cpu-devices", type=int, default=defaults.cpu_devices,
                       help="split the CPU into N logical devices, to try --strategy mirrored without GPUs (no faster)")
    scale.add_argument("--lr-scaling", choices=LR_SCALING, default=defaults.lr_scaling,
                       help="multiply the learning rate by the replicas (linear) or their square root")
    scale.add_argument("--backup-dir", type=Path, default=defaults.backup_dir,
                       help="end-of-epoch backup a restarted run resumes from; every worker must see the same folder "
                            "(None: .<model name>.backup beside --output)")
    scale.add_argument("--shards", type=Path, default=defaults.shards,
                       help="stream training data from TFRecord shards written by python -m training.shards "
                            "(instead of loading --data into memory)")
    scale.add_argument("--shuffle-buffer", type=int, default=defaults.shuffle_buffer,
                       help="images shuffled at a time when streaming from --shards")
    feedback = parser.add_argument_group("corrections and fine-tuning")
    feedback.add_argument("--feedback", action="store_true", help="also train on the corrections sent from the app")
    feedback.add_argument("--corrections", type=Path, default=defaults.corrections,
                          help="corrections store (None: $DIGITS_DATA_DIR/corrections.sqlite3, default var/)")
    feedback.add_argument("--feedback-mode", choices=FEEDBACK_MODES, default=defaults.feedback_mode,
                          help="oversample: repeat each correction; weight: use it once with a larger loss weight")
    feedback.add_argument("--feedback-factor", type=int, default=defaults.feedback_factor,
                          help="each correction counts like this many ordinary training images")
    feedback.add_argument("--feedback-holdout", type=float, default=defaults.feedback_holdout,
                          help="fraction of corrections held out to measure before/after (the same ones every run)")
    feedback.add_argument("--fine-tune", action="store_true",
                          help="update an existing model for a few epochs instead of training from scratch")
    feedback.add_argument("--base-model", type=Path, default=defaults.base_model,
                          help="the .keras model to fine-tune and to compare with (None: the active model)")
    feedback.add_argument("--fine-tune-epochs", type=int, default=defaults.fine_tune_epochs, help="epochs of a fine-tune")
    feedback.add_argument("--fine-tune-learning-rate", type=float, default=defaults.fine_tune_learning_rate,
                          help="starting learning rate of a fine-tune (cosine decay)")
    feedback.add_argument("--replay", type=int, default=defaults.replay,
                          help="original training images mixed into a fine-tune, so the model keeps what it knew")
    parser.add_argument("--register", action="store_true",
                        help="add the trained model to the registry (python -m training.models), not activated")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seeds the split, the shuffling, augmentation and weights")
    parser.add_argument("--limit", type=int, default=defaults.limit, help="smoke run: at most N images per split")
    parser.add_argument("--output", type=Path, default=defaults.output, help="where to write the .keras model")
    parser.add_argument("--progress-file", type=Path, default=defaults.progress_file,
                        help="also write progress (epoch, batch, curves) to this JSON file")
    parser.add_argument("--data-dir", type=Path, default=defaults.data_dir,
                        help="folder with mnist.npz or the IDX files (and EMNIST's), used before any download")
    parser.add_argument("--cache-dir", type=Path, default=defaults.cache_dir, help="where loaded datasets are cached as npz")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{key: value for key, value in vars(args).items() if key in fields})
