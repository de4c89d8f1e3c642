"""Peak memory (RSS) of reading one 40-megapixel upload, as the app does: decode, read, draw the boxes.

Each measurement runs in a fresh process, so its peak is its own. The baseline, in the same run, is a
process that only decodes the same file: what the reading adds above it is what a session pays for an
upload, on every rerun. Three uploads: a photo as JPEG and as PNG (RGB), and a PNG with transparency (RGBA).

    .venv/bin/python bench/upload_memory.py [--tree PATH]

--tree reads with another checkout of the project (e.g. a `git worktree` of an older commit), for a
before → after on the same files in the same run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import write_results  # noqa: E402

MEGAPIXELS = 40
WIDTH, HEIGHT = 8000, 5000

# Run in a fresh process, inside the tree being measured. Prints JSON: peak RSS in MB, and the reading.
# The peak is read from /proc/self/status (VmHWM): getrusage's ru_maxrss survives exec on Linux, so a child
# started by this bench (which made the 40 MP files) would report this process's peak, not its own.
PROBE = """
import json, resource, sys
sys.path.insert(0, sys.argv[1])

def peak_mb():
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

from model.images import read_image
from model.inference import Recognizer
from model.annotate import draw_readings
recognizer = Recognizer()
before = peak_mb()
image = read_image(sys.argv[2])
read = sys.argv[3] == "read"
answer = None
if read:
    result = recognizer.read_number(image)
    draw_readings(image, result.digits)
    answer = result.number
print(json.dumps({"peak_mb": peak_mb(), "loaded_mb": before,
                  "answer": answer}))
"""


def make_uploads(folder: Path) -> dict[str, Path]:
    """A 40 MP photo of '47' on grey paper (JPEG, and PNG as issue 34 measured it), and the same digits on
    transparent paper (PNG)."""
    import cv2

    rng = np.random.default_rng(0)
    paper = np.clip(rng.normal(200, 6, (HEIGHT, WIDTH)), 0, 255).astype(np.uint8)
    cv2.putText(paper, "47", (2200, 3600), cv2.FONT_HERSHEY_SIMPLEX, 60, 40, 160, cv2.LINE_AA)
    photo = folder / "photo-40mp.jpg"
    cv2.imwrite(str(photo), np.dstack([paper] * 3), [cv2.IMWRITE_JPEG_QUALITY, 90])
    # As a PNG, the noise would make it larger than the 25 MB an upload may be: smooth paper, lit unevenly.
    smooth = np.ascontiguousarray(np.broadcast_to(np.linspace(215, 185, WIDTH).astype(np.uint8), (HEIGHT, WIDTH)))
    cv2.putText(smooth, "47", (2200, 3600), cv2.FONT_HERSHEY_SIMPLEX, 60, 40, 160, cv2.LINE_AA)
    photo_png = folder / "photo-40mp.png"
    cv2.imwrite(str(photo_png), np.dstack([smooth] * 3))
    ink = np.zeros((HEIGHT, WIDTH), np.uint8)
    cv2.putText(ink, "47", (2200, 3600), cv2.FONT_HERSHEY_SIMPLEX, 60, 255, 160, cv2.LINE_AA)
    transparent = folder / "drawing-40mp.png"
    cv2.imwrite(str(transparent), np.dstack([np.zeros_like(ink)] * 3 + [ink]))  # black ink, alpha = the ink
    return {"jpeg_rgb": photo, "png_rgb": photo_png, "png_rgba": transparent}


def measure(tree: Path, upload: Path, mode: str) -> dict:
    output = subprocess.run([sys.executable, "-c", PROBE, str(tree), str(upload), mode], cwd=tree,
                            capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose code reads the uploads")
    parser.add_argument("--name", default="upload_memory", help="results file name (bench/results/NAME.json)")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for kind, upload in make_uploads(Path(folder)).items():
            decoded = measure(args.tree, upload, "decode")
            read = measure(args.tree, upload, "read")
            results[kind] = {"megapixels": MEGAPIXELS, "file_mb": round(upload.stat().st_size / 2**20, 1),
                             "peak_rss_mb": round(read["peak_mb"]), "decode_only_peak_rss_mb": round(decoded["peak_mb"]),
                             "added_by_reading_mb": round(read["peak_mb"] - decoded["peak_mb"]),
                             "answer": read["answer"]}
            print(f"{kind}: peak {read['peak_mb']:.0f} MB, decoding alone {decoded['peak_mb']:.0f} MB "
                  f"(+{read['peak_mb'] - decoded['peak_mb']:.0f} MB for reading); read {read['answer']}")
    write_results(args.name, {"tree": str(args.tree.resolve()), "uploads": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
