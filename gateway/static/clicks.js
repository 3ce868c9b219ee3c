// Clicks and boxes on the frames of a masks job's video (visual prompts): the input with the mask
// over it, a frame scrubber, and on the frame a click for a point on the object (green),
// shift-click (or "A click marks: not the object") for a point off it (red), a drag for a box.
// Keyboard: on the frame, the arrow keys move a cross (Shift: faster), Enter adds a point there,
// Page Up / Page Down show the previous / next frame.
// Each click is kept in pixels of the upright source frame, on the frame it was made on, with the
// object it corrects (none: it picks among the objects found). "Update the mask" runs a masks job
// with them (the page holds one in flight at a time); the page sends them with an edit too.

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const DRAG_PX = 6;  // a press that moves less than this (CSS pixels) is a click, not a box

let clicks = [];  // {frame, object, point: {x, y, positive}} or {frame, object, box: {x0, y0, x1, y1}}
let size = { width: 0, height: 0 };  // the upright source frame's, pixels
let fps = 0;
let press = null;  // a press on the frame: where it started (source pixels, CSS pixels)
let cross = null;  // the keyboard's cross, in source pixels (null: not shown)
let changed = () => {};

// onUpdate(): "Update the mask" pressed; onChange(): the clicks changed.
export function initClicks(onUpdate, onChange) {
  changed = onChange;
  const marks = $("click-marks");
  marks.addEventListener("pointerdown", down);
  marks.addEventListener("pointermove", move);
  marks.addEventListener("pointerup", up);
  marks.addEventListener("pointercancel", () => { press = null; draw(); });
  marks.addEventListener("keydown", key);
  marks.addEventListener("focus", () => {  // from the keyboard: the cross, in the middle at first
    if (!marks.matches(":focus-visible") || !size.width) return;
    cross = cross || { x: size.width / 2, y: size.height / 2 };
    draw();
  });
  marks.addEventListener("blur", () => { cross = null; draw(); });
  $("click-frame").addEventListener("input", () => seek(Number($("click-frame").value)));
  $("click-prev").addEventListener("click", () => seek(frame() - 1));
  $("click-next").addEventListener("click", () => seek(frame() + 1));
  $("click-clear").addEventListener("click", () => { clicks = []; redraw(); $("click-marks").focus(); });
  $("click-update").addEventListener("click", onUpdate);
  $("click-video").addEventListener("loadedmetadata", () => {
    if (!size.width) size = { width: $("click-video").videoWidth, height: $("click-video").videoHeight };
    seek(frame());
  });
  $("click-mask").addEventListener("loadedmetadata", () => seek(frame()));
}

// A finished masks job's viewer: `status` (its media), its `frames` (count), `objects` (its
// objects.json list) to correct, `at`: the frame to show first (null: the one shown), linkFor(kind) -> a URL.
export async function showClicks(status, frames, objects, at, linkFor) {
  const media = status.media || {};
  size = { width: media.width || 0, height: media.height || 0 };
  fps = media.fps || 0;
  const last = Math.max(0, (frames || 1) - 1);
  Object.assign($("click-frame"), { max: last, value: Math.min(at ?? frame(), last) });
  const previous = $("click-object").value;
  $("click-object").replaceChildren(new Option("picking among the objects found", ""),
    ...objects.map((object) => new Option(`correcting object ${object.id}`, String(object.id))));
  $("click-object").value = objects.some((o) => String(o.id) === previous) ? previous : "";
  for (const id of ["click-video", "click-mask"]) {
    $(id).dataset.job = status.job_id;
    $(id).src = await linkFor($(id).dataset.kind);
  }
  $("clicks").hidden = false;
  redraw();
}

export function hideClicks() {
  $("clicks").hidden = true;
  for (const id of ["click-video", "click-mask"]) {
    $(id).removeAttribute("src");
    delete $(id).dataset.job;
  }
}

