// The Talkative page: pick a photo, send it to POST /v1/stories, show the story and its card.
"use strict";

const $ = (id) => document.getElementById(id);
const form = $("story-form");
let photo = null;

function show(id, visible) { $(id).hidden = !visible; }

function fail(message) {
  $("error").textContent = message;
  show("error", true);
  show("progress", false);
  $("tell").disabled = false;
}

// A problem+json document, or whatever came back, as one sentence a person can act on.
async function problemText(response) {
  let detail = "";
  try {
    const body = await response.json();
    detail = body.detail || body.title || "";
  } catch (_) { /* not JSON */ }
  if (response.status === 413) return "That photo is too large to send; try a smaller one.";
  if (response.status === 503 || response.status === 429) {
    const wait = response.headers.get("Retry-After");
    return (detail || "The story service is busy or down.") +
      (wait ? ` Try again in ${wait} s.` : " Try again shortly.");
  }
  return detail || `The server answered ${response.status}.`;
}

function choose(file) {
  show("error", false);
  if (!file) return;
  if (!file.type.startsWith("image/")) {
    fail(`"${file.name}" is not a picture; choose a JPEG, PNG, WebP or GIF photo.`);
    return;
  }
  photo = file;
  const preview = $("preview");
  preview.src = URL.createObjectURL(file);
  preview.alt = `Your photo: ${file.name}`;
  preview.hidden = false;
  $("drop-text").textContent = `${file.name} — choose another or drop one here`;
}

$("image").addEventListener("change", (e) => choose(e.target.files[0]));
$("camera").addEventListener("change", (e) => choose(e.target.files[0]));
const drop = $("drop");
["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => {
  e.preventDefault(); drop.classList.add("over");
}));
["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => {
  e.preventDefault(); drop.classList.remove("over");
}));
drop.addEventListener("drop", (e) => choose(e.dataTransfer.files[0]));

$("length").addEventListener("input", (e) => { $("length-out").textContent = e.target.value; });
$("temperature").addEventListener("input", (e) => { $("temp-out").textContent = e.target.value; });

// The styles of a model without style tokens, as index.html lists them; a model trained
// with style tokens lists its genres in /v1/models and takes only those (plus auto, plain).
const FRAMES = [...$("style").options].map((o) => [o.value, o.textContent]);
const GENRES = { bible: "a Bible verse", novel: "a novel's opening", play: "a play's scene" };
let models = {};

function showStyles() {
  const select = $("style");
  const chosen = select.value;
  const genres = (models[$("model").value] || {}).styles || [];
  const styles = genres.length
    ? [["auto", `to suit the model (${GENRES[genres[0]] || genres[0]})`],
       ...genres.map((g) => [g, GENRES[g] || g]), ["plain", "just the caption"]]
    : FRAMES;
  select.innerHTML = "";
  for (const [value, label] of styles) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = label;
    select.appendChild(option);
  }
  // Keep the reader's choice when the new model has it; otherwise back to auto.
  select.value = styles.some(([value]) => value === chosen) ? chosen : "auto";
}

$("model").addEventListener("change", showStyles);

async function loadModels() {
  const select = $("model");
  try {
    const response = await fetch("/v1/models");
    if (!response.ok) throw new Error(await problemText(response));
    const listing = await response.json();
    select.innerHTML = "";
    models = {};
    for (const m of listing.models) {
      models[m.name] = m;
      const option = document.createElement("option");
      option.value = m.name;
      option.textContent = `${m.name} (${m.language})`;
      option.title = m.description;
      option.selected = m.name === listing.default;
      select.appendChild(option);
    }
    showStyles();
  } catch (err) {
    select.innerHTML = '<option value="">the server\'s default</option>';
    fail(`Could not list the text models: ${err.message}`);
  }
}

// XMLHttpRequest rather than fetch: it reports upload progress.
function send(data, onUpload) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/stories");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onUpload(e.loaded / e.total); };
    xhr.upload.onload = () => onUpload(1);
    xhr.onload = () => resolve(new Response(xhr.response, {
      status: xhr.status,
      headers: { "Content-Type": xhr.getResponseHeader("Content-Type") || "",
                 "Retry-After": xhr.getResponseHeader("Retry-After") || "" },
    }));
    xhr.onerror = () => reject(new Error("The server cannot be reached; is it running?"));
    xhr.send(data);
  });
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  show("error", false);
  if (!photo) { fail("Choose a photo first."); return; }
  const data = new FormData();
  data.append("image", photo, photo.name);
  for (const id of ["model", "style", "length", "temperature"]) {
    const field = $(id);
    if (field.value) data.append(field.name, field.value);
  }
  $("tell").disabled = true;
  show("result", false);
  show("progress", true);
  const started = Date.now();
  let phase = "Sending the photo…";
  $("progress-text").textContent = phase;
  const timer = setInterval(() => {
    $("progress-text").textContent = `${phase} ${Math.round((Date.now() - started) / 1000)} s`;
  }, 500);
  try {
    const response = await send(data, (share) => {
      phase = share < 1 ? `Sending the photo… ${Math.round(share * 100)}%`
                        : "Looking at the photo and writing the story…";
    });
    if (!response.ok) { fail(await problemText(response)); return; }
    const story = await response.json();
    $("caption").textContent = story.caption;
    $("story").textContent = story.story;
    $("meta").textContent = `${story.model} · seed ${story.seed} · ` +
      `${(story.timings.total_ms / 1000).toFixed(1)} s`;
    const card = $("card");
    card.alt = story.alt_text;
    card.src = story.card_url;
    $("download").href = story.card_url;
    $("download").download = `talkative-${story.id}.png`;
    show("progress", false);
    show("result", true);
    $("tell").disabled = false;
  } catch (err) {
    fail(err.message);
  } finally {
    clearInterval(timer);
  }
});

$("copy").addEventListener("click", async () => {
  const text = `${$("story").textContent}\n\n— “${$("caption").textContent}”`;
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    // No clipboard API (plain http on a LAN address): select the text for Ctrl+C.
    const range = document.createRange();
    range.selectNodeContents($("story"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    document.execCommand("copy");
  }
  $("copy").textContent = "Copied";
  setTimeout(() => { $("copy").textContent = "Copy the story"; }, 2000);
});

loadModels();
