"""tf.distribute: mirrored replicas, a 2-worker cluster on 127.0.0.1, a killed worker resuming from the backup.

The cluster tests start real `python -m training` processes with TF_CONFIG, as a user would on
two machines; the data is a small task made here, streamed from TFRecord shards.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench.distributed import free_ports, tf_config
from training.config import TrainConfig, build_parser, config_from_args
from training.data import Dataset, Split, save_cache
from training.distribute import (EXIT_WORKER_LOST, DistributeError, is_chief_task, prepare_backup,
                                 read_tf_config, scaled_learning_rate)
from training.shards import stream_arrays, write_shards

ROOT = Path(__file__).resolve().parents[1]
NO_AUGMENTATION = ["--rotation-degrees", "0", "--shift", "0", "--zoom", "0", "--stroke", "0", "--elastic", "0",
                   "--blur", "0"]


def bars(count, seed):
    """A vertical bar whose position says the digit, blurred by 0.8 px of noise: neighbours overlap,
    so accuracy lands well below 100% and differences between runs are visible."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, count).astype(np.uint8)
    x = np.zeros((count, 28, 28), np.uint8)
    for image, label in zip(x, y):
        left = int(np.clip(np.rint(4 + 2 * label + rng.normal(0, 0.8)), 0, 25))
        image[4:24, left:left + 2] = 255
    return Split(x, y)


