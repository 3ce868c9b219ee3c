"""The web page in a real browser: Debian's chromium driven by Playwright (its own browser download
is not reachable here; `.ci/run` and `make setup` install chromium), at a desktop size (1280x900)
and a phone's (390x844). Upload a clip once (hashed; a second instruction sends nothing), follow
the job on its own address with time left, cancel one, play the results with the mask over the
original and a before/after wipe, reload a job's page, and never scroll sideways; bad input says
what to do in plain words; find the object first, tick the objects to edit, edit them and try
another instruction on the same masks (no upload, no Segment call); click, shift-click and drag
on a masks job's frames, update the mask with those clicks and edit with them; axe-core finds no
accessibility violation. A page on another loopback
origin can neither make jobs nor plant a page the gateway would serve. Screenshots go to
test-artifacts/ (git-ignored)."""

from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from clients.local_stack import free_port
from clients.sample_clip import make_sample_clip
from tests.helpers import CLIP_FRAMES, CLIP_HEIGHT, CLIP_WIDTH, EVENT_TIMEOUT_S, REPO_ROOT, model_items

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO_ROOT / "test-artifacts"
# Headless chromium on a machine without network: no background fetches, no GPU, no sandbox (root).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
    "--autoplay-policy=no-user-gesture-required",
]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make setup installs it)")


DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
AXE = REPO_ROOT / "gateway" / "vendor" / "node_modules" / "axe-core" / "axe.min.js"
NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _page(browser, viewport: dict, **options):
    context = browser.new_context(viewport=viewport, **options)
    page = context.new_page()
    page.set_default_timeout(EVENT_TIMEOUT_S * 1000)
    return context, page


@pytest.fixture
def page(browser):
    context, page = _page(browser, DESKTOP)
    yield page
    context.close()


@pytest.fixture
def phone(browser):
    context, page = _page(browser, PHONE)
    yield page
    context.close()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"web-{name}.png"), full_page=True)


def _fill_job(page, mask: str = "car", edit: str = "make the car blue", steps: str = "2") -> None:
    page.fill("#mask-prompt", mask)
    page.fill("#edit-prompt", edit)
    if not page.is_visible("#steps"):
        page.click("#options summary")
    page.fill("#steps", steps)
    page.fill("#edit-size", "64")


def _wait_state(page, state: str) -> None:
    page.wait_for_function(f"() => document.querySelector('#job-state').textContent === '{state}'")


@pytest.fixture
def own_clip(tmp_path) -> Path:
    """A clip no other test uploads (its own content), so its first upload is really sent."""
    return make_sample_clip(tmp_path / "own.mp4", frames=CLIP_FRAMES + 3, width=CLIP_WIDTH, height=CLIP_HEIGHT)


