// litecls web app: photos (upload / drag and drop) and a live camera over a WebSocket.
// Plain JavaScript served by the package: no CDN, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { models: [], defaultModel: "", camera: null };

function apiKey() { return $("api-key").value || localStorage.getItem("litecls-api-key") || ""; }
function headers() { const key = apiKey(); return key ? { "X-API-Key": key } : {}; }
function setStatus(text) { $("status").textContent = text; }

function baseName(name) { return name.includes(":") ? name.split(":")[0] : name; }

function modelRef() {
  const name = $("model").value;
  const entry = state.models.find((m) => baseName(m.name) === name);
  if (entry && entry.source === "zoo") return `${name}:${$("precision").value}`;
  return name;
}

function options() {
  const params = new URLSearchParams();
  params.set("model", modelRef());
  params.set("max_results", $("max-results").value || "3");
  const threshold = parseFloat($("threshold").value || "0");
  if (threshold > 0) params.set("score_threshold", String(threshold));
  if ($("threads").value) params.set("threads", $("threads").value);
  return params;
}

async function loadModels() {
  const response = await fetch("/v1/models", { headers: headers() });
  if (response.status === 401) {
    $("key-row").hidden = false;
    setStatus("this service needs an API key");
    return;
  }
  const body = await response.json();
  state.models = body.models;
  state.defaultModel = body.default;
  const select = $("model");
  const current = select.value || baseName(body.default);
  const names = [...new Set(body.models.map((m) => baseName(m.name)))];
  select.replaceChildren(...names.map((n) => new Option(n, n, false, n === current)));
  fillPrecisions(body.default);
  const list = $("model-list");
  list.replaceChildren(...body.models.map((m) => {
    const li = document.createElement("li");
    const size = m.file_size_bytes ? `${(m.file_size_bytes / 1e6).toFixed(1)} MB` : "not built";
    const top1 = m.published_top1 ? `, published top-1 ${m.published_top1.toFixed(1)}%` : "";
    li.textContent = `${m.name}: ${size}${top1}${m.loaded ? " (loaded)" : ""}`;
    if (m.loaded) li.className = "loaded";
    return li;
  }));
}

function fillPrecisions(preferred) {
  const name = $("model").value;
  const zoo = state.models.filter((m) => m.source === "zoo" && baseName(m.name) === name);
  const select = $("precision");
  const keep = select.value || (preferred && preferred.includes(":") ? preferred.split(":")[1] : "int8");
  select.replaceChildren(...zoo.map((m) => new Option(m.precision, m.precision, false, m.precision === keep)));
  select.disabled = zoo.length === 0;
}

// -- photos ---------------------------------------------------------------------------------

// A quantized score of exactly 0 says nothing (the CLI hides it too).
function shown(categories) { return categories.filter((c) => c.score > 0); }

function bars(categories) {
  const box = document.createElement("div");
  for (const c of shown(categories)) {
    const bar = document.createElement("div");
    bar.className = "bar";
    const fill = document.createElement("div");
    fill.className = "fill";
    fill.style.width = `${(c.score * 100).toFixed(1)}%`;
    const text = document.createElement("div");
    text.className = "text";
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = c.display_name || c.category_name || `class ${c.index}`;
    const score = document.createElement("span");
    score.textContent = `${(c.score * 100).toFixed(1)}%`;
    text.append(label, score);
    bar.append(fill, text);
    box.append(bar);
  }
  return box;
}

function card(file, row, model) {
  const div = document.createElement("div");
  div.className = "card";
  const img = document.createElement("img");
  img.src = URL.createObjectURL(file);
  img.alt = file.name;
  const body = document.createElement("div");
  body.className = "body";
  const name = document.createElement("div");
  name.className = "name";
  name.textContent = file.name;
  body.append(name);
  if (row.error) {
    const error = document.createElement("div");
    error.className = "error";
    error.textContent = row.error;
    body.append(error);
  } else {
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = `${model} · inference ${row.inference_ms.toFixed(1)} ms`;
    const badge = document.createElement("span");
    badge.className = row.ambiguous ? "badge ambiguous" : "badge ok";
    badge.textContent = row.ambiguous ? "ambiguous" : "confident";
    meta.append(badge);
    body.append(meta, bars(row.categories));
  }
  div.append(img, body);
  return div;
}

async function classifyFiles(files) {
  if (!files.length) return;
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  setStatus(`classifying ${files.length} photo(s)…`);
  const response = await fetch(`/v1/classify?${options()}`, { method: "POST", body: form, headers: headers() });
  const body = await response.json();
  const rows = body.results || [];
  const results = $("results");
  if (!rows.length) {
    const error = document.createElement("div");
    error.className = "error";
    error.textContent = body.error || `error ${response.status}`;
    results.prepend(error);
  }
  rows.forEach((row, i) => results.prepend(card(files[i], row, body.model || modelRef())));
  setStatus(response.ok ? `${rows.length} photo(s) classified with ${body.model}` : body.error);
  loadModels();
}

function setupPhotos() {
  $("files").addEventListener("change", (e) => classifyFiles([...e.target.files]));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    classifyFiles([...e.dataTransfer.files].filter((f) => f.type.startsWith("image/")));
  });
}

// -- live camera ------------------------------------------------------------------------------

