"""Checkpoints that hold both nets, both optimizers, the noise generator and the step counter."""

import logging
from pathlib import Path

import tensorflow as tf

logger = logging.getLogger(__name__)


class CheckpointStore:
    """Save and restore a training run's state under `directory`, keeping the newest `max_to_keep`.

    TensorFlow writes each checkpoint's files before it updates the `checkpoint` index file, so a
    run killed while saving still restores the previous checkpoint.
    """

    def __init__(self, directory: Path, max_to_keep: int = 3, **trackables) -> None:
        self.directory = Path(directory)
        self.checkpoint = tf.train.Checkpoint(**trackables)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.directory), max_to_keep=max_to_keep)

    @property
    def latest(self) -> str | None:
        """Path prefix of the newest checkpoint, or None when there is none."""
        return self.manager.latest_checkpoint

    def save(self, step: int) -> str:
        """Write a checkpoint numbered by the global training step and return its path prefix."""
        path = self.manager.save(checkpoint_number=step)
        logger.info("saved checkpoint %s at step %d", path, step)
        return path

    def restore_latest(self) -> str | None:
        """Restore the newest checkpoint into the tracked objects; return its path, or None when there is none."""
        path = self.latest
        if path is None:
            return None
        self.checkpoint.restore(path).assert_existing_objects_matched()
        logger.info("restored checkpoint %s", path)
        return path
