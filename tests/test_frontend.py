"""Tests of the web page in frontend/: served by a real `ganforge serve` subprocess
with real ONNX generators, and run in Debian's headless chromium.
"""

import base64
import io
import math
import re
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

import browser
from browser import dump_dom, open_page, parse_html, serve_folder, take_screenshot
from onnx_models import write_model
from service_process import REPO_ROOT, running_server

FRONTEND_DIR = REPO_ROOT / "frontend"
PAGE_FILES = ["index.html", "app.js", "style.css"]

# The page's model: latent_dim is above the 8 sliders, so that the page must
# keep the dimensions it has no slider for.
MODEL = "noise"
MODEL_VERSION = 1
LATENT_DIM = 16
SEED = 1234
SLIDER_COUNT = 8
SLIDER_MAX_VALUE = 3
# PREVIEW_SIZE_PX in app.js: a 28x28 image is shown 12 times larger.
PREVIEW_SIZE_PX = 336
PAGE_QUERY = f"?model={MODEL}&version={MODEL_VERSION}&seed={SEED}"

# A model with two versions. It comes first in GET /models, so the page shows
# its latest version, v3, by default. v3 has fewer latent dimensions than the
# page has sliders, and its 64x64 images make a grid of 64 wider than the preview.
MULTI_VERSION_MODEL = "blobs"
LATEST_VERSION = 3
LATEST_LATENT_DIM = 3
LATEST_IMAGE_SHAPE = (64, 64, 1)

# Collects the page's uncaught errors and unhandled promise rejections in window.pageErrors.
COLLECT_ERRORS_SCRIPT = """
window.pageErrors = [];
window.addEventListener("error", (event) => window.pageErrors.push(String(event.message)));
window.addEventListener("unhandledrejection", (event) => {
  const reason = event.reason;
  window.pageErrors.push(String(reason && reason.stack ? reason.stack : reason));
});
"""

