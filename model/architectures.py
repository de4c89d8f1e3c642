"""The one place that builds the CNN. Architectures are chosen by name.

Every architecture takes uint8-valued images (0..255, white digit on black) of
shape (INPUT_SIZE, INPUT_SIZE, 1) and scales them to [0, 1] with its own
Rescaling layer: that layer is the only place pixel scaling happens.
"""

from __future__ import annotations

from model.constants import INPUT_SIZE, NUM_CLASSES, PIXEL_MAX


def _keras():
    # Imported lazily so that `python -m model.predict --help` and the
    # preprocessing tests stay fast.
    import keras

    return keras


def _input_and_scaling(keras):
    inputs = keras.Input(shape=(INPUT_SIZE, INPUT_SIZE, 1), name="image")
    return inputs, keras.layers.Rescaling(1.0 / PIXEL_MAX, name="scale_to_unit")(inputs)


def _compact(keras):
    """The seed's light baseline: Conv32-Pool-Conv64-Pool-Conv128, Dense128."""
    layers = keras.layers
    inputs, x = _input_and_scaling(keras)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(128, 3, activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="compact")


def _conv_bn(layers, x, filters, kernel, strides=1, padding="same"):
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("relu")(x)


def _deep(keras):
    """The default: two conv blocks with batch norm and dropout, then a 4x4 head.

    Strided 5x5 convolutions downsample instead of pooling (learned pooling
    reads MNIST slightly better), and valid padding keeps it cheap enough to
    train on a 2-core CPU in well under an hour.
    """
    layers = keras.layers
    inputs, x = _input_and_scaling(keras)
    x = _conv_bn(layers, x, 32, 3, padding="valid")  # 26x26
    x = _conv_bn(layers, x, 32, 3, padding="valid")  # 24x24
    x = _conv_bn(layers, x, 32, 5, strides=2)  # 12x12
    x = layers.Dropout(0.4)(x)
    x = _conv_bn(layers, x, 64, 3, padding="valid")  # 10x10
    x = _conv_bn(layers, x, 64, 3, padding="valid")  # 8x8
    x = _conv_bn(layers, x, 64, 5, strides=2)  # 4x4
    x = layers.Dropout(0.4)(x)
    x = _conv_bn(layers, x, 128, 4, padding="valid")  # 1x1
    x = layers.Flatten()(x)
    x = layers.Dropout(0.4)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="deep")


ARCHITECTURES = {"compact": _compact, "deep": _deep}
DEFAULT_ARCHITECTURE = "deep"


def build_model(architecture: str = DEFAULT_ARCHITECTURE):
    """Return an uncompiled Keras model of the named architecture."""
    try:
        builder = ARCHITECTURES[architecture]
    except KeyError:
        raise ValueError(
            f"Unknown architecture {architecture!r}; expected one of {sorted(ARCHITECTURES)}."
        ) from None
    return builder(_keras())