export const clicksShown = () => !$("clicks").hidden;

// While a masks job runs, "Update the mask" and "Find the object" wait for it (one at a time).
export function busy(running) {
  $("click-update").disabled = $("find").disabled = running;
  $("click-update").textContent = running ? "Updating the mask…" : "Update the mask";
}

export function clearClicks() {
  clicks = [];
  redraw();
}

// The clicks as the API's visual_prompts: a frame's points for one object together, its box too.
export function visualPrompts() {
  const prompts = [];
  const byKey = new Map();
  for (const click of [...clicks].sort((a, b) => a.frame - b.frame)) {
    const key = `${click.frame}/${click.object || ""}`;
    let prompt = byKey.get(key);
    if (!prompt || (click.box && prompt.box)) {  // a second box on that frame: an entry of its own
      prompt = { frame_index: click.frame, points: [] };
      if (click.object) prompt.object = click.object;
      prompts.push(prompt);
      byKey.set(key, prompt);
    }
    if (click.box) prompt.box = click.box;
    else prompt.points.push(click.point);
  }
  return prompts;
}

// Whether every click picks (a point, no object): those also work on masks found before.
export const onlyPicks = () => clicks.every((click) => click.point && !click.object);

// --- the frame shown ---

function frame() {
  return Number($("click-frame").value) || 0;
}

function seek(index) {
  const last = Number($("click-frame").max) || 0;
  const at = Math.max(0, Math.min(last, index));
  $("click-frame").value = at;
  $("click-frame-no").textContent = `frame ${at} of ${last + 1}`;
  const video = $("click-video");
  const rate = fps || (video.duration && last ? (last + 1) / video.duration : 30);
  const time = (at + 0.5) / rate;  // the middle of the frame: no rounding to its neighbour
  for (const id of ["click-video", "click-mask"]) $(id).currentTime = time;  // before metadata: once loaded
  draw();
}

// --- pointer and keyboard ---

function source(event) {  // the event's place in source pixels (the element's size scaled to the frame's)
  const rect = $("click-marks").getBoundingClientRect();
  const x = ((event.clientX - rect.left) / rect.width) * size.width;
  const y = ((event.clientY - rect.top) / rect.height) * size.height;
  return { x: clamp(x, size.width), y: clamp(y, size.height), cx: event.clientX, cy: event.clientY };
}

const clamp = (value, most) => Math.round(Math.max(0, Math.min(most - 1, value)) * 10) / 10;

function down(event) {
  if (event.button !== 0 || !size.width) return;
  event.preventDefault();
  $("click-marks").setPointerCapture(event.pointerId);
  press = { from: source(event), to: null };
}

function move(event) {
  if (!press) return;
  const to = source(event);
  if (press.to || Math.hypot(to.cx - press.from.cx, to.cy - press.from.cy) >= DRAG_PX) press.to = to;
  draw();
}

function up(event) {
  if (!press) return;
  const { from, to } = press;
  press = null;
  if (!to) {
    addPoint(from, event.shiftKey);
    return;
  }
  const box = { x0: Math.min(from.x, to.x), y0: Math.min(from.y, to.y), x1: Math.max(from.x, to.x), y1: Math.max(from.y, to.y) };
  if (box.x1 - box.x0 < 1 || box.y1 - box.y0 < 1) { draw(); return; }  // a line, not a box
  add({ box });
}

function addPoint(at, shift) {
  const positive = ($("click-kind").value === "positive") !== shift;  // shift: the other kind
  add({ point: { x: at.x, y: at.y, positive } });
}

function add(click) {
  const object = Number($("click-object").value) || null;
  clicks.push({ frame: frame(), object, ...click });
  redraw();
}

