"""HTTP tests of the service: a real `ganforge serve` subprocess serving real ONNX generators."""

import base64
import concurrent.futures
import io
import json
import math
import re
import os
import shutil
import socket
import subprocess
import sys

import httpx
import numpy as np
import pytest
from PIL import Image

from onnx_models import replace_with_fifo, write_model, write_model_with_invalid_json, write_model_with_metadata
from service_process import REPO_ROOT, free_port, running_server

LATENT_DIM = 8


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the read-only tests: digits v1 and v2, an RGB model, a batch-one model and a broken one."""
    root = tmp_path_factory.mktemp("service")
    models_dir = root / "models"
    write_model(models_dir, "digits", 1, seed=1)
    write_model(models_dir, "digits", 2, seed=2)
    write_model(models_dir, "colors", 1, latent_dim=16, image_shape=(12, 10, 3), seed=3)
    write_model(models_dir, "fragile", 1, batch_size=1)
    write_model_with_invalid_json(models_dir, "broken", 1)

    frontend_dir = root / "frontend"
    frontend_dir.mkdir()
    (frontend_dir / "index.html").write_text("<!doctype html><title>ganforge</title>", encoding="utf-8")

    with running_server(models_dir, root, frontend_dir=frontend_dir) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        yield http


def decode_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def generate(client, body: dict, **params) -> httpx.Response:
    return client.post("/generate", json=body, params=params)


def metric_value(text: str, name: str, **labels: str) -> float:
    """Return one sample's value from Prometheus text, or 0 when the series does not exist yet."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name + "{"):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# Health, readiness and the model list


def test_health_reports_loaded_count(client):
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "models": 4}


def test_ready_with_models(client):
    response = client.get("/ready")

    assert response.status_code == 200
    assert response.json()["status"] == "ready"


def test_ready_without_models_returns_503(tmp_path):
    models_dir = tmp_path / "empty-models"
    models_dir.mkdir()

    with running_server(models_dir, tmp_path) as running:
        response = httpx.get(f"{running.url}/ready")
        health = httpx.get(f"{running.url}/health")

    assert response.status_code == 503
    assert "no model is loaded" in response.json()["detail"]
    assert str(models_dir) in response.json()["detail"]
    assert health.status_code == 200
    assert health.json()["models"] == 0


def test_models_lists_each_version(client):
    body = client.get("/models").json()

    keys = [(entry["name"], entry["version"]) for entry in body["models"]]
    assert keys == [("colors", 1), ("digits", 1), ("digits", 2), ("fragile", 1)]


def test_models_entry_fields(client):
    entries = client.get("/models").json()["models"]
    digits = next(entry for entry in entries if entry["name"] == "digits" and entry["version"] == 2)

    assert digits["latent_dim"] == LATENT_DIM
    assert digits["image_shape"] == [28, 28, 1]
    assert digits["value_range"] == [-1.0, 1.0]
    assert digits["dataset"] == "test-noise"
    assert digits["training_steps"] == 0
    assert digits["created"] == "2024-01-01T00:00:00+00:00"
    assert digits["providers"] == ["CPUExecutionProvider"]
    assert digits["versions"] == [1, 2]


def test_models_lists_broken_folder(client):
    errors = client.get("/models").json()["errors"]

    assert [error["path"] for error in errors] == ["broken/1"]
    assert "model.json" in errors[0]["error"]


def test_broken_model_does_not_block_others(client):
    response = generate(client, {"model": "broken"})
    working = generate(client, {"model": "digits", "seed": 1})

    assert response.status_code == 404
    assert working.status_code == 200


def test_server_log_names_loaded_models(server):
    log = server.log()

    assert "loaded model digits version 1" in log
    assert "loaded model digits version 2" in log
    assert "failed to load model broken version 1" in log


def test_frontend_served_at_root(client):
    response = client.get("/")

    assert response.status_code == 200
    assert "<title>ganforge</title>" in response.text


# Generation


