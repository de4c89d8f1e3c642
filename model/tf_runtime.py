"""Import TensorFlow once, without its start-up chatter on the terminal.

TensorFlow's C++ side prints oneDNN/CUDA notices to file descriptor 2 before
any logging setting applies (TF_CPP_MIN_LOG_LEVEL no longer silences them).
On a CPU machine they are noise that users read as errors, so the import and
the first device initialisation run with descriptor 2 pointed at /dev/null:
once per process, under a lock. Pointing a descriptor elsewhere silences every
thread of the process (every session of the app), so nothing else does it:
later chatter is quieted through the libraries' own settings.
Python exceptions are unaffected.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

# One at a time: two overlapping redirections could restore each other's /dev/null for good.
_REDIRECTING = threading.RLock()
_TENSORFLOW_LOCK = threading.Lock()


@contextlib.contextmanager
def native_output_silenced(descriptors: tuple[int, ...] = (2,)):
    """Point the given file descriptors at /dev/null (C++ code writes to them directly), one caller at a time.

    Process-wide: only for what happens once per process (see the module's doc)."""
    with _REDIRECTING:
        with _redirected(descriptors):
            yield


@contextlib.contextmanager
def _redirected(descriptors: tuple[int, ...]):
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


_tensorflow = None


def quiet_logs() -> None:
    """TensorFlow's and its converter's C++ logs: warnings and errors only. Read once, when TensorFlow starts,
    so every path that may start it calls this first."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def tensorflow():
    """The tensorflow module, imported and initialised quietly (once per process)."""
    global _tensorflow
    with _TENSORFLOW_LOCK:
        if _tensorflow is None:
            quiet_logs()  # the converter's and the runtime's later logs
            with native_output_silenced():
                import tensorflow as tf

                tf.config.list_logical_devices()  # device initialisation prints its notices here
            _tensorflow = tf
    return _tensorflow


def keras_module():
    """The keras module, after TensorFlow started quietly (importing Keras first would start it noisily)."""
    tensorflow()
    import keras

    return keras
