"""python -m model.predict [--json] [--multi] PATH...: read the digit (or number) in each image.

With --json, one JSON object per input, in input order, on stdout:
  {"path": ..., "digit": 7, "verdict": "digit", "confidence": 0.998, "probabilities": [10 floats]}
  {"path": ..., "digit": null, "verdict": "not_a_digit" | "not_sure", "reason": "...",
   "closest": {"digit": 4, "confidence": 0.31}, "probabilities": [10 floats]}   no digit claimed
  {"path": ..., "digit": null, "verdict": "empty", "reason": "..."}             nothing to read
  {"path": ..., "error": "..."}                                                 unreadable file
Confidences and probabilities are calibrated (see model.confidence). With --multi, each image
holds a whole number:
  {"path": ..., "number": "4157", "digits": [{"digit": 4, "verdict": "digit", "confidence": 0.99,
   "box": [x, y, w, h]}, ...]}
  {"path": ..., "number": null, "reason": "the piece at x=.., y=.. (WxH px) is not a digit: ...",
   "digits": [... every piece, refused ones with "digit": null and "closest"]}
Unreadable files do not stop the others; the exit code is 1 if any input
could not be read, 2 for a usage or model error, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from model.artifacts import ModelFileError
from model.confidence import EMPTY
from model.images import ImageDecodeError, read_image
from model.registry import Registry

CHUNK = 256  # images decoded and read together: bounded memory, batched model calls


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m model.predict",
        description="Read handwritten digits from image files (PNG, JPEG, WebP, BMP, TIFF, GIF).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files")
    parser.add_argument("--json", action="store_true", help="print one JSON object per input")
    parser.add_argument("--multi", action="store_true", help="read a whole number: every digit, left to right")
    parser.add_argument("--model", type=Path, default=None,
                        help="a .keras model with its JSON sidecar (default: the active version, as in the app; "
                             "see python -m services.versions list)")
    return parser


def _closest(reading) -> dict:
    return {"digit": reading.closest, "confidence": round(reading.confidence, 6)}


def reading_json(path: str, reading) -> dict:
    """One digit's reading as `--json` prints it (the app's download too)."""
    if reading.verdict == EMPTY:
        return {"path": path, "digit": None, "verdict": EMPTY, "reason": reading.reason}
    result = {"path": path, "digit": reading.digit, "verdict": reading.verdict}
    if reading.refused:
        result.update(reason=reading.reason, closest=_closest(reading))
    else:
        result["confidence"] = round(reading.confidence, 6)
    result["probabilities"] = [round(p, 6) for p in reading.probabilities]
    if reading.digit_likeness is not None:
        result["digit_likeness"] = round(reading.digit_likeness, 6)
    return result


def _piece(reading) -> dict:
    piece = {"digit": reading.digit, "verdict": reading.verdict, "confidence": round(reading.confidence, 6),
             "box": list(reading.box)}
    if reading.refused:
        piece["closest"] = _closest(reading)
    if reading.digit_likeness is not None:
        piece["digit_likeness"] = round(reading.digit_likeness, 6)
    return piece


def number_json(path: str, reading) -> dict:
    """A whole number's reading as `--json --multi` prints it."""
    result = {"path": path, "number": reading.number, "digits": [_piece(d) for d in reading.digits]}
    if reading.number is None:
        result["reason"] = reading.reason
    return result


def _line(result: dict) -> str:
    if "error" in result:
        return f"{result['path']}: error: {result['error']}"
    if "number" in result:
        if result["number"] is None:
            guess = "".join(str(d.get("closest", d)["digit"]) for d in result["digits"])
            return f"{result['path']}: no number ({result['reason']})" + (f"; closest guess {guess}" if guess else "")
        confidence = min(d["confidence"] for d in result["digits"])
        return f"{result['path']}: {result['number']} (least certain digit {confidence:.1%})"
    if result["digit"] is None:
        closest = result.get("closest")
        guess = f"; closest guess {closest['digit']} at {closest['confidence']:.1%}" if closest else ""
        return f"{result['path']}: no digit ({result['reason']}{guess})"
    return f"{result['path']}: {result['digit']} ({result['confidence']:.1%})"


def run(paths: list[str], recognizer, as_json: bool, out=None, multi: bool = False) -> int:
    out = out or sys.stdout  # looked up per call, so a redirected stdout is honoured
    failures = 0
    for start in range(0, len(paths), CHUNK):
        chunk = paths[start : start + CHUNK]
        results: list[dict | None] = [None] * len(chunk)
        images, slots = [], []
        for slot, path in enumerate(chunk):
            try:
                images.append(read_image(path))
                slots.append(slot)
            except ImageDecodeError as error:
                results[slot] = {"path": path, "error": str(error)}
                failures += 1
        if multi:
            for slot, image in zip(slots, images):
                results[slot] = number_json(chunk[slot], recognizer.read_number(image))
        else:
            for slot, reading in zip(slots, recognizer.read_many(images)):
                results[slot] = reading_json(chunk[slot], reading)
        for result in results:
            print(json.dumps(result) if as_json else _line(result), file=out)
        out.flush()
    return 1 if failures else 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from model.inference import Recognizer

    try:
        recognizer = Recognizer(args.model or Registry().active().path)
    except ModelFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return run(args.paths, recognizer, args.json, multi=args.multi)


if __name__ == "__main__":
    sys.exit(main())
