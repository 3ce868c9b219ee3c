// The web page: start a job (the picked clip is hashed and uploaded only when the server does not
// have it yet), follow it on its own address (/jobs/<id>) over Server-Sent Events with elapsed time,
// time left and a Cancel button, then play original / edited / mask side by side, with the mask
// over the original and a before/after wipe. Masks first: "Find the object" runs a masks job, whose
// objects are listed with tick boxes; Edit (and "Try another instruction" after it) then reuses
// those masks (extra.masks_from, extra.objects): no upload, no tracking again. Clicks on its frames
// (clicks.js) pick or correct the object: "Update the mask" runs a masks job with them (one at a
// time), and an edit sends them too (on those masks when they were found with them, or when they
// only pick among them; otherwise it tracks anew). Plain ES modules, no build.
// The token stays in this tab (sessionStorage) and goes only in the Authorization header; what a
// browser fetches by itself (EventSource, <video>, <img>, download links) gets a signed,
// short-lived URL from POST /api/video/links/{job_id}, renewed when it has expired.

import { PlainError, fromApi, jobError } from "./plain.js";
import { synchronise, showResults, hideResults, renewOnError, showMaskFrame } from "./results.js";
import { showObjects, hideObjects, tickedObjects } from "./objects.js";
import { sha256File } from "./sha256.js";
import { addObjectRow, moreObjects } from "./targets.js";
import { initClicks, showClicks, hideClicks, clicksShown, clearClicks, busy, visualPrompts, onlyPicks } from "./clicks.js";

const STAGES = {
  video: ["extracting", "masking", "propagating", "editing", "smoothing", "saving"],
  single_frame: ["extracting", "masking", "editing", "saving"],
  masks: ["extracting", "masking", "propagating", "saving"],
};
const ENDED = ["finished", "failed", "cancelled"];
const VIDEO_NAME = /\.(mp4|m4v|mov|mkv|webm|avi|mpe?g|ts|wmv|flv|3gp)$/i;
// Seconds per diffusion step of one frame at edit size 512 (scaled by the area of the edit size),
// until this tab has timed a job of its own: the order of what a CPU-only server takes.
const DEFAULT_STEP_S = 0.05;
const SLOW_S = 60;

const $ = (id) => document.getElementById(id);
const hashes = new WeakMap();  // File -> its SHA-256 (picking another instruction does not hash again)
let current = { jobId: null, status: null, source: null, receivedAt: 0 };
const inputs = new Map();  // job id -> the input path this tab started it with
const clicksOf = new Map();  // masks job id -> the clicks (visual_prompts' JSON) this tab started it with
// The masks an edit reuses: {masksFrom (a masks job's id), ids (all its objects), objects (the
// ticked ones), input (its input path, when this tab started it), clicks (the JSON of the clicks it
// was found with)}; null: edits find their own.
let reuse = null;

const token = () => $("token").value.trim();

async function api(path, options = {}) {  // a JSON call with the token; throws a PlainError
  const headers = { ...(options.headers || {}) };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch {
    throw new PlainError("The server could not be reached. Is videoedit-web running?", null, "UNAVAILABLE");
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) throw fromApi(body, response.status);
  return body;
}

const postJson = (path, body) =>
  api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

// "events", an artifact kind, or "object" with its id -> a URL that needs no header
async function link(jobId, target, objectId = null) {
  const body = objectId == null ? { for: target } : { for: target, object_id: objectId };
  return (await postJson(`/api/video/links/${encodeURIComponent(jobId)}`, body)).url;
}

function note(message) {
  $("form-note").textContent = message;
  $("form-note").hidden = !message;
}

function showFormError(err) {
  for (const marked of document.querySelectorAll("[aria-invalid]")) marked.removeAttribute("aria-invalid");
  $("form-error").textContent = err ? err.message + (err.code ? ` (${err.code})` : "") : "";
  $("form-error").hidden = !err;
  if (!err || !err.field) return;
  if (err.field === "token" || $("options").contains($(err.field))) $("options").open = true;
  $(err.field).setAttribute("aria-invalid", "true");
  $(err.field).focus();
}