def _env(cluster_config: str | None = None) -> dict:
    """The environment of a training process: this checkout, quiet logs, its own TF_CONFIG or none."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    env.update(CI="1", PYTHONPATH=str(ROOT))
    if cluster_config:
        env["TF_CONFIG"] = cluster_config
    return env


# --------------------------------------------------------------------------- configuration


def test_tf_config_is_checked_with_messages_that_say_how_to_fix_it():
    with pytest.raises(DistributeError, match="needs the TF_CONFIG environment variable.*host1:12345"):
        read_tf_config({})
    with pytest.raises(DistributeError, match="not valid JSON"):
        read_tf_config({"TF_CONFIG": "{cluster"})
    with pytest.raises(DistributeError, match="not in its cluster"):
        read_tf_config({"TF_CONFIG": tf_config([1, 2], 2)})
    assert read_tf_config({"TF_CONFIG": tf_config([1, 2], 1)})["task"] == {"type": "worker", "index": 1}


def test_only_the_chief_or_else_worker_0_writes():
    assert is_chief_task(None, None, None)
    assert is_chief_task("worker", 0, {"worker": ["a", "b"]})
    assert not is_chief_task("worker", 1, {"worker": ["a", "b"]})
    assert not is_chief_task("worker", 0, {"chief": ["c"], "worker": ["a"]})
    assert is_chief_task("chief", 0, {"chief": ["c"], "worker": ["a"]})


def test_learning_rate_follows_the_replicas():
    assert scaled_learning_rate(1e-3, 4, "linear") == pytest.approx(4e-3)
    assert scaled_learning_rate(1e-3, 4, "sqrt") == pytest.approx(2e-3)
    assert scaled_learning_rate(1e-3, 4, "none") == pytest.approx(1e-3)


def test_cli_offers_the_strategies_with_defaults_and_refuses_bad_combinations():
    help_text = build_parser().format_help()
    assert "--strategy {none,mirrored,multiworker}" in help_text and "(default: none)" in help_text
    config = config_from_args(build_parser().parse_args(["--strategy", "mirrored", "--cpu-devices", "2"]))
    assert (config.strategy, config.cpu_devices) == ("mirrored", 2)
    with pytest.raises(ValueError, match="strategy must be one of"):
        TrainConfig(strategy="horovod")
    with pytest.raises(ValueError, match="shards cannot be combined"):
        TrainConfig(shards=Path("s"), fine_tune=True)
    result = subprocess.run([sys.executable, "-m", "training", "--strategy", "multiworker", "--epochs", "1"],
                            cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "needs the TF_CONFIG environment variable" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_backup_of_another_configuration_is_not_resumed(tmp_path):
    folder = tmp_path / "backup"
    assert prepare_backup(folder, {"epochs": 5}, chief=True) == folder
    (folder / "latest.weights.h5").write_bytes(b"weights")
    assert prepare_backup(folder, {"epochs": 5}, chief=True) == folder and (folder / "latest.weights.h5").exists()
    elsewhere = prepare_backup(folder, {"epochs": 9}, chief=False)  # a worker: reads nothing of it
    assert elsewhere != folder and not any(elsewhere.iterdir()) and (folder / "latest.weights.h5").exists()
    assert prepare_backup(folder, {"epochs": 9}, chief=True) == folder  # the chief: removes it
    assert not (folder / "latest.weights.h5").exists()


# --------------------------------------------------------------------------- one process: resume after a crash


def test_an_interrupted_run_resumes_from_its_backup_and_keeps_the_whole_history(tmp_path):
    import keras

    from training.train import train

    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("power cut")

    config = TrainConfig(architecture="compact", epochs=4, batch_size=32, validation_size=100,
                         output=tmp_path / "m.keras", seed=3, rotation_degrees=0, shift=0, zoom=0, stroke=0,
                         elastic=0, blur=0)
    data = [Dataset("mnist", "toy", bars(600, 0), bars(200, 1))]
    with pytest.raises(RuntimeError, match="power cut"):
        train(config, extra_callbacks=[Crash()], datasets=data)
    backup = tmp_path / ".m.backup"
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 2
    assert not (tmp_path / "m.keras").exists()

    card = train(config, datasets=data)
    assert card.distribution["resumed_at_epoch"] == 3
    assert card.epochs_run == 4 and len(json.loads((tmp_path / "m.history.json").read_text())["loss"]) == 4
    assert not backup.exists()  # removed once training finished


# --------------------------------------------------------------------------- several replicas and workers


@pytest.fixture(scope="module")
def toy_cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cache")
    save_cache(Dataset("mnist", "toy", bars(4000, 0), bars(2000, 1)), folder)
    return folder


@pytest.fixture(scope="module")
def toy_shards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shards")
    train, test = bars(3000, 0), bars(1000, 1)
    write_shards(folder, {"mnist": ({"train": stream_arrays(train.x, train.y), "test": stream_arrays(test.x, test.y)},
                                    "bars")}, per_shard=1000, validation_every=10)
    return folder


def _train_cli(args, env=None, **popen):
    return subprocess.Popen([sys.executable, "-m", "training", "--architecture", "compact", "--batch-size", "32",
                             *NO_AUGMENTATION, *args], cwd=ROOT, env=env or _env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **popen)


def _finish(process, timeout=600):
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


def test_mirrored_over_two_cpu_devices_trains_as_well_as_one_device(tmp_path, toy_cache):
    common = ["--cache-dir", str(toy_cache), "--epochs", "3", "--validation-size", "500"]
    runs = {}
    for name, extra in {"none": [], "mirrored": ["--strategy", "mirrored", "--cpu-devices", "2"]}.items():
        code, output = _finish(_train_cli([*common, *extra, "--output", str(tmp_path / name / "m.keras")]))
        assert code == 0, output[-3000:]
        runs[name] = json.loads((tmp_path / name / "m.json").read_text())
    one, two = runs["none"], runs["mirrored"]
    assert (one["distribution"]["replicas"], two["distribution"]["replicas"]) == (1, 2)
    assert two["distribution"]["global_batch_size"] == 64 and two["distribution"]["peak_learning_rate"] == pytest.approx(
        2 * one["distribution"]["peak_learning_rate"])
    accuracy = {name: run["metrics"]["test_mnist"]["accuracy"] for name, run in runs.items()}
    print(f"test accuracy on 2,000 images, 3 epochs: {accuracy}")
    # 2,000 test images: one standard error of a difference is about 1.5 points at these accuracies.
    assert min(accuracy.values()) > 0.6  # far above chance (0.1): both really learnt
    assert abs(accuracy["none"] - accuracy["mirrored"]) <= 0.04


def test_two_workers_on_localhost_train_together_and_only_the_chief_writes(tmp_path, toy_shards):
    ports = free_ports(2)
    workers = [_train_cli(["--shards", str(toy_shards), "--epochs", "2", "--strategy", "multiworker",
                           "--backup-dir", str(tmp_path / "backup"), "--output", str(tmp_path / f"w{i}" / "m.keras")],
                          env=_env(tf_config(ports, i))) for i in range(2)]
    results = [_finish(worker) for worker in workers]
    for code, output in results:
        assert code == 0, output[-3000:]
    assert "Worker finished 2 epochs; the chief evaluates and saves the model." in results[1][1]
    sidecar = json.loads((tmp_path / "w0" / "m.json").read_text())
    assert sidecar["distribution"] == {"strategy": "multiworker", "replicas": 2, "global_batch_size": 64,
                                       "peak_learning_rate": pytest.approx(4e-3), "resumed_at_epoch": None}
    assert sidecar["epochs_run"] == 2 and sidecar["data"]["train"] == 2700
    assert sidecar["metrics"]["test_mnist"]["accuracy"] > 0.5
    assert not (tmp_path / "w1").exists() or not any((tmp_path / "w1").iterdir())  # worker 1 wrote nothing
    assert not (tmp_path / "backup").exists()  # the chief removed its backup at the end


def _backed_up_epoch(metadata: Path) -> int:
    """The epoch in BackupAndRestore's metadata; 0 while there is none (or it is being written)."""
    try:
        return json.loads(metadata.read_text())["epoch"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def _wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_worker_restarted_resumes_the_cluster_from_the_backup(tmp_path, toy_shards):
    ports = free_ports(2)
    backup = tmp_path / "backup"
    args = ["--shards", str(toy_shards), "--epochs", "5", "--strategy", "multiworker", "--backup-dir", str(backup),
            "--output", str(tmp_path / "m.keras")]

    def start(index):
        return _train_cli(args, env=_env(tf_config(ports, index)), start_new_session=True)

    workers = [start(0), start(1)]
    metadata = backup / "training_metadata.json"
    _wait_for(lambda: _backed_up_epoch(metadata) >= 2, 300, "the backup of epoch 2")
    os.killpg(workers[1].pid, signal.SIGKILL)
    workers[1].communicate()
    code, output = _finish(workers[0], timeout=300)
    # The survivor cannot finish alone: TensorFlow aborts its collectives, and it says what to do.
    assert code == EXIT_WORKER_LOST, output[-3000:]
    assert "Another worker of the cluster stopped responding" in output and "resume from the last backup" in output
    backed_up = _backed_up_epoch(metadata)
    assert backed_up >= 2
    assert not (tmp_path / "m.keras").exists()

    # Worker 1 pointed at another (empty) backup folder: both refuse instead of hanging at the end.
    mismatched = [start(0), _train_cli([*args, "--backup-dir", str(tmp_path / "elsewhere")],
                                       env=_env(tf_config(ports, 1)))]
    for code, output in [_finish(worker, timeout=300) for worker in mismatched]:
        assert code == 1 and "--backup-dir must be one folder that every worker sees" in output, output[-3000:]
    assert _backed_up_epoch(metadata) == backed_up  # the backup is still there
    assert not (tmp_path / "elsewhere").exists()  # worker 1 never writes a backup

    restarted = [start(0), start(1)]
    results = [_finish(worker) for worker in restarted]
    for code, output in results:
        assert code == 0, output[-3000:]
        assert f"Resuming from the backup in {backup} at epoch {backed_up + 1}" in output
        assert "Epoch 1/5" not in output
    sidecar = json.loads((tmp_path / "m.json").read_text())
    assert sidecar["distribution"]["resumed_at_epoch"] == backed_up + 1
    assert sidecar["epochs_run"] == 5 and len(sidecar["config"]) > 0
    assert not backup.exists()
