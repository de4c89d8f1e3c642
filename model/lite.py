"""The fast path: the Keras model as a LiteRT (TensorFlow Lite) flatbuffer.

One image through the TensorFlow runtime costs 1.5 ms on an idle core and
~80 ms when the browser is busy on the same two cores, because its thread
pools hand work between threads. LiteRT runs the same graph inline on the
calling thread in about 0.3 ms, with the same probabilities (to ~1e-8).
The interpreter is not thread-safe, so calls are serialised with a lock:
each is far shorter than any wait it could cause.

Training exports the flatbuffer beside the model (``digits.tflite``, its
SHA-256 in the sidecar), so reading digits needs neither TensorFlow nor Keras
and a process is ready in a fraction of a second; a model without the export
is converted in memory when it is loaded.
"""

from __future__ import annotations

import threading

import numpy as np

from model.constants import INPUT_SIZE
from model.tf_runtime import keras_module, native_output_silenced, tensorflow


def _float32_copy(keras_model):
    """The same model computing in float32: LiteRT cannot translate bfloat16 (mixed precision) graphs."""
    import keras

    def float32_layer(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    copy = keras.models.clone_model(keras_model, clone_function=float32_layer)
    copy.set_weights(keras_model.get_weights())  # mixed precision keeps its weights in float32 anyway
    return copy


def convert(keras_model) -> bytes:
    """A Keras model -> the LiteRT flatbuffer of the same graph and weights.

    Quiet through the libraries' own settings, in this thread only: the export Keras makes on the way prints
    its signature to stdout (which must stay clean for `model.predict --json`) unless Keras's interactive
    logging is off, a per-thread setting; the converter's C++ logs obey TF_CPP_MIN_LOG_LEVEL (set by
    tensorflow())."""
    tf = tensorflow()
    keras = keras_module()
    if any(layer.dtype_policy.name != "float32" for layer in keras_model.layers):
        keras_model = _float32_copy(keras_model)
    interactive = keras.config.is_interactive_logging_enabled()
    keras.config.disable_interactive_logging()  # to absl's log (quiet below WARNING) instead of stdout
    try:
        return tf.lite.TFLiteConverter.from_keras_model(keras_model).convert()
    finally:
        if interactive:
            keras.config.enable_interactive_logging()


# LiteRT announces its XNNPACK delegate on stderr the first time any interpreter in the process allocates
# (once per process; it has no setting to quiet it, and that delegate is 5x faster than none).
_FIRST_RUN = threading.Lock()
_announced = False


class LiteModel:
    def __init__(self, flatbuffer: bytes):
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_content=flatbuffer, num_threads=1)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._batch = None
        self._lock = threading.Lock()
        self._warm_up()

    def _warm_up(self) -> None:
        """The first run, which allocates; only the process's very first one is silenced, under a lock."""
        global _announced
        blank = np.zeros((1, INPUT_SIZE, INPUT_SIZE, 1), np.float32)
        with _FIRST_RUN:
            if not _announced:
                with native_output_silenced((2,)):
                    self(blank)
                _announced = True
                return
        self(blank)

    @classmethod
    def from_keras(cls, keras_model) -> LiteModel:
        return cls(convert(keras_model))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """(N, 28, 28, 1) float32 in 0..255 -> (N, 10) probabilities."""
        with self._lock:
            if len(batch) != self._batch:
                self._interpreter.resize_tensor_input(self._input, [len(batch), INPUT_SIZE, INPUT_SIZE, 1])
                self._interpreter.allocate_tensors()
                self._batch = len(batch)
            self._interpreter.set_tensor(self._input, batch)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output).copy()
