"""Turn any picture of a digit into what MNIST looks like: pure numpy/OpenCV.

MNIST's recipe: white ink on black, the digit cropped to its ink, scaled to fit
a 20x20 box with its aspect ratio kept, placed in a 28x28 frame and shifted so
that its centre of mass sits at the centre. Photos and canvas drawings first
need their ink found: grayscale, polarity, uneven light, noise.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from model.constants import DIGIT_BOX, INPUT_SIZE, PIXEL_MAX

# Larger inputs are shrunk first: a digit needs no more than this to be read,
# and every later step then runs in bounded time and memory.
WORKING_MAX_SIDE = 512
# Below this, an image is treated as already digit-sized (an MNIST image, an
# icon): no illumination flattening, whose kernel would eat the strokes.
FLATTEN_MIN_SIDE = 64
# Ink must stand out from the paper by at least this (on a 0..1 scale). The edge of a shadow across blank paper
# stands out by up to 0.22 once the paper's light is estimated (1 blank photo in 120 gave a digit at 0.15); the ink
# of all but 1 of 4,500 photographed MNIST, USPS and UNIPEN digits by more than 0.25 (issue 32).
MIN_CONTRAST = 0.25
# Specks smaller than this share of the largest ink blob are noise.
SPECK_FRACTION = 0.03
# The paper's light is estimated with a kernel this share of the picture's shorter side: wider than any
# stroke, narrower than the shadows it removes.
PAPER_KERNEL_SHARE = 1 / 4
# Ink in more pieces than this is texture or noise, not handwriting (a
# 5-digit number written in broken strokes has about 15).
MAX_PIECES = 40
# On a transparent background, the ink's colour is read this many pixels inside its edges.
INK_EDGE = 3


@dataclasses.dataclass(frozen=True)
class Preprocessed:
    """The model input (28x28 uint8, white on black) or why there is none."""

    image: np.ndarray | None
    reason: str | None = None
    # The ink's bounding box (x, y, w, h) in the coordinates of the input image.
    box: tuple[int, int, int, int] | None = None


def to_gray(image: np.ndarray) -> np.ndarray:
    """Any HxW, HxWx1, HxWx3 (RGB) or HxWx4 (RGBA) array -> float32 gray in [0, 1].

    Integer images are scaled by their dtype's range; float images are taken
    as [0, 1]. A transparent background is filled with the colour that
    contrasts with the ink, so black-on-transparent and white-on-transparent
    canvases both keep their strokes.
    """
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"Expected an HxW, HxWx3 or HxWx4 image, got shape {array.shape}.")
    # In-place arithmetic throughout: a fresh temporary of a canvas-sized float image costs more
    # (page faults) than the arithmetic itself.
    if np.issubdtype(array.dtype, np.integer):
        unit = array.astype(np.float32)
        unit /= float(np.iinfo(array.dtype).max)
    else:
        unit = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        unit = np.clip(unit, 0.0, 1.0)
    if unit.ndim == 2:
        return unit
    # RGBA2GRAY reads the colour channels in place: no copy of the three of them.
    gray = cv2.cvtColor(unit, cv2.COLOR_RGBA2GRAY if unit.shape[2] == 4 else cv2.COLOR_RGB2GRAY)
    if unit.shape[2] == 3:
        return gray
    alpha = unit[..., 3]
    if alpha.min() > 0.98:  # opaque: the alpha channel says nothing
        return gray
    opaque = alpha > 0.5
    if not opaque.any():
        return np.zeros_like(gray)
    # The ink's colour is read inside the opaque shapes, away from their edges: the grey edges of
    # dark strokes (antialiasing, dithering) can outnumber the strokes themselves.
    inside = cv2.erode(opaque.view(np.uint8), np.ones((3, 3), np.uint8), iterations=INK_EDGE)
    ink = gray[inside.view(bool)] if inside.any() else gray[opaque]
    backdrop = 1.0 if float(np.median(ink)) < 0.5 else 0.0  # dark ink goes on white paper
    return gray * alpha + backdrop * (1.0 - alpha)


def _border(gray: np.ndarray) -> np.ndarray:
    edge = max(1, min(gray.shape) // 20)
    return np.concatenate([gray[:edge].ravel(), gray[-edge:].ravel(), gray[:, :edge].ravel(), gray[:, -edge:].ravel()])


def paper_is_light(gray: np.ndarray) -> bool:
    """Whether the ink is darker than the paper.

    Ink is what strays furthest from the local paper level, up or down.
    Brightness alone misleads (grey paper in a shadow is darker than
    mid-grey, its ink darker still), and so do raw extremes under a lighting
    gradient; so the slow light is removed first (a wide blur, computed on a
    small copy) and sensor noise with a light blur. Digit-sized images (an
    MNIST image, a tight crop) have no room for lighting and are mostly ink:
    their border is the paper.
    """
    if min(gray.shape) < FLATTEN_MIN_SIDE:
        return float(np.median(_border(gray))) > 0.5
    small = cv2.resize(gray, (FLATTEN_MIN_SIDE, FLATTEN_MIN_SIDE), interpolation=cv2.INTER_AREA)
    lighting = cv2.resize(cv2.GaussianBlur(small, (0, 0), FLATTEN_MIN_SIDE / 8), (gray.shape[1], gray.shape[0]))
    residual = cv2.GaussianBlur(gray, (0, 0), 1.0)
    residual -= lighting
    return -float(residual.min()) >= float(residual.max())


def _uniform_paper(gray: np.ndarray) -> float | None:
    """The paper's value when most of the image is exactly that value (canvas exports, digital drawings).

    Only images from drawing tools have that: a photo or a scan never has half
    its pixels exactly equal."""
    if min(gray.shape) < FLATTEN_MIN_SIDE:
        return None  # digit-sized images keep their own rule (the border's median)
    corner = gray[0, 0]
    if 2 * np.count_nonzero(gray == corner) > gray.size:
        return float(corner)
    return None


def ink_map(gray: np.ndarray) -> np.ndarray:
    """How much ink each pixel holds, bright on black, with uneven light removed.

    The paper's brightness is estimated by a morphological closing (dark ink)
    or opening (light ink) wider than any stroke, then blurred. Dark ink is
    measured as a fraction of the paper's local brightness, so a shadow
    dims paper and ink alike and cancels out. Small images (MNIST-sized) have
    no room for such a kernel and use the border's level instead; drawings
    whose paper is one exact value (canvas exports) use that value.
    """
    uniform = _uniform_paper(gray)
    if uniform is not None:  # a canvas or a digital drawing: no light to flatten, the paper is one value
        light = float(gray.max()) - uniform < uniform - float(gray.min())
        paper = np.full_like(gray, uniform)
    elif min(gray.shape) < FLATTEN_MIN_SIDE:
        light = paper_is_light(gray)
        paper = np.full_like(gray, float(np.median(_border(gray))))
    else:
        light = paper_is_light(gray)
        # The light varies slowly, so it is estimated on a ~64 px copy: the same
        # result at a fraction of the cost of a wide kernel on every pixel.
        factor = max(1, min(gray.shape) // FLATTEN_MIN_SIDE)
        coarse = cv2.resize(gray, (gray.shape[1] // factor, gray.shape[0] // factor), interpolation=cv2.INTER_AREA)
        size = max(5, int(min(coarse.shape) * PAPER_KERNEL_SHARE) | 1)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        coarse = cv2.morphologyEx(coarse, cv2.MORPH_CLOSE if light else cv2.MORPH_OPEN, kernel)
        coarse = cv2.GaussianBlur(coarse, (0, 0), size / 4)
        paper = cv2.resize(coarse, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)
    if light:
        ink = np.maximum(paper, 1e-3)
        np.divide(gray, ink, out=ink)
        np.subtract(1.0, ink, out=ink)
    else:
        ink = np.subtract(gray, paper)
    return np.clip(ink, 0.0, 1.0, out=ink)


def _median(values: np.ndarray) -> float:
    """np.median of non-negative values. On a canvas most of the ink map is exactly zero, and when
    more than half the values are zero, so is the median: no sorting needed."""
    if 2 * np.count_nonzero(values) < values.size:
        return 0.0
    return float(np.median(values))


NO_INK = "no ink found: the image is blank or has too little contrast"
NOISE = "no digit found: the image looks like noise or texture, not handwriting"


def ink_mask(flat: np.ndarray) -> np.ndarray | str:
    """Threshold (Otsu) and drop specks; or why there is no handwriting to read."""
    low, high = _median(flat), float(flat.max())
    if high - low < MIN_CONTRAST:
        return NO_INK
    scaled = flat - low
    scaled /= high - low
    scaled *= 255.0
    scaled = np.clip(scaled, 0, 255, out=scaled).astype(np.uint8)
    _, mask = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    x, y, w, h = cv2.boundingRect(mask)  # components are labelled inside the ink's box only: same result, less work
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask[y : y + h, x : x + w], connectivity=8)
    if count <= 1:
        return NO_INK
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= SPECK_FRACTION * areas.max()) + 1
    if len(keep) > MAX_PIECES:
        return NOISE
    kept = np.zeros(count, bool)
    kept[keep] = True
    strokes = np.zeros(mask.shape, bool)
    strokes[y : y + h, x : x + w] = kept[labels]  # a lookup per pixel: what np.isin does, without sorting
    return strokes


def frame_digit(ink: np.ndarray) -> np.ndarray:
    """Frame bright-on-black ink the MNIST way: 20x20 box, centre of mass centred.

    Takes uint8 (0..255) or float (0..1) ink; pixels equal to zero are
    background. Returns a 28x28 uint8 image (all zero
    if there is no ink). An image already framed like MNIST comes back as it was.
    """
    ink = np.asarray(ink)
    ink = ink.astype(np.float32) / PIXEL_MAX if np.issubdtype(ink.dtype, np.integer) else ink.astype(np.float32)
    rows = np.flatnonzero(ink.max(axis=1) > 0)
    cols = np.flatnonzero(ink.max(axis=0) > 0)
    frame = np.zeros((INPUT_SIZE, INPUT_SIZE), np.float32)
    if rows.size == 0:
        return frame.astype(np.uint8)
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    height, width = crop.shape
    if max(height, width) != DIGIT_BOX:
        scale = DIGIT_BOX / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        height, width = crop.shape
    top, left = (INPUT_SIZE - height) // 2, (INPUT_SIZE - width) // 2
    frame[top : top + height, left : left + width] = crop
    # Integer shift so that already-framed digits are not blurred; clamped so
    # that no ink leaves the frame.
    total = frame.sum()
    if total > 0:
        ys, xs = np.indices(frame.shape)
        centre = INPUT_SIZE / 2  # where MNIST puts it (measured: 14.0 +- 0.3)
        dy = int(np.clip(round(centre - (ys * frame).sum() / total), -top, INPUT_SIZE - height - top))
        dx = int(np.clip(round(centre - (xs * frame).sum() / total), -left, INPUT_SIZE - width - left))
        frame = np.roll(frame, (dy, dx), axis=(0, 1))
    return np.clip(np.rint(frame * PIXEL_MAX), 0, PIXEL_MAX).astype(np.uint8)


MAX_SKEW = 1.0  # a slant steeper than 45 degrees is more likely a stroke's shape than a writer's slant


def deskew(frame: np.ndarray) -> np.ndarray:
    """A framed 28x28 digit with its slant taken out: sheared so that its second image moment mu11 is zero
    (the classic moments deskew), then framed again by frame_digit. Slant normalisation (issue 32)."""
    frame = np.asarray(frame, np.float32) / PIXEL_MAX  # frame_digit takes float ink as 0..1
    moments = cv2.moments(frame)
    if moments["mu02"] < 1e-3 * max(moments["m00"], 1e-6):
        return frame_digit(frame)
    skew = float(np.clip(moments["mu11"] / moments["mu02"], -MAX_SKEW, MAX_SKEW))
    # Shear about the centre of mass, on a canvas wide enough that no ink falls off before framing again.
    pad = INPUT_SIZE
    canvas = cv2.copyMakeBorder(frame, 0, 0, pad, pad, cv2.BORDER_CONSTANT, value=0)
    centre_y = moments["m01"] / moments["m00"]
    shear = np.float32([[1, skew, -skew * centre_y], [0, 1, 0]])
    sheared = cv2.warpAffine(canvas, shear, canvas.shape[::-1], flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR)
    return frame_digit(np.clip(sheared, 0, None))


def deskew_all(frames: np.ndarray) -> np.ndarray:
    """(N, 28, 28) framed digits -> the same, each deskewed."""
    return np.stack([deskew(frame) for frame in frames]) if len(frames) else np.asarray(frames, np.uint8)


def shrink(image: np.ndarray, max_side: int = WORKING_MAX_SIDE) -> tuple[np.ndarray, float]:
    """The image (grey or colour) shrunk so that its longer side is at most `max_side`, and the scale used."""
    scale = min(1.0, max_side / max(image.shape[:2]))
    if scale == 1.0:
        return image, 1.0
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(np.ascontiguousarray(image), size, interpolation=cv2.INTER_AREA), scale


# The dtypes OpenCV resizes as they are; anything else (int32, bool...) is made grey first.
_RESIZABLE = (np.uint8, np.uint16, np.int16, np.float32, np.float64)


def working_gray(image: np.ndarray, max_side: int = WORKING_MAX_SIDE) -> tuple[np.ndarray, float]:
    """The image shrunk to at most `max_side`, then made grey (to_gray), and the scale used.

    Shrunk first, in its own integer type: a 40-megapixel RGBA upload is 160 MB as uint8 but 640 MB as
    float32, so making it grey at full resolution would cost a session most of a gigabyte on every rerun."""
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.dtype.type not in _RESIZABLE:
        return shrink(to_gray(array), max_side)
    small, scale = shrink(array, max_side)
    return to_gray(small), scale


@dataclasses.dataclass(frozen=True)
class Ink:
    """Where the ink is, at working resolution."""

    ink: np.ndarray  # float32 in [0, 1], bright on black, zero away from the strokes
    mask: np.ndarray  # bool: the thresholded strokes, specks removed
    scale: float  # working size / input size

    def box(self, region: np.ndarray | None = None) -> tuple[int, int, int, int]:
        """The bounding box (x, y, w, h) of the ink (or of a region of it), in input coordinates."""
        x, y, w, h = cv2.boundingRect(((self.ink > 0) if region is None else region).astype(np.uint8))
        return int(x / self.scale), int(y / self.scale), int(w / self.scale), int(h / self.scale)


def _near(strokes: np.ndarray) -> np.ndarray:
    """The strokes and the 2 px around them, where their anti-aliased edges are kept."""
    return cv2.dilate(strokes.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=2) > 0


def find_ink(image: np.ndarray) -> Ink | str:
    """The ink of a photo, scan, canvas export or MNIST image, or why there is none."""
    if np.asarray(image).size == 0:
        return "the image is empty"
    small, scale = working_gray(image)
    flat = ink_map(small)
    mask = ink_mask(flat)
    if isinstance(mask, str):
        return mask
    background = _median(flat[~mask]) if (~mask).any() else 0.0
    # The strongest stroke pixel becomes full ink. A percentile would brighten
    # MNIST-like images and change what the model sees; specks are already gone.
    full_ink = float(flat[mask].max())
    near = _near(mask)
    x, y, w, h = cv2.boundingRect(near.view(np.uint8))  # all the ink is in here; the rest stays zero
    inside = flat[y : y + h, x : x + w] - background
    inside /= max(full_ink - background, 1e-6)
    np.clip(inside, 0.0, 1.0, out=inside)
    inside[~near[y : y + h, x : x + w]] = 0.0
    ink = np.zeros(flat.shape, np.float32)
    ink[y : y + h, x : x + w] = inside
    return Ink(ink, mask, scale)


def preprocess(image: np.ndarray) -> Preprocessed:
    """A photo, scan, canvas export or MNIST image of one digit -> the 28x28 model input."""
    found = find_ink(image)
    if isinstance(found, str):
        return Preprocessed(None, found)
    return Preprocessed(frame_digit(found.ink), None, found.box())


def frame_region(found: Ink, region: np.ndarray) -> Preprocessed:
    """One region of the ink (a piece of a number, model.number) -> its 28x28 model input."""
    return Preprocessed(frame_digit(np.where(_near(region), found.ink, 0.0)), None, found.box(region))