def test_upload_once_follow_play_and_reload_the_job_page(page, web, own_clip):
    uploads, lookups = [], []
    page.on("request", lambda r: uploads.append(r.url) if "/api/video/upload?" in r.url else None)
    page.on("request", lambda r: lookups.append(r.url) if "/api/video/uploads/" in r.url else None)
    page.goto(web)
    page.click("#start")  # nothing filled in
    assert "Say what to edit" in page.inner_text("#form-error")
    assert page.evaluate("document.activeElement.id") == "mask-prompt"
    _fill_job(page)
    page.click("#start")
    assert "Pick a video file" in page.inner_text("#form-error")

    page.set_input_files("#file", str(own_clip))
    page.fill("#edit-size", "512")  # a job that would be slow is announced before it starts
    page.fill("#steps", "500")
    page.dispatch_event("#steps", "change")
    page.wait_for_selector("#estimate:not([hidden])")
    assert "This may take about" in page.inner_text("#estimate")
    page.fill("#steps", "2")
    page.fill("#edit-size", "64")
    page.select_option("#keyframes", "4")  # the model edits every 4th frame, the others carry it
    page.wait_for_selector("#estimate", state="hidden")
    # Record every state the page shows (a short stage may be on screen for one event only).
    page.evaluate("""() => {
        window.seenStates = [];
        const state = document.querySelector('#job-state');
        new MutationObserver(() => window.seenStates.push(state.textContent))
            .observe(state, {childList: true, characterData: true, subtree: true});
    }""")
    page.click("#start")
    page.wait_for_url(f"{web}/jobs/*")
    job_url = page.url
    _wait_state(page, "finished")
    seen = page.evaluate("window.seenStates")
    assert [s for s in ("masking", "editing", "saving", "finished") if s in seen] == [
        "masking",
        "editing",
        "saving",
        "finished",
    ], seen
    assert page.eval_on_selector_all("#stages progress", "bars => bars.map(b => b.value)") == [1] * 6
    assert "in all" in page.inner_text("#job-time")  # the run's time, from the orchestrator
    assert page.is_hidden("#cancel")
    page.wait_for_selector("#results:not([hidden])")
    videos = ("#video-input", "#video-output", "#video-mask", "#wipe-before", "#wipe-after", "#video-overlay")
    for video in videos:  # all load (H.264 from the API)
        page.wait_for_function(f"() => document.querySelector('{video}').readyState >= 2")
    page.evaluate("document.querySelector('#video-output').play()")
    for video in videos:  # playing together
        page.wait_for_function(f"() => document.querySelector('{video}').currentTime > 0.1")
    page.evaluate("document.querySelector('#video-output').pause()")
    page.check("#overlay")
    assert page.is_visible("#video-overlay")
    page.fill("#wipe", "30")
    assert "30%" in page.get_attribute("#wipe-after", "style")
    for kind in ("output", "mask", "log"):  # download links, signed or plain, to the API
        assert "/artifact/" in page.get_attribute(f"#download-{kind}", "href")
    page.click("#log-box summary")
    assert "ended finished" in page.text_content("#log")
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    assert "carried from keyframes" in page.text_content("#job-message")
    page.wait_for_function("() => document.querySelectorAll('#jobs li a').length >= 1")
    assert "make the car blue" in page.inner_text("#jobs")
    page.wait_for_function("() => [...document.querySelectorAll('#jobs .thumb')].some(t => t.readyState >= 2)")
    _shot(page, "desktop-finished")
    assert len(uploads) == 1, uploads

    # Another instruction on the same clip: looked up by its SHA-256, nothing sent again.
    page.fill("#edit-prompt", "make the car green")
    page.fill("#frame-index", "2")
    page.click("#preview")
    page.wait_for_function(f"() => location.pathname.startsWith('/jobs/') && location.href !== '{job_url}'")
    _wait_state(page, "finished")
    assert len(uploads) == 1 and len(lookups) == 2, (uploads, lookups)
    assert [s.get_attribute("data-stage") for s in page.query_selector_all("#stages li")] == [
        "extracting",
        "masking",
        "editing",
        "saving",
    ]
    page.wait_for_function("() => document.querySelector('#still-output').naturalWidth > 0")
    page.wait_for_function("() => document.querySelector('#still-mask').naturalWidth > 0")
    page.wait_for_function("() => document.querySelector('#still-input').readyState >= 2")

    # The first job's own address, opened afresh: its prompts, status and results come back.
    page.goto(job_url)
    _wait_state(page, "finished")
    assert page.input_value("#mask-prompt") == "car"
    assert page.input_value("#edit-prompt") == "make the car blue"
    assert "make the car blue" in page.inner_text("#job-prompts")
    page.wait_for_function("() => document.querySelector('#video-output').readyState >= 2")
    page.go_back()  # the preview's page
    page.wait_for_function("() => document.querySelector('#edit-prompt').value !== ''")