function pickedFile() {  // the picked file, refused here when it cannot be a video
  const file = $("file").files[0];
  if (!file) return null;
  if (file.size === 0) throw new PlainError(`"${file.name}" is empty (0 bytes). Pick another file.`, "file");
  if (!((file.type || "").startsWith("video/") || VIDEO_NAME.test(file.name))) {
    throw new PlainError(`"${file.name}" is not a video. Pick an MP4, MOV, MKV or WebM file.`, "file");
  }
  return file;
}

async function inputPath() {
  const file = pickedFile();
  const path = $("path").value.trim();
  if (file && path) {
    throw new PlainError("Both a file and a server path are given: clear the path to upload the file, or the file to use the path.", "path");
  }
  if (!file) {
    if (!path) throw new PlainError("Pick a video file, or type the path of one on the server.", "file");
    return path;
  }
  if (!hashes.has(file)) {
    note(`checking ${file.name}…`);
    hashes.set(file, await sha256File(file, (done) => note(`checking ${file.name}: ${Math.round(done * 100)}%`)));
  }
  const sha256 = hashes.get(file);
  try {  // stored already (this or an earlier upload of the same content): send nothing
    const stored = await api(`/api/video/uploads/${sha256}`);
    note("");
    return stored.input_video_path;
  } catch (err) {
    if (err.code !== "NOT_FOUND") throw err;
  }
  note(`uploading ${file.name}…`);
  const uploaded = await api(`/api/video/upload?filename=${encodeURIComponent(file.name)}&sha256=${sha256}`, {
    method: "POST", body: file, headers: { "Content-Type": "application/octet-stream" },
  });
  note("");
  return uploaded.input_video_path;
}

// How the clicks now stand to those the masks found were found with: "same", "picks" (they were
// found without clicks, and these only pick among them, by what to edit) or "other".
function clicksSince() {
  if (JSON.stringify(visualPrompts()) === reuse.clicks) return "same";
  return reuse.clicks === "[]" && onlyPicks() && $("mask-prompt").value.trim() ? "picks" : "other";
}

// Whether a job in `mode` edits on the masks found (a video edit; a preview finds its own, on its
// frame); not when the clicks changed in a way only tracking again can follow.
const reuses = (mode) => Boolean(reuse) && mode === "video" && clicksSince() !== "other";

function request(mode) {  // the job's prompts and params from the form (and the clicks on the frames)
  const more = moreObjects();
  const clicks = mode === "single_frame" ? [] : visualPrompts();  // a preview edits as found
  if (more.length && clicks.length) {
    throw new PlainError("Clicks on the frame are for one object: clear them, or remove the other objects.", "click-clear");
  }
  if (more.length) return severalObjects(mode, more);
  const reusing = reuses(mode);
  const picking = reusing && clicksSince() === "picks";  // clicks pick among those masks: by what to edit
  const maskPrompt = reusing && !picking ? "" : $("mask-prompt").value.trim();  // the masks job's is used
  const editPrompt = mode === "masks" ? "" : $("edit-prompt").value.trim();
  if (!maskPrompt && !reusing && !clicks.length) throw new PlainError("Say what to edit (e.g. \"hair\").", "mask-prompt");
  if (!editPrompt && mode !== "masks") throw new PlainError("Say how to edit it (e.g. \"make the hair red\").", "edit-prompt");
  const sent = clicks.length && (!reusing || picking) ? { visual_prompts: clicks } : {};
  if (mode === "masks") return { mask_prompt: maskPrompt, ...sent, params: { mode } };
  const params = { mode, num_inference_steps: Number($("steps").value), edit_size: $("edit-size").value };
  if (reusing) {
    if (!reuse.objects.length) throw new PlainError("Tick at least one of the objects found.", `object-${reuse.ids[0]}`);
    params.masks_from = reuse.masksFrom;
    if (reuse.objects.length < reuse.ids.length) params.objects = reuse.objects.join(",");  // else all
  }
  if (mode === "single_frame") params.frame_index = $("frame-index").value;
  const keyframes = $("keyframes").value;  // the model edits keyframes; the rest carry their edit
  if (mode === "video" && keyframes === "adaptive") params.keyframes = "adaptive";
  else if (mode === "video" && keyframes !== "1") params.keyframe_interval = keyframes;
  return { mask_prompt: maskPrompt, edit_prompt: editPrompt, ...sent, params };
}

