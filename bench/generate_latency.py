"""Measure POST /generate against ONNX Runtime called directly on the same model, in one run.

The baseline is `InferenceSession.run` on the same latent vectors in this process; the service adds
seeding, PNG encoding, JSON parsing and HTTP on loopback. Results are ratios against that baseline.

    .venv/bin/python bench/generate_latency.py --models-dir models --model fashion-mnist-dcgan
"""

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx
import numpy as np
import onnxruntime

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))

from service_process import running_server  # noqa: E402 - the path is set just above.


def time_calls(call, repeats: int) -> float:
    """Return the median wall time of `call` in milliseconds, after two warm-up calls."""
    call()
    call()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(samples)


def measure(models_dir: Path, model: str, counts: list[int], repeats: int) -> list[dict]:
    folder = max((models_dir / model).iterdir(), key=lambda entry: int(entry.name) if entry.name.isdigit() else -1)
    latent_dim = json.loads((folder / "model.json").read_text())["latent_dim"]
    session = onnxruntime.InferenceSession(str(folder / "generator.onnx"), providers=["CPUExecutionProvider"])

    rows = []
    with tempfile.TemporaryDirectory() as log_dir, running_server(models_dir, Path(log_dir)) as server:
        with httpx.Client(base_url=server.url, timeout=60.0) as client:
            for count in counts:
                z = np.random.default_rng(0).standard_normal((count, latent_dim)).astype(np.float32)
                baseline = time_calls(lambda: session.run(None, {"z": z}), repeats)
                body = {"model": model, "seed": 0, "count": count}
                service = time_calls(lambda: client.post("/generate", json=body).raise_for_status(), repeats)
                rows.append({"count": count, "baseline_ms": baseline, "service_ms": service, "ratio": service / baseline})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=REPO_ROOT / "models")
    parser.add_argument("--model", default="fashion-mnist-dcgan")
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()

    rows = measure(args.models_dir, args.model, args.counts, args.repeats)
    sys.stdout.write(f"{date.today()} {platform.processor() or platform.machine()} onnxruntime {onnxruntime.__version__}\n")
    sys.stdout.write("| images | ONNX Runtime direct (ms) | POST /generate (ms) | ratio |\n| --- | --- | --- | --- |\n")
    for row in rows:
        sys.stdout.write(f"| {row['count']} | {row['baseline_ms']:.2f} | {row['service_ms']:.2f} | {row['ratio']:.1f}x |\n")


if __name__ == "__main__":
    main()
