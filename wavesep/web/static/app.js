// The wavesep page: uploads files to /api/jobs, polls the shared queue, draws the results.
// Plain JavaScript, no build step. Every element the page shows for a job is keyed by its id,
// so polling updates the cards in place and never restarts a player.
"use strict";

let config = null;
const cards = new Map();          // job id -> card element
const POLL_MS = 500;

function $(sel, root) { return (root || document).querySelector(sel); }

function showError(text) {
  const box = document.createElement("div");
  box.className = "error";
  box.textContent = text;
  $("#errors").prepend(box);
  setTimeout(() => box.remove(), 60000);
}

function mb(bytes) { return (bytes / 1048576).toFixed(bytes < 10485760 ? 1 : 0) + " MB"; }
function minutes(s) {
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), r = s % 60;
  return [h && `${h} h`, m && `${m} min`, (r || s === 0) && `${r} s`].filter(Boolean).join(" ");
}

async function loadConfig() {
  config = await (await fetch("/api/config")).json();
  const models = $("#model");
  for (const m of config.models) {
    const o = new Option(m.name, m.name, false, m.name === config.default_model);
    o.title = m.description;
    models.add(o);
  }
  models.addEventListener("change", fillOptions);
  fillOptions();
  $("#limits").textContent = `Any format wavesep-separate reads (wav, flac, mp3, ogg; m4a, mp4 and others with ffmpeg), ` +
    `up to ${mb(config.max_upload_bytes)} and ${minutes(config.max_seconds)} per file. ` +
    `Files are queued and separated one after another; results are kept for ${minutes(config.keep_seconds)}.`;
  $("#binding").textContent = config.local_only
    ? `Served on ${config.host}: only this computer can open this page. Device: ${config.device}.`
    : `Served on ${config.host}: other machines on the network can open this page. Device: ${config.device}.`;
}

function fillOptions() {
  const model = config.models.find(m => m.name === $("#model").value);
  const stems = $("#two-stems");
  stems.innerHTML = "";
  stems.add(new Option(`all stems (${model.sources.join(", ")})`, ""));
  for (const s of model.sources) stems.add(new Option(`${s} + no_${s}`, s));
  const pf = $("#postfilter");
  pf.innerHTML = "";
  for (const p of config.postfilters) {
    pf.add(new Option(p === "auto" ? `auto (${model.postfilter})` : p, p));
  }
}

function upload(file) {
  if (file.size > config.max_upload_bytes) {
    showError(`${file.name} (${mb(file.size)}) is larger than the upload limit of ${mb(config.max_upload_bytes)} (wavesep serve --max-upload-mb)`);
    return;
  }
  const q = new URLSearchParams({
    filename: file.name, model: $("#model").value,
    two_stems: $("#two-stems").value, postfilter: $("#postfilter").value,
  });
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/api/jobs?" + q.toString());
  xhr.setRequestHeader("Content-Type", "application/octet-stream");
  xhr.onload = () => {
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (e) { body = { error: xhr.statusText }; }
    if (xhr.status >= 400) showError(body.error || `upload of ${file.name} failed (${xhr.status})`);
    poll();
  };
  xhr.onerror = () => showError(`upload of ${file.name} failed: the server did not answer`);
  xhr.send(file);
}

function uploadAll(files) { for (const f of files) upload(f); }

function drawPeaks(canvas, peaks, color) {
  const w = canvas.width = canvas.clientWidth * (window.devicePixelRatio || 1);
  const h = canvas.height = canvas.clientHeight * (window.devicePixelRatio || 1);
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = color;
  const n = peaks.length;
  for (let i = 0; i < n; i++) {
    const x0 = Math.floor(i * w / n), x1 = Math.max(x0 + 1, Math.floor((i + 1) * w / n));
    const [lo, hi] = peaks[i];
    const y0 = (1 - Math.min(1, hi)) * h / 2, y1 = (1 - Math.max(-1, lo)) * h / 2;
    ctx.fillRect(x0, y0, x1 - x0, Math.max(1, y1 - y0));
  }
}

