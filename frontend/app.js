// Page logic of the ganforge demo. It sends requests only to the service that
// serves the page: GET /models lists the models, POST /generate makes PNG images.
"use strict";

const SLIDER_COUNT = 8;
const SLIDER_MIN = -3;
const SLIDER_MAX = 3;
const SLIDER_STEP = 0.01;
const EDIT_DEBOUNCE_MS = 100;
const MAX_SEED = 0xffffffff;
const IMAGE_COUNTS = [1, 4, 9, 16, 64];
// The preview box is a square of at most this size. An image is scaled by the
// largest whole factor that fits the box, so that every image pixel becomes an
// equal square block of screen pixels. An image larger than the box is shown
// at its own size and the box scrolls.
const PREVIEW_SIZE_PX = 336;
// Maximum length of an ignored link parameter's value that a notice quotes in full.
const MAX_QUOTED_LENGTH = 40;

const state = {
  models: [],
  model: null,
  seed: 0,
  count: 1,
  // The last seed that loaded: { model, version, seed, count, latent, image },
  // where model and version are what POST /generate resolved, latent is the
  // first latent vector of the seed and image is the PNG Blob.
  seedResult: null,
  // True while the newest image request is a seed load. Edits and Reset are
  // ignored until it completes, because it replaces the latent vector they change.
  seedLoadPending: false,
  // seedResult.latent with the slider edits applied.
  latent: null,
  imageUrl: null,
  imageFileName: "",
  // Notice about ignored link parameters, shown when the first seed load ends.
  linkNotice: "",
  // Id of the newest image request. A response with an older id is stale.
  imageRequest: 0,
  editTimer: null,
};

const view = {};

// ---- API -------------------------------------------------------------------

// Send a request to the service and return the response. With a body, the
// request is a JSON POST. Throws an Error that carries the service's detail
// message when the request fails or the status is not 2xx.
async function requestApi(path, body) {
  const options = {};
  if (body !== undefined) {
    options.method = "POST";
    options.headers = { "Content-Type": "application/json" };
    options.body = JSON.stringify(body);
  }

  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new Error(`Request to ${path} failed: ${error.message}. Is the service running?`);
  }
  if (!response.ok) {
    throw new Error(await describeFailure(path, response));
  }
  return response;
}

async function describeFailure(path, response) {
  let detail = response.statusText;
  try {
    const body = await response.json();
    if (body && body.detail !== undefined) {
      detail = formatDetail(body.detail);
    }
  } catch (error) {
    // The error body is not JSON, so the status text stays the detail.
  }
  return `${path} returned ${response.status}: ${detail}`;
}

// Format a FastAPI "detail" (a string, or a list of validation errors with
// "loc" and "msg") as one line of text.
function formatDetail(detail) {
  if (typeof detail === "string") {
    return detail;
  }
  if (Array.isArray(detail)) {
    return detail.map(formatDetailItem).join("; ");
  }
  return JSON.stringify(detail);
}

function formatDetailItem(item) {
  if (item === null || typeof item !== "object" || !("msg" in item)) {
    return String(item);
  }
  const location = Array.isArray(item.loc) ? item.loc.filter((part) => part !== "body").join(".") : "";
  return location ? `${location}: ${item.msg}` : item.msg;
}

// Send an image request and return { value }, the body read by parse(response),
// or { error } when the request failed. Returns null when a newer image request
// started meanwhile, so that only the newest request changes the page.
async function requestImage(requestId, path, body, parse) {
  let outcome;
  try {
    outcome = { value: await parse(await requestApi(path, body)) };
  } catch (error) {
    outcome = { error };
  }
  return requestId === state.imageRequest ? outcome : null;
}

function decodePng(base64) {
  const bytes = Uint8Array.from(atob(base64), (character) => character.charCodeAt(0));
  return new Blob([bytes], { type: "image/png" });
}

// ---- Messages --------------------------------------------------------------

function showBanner(message) {
  view.banner.textContent = message;
  view.banner.hidden = false;
}

// Show a message in the status line. kind is "info", "notice" or "error".
function showStatus(message, kind = "info") {
  view.status.textContent = message;
  view.status.className = `status ${kind}`;
}

// Show a failed request in the status line, followed by the notice about the
// link when the first seed load is the request that failed.
function showError(error) {
  showStatus([error.message, takeLinkNotice()].filter(Boolean).join(" "), "error");
}