def test_find_the_object_then_edit_it_and_try_another_instruction(page, web, stack, clip, tmp_path):
    own = make_sample_clip(tmp_path / "find.mp4", frames=CLIP_FRAMES + 5, width=CLIP_WIDTH, height=CLIP_HEIGHT)
    uploads, edits = [], []
    page.on("request", lambda r: uploads.append(r.url) if "/api/video/upload?" in r.url else None)
    page.on("request", lambda r: edits.append(r.post_data_json) if r.url.endswith("/api/video/edit") else None)
    page.goto(web)
    page.set_input_files("#file", str(own))
    page.fill("#mask-prompt", "car")  # no instruction yet: finding needs none
    page.click("#find")
    page.wait_for_url(f"{web}/jobs/*")
    masks_job = page.url.rsplit("/", 1)[1]
    _wait_state(page, "finished")
    assert [s.get_attribute("data-stage") for s in page.query_selector_all("#stages li")] == [
        "extracting",
        "masking",
        "propagating",
        "saving",
    ]
    assert edits[0]["params"] == {"mode": "masks"} and "edit_prompt" not in edits[0]
    # The objects, each with its preview and a tick box (all ticked), and the mask over the original.
    page.wait_for_selector("#objects:not([hidden])")
    boxes = page.query_selector_all("#object-list input[type=checkbox]")
    assert boxes and all(box.is_checked() for box in boxes)
    assert "Object 1: frames" in page.inner_text("#object-list")
    page.wait_for_function("() => [...document.querySelectorAll('#object-list img')].every(i => i.naturalWidth > 0)")
    for video in ("#video-input", "#video-overlay", "#video-mask"):
        page.wait_for_function(f"() => document.querySelector('{video}').readyState >= 2")
    assert page.is_visible("#video-overlay") and page.is_hidden("#video-output") and page.is_hidden("#wipe")
    assert page.is_hidden("#download-output") and "/objects" in page.get_attribute("#download-objects", "href")
    assert "found by job" in page.inner_text("#reuse-note")
    ids = [int(box.get_attribute("value")) for box in boxes]
    with httpx.Client(base_url=web, timeout=EVENT_TIMEOUT_S) as http:
        listed = http.get(f"/api/video/artifact/{masks_job}/objects").json()["objects"]
    assert ids == [found["id"] for found in listed]
    if listed[0]["best_frame"]:  # the players opened where the first object is, not at frame 0
        page.wait_for_function("() => document.querySelector('#video-input').currentTime > 0")
    if len(ids) > 1:  # by keyboard: the last one unticked
        page.focus(f"#object-{ids[-1]}")
        page.keyboard.press("Space")
        assert f"objects {', '.join(map(str, ids[:-1]))}" in page.inner_text("#reuse-note")
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    page.set_viewport_size(PHONE)
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    _shot(page, "phone-objects")
    page.set_viewport_size(DESKTOP)
    _shot(page, "desktop-objects")

    # Edit the ticked objects on those masks: nothing uploaded again, no Segment call.
    segmented = model_items(stack)["segment"]
    page.fill("#edit-prompt", "make the car blue")  # what to edit stays as it was: typing there finds anew
    page.click("#options summary")
    page.fill("#steps", "2")
    page.fill("#edit-size", "64")
    page.click("#start")
    page.wait_for_function(f"() => !location.pathname.endsWith('/{masks_job}')")
    _wait_state(page, "finished")
    page.wait_for_function("() => document.querySelector('#video-output').readyState >= 2")
    assert page.is_hidden("#objects")
    page.wait_for_selector("#again:not([hidden])")
    assert page.inner_text("#again-start") == "Try another instruction"
    first_edit = page.url
    page.fill("#again-prompt", "make the car green")
    page.keyboard.press("Enter")  # the form's own submit, by keyboard
    page.wait_for_function(f"() => location.href !== '{first_edit}'")
    _wait_state(page, "finished")
    assert "make the car green" in page.inner_text("#job-prompts")
    page.wait_for_function("() => document.querySelector('#video-output').readyState >= 2")
    assert model_items(stack)["segment"] == segmented
    assert len(uploads) == 1, uploads  # the masks job's, once
    for edit in edits[1:]:
        assert edit["params"]["masks_from"] == masks_job and edit["mask_prompt"] == ""
        assert edit["params"].get("objects") == (",".join(map(str, ids[:-1])) if len(ids) > 1 else None)
    assert [edit["edit_prompt"] for edit in edits[1:]] == ["make the car blue", "make the car green"]
    page.wait_for_function("() => document.querySelector('#jobs').textContent.includes('Find: \"car\"')")

    # The masks job's page opened afresh does not know its video: another one is refused in plain words.
    page.goto(f"{web}/jobs/{masks_job}")
    page.wait_for_selector("#object-list input")
    # The note comes once the frames to click on are shown, after the tick boxes: waited for.
    page.wait_for_function(
        "() => document.querySelector('#reuse-note').textContent.includes('Give the video that job used')"
    )
    page.fill("#path", str(clip))
    page.fill("#edit-prompt", "make the car red")
    page.click("#start")
    page.wait_for_function(
        "() => document.querySelector('#form-error').textContent.includes('cannot be used for this')"
    )
    assert page.evaluate("document.activeElement.id") == "find"


def test_several_objects_each_with_its_own_instruction(page, web, clip):
    bodies = []
    page.on("request", lambda r: bodies.append(r.post_data_json) if r.url.endswith("/api/video/edit") else None)
    page.goto(web)
    page.fill("#path", str(clip))
    _fill_job(page, mask="car", edit="make the car blue")
    page.click("#add-object")
    assert page.evaluate("document.activeElement.id") == "more-mask-2"
    page.click("#start")  # object 2 says nothing yet: refused here, its field focused
    page.wait_for_function("() => document.querySelector('#form-error').textContent.includes('object 2')")
    assert page.evaluate("document.activeElement.id") == "more-mask-2" and not bodies
    page.fill("#more-mask-2", "road")
    page.fill("#more-edit-2", "make the road red")
    page.set_viewport_size(PHONE)
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    page.set_viewport_size(DESKTOP)
    page.click("#start")
    page.wait_for_url(f"{web}/jobs/*")
    _wait_state(page, "finished")
    [body] = bodies
    assert body["objects"] == [
        {"mask_prompt": "car", "edit_prompt": "make the car blue"},
        {"mask_prompt": "road", "edit_prompt": "make the road red"},
    ]
    assert "mask_prompt" not in body and "edit_prompt" not in body
    message = page.inner_text("#job-message")
    assert "objects[0] 'car'" in message and "objects[1] 'road'" in message
    page.click("text=Remove object 2")  # back to one object
    assert page.query_selector_all("#more-objects li") == []
    assert page.evaluate("document.activeElement.id") == "add-object"


def test_cancel_stops_a_running_job(page, web, clip):
    page.goto(web)
    page.fill("#path", str(clip))
    _fill_job(page, steps="300")  # long enough to be cancelled while it runs
    page.click("#start")
    page.wait_for_selector("#cancel:not([hidden])")
    page.wait_for_function("() => document.querySelector('#job-time').textContent.includes('left')")
    page.wait_for_function(
        "() => ['editing', 'masking', 'propagating', 'extracting', 'queued']"
        ".includes(document.querySelector('#job-state').textContent)"
    )
    page.click("#cancel")
    _wait_state(page, "cancelled")
    assert page.is_hidden("#cancel")
    assert page.is_hidden("#results")


