"""Monitoring during training: TensorBoard scalars and images, and a PNG grid from fixed latent vectors."""

import logging
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from ganforge.grids import encode_png, make_grid, to_uint8

logger = logging.getLogger(__name__)


class TensorBoardLogger:
    """Write loss scalars every `every_steps` steps and a sample image grid at every epoch end."""

    def __init__(self, log_dir: Path, every_steps: int = 20) -> None:
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