def test_generate_single_png(client):
    response = generate(client, {"model": "digits", "seed": 7})

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-model"] == "digits"
    assert response.headers["x-model-version"] == "2"
    assert response.headers["x-seed"] == "7"
    image = decode_png(response.content)
    assert image.size == (28, 28)
    assert image.mode == "L"


@pytest.mark.parametrize("count", [4, 9, 5])
def test_generate_grid_size(client, count):
    response = generate(client, {"model": "digits", "seed": 7, "count": count})

    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    image = decode_png(response.content)
    assert response.status_code == 200
    assert image.size == (columns * 28 + (columns + 1) * 2, rows * 28 + (rows + 1) * 2)


def test_generate_rgb_model(client):
    response = generate(client, {"model": "colors", "seed": 1})

    image = decode_png(response.content)
    assert image.size == (10, 12)
    assert image.mode == "RGB"


def test_generate_pinned_version(client):
    latest = generate(client, {"model": "digits", "seed": 3})
    first = generate(client, {"model": "digits", "version": 1, "seed": 3})

    assert first.headers["x-model-version"] == "1"
    assert first.content != latest.content


def test_same_seed_gives_identical_bytes(client):
    first = generate(client, {"model": "digits", "seed": 42, "count": 4})
    second = generate(client, {"model": "digits", "seed": 42, "count": 4})

    assert first.content == second.content


def test_different_seed_gives_different_bytes(client):
    first = generate(client, {"model": "digits", "seed": 42})
    second = generate(client, {"model": "digits", "seed": 43})

    assert first.content != second.content


def test_concurrent_requests_match(server):
    def fetch(seed: int) -> bytes:
        return httpx.post(f"{server.url}/generate", json={"model": "digits", "seed": seed, "count": 4}).content

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(fetch, [31, 32] * 8))

    assert len(set(results[0::2])) == 1
    assert len(set(results[1::2])) == 1
    assert results[0] != results[1]


def test_random_seed_is_reported_and_reproducible(client):
    response = generate(client, {"model": "digits"})

    seed = int(response.headers["x-seed"])
    assert 0 <= seed <= 2**63 - 1
    assert generate(client, {"model": "digits", "seed": seed}).content == response.content


def test_json_format_fields(client):
    response = generate(client, {"model": "digits", "seed": 5, "count": 4}, format="json")

    body = response.json()
    assert response.status_code == 200
    assert body["model"] == "digits"
    assert body["version"] == 2
    assert body["seed"] == 5
    assert len(body["images"]) == 4
    assert decode_png(base64.b64decode(body["images"][0])).size == (28, 28)
    assert decode_png(base64.b64decode(body["grid"])).size == (62, 62)
    assert np.array(body["latents"]).shape == (4, LATENT_DIM)


def test_json_latents_follow_seed_rule(client):
    body = generate(client, {"model": "digits", "seed": 11, "count": 2}, format="json").json()

    expected = np.random.default_rng(11).standard_normal((2, LATENT_DIM)).astype(np.float32)
    np.testing.assert_array_equal(np.array(body["latents"], dtype=np.float32), expected)


def test_json_grid_matches_png_response(client):
    body = generate(client, {"model": "digits", "seed": 8, "count": 4}, format="json").json()
    png = generate(client, {"model": "digits", "seed": 8, "count": 4}).content

    assert base64.b64decode(body["grid"]) == png


def test_z_reproduces_seed_image(client):
    seeded = generate(client, {"model": "digits", "seed": 21}, format="json").json()
    flat = generate(client, {"model": "digits", "z": seeded["latents"][0]})

    assert flat.status_code == 200
    assert "x-seed" not in flat.headers
    assert flat.content == base64.b64decode(seeded["images"][0])


def test_z_batch_reproduces_seed_grid(client):
    seeded = generate(client, {"model": "digits", "seed": 22, "count": 4}, format="json").json()
    batch = generate(client, {"model": "digits", "z": seeded["latents"], "count": 4}, format="json").json()

    assert batch["seed"] is None
    assert batch["grid"] == seeded["grid"]
    assert batch["images"] == seeded["images"]


