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
def _native_stderr_silenced():
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real descriptor 2 (some test runners)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@functools.cache
def tensorflow():
    """The tensorflow module, imported and initialised quietly."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _native_stderr_silenced():
        import tensorflow as tf

        tf.config.list_logical_devices()  # device initialisation prints its notices here
    return tf
