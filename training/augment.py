"""Training-time augmentation, as Keras preprocessing layers.

The layers run in the tf.data pipeline, so they are active only while
training and the saved model carries none of them. They cover what users
do that MNIST's writers did not: tilt, off-centre and off-size digits, and
pens thinner or thicker than MNIST's.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="digits")
class RandomStrokeWidth(keras.layers.Layer):
    """Thicken or thin the strokes by a random amount per image.

    Blends each image with its 3x3 dilation (thicker) or erosion (thinner) by
    a factor drawn from [-max_change, max_change]: a continuous pen width.
    """

    def __init__(self, max_change: float = 0.5, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.max_change = max_change
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training or self.max_change <= 0:
            return images
        batch = ops.shape(images)[0]
        amount = keras.random.uniform((batch, 1, 1, 1), -self.max_change, self.max_change, seed=self.seed_generator)
        thicker = ops.max_pool(images, 3, strides=1, padding="same")
        thinner = -ops.max_pool(-images, 3, strides=1, padding="same")
        target = ops.where(amount > 0, thicker, thinner)
        return images + ops.abs(amount) * (target - images)

    def get_config(self):
        return {**super().get_config(), "max_change": self.max_change, "seed": self.seed}


@keras.saving.register_keras_serializable(package="digits")
class RandomAffine(keras.layers.Layer):
    """Rotation, zoom, shear and shift in one resampling.

    Keras's RandomRotation, RandomZoom and RandomTranslation each resample the
    image; chained, their three bilinear passes blur 28x28 strokes visibly.
    Composing the transform first and applying it once with
    keras.ops.image.affine_transform keeps the strokes as sharp as MNIST's.
    """

    def __init__(self, rotation_degrees=10.0, zoom=0.1, shift=0.1, shear=0.1, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rotation_degrees, self.zoom, self.shift, self.shear, self.seed = rotation_degrees, zoom, shift, shear, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        batch = ops.shape(images)[0]
        height, width = ops.shape(images)[1], ops.shape(images)[2]

        def uniform(limit):
            return keras.random.uniform((batch,), -limit, limit, seed=self.seed_generator)

        angle = uniform(self.rotation_degrees * 3.141592653589793 / 180.0)
        scale = 1.0 + uniform(self.zoom)  # >1 enlarges the digit
        shear = uniform(self.shear)
        shift_x = uniform(self.shift) * ops.cast(width, "float32")
        shift_y = uniform(self.shift) * ops.cast(height, "float32")
        cos, sin = ops.cos(angle) / scale, ops.sin(angle) / scale
        # Output pixel p maps to input pixel A (p - c - t) + c, A = R(-angle) Shear / scale.
        a00, a01 = cos, sin + cos * shear
        a10, a11 = -sin, cos - sin * shear
        cx = (ops.cast(width, "float32") - 1.0) / 2.0
        cy = (ops.cast(height, "float32") - 1.0) / 2.0
        px, py = cx + shift_x, cy + shift_y
        transform = ops.stack(
            [a00, a01, cx - a00 * px - a01 * py, a10, a11, cy - a10 * px - a11 * py,
             ops.zeros_like(angle), ops.zeros_like(angle)], axis=1)
        return ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="constant")

    def get_config(self):
        return {**super().get_config(), "rotation_degrees": self.rotation_degrees, "zoom": self.zoom,
                "shift": self.shift, "shear": self.shear, "seed": self.seed}


def build_augmenter(rotation_degrees: float, shift: float, zoom: float, stroke: float, seed: int,
                    shear: float = 0.1) -> keras.Sequential:
    """Pen-width and geometric augmentation for uint8-valued 28x28x1 batches."""
    return keras.Sequential(
        [
            RandomStrokeWidth(stroke, seed=seed),
            RandomAffine(rotation_degrees, zoom, shift, shear, seed=seed + 1),
        ],
        name="augmentation",
    )
