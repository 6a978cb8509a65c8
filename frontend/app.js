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
// The preview fills a square of this size. An image of at most half its size
// is scaled by the largest whole factor that fits instead, so that every image
// pixel becomes an equal square block of screen pixels.
const PREVIEW_SIZE_PX = 336;

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

// Send an image request and return its body, read by parse(response). Returns
// null when a newer image request started meanwhile, so that only the newest
// image is shown, or when the request failed, after showing the error.
async function requestImage(requestId, path, body, parse) {
  let result;
  try {
    result = await parse(await requestApi(path, body));
  } catch (error) {
    if (requestId === state.imageRequest) {
      showError(error);
    }
    return null;
  }
  return requestId === state.imageRequest ? result : null;
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

// Show a message in the status line. kind is "info" or "error".
function showStatus(message, kind = "info") {
  view.status.textContent = message;
  view.status.className = `status ${kind}`;
}

function showError(error) {
  showStatus(error.message, "error");
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
    showNoModels(`The service has no models. Export a model into its models folder and reload.${reasons}`);
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

function selectModel(key) {
  state.model = state.models.find((model) => modelKey(model) === key) || state.models[0];
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

function fitImage() {
  const width = view.image.naturalWidth;
  const largest = Math.max(width, view.image.naturalHeight);
  const wholeScale = Math.floor(PREVIEW_SIZE_PX / largest);
  const scale = wholeScale >= 2 ? wholeScale : PREVIEW_SIZE_PX / largest;
  // The height follows from the width, because the stylesheet sets height: auto.
  view.image.style.width = `${Math.round(width * scale)}px`;
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
// first latent vector so that the sliders can edit it.
async function loadSeed() {
  cancelEdit();
  const requestId = ++state.imageRequest;
  const model = state.model;
  const body = { model: model.name, version: model.version, seed: state.seed, count: state.count };
  state.seedLoadPending = true;
  writeLocation();
  showStatus(`Generating seed ${state.seed}…`);

  const result = await requestImage(requestId, "/generate?format=json", body, (response) => response.json());
  if (requestId === state.imageRequest) {
    state.seedLoadPending = false;
  }
  if (result === null) {
    return;
  }

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
  showStatus("");
}

function showSeedImage() {
  const source = state.seedResult;
  const images = source.count === 1 ? "Image" : `Grid of ${source.count} images`;
  const description = `${images} from ${source.model} v${source.version}, seed ${source.seed}`;
  showImage(source.image, imageFileName(source, false), description);
}

function applySeed(seed) {
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
  view.latentSummary.textContent =
    `(first ${count} of ${state.latent.length} dimensions; the rest stay fixed by the seed)`;
  updateLatentControls();
}

function renderSliderValue(index) {
  document.getElementById(`z-${index}-value`).textContent = state.latent[index].toFixed(2);
}

function updateLatentControls() {
  const single = state.seedResult !== null && state.seedResult.count === 1;
  view.latent.disabled = !single || state.count !== 1;
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

// Generate the image of the edited latent vector with POST /generate.
async function sendEdit() {
  state.editTimer = null;
  if (state.seedLoadPending) {
    return;
  }
  const requestId = ++state.imageRequest;
  const source = state.seedResult;
  const body = { model: source.model, version: source.version, z: state.latent };

  const blob = await requestImage(requestId, "/generate", body, (response) => response.blob());
  if (blob === null) {
    return;
  }

  const description = `Edited image from ${source.model} v${source.version}, seed ${source.seed}`;
  showImage(blob, imageFileName(source, true), description);
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
// address shows the same images.
function readLocation() {
  const params = new URLSearchParams(window.location.search);
  const seed = parseSeed(params.get("seed") || "");
  const count = Number(params.get("count"));
  return {
    modelKey: `${params.get("model")}/${params.get("version")}`,
    modelName: params.get("model"),
    seed: seed === null ? randomSeed() : seed,
    count: IMAGE_COUNTS.includes(count) ? count : 1,
  };
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

function findInitialModel(requested) {
  const exact = state.models.find((model) => modelKey(model) === requested.modelKey);
  const byName = state.models.find((model) => model.name === requested.modelName);
  return exact || byName || state.models[0];
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
}

async function start() {
  bindElements();
  addListeners();
  const requested = readLocation();
  showStatus("Loading models…");
  const loaded = await loadModels();
  showStatus("");
  if (!loaded) {
    return;
  }

  state.count = requested.count;
  view.count.value = String(state.count);
  selectModel(modelKey(findInitialModel(requested)));
  applySeed(requested.seed);
}

document.addEventListener("DOMContentLoaded", start);