// Several objects, each with its own instruction (rows added below the first): sent as `objects`,
// tracked together in one job. Not on masks found before, nor for a one-frame preview.
function severalObjects(mode, more) {
  if (mode === "single_frame") throw new PlainError("A preview edits one object: remove the other objects.", "add-object");
  const objects = [{ mask_prompt: $("mask-prompt").value.trim(), edit_prompt: $("edit-prompt").value.trim(), n: 1 }, ...more];
  for (const object of objects) {
    const [mask, edit] = object.n === 1 ? ["mask-prompt", "edit-prompt"] : [`more-mask-${object.n}`, `more-edit-${object.n}`];
    if (!object.mask_prompt) throw new PlainError(`Say what object ${object.n} is (e.g. "sky").`, mask);
    if (!object.edit_prompt && mode !== "masks") throw new PlainError(`Say how to edit object ${object.n}.`, edit);
  }
  const params = mode === "masks" ? { mode } : { mode, num_inference_steps: Number($("steps").value), edit_size: $("edit-size").value };
  const sent = objects.map(({ mask_prompt, edit_prompt }) => (mode === "masks" ? { mask_prompt } : { mask_prompt, edit_prompt }));
  return { objects: sent, params };
}

// fromClicks: "Update the mask" (a masks job on the video on screen, its frames staying there
// while it runs, its errors said beside them).
async function start(mode, fromClicks = false) {
  showFormError(null);
  note("");
  $("click-error").hidden = true;
  if (mode === "masks") busy(true);  // one masks job at a time: Find and Update wait for it
  try {
    const job = request(mode);  // a form error leaves the job on screen (its tick boxes, say)
    if (!fromClicks && current.status && ENDED.includes(current.status.status)) {  // its error is not this attempt's
      leaveJob();
      history.pushState(null, "", "/");
    }
    // Reusing masks this tab found (or clicking on their frames): their input, as it was (nothing
    // hashed, looked up or sent).
    const known = fromClicks ? inputs.get(current.jobId) : reuses(mode) && reuse.input;
    job.input_video_path = known || await inputPath();
    const status = await postJson("/api/video/edit", job);
    inputs.set(status.job_id, job.input_video_path);
    if (mode === "masks") clicksOf.set(status.job_id, JSON.stringify(job.visual_prompts || []));
    history.pushState(null, "", `/jobs/${encodeURIComponent(status.job_id)}`);
    // A masks job finds new ones; the clicks stay for what this tab starts next.
    follow(status.job_id, { keepReuse: mode !== "masks", keepClicks: true, stayOnClicks: fromClicks });
    refreshJobs();
  } catch (err) {
    note("");
    if (mode === "masks") busy(false);
    if (!fromClicks) showFormError(err);
    else {
      $("click-error").textContent = err.message + (err.code ? ` (${err.code})` : "");
      $("click-error").hidden = false;
    }
  }
}

// --- the job on screen ---

function leaveJob() {
  if (current.source) current.source.close();
  current = { jobId: null, status: null, source: null, receivedAt: 0 };
  $("job").hidden = true;
  $("job-state").textContent = "";
}

// --- the masks an edit reuses ---

