"""Monitoring during training: TensorBoard scalars and images, and a PNG grid from fixed latent vectors."""

import logging
import os
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from ganforge.grids import encode_png, make_grid, to_uint8

logger = logging.getLogger(__name__)


def _wait_until_after_newest_event_file(log_dir: Path) -> None:
    # Event files are read in name order, and each name starts with its creation time in whole
    # seconds, so a file created in a later second sorts after every existing one.
    stamps = [int(path.name.split(".")[3]) for path in Path(log_dir).glob("events.out.tfevents.*")]
    newest = max(stamps, default=0)
    while int(time.time()) <= newest:
        time.sleep(0.05)


def write_session_start(log_dir: Path, step: int, restart: bool) -> None:
    """Record a (re)start of training at `step` as a SessionLog START event.

    A resumed run repeats the steps after its last checkpoint. TensorBoard treats the first START
    event as the run's start, and on each later one drops the events of earlier files whose step
    is at or after that START's step.
    """
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    if restart:
        _wait_until_after_newest_event_file(log_dir)

    marker = EventFileWriter(str(log_dir), filename_suffix=".start")
    marker.add_event(Event(wall_time=time.time(), step=step, session_log=SessionLog(status=SessionLog.START)))
    marker.close()

    if restart:
        _wait_until_after_newest_event_file(log_dir)


class TensorBoardLogger:
    """Write loss scalars every `every_steps` steps and a sample image grid at every epoch end."""

    def __init__(self, log_dir: Path, every_steps: int = 20, restart_step: int | None = None) -> None:
        write_session_start(log_dir, restart_step or 0, restart=restart_step is not None)
        self.writer = tf.summary.create_file_writer(str(log_dir))
        self.every_steps = every_steps

    def on_step_end(self, step: int, logs: dict[str, float]) -> None:
        if step % self.every_steps != 0:
            return
        with self.writer.as_default(step=step):
            for name, value in logs.items():
                tf.summary.scalar(f"loss/{name}" if name.endswith("loss") else f"discriminator/{name}", value)

    def on_epoch_end(self, epoch: int, step: int, grid: np.ndarray) -> None:
        with self.writer.as_default(step=step):
            tf.summary.image("samples", grid[np.newaxis], max_outputs=1)
            tf.summary.scalar("epoch", epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class SampleGrid:
    """Render the generator on fixed latent vectors, so grids from different epochs are comparable."""

    def __init__(self, latent_dim: int, count: int, seed: int, output_dir: Path) -> None:
        self.latents = np.random.default_rng(seed).standard_normal((count, latent_dim)).astype(np.float32)
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)

    def render(self, generator) -> np.ndarray:
        """Return the uint8 grid of the generator's images for the fixed latent vectors, in inference mode."""
        images = generator(self.latents, training=False)
        return make_grid(to_uint8(np.asarray(images)))

    def save(self, grid: np.ndarray, stem: str) -> Path:
        """Write the grid as samples/<stem>.png through a temporary file, and return its path."""
        path = self.output_dir / f"{stem}.png"
        partial = path.with_suffix(".png.partial")
        partial.write_bytes(encode_png(grid))
        os.replace(partial, path)
        logger.info("wrote sample grid %s", path)
        return path
