"""Draw what was read onto the input: a box and a label over each digit (pure OpenCV)."""

from __future__ import annotations

import cv2
import numpy as np

from model.preprocess import working_gray

# Annotated copies are drawn at most this large: enough to see, cheap to send to a browser.
DISPLAY_MAX_SIDE = 800
BOX_COLOUR = (228, 87, 46)  # the colour of the predicted bar in the app's chart
UNCERTAIN_COLOUR = (230, 160, 20)


def readable_copy(image: np.ndarray) -> np.ndarray:
    """The input as an RGB uint8 picture with dark ink on light paper, at most DISPLAY_MAX_SIDE."""
    gray, _ = working_gray(image, DISPLAY_MAX_SIDE)  # also fills a transparent background with a contrasting colour
    if np.median(gray) < 0.5:  # light ink on dark (the canvas): shown as ink on paper, like the labels
        gray = 1.0 - gray
    rgb = (np.clip(gray, 0, 1) * 255).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(rgb[..., None], 3, axis=2))


def draw_readings(image: np.ndarray, digits) -> np.ndarray:
    """RGB copy of `image` with each reading's box and 'digit confidence' label on it.

    `digits` are model.inference.Reading objects with a box in input coordinates.
    """
    picture = readable_copy(image)
    scale = picture.shape[1] / np.asarray(image).shape[1]
    line = max(1, round(min(picture.shape[:2]) / 150))
    for reading in digits:
        x, y, w, h = (round(v * scale) for v in reading.box)
        colour = UNCERTAIN_COLOUR if reading.refused else BOX_COLOUR
        cv2.rectangle(picture, (x, y), (x + w, y + h), colour, line, cv2.LINE_AA)
        label = f"{reading.closest}? {reading.confidence:.0%}" if reading.refused else f"{reading.digit} {reading.confidence:.0%}"
        font_scale = max(0.4, min(h, picture.shape[0]) / 160)
        (text_w, text_h), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, line)
        top = y - text_h - base - 2 if y - text_h - base - 2 >= 0 else min(y + h + 2, picture.shape[0] - text_h - base)
        cv2.rectangle(picture, (x, top), (x + text_w + 4, top + text_h + base + 2), colour, -1)
        cv2.putText(picture, label, (x + 2, top + text_h + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (255, 255, 255),
                    line, cv2.LINE_AA)
    return picture