def test_generation_error_returns_500(client, server):
    # The "fragile" graph reshapes to a batch of one, so onnxruntime fails on two latent vectors.
    response = generate(client, {"model": "fragile", "seed": 1, "count": 2})

    assert response.status_code == 500
    assert "fragile/1" in response.json()["detail"]
    assert "generation failed: onnxruntime failed to run model fragile/1" in server.log()


# Metrics


def test_metrics_count_requests_and_images(client):
    before = client.get("/metrics").text
    generate(client, {"model": "digits", "seed": 1, "count": 3})
    response = client.get("/metrics")

    after = response.text
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    requests = {"method": "POST", "path": "/generate", "status": "200"}
    images = {"model": "digits", "version": "2"}
    assert metric_value(after, "ganforge_http_requests_total", **requests) == metric_value(
        before, "ganforge_http_requests_total", **requests
    ) + 1
    assert metric_value(after, "ganforge_images_generated_total", **images) == metric_value(
        before, "ganforge_images_generated_total", **images
    ) + 3
    assert metric_value(after, "ganforge_generation_seconds_count", **images) == metric_value(
        before, "ganforge_generation_seconds_count", **images
    ) + 1
    assert metric_value(after, "ganforge_generation_seconds_sum", **images) > 0


def test_metrics_count_rejected_requests(client):
    generate(client, {"model": "digits", "count": 0})
    text = client.get("/metrics").text

    assert metric_value(text, "ganforge_http_requests_total", method="POST", path="/generate", status="422") >= 1


def test_metrics_text_format(client):
    text = client.get("/metrics").text

    sample = re.compile(r'^[a-z_]+(\{([a-z_]+="[^"]*",?)*\})? [0-9.e+-]+$')
    for line in text.splitlines():
        assert line.startswith("# ") or sample.match(line), line


# Reload


def test_reload_adds_and_removes_models(tmp_path):
    models_dir = tmp_path / "models"
    write_model(models_dir, "first", 1)

    with running_server(models_dir, tmp_path) as running, httpx.Client(base_url=running.url) as http:
        write_model(models_dir, "second", 1)
        added = http.post("/models/reload").json()
        served = generate(http, {"model": "second", "seed": 1})

        shutil.rmtree(models_dir / "first")
        removed = http.post("/models/reload").json()
        after_removal = generate(http, {"model": "first", "seed": 1})
        log = running.log()

    assert added["changes"]["loaded"] == ["second/1"]
    assert [entry["name"] for entry in added["models"]] == ["first", "second"]
    assert served.status_code == 200
    assert removed["changes"]["unloaded"] == ["first/1"]
    assert [entry["name"] for entry in removed["models"]] == ["second"]
    assert after_removal.status_code == 404
    assert "loaded model second version 1" in log
    assert "unloaded model first version 1" in log


def test_reload_ignores_export_in_progress(tmp_path):
    models_dir = tmp_path / "models"
    write_model(models_dir, "first", 1)

    with running_server(models_dir, tmp_path) as running:
        write_model(models_dir / "first", ".2-partial", 1)
        body = httpx.post(f"{running.url}/models/reload").json()

    assert body["changes"] == {"loaded": [], "unloaded": [], "reloaded": [], "failed": []}
    assert body["errors"] == []


# A model repository with broken folders


def write_broken_folders(models_dir) -> list[str]:
    """Write folders that once stopped the whole scan, and return their paths as GET /models lists them."""
    write_model_with_metadata(models_dir, "typed", 1, dataset=5, training_steps="many", created=123)
    write_model_with_metadata(models_dir, "steps", 1, training_steps=1.5)
    write_model_with_metadata(models_dir, "booleans", 1, value_range=[False, True])
    write_model_with_metadata(models_dir, "overflow", 1, value_range=[-1, 10**400])
    write_model_with_metadata(models_dir, "wide", 1, latent_dim=1099511627776)
    os.symlink("loop", models_dir / "loop")
    looped = write_model(models_dir, "looped", 1)
    (looped / "model.json").unlink()
    os.symlink("model.json", looped / "model.json")
    replace_with_fifo(write_model(models_dir, "piped", 1) / "model.json")
    return ["booleans/1", "loop", "looped/1", "overflow/1", "piped/1", "steps/1", "typed/1", "wide/1"]


