"""Training-time augmentation, as Keras preprocessing layers.

The layers run in the tf.data pipeline, so they are active only while
training and the saved model carries none of them. They cover what users
do that MNIST's writers did not: tilt, off-centre and off-size digits, shaky
or sloppy strokes, pens thinner or thicker than MNIST's, and the soft edges
of a photographed or downscaled digit.
"""

from __future__ import annotations

import math

import keras
from keras import ops

# Control points per side of the elastic displacement field: ~7 px apart, a smooth wobble.
ELASTIC_GRID = 5


@keras.saving.register_keras_serializable(package="digits")
class RandomStrokeWidth(keras.layers.Layer):
    """Thicken or thin the strokes by a random amount per image.

    Blends each image with its 3x3 dilation (thicker) or erosion (thinner) by
    a factor drawn from [-max_change, max_change]: a continuous pen width.
    A share (`fat_share`) of the images is thickened further by up to
    `fat_pen` more dilation steps: a fat marker's strokes, twice or three
    times MNIST's, which close loops and fill corners (a 4 that looks like a 9).
    """

    def __init__(self, max_change: float = 0.5, seed: int | None = None, fat_pen: float = 0.0,
                 fat_share: float = 0.25, **kwargs):
        super().__init__(**kwargs)
        self.max_change, self.fat_pen, self.fat_share = max_change, fat_pen, fat_share
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training or (self.max_change <= 0 and self.fat_pen <= 0):
            return images
        batch = ops.shape(images)[0]
        amount = keras.random.uniform((batch, 1, 1, 1), -self.max_change, self.max_change, seed=self.seed_generator)
        if self.fat_pen > 0:
            fat = keras.random.uniform((batch, 1, 1, 1), 0.0, self.fat_pen, seed=self.seed_generator)
            chosen = keras.random.uniform((batch, 1, 1, 1), 0.0, 1.0, seed=self.seed_generator) < self.fat_share
            amount = amount + ops.where(chosen, fat, 0.0)
        # Pen widths from one erosion to the widest dilation; the amount is a position along them.
        levels = [-ops.max_pool(-images, 3, strides=1, padding="same"), images]
        for _ in range(math.ceil(self.max_change + self.fat_pen)):
            levels.append(ops.max_pool(levels[-1], 3, strides=1, padding="same"))
        position = ops.clip(amount, -1.0, len(levels) - 2.0) + 1.0
        return sum(ops.maximum(0.0, 1.0 - ops.abs(position - index)) * level for index, level in enumerate(levels))

    def get_config(self):
        return {**super().get_config(), "max_change": self.max_change, "seed": self.seed, "fat_pen": self.fat_pen,
                "fat_share": self.fat_share}