# Waits a moment, so that the errors of pending promises arrive, and returns window.pageErrors.
PAGE_ERRORS_SCRIPT = "new Promise((resolve) => setTimeout(resolve, 200)).then(() => window.pageErrors)"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server with the page and four models: blobs v1 and v3, digits v2 and noise v1 (latent_dim 16)."""
    root = tmp_path_factory.mktemp("frontend")
    models_dir = root / "models"
    write_model(models_dir, MULTI_VERSION_MODEL, 1, latent_dim=8, seed=7)
    write_model(
        models_dir,
        MULTI_VERSION_MODEL,
        LATEST_VERSION,
        latent_dim=LATEST_LATENT_DIM,
        image_shape=LATEST_IMAGE_SHAPE,
        seed=8,
    )
    write_model(models_dir, MODEL, MODEL_VERSION, latent_dim=LATENT_DIM, seed=5)
    write_model(models_dir, "digits", 2, latent_dim=8, seed=6)
    with running_server(models_dir, root, frontend_dir=FRONTEND_DIR) as running:
        yield running


def generate(server, body: dict, output_format: str = "png") -> httpx.Response:
    response = httpx.post(f"{server.url}/generate", params={"format": output_format}, json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response


def seed_latent(server) -> list[float]:
    body = {"model": MODEL, "version": MODEL_VERSION, "seed": SEED, "count": 1}
    return generate(server, body, "json").json()["latents"][0]


def png_size(content: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(content)) as image:
        return image.size


def expected_display_width(image_width: int, image_height: int) -> int:
    """Mirror fitImage in app.js: the largest whole scale that fits the preview size, at least 1."""
    return image_width * max(1, PREVIEW_SIZE_PX // max(image_width, image_height))


def assert_no_error_banner(page) -> None:
    banner = page.find_id("error-banner")
    assert "hidden" in banner.attributes, f"the error banner is visible: {banner.text()!r}"
    assert banner.text() == ""


def assert_no_error_status(page) -> None:
    status = page.find_id("status")
    classes = status.attributes.get("class", "").split()
    assert "error" not in classes, f"the status line shows an error: {status.text()!r}"


# ---- Files served by the service ----------------------------------------------------


def test_root_serves_page(server):
    response = httpx.get(f"{server.url}/", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script src="app.js" defer></script>' in response.text
    assert '<link rel="stylesheet" href="style.css">' in response.text


@pytest.mark.parametrize(("path", "content_type"), [("/app.js", "javascript"), ("/style.css", "text/css")])
def test_page_assets_served(server, path, content_type):
    response = httpx.get(f"{server.url}{path}", timeout=10)
    assert response.status_code == 200
    assert content_type in response.headers["content-type"]
    assert response.text == (FRONTEND_DIR / path.lstrip("/")).read_text()


def test_script_calls_api_routes():
    script = (FRONTEND_DIR / "app.js").read_text()
    assert 'requestApi("/models")' in script
    assert '"/generate?format=json", body' in script
    assert '"/generate", body' in script


def test_stylesheet_scales_pixelated():
    stylesheet = (FRONTEND_DIR / "style.css").read_text()
    assert re.search(r"#result\s*\{[^}]*image-rendering:\s*pixelated", stylesheet)


@pytest.mark.parametrize("name", PAGE_FILES)
def test_page_files_load_nothing_external(name):
    text = (FRONTEND_DIR / name).read_text()
    assert not re.search(r"(https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}", text), f"{name} refers to another host"
    assert "@import" not in text


class _ControlCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.controls: list[dict] = []
        self.label_targets: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag in ("input", "select", "textarea"):
            self.controls.append(attributes)
        if tag == "label" and attributes.get("for"):
            self.label_targets.add(attributes["for"])
        for name in ("src", "href"):
            if attributes.get(name):
                self.links.append(attributes[name])


def test_page_controls_have_labels():
    collector = _ControlCollector()
    collector.feed((FRONTEND_DIR / "index.html").read_text())
    assert collector.controls, "index.html has no form controls"

    for control in collector.controls:
        labelled = control.get("id") in collector.label_targets or control.get("aria-label")
        assert labelled, f"form control {control} has no <label for> and no aria-label"


def test_page_links_are_relative():
    collector = _ControlCollector()
    collector.feed((FRONTEND_DIR / "index.html").read_text())
    # The icon is an empty data URL, so that browsers do not request /favicon.ico.
    assert collector.links == ["style.css", "data:,", "app.js"]


# ---- The chromium helper --------------------------------------------------------------


def test_missing_chromium_skips_outside_ci(monkeypatch, tmp_path):
    monkeypatch.setattr(browser, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-chromium not found"):
        browser.require_chromium()


def test_missing_chromium_fails_under_ci(monkeypatch, tmp_path):
    monkeypatch.setattr(browser, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        browser.require_chromium()


# ---- The page in headless chromium ----------------------------------------------------


@pytest.mark.browser
def test_page_shows_seed_image(server):
    page = parse_html(dump_dom(f"{server.url}/{PAGE_QUERY}"))

    assert_no_error_banner(page)
    assert_no_error_status(page)

    model_select = page.find_id("model")
    labels = sorted(option.text() for option in model_select.find_all("option"))
    assert labels == [
        "blobs v1 (test-noise)", "blobs v3 (test-noise)", "digits v2 (test-noise)", "noise v1 (test-noise)",
    ]  # fmt: skip
    assert "disabled" not in model_select.attributes

    image = page.find_id("result")
    assert image.attributes.get("src", "").startswith("blob:"), f"no PNG is shown: {image.attributes}"
    assert image.attributes["alt"] == f"Image from {MODEL} v{MODEL_VERSION}, seed {SEED}"
    assert f"width: {PREVIEW_SIZE_PX}px" in image.attributes.get("style", "")
    assert "disabled" not in page.find_id("download").attributes

    info = page.find_id("model-info").text()
    assert f"Latent size {LATENT_DIM}" in info


@pytest.mark.browser
def test_page_sets_sliders_from_seed(server):
    latent = seed_latent(server)
    page = parse_html(dump_dom(f"{server.url}/{PAGE_QUERY}"))

    assert "disabled" not in page.find_id("latent").attributes
    sliders = [element for element in page.find_id("sliders").iter() if element.attributes.get("type") == "range"]
    assert len(sliders) == SLIDER_COUNT

    label_targets = {label.attributes.get("for") for label in page.find_all("label")}
    for index, slider in enumerate(sliders):
        assert slider.attributes["id"] == f"z-{index}"
        assert slider.attributes["id"] in label_targets, f"slider {index} has no label"
        assert (slider.attributes["min"], slider.attributes["max"], slider.attributes["step"]) == ("-3", "3", "0.01")
        assert float(slider.attributes["value"]) == pytest.approx(latent[index], abs=1e-6)
        assert page.find_id(f"z-{index}-value").text() == f"{latent[index]:.2f}"
    assert page.find_id("latent-summary").text() == (
        f"(first {SLIDER_COUNT} of {LATENT_DIM} dimensions; the rest stay fixed by the seed)"
    )


# A grid of 4 is scaled by a whole factor. A grid of 64 (242 px) fits the
# preview only at its own size, so it is not scaled at all.
@pytest.mark.browser
@pytest.mark.parametrize("count", [4, 64])
def test_page_grid_disables_sliders(server, count):
    body = {"model": MODEL, "version": MODEL_VERSION, "seed": SEED, "count": count}
    grid_width, grid_height = png_size(generate(server, body).content)

    page = parse_html(dump_dom(f"{server.url}/{PAGE_QUERY}&count={count}"))

    assert_no_error_banner(page)
    image = page.find_id("result")
    assert image.attributes.get("src", "").startswith("blob:")
    assert image.attributes["alt"] == f"Grid of {count} images from {MODEL} v{MODEL_VERSION}, seed {SEED}"
    assert f"width: {expected_display_width(grid_width, grid_height)}px" in image.attributes["style"]
    assert "disabled" in page.find_id("latent").attributes


@pytest.mark.browser
@pytest.mark.parametrize(
    ("query", "model_label"),
    [
        ("", f"{MULTI_VERSION_MODEL} v{LATEST_VERSION}"),
        (f"?model={MULTI_VERSION_MODEL}", f"{MULTI_VERSION_MODEL} v{LATEST_VERSION}"),
        (f"?model={MULTI_VERSION_MODEL}&version=1", f"{MULTI_VERSION_MODEL} v1"),
    ],
)
def test_page_link_without_version_shows_latest(server, query, model_label):
    page = parse_html(dump_dom(f"{server.url}/{query}"))

    assert_no_error_banner(page)
    assert page.find_id("status").text() == ""
    image = page.find_id("result")
    assert image.attributes.get("src", "").startswith("blob:")
    assert re.fullmatch(rf"Image from {model_label}, seed \d+", image.attributes["alt"]), image.attributes["alt"]


@pytest.mark.browser
@pytest.mark.parametrize(
    ("query", "notice", "alt_pattern"),
    [
        (
            "?model=nonexistent&seed=-5&count=1000",
            "Ignored model=nonexistent from the link: no model of that name is loaded. "
            "Ignored seed=-5 from the link: use a whole number from 0 to 4294967295. "
            "Ignored count=1000 from the link: use 1, 4, 9, 16 or 64.",
            rf"Image from {MULTI_VERSION_MODEL} v{LATEST_VERSION}, seed \d+",
        ),
        (
            "?seed=abc",
            "Ignored seed=abc from the link: use a whole number from 0 to 4294967295.",
            rf"Image from {MULTI_VERSION_MODEL} v{LATEST_VERSION}, seed \d+",
        ),
        (
            f"?model={MULTI_VERSION_MODEL}&version=2&seed={SEED}",
            f"Ignored version=2 from the link: {MULTI_VERSION_MODEL} has versions 1, {LATEST_VERSION}.",
            rf"Image from {MULTI_VERSION_MODEL} v{LATEST_VERSION}, seed {SEED}",
        ),
    ],
    ids=["model-seed-count", "seed", "version"],
)
def test_page_names_ignored_link_parameters(server, query, notice, alt_pattern):
    page = parse_html(dump_dom(f"{server.url}/{query}"))

    status = page.find_id("status")
    assert status.text() == notice
    assert status.attributes["class"].split() == ["status", "notice"]
    image = page.find_id("result")
    assert image.attributes.get("src", "").startswith("blob:")
    assert re.fullmatch(alt_pattern, image.attributes["alt"]), image.attributes["alt"]


@pytest.mark.browser
def test_page_legend_names_all_dimensions(server):
    page = parse_html(dump_dom(f"{server.url}/?model={MULTI_VERSION_MODEL}&version={LATEST_VERSION}&seed={SEED}"))

    sliders = [element for element in page.find_id("sliders").iter() if element.attributes.get("type") == "range"]
    assert len(sliders) == LATEST_LATENT_DIM
    assert page.find_id("latent-summary").text() == f"(all {LATEST_LATENT_DIM} dimensions)"
    assert "disabled" not in page.find_id("latent").attributes


# The controls that need a selected model, a loaded seed or a shown image.
MODEL_CONTROL_IDS = ["seed", "random-seed", "count", "latent", "reset", "download"]

# Fires what the controls' listeners react to. A click on a disabled control
# does nothing, so change events go to the fields directly as well.
USE_CONTROLS_SCRIPT = """
for (const id of ["random-seed", "reset", "download"]) {
  document.getElementById(id).click();
}
document.getElementById("seed").value = "5";
for (const id of ["seed", "count"]) {
  document.getElementById(id).dispatchEvent(new Event("change"));
}
true
"""


def disabled_controls(page, ids: list[str]) -> dict[str, bool]:
    """Return, for each element id, whether the element is disabled by its own attribute or by a disabled fieldset."""
    script = "document.getElementById({!r}).matches(':disabled')"
    return {element_id: page.evaluate(script.format(element_id)) for element_id in ids}


@pytest.mark.browser
def test_page_without_models_disables_controls(tmp_path):
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    with running_server(models_dir, tmp_path, frontend_dir=FRONTEND_DIR) as empty_server:
        with open_page(f"{empty_server.url}/", init_script=COLLECT_ERRORS_SCRIPT) as page:
            page.wait_for("!document.getElementById('error-banner').hidden")
            banner = element_text(page, "error-banner")
            role = page.evaluate("document.getElementById('error-banner').getAttribute('role')")
            options = page.evaluate("[...document.getElementById('model').options].map((option) => option.text)")
            disabled = disabled_controls(page, ["model", *MODEL_CONTROL_IDS])

            page.evaluate(USE_CONTROLS_SCRIPT)
            errors = page.evaluate(PAGE_ERRORS_SCRIPT)
            status = element_text(page, "status")
            search = page.evaluate("location.search")
            has_image = page.evaluate("document.getElementById('result').hasAttribute('src')")

    assert role == "alert"
    assert banner.startswith("The service has no models.")
    assert "call POST /models/reload (or restart the service) and reload this page" in banner
    assert options == ["No models available"]
    assert disabled == dict.fromkeys(["model", *MODEL_CONTROL_IDS], True)
    assert errors == []
    assert status == ""
    assert search == ""
    assert not has_image


@pytest.mark.browser
def test_page_clears_image_when_seed_load_fails(tmp_path):
    models_dir = tmp_path / "models"
    folder = write_model(models_dir, MODEL, MODEL_VERSION, latent_dim=LATENT_DIM)
    with running_server(models_dir, tmp_path, frontend_dir=FRONTEND_DIR) as own_server:
        with open_page(f"{own_server.url}/{PAGE_QUERY}", init_script=COLLECT_ERRORS_SCRIPT) as page:
            page.wait_for("document.getElementById('result').alt.startsWith('Image from')")
            shutil.rmtree(folder)
            assert httpx.post(f"{own_server.url}/models/reload", timeout=30).status_code == 200

            focus(page, "random-seed")
            page.press("Enter")
            page.wait_for("document.getElementById('status').classList.contains('error')")

            seed = int(page.evaluate("document.getElementById('seed').value"))
            body = {"model": MODEL, "version": MODEL_VERSION, "seed": seed, "count": 1}
            failure = httpx.post(f"{own_server.url}/generate", params={"format": "json"}, json=body, timeout=30)
            assert failure.status_code == 404

            assert element_text(page, "status") == f"/generate?format=json returned 404: {failure.json()['detail']}"
            assert page.evaluate("document.getElementById('result').hasAttribute('src')") is False
            alt = page.evaluate("document.getElementById('result').alt")
            assert alt == f"No image: seed {seed} of {MODEL} v{MODEL_VERSION} failed to load"
            assert disabled_controls(page, ["latent", "download"]) == {"latent": True, "download": True}
            assert page.evaluate("document.getElementById('sliders').children.length") == 0
            # The seed field and the address keep the requested seed.
            assert f"seed={seed}&" in page.evaluate("location.search")
            assert disabled_controls(page, ["seed", "random-seed", "count"]) == dict.fromkeys(
                ["seed", "random-seed", "count"], False
            )
            assert page.evaluate(PAGE_ERRORS_SCRIPT) == []


@pytest.mark.browser
def test_page_banner_without_api():
    # A plain file server returns 404 for /models, as when the page is opened without the service.
    with serve_folder(FRONTEND_DIR) as url:
        page = parse_html(dump_dom(f"{url}/"))

    banner = page.find_id("error-banner")
    assert "hidden" not in banner.attributes
    assert "The model list could not be loaded" in banner.text()
    assert "/models returned 404" in banner.text()
    # Reset is off through the disabled fieldset "latent" around it.
    for element_id in ["model", *MODEL_CONTROL_IDS]:
        if element_id != "reset":
            assert "disabled" in page.find_id(element_id).attributes, f"{element_id} is enabled"


# ---- Screenshot ---------------------------------------------------------------------


def locate_scaled_image(screen: np.ndarray, image: np.ndarray, scale: int) -> tuple[int, int]:
    """Return the top-left (row, column) where image, scaled up by a whole factor, best matches screen.

    Both arrays are grayscale. Each image pixel is compared with the first and
    the last screen pixel of its block, for every placement in the screen, so
    that only the placement aligned with the blocks matches exactly.
    """
    image_height, image_width = image.shape
    rows = screen.shape[0] - image_height * scale + 1
    columns = screen.shape[1] - image_width * scale + 1
    assert rows > 0, "the screenshot is shorter than the scaled image"
    assert columns > 0, "the screenshot is narrower than the scaled image"

    error = np.zeros((rows, columns), dtype=np.float32)
    for offset in (0, scale - 1):
        for row in range(image_height):
            for column in range(image_width):
                top = row * scale + offset
                left = column * scale + offset
                error += np.abs(screen[top : top + rows, left : left + columns] - image[row, column])
    best = np.unravel_index(np.argmin(error), error.shape)
    return int(best[0]), int(best[1])


@pytest.mark.browser
def test_page_screenshot_shows_image(server, tmp_path):
    body = {"model": MODEL, "version": MODEL_VERSION, "seed": SEED, "count": 1}
    with Image.open(io.BytesIO(generate(server, body).content)) as png:
        image = np.asarray(png.convert("L"), dtype=np.float32)
    scale = PREVIEW_SIZE_PX // image.shape[1]

    path = take_screenshot(f"{server.url}/{PAGE_QUERY}", tmp_path / "page.png", window_size=(1280, 900))

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as screenshot:
        assert screenshot.size == (1280, 900)
        screen = np.asarray(screenshot.convert("L"), dtype=np.float32)

    top, left = locate_scaled_image(screen, image, scale)
    displayed = screen[top : top + image.shape[0] * scale, left : left + image.shape[1] * scale]
    expected = np.kron(image, np.ones((scale, scale), dtype=np.float32))
    difference = float(np.abs(displayed - expected).mean())
    assert difference < 2.0, f"the image at ({top}, {left}) differs from the PNG by {difference:.1f} levels on average"
    assert displayed.std() > 20, "the image area is blank"
    assert len(np.unique(displayed)) > 16, "the image area shows too few gray levels to be the generated image"


# Where the image and the visible part of the preview frame are, in CSS pixels of the viewport.
PREVIEW_GEOMETRY_SCRIPT = """
(() => {
  const frame = document.getElementById("frame");
  const box = frame.getBoundingClientRect();
  const image = document.getElementById("result").getBoundingClientRect();
  return {
    image: [image.left, image.top, image.width, image.height],
    visible: [box.left + frame.clientLeft, box.top + frame.clientTop, frame.clientWidth, frame.clientHeight],
  };
})()
"""


def visible_part(geometry: dict, margin: int) -> tuple[int, int, int, int]:
    """Return (left, top, width, height) of the visible part of the image, margin pixels inside its edges.

    The values are whole viewport pixels. Chromium snaps a box at a fractional
    position to the pixel grid when it paints it, so the image may lie up to
    one pixel from the returned place. The margin keeps that pixel in the image.
    """
    image_left, image_top, image_width, image_height = geometry["image"]
    box_left, box_top, box_width, box_height = geometry["visible"]
    left = math.ceil(max(image_left, box_left)) + margin
    top = math.ceil(max(image_top, box_top)) + margin
    right = math.floor(min(image_left + image_width, box_left + box_width)) - margin
    bottom = math.floor(min(image_top + image_height, box_top + box_height)) - margin
    return left, top, right - left, bottom - top


def best_match(screenshot: np.ndarray, image: np.ndarray, row: int, column: int, slack: int) -> tuple[float, int, int]:
    """Return the least mean difference between a screenshot and a same-sized part of image near (row, column),
    and the row and column of that part."""
    height, width = screenshot.shape
    matches = []
    for top in range(max(0, row - slack), min(image.shape[0] - height, row + slack) + 1):
        for left in range(max(0, column - slack), min(image.shape[1] - width, column + slack) + 1):
            part = image[top : top + height, left : left + width]
            matches.append((float(np.abs(screenshot - part).mean()), top, left))
    return min(matches)


@pytest.mark.browser
def test_page_scrolls_image_larger_than_preview(server):
    count = 64
    body = {"model": MULTI_VERSION_MODEL, "version": LATEST_VERSION, "seed": SEED, "count": count}
    with Image.open(io.BytesIO(generate(server, body).content)) as png:
        grid = np.asarray(png.convert("L"), dtype=np.float32)
    assert grid.shape[1] > PREVIEW_SIZE_PX

    query = f"?model={MULTI_VERSION_MODEL}&version={LATEST_VERSION}&seed={SEED}&count={count}"
    with open_page(f"{server.url}/{query}") as page:
        page.wait_for("document.getElementById('result').style.width")
        assert page.evaluate("document.getElementById('result').style.width") == f"{grid.shape[1]}px"

        # The top left corner, and the bottom right one after scrolling, show the PNG's pixels unscaled.
        margin = 2
        for scroll, corner in ((0, (margin, margin)), (10_000, None)):
            page.evaluate(f"document.getElementById('frame').scrollTo({scroll}, {scroll}); true")
            geometry = page.evaluate(PREVIEW_GEOMETRY_SCRIPT)
            assert geometry["image"][2:] == [grid.shape[1], grid.shape[0]]
            left, top, width, height = visible_part(geometry, margin)
            assert min(width, height) >= PREVIEW_SIZE_PX - 30, f"too little of the image is visible: {geometry}"

            with Image.open(io.BytesIO(page.screenshot(left, top, width, height))) as shot:
                screenshot = np.asarray(shot.convert("L"), dtype=np.float32)
            assert screenshot.shape == (height, width)
            row, column = round(top - geometry["image"][1]), round(left - geometry["image"][0])
            difference, row, column = best_match(screenshot, grid, row, column, slack=1)
            assert difference < 2.0, f"the image at scroll {scroll} differs from the PNG by {difference:.1f} levels"
            expected_corner = corner or (grid.shape[0] - height - margin, grid.shape[1] - width - margin)
            misplaced = f"the frame at scroll {scroll} shows the part from ({row}, {column}), not the corner"
            assert abs(row - expected_corner[0]) <= 1, misplaced
            assert abs(column - expected_corner[1]) <= 1, misplaced


# ---- Keyboard interaction over the DevTools protocol ---------------------------------

# The order in which Tab moves through the page's controls after the page loads.
SLIDER_IDS = [f"z-{index}" for index in range(SLIDER_COUNT)]
TAB_ORDER = ["model", "seed", "random-seed", "count", *SLIDER_IDS, "reset", "download"]

SHOWN_PNG_SCRIPT = """
fetch(document.getElementById("result").src)
  .then((response) => response.arrayBuffer())
  .then((buffer) => btoa(String.fromCharCode(...new Uint8Array(buffer))))
