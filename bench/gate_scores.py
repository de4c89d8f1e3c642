"""Which score says "not a digit" best, at the same cost in real digits (issue 23's "worth measuring").

The shipped gate refuses below a threshold on its calibrated top probability. This bench scores the same
inputs (bench/trust.py's sets, its seed: the same renderings) by other rules, each thresholded so that it
refuses as many real USPS digits (both renderings together) as the shipped rule does, and reports what each
then refuses of the non-digits and of the other real digits:
  - the gate's top probability (the shipped rule), its energy (log-sum-exp of its logits), its top logit;
  - class-conditional feature density: the Mahalanobis distance to the nearest digit class (class means and a
    shared covariance fitted on the training digits of MNIST, ARDIS and optdigits-orig) of the gate's own
    features and of the reader's;
  - the gate's log-probability combined with the reader's distance.
Equal USPS refusal is chosen on USPS itself, so the comparison is fair between rules but not a blind test of
any. Writes bench/results/gate_scores.json. Usage:

    .venv/bin/python bench/gate_scores.py [--usps-limit N] [--fit-per-dataset 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import write_results  # noqa: E402
from bench.trust import SEED, build_sets  # noqa: E402
from model.artifacts import SHIPPED_MODEL  # noqa: E402
from model.card import ModelCard  # noqa: E402
from model.gate import gate_path  # noqa: E402
from model.loading import load_model  # noqa: E402
from model.preprocess import preprocess  # noqa: E402

REAL_DIGITS = ("usps_photo", "usps_canvas")  # the cost every rule is held to
REPORTED = ("omniglot_canvas", "omniglot_photo", "generated_non_digits", "issue_table", "mnist_test",
            "ardis_heldout", "continental")
FIT_DATASETS = ("mnist", "ardis", "optdigits")
COMBINED_SCALES = (400.0, 200.0)  # gate log-probability − reader distance / scale


def model_inputs(cases) -> tuple[np.ndarray, np.ndarray]:
    """The 28x28 inputs the models see, and the expected digit (-1: not a digit); blank inputs are left out
    (every rule sees them as empty alike)."""
    images, labels = [], []
    for image, truth in cases:
        prepared = preprocess(image)
        if prepared.image is not None:
            images.append(prepared.image)
            labels.append(-1 if truth is None else int(truth))
    return np.stack(images).astype(np.float32)[..., None], np.array(labels)


class Network:
    """A trained model's penultimate features and logits (the last layer, 'probabilities', is a softmax)."""

    def __init__(self, path: Path):
        import keras

        model = load_model(path)
        self.features_model = keras.Model(model.inputs, model.get_layer("probabilities").input)
        self.kernel, self.bias = model.get_layer("probabilities").get_weights()
        self.temperature = (ModelCard.read(path).calibration or {}).get("temperature", 1.0)

    def features(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([np.asarray(self.features_model(x[i:i + 1024], training=False))
                               for i in range(0, len(x), 1024)])

    def logits(self, features: np.ndarray) -> np.ndarray:
        return features @ self.kernel + self.bias


class Density:
    """Squared Mahalanobis distance to the nearest class mean, with one covariance shared by the classes."""

    def __init__(self, features: np.ndarray, labels: np.ndarray):
        self.means = np.stack([features[labels == c].mean(0) for c in range(10)])
        centred = features - self.means[labels]
        covariance = centred.T @ centred / len(features)
        self.precision = np.linalg.inv(covariance + 1e-3 * np.eye(len(covariance)))

    def distance(self, features: np.ndarray) -> np.ndarray:
        diff = features[:, None, :] - self.means[None]
        return np.einsum("nci,ij,ncj->nc", diff, self.precision, diff).min(1)


def logsumexp(z: np.ndarray) -> np.ndarray:
    top = z.max(1)
    return top + np.log(np.exp(z - top[:, None]).sum(1))


def fit_digits(per_dataset: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    from training.data import load_dataset

    x, y = [], []
    for name in FIT_DATASETS:
        train = load_dataset(name).train
        picked = rng.permutation(len(train.x))[:per_dataset]
        x.append(train.x[picked])
        y.append(train.y[picked])
    return np.concatenate(x).astype(np.float32)[..., None], np.concatenate(y)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL, help="the reader; its gate is beside it")
    parser.add_argument("--usps-limit", type=int, default=None, help="read only the first N USPS digits")
    parser.add_argument("--fit-per-dataset", type=int, default=20000,
                        help="training digits of each dataset the class densities are fitted on")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()

    started = time.perf_counter()
    gate, reader = Network(gate_path(args.model)), Network(args.model)
    sets = {name: model_inputs(cases) for name, cases in build_sets(SEED, args.usps_limit).items()}
    fit_x, fit_y = fit_digits(args.fit_per_dataset, np.random.default_rng(0))
    gate_density, reader_density = Density(gate.features(fit_x), fit_y), Density(reader.features(fit_x), fit_y)

    scores: dict[str, dict[str, np.ndarray]] = {}  # rule -> set -> score (higher: more digit-like)
    for name, (x, _) in sets.items():
        gate_features, reader_features = gate.features(x), reader.features(x)
        logits = gate.logits(gate_features)
        log_p = (logits / gate.temperature).max(1) - logsumexp(logits / gate.temperature)
        reader_distance = reader_density.distance(reader_features)
        rules = {"gate top probability (shipped)": np.exp(log_p),
                 "gate energy (log-sum-exp of logits)": logsumexp(logits),
                 "gate top logit": logits.max(1),
                 "Mahalanobis, gate's features": -gate_density.distance(gate_features),
                 "Mahalanobis, reader's features": -reader_distance}
        for scale in COMBINED_SCALES:
            rules[f"gate log-probability − reader distance / {scale:.0f}"] = log_p - reader_distance / scale
        for rule, values in rules.items():
            scores.setdefault(rule, {})[name] = values

    shipped = "gate top probability (shipped)"
    threshold = ModelCard.read(gate_path(args.model)).calibration["threshold"]

    def usps(rule: str) -> np.ndarray:
        return np.concatenate([scores[rule][name] for name in REAL_DIGITS])

    cost = float((usps(shipped) < threshold).mean())
    rows = {}
    for rule in scores:
        cut = threshold if rule == shipped else float(np.quantile(usps(rule), cost))
        row = {"threshold": cut, "usps_refused": float((usps(rule) < cut).mean())}
        for name in REPORTED:  # each set is all digits or all non-digits: the share refused of the whole set
            row[name] = float((scores[rule][name] < cut).mean())
        rows[rule] = row
        print(f"{rule:52} USPS {row['usps_refused']:6.2%}  Omniglot {row['omniglot_canvas']:6.1%} / "
              f"{row['omniglot_photo']:6.1%}  generated {row['generated_non_digits']:6.1%}  table "
              f"{row['issue_table']:6.1%}  MNIST {row['mnist_test']:6.2%}  ARDIS {row['ardis_heldout']:6.2%}  "
              f"continental {row['continental']:6.2%}")
    write_results("gate_scores", {"model": str(args.model.relative_to(ROOT) if args.model.is_absolute()
                                                   else args.model),
                                  "seed": SEED, "usps_refused_by_the_shipped_rule": cost,
                                  "fit_per_dataset": args.fit_per_dataset, "fit_datasets": list(FIT_DATASETS),
                                  "counts": {name: len(labels) for name, (_, labels) in sets.items()},
                                  "rules": rows, "seconds": round(time.perf_counter() - started)},
                  args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