function setReuse(value) {
  reuse = value;
  $("reuse-note").hidden = !reuse;
  if (!reuse) return;
  if (!reuses("video")) {
    $("reuse-note").textContent = `Your clicks changed since job ${reuse.masksFrom} found the objects: Edit the video `
      + "finds them again with your clicks (\"Update the mask\" shows what they find first).";
    return;
  }
  const which = reuse.objects.length === reuse.ids.length ? "all the objects" : `objects ${reuse.objects.join(", ")}`;
  const picking = clicksSince() === "picks" ? " (your clicks pick among them)" : "";
  $("reuse-note").textContent = `Edit the video uses ${which} found by job ${reuse.masksFrom}${picking}, without finding them `
    + "again. " + (reuse.input ? "Change the video or what to edit to find them anew."
      : "Give the video that job used (pick the file or type its path); change what to edit to find anew.");
}

// A finished masks job's objects (ticking them picks what to edit), and its frames to click on.
async function listObjects(status) {
  const jobId = status.job_id;
  try {
    const found = await showObjects(jobId, api, (id) => link(jobId, "object", id), () => {
      if (reuse && reuse.masksFrom === jobId) setReuse({ ...reuse, objects: tickedObjects() });
    });
    if (current.jobId !== jobId) {  // another job is on screen by now
      hideObjects();
      return;
    }
    const objects = found.objects;
    const first = objects.length ? objects[0].best_frame : 0;
    await showClicks(status, found.frames, objects, clicksShown() ? null : first, (kind) => link(jobId, kind));
    if (!objects.length) return;
    showMaskFrame(first);
    const ids = objects.map((object) => object.id);
    const clicks = clicksOf.get(jobId) || "[]";  // a page opened afresh: found without clicks, say
    setReuse({ masksFrom: jobId, ids, objects: ids, input: inputs.get(jobId) || null, clicks });
    showAgain(true);
  } catch (err) {
    $("job-message").textContent = `Could not list the objects: ${err.message}`;
  }
}

function showAgain(first) {  // an instruction for the masks on screen: the first, or another one
  $("again-label").textContent = first ? "Instruction for the ticked objects" : "Another instruction";
  $("again-start").textContent = first ? "Edit the ticked objects" : "Try another instruction";
  $("again-prompt").value = "";
  $("again").hidden = false;
}

function again(event) {
  event.preventDefault();
  const prompt = $("again-prompt").value.trim();
  if (!prompt) {
    showFormError(new PlainError("Type an instruction (e.g. \"make the car green\").", "again-prompt"));
    return;
  }
  $("edit-prompt").value = prompt;
  start("video");
}

// keepReuse: a job started here, with the masks on screen; keepClicks: with the clicks made here;
// stayOnClicks: their frames stay on screen while it runs ("Update the mask").
async function follow(jobId, { keepReuse = false, keepClicks = false, stayOnClicks = false } = {}) {
  leaveJob();
  if (!keepReuse) setReuse(null);
  if (!keepClicks) {  // another job than this tab's: its clicks and masks job are not this one's
    clearClicks();
    busy(false);
  }
  if (!stayOnClicks) hideClicks();
  current.jobId = jobId;
  $("job").hidden = false;
  $("job-id").textContent = jobId;
  $("job-state").textContent = "";
  $("job-prompts").textContent = $("job-message").textContent = $("job-time").textContent = "";
  $("job-error").hidden = true;
  $("log").textContent = "";
  $("stages").replaceChildren();
  $("again").hidden = true;
  hideObjects();
  hideResults();
  try {  // an unknown job (a stale address) says so, rather than a stream that keeps failing
    show(await api(`/api/video/status/${encodeURIComponent(jobId)}`));
  } catch (err) {
    if (current.jobId === jobId) $("job-message").textContent = err.message;
    return;
  }
  if (current.jobId === jobId) listen(jobId);
}

function drawStages(mode) {
  const names = STAGES[mode] || STAGES.video;
  if ($("stages").dataset.mode === mode) return;
  $("stages").dataset.mode = mode;
  $("stages").replaceChildren(...names.map((name) => {
    const item = document.createElement("li");
    item.dataset.stage = name;
    const label = Object.assign(document.createElement("span"), { textContent: name });
    const bar = Object.assign(document.createElement("progress"), { max: 1, value: 0 });
    bar.setAttribute("aria-label", name);
    item.append(label, bar, Object.assign(document.createElement("span"), { className: "pct" }));
    return item;
  }));
}