"""

# Wraps fetch to count the page's POST /generate calls with z (window.editCalls)
# and to delay the first one by window.delayFirstEditMs, 0 unless a test sets
# it, so that a later request can finish before the first.
COUNT_EDITS_SCRIPT = """
window.editCalls = 0;
window.delayFirstEditMs = 0;
const realFetch = window.fetch;
window.fetch = (path, options) => {
  if (path !== "/generate") {
    return realFetch(path, options);
  }
  window.editCalls += 1;
  const delay = window.editCalls === 1 ? window.delayFirstEditMs : 0;
  return new Promise((resolve) => setTimeout(resolve, delay)).then(() => realFetch(path, options));
};
true
"""


def shown_png(page) -> bytes:
    return base64.b64decode(page.evaluate(SHOWN_PNG_SCRIPT))


def focus(page, element_id: str) -> None:
    page.evaluate(f"document.getElementById({element_id!r}).focus()")


def element_text(page, element_id: str) -> str:
    return page.evaluate(f"document.getElementById({element_id!r}).textContent")


def seed_png(server, seed: int) -> bytes:
    return generate(server, {"model": MODEL, "version": MODEL_VERSION, "seed": seed, "count": 1}).content


def latent_png(server, latent: list[float]) -> bytes:
    return generate(server, {"model": MODEL, "version": MODEL_VERSION, "z": latent}).content


@pytest.fixture
def seed_page(server):
    """The page in chromium, showing SEED's image of the noise model."""
    with open_page(f"{server.url}/{PAGE_QUERY}") as page:
        page.wait_for("document.getElementById('result').alt.startsWith('Image from')")
        yield page


