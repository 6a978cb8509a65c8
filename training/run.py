"""A whole training run: data, nets, checkpoints, monitoring, and generator.h5 with its run.json."""

import logging
import math
import time
from datetime import datetime, timezone

import keras
import tensorflow as tf
from tqdm import tqdm

from ganforge.errors import InputError
from training.callbacks import SampleGrid, TensorBoardLogger
from training.checkpoints import CheckpointStore
from training.config import TrainConfig
from training.run_folder import check_run_dir, read_run_record, save_generator, write_json_atomic
from training.data import load_training_images, make_dataset, steps_per_epoch
from training.models import build_discriminator, build_generator
from training.trainer import GANTrainer

logger = logging.getLogger(__name__)

class _Run:
    """The objects of one training run, built from its configuration."""

    def __init__(self, config: TrainConfig) -> None:
        keras.utils.set_random_seed(config.seed)
        self.config = config
        self.images = load_training_images(config)
        self.steps_per_epoch = steps_per_epoch(len(self.images), config.batch_size)
        generator = build_generator(config.latent_dim, config.image_size, config.channels, config.width)
        discriminator = build_discriminator(config.image_size, config.channels, config.width)
        self.trainer = GANTrainer(generator, discriminator, config.learning_rate, config.beta_1, config.seed)
        self.checkpoints = CheckpointStore(
            config.run_dir / "checkpoints", config.keep_checkpoints, **self.trainer.trackables()
        )
        self.tensorboard: TensorBoardLogger | None = None
        self.samples = SampleGrid(config.latent_dim, config.grid_size, config.seed, config.run_dir / "samples")

    @property
    def step(self) -> int:
        return int(self.trainer.step.numpy())

    @property
    def last_step(self) -> int:
        total = self.steps_per_epoch * self.config.epochs
        return min(total, self.config.max_steps) if self.config.max_steps else total

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """Train from the current step to the end of `epoch` (or to max_steps) and return the last losses."""
        skip = self.step - epoch * self.steps_per_epoch
        dataset = make_dataset(self.images, self.config.batch_size, self.config.seed, epoch, skip)
        remaining = min(self.steps_per_epoch, self.last_step - epoch * self.steps_per_epoch) - skip
        logs: dict[str, float] = {}
        if remaining <= 0:
            return logs
        progress = tqdm(
            dataset.take(remaining),
            total=self.steps_per_epoch,
            initial=skip,
            desc=f"epoch {epoch + 1}/{self.config.epochs}",
            unit="step",
            mininterval=1.0,
        )
        for batch in progress:
            logs = self.trainer.train_step(batch)
            if not all(math.isfinite(value) for value in logs.values()):
                raise RuntimeError(f"training diverged at step {self.step}: losses {logs}")
            progress.set_postfix({name: f"{value:.3f}" for name, value in logs.items()}, refresh=False)
            self.tensorboard.on_step_end(self.step, logs)
            if self.config.checkpoint_every and self.step % self.config.checkpoint_every == 0:
                self.checkpoints.save(self.step)
        progress.close()
        return logs

    def finish_epoch(self, epoch: int) -> None:
        """Write the sample grid, TensorBoard images, a checkpoint and generator.h5 after an epoch."""
        grid = self.samples.render(self.trainer.generator)
        # A run stopped by max_steps in the middle of an epoch names its grid by the step instead.
        epoch_done = self.step == (epoch + 1) * self.steps_per_epoch
        self.samples.save(grid, f"epoch_{epoch + 1:04d}" if epoch_done else f"step_{self.step:07d}")
        self.tensorboard.on_epoch_end(epoch + 1, self.step, grid)
        if self.checkpoints.latest is None or not self.checkpoints.latest.endswith(f"-{self.step}"):
            self.checkpoints.save(self.step)
        save_generator(self.trainer.generator, self.config.run_dir / "generator.h5")


def _run_record(run: _Run, logs: dict, wall_time: float) -> dict:
    config = run.config
    return {
        "name": config.name,
        "dataset": config.dataset,
        "image_count": len(run.images),
        "image_shape": [config.image_size, config.image_size, config.channels],
        "latent_dim": config.latent_dim,
        "training_steps": run.step,
        "epochs_completed": round(run.step / run.steps_per_epoch, 3),
        "steps_per_epoch": run.steps_per_epoch,
        "final_losses": logs,
        "wall_time_s": round(wall_time, 1),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "config": config.to_json(),
    }


def _start(config: TrainConfig, resume: bool) -> _Run:
    run = _Run(config)
    if resume:
        run.checkpoints.restore_latest()
        logger.info("resuming %s at step %d", config.name, run.step)
    else:
        write_json_atomic(config.run_dir / "config.json", config.to_json())

    # After a resume, TensorBoard drops the steps that the interrupted run logged after its checkpoint.
    restart_step = run.step + 1 if resume else None
    run.tensorboard = TensorBoardLogger(config.run_dir / "logs", config.log_every, restart_step)
    return run


def _save_interrupted(run: _Run, logs: dict, wall_time: float) -> None:
    if run.checkpoints.latest is None or not run.checkpoints.latest.endswith(f"-{run.step}"):
        run.checkpoints.save(run.step)
    record = _run_record(run, logs, wall_time) | {"interrupted": True}
    write_json_atomic(run.config.run_dir / "run.json", record)
    logger.warning("interrupted at step %d; saved a checkpoint; continue with --resume", run.step)


def train(config: TrainConfig, resume: bool = False) -> dict:
    """Train (or resume) the run in `config.run_dir` and return what it wrote to run.json.

    run.json is rewritten after every epoch and on Ctrl-C, with the wall time of all sessions.
    """
    config.run_dir.mkdir(parents=True, exist_ok=True)
    check_run_dir(config, resume)
    previous = read_run_record(config.run_dir) if resume else {}
    wall_before = float(previous.get("wall_time_s", 0.0))
    started = time.monotonic()

    run = _start(config, resume)
    if run.step >= run.last_step:
        logger.info("run %s is already at step %d of %d; nothing to train", config.name, run.step, run.last_step)
        run.tensorboard.close()
        return previous

    logs: dict[str, float] = {}
    try:
        first_epoch = run.step // run.steps_per_epoch
        for epoch in range(first_epoch, math.ceil(run.last_step / run.steps_per_epoch)):
            logs = run.train_epoch(epoch) or logs
            run.finish_epoch(epoch)
            logger.info("epoch %d done at step %d: %s", epoch + 1, run.step, logs)
            write_json_atomic(config.run_dir / "run.json", _run_record(run, logs, wall_before + time.monotonic() - started))
    except KeyboardInterrupt:
        _save_interrupted(run, logs, wall_before + time.monotonic() - started)
        raise
    finally:
        run.tensorboard.close()

    record = _run_record(run, logs, wall_before + time.monotonic() - started)
    write_json_atomic(config.run_dir / "run.json", record)
    logger.info("run %s finished at step %d; generator in %s", config.name, run.step, config.run_dir / "generator.h5")
    return record