function restorePrompts(status) {  // a job page opened afresh: its prompts back in the form
  if (!$("mask-prompt").value && status.mask_prompt) $("mask-prompt").value = status.mask_prompt;
  if (!$("edit-prompt").value && status.edit_prompt) $("edit-prompt").value = status.edit_prompt;
}

function show(status) {
  const last = current.status;  // an answer that arrives after a newer status (cancel's) is stale
  if (last && last.job_id === status.job_id && status.updated_at < last.updated_at) return null;
  current.status = status;
  current.receivedAt = Date.now();
  const mode = status.mode || ((status.output_video_path || "").endsWith(".png") ? "single_frame" : "video");
  drawStages(mode);
  restorePrompts(status);
  $("job-state").textContent = status.status;
  $("job-prompts").textContent = (mode === "single_frame" ? "Preview: " : "") + describe(status, mode);
  $("job-message").textContent = status.message || "";
  // What the input holds (e.g. "1280x720 BT.2020 HLG 10-bit, 29.97 fps"), once probed.
  $("job-media").textContent = status.media ? status.media.summary : "";
  $("job-error").textContent = status.error ? jobError(status.error) : "";
  $("job-error").hidden = !status.error;
  $("cancel").hidden = ENDED.includes(status.status);
  const names = STAGES[mode] || STAGES.video;
  const at = names.indexOf(status.status);
  for (const item of $("stages").children) {
    const index = names.indexOf(item.dataset.stage);
    const done = status.status === "finished" || (at >= 0 && index < at);
    let fraction = done ? 1 : 0;
    if (index === at && status.total_frames) fraction = (status.current_frame || 0) / status.total_frames;
    item.classList.toggle("current", index === at);
    item.querySelector("progress").value = fraction;
    item.querySelector(".pct").textContent = fraction ? `${Math.round(fraction * 100)}%` : "";
  }
  showTime();
  return mode;
}

function describe(job, mode) {  // its prompts, in a line
  if (mode === "masks") return job.mask_prompt ? `Find: "${job.mask_prompt}"` : "";
  // An edit on reused masks may have no mask prompt of its own.
  return job.mask_prompt ? `"${job.mask_prompt}": ${job.edit_prompt}` : job.edit_prompt || "";
}

function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

// Elapsed and left, from the orchestrator's figures as of the last status, counted on by the second.
function showTime() {
  const status = current.status;
  if (!status || status.elapsed_seconds == null) {
    $("job-time").textContent = status && status.status === "queued" ? "waiting for a free worker…" : "";
    return;
  }
  const since = ENDED.includes(status.status) ? 0 : (Date.now() - current.receivedAt) / 1000;
  let text = `${clock(status.elapsed_seconds + since)} ${ENDED.includes(status.status) ? "in all" : "so far"}`;
  if (status.eta_seconds != null) {
    const left = status.eta_seconds - since;
    text += left > 1 ? `, about ${clock(left)} left` : ", almost done";
    if (status.stage_eta_seconds != null && status.stage_eta_seconds - since > 1) {
      text += ` (${clock(status.stage_eta_seconds - since)} in this stage)`;
    }
  }
  $("job-time").textContent = text;
}

async function listen(jobId) {
  let source;
  try {
    source = current.source = new EventSource(await link(jobId, "events"));
  } catch (err) {
    $("job-message").textContent = `Could not follow the job: ${err.message}`;
    return;
  }
  let ended = false;
  source.onmessage = (message) => {
    if (current.source !== source) return;
    const status = JSON.parse(message.data);
    const mode = show(status);
    if (mode && ENDED.includes(status.status)) {
      ended = true;
      source.close();
      refreshJobs();
      finished(status, mode);
    }
  };
  source.addEventListener("error", () => {
    if (ended || current.source !== source) return;
    // Reconnect with a fresh link (the old one may have expired); a new stream starts with the latest status.
    source.close();
    $("job-message").textContent = "Lost the connection to the server; retrying…";
    setTimeout(() => { if (current.source === source) listen(jobId); }, 2000);
  });
}