def test_on_a_phone_nothing_scrolls_sideways(phone, web, clip):
    phone.goto(web)
    phone.fill("#path", "/nowhere/" + "a-very-long-directory-name-" * 12 + "clip.mp4")
    _fill_job(phone)
    phone.click("#start")
    phone.wait_for_selector("#form-error:not([hidden])")
    assert phone.evaluate(NO_SIDEWAYS_SCROLL)
    phone.fill("#path", str(clip))
    phone.click("#preview")
    _wait_state(phone, "finished")
    phone.wait_for_function("() => document.querySelector('#still-input').readyState >= 2")
    phone.click("#log-box summary")
    phone.wait_for_function("() => document.querySelector('#log').textContent.includes('ended finished')")
    assert phone.evaluate(NO_SIDEWAYS_SCROLL)
    _shot(phone, "phone-preview")


def test_bad_input_says_what_to_do_in_plain_words(page, web, make_stack, clip, tmp_path):
    page.goto(web)
    _fill_job(page)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")
    page.set_input_files("#file", str(notes))
    page.click("#start")
    assert "is not a video" in page.inner_text("#form-error")
    disguised = tmp_path / "disguised.mp4"  # a name that passes the page, content the server refuses
    disguised.write_text("not a video either")
    page.set_input_files("#file", str(disguised))
    page.click("#start")
    page.wait_for_function("() => document.querySelector('#form-error').textContent.includes('not a video the server')")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    page.set_input_files("#file", str(empty))
    page.click("#start")
    assert "is empty (0 bytes)" in page.inner_text("#form-error")
    page.set_input_files("#file", str(clip))
    page.fill("#path", str(clip))
    page.click("#start")
    assert "Both a file and a server path" in page.inner_text("#form-error")
    page.set_input_files("#file", [])
    page.fill("#path", "/nowhere/clip.mp4")
    page.click("#start")
    page.wait_for_function("() => document.querySelector('#form-error').textContent.includes('media folder')")
    error = page.inner_text("#form-error")
    assert "/nowhere" not in error and "Errno" not in error
    _shot(page, "desktop-error")

    with make_stack.gateway("down") as down:  # in front of a port nothing listens on
        page.goto(down.gateway_url)
        page.fill("#path", str(clip))
        _fill_job(page)
        page.click("#start")
        page.wait_for_function("() => document.querySelector('#form-error').textContent.includes('did not answer')")


def test_a_missing_token_points_to_its_field(page, make_stack, clip):
    with make_stack("page-no-token", env={"VIDEOEDIT_AUTH_TOKEN": "s3cret"}) as secured:
        secured.start_gateway()
        page.goto(secured.gateway_url)
        page.fill("#path", str(clip))
        _fill_job(page)
        page.click("#options summary")  # folded again: the error opens it
        page.click("#start")
        page.wait_for_function("() => document.activeElement.id === 'token'")
        assert "API key" in page.inner_text("#form-error")
        assert page.get_attribute("#token", "aria-invalid") == "true"


def _finished_job(web: str, clip: Path, mode: str = "video") -> str:
    """A finished job in `mode`, started over the HTTP API: its id."""
    job = {"input_video_path": str(clip), "mask_prompt": "car", "edit_prompt": "make it blue"}
    params = {"mode": mode, "num_inference_steps": 2, "edit_size": 64}
    with httpx.Client(base_url=web, timeout=EVENT_TIMEOUT_S) as http:
        started = http.post("/api/video/edit", json=job | {"params": params})
        job_id = started.json()["job_id"]
        with http.stream("GET", f"/api/video/events/{job_id}") as stream:
            for _ in stream.iter_lines():
                pass  # the stream ends with the job
    return job_id