function takeLinkNotice() {
  const notice = state.linkNotice;
  state.linkNotice = "";
  return notice;
}

// Join the "errors" of GET /models, which are strings or objects with the
// failed folder's "path" and its "error", into one line of text.
function describeLoadErrors(errors) {
  return errors.map(describeLoadError).join("; ");
}

function describeLoadError(item) {
  if (item !== null && typeof item === "object" && "error" in item) {
    return item.path ? `${item.path}: ${item.error}` : String(item.error);
  }
  return typeof item === "string" ? item : JSON.stringify(item);
}

// ---- Models ----------------------------------------------------------------

function modelKey(model) {
  return `${model.name}/${model.version}`;
}

function modelLabel(model) {
  const dataset = model.dataset ? ` (${model.dataset})` : "";
  return `${model.name} v${model.version}${dataset}`;
}

// Fetch GET /models and fill the model list. Returns false, after showing
// the banner, when the list cannot be fetched or is empty.
async function loadModels() {
  let listing;
  try {
    listing = await (await requestApi("/models")).json();
  } catch (error) {
    showNoModels(`The model list could not be loaded. ${error.message}`);
    return false;
  }

  state.models = Array.isArray(listing.models) ? listing.models : [];
  const loadErrors = Array.isArray(listing.errors) ? listing.errors : [];
  if (state.models.length === 0) {
    const reasons = loadErrors.length > 0 ? ` Load errors: ${describeLoadErrors(loadErrors)}` : "";
    showNoModels(
      "The service has no models. Export a model into its models folder, then call POST /models/reload " +
        `(or restart the service) and reload this page.${reasons}`,
    );
    return false;
  }

  fillModelSelect();
  if (loadErrors.length > 0) {
    showBanner(`Some models failed to load: ${describeLoadErrors(loadErrors)}`);
  }
  return true;
}

function showNoModels(message) {
  view.model.replaceChildren(new Option("No models available", ""));
  showBanner(message);
}

function fillModelSelect() {
  const options = state.models.map((model) => new Option(modelLabel(model), modelKey(model)));
  view.model.replaceChildren(...options);
  view.model.disabled = false;
}

// The loaded version of name with the highest number, or null when none is loaded.
function latestVersion(name) {
  let latest = null;
  for (const model of state.models) {
    if (model.name === name && (latest === null || model.version > latest.version)) {
      latest = model;
    }
  }
  return latest;
}

// The model shown when the link names none: the latest version of the first
// name, as POST /generate serves the latest version when none is given.
function defaultModel() {
  return latestVersion(state.models[0].name);
}

function selectModel(key) {
  state.model = state.models.find((model) => modelKey(model) === key) || defaultModel();
  view.model.value = modelKey(state.model);
  renderModelInfo();
}

function renderModelInfo() {
  const model = state.model;
  const facts = [
    ["Dataset", model.dataset],
    ["Latent size", model.latent_dim],
    ["Image shape", Array.isArray(model.image_shape) ? model.image_shape.join(" × ") : undefined],
    ["Value range", Array.isArray(model.value_range) ? model.value_range.join(" to ") : model.value_range],
    ["Training steps", model.training_steps],
    ["Created", model.created],
    ["Providers", Array.isArray(model.providers) ? model.providers.join(", ") : model.providers],
    ["Versions", Array.isArray(model.versions) ? model.versions.join(", ") : undefined],
  ];
  const rows = [];
  for (const [term, value] of facts) {
    if (value === undefined || value === null || value === "") {
      continue;
    }
    const termElement = document.createElement("dt");
    termElement.textContent = term;
    const valueElement = document.createElement("dd");
    valueElement.textContent = String(value);
    rows.push(termElement, valueElement);
  }
  view.modelInfo.replaceChildren(...rows);
}

// ---- Images ----------------------------------------------------------------

function showImage(blob, fileName, description) {
  if (state.imageUrl) {
    URL.revokeObjectURL(state.imageUrl);
  }
  state.imageUrl = URL.createObjectURL(blob);
  state.imageFileName = fileName;
  view.image.alt = description;
  view.image.src = state.imageUrl;
  view.download.disabled = false;
}

// Remove the shown image, so that the preview never shows an image that the
// controls no longer describe, and turn Download off.
function clearImage(description) {
  if (state.imageUrl) {
    URL.revokeObjectURL(state.imageUrl);
  }
  state.imageUrl = null;
  state.imageFileName = "";
  view.image.removeAttribute("src");
  view.image.style.width = "";
  view.image.alt = description;
  view.download.disabled = true;
}

