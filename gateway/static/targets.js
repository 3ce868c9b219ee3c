// Several objects in one job, each with its own instruction: rows of "what to edit" and
// "instruction" below the form's first pair ("Add another object"), sent as `objects`.

const $ = (id) => document.getElementById(id);

// A new row (the form's own fields are object 1); `changed` runs on any change of the rows.
export function addObjectRow(changed) {
  const list = $("more-objects");
  const row = document.createElement("li");
  for (const [kind, hint] of [["mask", "sky"], ["edit", "make the sky pink"]]) {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "text";
    input.className = `more-${kind}`;
    input.placeholder = hint;
    input.addEventListener("input", changed);
    const what = document.createElement("span");
    what.className = "what";  // renumber() writes it
    label.append(what, " ", input);
    row.append(label);
  }
  const remove = document.createElement("button");
  remove.type = "button";
  remove.addEventListener("click", () => { row.remove(); renumber(); changed(); $("add-object").focus(); });
  row.append(remove);
  list.append(row);
  renumber();
  row.querySelector("input").focus();
  changed();
}

// Labels, ids and the remove button say which object each row is.
function renumber() {
  [...$("more-objects").children].forEach((row, i) => {
    const n = i + 2;
    const [mask, edit] = row.querySelectorAll("input");
    mask.id = `more-mask-${n}`;
    edit.id = `more-edit-${n}`;
    const [maskText, editText] = row.querySelectorAll(".what");
    maskText.textContent = `What to edit (object ${n})`;
    editText.textContent = `Instruction (object ${n})`;
    row.querySelector("button").textContent = `Remove object ${n}`;
  });
}

// The rows' objects: [{mask_prompt, edit_prompt, n (its number on the page)}].
export function moreObjects() {
  return [...$("more-objects").children].map((row, i) => {
    const [mask, edit] = row.querySelectorAll("input");
    return { mask_prompt: mask.value.trim(), edit_prompt: edit.value.trim(), n: i + 2 };
  });
}
