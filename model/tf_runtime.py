"""Import TensorFlow once, without its start-up chatter on the terminal.

TensorFlow's C++ side prints oneDNN/CUDA notices to file descriptor 2 before
any logging setting applies (TF_CPP_MIN_LOG_LEVEL no longer silences them).
On a CPU machine they are noise that users read as errors, so the import and
the first device initialisation run with descriptor 2 pointed at /dev/null.
Python exceptions are unaffected.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys


@contextlib.contextmanager
def native_output_silenced(descriptors: tuple[int, ...] = (2,)):
    """Point the given file descriptors at /dev/null (C++ code writes to them directly)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(fd) for fd in descriptors]
    except (OSError, ValueError):  # no real descriptors (some test runners)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in descriptors:
            os.dup2(devnull, fd)
        yield
    finally:
        sys.stdout.flush()
        for fd, copy in zip(descriptors, saved):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


@functools.cache
def tensorflow():
    """The tensorflow module, imported and initialised quietly."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_output_silenced():
        import tensorflow as tf

        tf.config.list_logical_devices()  # device initialisation prints its notices here
    return tf


def keras_module():
    """The keras module, after TensorFlow started quietly (importing Keras first would start it noisily)."""
    tensorflow()
    import keras

    return keras