// The side of the square that the preview box offers the image: the box's
// width without its padding, at most PREVIEW_SIZE_PX.
function previewBoxSize() {
  const style = getComputedStyle(view.frame);
  const padding = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
  return Math.min(PREVIEW_SIZE_PX, Math.floor(view.frame.getBoundingClientRect().width - padding));
}

function fitImage() {
  const width = view.image.naturalWidth;
  const largest = Math.max(width, view.image.naturalHeight);
  if (largest === 0) {
    return;
  }
  // A factor below 1 would drop or repeat rows and columns unevenly, so a
  // larger image keeps its own size and the box scrolls.
  const scale = Math.max(1, Math.floor(previewBoxSize() / largest));
  // The height follows from the width, because the stylesheet sets height: auto.
  view.image.style.width = `${width * scale}px`;
}

function downloadImage() {
  if (!state.imageUrl) {
    return;
  }
  const link = document.createElement("a");
  link.href = state.imageUrl;
  link.download = state.imageFileName;
  document.body.append(link);
  link.click();
  link.remove();
}

function imageFileName(source, edited) {
  let name = `${source.model}-v${source.version}-seed${source.seed}`;
  if (source.count > 1) {
    name += `-grid${source.count}`;
  } else if (edited) {
    name += "-edited";
  }
  return `${name}.png`;
}

// ---- Seed ------------------------------------------------------------------

