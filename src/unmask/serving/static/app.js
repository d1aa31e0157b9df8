// unmask web page: upload -> /v1/detect -> boxes on a canvas + table; click a face ->
// /v1/explain. Plain JS, no build step, nothing loaded from outside this server.
"use strict";

const COLOURS = { fake: "rgb(220, 40, 40)", real: "rgb(40, 170, 60)" };
const MAX_CANVAS = 1600; // canvas pixels on the long side (display is scaled by CSS)

const $ = (id) => document.getElementById(id);
const state = { file: null, result: null, image: null, scale: 1, selected: -1, model: null };

function setStatus(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

async function errorText(resp) {
  try {
    const body = await resp.json();
    if (body && body.error) return `${body.error.message} [${resp.status} ${body.error.code}]`;
  } catch (_) { /* not JSON */ }
  return `HTTP ${resp.status}`;
}

function fmt(p) { return p === null || p === undefined ? "" : Number(p).toFixed(3); }

async function loadModel() {
  try {
    const resp = await fetch("/v1/models");
    if (!resp.ok) throw new Error(await errorText(resp));
    const body = await resp.json();
    const m = body.models[0];
    state.model = m;
    $("model").textContent =
      `model ${m.id} (${m.detector}, unmask ${m.version}) \u00b7 classes ${m.classes.join("/")}` +
      ` \u00b7 verdict "fake" when P(fake) \u2265 ${Number(m.threshold).toFixed(3)}`;
    const lim = body.limits;
    $("limits").textContent =
      `up to ${(lim.max_upload_bytes / 1048576).toFixed(0)} MiB and ` +
      `${(lim.max_pixels / 1e6).toFixed(0)} megapixels`;
  } catch (e) {
    $("model").textContent = `model unavailable: ${e.message}`;
  }
}

async function upload(file) {
  state.file = file;
  state.result = null;
  state.selected = -1;
  $("result").hidden = true;
  $("explain-box").hidden = true;
  document.body.dataset.state = "busy";
  setStatus(`Scoring ${file.name} (${(file.size / 1024).toFixed(0)} KiB)\u2026`);
  const form = new FormData();
  form.append("file", file, file.name);
  let resp;
  try {
    resp = await fetch("/v1/detect", { method: "POST", body: form });
  } catch (e) {
    document.body.dataset.state = "error";
    setStatus(`Upload failed: ${e.message}`, true);
    return;
  }
  if (!resp.ok) {
    document.body.dataset.state = "error";
    setStatus(await errorText(resp), true);
    return;
  }
  const body = await resp.json();
  state.result = body.result;
  state.imageSize = body.image;
  await showResult(file, body);
  document.body.dataset.state = "done";
}

function loadImage(file) {
  return new Promise((resolve) => {
    const url = URL.createObjectURL(file);
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => { URL.revokeObjectURL(url); resolve(null); };
    img.src = url;
  });
}

async function showResult(file, body) {
  const res = body.result;
  const v = $("verdict");
  v.className = `verdict ${res.verdict}`;
  const label = { fake: "FAKE", real: "real", no_face: "no face found", error: "error" };
  v.textContent = res.score === null
    ? label[res.verdict] || res.verdict
    : `${label[res.verdict] || res.verdict} \u00b7 highest P(fake) ${fmt(res.score)}`;
  showProvenance(res.provenance);
  fillTable(res);
  $("result").hidden = false;
  const n = res.faces.length;
  setStatus(`${file.name}: ${n} face${n === 1 ? "" : "s"} found in ${body.elapsed_ms} ms.`);

  const canvas = $("canvas");
  const note = $("canvas-note");
  note.textContent = "";
  state.image = null;
  if (res.kind === "video") {
    canvas.hidden = true;
    const tracks = (res.video && res.video.tracks) || [];
    note.textContent = `video: ${res.video ? res.video.frames_sampled : 0} frames sampled, ` +
      `${tracks.length} tracked face(s). ${res.video ? res.video.rule : ""}`;
    return;
  }
  canvas.hidden = false;
  const img = await loadImage(file);
  if (!img) {
    canvas.hidden = true;
    note.textContent = "This browser cannot display this image format; the scores are above.";
    return;
  }
  state.image = img;
  drawBoxes();
}

// The file's Content Credentials (signed) and metadata hints (unsigned), as the server
// summarised them, on a line of their own: the pixel verdict above is never changed by them.
function showProvenance(p) {
  const el = $("provenance");
  if (!p || p.summary === "none") {
    el.hidden = true;
    el.textContent = "";
    return;
  }
  el.className = `provenance ${p.status}`;
  el.dataset.status = p.status;
  el.textContent = p.summary; // text, never HTML: it comes from the uploaded file
  el.title = (p.hints || []).map((h) => `${h.field}: ${h.value}`).join("\n");
  el.hidden = false;
}

function drawBoxes() {
  const img = state.image;
  const res = state.result;
  if (!img || !res) return;
  const canvas = $("canvas");
  const nw = img.naturalWidth, nh = img.naturalHeight;
  const k = Math.min(1, MAX_CANVAS / Math.max(nw, nh));
  canvas.width = Math.round(nw * k);
  canvas.height = Math.round(nh * k);
  // Boxes are in the server's decoded pixels; map them onto the displayed image.
  const srv = state.imageSize || { width: nw, height: nh };
  const sx = (canvas.width / srv.width), sy = (canvas.height / srv.height);
  state.scale = { sx, sy };
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  const lw = Math.max(2, Math.round(Math.max(canvas.width, canvas.height) / 250));
  const fontPx = Math.max(12, Math.round(Math.max(canvas.width, canvas.height) / 40));
  ctx.font = `bold ${fontPx}px system-ui, sans-serif`;
  ctx.textBaseline = "bottom";
  res.faces.forEach((f, i) => {
    const colour = COLOURS[f.verdict] || "#888";
    const [x0, y0, x1, y1] = f.box;
    const X0 = x0 * sx, Y0 = y0 * sy, W = (x1 - x0) * sx, H = (y1 - y0) * sy;
    ctx.lineWidth = i === state.selected ? lw * 2 : lw;
    ctx.strokeStyle = colour;
    ctx.strokeRect(X0, Y0, W, H);
    const text = `${i}: ${f.verdict === "fake" ? "FAKE" : "real"} ${fmt(f.p_fake)}`;
    const tw = ctx.measureText(text).width + 8;
    const ty = Math.max(fontPx + 4, Y0);
    ctx.fillStyle = colour;
    ctx.fillRect(Math.max(0, X0), ty - fontPx - 4, tw, fontPx + 4);
    ctx.fillStyle = "#fff";
    ctx.fillText(text, Math.max(0, X0) + 4, ty - 2);
  });
  canvas.dataset.faces = String(res.faces.length);
}

function fillTable(res) {
  const extra = (state.model ? state.model.classes : ["real", "fake"]).slice(1)
    .filter((c) => c !== "fake");
  const video = res.kind === "video";
  // composite models name the member that drove each face's score
  const composite = res.faces.some((f) => f.driver);
  const head = ["#", ...(video ? ["frame", "track"] : []), "box (x0, y0, x1, y1)",
    "P(fake)", ...extra.map((c) => `P(${c})`), ...(composite ? ["driver"] : []), "verdict"];
  $("faces-head").replaceChildren(...head.map((h) => {
    const th = document.createElement("th");
    th.textContent = h;
    return th;
  }));
  const tbody = $("faces").tBodies[0];
  tbody.replaceChildren();
  if (!res.faces.length) {
    const tr = tbody.insertRow();
    const td = tr.insertCell();
    td.colSpan = head.length;
    td.textContent = "No face found in this file.";
    tr.className = "empty";
    return;
  }
  res.faces.forEach((f, i) => {
    const tr = tbody.insertRow();
    tr.className = "face";
    tr.dataset.index = String(i);
    tr.dataset.verdict = f.verdict;
    const cells = [String(i), ...(video ? [String(f.frame), String(f.track ?? "")] : []),
      f.box.join(", "), fmt(f.p_fake), ...extra.map((c) => fmt(f.probs[c])),
      ...(composite ? [f.driver ?? ""] : [])];
    for (const c of cells) tr.insertCell().textContent = c;
    const vc = tr.insertCell();
    vc.className = f.verdict;
    const sw = document.createElement("span");
    sw.className = `swatch ${f.verdict}`;
    vc.append(sw, f.verdict === "fake" ? "FAKE" : "real");
    tr.addEventListener("click", () => explain(i));
  });
}

async function explain(i) {
  const res = state.result;
  if (!res || !state.file) return;
  if (res.kind === "video") {
    setStatus("Heatmaps are for still images: upload a frame of the video.", true);
    return;
  }
  state.selected = i;
  for (const tr of $("faces").tBodies[0].rows) {
    tr.classList.toggle("selected", tr.dataset.index === String(i));
  }
  drawBoxes();
  const box = $("explain-box");
  const cap = $("explain-caption");
  setStatus(`Explaining face ${i}\u2026`);
  const form = new FormData();
  form.append("file", state.file, state.file.name);
  let resp;
  try {
    resp = await fetch(`/v1/explain?face=${i}`, { method: "POST", body: form });
  } catch (e) {
    setStatus(`Explain failed: ${e.message}`, true);
    return;
  }
  if (!resp.ok) {
    box.hidden = true;
    setStatus(await errorText(resp), true);
    return;
  }
  const blob = await resp.blob();
  const img = $("explain");
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(blob);
  const kind = resp.headers.get("X-Unmask-Explain");
  const classes = (resp.headers.get("X-Unmask-Classes") || "").split(",");
  cap.textContent = kind === "gradcam"
    ? `Face ${i}: the crop, then where the model looked for each class ` +
      `(${classes.join(", ")}); red = strongest evidence.`
    : `Face ${i}: this face's frequency spectrum against the model's class means.`;
  box.hidden = false;
  setStatus(`Face ${i}: P(fake) ${fmt(resp.headers.get("X-Unmask-P-Fake"))} ` +
            `\u2192 ${resp.headers.get("X-Unmask-Verdict")}`);
}

function faceAt(evt) {
  const res = state.result;
  if (!res || !state.scale) return -1;
  const canvas = $("canvas");
  const rect = canvas.getBoundingClientRect();
  const x = (evt.clientX - rect.left) * (canvas.width / rect.width) / state.scale.sx;
  const y = (evt.clientY - rect.top) * (canvas.height / rect.height) / state.scale.sy;
  // Smallest box containing the point (nested faces: the inner one).
  let best = -1, bestArea = Infinity;
  res.faces.forEach((f, i) => {
    const [x0, y0, x1, y1] = f.box;
    const area = (x1 - x0) * (y1 - y0);
    if (x >= x0 && x <= x1 && y >= y0 && y <= y1 && area < bestArea) { best = i; bestArea = area; }
  });
  return best;
}

function init() {
  const drop = $("drop");
  const input = $("file");
  input.addEventListener("change", () => { if (input.files.length) upload(input.files[0]); });
  for (const ev of ["dragenter", "dragover"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const ev of ["dragleave", "drop"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  }
  drop.addEventListener("drop", (e) => {
    const files = e.dataTransfer && e.dataTransfer.files;
    if (files && files.length) upload(files[0]);
  });
  $("canvas").addEventListener("click", (e) => {
    const i = faceAt(e);
    if (i >= 0) explain(i);
  });
  loadModel();
  document.body.dataset.state = "ready";
}

document.addEventListener("DOMContentLoaded", init);