def test_docs_favicon_and_accessibility_offline(browser, web, clip):
    if not AXE.is_file():
        pytest.skip("gateway/vendor is not installed (make web-setup: npm)")
    context, page = _page(browser, DESKTOP)
    try:
        outside = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(web) else None)
        page.goto(f"{web}/docs")
        page.wait_for_selector(".swagger-ui .info")
        assert "videoedit" in page.inner_text(".swagger-ui .info")
        assert not outside, outside  # no CDN
        assert page.request.get(f"{web}/favicon.ico").status == 200
    finally:
        context.close()
    # axe-core runs as a script the page's CSP would refuse (it is not the page's own): a context
    # that bypasses the CSP for this check only. The new-job form, a finished job's page, and a
    # masks job's with its objects listed.
    job_page = f"{web}/jobs/{_finished_job(web, clip)}"
    masks_page = f"{web}/jobs/{_finished_job(web, clip, 'masks')}"
    for viewport, address in ((DESKTOP, web), (PHONE, web), (DESKTOP, job_page), (PHONE, masks_page)):
        context, page = _page(browser, viewport, bypass_csp=True)
        try:
            page.goto(address)
            page.wait_for_load_state("networkidle")
            if address != web:
                page.wait_for_selector("#results:not([hidden])")
            if address == masks_page:
                page.wait_for_selector("#object-list input")
            page.click("#options summary")
            page.add_script_tag(path=str(AXE))
            found, passed = page.evaluate(
                "axe.run(document, {resultTypes: ['violations']}).then(r => [r.violations, r.passes.length])"
            )
            assert not found, [(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in found]
            assert passed > 10  # axe did check the page (labels, contrast, names, ...)
        finally:
            context.close()


MARKER = "planted-by-another-origin"
# The page on the other origin: a no-cors POST of a job as text/plain, a no-cors upload of a page,
# a read of the job list, and a text/plain form whose body is a job's JSON.
ATTACK = """<!doctype html><title>another site</title>
<iframe name="sink"></iframe>
<form id="form" method="POST" action="GATEWAY/api/video/edit" enctype="text/plain" target="sink">
<input name='{"job_id": "forged-form", "input_video_path": "CLIP", "mask_prompt": "car", "edit_prompt": "red", "x": "'
 value='"}'></form>
<script>
const page = "<" + "script>MARKER</" + "script>";  // split, or it would end this script
const job = {job_id: "forged-fetch", input_video_path: "CLIP", mask_prompt: "car", edit_prompt: "red"};
async function attempt(url, init) {
  try { const reply = await fetch(url, init); return reply.type === "opaque" ? "opaque" : await reply.text(); }
  catch (err) { return "failed: " + err.message; }
}
window.attack = async () => ({
  edit: await attempt("GATEWAY/api/video/edit",
    {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: JSON.stringify(job)}),
  upload: await attempt("GATEWAY/api/video/upload?filename=planted.html",
    {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: page}),
  read: await attempt("GATEWAY/api/video/jobs", {}),
});
</script>"""
PLANTED = f"<!doctype html><title>x</title><script>document.title = '{MARKER}'; fetch('/api/video/jobs')</script>"


@pytest.fixture
def other_origin(tmp_path) -> Iterator[tuple[str, Path]]:
    """A small web server for `tmp_path` on another loopback origin (localhost, another port; the
    gateway is 127.0.0.1)."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{server.server_address[1]}", tmp_path
    server.shutdown()
    server.server_close()


def test_a_page_on_another_origin_cannot_make_jobs_or_upload(page, web, clip, stack, other_origin):
    origin, folder = other_origin
    (folder / "attack.html").write_text(
        ATTACK.replace("GATEWAY", web).replace("CLIP", str(clip)).replace("MARKER", MARKER)
    )
    answers = []
    page.on("response", lambda r: answers.append((r.url, r.status)) if r.url.startswith(web) else None)
    page.goto(f"{origin}/attack.html")
    results = page.evaluate("attack()")
    assert results["read"].startswith("failed"), results  # no CORS: the job list stays unreadable
    with page.expect_response(lambda r: r.url == f"{web}/api/video/edit") as form_answer:
        page.evaluate("document.getElementById('form').submit()")
    assert form_answer.value.status == 403
    posts = [(url, status) for url, status in answers if "/edit" in url or "/upload" in url]
    assert len(posts) == 3 and all(status == 403 for _, status in posts), answers
    with httpx.Client(base_url=web, timeout=EVENT_TIMEOUT_S) as http:
        for job_id in ("forged-fetch", "forged-form"):
            assert http.get(f"/api/video/status/{job_id}").status_code == 404
    planted = [p for root in stack.input_roots for p in root.rglob("*") if p.is_file() and MARKER in _text(p)]
    assert not planted


def _text(path: Path) -> str:
    return path.read_bytes()[:4096].decode("utf-8", "replace")


def test_a_planted_page_is_never_served_as_a_page(page, web, media_dir):
    """An HTML page uploaded by a client, or put among the inputs, never becomes a job's input: the
    upload is refused, a job naming it is refused, and its input artifact is not served at all
    (and were it served, the gateway sends every input as video/mp4 with nosniff)."""
    (media_dir / "planted.mp4").write_text(PLANTED)
    with httpx.Client(base_url=web, timeout=EVENT_TIMEOUT_S) as http:
        uploaded = http.post(
            "/api/video/upload",
            params={"filename": "planted.html"},
            content=PLANTED,
            headers={"Content-Type": "video/mp4"},
        )
        assert uploaded.status_code == 400, uploaded.text
        assert "not a video" in uploaded.json()["error"]["message"]
        body = {"job_id": "planted", "input_video_path": str(media_dir / "planted.mp4")}
        started = http.post("/api/video/edit", json=body | {"mask_prompt": "car", "edit_prompt": "red"})
        assert started.status_code == 400, started.text
        assert "input_video_path" in started.json()["error"]["message"]
        answer = page.goto(f"{web}/api/video/artifact/planted/input")
        assert answer.status == 404
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert page.evaluate("document.title") != MARKER


def test_with_a_token_the_page_uses_signed_links_and_never_puts_the_token_in_a_url(page, make_stack, clip):
    with make_stack("page-token", env={"VIDEOEDIT_AUTH_TOKEN": "page-s3cret"}) as secured:
        secured.start_gateway()
        clip_here = secured.input_roots[0] / "clip.mp4"
        clip_here.write_bytes(clip.read_bytes())
        urls = []
        page.on("request", lambda r: urls.append(r.url))
        page.goto(secured.gateway_url)
        page.click("summary")
        page.fill("#token", "page-s3cret")
        page.dispatch_event("#token", "change")
        page.fill("#path", str(clip_here))
        page.fill("#mask-prompt", "car")
        page.fill("#edit-prompt", "make the car blue")
        page.fill("#steps", "2")
        page.fill("#edit-size", "64")
        page.select_option("#keyframes", "4")
        page.click("#start")
        page.wait_for_function("() => document.querySelector('#job-state').textContent === 'finished'")
        for video in ("#video-input", "#video-output", "#video-mask"):  # <video> with signed links
            page.wait_for_function(f"() => document.querySelector('{video}').readyState >= 2")
        assert "ended finished" in page.text_content("#log")
        assert "sig=" in page.get_attribute("#download-log", "href")
        assert "sig=" in page.get_attribute("#download-objects", "href")
        page.click("#find")  # the objects' previews are <img>s: signed links too
        page.wait_for_function("() => document.querySelector('#stages').dataset.mode === 'masks'")
        _wait_state(page, "finished")
        page.wait_for_selector("#object-list img")
        page.wait_for_function(
            "() => [...document.querySelectorAll('#object-list img')].every(i => i.naturalWidth > 0)"
        )
        assert "sig=" in page.get_attribute("#object-list img", "src")
        assert page.evaluate("sessionStorage.getItem('videoedit-token')") == "page-s3cret"
        assert page.evaluate("localStorage.length") == 0
        assert not [u for u in urls if "page-s3cret" in u or "access_token" in u]
        assert [u for u in urls if "/api/video/events/" in u and "sig=" in u]
        assert "page-s3cret" not in secured.log_path("gateway").read_text()


# --- clicks on the frame (visual prompts) ---

# A place on an object in the mask shown in the clicks viewer, in the mask video's pixels: the
# middle of the largest square all white, [x, y]; null: none.
MASK_PIXEL = """() => {
  const video = document.querySelector('#click-mask');
  const [w, h] = [video.videoWidth, video.videoHeight];
  const g = Object.assign(document.createElement('canvas'), {width: w, height: h}).getContext('2d');
  g.drawImage(video, 0, 0);
  const data = g.getImageData(0, 0, w, h).data;
  const side = new Array(w * h).fill(0);  // the largest fitting square ending at each pixel
  let best = [0, null];
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    if (data[(y * w + x) * 4] < 128) continue;
    const i = y * w + x;
    side[i] = x && y ? 1 + Math.min(side[i - 1], side[i - w], side[i - w - 1]) : 1;
    if (side[i] > best[0]) best = [side[i], [x - Math.floor(side[i] / 2), y - Math.floor(side[i] / 2)]];
  }
  return best[0] >= 5 ? best[1] : null;
}"""
FRAME_SHOWN = (
    "() => ['#click-video', '#click-mask'].every(s => { const v = document.querySelector(s);"
    " return v.readyState >= 2 && !v.seeking; })"
)


def _find_then_click(page, web: str, clip: Path) -> str:
    """A masks job for "car" on `clip` from the page, finished with its frames to click on: its id."""
    page.goto(web)
    page.fill("#path", str(clip))
    page.fill("#mask-prompt", "car")
    page.click("#find")
    page.wait_for_url(f"{web}/jobs/*")
    _wait_state(page, "finished")
    page.wait_for_selector("#clicks:not([hidden])")
    page.wait_for_function(FRAME_SHOWN)
    return page.url.rsplit("/", 1)[1]


def _at(page, fx: float, fy: float) -> tuple[float, float]:
    """The place in the window of the frame's fraction (fx, fy), scrolled into view."""
    page.locator("#click-marks").scroll_into_view_if_needed()
    box = page.locator("#click-marks").bounding_box()
    return box["x"] + fx * box["width"], box["y"] + fy * box["height"]


