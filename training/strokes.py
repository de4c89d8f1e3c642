"""Turn a drawing (an MNIST digit, a printed glyph) into pen strokes.

The ink is thinned to a one-pixel skeleton (Zhang-Suen), and the skeleton is
walked into polylines: each polyline is one press-move-release of a pen. A
browser test redraws digits with the mouse this way, and training.glyphs
redraws printed characters of other scripts as handwriting.
"""

from __future__ import annotations

import numpy as np

_NEIGHBOURS = [(-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)]  # P2..P9, clockwise


def thin(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a boolean image."""
    image = np.pad(mask.astype(np.uint8), 1)
    changed = True
    while changed:
        changed = False
        for step in (0, 1):
            p = [np.roll(np.roll(image, -dy, 0), -dx, 1) for dy, dx in _NEIGHBOURS]
            neighbours = sum(p)
            transitions = sum(((p[i] == 0) & (p[(i + 1) % 8] == 1)).astype(np.uint8) for i in range(8))
            p2, p4, p6, p8 = p[0], p[2], p[4], p[6]
            if step == 0:
                side = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                side = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            remove = (image == 1) & (neighbours >= 2) & (neighbours <= 6) & (transitions == 1) & side
            if remove.any():
                image[remove] = 0
                changed = True
    return image[1:-1, 1:-1].astype(bool)


def strokes_from_image(image: np.ndarray, threshold: int = 100) -> list[list[tuple[int, int]]]:
    """Polylines of (x, y) pixel coordinates that redraw the digit's skeleton."""
    skeleton = thin(image > threshold)
    remaining = {(int(y), int(x)) for y, x in zip(*np.nonzero(skeleton))}

    def neighbours(point):
        y, x = point
        # Orthogonal steps first, so walks follow the stroke rather than cut corners.
        order = [(-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1)]
        return [(y + dy, x + dx) for dy, dx in order if (y + dy, x + dx) in remaining]

    strokes = []
    while remaining:
        ends = [p for p in remaining if len(neighbours(p)) == 1]
        point = min(ends or remaining)
        remaining.discard(point)
        path = [point]
        while True:
            options = neighbours(point)
            if not options:
                break
            point = options[0]
            remaining.discard(point)
            path.append(point)
        if len(path) >= 2:
            strokes.append([(x, y) for y, x in path])
    return strokes
