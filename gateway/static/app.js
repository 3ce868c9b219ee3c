// The web page: start a job (uploading the clip first if one was picked), follow its stages over
// Server-Sent Events, then play original / edited / mask side by side. Plain ES module, no build.
// The token stays in this tab (sessionStorage) and goes only in the Authorization header; what a
// browser fetches by itself (EventSource, <video>, <img>, the log link) gets a signed, short-lived
// URL from POST /api/video/links/{job_id}, renewed when it has expired.

const STAGES = ["extracting", "masking", "propagating", "editing", "smoothing", "saving"];
const $ = (id) => document.getElementById(id);
let events = null;

const token = () => $("token").value.trim();

async function api(path, options = {}) {  // a JSON call with the token; throws the API's error
  const headers = { ...(options.headers || {}) };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (err) {
    throw new Error(`the server could not be reached (${err.message}); is videoedit-web running?`);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = body && body.error ? `${body.error.message} (${body.error.code})` : `HTTP ${response.status}`;
    throw new Error(error);
  }
  return body;
}

async function link(jobId, target) {  // "events" or an artifact kind -> a URL that needs no header
  const { url } = await api(`/api/video/links/${encodeURIComponent(jobId)}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ for: target }),
  });
  return url;
}

function showFormError(message) {
  $("form-error").textContent = message;
  $("form-error").hidden = !message;
}

async function inputPath() {
  const file = $("file").files[0];
  if (file) {
    showFormError(`uploading ${file.name}…`);
    const uploaded = await api(`/api/video/upload?filename=${encodeURIComponent(file.name)}`, {
      method: "POST", body: file, headers: { "Content-Type": "application/octet-stream" },
    });
    showFormError("");
    return uploaded.input_video_path;
  }
  const path = $("path").value.trim();
  if (!path) throw new Error("pick a video file, or type the path of one on the server");
  return path;
}

async function start(mode) {
  showFormError("");
  try {
    const maskPrompt = $("mask-prompt").value.trim();
    const editPrompt = $("edit-prompt").value.trim();
    if (!maskPrompt) throw new Error("say what to edit (e.g. \"hair\")");
    if (!editPrompt) throw new Error("say how to edit it (e.g. \"make the hair red\")");
    const params = { mode, num_inference_steps: Number($("steps").value), edit_size: $("edit-size").value };
    if (mode === "single_frame") params.frame_index = $("frame-index").value;
    const keyframes = $("keyframes").value;  // the model edits keyframes; the rest carry their edit
    if (mode === "video" && keyframes === "adaptive") params.keyframes = "adaptive";
    else if (mode === "video" && keyframes !== "1") params.keyframe_interval = keyframes;
    const status = await api("/api/video/edit", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ input_video_path: await inputPath(), mask_prompt: maskPrompt, edit_prompt: editPrompt, params }),
    });
    follow(status.job_id, mode);
    refreshJobs();
  } catch (err) {
    showFormError(err.message);
  }
}

function drawStages() {
  $("stages").replaceChildren(...STAGES.map((name) => {
    const item = document.createElement("li");
    item.dataset.stage = name;
    item.innerHTML = `<span>${name}</span><progress max="1" value="0"></progress><span class="pct"></span>`;
    return item;
  }));
}

function show(status) {
  $("job-state").textContent = status.status;
  $("job-message").textContent = status.message || "";
  // What the input holds (e.g. "1280x720 BT.2020 HLG 10-bit, 29.97 fps"), once probed.
  $("job-media").textContent = status.media ? status.media.summary : "";
  $("job-error").textContent = status.error || "";
  $("job-error").hidden = !status.error;
  const current = STAGES.indexOf(status.status);
  for (const item of $("stages").children) {
    const index = STAGES.indexOf(item.dataset.stage);
    const done = status.status === "finished" || (current >= 0 && index < current);
    let fraction = done ? 1 : 0;
    if (index === current && status.total_frames) fraction = (status.current_frame || 0) / status.total_frames;
    item.classList.toggle("current", index === current);
    item.querySelector("progress").value = fraction;
    item.querySelector(".pct").textContent = fraction ? `${Math.round(fraction * 100)}%` : "";
  }
}

function follow(jobId, mode) {
  if (events) events.close();
  $("job").hidden = false;
  $("job-id").textContent = jobId;
  $("results").hidden = $("stills").hidden = true;
  $("log").textContent = "";
  $("log-link").hidden = true;
  drawStages();
  listen(jobId, mode);
}

async function listen(jobId, mode) {
  let source;
  try {
    source = events = new EventSource(await link(jobId, "events"));
  } catch (err) {
    $("job-message").textContent = `could not follow the job: ${err.message}`;
    return;
  }
  let ended = false;
  source.onmessage = (message) => {
    const status = JSON.parse(message.data);
    show(status);
    if (["finished", "failed", "cancelled"].includes(status.status)) {
      ended = true;
      source.close();
      refreshJobs();
      finished(status, mode || ((status.output_video_path || "").endsWith(".png") ? "single_frame" : "video"));
    }
  };
  source.addEventListener("error", () => {
    if (ended || events !== source) return;
    // Reconnect with a fresh link (the old one may have expired); a new stream starts with the latest status.
    source.close();
    $("job-message").textContent = "lost the connection to the server; retrying…";
    setTimeout(() => { if (events === source) listen(jobId, mode); }, 2000);
  });
}

async function finished(status, mode) {
  const jobId = status.job_id;
  try {
    const headers = token() ? { Authorization: `Bearer ${token()}` } : {};
    const log = await fetch(`/api/video/artifact/${encodeURIComponent(jobId)}/log`, { headers });
    $("log").textContent = log.ok ? await log.text() : "";
    $("log-link").href = await link(jobId, "log");
    $("log-link").hidden = false;
  } catch (err) {
    $("log").textContent = `could not load the log: ${err.message}`;
  }
  if (status.status !== "finished") return;
  try {
    if (mode === "single_frame") {
      await showMedia([$("still-output"), $("still-mask")], jobId);
      $("stills").hidden = false;
      return;
    }
    await showMedia([$("video-input"), $("video-output"), $("video-mask")], jobId);
    $("results").hidden = false;
  } catch (err) {
    $("job-message").textContent = `could not load the results: ${err.message}`;
  }
}

// Each element's data-kind names its artifact; a signed link of its own, renewed on an error (an
// expired link, when a video asks for more of the file later).
async function showMedia(elements, jobId) {
  for (const element of elements) {
    element.dataset.job = jobId;
    element.src = await link(jobId, element.dataset.kind);
  }
}

async function renew(event) {
  const element = event.target;
  if (!element.dataset.job || Date.now() - (element.renewedAt || 0) < 10000) return;  // not in a loop
  element.renewedAt = Date.now();
  const at = element.currentTime || 0;
  try {
    element.src = await link(element.dataset.job, element.dataset.kind);
    if (at) element.currentTime = at;
  } catch (err) {
    $("job-message").textContent = `could not reload ${element.dataset.kind}: ${err.message}`;
  }
}

// The edited video leads: play, pause and seeking carry over to the original and the mask.
function synchronise() {
  const lead = $("video-output");
  const others = [$("video-input"), $("video-mask")];
  lead.addEventListener("play", () => others.forEach((v) => { v.currentTime = lead.currentTime; v.play().catch(() => {}); }));
  lead.addEventListener("pause", () => others.forEach((v) => v.pause()));
  lead.addEventListener("seeked", () => others.forEach((v) => { v.currentTime = lead.currentTime; }));
  lead.addEventListener("timeupdate", () => others.forEach((v) => {
    if (Math.abs(v.currentTime - lead.currentTime) > 0.2) v.currentTime = lead.currentTime;
  }));
}

async function refreshJobs() {
  try {
    const { jobs } = await api("/api/video/jobs?page_size=20");
    $("jobs").replaceChildren(...jobs.map((job) => {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.textContent = job.job_id;
      link.onclick = () => follow(job.job_id);
      item.append(link, ` ${job.status}${job.error ? ": " + job.error : ""}`);
      return item;
    }));
  } catch (err) {
    $("jobs").replaceChildren(Object.assign(document.createElement("li"), { className: "error", textContent: err.message }));
  }
}

$("token").value = sessionStorage.getItem("videoedit-token") || "";
$("token").addEventListener("change", () => { sessionStorage.setItem("videoedit-token", token()); refreshJobs(); });
for (const id of ["video-input", "video-output", "video-mask", "still-output", "still-mask"]) {
  $(id).addEventListener("error", renew);
}
$("job-form").addEventListener("submit", (event) => { event.preventDefault(); start("video"); });
$("preview").addEventListener("click", () => start("single_frame"));
$("refresh").addEventListener("click", refreshJobs);
synchronise();
refreshJobs();
