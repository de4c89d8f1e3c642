"""Where training runs: one device, every device of one machine, or a cluster of machines.

TensorFlow's tf.distribute does the work; this module only chooses and configures it:
  none         the default strategy (one device; TensorFlow still uses every CPU core);
  mirrored     MirroredStrategy: one replica per GPU of this machine (or per logical CPU
               device, see split_cpu), gradients all-reduced every step;
  multiworker  MultiWorkerMirroredStrategy: the same across machines, described by TF_CONFIG.

Only the chief (task "chief", else worker 0) writes: backups, the model, the registry.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from model.artifacts import atomic_write_json
from model.tf_runtime import native_output_silenced, quiet_logs

log = logging.getLogger(__name__)

STRATEGIES = ("none", "mirrored", "multiworker")
LR_SCALING = ("linear", "sqrt", "none")
# A worker whose peer died exits with this code (EX_TEMPFAIL): restart the cluster's failed
# workers and training resumes from the last backup.
EXIT_WORKER_LOST = 75


class DistributeError(RuntimeError):
    """The requested distribution cannot be set up; the message says how to fix it."""


class WorkerLostError(RuntimeError):
    """Another worker of the cluster stopped responding during training."""


# --------------------------------------------------------------------------- devices and TF_CONFIG


def split_cpu(count: int) -> None:
    """Present the CPU as `count` logical devices, so that `mirrored` has replicas without GPUs.

    The devices share the same cores: this is for trying and testing the mirrored path on a
    laptop, not for speed. TensorFlow fixes its devices when it first uses them, so this must
    run before anything else touches TensorFlow (the command line does it first).
    """
    if count <= 1:
        return
    with native_output_silenced():
        import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    if len(tf.config.get_logical_device_configuration(cpu) or ()) == count:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as error:
        raise DistributeError(
            f"Could not split the CPU into {count} devices: TensorFlow has already started ({error}). "
            "Pass --cpu-devices on the command line (python -m training), where it is applied first."
        ) from None


def read_tf_config(environ=os.environ) -> dict:
    """TF_CONFIG, checked: a cluster with workers (and maybe a chief), and this task in it."""
    text = environ.get("TF_CONFIG", "")
    example = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
               '"task": {"type": "worker", "index": 0}}')
    if not text.strip():
        raise DistributeError("--strategy multiworker needs the TF_CONFIG environment variable, which describes "
                              f"the cluster and this worker's place in it, e.g. TF_CONFIG='{example}'.")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise DistributeError(f"TF_CONFIG is not valid JSON ({error}); expected something like {example}.") from None
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise DistributeError(f"TF_CONFIG needs a 'cluster' and a 'task' object; expected something like {example}.")
    if not cluster.get("worker") and not cluster.get("chief"):
        raise DistributeError("TF_CONFIG's cluster lists no 'worker' (or 'chief') addresses.")
    kind, index = task.get("type"), task.get("index")
    members = cluster.get(kind)
    if kind not in ("chief", "worker") or not isinstance(index, int) or not members or not 0 <= index < len(members):
        raise DistributeError(
            f"TF_CONFIG's task {task} is not in its cluster {cluster}: the task type must be 'chief' or "
            "'worker', and its index must point into that list (0 for the first)."
        )
    return config


def is_chief_task(task_type: str | None, task_id: int | None, cluster: dict | None) -> bool:
    """The chief writes: task 'chief' if the cluster has one, else worker 0; a lone process always."""
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and not (cluster or {}).get("chief")


# --------------------------------------------------------------------------- strategies


def _multiworker_strategy_class(tf):
    class MultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        """MultiWorkerMirroredStrategy that Keras 3's fit() can use.

        Keras 3 reduces nested structures (a whole (x, y) batch) and scalar logs with axis=0
        through strategy.reduce; the multi-worker strategy refuses both
        (keras-team/keras#20585). Reducing leaf by leaf, scalars without an axis, is what fit
        means by those calls.
        """

        def reduce(self, reduce_op, value, axis):
            def leaf(v):
                local = self.experimental_local_results(v)[0]
                rank = getattr(getattr(local, "shape", None), "rank", None)
                return super(MultiWorkerStrategy, self).reduce(reduce_op, v, None if rank == 0 else axis)

            return tf.nest.map_structure(leaf, value)

    return MultiWorkerStrategy


def make_strategy(name: str, cpu_devices: int = 1):
    """The tf.distribute strategy called `name` (one of STRATEGIES).

    Call it before anything else uses TensorFlow: splitting the CPU and joining a cluster both
    configure how TensorFlow starts (the command line does so first).
    """
    if name not in STRATEGIES:
        raise DistributeError(f"Unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}.")
    quiet_logs()
    split_cpu(cpu_devices)
    with native_output_silenced():
        import tensorflow as tf
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        with native_output_silenced():  # device start-up notices
            devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
                      [d.name for d in tf.config.list_logical_devices("CPU")]
        if len(devices) == 1:
            log.warning("--strategy mirrored found one device (%s) and no GPUs: it trains like --strategy none. "
                        "Use it on a machine with several GPUs, or pass --cpu-devices 2 to try it.", devices[0])
        return tf.distribute.MirroredStrategy(devices)
    config = read_tf_config()
    logging.getLogger("tensorflow").setLevel(logging.WARNING)  # its per-step all-reduce notes
    log.info("Joining the cluster %s as %s %d; waiting for every worker to start",
             config["cluster"], config["task"]["type"], config["task"]["index"])
    try:
        return _multiworker_strategy_class(tf)()
    except RuntimeError as error:
        raise DistributeError(f"Could not join the cluster: {error}. The multi-worker strategy must be created "
                              "before anything else uses TensorFlow: run python -m training --strategy multiworker, "
                              "or call make_strategy first in your program.") from None


def is_chief(strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return is_chief_task(resolver.task_type, resolver.task_id, resolver.cluster_spec().as_dict())


def replicas(strategy) -> int:
    return int(strategy.num_replicas_in_sync)


def scaled_learning_rate(learning_rate: float, replica_count: int, scaling: str) -> float:
    """A larger global batch takes fewer, larger steps: raise the rate to match (warm-up keeps it stable)."""
    if scaling == "linear":
        return learning_rate * replica_count
    if scaling == "sqrt":
        return learning_rate * replica_count ** 0.5
    return learning_rate


def sharded_options(tf):
    """Every worker reads the whole input and keeps its share of the elements (AutoShardPolicy.DATA).

    DATA rather than FILE: it also works for in-memory arrays and for fewer files than workers.
    Workers must see the elements in the same order, which the seeded shuffles guarantee.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options


# --------------------------------------------------------------------------- backup and restore


def backup_dir_for(output: Path, backup_dir: Path | None) -> Path:
    """Backups live beside the model unless told otherwise; every worker must see the same folder."""
    return Path(backup_dir) if backup_dir is not None else Path(output).parent / f".{Path(output).stem}.backup"


def prepare_backup(directory: Path, fingerprint: dict, chief: bool) -> Path:
    """The folder BackupAndRestore should use: `directory`, unless its backup was made by another configuration.

    A backup of a different run (other epochs, data, batch size...) would resume the wrong
    training, so the chief deletes it and everyone starts afresh.
    """
    stamp = directory / "config.json"
    try:
        previous = json.loads(stamp.read_text())
    except FileNotFoundError:
        previous = None
    except (OSError, json.JSONDecodeError):
        previous = {}
    if previous is not None and previous != fingerprint:
        changed = sorted(k for k in set(previous) | set(fingerprint) if previous.get(k) != fingerprint.get(k))
        log.warning("Not resuming from the backup in %s: it was made by a run with other settings (%s). "
                    "Starting from scratch.", directory, ", ".join(changed) or "unreadable stamp")
        if not chief:  # the chief removes it; this worker must not read it meanwhile
            ignored = Path(tempfile.mkdtemp(prefix="digits-backup-ignored-"))
            atexit.register(shutil.rmtree, ignored, ignore_errors=True)  # only the chief writes: it stays empty
            return ignored
        shutil.rmtree(directory, ignore_errors=True)
    if chief:
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_json(stamp, fingerprint)
    return directory


def check_same_epoch(strategy, epoch: int) -> None:
    """Every worker must resume from the same epoch: otherwise they would run different numbers
    of steps and the cluster would hang at the end. One all-reduce tells."""
    import tensorflow as tf

    total = strategy.reduce(tf.distribute.ReduceOp.SUM,
                            strategy.run(lambda: tf.constant(epoch, tf.int64)), axis=None)
    if int(total) != epoch * replicas(strategy):
        raise DistributeError(
            f"The workers found different backups (this one would resume at epoch {epoch + 1}, the cluster's "
            f"average is {int(total) / replicas(strategy) + 1:g}): --backup-dir must be one folder that every worker "
            "sees, such as a shared volume. Point all of them at the same folder and start them again.")


def backup_callback(directory: Path, chief: bool, cluster_strategy=None):
    """BackupAndRestore that only the chief writes; every worker restores from the same folder.

    With `cluster_strategy` (multi-worker), the workers check that they restored the same epoch."""
    import keras

    class ChiefBackupAndRestore(keras.callbacks.BackupAndRestore):
        def __init__(self):
            # Two generations: a chief killed while writing leaves the previous one readable.
            super().__init__(str(directory), save_freq="epoch", double_checkpoint=True, delete_checkpoint=True)
            self.resumed_epoch = 0
            self.full_history: dict[str, list[float]] = {}  # the chief's, including epochs before a restart
            self._history_path = Path(directory) / "history.json"

        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            self.resumed_epoch = int(getattr(self.model, "_initial_epoch", 0) or 0)
            if cluster_strategy is not None:
                check_same_epoch(cluster_strategy, self.resumed_epoch)
            if self.resumed_epoch:
                try:
                    self.full_history = json.loads(self._history_path.read_text())
                except (OSError, json.JSONDecodeError):
                    self.full_history = {}
                log.info("Resuming from the backup in %s at epoch %d", directory, self.resumed_epoch + 1)

        def on_epoch_end(self, epoch, logs=None):
            if not chief:
                return
            for key, value in (logs or {}).items():
                self.full_history.setdefault(key, []).append(float(value))
            super().on_epoch_end(epoch, logs)
            atomic_write_json(self._history_path, self.full_history)

        def on_train_end(self, logs=None):
            if chief:
                super().on_train_end(logs)

    return ChiefBackupAndRestore()