const COLORS = ["#3b6fd8", "#d8783b", "#2e9e5b", "#9b4dca", "#c23b5b"];

async function showResults(card, job) {
  const peaks = await (await fetch(`/api/jobs/${job.id}/peaks`)).json();
  const tracks = $(".tracks", card);
  $(".results", card).hidden = false;  // before drawing: a hidden canvas has no width
  ["mixture", ...job.stems].forEach((stem, i) => {
    const row = document.createElement("div");
    row.className = "track";
    row.dataset.stem = stem;
    const base = `/api/jobs/${job.id}/audio/${encodeURIComponent(stem)}.wav`;
    row.innerHTML = `<span class="label"></span><canvas></canvas><audio controls preload="metadata"></audio>` +
      (stem === "mixture" ? "<span></span>" : `<a class="download button" download>download</a>`);
    $(".label", row).textContent = stem;
    const player = $("audio", row);
    player.src = base;
    player.dataset.stem = stem;
    const link = $("a.download", row);
    if (link) { link.href = base + "?download=1"; link.dataset.stem = stem; }
    tracks.append(row);
    drawPeaks($("canvas", row), peaks[stem] || [], COLORS[i % COLORS.length]);
  });
  $(".zip", card).href = `/api/jobs/${job.id}/stems.zip`;
}

function card(job) {
  let el = cards.get(job.id);
  if (!el) {
    el = $("#job-template").content.firstElementChild.cloneNode(true);
    el.dataset.jobId = job.id;
    $(".job-name", el).textContent = job.name;
    $(".remove", el).addEventListener("click", async () => {
      await fetch(`/api/jobs/${job.id}`, { method: "DELETE" });
      poll();
    });
    cards.set(job.id, el);
    $("#queue").append(el);
  }
  return el;
}

function update(job) {
  const el = card(job);
  const opts = [job.model, job.two_stems ? `${job.two_stems} + no_${job.two_stems}` : "all stems",
                `post-filter ${job.postfilter}`];
  if (job.seconds != null) opts.push(minutes(job.seconds));
  $(".job-meta", el).textContent = opts.join(" · ");
  const bar = $("progress", el);
  bar.value = job.progress;
  let stage = job.stage;
  if (job.status === "queued") stage = `queued: number ${job.position} in line`;
  if (job.status === "running" && job.stage === "separating") stage = `separating: ${Math.round(job.progress * 100)}%`;
  $(".stage", el).textContent = stage;
  const msg = $(".message", el);
  msg.textContent = job.message;
  msg.className = "message" + (job.status === "error" ? " error" : "");
  if (job.status === "done" && el.dataset.status !== "done") {
    el.dataset.status = "loading";
    showResults(el, job).then(() => { el.dataset.status = "done"; });
  } else if (el.dataset.status !== "done" && el.dataset.status !== "loading") {
    el.dataset.status = job.status;
  }
}

let polling = false;
async function poll() {
  if (polling) return;
  polling = true;
  try {
    const jobs = await (await fetch("/api/jobs")).json();
    const seen = new Set(jobs.map(j => j.id));
    for (const [id, el] of cards) if (!seen.has(id)) { el.remove(); cards.delete(id); }
    jobs.forEach(update);
  } catch (e) {
    // the server may be restarting; the next poll tries again
  } finally {
    polling = false;
  }
}

function setupDrop() {
  const drop = $("#drop");
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, e => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) {
    drop.addEventListener(type, e => { e.preventDefault(); drop.classList.remove("over"); });
  }
  drop.addEventListener("drop", e => uploadAll(e.dataTransfer.files));
  $("#file").addEventListener("change", e => { uploadAll(e.target.files); e.target.value = ""; });
}

loadConfig().then(() => { setupDrop(); poll(); setInterval(poll, POLL_MS); });