function key(event) {
  if (!cross) return;
  const step = (event.shiftKey ? 0.1 : 0.02) * Math.max(size.width, size.height);
  const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
  if (moves[event.key]) {
    const [dx, dy] = moves[event.key];
    cross = { x: clamp(cross.x + dx, size.width), y: clamp(cross.y + dy, size.height) };
    $("click-where").textContent = `cross at ${Math.round(cross.x)}, ${Math.round(cross.y)}`;
    draw();
  } else if (event.key === "Enter" || event.key === " ") {
    addPoint(cross, false);
  } else if (event.key === "PageUp" || event.key === "PageDown") {
    seek(frame() + (event.key === "PageDown" ? 1 : -1));
  } else {
    return;
  }
  event.preventDefault();
}

// --- drawing and the list ---

function redraw() {
  draw();
  list();
  changed();
}

function draw() {
  const marks = $("click-marks");
  marks.setAttribute("viewBox", `0 0 ${size.width || 1} ${size.height || 1}`);
  const unit = Math.max(size.width, size.height) / 100 || 1;  // marks keep their size to the frame's
  const shapes = clicks.filter((click) => click.frame === frame()).map((click) => shape(click, unit));
  if (press && press.to) shapes.push(shape({ box: boxOf(press.from, press.to) }, unit, "dragging"));
  if (cross) {
    const mark = svg("path", { d: `M${cross.x - 2 * unit} ${cross.y}h${4 * unit}M${cross.x} ${cross.y - 2 * unit}v${4 * unit}`, class: "cross" });
    mark.style.strokeWidth = unit / 2;
    shapes.push(mark);
  }
  marks.replaceChildren(...shapes);
}

const boxOf = (a, b) => ({ x0: Math.min(a.x, b.x), y0: Math.min(a.y, b.y), x1: Math.max(a.x, b.x), y1: Math.max(a.y, b.y) });

function shape(click, unit, extra = "") {
  let element;
  if (click.box) {
    const { x0, y0, x1, y1 } = click.box;
    element = svg("rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0, class: `box ${extra}` });
  } else {
    const { x, y, positive } = click.point;
    element = svg("circle", { cx: x, cy: y, r: 2 * unit, class: positive ? "positive" : "negative" });
  }
  element.style.strokeWidth = unit / 2;
  return element;
}

function svg(name, attributes) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  return element;
}

function describe(click) {
  const on = click.object ? ` (correcting object ${click.object})` : "";
  if (click.box) {
    const { x0, y0, x1, y1 } = click.box;
    return `box from ${Math.round(x0)}, ${Math.round(y0)} to ${Math.round(x1)}, ${Math.round(y1)}${on}`;
  }
  const { x, y, positive } = click.point;
  return `${positive ? "on the object" : "not the object"} at ${Math.round(x)}, ${Math.round(y)}${on}`;
}

function list() {
  $("click-list").replaceChildren(...clicks.map((click) => {
    const item = document.createElement("li");
    item.className = click.box ? "box" : click.point.positive ? "positive" : "negative";
    const go = Object.assign(document.createElement("button"), { type: "button", textContent: `Frame ${click.frame}` });
    go.setAttribute("aria-label", `Show frame ${click.frame}`);
    go.addEventListener("click", () => seek(click.frame));
    const text = Object.assign(document.createElement("span"), { textContent: describe(click) });
    const remove = Object.assign(document.createElement("button"), { type: "button", textContent: "Remove" });
    remove.setAttribute("aria-label", `Remove the ${click.box ? "box" : "point"} on frame ${click.frame}: ${describe(click)}`);
    remove.addEventListener("click", () => {
      clicks = clicks.filter((other) => other !== click);
      redraw();
      $("click-marks").focus();
    });
    item.append(go, text, remove);
    return item;
  }));
  // The frames with clicks: ticks on the scrubber.
  const frames = [...new Set(clicks.map((click) => click.frame))];
  $("click-frames").replaceChildren(...frames.map((at) => new Option("", String(at))));
  $("click-none").hidden = clicks.length > 0;
  $("click-clear").disabled = clicks.length === 0;
}