class Camera {
  constructor() {
    this.video = $("video");
    this.overlay = $("overlay");
    this.grab = document.createElement("canvas");
    this.inFlight = 0;
    this.stamps = [];
    this.last = null;
    this.running = false;
  }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: false });
    this.video.srcObject = this.stream;
    await this.video.play();
    this.connect();
  }

  connect() {
    const params = options();
    const key = apiKey();
    if (key) params.set("api_key", key);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.ws = new WebSocket(`${scheme}://${location.host}/v1/ws/classify?${params}`);
    this.ws.binaryType = "arraybuffer";
    this.ws.onopen = () => { this.running = true; this.inFlight = 0; this.pump(); this.pump(); };
    this.ws.onmessage = (event) => this.answer(JSON.parse(event.data));
    this.ws.onclose = () => { this.running = false; };
  }

  // At most two frames on the way: the server keeps only the newest, so nothing queues up.
  pump() {
    if (!this.running || this.inFlight >= 2 || this.video.readyState < 2) {
      if (this.running && this.video.readyState < 2) setTimeout(() => this.pump(), 20);
      return;
    }
    const w = this.video.videoWidth, h = this.video.videoHeight;
    // A short side of 256 keeps what a 224 model crops from it; smaller JPEGs cost less both ends.
    const scale = Math.min(1, 256 / Math.min(w, h));
    this.grab.width = Math.round(w * scale);
    this.grab.height = Math.round(h * scale);
    this.grab.getContext("2d").drawImage(this.video, 0, 0, this.grab.width, this.grab.height);
    this.inFlight += 1;
    this.grab.toBlob((blob) => {
      if (this.running && this.ws.readyState === WebSocket.OPEN) this.ws.send(blob);
      else this.inFlight -= 1;
    }, "image/jpeg", 0.85);
  }

  answer(message) {
    this.inFlight = Math.max(0, this.inFlight - 1);
    const now = performance.now();
    if (message.error) {
      setStatus(message.error);
    } else {
      this.stamps.push(now);
      this.last = message;
    }
    while (this.stamps.length && now - this.stamps[0] > 2000) this.stamps.shift();
    const span = this.stamps.length > 1 ? (now - this.stamps[0]) / 1000 : 0;
    this.fps = span > 0 ? (this.stamps.length - 1) / span : 0;
    this.draw();
    this.pump();
  }

  draw() {
    const m = this.last;
    $("fps").textContent = (this.fps || 0).toFixed(1);
    if (!m) return;
    $("camera-ms").textContent = m.inference_ms.toFixed(1);
    const labels = $("camera-labels");
    labels.replaceChildren(...shown(m.categories).slice(0, 3).map((c) => {
      const li = document.createElement("li");
      li.textContent = `${c.label} ${(c.score * 100).toFixed(1)}%`;
      li.dataset.label = c.label;
      return li;
    }));
    const canvas = this.overlay;
    canvas.width = this.video.videoWidth;
    canvas.height = this.video.videoHeight;
    const g = canvas.getContext("2d");
    g.clearRect(0, 0, canvas.width, canvas.height);
    const lines = shown(m.categories).slice(0, 3).map((c) => `${c.label}  ${(c.score * 100).toFixed(1)}%`);
    lines.push(`${m.model} · inference ${m.inference_ms.toFixed(1)} ms · ${(this.fps || 0).toFixed(1)} fps`);
    g.font = "bold 18px system-ui, sans-serif";
    const width = Math.max(...lines.map((l) => g.measureText(l).width)) + 20;
    g.fillStyle = "rgba(0, 0, 0, 0.6)";
    g.fillRect(8, 8, width, lines.length * 26 + 10);
    lines.forEach((line, i) => {
      g.fillStyle = i === lines.length - 1 ? "#9fd3ff" : "#fff";
      g.fillText(line, 18, 32 + i * 26);
    });
  }

  stop() {
    this.running = false;
    if (this.ws) this.ws.close();
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
  }
}

function setupCamera() {
  $("camera-start").addEventListener("click", async () => {
    if (state.camera) state.camera.stop();
    state.camera = new Camera();
    try {
      await state.camera.start();
      $("camera-start").disabled = true;
      $("camera-stop").disabled = false;
      setStatus("camera on");
    } catch (err) {
      setStatus(`camera unavailable: ${err.message}`);
    }
  });
  $("camera-stop").addEventListener("click", () => {
    if (state.camera) state.camera.stop();
    state.camera = null;
    $("camera-start").disabled = false;
    $("camera-stop").disabled = true;
  });
}

// Reconnect the camera with the new settings; photos use them on the next upload.
function settingsChanged() {
  if (state.camera && state.camera.running) { state.camera.ws.close(); state.camera.connect(); }
}

function showView(which) {
  $("photos-view").hidden = which !== "photos";
  $("camera-view").hidden = which !== "camera";
  $("tab-photos").classList.toggle("active", which === "photos");
  $("tab-camera").classList.toggle("active", which === "camera");
}

window.addEventListener("DOMContentLoaded", () => {
  $("tab-photos").addEventListener("click", () => showView("photos"));
  $("tab-camera").addEventListener("click", () => showView("camera"));
  $("model").addEventListener("change", () => { fillPrecisions(); settingsChanged(); });
  for (const id of ["precision", "threads", "max-results", "threshold"]) $(id).addEventListener("change", settingsChanged);
  $("api-key").addEventListener("change", () => { localStorage.setItem("litecls-api-key", $("api-key").value); loadModels(); });
  setupPhotos();
  setupCamera();
  loadModels().catch((err) => setStatus(`cannot reach the service: ${err.message}`));
});