def test_broken_folders_do_not_stop_startup(tmp_path):
    models_dir = tmp_path / "models"
    write_model(models_dir, "digits", 1)
    broken = write_broken_folders(models_dir)

    with running_server(models_dir, tmp_path) as running, httpx.Client(base_url=running.url, timeout=30) as http:
        models = http.get("/models")
        generated = generate(http, {"model": "digits", "seed": 1})

    errors = {error["path"]: error["error"] for error in models.json()["errors"]}
    assert models.status_code == 200
    assert [entry["name"] for entry in models.json()["models"]] == ["digits"]
    assert sorted(errors) == broken
    assert "invalid dataset 5" in errors["typed/1"]
    assert "invalid training_steps 1.5" in errors["steps/1"]
    assert "invalid value_range [False, True]" in errors["booleans/1"]
    assert "invalid value_range [-1, 1000000" in errors["overflow/1"]
    assert "invalid latent_dim 1099511627776" in errors["wide/1"]
    assert "Too many levels of symbolic links" in errors["loop"]
    assert "Too many levels of symbolic links" in errors["looped/1"]
    assert errors["piped/1"] == "model.json is a FIFO: expected a regular file"
    assert generated.status_code == 200


def test_reload_with_broken_folders(tmp_path):
    models_dir = tmp_path / "models"
    write_model(models_dir, "digits", 1)

    with running_server(models_dir, tmp_path) as running, httpx.Client(base_url=running.url, timeout=30) as http:
        broken = write_broken_folders(models_dir)
        reload = http.post("/models/reload")
        models = http.get("/models")
        generated = generate(http, {"model": "digits", "seed": 1})
        log = running.log()

    assert reload.status_code == 200
    assert sorted(reload.json()["changes"]["failed"]) == broken
    assert models.status_code == 200
    assert sorted(error["path"] for error in models.json()["errors"]) == broken
    assert generated.status_code == 200
    assert "failed to load model typed version 1" in log


def test_missing_models_dir_loaded_by_reload(tmp_path):
    models_dir = tmp_path / "models"

    with running_server(models_dir, tmp_path) as running, httpx.Client(base_url=running.url) as http:
        before = http.get("/ready")
        write_model(models_dir, "digits", 1)
        reload = http.post("/models/reload")
        after = http.get("/ready")

    assert before.status_code == 503
    assert reload.json()["changes"]["loaded"] == ["digits/1"]
    assert after.status_code == 200


# Command line errors of `ganforge serve`