def _sample_bilinear(images, source_x, source_y):
    """Sample (B, H, W, 1) images at per-image coordinates (B, H, W), zero outside.

    keras.ops.image.map_coordinates would do this, but it needs the batch size
    known when the tf.data graph is traced, and the last batch is smaller.
    """
    batch, height, width = ops.shape(images)[0], images.shape[1], images.shape[2]
    flat = ops.reshape(images, (-1,))
    first = ops.reshape(ops.arange(batch) * height * width, (-1, 1, 1))
    x0, y0 = ops.floor(source_x), ops.floor(source_y)
    result = 0.0
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        x, y = x0 + dx, y0 + dy
        weight = (1.0 - ops.abs(source_x - x)) * (1.0 - ops.abs(source_y - y))
        inside = (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
        index = first + ops.cast(ops.clip(y, 0, height - 1) * width + ops.clip(x, 0, width - 1), "int32")
        result = result + ops.where(inside, weight * ops.take(flat, index), 0.0)
    return result[..., None]


@keras.saving.register_keras_serializable(package="digits")
class RandomDistortion(keras.layers.Layer):
    """Rotation, zoom, shear, shift and an elastic wobble in one resampling.

    Keras's RandomRotation, RandomZoom, RandomTranslation and
    RandomElasticTransform each resample the image; chained, their bilinear
    passes blur 28x28 strokes visibly (and the elastic layer draws one field
    per batch). Here the affine map and a smooth per-image displacement field
    (a coarse grid of random offsets, upsampled bicubically, as in Simard et
    al. 2003) are composed into one set of sampling coordinates, and
    samples them once.
    """

    def __init__(self, rotation_degrees=10.0, zoom=0.1, shift=0.1, shear=0.1, elastic=0.0, seed=None, aspect=0.0,
                 **kwargs):
        super().__init__(**kwargs)
        self.rotation_degrees, self.zoom, self.shift, self.shear = rotation_degrees, zoom, shift, shear
        self.elastic, self.seed, self.aspect = elastic, seed, aspect
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _uniform(self, shape, limit):
        return keras.random.uniform(shape, -limit, limit, seed=self.seed_generator)

    def call(self, images, training=True):
        if not training:
            return images
        batch = ops.shape(images)[0]
        height, width = images.shape[1], images.shape[2]
        angle = self._uniform((batch, 1, 1), self.rotation_degrees * math.pi / 180.0)
        scale = 1.0 + self._uniform((batch, 1, 1), self.zoom)  # >1 enlarges the digit
        shear = self._uniform((batch, 1, 1), self.shear)
        shift_x = self._uniform((batch, 1, 1), self.shift * width)
        shift_y = self._uniform((batch, 1, 1), self.shift * height)
        cos, sin = ops.cos(angle) / scale, ops.sin(angle) / scale
        # Output pixel p samples input pixel A (p - c - t) + c, A = R(-angle) Shear / scale.
        ys, xs = ops.meshgrid(ops.arange(height, dtype="float32"), ops.arange(width, dtype="float32"), indexing="ij")
        # Squeezed or stretched sideways (a narrow hand, a scan scaled to fill its box): x is divided by this.
        widen = ops.exp(self._uniform((batch, 1, 1), self.aspect)) if self.aspect > 0 else 1.0
        dx = (xs[None] - (width - 1) / 2.0 - shift_x) / widen
        dy = ys[None] - (height - 1) / 2.0 - shift_y
        source_x = cos * dx + (sin + cos * shear) * dy + (width - 1) / 2.0
        source_y = -sin * dx + (cos - sin * shear) * dy + (height - 1) / 2.0
        if self.elastic > 0:
            strength = keras.random.uniform((batch, 1, 1, 1), 0.0, self.elastic, seed=self.seed_generator)
            coarse = self._uniform((batch, ELASTIC_GRID, ELASTIC_GRID, 2), 1.0) * strength
            field = ops.image.resize(coarse, (height, width), interpolation="bicubic")
            source_x = source_x + field[..., 0]
            source_y = source_y + field[..., 1]
        return _sample_bilinear(images, source_x, source_y)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rotation_degrees": self.rotation_degrees, "zoom": self.zoom,
                "shift": self.shift, "shear": self.shear, "elastic": self.elastic, "seed": self.seed,
                "aspect": self.aspect}


@keras.saving.register_keras_serializable(package="digits")
class RandomBlur(keras.layers.Layer):
    """Soften the strokes by a random amount per image, as a camera or a soft pen does.

    Blends each image with its Gaussian blur (sigma 1 px) by a factor drawn
    from [0, max_amount], then restores the brightest pixel: preprocessing
    scales real inputs so that their strongest ink is full white.
    """

    def __init__(self, max_amount: float = 0.5, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.max_amount = max_amount
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training or self.max_amount <= 0:
            return images
        batch = ops.shape(images)[0]
        amount = keras.random.uniform((batch, 1, 1, 1), 0.0, self.max_amount, seed=self.seed_generator)
        blurred = images + amount * (ops.image.gaussian_blur(images, (5, 5), (1.0, 1.0)) - images)
        peak = ops.max(images, axis=(1, 2, 3), keepdims=True)
        return blurred * peak / ops.maximum(ops.max(blurred, axis=(1, 2, 3), keepdims=True), 1e-6)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "max_amount": self.max_amount, "seed": self.seed}


def build_augmenter(rotation_degrees: float, shift: float, zoom: float, stroke: float, seed: int,
                    shear: float = 0.1, elastic: float = 0.0, blur: float = 0.0, aspect: float = 0.0,
                    fat_pen: float = 0.0) -> keras.Sequential:
    """Pen-width, geometric, elastic and blur augmentation for uint8-valued 28x28x1 batches."""
    return keras.Sequential(
        [
            RandomStrokeWidth(stroke, seed=seed, fat_pen=fat_pen),
            RandomDistortion(rotation_degrees, zoom, shift, shear, elastic, seed=seed + 1, aspect=aspect),
            RandomBlur(blur, seed=seed + 2),
        ],
        name="augmentation",
    )
