// A finished job's results: download links, the players (original with the mask over it when
// asked, edited, mask, and a before/after wipe), all following the edited video; a preview's
// picture and mask beside the original at that frame; a masks job's original with its mask over
// it and the mask (nothing edited: the original leads). Each media element's data-kind names its
// artifact; it gets a signed link of its own, renewed on an error (an expired link, when a video
// asks for more of the file later).

const $ = (id) => document.getElementById(id);
const PLAYERS = ["video-input", "video-overlay", "video-output", "video-mask", "wipe-before", "wipe-after"];
const STILLS = ["still-input", "still-output", "still-mask"];
const MASK_PLAYERS = ["video-input", "video-overlay", "video-mask"];
const SHOWN = { video: PLAYERS, single_frame: STILLS, masks: MASK_PLAYERS };
const DOWNLOADS = {
  "download-output": "output", "download-mask": "mask", "download-objects": "objects", "download-log": "log",
};

function downloads(status, mode) {  // the kinds of file `status`'s job has
  if (status.status !== "finished") return ["log"];
  const kinds = mode === "masks" ? ["mask", "log"] : ["output", "mask", "log"];
  return status.objects_found == null ? kinds : [...kinds, "objects"];  // tracked objects: their list
}

export function hideResults() {
  for (const id of ["results", "stills", "downloads", "views"]) $(id).hidden = true;
  for (const id of [...PLAYERS, ...STILLS]) {
    $(id).removeAttribute("src");
    delete $(id).dataset.job;
  }
}

// The results of `status`; linkFor(kind) -> a signed URL. A job that did not finish has its log only.
export async function showResults(status, mode, linkFor) {
  const kinds = downloads(status, mode);
  for (const [id, kind] of Object.entries(DOWNLOADS)) {
    $(id).hidden = !kinds.includes(kind);
    if (!$(id).hidden) $(id).href = await linkFor(kind);
  }
  $("downloads").hidden = false;
  if (status.status !== "finished") return;
  const ids = SHOWN[mode] || PLAYERS;
  for (const element of document.querySelectorAll(".edit-only")) element.hidden = mode === "masks";
  $("video-input").controls = mode === "masks";  // with nothing edited, the original leads
  if (mode === "masks") {  // the point of a masks job: is it the right object?
    $("overlay").checked = true;
    $("tint").hidden = false;
  }
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

// A masks job's players at frame `index` (where an object is: at 0 it may not be yet).
export function showMaskFrame(index) {
  seekToFrame($("video-input"), index);  // the lead there: the others follow its seek
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

// The edited video leads (a masks job has none: then the original): play, pause and seeking
// carry over to the others.
export function synchronise() {
  const leads = ["video-output", "video-input"].map($);
  const lead = () => (leads[0].hasAttribute("src") ? leads[0] : leads[1]);
  const others = () => PLAYERS.map($).filter((v) => v !== lead() && v.hasAttribute("src"));
  const carry = (type, act) => leads.forEach((video) => video.addEventListener(type, () => {
    if (video === lead()) others().forEach((other) => act(other, video));
  }));
  carry("play", (v, from) => { v.currentTime = from.currentTime; v.play().catch(() => {}); });
  carry("pause", (v) => v.pause());
  carry("seeked", (v, from) => { v.currentTime = from.currentTime; });
  carry("timeupdate", (v, from) => { if (Math.abs(v.currentTime - from.currentTime) > 0.2) v.currentTime = from.currentTime; });
  $("overlay").addEventListener("change", () => { $("tint").hidden = !$("overlay").checked; });
  const wipe = () => $("wipe-after").style.setProperty("clip-path", `inset(0 0 0 ${$("wipe").value}%)`);
  $("wipe").addEventListener("input", wipe);
  wipe();
}

// linkFor(kind, jobId) -> a fresh signed URL, for an element whose link failed (expired); `more`:
// the ids of other such elements (with a data-kind and data-job).
export function renewOnError(linkFor, more = []) {
  for (const id of [...PLAYERS, ...STILLS, ...more]) {
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