def _on_object(page) -> tuple[float, float]:
    """The place in the window of a pixel on an object in the mask shown (its middle)."""
    page.wait_for_function(FRAME_SHOWN)
    pixel = page.evaluate(MASK_PIXEL)
    assert pixel, "the tiny models' mask has no object on the frame shown"
    return _at(page, (pixel[0] + 0.5) / CLIP_WIDTH, (pixel[1] + 0.5) / CLIP_HEIGHT)


def _go_to_frame(page, index: int) -> None:
    """Frame `index` in the clicks viewer, by keyboard on its scrubber."""
    page.focus("#click-frame")
    page.keyboard.press("Home")
    for _ in range(index):
        page.keyboard.press("ArrowRight")
    assert page.input_value("#click-frame") == str(index)
    page.wait_for_function(FRAME_SHOWN)


def _clicks(page) -> list[str]:
    return [item.inner_text() for item in page.query_selector_all("#click-list li span")]


def test_click_shift_click_and_drag_on_the_frame_then_update_the_mask(page, web, clip):
    bodies = []
    page.on("request", lambda r: bodies.append(r.post_data_json) if r.url.endswith("/api/video/edit") else None)
    first = _find_then_click(page, web, clip)
    assert "visual_prompts" not in bodies[0]
    frame = int(page.input_value("#click-frame"))
    assert page.inner_text("#click-frame-no") == f"frame {frame} of {CLIP_FRAMES}"
    assert page.is_visible("#click-none") and page.is_disabled("#click-clear")

    # Click: a green point where clicked, in the source frame's pixels (160x120, shown larger).
    assert page.locator("#click-marks").bounding_box()["width"] > CLIP_WIDTH
    page.mouse.click(*_at(page, 0.25, 0.5))
    assert page.locator("#click-marks circle.positive").count() == 1
    assert _clicks(page) == ["on the object at 40, 60"]
    page.keyboard.down("Shift")  # shift-click: a red one
    page.mouse.click(*_at(page, 0.75, 0.5))
    page.keyboard.up("Shift")
    assert page.locator("#click-marks circle.negative").count() == 1
    page.mouse.move(*_at(page, 0.1, 0.1))  # a drag: a box
    page.mouse.down()
    page.mouse.move(*_at(page, 0.3, 0.3), steps=4)
    assert page.locator("#click-marks rect.dragging").count() == 1  # drawn while dragging
    page.mouse.move(*_at(page, 0.5, 0.4), steps=4)
    page.mouse.up()
    assert page.locator("#click-marks rect").count() == 1
    assert _clicks(page)[1:] == ["not the object at 120, 60", "box from 16, 12 to 80, 48"]
    # By keyboard: the frame focused, the arrow keys move a cross, Enter adds a point there.
    page.focus("#click-prev")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.id") == "click-marks"
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    assert _clicks(page)[3] == "on the object at 83, 60"
    page.keyboard.press("PageUp" if frame else "PageDown")  # and another frame, from the frame
    assert page.input_value("#click-frame") == str(frame - 1 if frame else 1)
    page.keyboard.press("PageDown" if frame else "PageUp")
    assert page.locator("#click-marks circle.positive").count() == 2
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    assert page.eval_on_selector_all("#click-frames option", "os => os.map(o => o.value)") == [str(frame)]  # ticks
    _shot(page, "desktop-clicks")

    # Another frame shows its own clicks (none); the list's "Frame N" goes back to theirs.
    other = frame + 1 if frame + 1 < CLIP_FRAMES else frame - 1
    page.click("#click-next" if other > frame else "#click-prev")
    assert page.input_value("#click-frame") == str(other)
    assert page.locator("#click-marks circle, #click-marks rect").count() == 0
    page.click(f"#click-list li:nth-child(2) button:text('Frame {frame}')")
    assert page.input_value("#click-frame") == str(frame)
    assert page.locator("#click-marks circle, #click-marks rect").count() == 4
    page.click("#click-list li:nth-child(2) button:text('Remove')")  # the red point
    assert page.locator("#click-marks circle.negative").count() == 0 and len(_clicks(page)) == 3
    page.click("#click-clear")
    assert _clicks(page) == [] and page.is_visible("#click-none")

    # A click on an object, and a shift-click on a frame without one: they pick among the masks
    # found, then "Update the mask" finds them again with the clicks; the overlay and list follow.
    with httpx.Client(base_url=web, timeout=EVENT_TIMEOUT_S) as http:
        found = http.get(f"/api/video/artifact/{first}/objects").json()["objects"]
    on_objects = {f for o in found for first_frame, last in o["frames"] for f in range(first_frame, last + 1)}
    empty = min(set(range(CLIP_FRAMES)) - on_objects)  # a frame no object is on
    page.mouse.click(*_on_object(page))
    _go_to_frame(page, empty)
    page.keyboard.down("Shift")
    page.mouse.click(*_at(page, 0.5, 0.5))
    page.keyboard.up("Shift")
    _go_to_frame(page, frame)
    assert "your clicks pick among them" in page.inner_text("#reuse-note")
    page.click("#click-update")
    page.wait_for_function(f"() => !location.pathname.endsWith('/{first}')")
    updated = page.url.rsplit("/", 1)[1]
    assert page.is_visible("#click-video")  # the frame stays while the mask is updated
    _wait_state(page, "finished")
    page.wait_for_function(f"() => document.querySelector('#click-mask').src.includes('/{updated}/mask')")
    page.wait_for_function(FRAME_SHOWN)
    page.wait_for_function(f"() => document.querySelector('#object-list img').src.includes('{updated}')")
    assert page.input_value("#click-frame") == str(frame) and len(_clicks(page)) == 2
    assert page.is_enabled("#click-update") and page.is_enabled("#find")
    sent = bodies[1]["visual_prompts"]
    assert bodies[1]["mask_prompt"] == "car" and bodies[1]["params"] == {"mode": "masks"}
    assert sorted(sent, key=lambda p: p["frame_index"]) == sent  # by frame
    kinds = {p["frame_index"]: [point["positive"] for point in p["points"]] for p in sent}
    assert kinds == {frame: [True], empty: [False]}
    sent = next(p for p in sent if p["frame_index"] == frame)
    assert "1 object(s) found" in page.inner_text("#job-message")  # the click kept the object
    with httpx.Client(base_url=web, timeout=EVENT_TIMEOUT_S) as http:  # the job's request had them
        log = http.get(f"/api/video/artifact/{updated}/log").text
    assert f'"visual_prompts": [{{"frame_index": {empty}, ' in log and f'{{"x": {sent["points"][0]["x"]}, ' in log

    # A click on nothing: the job fails, said in plain words beside the frame.
    _go_to_frame(page, empty)
    page.mouse.click(*_at(page, 0.5, 0.5))
    page.click("#click-update")
    _wait_state(page, "failed")
    page.wait_for_selector("#click-error:not([hidden])")
    assert f"Your click on frame {empty} is not on any object found" in page.inner_text("#click-error")
    assert "visual_prompts" not in page.inner_text("#job-error")
    page.click("#click-list li:last-child button:text('Remove')")

    # "What to edit" empty: the clicks alone say what the object is (tracked from their frames).
    failed = page.url
    page.fill("#mask-prompt", "")
    page.click("#click-update")
    page.wait_for_function(f"() => location.href !== '{failed}'")
    alone = page.url.rsplit("/", 1)[1]
    _wait_state(page, "finished")
    page.wait_for_function(f"() => document.querySelector('#click-mask').src.includes('/{alone}/mask')")
    assert bodies[-1]["mask_prompt"] == "" and len(bodies[-1]["visual_prompts"]) == 2
    page.fill("#mask-prompt", "car")

    # A box too: the edit tracks anew with the clicks (a box is for the tracker, not reused masks).
    _go_to_frame(page, frame)
    page.mouse.move(*_at(page, 0.1, 0.1))
    page.mouse.down()
    page.mouse.move(*_at(page, 0.6, 0.6), steps=4)
    page.mouse.up()
    _fill_job(page)
    page.click("#start")
    page.wait_for_function("() => ['finished', 'failed'].includes(document.querySelector('#job-state').textContent)")
    edit = bodies[-1]
    assert "masks_from" not in edit["params"] and edit["mask_prompt"] == "car"
    sent = {p["frame_index"]: (len(p["points"]), "box" in p) for p in edit["visual_prompts"]}
    assert sent == {empty: (1, False), frame: (1, True)}
    assert page.is_hidden("#clicks")  # the edit's page: its results, not the frames to click on
    page.goto(f"{web}/jobs/{updated}")  # a masks job's page opened afresh: no clicks of this tab
    page.wait_for_selector("#clicks:not([hidden])")
    assert _clicks(page) == []


