"""Training on real Fashion-MNIST images: one step, checkpoints and resume, TensorBoard events, CLI errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

from ganforge.errors import InputError
from training.config import TrainConfig, load_config
from training.data import load_fashion_mnist, scale_images
from training.models import build_discriminator, build_generator
from training.run import train
from training.trainer import GANTrainer


def small_config(data_dir, run_dir, **options) -> TrainConfig:
    values = dict(
        data_dir=data_dir, run_dir=run_dir, limit=96, batch_size=32, latent_dim=16,
        width=8, epochs=2, grid_size=4, seed=3,
    )
    values.update(options)
    return TrainConfig(**values)


def test_models_have_dcgan_shapes():
    generator = build_generator(latent_dim=16, width=8)
    discriminator = build_discriminator(width=8)

    assert generator.input_shape == (None, 16)
    assert generator.output_shape == (None, 28, 28, 1)
    assert discriminator.output_shape == (None, 1)


def test_one_step_on_real_images_is_finite(fashion_mnist_slice):
    images = scale_images(load_fashion_mnist(fashion_mnist_slice)[:24])
    trainer = GANTrainer(build_generator(16, width=8), build_discriminator(width=8), 2e-4, 0.5, seed=0)
    before = [weight.copy() for weight in trainer.generator.get_weights()]

    logs = trainer.train_step(images)

    assert set(logs) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(np.isfinite(value) for value in logs.values())
    assert int(trainer.step.numpy()) == 1
    after = trainer.generator.get_weights()
    assert any(not np.array_equal(old, new) for old, new in zip(before, after))


def test_run_writes_outputs(fashion_mnist_slice, tmp_path):
    record = train(small_config(fashion_mnist_slice, tmp_path / "run", epochs=1))

    run_dir = tmp_path / "run"
    assert record["training_steps"] == 3
    assert (run_dir / "generator.h5").is_file()
    assert (run_dir / "samples" / "epoch_0001.png").is_file()
    assert json.loads((run_dir / "run.json").read_text())["training_steps"] == 3
    assert not list(run_dir.glob("*.partial*"))


def test_tensorboard_events_read_back(fashion_mnist_slice, tmp_path):
    train(small_config(fashion_mnist_slice, tmp_path / "run", epochs=2, limit=64, log_every=2))

    events = EventAccumulator(str(tmp_path / "run" / "logs"), size_guidance={"tensors": 0}).Reload()
    tags = events.Tags()["tensors"]

    assert {"loss/d_loss", "loss/g_loss", "samples"} <= set(tags)
    steps = [event.step for event in events.Tensors("loss/d_loss")]
    assert steps == [2, 4]
    assert sorted(path.name for path in (tmp_path / "run" / "samples").iterdir()) == ["epoch_0001.png", "epoch_0002.png"]
    assert [event.step for event in events.Tensors("samples")] == [2, 4]
    assert np.isfinite(tf.make_ndarray(events.Tensors("loss/g_loss")[-1].tensor_proto))


def test_resume_continues_at_saved_step(fashion_mnist_slice, tmp_path):
    run_dir = tmp_path / "run"
    first = train(small_config(fashion_mnist_slice, run_dir, max_steps=4, checkpoint_every=2))
    assert first["training_steps"] == 4
    assert (run_dir / "samples" / "step_0000004.png").is_file()
    assert tf.train.latest_checkpoint(str(run_dir / "checkpoints")).endswith("ckpt-4")
    saved_weights = build_saved_generator_weights(run_dir)

    resumed = train(small_config(fashion_mnist_slice, run_dir), resume=True)

    assert resumed["training_steps"] == 6
    assert resumed["epochs_completed"] == 2
    assert tf.train.latest_checkpoint(str(run_dir / "checkpoints")).endswith("ckpt-6")
    final_weights = build_saved_generator_weights(run_dir)
    assert any(not np.array_equal(a, b) for a, b in zip(saved_weights, final_weights))


def build_saved_generator_weights(run_dir):
    import keras

    return keras.models.load_model(run_dir / "generator.h5", compile=False).get_weights()


def test_resume_restores_step_counter(fashion_mnist_slice, tmp_path):
    run_dir = tmp_path / "run"
    train(small_config(fashion_mnist_slice, run_dir, max_steps=2))

    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run_dir / "checkpoints")))
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 2


def test_resume_without_checkpoint_fails(fashion_mnist_slice, tmp_path):
    with pytest.raises(InputError, match="no checkpoint to resume"):
        train(small_config(fashion_mnist_slice, tmp_path / "run"), resume=True)


def test_new_run_refuses_existing_checkpoints(fashion_mnist_slice, tmp_path):
    train(small_config(fashion_mnist_slice, tmp_path / "run", max_steps=1))

    with pytest.raises(InputError, match="already has checkpoints; pass --resume"):
        train(small_config(fashion_mnist_slice, tmp_path / "run"))


def test_resume_with_other_latent_dim_fails(fashion_mnist_slice, tmp_path):
    train(small_config(fashion_mnist_slice, tmp_path / "run", max_steps=1))

    with pytest.raises(InputError, match="latent-dim=32"):
        train(small_config(fashion_mnist_slice, tmp_path / "run", latent_dim=32), resume=True)


def test_config_file_then_flags(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text('latent_dim = 32\nepochs = 5\nrun_dir = "runs/x"\n')

    config = load_config(path, {"epochs": 2, "width": None})

    assert (config.latent_dim, config.epochs, config.width) == (32, 2, 64)
    assert str(config.run_dir) == "runs/x"


def test_config_unknown_option(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text("latent_size = 32\n")

    with pytest.raises(InputError, match="unknown option 'latent_size'"):
        load_config(path, {})


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--data-dir", "/nonexistent/fashion"], "data folder not found: /nonexistent/fashion"),
        (["--epochs", "0"], "invalid epochs 0"),
        (["--dataset", "folder"], "dataset 'folder' needs --data-dir"),
        (["--config", "/nonexistent.toml"], "config file not found: /nonexistent.toml"),
        (["--seed", "-1"], "invalid seed -1: use an integer from 0 to 4294967295"),
        (["--epochs", "ten"], "argument --epochs: invalid int value: 'ten'"),
        (["--name", "my run"], "invalid run name 'my run'"),
    ],
)
def test_train_cli_rejects_bad_input(tmp_path, arguments, message):
    command = [sys.executable, "-m", "ganforge.cli", "train", "--run-dir", str(tmp_path / "run"), *arguments]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)

    assert result.returncode == 2
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("ganforge train: error:")]
    assert len(error_lines) == 1
    assert message in error_lines[0]


@pytest.mark.parametrize(
    "text, message",
    [
        ('epochs = "ten"', "invalid epochs 'ten' in"),
        ("data_dir = 5", "invalid data-dir 5 in"),
        ("limit = 1.5", "invalid limit 1.5 in"),
        ("learning_rate = true", "invalid learning-rate True in"),
        ("seed = -5", "invalid seed -5"),
    ],
)
def test_config_rejects_wrong_types(tmp_path, text, message):
    path = tmp_path / "train.toml"
    path.write_text(text + "\n")

    with pytest.raises(InputError, match=message):
        load_config(path, {})


def test_config_not_utf8(tmp_path):
    path = tmp_path / "train.toml"
    path.write_bytes(b"\xff\xfe")

    with pytest.raises(InputError, match="cannot read config file"):
        load_config(path, {})


def test_run_dir_under_a_file(tmp_path):
    (tmp_path / "afile").write_text("")

    with pytest.raises(InputError, match="is a file, not a folder"):
        load_config(None, {"run_dir": tmp_path / "afile" / "run"})


def test_resume_reuses_saved_options(fashion_mnist_slice, tmp_path):
    run_dir = tmp_path / "run"
    train(small_config(fashion_mnist_slice, run_dir, max_steps=2))
    command = [
        sys.executable, "-m", "ganforge.cli", "train", "--run-dir", str(run_dir), "--resume", "--max-steps", "4",
    ]

    result = subprocess.run(command, capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((run_dir / "run.json").read_text())["training_steps"] == 4


def test_resume_past_max_steps_trains_nothing(fashion_mnist_slice, tmp_path):
    run_dir = tmp_path / "run"
    first = train(small_config(fashion_mnist_slice, run_dir, max_steps=4))

    again = train(small_config(fashion_mnist_slice, run_dir, max_steps=3), resume=True)

    assert again == first
    assert tf.train.latest_checkpoint(str(run_dir / "checkpoints")).endswith("ckpt-4")


def test_wall_time_accumulates_over_resume(fashion_mnist_slice, tmp_path):
    run_dir = tmp_path / "run"
    first = train(small_config(fashion_mnist_slice, run_dir, max_steps=3))

    second = train(small_config(fashion_mnist_slice, run_dir, max_steps=6), resume=True)

    assert second["wall_time_s"] > first["wall_time_s"]


def test_resume_purges_repeated_tensorboard_steps(fashion_mnist_slice, tmp_path):
    run_dir = tmp_path / "run"
    train(small_config(fashion_mnist_slice, run_dir, max_steps=5, log_every=1, checkpoint_every=2))
    # Pretend the run died after step 5 but its newest checkpoint is the one of step 4.
    for path in (run_dir / "checkpoints").glob("ckpt-5*"):
        path.unlink()
    (run_dir / "checkpoints" / "checkpoint").write_text(
        'model_checkpoint_path: "ckpt-4"\nall_model_checkpoint_paths: "ckpt-4"\n'
    )

    train(small_config(fashion_mnist_slice, run_dir, max_steps=6, log_every=1, checkpoint_every=2), resume=True)

    events = EventAccumulator(str(run_dir / "logs"), size_guidance={"tensors": 0}).Reload()
    steps = [event.step for event in events.Tensors("loss/d_loss")]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_resume_with_damaged_run_json(fashion_mnist_slice, tmp_path):
    run_dir = tmp_path / "run"
    train(small_config(fashion_mnist_slice, run_dir, max_steps=1))
    (run_dir / "run.json").write_text("[1]")

    with pytest.raises(InputError, match="expected a JSON object"):
        train(small_config(fashion_mnist_slice, run_dir), resume=True)


def test_resume_without_config_json(fashion_mnist_slice, tmp_path):
    run_dir = tmp_path / "run"
    train(small_config(fashion_mnist_slice, run_dir, max_steps=1))
    (run_dir / "config.json").unlink()

    with pytest.raises(InputError, match="config.json is missing"):
        train(small_config(fashion_mnist_slice, run_dir), resume=True)


def test_ctrl_c_saves_checkpoint_and_run_json(fashion_mnist_slice, tmp_path):
    import signal
    import time

    run_dir = tmp_path / "run"
    command = [
        sys.executable, "-m", "ganforge.cli", "train", "--data-dir", str(fashion_mnist_slice), "--run-dir", str(run_dir),
        "--batch-size", "8", "--width", "8", "--latent-dim", "16", "--epochs", "100", "--log-every", "1",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    # Wait until training has logged a few steps, then press Ctrl-C.
    while time.monotonic() < deadline and len(list((run_dir / "logs").glob("*.v2"))) == 0:
        time.sleep(0.2)
    time.sleep(3)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 130, stderr[-2000:]
    assert "continue with --resume" in stderr
    record = json.loads((run_dir / "run.json").read_text())
    assert record["interrupted"] is True
    assert record["training_steps"] > 0
    checkpoint = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    assert checkpoint.endswith(f"ckpt-{record['training_steps']}")
