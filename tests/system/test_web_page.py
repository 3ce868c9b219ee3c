"""The web page in a real browser: Debian's chromium driven by Playwright (its own browser download
is not reachable here; `.ci/run` and `make setup` install chromium). Upload a clip, start a job,
watch the stages advance, play the three videos; bad input shows a clear message. A page on
another loopback origin can neither make jobs nor plant a page the gateway would serve."""

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
from tests.helpers import EVENT_TIMEOUT_S, REPO_ROOT

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


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(EVENT_TIMEOUT_S * 1000)
    yield page
    context.close()


def test_upload_start_follow_and_play_the_three_videos(page, web, clip):
    page.goto(web)
    page.click("#start")  # nothing filled in
    assert "say what to edit" in page.inner_text("#form-error")
    page.fill("#mask-prompt", "car")
    page.fill("#edit-prompt", "make the car blue")
    page.click("#start")
    assert "pick a video file" in page.inner_text("#form-error")

    page.set_input_files("#file", str(clip))
    page.click("summary")
    page.fill("#steps", "2")
    page.fill("#edit-size", "64")
    page.select_option("#keyframes", "4")  # the model edits every 4th frame, the others carry it
    # Record every state the page shows (a short stage may be on screen for one event only).
    page.evaluate("""() => {
        window.seenStates = [];
        const state = document.querySelector('#job-state');
        new MutationObserver(() => window.seenStates.push(state.textContent))
            .observe(state, {childList: true, characterData: true, subtree: true});
    }""")
    page.click("#start")
    page.wait_for_selector("#job:not([hidden])")
    page.wait_for_function("() => document.querySelector('#job-state').textContent === 'finished'")
    seen = page.evaluate("window.seenStates")
    assert [s for s in ("masking", "editing", "saving", "finished") if s in seen] == [
        "masking",
        "editing",
        "saving",
        "finished",
    ], seen
    assert seen.index("masking") < seen.index("editing") < seen.index("saving") < seen.index("finished")
    progress = page.eval_on_selector_all("#stages progress", "bars => bars.map(b => b.value)")
    assert progress == [1] * 6
    page.wait_for_selector("#results:not([hidden])")
    for video in ("#video-input", "#video-output", "#video-mask"):  # all three load (H.264 from the API)
        page.wait_for_function(f"() => document.querySelector('{video}').readyState >= 2")
    page.evaluate("document.querySelector('#video-output').play()")
    for video in ("#video-input", "#video-output", "#video-mask"):  # playing together
        page.wait_for_function(f"() => document.querySelector('{video}').currentTime > 0.1")
    page.evaluate("document.querySelector('#video-output').pause()")
    assert "ended finished" in page.text_content("#log")  # the job's log, in the (folded) Log box
    assert "carried from keyframes" in page.text_content("#job-message")
    assert page.locator("#jobs li").count() >= 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-page.png"), full_page=True)


def test_a_one_frame_preview_shows_two_pictures(page, web, clip):
    page.goto(web)
    page.fill("#path", str(clip))
    page.fill("#mask-prompt", "car")
    page.fill("#edit-prompt", "make the car blue")
    page.click("summary")
    page.fill("#steps", "2")
    page.fill("#edit-size", "64")
    page.fill("#frame-index", "3")
    page.click("#preview")
    page.wait_for_function("() => document.querySelector('#job-state').textContent === 'finished'")
    page.wait_for_selector("#stills:not([hidden])")
    page.wait_for_function("() => document.querySelector('#still-output').naturalWidth > 0")
    page.wait_for_function("() => document.querySelector('#still-mask').naturalWidth > 0")


def test_a_bad_path_and_a_server_that_is_down_say_so(page, web, make_stack, clip):
    page.goto(web)
    page.fill("#path", "/nowhere/clip.mp4")
    page.fill("#mask-prompt", "car")
    page.fill("#edit-prompt", "make it red")
    page.click("#start")
    page.wait_for_function("() => document.querySelector('#form-error').textContent.includes('PERMISSION_DENIED')")

    with make_stack.gateway("down") as down:  # in front of a port nothing listens on
        page.goto(down.gateway_url)
        page.fill("#path", str(clip))
        page.fill("#mask-prompt", "car")
        page.fill("#edit-prompt", "make it red")
        page.click("#start")
        page.wait_for_function("() => document.querySelector('#form-error').textContent.includes('did not answer')")
        assert "UNAVAILABLE" in page.inner_text("#form-error")


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
        assert "sig=" in page.get_attribute("#log-link", "href")
        assert page.evaluate("sessionStorage.getItem('videoedit-token')") == "page-s3cret"
        assert page.evaluate("localStorage.length") == 0
        assert not [u for u in urls if "page-s3cret" in u or "access_token" in u]
        assert [u for u in urls if "/api/video/events/" in u and "sig=" in u]
        assert "page-s3cret" not in secured.log_path("gateway").read_text()