def run_serve(*arguments: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `ganforge serve` with arguments that must make it fail at startup, and return its result."""
    command = [sys.executable, "-m", "ganforge.cli", "serve", *arguments]
    process_env = dict(os.environ, **(env or {}))
    return subprocess.run(command, cwd=REPO_ROOT, env=process_env, capture_output=True, text=True, timeout=60)


def assert_one_error_line(result: subprocess.CompletedProcess, fragment: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ganforge serve: error: "), result.stderr
    assert fragment in lines[0]


def test_serve_port_in_use(tmp_path):
    models_dir = tmp_path / "models"
    write_model(models_dir, "digits", 1)
    port = free_port()

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other_server:
        other_server.bind(("127.0.0.1", port))
        other_server.listen()
        result = run_serve("--models-dir", str(models_dir), "--host", "127.0.0.1", "--port", str(port))

    assert_one_error_line(
        result, f"cannot listen on 127.0.0.1:{port}: address already in use; stop the other server or pass --port"
    )


@pytest.mark.parametrize("port", ["99999", "-1", "0"])
def test_serve_invalid_port_option(tmp_path, port):
    result = run_serve("--models-dir", str(tmp_path), "--host", "127.0.0.1", "--port", port)

    assert_one_error_line(result, f"invalid port {port}")
    assert "from 1 to 65535" in result.stderr


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_serve_invalid_port_variable(tmp_path, port):
    result = run_serve("--models-dir", str(tmp_path), "--host", "127.0.0.1", env={"PORT": port})

    assert_one_error_line(result, f"invalid port {port}: use a TCP port from 1 to 65535")


def test_serve_empty_provider_list(tmp_path):
    result = run_serve("--models-dir", str(tmp_path), "--port", str(free_port()), "--providers", ",")

    assert_one_error_line(result, "no execution provider in ','")


def test_serve_models_dir_is_file(tmp_path):
    models_file = tmp_path / "models.txt"
    models_file.write_text("not a folder\n", encoding="utf-8")

    result = run_serve("--models-dir", str(models_file), "--host", "127.0.0.1", "--port", str(free_port()))

    assert_one_error_line(result, f"model repository {models_file} is not a folder")


# Invalid requests

VALID_Z = [0.0] * LATENT_DIM

INVALID_REQUESTS = [
    # (case id, JSON body, query parameters, status code, text the detail must contain)
    ("name with slash", {"model": "../digits"}, {}, 422, "'../digits'"),
    ("name with space", {"model": "dig its"}, {}, 422, "'dig its'"),
    ("empty name", {"model": ""}, {}, 422, "invalid model name ''"),
    ("name too long", {"model": "a" * 129}, {}, 422, "a" * 129),
    ("name not a string", {"model": 5}, {}, 422, "got 5"),
    ("missing model", {"seed": 1}, {}, 422, "model: required field is missing"),
    ("unknown model", {"model": "faces"}, {}, 404, "'faces'"),
    ("unknown version", {"model": "digits", "version": 9}, {}, 404, "version 9"),
    ("version zero", {"model": "digits", "version": 0}, {}, 422, "got 0"),
    ("z too short", {"model": "digits", "z": [0.0] * 3}, {}, 422, "length 3"),
    ("z too long", {"model": "digits", "z": [[0.0] * 9]}, {}, 422, "z[0] has length 9"),
    ("z empty", {"model": "digits", "z": []}, {}, 422, "z is []"),
    ("z empty vector", {"model": "digits", "z": [[]]}, {}, 422, "z[0] is []"),
    ("z not a list", {"model": "digits", "z": 5}, {}, 422, "z is 5"),
    ("z mixed nesting", {"model": "digits", "z": [0.5, [0.5]]}, {}, 422, "z[1] is [0.5]"),
    ("z row not a list", {"model": "digits", "z": [VALID_Z, 0.5]}, {}, 422, "z[1] is 0.5"),
    ("z too many vectors", {"model": "digits", "z": [VALID_Z] * 65}, {}, 422, "65 latent vectors"),
    ("z above float32", {"model": "digits", "z": [1e39] + VALID_Z[1:]}, {}, 422, "z[0] is 1e+39"),
    ("z of strings", {"model": "digits", "z": ["a"] * 8}, {}, 422, "z[0] is 'a'"),
    ("z of booleans", {"model": "digits", "z": [True] * 8}, {}, 422, "z[0] is True"),
    ("z integer beyond float", {"model": "digits", "z": [10**400] + VALID_Z[1:]}, {}, 422, "z[0] is 1000000"),
    ("z batch integer beyond float", {"model": "digits", "z": [VALID_Z, [-(10**400)] + VALID_Z[1:]]}, {}, 422,
     "z[1][0] is -1000000"),
    ("count zero", {"model": "digits", "count": 0}, {}, 422, "got 0"),
    ("count too large", {"model": "digits", "count": 65}, {}, 422, "got 65"),
    ("count as string", {"model": "digits", "count": "3"}, {}, 422, "got '3'"),
    ("seed and z", {"model": "digits", "seed": 1, "z": VALID_Z}, {}, 422, "either seed or z"),
    ("count not matching z", {"model": "digits", "z": [VALID_Z] * 2, "count": 3}, {}, 422, "count 3"),
    ("negative seed", {"model": "digits", "seed": -1}, {}, 422, "got -1"),
    ("seed above int64", {"model": "digits", "seed": 2**63}, {}, 422, f"got {2**63}"),
    ("unknown field", {"model": "digits", "seeds": 5}, {}, 422, "seeds"),
    ("unknown format", {"model": "digits", "seed": 1}, {"format": "jpeg"}, 422, "'jpeg'"),
]


@pytest.mark.parametrize(
    "body, params, status, fragment",
    [case[1:] for case in INVALID_REQUESTS],
    ids=[case[0] for case in INVALID_REQUESTS],
)
def test_generate_rejects_invalid_request(client, body, params, status, fragment):
    response = generate(client, body, **params)

    assert response.status_code == status
    assert fragment in response.json()["detail"]


def test_unknown_model_lists_available(client):
    detail = generate(client, {"model": "faces"}).json()["detail"]

    assert "digits (versions 1, 2)" in detail
    assert "colors (version 1)" in detail


@pytest.mark.parametrize("literal, shown", [("NaN", "nan"), ("Infinity", "inf"), ("-Infinity", "-inf")])
def test_generate_rejects_non_finite_z(client, literal, shown):
    values = ", ".join([literal] + ["0.0"] * (LATENT_DIM - 1))
    content = '{"model": "digits", "z": [' + values + "]}"

    response = client.post("/generate", content=content, headers={"content-type": "application/json"})

    assert response.status_code == 422
    assert f"z[0] is {shown}" in response.json()["detail"]
    assert "finite" in response.json()["detail"]


def test_generate_rejects_non_finite_z_in_batch(client):
    content = '{"model": "digits", "z": [[' + ", ".join(["0.0"] * 7 + ["NaN"]) + "]]}"

    response = client.post("/generate", content=content, headers={"content-type": "application/json"})

    assert response.status_code == 422
    assert "z[0][7] is nan" in response.json()["detail"]


def test_generate_rejects_json_array_body(client):
    response = client.post("/generate", json=[1, 2])

    assert response.status_code == 422
    assert "body is [1, 2]: send a JSON object" in response.json()["detail"]


def test_generate_rejects_invalid_json(client):
    response = client.post("/generate", content=b"{model: digits", headers={"content-type": "application/json"})

    assert response.status_code == 422
    assert "not valid JSON" in response.json()["detail"]


UNPARSABLE_BODIES = [
    # (case id, body, text the detail must contain)
    ("seed of 5000 digits", b'{"model": "digits", "seed": ' + b"1" * 5000 + b"}", "more than 4300 digits"),
    ("nested 3000 levels", b'{"model": "digits", "z": ' + b"[" * 3000 + b"]" * 3000 + b"}",
     "nests JSON arrays or objects too deeply to parse: send Content-Type: application/json with a UTF-8 JSON object"),
    ("not UTF-8", b'{"model": "digits\xff"}',
     "not valid UTF-8 (byte 17: invalid start byte): send Content-Type: application/json with a UTF-8 JSON object"),
]


@pytest.mark.parametrize(
    "content, fragment", [case[1:] for case in UNPARSABLE_BODIES], ids=[case[0] for case in UNPARSABLE_BODIES]
)
def test_generate_rejects_unparsable_body(client, content, fragment):
    response = client.post("/generate", content=content, headers={"content-type": "application/json"})

    assert response.status_code == 422
    assert fragment in response.json()["detail"]


def test_generate_rejects_deep_value_in_z(client):
    # 900 levels parse, so validation and its message handle the whole value.
    content = b'{"model": "digits", "z": [[' + b"[" * 900 + b"]" * 900 + b"]]}"

    response = client.post("/generate", content=content, headers={"content-type": "application/json"})

    assert response.status_code == 422
    assert response.json()["detail"].startswith("z[0][0] is [[[")


@pytest.mark.parametrize(
    "request_options, content_type",
    [
        ({"content": b'{"model": "digits"}', "headers": {"content-type": "text/plain"}}, "text/plain"),
        ({"data": {"model": "digits"}}, "application/x-www-form-urlencoded"),
        ({"files": {"model": ("model.json", b'{"model": "digits"}')}}, "multipart/form-data"),
    ],
    ids=["text", "form", "multipart"],
)
def test_generate_rejects_non_json_content_type(client, request_options, content_type):
    response = client.post("/generate", **request_options)

    detail = response.json()["detail"]
    assert response.status_code == 422
    assert f"body has Content-Type {content_type}" in detail
    assert "send Content-Type: application/json" in detail


def test_generate_rejects_missing_body(client):
    response = client.post("/generate")

    assert response.status_code == 422
    assert response.json()["detail"].startswith("body is missing: send Content-Type: application/json")


# Request body limit


def test_body_above_content_length_limit_gets_413(client):
    content = b'{"model": "digits", "z": [' + b"0.0, " * 300_000 + b"0.0]}"

    response = client.post("/generate", content=content, headers={"content-type": "application/json"})

    assert response.status_code == 413
    assert f"request body of {len(content)} bytes" in response.json()["detail"]
    assert "limit of 1048576 bytes" in response.json()["detail"]


def test_chunked_body_above_limit_gets_413(client):
    def chunks():
        yield b'{"model": "digits", "z": ['
        for _ in range(300):
            yield b"0.0, " * 1000
        yield b"0.0]}"

    response = client.post("/generate", content=chunks(), headers={"content-type": "application/json"})

    assert response.status_code == 413
    assert "limit of 1048576 bytes" in response.json()["detail"]


def test_large_body_rejected_before_reload_runs(tmp_path):
    models_dir = tmp_path / "models"
    write_model(models_dir, "first", 1)

    with running_server(models_dir, tmp_path) as running, httpx.Client(base_url=running.url) as http:
        write_model(models_dir, "second", 1)
        response = http.post("/models/reload", content=b"x" * (2 * 1024 * 1024))
        names = [entry["name"] for entry in http.get("/models").json()["models"]]

    assert response.status_code == 413
    assert names == ["first"]


def test_body_limit_from_environment(tmp_path):
    models_dir = tmp_path / "models"
    write_model(models_dir, "digits", 1)
    body = {"model": "digits", "seed": 1, "count": 1}
    padded = json.dumps(body).encode()
    limit = len(padded)

    with running_server(models_dir, tmp_path, env={"GANFORGE_MAX_BODY_BYTES": str(limit)}) as running:
        at_limit = httpx.post(f"{running.url}/generate", content=padded, headers={"content-type": "application/json"})
        above_limit = httpx.post(
            f"{running.url}/generate", content=padded + b" ", headers={"content-type": "application/json"}
        )

    assert at_limit.status_code == 200
    assert above_limit.status_code == 413
    assert f"limit of {limit} bytes" in above_limit.json()["detail"]


# HEAD


@pytest.mark.parametrize("path", ["/health", "/ready", "/models", "/metrics"])
def test_head_allowed_where_get_exists(client, path):
    response = client.head(path)

    assert response.status_code == 200
    assert response.content == b""


def test_head_routes_not_in_openapi(client):
    paths = client.get("/openapi.json").json()["paths"]

    assert "head" not in paths["/health"]
    assert "get" in paths["/health"]


# Packaging


def test_service_does_not_import_tensorflow():
    check = "import service.app, service.server, sys; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"

    result = subprocess.run([sys.executable, "-c", check], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr


def test_listener_is_tcp_for_nodelay():
    from service.server import bind_listener

    listener = bind_listener("127.0.0.1", 0)
    try:
        # asyncio enables TCP_NODELAY on accepted connections only when the listener's proto is TCP.
        assert listener.proto == socket.IPPROTO_TCP
    finally:
        listener.close()

