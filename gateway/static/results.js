// A finished job's results: download links, the players (original with the mask over it when
// asked, edited, mask, and a before/after wipe), all following the edited video; a preview's
// picture and mask beside the original at that frame. Each media element's data-kind names its
// artifact; it gets a signed link of its own, renewed on an error (an expired link, when a video
// asks for more of the file later).

const $ = (id) => document.getElementById(id);
const PLAYERS = ["video-input", "video-overlay", "video-output", "video-mask", "wipe-before", "wipe-after"];
const STILLS = ["still-input", "still-output", "still-mask"];
const DOWNLOADS = { "download-output": "output", "download-mask": "mask", "download-log": "log" };

export function hideResults() {
  for (const id of ["results", "stills", "downloads", "views"]) $(id).hidden = true;
  for (const id of [...PLAYERS, ...STILLS]) {
    $(id).removeAttribute("src");
    delete $(id).dataset.job;
  }
}

// The results of `status`; linkFor(kind) -> a signed URL. A job that did not finish has its log only.
export async function showResults(status, mode, linkFor) {
  const finished = status.status === "finished";
  for (const [id, kind] of Object.entries(DOWNLOADS)) {
    $(id).hidden = !finished && kind !== "log";
    if (!$(id).hidden) $(id).href = await linkFor(kind);
  }
  $("downloads").hidden = false;
  if (!finished) return;
  const ids = mode === "single_frame" ? STILLS : PLAYERS;
  for (const id of ids) {
    $(id).dataset.job = status.job_id;
    $(id).src = await linkFor($(id).dataset.kind);
  }
  if (mode === "single_frame") {
    $("still-input").addEventListener("loadedmetadata", () => seekToFrame($("still-input"), frameOf()), { once: true });
    $("stills").hidden = false;
  } else {
    $("results").hidden = $("views").hidden = false;
  }
}

function frameOf() {  // the previewed frame's index, from the job's log ("reading frame N of ...")
  const match = /reading frame (\d+)/.exec($("log").textContent);
  return match ? Number(match[1]) : 0;
}

// Shows frame `index` of a paused video: its frame rate measured from two decoded frames.
function seekToFrame(video, index) {
  if (!index || !video.requestVideoFrameCallback) return;
  video.requestVideoFrameCallback((_, first) => {
    video.requestVideoFrameCallback((__, second) => {
      video.pause();
      const frameS = second.mediaTime - first.mediaTime || 1 / 30;
      video.currentTime = index * frameS + frameS / 2;
    });
  });
  video.play().catch(() => {});
}

// The edited video leads: play, pause and seeking carry over to the others.
export function synchronise() {
  const lead = $("video-output");
  const others = PLAYERS.filter((id) => id !== "video-output").map($);
  lead.addEventListener("play", () => others.forEach((v) => { v.currentTime = lead.currentTime; v.play().catch(() => {}); }));
  lead.addEventListener("pause", () => others.forEach((v) => v.pause()));
  lead.addEventListener("seeked", () => others.forEach((v) => { v.currentTime = lead.currentTime; }));
  lead.addEventListener("timeupdate", () => others.forEach((v) => {
    if (Math.abs(v.currentTime - lead.currentTime) > 0.2) v.currentTime = lead.currentTime;
  }));
  $("overlay").addEventListener("change", () => { $("tint").hidden = !$("overlay").checked; });
  const wipe = () => $("wipe-after").style.setProperty("clip-path", `inset(0 0 0 ${$("wipe").value}%)`);
  $("wipe").addEventListener("input", wipe);
  wipe();
}

// linkFor(kind, jobId) -> a fresh signed URL, for an element whose link failed (expired).
export function renewOnError(linkFor) {
  for (const id of [...PLAYERS, ...STILLS]) {
    $(id).addEventListener("error", async (event) => {
      const element = event.target;
      if (!element.dataset.job || Date.now() - (element.renewedAt || 0) < 10000) return;  // not in a loop
      element.renewedAt = Date.now();
      const at = element.currentTime || 0;
      try {
        element.src = await linkFor(element.dataset.kind, element.dataset.job);
        if (at) element.currentTime = at;
      } catch (err) {
        $("job-message").textContent = `Could not reload the ${element.dataset.kind}: ${err.message}`;
      }
    });
  }
}