def test_on_a_phone_click_the_frame_then_edit_on_the_masks_found(browser, web, clip):
    if not AXE.is_file():
        pytest.skip("gateway/vendor is not installed (make web-setup: npm)")
    context, page = _page(browser, PHONE, bypass_csp=True)  # axe-core below: a script not the page's own
    try:
        bodies = []
        page.on("request", lambda r: bodies.append(r.post_data_json) if r.url.endswith("/api/video/edit") else None)
        first = _find_then_click(page, web, clip)
        frame = int(page.input_value("#click-frame"))
        assert page.evaluate(NO_SIDEWAYS_SCROLL)
        page.mouse.click(*_on_object(page))
        # "Clicks are for: correcting object 1": a box that corrects it; "A click marks: not the
        # object": a red point without shift.
        page.select_option("#click-object", "1")
        page.mouse.move(*_at(page, 0.2, 0.2))
        page.mouse.down()
        page.mouse.move(*_at(page, 0.7, 0.8), steps=4)
        page.mouse.up()
        page.select_option("#click-object", "")
        page.select_option("#click-kind", "negative")
        page.mouse.click(*_at(page, 0.05, 0.05))
        texts = _clicks(page)
        assert texts[1].endswith("(correcting object 1)") and texts[2].startswith("not the object at 8, 6")
        assert page.locator("#click-marks circle.negative").count() == 1
        assert page.evaluate(NO_SIDEWAYS_SCROLL)
        _shot(page, "phone-clicks")
        page.click("#options summary")
        page.add_script_tag(path=str(AXE))
        found, passed = page.evaluate(
            "axe.run(document, {resultTypes: ['violations']}).then(r => [r.violations, r.passes.length])"
        )
        assert not found, [(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in found]
        assert passed > 10
        page.click("#click-list li:nth-child(3) button:text('Remove')")
        page.click("#click-list li:nth-child(2) button:text('Remove')")
        assert len(_clicks(page)) == 1

        # Edit the ticked objects: on the masks found (no tracking again), the click picking among them.
        page.fill("#steps", "2")
        page.fill("#edit-size", "64")
        page.fill("#again-prompt", "make the car blue")
        page.click("#again-start")
        page.wait_for_function(f"() => !location.pathname.endsWith('/{first}')")
        _wait_state(page, "finished")
        edit = bodies[-1]
        assert edit["params"]["masks_from"] == first and edit["mask_prompt"] == "car"
        [prompt] = edit["visual_prompts"]
        assert prompt["frame_index"] == frame and [p["positive"] for p in prompt["points"]] == [True]
        page.wait_for_function("() => document.querySelector('#video-output').readyState >= 2")
        assert page.evaluate(NO_SIDEWAYS_SCROLL)
    finally:
        context.close()