@pytest.mark.browser
def test_page_tab_order(seed_page):
    seed_page.evaluate("document.activeElement.blur(); true")
    focused = []
    for _ in TAB_ORDER:
        seed_page.press("Tab")
        focused.append(seed_page.evaluate("document.activeElement.id"))
    assert focused == TAB_ORDER


@pytest.mark.browser
def test_page_slider_edits_and_resets(server, seed_page):
    latent = seed_latent(server)

    focus(seed_page, "z-0")
    seed_page.press("End")
    seed_page.wait_for("document.getElementById('result').alt.startsWith('Edited image')")

    edited = [SLIDER_MAX_VALUE, *latent[1:]]
    assert element_text(seed_page, "z-0-value") == "3.00"
    assert seed_page.evaluate("state.latent") == pytest.approx(edited, abs=1e-6)
    assert shown_png(seed_page) == latent_png(server, edited)

    focus(seed_page, "reset")
    seed_page.press("Enter")
    seed_page.wait_for("document.getElementById('result').alt.startsWith('Image from')")

    assert element_text(seed_page, "z-0-value") == f"{latent[0]:.2f}"
    assert seed_page.evaluate("state.latent") == pytest.approx(latent, abs=1e-6)
    assert shown_png(seed_page) == seed_png(server, SEED)