function randomSeed() {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

function parseSeed(text) {
  const seed = Number(text);
  if (text.trim() === "" || !Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) {
    return null;
  }
  return seed;
}

// Generate the seed's images with POST /generate?format=json and keep the
// first latent vector so that the sliders can edit it. When the request fails,
// the controls and the address keep the requested values, and the image, the
// sliders and Download are cleared until a seed loads.
async function loadSeed() {
  const model = state.model;
  if (model === null) {
    return;
  }
  cancelEdit();
  const requestId = ++state.imageRequest;
  const body = { model: model.name, version: model.version, seed: state.seed, count: state.count };
  state.seedLoadPending = true;
  writeLocation();
  showStatus(`Generating seed ${state.seed}…`);

  const outcome = await requestImage(requestId, "/generate?format=json", body, (response) => response.json());
  if (outcome === null) {
    return;
  }
  state.seedLoadPending = false;
  if (outcome.error) {
    clearSeed(`No image: seed ${body.seed} of ${model.name} v${model.version} failed to load`);
    showError(outcome.error);
    return;
  }

  const result = outcome.value;
  state.seedResult = {
    model: result.model,
    version: result.version,
    seed: result.seed,
    count: result.images.length,
    latent: result.latents[0],
    image: decodePng(result.images.length === 1 ? result.images[0] : result.grid),
  };
  state.latent = [...state.seedResult.latent];
  renderSliders();
  showSeedImage();
  const notice = takeLinkNotice();
  showStatus(notice, notice ? "notice" : "info");
}

function clearSeed(description) {
  state.seedResult = null;
  state.latent = null;
  view.sliders.replaceChildren();
  view.latentSummary.textContent = "";
  updateLatentControls();
  clearImage(description);
}

function showSeedImage() {
  const source = state.seedResult;
  const images = source.count === 1 ? "Image" : `Grid of ${source.count} images`;
  const description = `${images} from ${source.model} v${source.version}, seed ${source.seed}`;
  showImage(source.image, imageFileName(source, false), description);
}

function applySeed(seed) {
  if (state.model === null) {
    return;
  }
  state.seed = seed;
  view.seed.value = String(seed);
  loadSeed();
}

// ---- Latent sliders --------------------------------------------------------

function createSlider(index) {
  const row = document.createElement("div");
  row.className = "slider";

  const label = document.createElement("label");
  label.htmlFor = `z-${index}`;
  label.textContent = `z[${index}]`;

  const input = document.createElement("input");
  input.type = "range";
  input.id = `z-${index}`;
  input.min = String(SLIDER_MIN);
  input.max = String(SLIDER_MAX);
  input.step = String(SLIDER_STEP);
  input.dataset.index = String(index);
  input.addEventListener("input", onSliderInput);

  const output = document.createElement("output");
  output.id = `z-${index}-value`;
  output.htmlFor = input.id;

  row.append(label, input, output);
  return row;
}

// Set the sliders from state.latent. A slider's default value (its value
// attribute) is the seed's value, so the page shows what Reset restores.
function renderSliders() {
  const count = Math.min(SLIDER_COUNT, state.latent.length);
  if (view.sliders.children.length !== count) {
    const rows = Array.from({ length: count }, (unused, index) => createSlider(index));
    view.sliders.replaceChildren(...rows);
  }
  for (let index = 0; index < count; index += 1) {
    const input = document.getElementById(`z-${index}`);
    input.defaultValue = String(state.seedResult.latent[index]);
    input.value = String(state.latent[index]);
    renderSliderValue(index);
  }
  view.latentSummary.textContent = describeSliderCoverage(count, state.latent.length);
  updateLatentControls();
}

function describeSliderCoverage(sliders, dimensions) {
  if (sliders < dimensions) {
    return `(first ${sliders} of ${dimensions} dimensions; the rest stay fixed by the seed)`;
  }
  return dimensions === 1 ? "(the only dimension)" : `(all ${dimensions} dimensions)`;
}

function renderSliderValue(index) {
  document.getElementById(`z-${index}-value`).textContent = state.latent[index].toFixed(2);
}

function updateLatentControls() {
  const single = state.seedResult !== null && state.seedResult.count === 1;
  view.latent.disabled = !single || state.count !== 1;
}

// Turn on the seed and image count controls only while a model is selected.
// The sliders, Reset and Download follow the loaded seed and the shown image.
function updateControls() {
  const noModel = state.model === null;
  view.seed.disabled = noModel;
  view.randomSeed.disabled = noModel;
  view.count.disabled = noModel;
  view.download.disabled = state.imageUrl === null;
  updateLatentControls();
}

function onSliderInput(event) {
  const index = Number(event.target.dataset.index);
  state.latent[index] = Number(event.target.value);
  renderSliderValue(index);
  clearTimeout(state.editTimer);
  state.editTimer = setTimeout(sendEdit, EDIT_DEBOUNCE_MS);
}

function cancelEdit() {
  clearTimeout(state.editTimer);
  state.editTimer = null;
}

// Generate the image of the edited latent vector with POST /generate. When the
// request fails, the image is cleared, and the sliders stay on for another
// edit or Reset.
async function sendEdit() {
  state.editTimer = null;
  if (state.seedLoadPending || state.seedResult === null) {
    return;
  }
  const requestId = ++state.imageRequest;
  const source = state.seedResult;
  const body = { model: source.model, version: source.version, z: state.latent };

  const outcome = await requestImage(requestId, "/generate", body, (response) => response.blob());
  if (outcome === null) {
    return;
  }
  if (outcome.error) {
    clearImage(`No image: the edited latent vector of seed ${source.seed} failed to generate`);
    showError(outcome.error);
    return;
  }

  const description = `Edited image from ${source.model} v${source.version}, seed ${source.seed}`;
  showImage(outcome.value, imageFileName(source, true), description);
  showStatus("");
}

function resetLatent() {
  if (state.seedResult === null || state.seedLoadPending) {
    return;
  }
  cancelEdit();
  // Drop the response of an edit that is still in flight.
  state.imageRequest += 1;
  state.latent = [...state.seedResult.latent];
  renderSliders();
  showSeedImage();
  showStatus("Latent vector reset to the seed's values.");
}

// ---- Page address ----------------------------------------------------------

// Read model, version, seed and count from the query string, so that a copied
// address shows the same images. A parameter that is absent is null.
function readLocation() {
  const params = new URLSearchParams(window.location.search);
  return {
    model: params.get("model"),
    version: params.get("version"),
    seed: params.get("seed"),
    count: params.get("count"),
  };
}

function quoteParameter(name, value) {
  const quoted = value.length > MAX_QUOTED_LENGTH ? `${value.slice(0, MAX_QUOTED_LENGTH)}…` : value;
  return `${name}=${quoted}`;
}

// "1, 4, 9, 16 or 64" for [1, 4, 9, 16, 64].
function describeChoices(values) {
  const last = values[values.length - 1];
  return values.length === 1 ? String(last) : `${values.slice(0, -1).join(", ")} or ${last}`;
}

// Pick the model, seed and count that the link requests. An absent or invalid
// parameter gets its default: the latest version of the named model or else of
// the first model, a random seed, one image. Each invalid parameter adds a
// sentence to the returned notice.
function resolveLink(link) {
  const notices = [];
  const ignore = (parameters, reason) => notices.push(`Ignored ${parameters} from the link: ${reason}.`);

  const model = resolveLinkModel(link, ignore);

  let seed = randomSeed();
  if (link.seed !== null) {
    const parsed = parseSeed(link.seed);
    if (parsed === null) {
      ignore(quoteParameter("seed", link.seed), `use a whole number from 0 to ${MAX_SEED}`);
    } else {
      seed = parsed;
    }
  }

  let count = 1;
  if (link.count !== null) {
    const parsed = Number(link.count);
    if (link.count.trim() !== "" && IMAGE_COUNTS.includes(parsed)) {
      count = parsed;
    } else {
      ignore(quoteParameter("count", link.count), `use ${describeChoices(IMAGE_COUNTS)}`);
    }
  }

  return { model, seed, count, notice: notices.join(" ") };
}

function resolveLinkModel(link, ignore) {
  if (link.model === null) {
    if (link.version !== null) {
      ignore(quoteParameter("version", link.version), "it needs a model name");
    }
    return defaultModel();
  }

  const latest = latestVersion(link.model);
  if (latest === null) {
    const parameters = [quoteParameter("model", link.model)];
    if (link.version !== null) {
      parameters.push(quoteParameter("version", link.version));
    }
    ignore(parameters.join(" and "), "no model of that name is loaded");
    return defaultModel();
  }
  if (link.version === null) {
    return latest;
  }

  const exact = state.models.find(
    (model) => model.name === link.model && String(model.version) === link.version,
  );
  if (exact) {
    return exact;
  }
  const versions = state.models.filter((model) => model.name === link.model).map((model) => model.version);
  const loaded = versions.length === 1 ? `version ${versions[0]}` : `versions ${versions.join(", ")}`;
  ignore(quoteParameter("version", link.version), `${link.model} has ${loaded}`);
  return latest;
}

function writeLocation() {
  const params = new URLSearchParams({
    model: state.model.name,
    version: String(state.model.version),
    seed: String(state.seed),
    count: String(state.count),
  });
  window.history.replaceState(null, "", `?${params}`);
}

// ---- Events ----------------------------------------------------------------

function onModelChange() {
  selectModel(view.model.value);
  loadSeed();
}

function onSeedChange() {
  const seed = parseSeed(view.seed.value);
  if (seed === null) {
    showStatus(`Invalid seed "${view.seed.value}": enter a whole number from 0 to ${MAX_SEED}.`, "error");
    return;
  }
  applySeed(seed);
}

function onCountChange() {
  if (state.model === null) {
    return;
  }
  state.count = Number(view.count.value);
  updateLatentControls();
  loadSeed();
}

function bindElements() {
  const ids = {
    banner: "error-banner",
    controls: "controls",
    model: "model",
    seed: "seed",
    randomSeed: "random-seed",
    count: "count",
    latent: "latent",
    latentSummary: "latent-summary",
    sliders: "sliders",
    reset: "reset",
    frame: "frame",
    image: "result",
    download: "download",
    modelInfo: "model-info",
    status: "status",
  };
  for (const [name, id] of Object.entries(ids)) {
    view[name] = document.getElementById(id);
  }
}

function addListeners() {
  // Enter in the seed field applies the seed instead of submitting the form.
  view.controls.addEventListener("submit", (event) => event.preventDefault());
  view.model.addEventListener("change", onModelChange);
  view.seed.addEventListener("change", onSeedChange);
  view.randomSeed.addEventListener("click", () => applySeed(randomSeed()));
  view.count.addEventListener("change", onCountChange);
  view.reset.addEventListener("click", resetLatent);
  view.download.addEventListener("click", downloadImage);
  view.image.addEventListener("load", fitImage);
  window.addEventListener("resize", fitImage);
}

async function start() {
  bindElements();
  addListeners();
  showStatus("Loading models…");
  const loaded = await loadModels();
  showStatus("");
  if (!loaded) {
    updateControls();
    return;
  }

  const requested = resolveLink(readLocation());
  state.linkNotice = requested.notice;
  state.count = requested.count;
  view.count.value = String(state.count);
  selectModel(modelKey(requested.model));
  updateControls();
  applySeed(requested.seed);
}

document.addEventListener("DOMContentLoaded", start);
