"""The web page in a real browser: Debian's chromium driven by Playwright (its own browser download
is not reachable here; `.ci/run` and `make setup` install chromium). Upload a clip, start a job,
watch the stages advance, play the three videos; bad input shows a clear message."""

from __future__ import annotations

import shutil

import pytest

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
    page.wait_for_function("document.querySelector('#job-state').textContent === 'finished'")
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
        page.wait_for_function(f"document.querySelector('{video}').readyState >= 2")
    page.evaluate("document.querySelector('#video-output').play()")
    for video in ("#video-input", "#video-output", "#video-mask"):  # playing together
        page.wait_for_function(f"document.querySelector('{video}').currentTime > 0.1")
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
    page.wait_for_function("document.querySelector('#job-state').textContent === 'finished'")
    page.wait_for_selector("#stills:not([hidden])")
    page.wait_for_function("document.querySelector('#still-output').naturalWidth > 0")
    page.wait_for_function("document.querySelector('#still-mask').naturalWidth > 0")


def test_a_bad_path_and_a_server_that_is_down_say_so(page, web, make_stack, clip):
    page.goto(web)
    page.fill("#path", "/nowhere/clip.mp4")
    page.fill("#mask-prompt", "car")
    page.fill("#edit-prompt", "make it red")
    page.click("#start")
    page.wait_for_function("document.querySelector('#form-error').textContent.includes('PERMISSION_DENIED')")

    with make_stack.gateway("down") as down:  # in front of a port nothing listens on
        page.goto(down.gateway_url)
        page.fill("#path", str(clip))
        page.fill("#mask-prompt", "car")
        page.fill("#edit-prompt", "make it red")
        page.click("#start")
        page.wait_for_function("document.querySelector('#form-error').textContent.includes('did not answer')")
        assert "UNAVAILABLE" in page.inner_text("#form-error")
