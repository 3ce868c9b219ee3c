// The objects a masks job found (its objects.json), so a person can check that the right thing
// was found before editing: each with its preview (its best frame, the mask outlined), the
// frames it is on and its size, and a tick box (all ticked at first) saying whether to edit it.

const $ = (id) => document.getElementById(id);

export function hideObjects() {
  $("objects").hidden = true;
  $("object-list").replaceChildren();
}

// getJson(path) -> the API's JSON; previewLink(id) -> a URL of that object's preview; onChange()
// when a tick changes. Resolves to objects.json ({frames, objects: the objects found, ...}).
export async function showObjects(jobId, getJson, previewLink, onChange) {
  const found = await getJson(`/api/video/artifact/${encodeURIComponent(jobId)}/objects`);
  const items = await Promise.all(found.objects.map(async (object) => item(object, await previewLink(object.id))));
  $("object-list").replaceChildren(...items);
  $("objects-title").textContent = items.length
    ? `Objects found for "${found.mask_prompt}": tick the ones to edit`
    : `Nothing was found for "${found.mask_prompt}". Try other words for what to edit.`;
  $("object-list").onchange = onChange;
  $("objects").hidden = false;
  return found;
}

export function tickedObjects() {
  return [...$("object-list").querySelectorAll("input:checked")].map((box) => Number(box.value));
}

function stretches(frames) {  // [[0, 4], [7, 7]] -> "0–4, 7"
  return frames.map(([first, last]) => (first === last ? `${first}` : `${first}–${last}`)).join(", ");
}

function item(object, previewUrl) {
  const box = Object.assign(document.createElement("input"), {
    type: "checkbox", checked: true, value: String(object.id), id: `object-${object.id}`,
  });
  const preview = Object.assign(document.createElement("img"), {
    src: previewUrl, alt: `object ${object.id} outlined at frame ${object.best_frame}`,
  });
  const facts = document.createElement("span");
  const score = object.score == null ? "" : `, score ${object.score.toFixed(2)}`;
  facts.textContent = `Object ${object.id}: frames ${stretches(object.frames)} (${object.frame_count} in all), `
    + `about ${Math.round(object.area).toLocaleString("en")} pixels${score}`;
  const label = document.createElement("label");
  label.append(box, facts, preview);
  const entry = document.createElement("li");
  entry.append(label);
  return entry;
}
