// The API's errors in plain language, picked by their code (and for a few, the field the server
// names). A person never sees an errno, a traceback or a server path here: the job's log keeps
// the details. `field` says which form control the error is about, so the page can point at it.

const BY_CODE = {
  UNAUTHENTICATED: { text: "This server needs an API key (or its token): enter it under Options.", field: "token" },
  PERMISSION_DENIED: {
    text: "The server may not read that: put the video in the server's media folder, or pick the file to upload it.",
    field: "path",
  },
  NOT_FOUND: { text: "The server has no such job or file (it may have been removed)." },
  ALREADY_EXISTS: { text: "A job with this id exists already." },
  FAILED_PRECONDITION: { text: "That is not available yet: the job has not finished." },
  RESOURCE_EXHAUSTED: { text: "The server is busy: too many jobs are waiting. Try again in a minute." },
  UNAVAILABLE: { text: "The server did not answer. Try again in a moment." },
  DEADLINE_EXCEEDED: { text: "The server did not answer in time. Try again in a moment." },
  DATA_LOSS: { text: "The upload arrived incomplete. Send it again." },
  UNSUPPORTED_MEDIA_TYPE: { text: "The page sent something the server does not take; reload the page." },
  INTERNAL: { text: "Something went wrong on the server; its log has the details." },
};

// Messages of INVALID_ARGUMENT (and a too-large upload) that a person can act on.
const BY_MESSAGE = [
  [/not a video/i, "That file is not a video the server can read. Pick an MP4, MOV, MKV or WebM file.", "file"],
  [/over the limit of/i, "The file is larger than this server takes (VIDEOEDIT_MAX_UPLOAD_MB).", "file"],
  [/^input_video_path/i, "The server cannot use that video: check the path, or pick the file to upload it.", "path"],
  [/^mask_prompt/i, "Say what to edit, in a few words (e.g. \"hair\").", "mask-prompt"],
  [/^edit_prompt/i, "Say how to edit it (e.g. \"make the hair red\").", "edit-prompt"],
  [/num_inference_steps/i, "The number of diffusion steps is out of range.", "steps"],
  [/edit_size/i, "The edit size is out of range (64 to 1024, a multiple of 8).", "edit-size"],
  [/frame_index/i, "The preview frame is past the clip's last frame.", "frame-index"],
  // Reused masks: the job that found them is gone, did not finish or was on another video.
  [/^extra\[masks_from\]/i, "The objects found earlier cannot be used for this video: press \"Find the object\" again.", "find"],
  [/^extra\[objects\]: names \d+ objects/i, "That is more objects than one edit takes: tick fewer.", null],
  [/^extra\[objects\]/i, "Those objects are not among the ones found: tick some of the objects listed, or find them again.", "find"],
];

export class PlainError extends Error {
  constructor(text, field = null, code = "") {
    super(text);
    this.field = field;
    this.code = code;
  }
}

// An API error body ({"error": {"code", "message"}}) and the HTTP status -> a PlainError.
export function fromApi(body, httpStatus) {
  const code = body && body.error ? body.error.code : `HTTP_${httpStatus}`;
  const message = body && body.error ? body.error.message : "";
  if (code === "INVALID_ARGUMENT" && CLICK.test(message)) return new PlainError(clickError(message), null, code);
  if (code === "INVALID_ARGUMENT" || code === "RESOURCE_EXHAUSTED") {
    for (const [pattern, text, field] of BY_MESSAGE) {
      if (pattern.test(message)) return new PlainError(text, field, code);
    }
  }
  if (code === "INVALID_ARGUMENT") return new PlainError(`The server refused the request: ${scrub(message)}`, null, code);
  const known = BY_CODE[code];
  if (known) return new PlainError(known.text, known.field || null, code);
  return new PlainError(`The server answered HTTP ${httpStatus}. Try again; if it persists, see the server's log.`, null, code);
}

// A job's `error` for people: no errno, no paths (the log keeps them).
export function jobError(error) {
  if (CLICK.test(error || "")) return clickError(error);
  return `${scrub(error)} (the log below has the details)`;
}

// Clicks and boxes on the frames (visual_prompts[i]...): a positive click no object found contains,
// or one the server cannot use (off the frame, past the last frame, too many).
const CLICK = /(?:^|\s)(?:objects\[\d+\]\.)?visual_prompts(?:\[\d+\])?[\w.[\]]*: /;
const MISSED = /visual_prompts\[\d+\]\.points\[\d+\]: no object found there\b.*? on frame (\d+)/;

function clickError(message) {
  const missed = MISSED.exec(message);
  if (missed) {
    return `Your click on frame ${missed[1]} is not on any object found; click inside one (the coloured mask shows them), `
      + "or remove that click.";
  }
  if (/the clicked object was not found/.test(message)) {
    return "Your clicks found no object: click on the object itself, or say what it is under \"What to edit\".";
  }
  const detail = scrub(message.slice(CLICK.exec(message).index)).replace(/^[^:]*: /, "");
  return `One of your clicks or boxes cannot be used: ${detail}. Remove it, or clear the clicks.`;
}

// Drops what means nothing to a person: "[Errno 5]", absolute paths, a traceback's tail.
export function scrub(message) {
  return String(message || "")
    .split("\nTraceback")[0]
    .replace(/\[Errno -?\d+\]\s*/g, "")
    .replace(/(^|[\s'"(=])\/[^\s'")]+/g, "$1…")
    .replace(/\s+/g, " ")
    .trim();
}