async function finished(status, mode) {
  const jobId = status.job_id;
  busy(false);
  if (status.status === "finished" && status.elapsed_seconds && mode !== "masks") learnPace(status, mode);
  try {
    const headers = token() ? { Authorization: `Bearer ${token()}` } : {};
    const log = await fetch(`/api/video/artifact/${encodeURIComponent(jobId)}/log`, { headers });
    $("log").textContent = log.ok ? await log.text() : "";
  } catch {
    $("log").textContent = "";
  }
  try {
    await showResults(status, mode, (kind) => link(jobId, kind));
  } catch (err) {
    $("job-message").textContent = `Could not load the results: ${err.message}`;
  }
  if (mode === "masks" && status.error && clicksShown()) {  // said beside the clicks too
    $("click-error").textContent = jobError(status.error);
    $("click-error").hidden = false;
  }
  if (status.status !== "finished" || current.jobId !== jobId) return;
  if (mode === "masks") await listObjects(status);
  else if (reuses(mode)) showAgain(false);  // it used the masks on screen: another instruction on them
}

async function cancel() {
  if (!current.jobId) return;
  $("cancel").disabled = true;
  try {
    $("job-message").textContent = "cancelling…";  // the event stream brings the end
    await postJson(`/api/video/cancel/${encodeURIComponent(current.jobId)}`, {});
  } catch (err) {
    $("job-message").textContent = err.message;
  } finally {
    $("cancel").disabled = false;
  }
}

// --- the slow-job warning: frames x steps x pace ---

function learnPace(status, mode) {  // this server's seconds per step of one 512-px frame, from a job it ran
  const frames = mode === "single_frame" ? 1 : status.total_frames || 0;
  const steps = Number($("steps").value) || 50;
  const area = (Number($("edit-size").value) || 512) ** 2 / 512 ** 2;
  if (frames) sessionStorage.setItem("videoedit-step-s", String(status.elapsed_seconds / (frames * steps * area)));
}

async function frameCount() {  // the picked clip's frames, roughly (a browser does not tell the frame rate)
  const file = $("file").files[0];
  if (!file || !file.type.startsWith("video/")) return null;
  const probe = document.createElement("video");
  probe.preload = "metadata";
  probe.src = URL.createObjectURL(file);
  try {
    await new Promise((resolve, reject) => { probe.onloadedmetadata = resolve; probe.onerror = reject; });
    return Number.isFinite(probe.duration) ? Math.round(probe.duration * 30) : null;
  } catch {
    return null;
  } finally {
    URL.revokeObjectURL(probe.src);
  }
}

async function estimate() {
  const frames = await frameCount();
  if (!frames) { $("estimate").hidden = true; return; }
  const interval = Number($("keyframes").value) || 1;  // adaptive: counted as every frame
  const steps = Number($("steps").value) || 50;
  const area = (Number($("edit-size").value) || 512) ** 2 / 512 ** 2;
  const pace = Number(sessionStorage.getItem("videoedit-step-s")) || DEFAULT_STEP_S;
  const seconds = Math.ceil(frames / interval) * steps * area * pace;
  $("estimate").hidden = seconds < SLOW_S;
  $("estimate").textContent = `This may take about ${clock(seconds)} (about ${frames} frames × ${steps} steps). `
    + "Fewer steps, a smaller edit size, editing every 4th frame or a one-frame preview go faster.";
}

// --- recent jobs ---