@pytest.mark.browser
def test_page_slider_debounces_requests(server, seed_page):
    seed_page.evaluate(COUNT_EDITS_SCRIPT)

    focus(seed_page, "z-1")
    started = time.monotonic()
    for _ in range(10):
        seed_page.press("ArrowRight")
    pressing_ms = (time.monotonic() - started) * 1000
    seed_page.wait_for("document.getElementById('result').alt.startsWith('Edited image')")
    time.sleep(0.5)

    # Presses closer together than the 100 ms debounce share one request, so
    # there can be at most one request per started 100 ms of pressing.
    calls = seed_page.evaluate("window.editCalls")
    assert 1 <= calls <= 1 + int(pressing_ms // 100), f"{calls} requests for 10 presses in {pressing_ms:.0f} ms"
    assert shown_png(seed_page) == latent_png(server, seed_page.evaluate("state.latent"))


@pytest.mark.browser
def test_page_ignores_stale_response(server, seed_page):
    seed_page.evaluate(COUNT_EDITS_SCRIPT)
    seed_page.evaluate("window.delayFirstEditMs = 1500")

    focus(seed_page, "z-0")
    seed_page.press("End")
    seed_page.wait_for("window.editCalls === 1")
    seed_page.press("Home")
    seed_page.wait_for("window.editCalls === 2")
    final_latent = seed_page.evaluate("state.latent")
    assert final_latent[0] == -3

    # Wait until the delayed first request has also returned.
    time.sleep(2.5)
    assert element_text(seed_page, "z-0-value") == "-3.00"
    assert shown_png(seed_page) == latent_png(server, final_latent)


@pytest.mark.browser
def test_page_seed_field_applies_on_enter(server, seed_page):
    focus(seed_page, "seed")
    seed_page.evaluate("document.getElementById('seed').select()")
    seed_page.insert_text("42")
    seed_page.press("Enter")
    seed_page.wait_for("document.getElementById('result').alt.endsWith('seed 42')")

    assert shown_png(seed_page) == seed_png(server, 42)
    assert "seed=42" in seed_page.evaluate("location.search")
    assert "error" not in seed_page.evaluate("document.getElementById('status').className")


@pytest.mark.browser
def test_page_random_button_draws_seed(server, seed_page):
    focus(seed_page, "random-seed")
    seed_page.press("Enter")
    seed_page.wait_for(f"!document.getElementById('result').alt.endsWith('seed {SEED}')")

    seed = int(seed_page.evaluate("document.getElementById('seed').value"))
    assert 0 <= seed <= 2**32 - 1
    assert seed_page.evaluate("document.getElementById('result').alt").endswith(f"seed {seed}")
    assert shown_png(seed_page) == seed_png(server, seed)


@pytest.mark.browser
def test_page_rejects_invalid_seed(seed_page):
    focus(seed_page, "seed")
    seed_page.evaluate("document.getElementById('seed').select()")
    seed_page.insert_text("-5")
    seed_page.press("Enter")

    status = seed_page.wait_for("document.getElementById('status').textContent")
    assert status == 'Invalid seed "-5": enter a whole number from 0 to 4294967295.'
    assert "error" in seed_page.evaluate("document.getElementById('status').className")
    assert seed_page.evaluate("document.getElementById('result').alt").endswith(f"seed {SEED}")


@pytest.mark.browser
def test_page_shows_api_error_detail(tmp_path):
    models_dir = tmp_path / "models"
    folder = write_model(models_dir, MODEL, MODEL_VERSION, latent_dim=LATENT_DIM)
    with running_server(models_dir, tmp_path, frontend_dir=FRONTEND_DIR) as own_server:
        with open_page(f"{own_server.url}/{PAGE_QUERY}") as page:
            page.wait_for("document.getElementById('result').alt.startsWith('Image from')")
            shutil.rmtree(folder)
            assert httpx.post(f"{own_server.url}/models/reload", timeout=30).status_code == 200
            body = {"model": MODEL, "version": MODEL_VERSION, "z": [0.0] * LATENT_DIM}
            failure = httpx.post(f"{own_server.url}/generate", json=body, timeout=30)
            assert failure.status_code == 404

            focus(page, "z-0")
            page.press("End")
            status = page.wait_for("document.getElementById('status').textContent")

            assert status == f"/generate returned 404: {failure.json()['detail']}"
            assert "error" in page.evaluate("document.getElementById('status').className")
            # The image no longer matches the sliders, so it is gone. The sliders stay on for Reset.
            assert page.evaluate("document.getElementById('result').hasAttribute('src')") is False
            assert disabled_controls(page, ["latent", "download"]) == {"latent": False, "download": True}


@pytest.mark.browser
def test_page_downloads_png(server, seed_page, tmp_path):
    seed_page.allow_downloads(tmp_path)
    focus(seed_page, "download")
    seed_page.press("Enter")

    expected = tmp_path / f"{MODEL}-v{MODEL_VERSION}-seed{SEED}.png"
    png = seed_png(server, SEED)
    # Poll until the file is complete: chromium may still be writing it when its name appears.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (expected.is_file() and expected.read_bytes() == png):
        time.sleep(0.1)
    listing = sorted((path.name, path.stat().st_size) for path in tmp_path.iterdir())
    assert expected.is_file(), f"no download named {expected.name}; the folder contains {listing}"

    downloaded = expected.read_bytes()
    assert downloaded == png, f"the download has {len(downloaded)} bytes, the seed's PNG {len(png)}; folder: {listing}"
