"""Loading a model never silences the process: the app serves every session from one process, on threads."""

import contextlib
import os
import sys
import threading


from model.artifacts import SHIPPED_MODEL


@contextlib.contextmanager
def descriptor_redirections():
    """The os.dup2 calls made inside (pointing a descriptor elsewhere silences every thread); only inside,
    since pytest's own output capture uses dup2 between a test's phases."""
    calls = []
    real = os.dup2

    def recording(fd, fd2, *args, **kwargs):
        calls.append((fd, fd2))
        return real(fd, fd2, *args, **kwargs)

    os.dup2 = recording
    try:
        yield calls
    finally:
        os.dup2 = real


def _same_file(fd: int, stat: os.stat_result) -> bool:
    now = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (stat.st_dev, stat.st_ino)


def test_loading_models_points_no_descriptor_elsewhere(recognizer):
    from model.inference import Recognizer

    with descriptor_redirections() as calls:
        for _ in range(3):  # the process's first load has happened (the fixture): none after it redirects anything
            Recognizer(SHIPPED_MODEL)
    assert calls == []


def test_converting_a_model_swaps_neither_stdout_nor_the_descriptors(stand_in_model, recognizer, capfd):
    """A model without its LiteRT export is converted when it loads (seconds of TensorFlow): meanwhile every
    other thread keeps its output, and none of the converter's chatter reaches stdout."""
    from model.inference import Recognizer
    from model.tf_runtime import tensorflow

    tensorflow()  # imported once per process, quietly: that once is allowed
    original, seen, done = sys.stdout, set(), threading.Event()

    def watch():
        while not done.is_set():
            seen.add(id(sys.stdout))
            done.wait(0.001)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with descriptor_redirections() as calls:
            Recognizer(stand_in_model)
    finally:
        done.set()
        watcher.join()
    assert seen == {id(original)} and calls == []
    assert capfd.readouterr().out == ""


def test_loads_at_once_leave_stdout_and_stderr_where_they_were(stand_in_model, recognizer):
    from model.inference import Recognizer

    before = {fd: os.fstat(fd) for fd in (1, 2)}
    errors = []

    def load(path):
        try:
            Recognizer(path)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=load, args=(path,)) for path in [stand_in_model, SHIPPED_MODEL] * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(_same_file(fd, stat) for fd, stat in before.items())


def test_the_app_keeps_a_bounded_number_of_models_in_memory(monkeypatch):
    import streamlit as st

    from ui import resources

    built = []
    monkeypatch.setattr(resources, "Recognizer", lambda path: built.append(path) or object())
    st.cache_resource.clear()
    try:
        for name in ["a", "b", "c", "d", "a"]:
            resources.load_recognizer(name, f"sha-{name}")
        resources.load_recognizer("d", "sha-d")  # recent: still loaded
    finally:
        st.cache_resource.clear()
    assert resources.LOADED_MODELS < 4
    assert built == ["a", "b", "c", "d", "a"]  # "a" had to be loaded again: the oldest are let go