function age(seconds) {
  const s = Date.now() / 1000 - seconds;
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

let refreshTimer = null;
const THUMBNAILS = 8;  // the newest finished jobs get one: each is a small download of its own
const thumbnails = new Map();  // job id -> its thumbnail element, made once

// The output's first frame (a preview's picture, a masks job's first object), decorative: the link names the job.
function thumbnail(job) {
  if (!thumbnails.has(job.job_id)) {
    const still = job.mode === "single_frame" || job.mode === "masks";
    const element = document.createElement(still ? "img" : "video");
    Object.assign(element, { className: "thumb", alt: "", muted: true, preload: "metadata" });
    element.setAttribute("aria-hidden", "true");
    (job.mode === "masks" ? link(job.job_id, "object", 1) : link(job.job_id, "output"))
      .then((url) => { element.src = still ? url : `${url}#t=0.1`; })  // a video shows a frame, not black
      .catch(() => element.remove());
    thumbnails.set(job.job_id, element);
  }
  return thumbnails.get(job.job_id);
}

async function refreshJobs() {
  clearTimeout(refreshTimer);
  try {
    const { jobs } = await api("/api/video/jobs?page_size=20");
    const shown = jobs.filter((job) => job.status === "finished" && (job.mode !== "masks" || job.objects_found));
    const withThumbnail = new Set(shown.slice(0, THUMBNAILS).map((job) => job.job_id));
    $("jobs").replaceChildren(...jobs.map((job) => {
      const item = document.createElement("li");
      if (withThumbnail.has(job.job_id)) item.append(thumbnail(job));
      const open = document.createElement("a");
      open.href = `/jobs/${encodeURIComponent(job.job_id)}`;
      open.textContent = describe(job, job.mode) || job.job_id;
      open.addEventListener("click", (event) => {
        event.preventDefault();
        history.pushState(null, "", open.href);
        follow(job.job_id);
      });
      const facts = document.createElement("span");
      facts.className = `facts ${job.status}`;
      facts.textContent = ` ${{ single_frame: "preview, ", masks: "objects, " }[job.mode] || ""}${job.status}`
        + `${job.created_at ? ", " + age(job.created_at) : ""}`;
      item.append(open, facts);
      return item;
    }));
    // Live: while a job is not over, the list is read again every few seconds.
    if (jobs.some((job) => !ENDED.includes(job.status))) refreshTimer = setTimeout(refreshJobs, 3000);
  } catch (err) {
    $("jobs").replaceChildren(Object.assign(document.createElement("li"), { className: "error", textContent: err.message }));
  }
}

function route() {  // the address says which job is on screen
  const match = location.pathname.match(/^\/jobs\/([^/]+)$/);
  if (match) follow(decodeURIComponent(match[1]));
  else leaveJob();
}

$("token").value = sessionStorage.getItem("videoedit-token") || "";
$("token").addEventListener("change", () => { sessionStorage.setItem("videoedit-token", token()); refreshJobs(); });
$("job-form").addEventListener("submit", (event) => { event.preventDefault(); start("video"); });
$("preview").addEventListener("click", () => start("single_frame"));
$("find").addEventListener("click", () => start("masks"));
initClicks(() => start("masks", true), () => { if (reuse) setReuse(reuse); });
$("again").addEventListener("submit", again);
// Other words for what to edit, or another video than the masks job's: the masks found do not fit
// it. (A masks job page opened afresh does not know its video: giving it keeps the masks, and the
// server checks that it is the same.)
$("mask-prompt").addEventListener("input", () => setReuse(null));
$("add-object").addEventListener("click", () => addObjectRow(() => setReuse(null)));  // several objects: found anew
for (const id of ["file", "path"]) {
  $(id).addEventListener("input", () => {
    if (reuse && reuse.input) setReuse(null);
    if (inputs.has(current.jobId)) {  // the clicks were on another video
      clearClicks();
      hideClicks();
    }
  });
}
$("cancel").addEventListener("click", cancel);
$("refresh").addEventListener("click", refreshJobs);
$("file").addEventListener("change", () => { showFormError(null); estimate(); });
for (const id of ["steps", "edit-size", "keyframes"]) $(id).addEventListener("change", estimate);
window.addEventListener("popstate", route);
setInterval(showTime, 1000);
renewOnError((kind, jobId) => link(jobId, kind), ["click-video", "click-mask"]);
synchronise();
route();
refreshJobs();
