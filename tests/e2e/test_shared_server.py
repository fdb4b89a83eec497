"""One share link, many graders (issue 19), in Chromium: several browsers on one ``streamlit run``.

Each browser is a Playwright context with its own cookies, hence its own owner (``dip_owner``); a second tab of the
same context is the same owner. Jobs are tiny (64 px, 8-16 channels, tens of iterations): what is tested is who may
see, cancel and share what, that no client can stop another's job, that a job survives ``kill -9`` of the server,
that damaged run folders and hostile names or ids never break a page, and that the server's limits refuse a job
before it is queued.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import locators as sel
import pytest
from appserver import app_server
from fakes import fake_run
from PIL import Image

pytest.importorskip("playwright")
from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

SMALL = {"DIP_MAX_SIDE": "64"}  # the working size defaults to 64 px: every job here is tiny
JOB_MS = 240_000  # a tiny job on a busy 2-core CPU, queue included
APP_MS = 60_000  # a rerun on a busy 2-core CPU
READ_ONLY = "You are viewing another browser's job, read-only."
NOT_YOURS = "The link names no job you can open"
NOT_VALID = "The link is not a valid job id."
ITERATION = re.compile(r"iteration (\d+)/(\d+)")
SERVER_PATHS = ("/work/", "site-packages", "Traceback", "/tmp/")


# -- helpers ---------------------------------------------------------------------------------------------------
def wait_for_app(page) -> None:
    """Connected, the script run over, no stale element of the previous run left (as test_browser.py), and every
    element drawn: a metric, chart or selectbox shows a skeleton until its lazily loaded code has arrived, which
    on a busy CPU takes seconds in a new browser (each context has its own cache)."""
    page.wait_for_selector(sel.APP_CONNECTED, timeout=APP_MS)
    expect(page.locator(sel.APP)).to_have_attribute("data-test-script-state", "notRunning", timeout=APP_MS)
    expect(page.locator(sel.STALE)).to_have_count(0, timeout=APP_MS)
    expect(page.get_by_test_id(sel.SKELETON)).to_have_count(0, timeout=APP_MS)


def set_number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    wait_for_app(page)
    expect(page.get_by_label(label, exact=True)).to_have_value(str(value))


def open_options(page, label: str):
    """Open the selectbox ``label``'s list (by its "Open" button: a click in its text field does not); its options."""
    box = page.get_by_test_id(sel.SELECTBOX).filter(has_text=label)
    options = page.get_by_role("option")
    for _ in range(4):  # a click can land while the app is still redrawing
        try:
            box.get_by_role("button", name="Open").click(timeout=10_000)
            expect(options.first).to_be_visible(timeout=10_000)
            return options
        except (PlaywrightTimeout, AssertionError):
            wait_for_app(page)
    raise AssertionError(f"the selectbox {label!r} does not open")


def close_options(page) -> None:
    """Close an open list without choosing (Escape could clear the field: the app would see None)."""
    page.mouse.click(5, 500)  # the sidebar's background
    expect(page.get_by_role("option")).to_have_count(0, timeout=10_000)


def option_texts(page, label: str) -> list[str]:
    texts = [t.strip() for t in open_options(page, label).all_inner_texts()]
    close_options(page)
    return texts


def choose(page, label: str, option: str) -> None:
    box = page.get_by_test_id(sel.SELECTBOX).filter(has_text=label)
    for _ in range(3):
        open_options(page, label).filter(has_text=re.compile(rf"^{re.escape(option)}$")).click(timeout=10_000)
        wait_for_app(page)
        if box.get_by_role("combobox").input_value() == option:
            return
    raise AssertionError(f"could not choose {option!r} in {label!r}: {box.get_by_role('combobox').input_value()!r}")


def small_png(side: int = 96) -> bytes:
    """A side x side crop of a bundled photo (the cat's face), as PNG bytes."""
    im = Image.open(sel.ROOT / "sample_images" / "chelsea.png").convert("RGB").crop((110, 20, 290, 200))
    buf = io.BytesIO()
    im.resize((side, side), Image.Resampling.LANCZOS).save(buf, format="PNG")
    return buf.getvalue()


def upload(name: str) -> dict:
    """A file for ``set_input_files`` under any name, even one no file system allows (``/`` in it)."""
    return {"name": name, "mimeType": "image/png", "buffer": small_png()}


def open_denoising(page, url: str) -> None:
    page.goto(f"{url}/denoising")
    wait_for_app(page)
    expect(page.get_by_role("heading", name="Denoising", exact=True)).to_be_visible(timeout=APP_MS)


def prepare_job(
    page, url: str, *, iterations: int, channels: int = 8, snapshot_every: int = 5, file: dict | None = None
) -> None:
    """Denoising with the sample image (or ``file`` uploaded) and tiny settings, ready for Run."""
    open_denoising(page, url)
    if file is not None:
        page.get_by_text("Upload an image", exact=True).click()
        wait_for_app(page)
        page.get_by_test_id(sel.UPLOAD_INPUT).set_input_files(files=[file])
        expect(page.get_by_test_id(sel.FILE_CHIP)).to_be_visible(timeout=APP_MS)
    # The observation's caption shows once the (upload's) rerun has drawn the page (test_browser.py).
    expect(page.get_by_text(re.compile(r"Working image: \d+x\d+ px"))).to_be_visible(timeout=APP_MS)
    wait_for_app(page)
    advanced = page.get_by_test_id(sel.EXPANDER).filter(has_text="Advanced")
    expect(advanced).to_have_count(1, timeout=APP_MS)
    advanced.get_by_text("Advanced", exact=False).click()
    set_number(page, "Iterations", iterations)
    set_number(page, "Channels (widest level)", channels)
    set_number(page, "Snapshot every (iterations)", snapshot_every)


def press_run(page) -> None:
    page.get_by_test_id(sel.PRIMARY_BUTTON).filter(has_text="Run").click()


def job_in(url: str) -> str | None:
    return (parse_qs(urlsplit(url).query).get("job") or [None])[0]


def start_job(page) -> str:
    """Run; the job's id once it is in the address bar."""
    press_run(page)
    expect(page).to_have_url(re.compile(r"[?&]job="), timeout=APP_MS)
    return job_in(page.url)


def progress(page) -> str:
    """The progress bar's text ("Running · iteration 12/40 · ..."), or "" when there is none right now."""
    try:
        return page.get_by_test_id(sel.PROGRESS).first.inner_text(timeout=1_000)
    except PlaywrightTimeout:
        return ""


def wait_for_iteration(page, at_least: int, timeout_s: float = 180) -> int:
    """Poll the (live) progress text until the job has done ``at_least`` iterations; returns the count seen."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        m = ITERATION.search(progress(page))
        if m and int(m.group(1)) >= at_least:
            return int(m.group(1))
        assert page.get_by_test_id(sel.SUCCESS).count() == 0, "the job finished before it was seen running"
        page.wait_for_timeout(250)
    raise AssertionError(f"no iteration >= {at_least} within {timeout_s:.0f} s; progress: {progress(page)!r}")


def expect_done(page, timeout: int = JOB_MS) -> None:
    expect(page.get_by_test_id(sel.SUCCESS)).to_contain_text("Done", timeout=timeout)


def cancel_button(page):
    return page.get_by_role("button", name="Cancel", exact=True)


def share_button(page):
    return page.get_by_role("button", name="Make a read-only share link")


def my_job_link(page):
    return page.get_by_test_id(sel.SIDEBAR).get_by_text(re.compile(r"Your denoising job"))


def owner_key(page, timeout_s: float = 30) -> str:
    """The owner key of ``page``'s browser, as the server records it: sha256 of the cookie's secret, 32 digits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:  # the cookie is written by a script the first page run sends
        secret = next((c["value"] for c in page.context.cookies() if c["name"] == sel.OWNER_COOKIE), None)
        if secret:
            return hashlib.sha256(secret.encode()).hexdigest()[:32]
        page.wait_for_timeout(250)
    raise AssertionError("the browser never got its owner cookie")


INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


def page_text(page) -> str:
    return page.locator("body").inner_text()


def reads(locator) -> str:
    """What a reader sees: the text without zero-width characters (which may break a URL's autolink)."""
    return locator.inner_text().translate(INVISIBLE)


def foreign(page) -> list[str]:
    """The elements that link to or load from the evil host (outer HTML, cut short)."""
    return [el.evaluate("e => e.outerHTML")[:300] for el in page.locator(sel.FOREIGN_URL).all()]


def assert_clean(page, found: list | None = None, where: str = "") -> None:
    """No exception element, no server path or traceback in the text, no link or image to the evil host (those
    are added to ``found`` with ``where`` instead, when it is given, so a test can name every place at the end)."""
    text = page_text(page)
    assert page.get_by_test_id(sel.EXCEPTION).count() == 0, text[-3000:]
    for leak in SERVER_PATHS:
        assert leak not in text, f"{leak!r} on the page: {text[:2000]}"
    if found is None:
        expect(page.locator(sel.FOREIGN_URL)).to_have_count(0)
    else:
        found += [f"{where}: {html}" for html in foreign(page)]


def run_options(page) -> list[str]:
    """What the Runs page offers in "Open a run" (its table is a canvas): one label per listed run (the label
    names the image, not the id), [] when it lists none."""
    if page.get_by_test_id(sel.SELECTBOX).filter(has_text="Open a run").count() == 0:
        return []
    return option_texts(page, "Open a run")


def history_iterations(folder: Path) -> list[int]:
    with open(folder / "history.csv", newline="") as f:
        return [int(row["iteration"]) for row in csv.DictReader(f)]


# -- fixtures --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shared(browser, tmp_path_factory):
    """One server for the tests that need no special settings (an AppServer: ``.url``, ``.runs``)."""
    with app_server(tmp_path_factory.mktemp("shared"), SMALL) as server:
        yield server


# -- 1. a stranger's view of a job ---------------------------------------------------------------------------
def test_a_job_link_opened_by_a_stranger_is_read_only_and_the_owner_keeps_the_job(shared, new_browser):
    """B opens A's address-bar URL: read-only, no Cancel, no "Your denoising job"; B reloads; A's job finishes;
    a reload of A keeps A's ownership (Cancel while active; the run on disk is recorded under A's key)."""
    url = shared.url
    blocker, owner, stranger = new_browser(), new_browser(), new_browser()
    # C holds the one worker with a long job, so A's job is certainly still active while B looks at it.
    prepare_job(blocker, url, iterations=5000, snapshot_every=500)
    start_job(blocker)
    expect(blocker.get_by_test_id(sel.PROGRESS)).to_contain_text("Running", timeout=APP_MS)

    try:
        prepare_job(owner, url, iterations=40, snapshot_every=5)
        job = start_job(owner)
        expect(owner.get_by_test_id(sel.PROGRESS)).to_contain_text("Queued · 1 job(s) ahead", timeout=APP_MS)
        expect(cancel_button(owner)).to_be_visible()
        expect(my_job_link(owner)).to_be_visible(timeout=APP_MS)
        key = owner_key(owner)

        stranger.goto(owner.url)  # the address bar, as a grader would copy it
        for reload in (False, True):  # B's first visit, then B's reload
            if reload:
                stranger.reload()
            wait_for_app(stranger)
            expect(stranger.get_by_text(READ_ONLY)).to_be_visible(timeout=APP_MS)
            expect(stranger.get_by_test_id(sel.PROGRESS)).to_contain_text("Queued")
            expect(cancel_button(stranger)).to_have_count(0)
            expect(my_job_link(stranger)).to_have_count(0)
            assert job_in(stranger.url) == job
        assert owner_key(stranger) != key

        owner.reload()  # the cookie brings A's ownership back to the new session
        wait_for_app(owner)
        expect(cancel_button(owner)).to_be_visible(timeout=APP_MS)
        expect(owner.get_by_text(READ_ONLY)).to_have_count(0)
        expect(my_job_link(owner)).to_be_visible(timeout=APP_MS)

        cancel_button(blocker).click()  # C frees the worker: A's job runs
        expect(blocker.get_by_test_id(sel.WARNING)).to_contain_text("Cancelled", timeout=APP_MS)
        # While A's job runs, B's page (it polls too) still offers no Cancel.
        deadline = time.monotonic() + JOB_MS / 1000
        while (
            time.monotonic() < deadline
            and "Running" not in progress(stranger)
            and stranger.get_by_test_id(sel.SUCCESS).count() == 0
        ):
            stranger.wait_for_timeout(200)
        expect(cancel_button(stranger)).to_have_count(0)
        expect(stranger.get_by_text(READ_ONLY)).to_be_visible()
    finally:  # never leave the long job holding the shared server's worker
        if cancel_button(blocker).count():
            cancel_button(blocker).click()
    expect_done(owner)
    expect_done(stranger)
    wait_for_app(stranger)
    expect(cancel_button(stranger)).to_have_count(0)
    expect(stranger.get_by_text(READ_ONLY)).to_be_visible()
    expect(my_job_link(stranger)).to_have_count(0)

    owner.reload()
    wait_for_app(owner)
    expect_done(owner, APP_MS)
    expect(owner.get_by_text(READ_ONLY)).to_have_count(0)  # still A's job after the reload
    access = json.loads((shared.runs / job / "access.json").read_text())
    assert access["owner"] == key and access["public"] is True  # a sample image: public, but A's
    assert history_iterations(shared.runs / job) == list(range(1, 41))


# -- 2. clear_cache from another client ----------------------------------------------------------------------
def test_clear_cache_sent_by_another_client_does_not_stop_a_running_job(shared, new_browser):
    """B sends Streamlit's ``clear_cache`` back-message over its own websocket while A's job runs: the job still
    finishes. (``toolbarMode = viewer`` only hides the menu item: any client can send it.)"""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    url = shared.url
    owner, other = new_browser(), new_browser()
    sockets, from_server = {}, []

    def route(ws):
        server = ws.connect_to_server()
        sockets["server"] = server

        def forward(message):
            from_server.append(message)
            ws.send(message)

        server.on_message(forward)

    other.route_web_socket(sel.WEBSOCKET, route)
    other.goto(url)
    wait_for_app(other)
    assert "server" in sockets, "B's websocket was not routed"

    prepare_job(owner, url, iterations=80, channels=16, snapshot_every=10)
    job = start_job(owner)
    wait_for_iteration(owner, 1)
    seen = len(from_server)
    sockets["server"].send(BackMsg(clear_cache=True).SerializeToString())
    # A client's messages are handled in order: the heartbeat's ack proves clear_cache was handled before it.
    sockets["server"].send(BackMsg(app_heartbeat=True).SerializeToString())

    def acked() -> bool:
        for message in from_server[seen:]:
            msg = ForwardMsg()
            msg.ParseFromString(message)
            if msg.WhichOneof("type") == "heartbeat_ack":
                return True
        return False

    deadline = time.monotonic() + 30
    while not acked():
        assert time.monotonic() < deadline, "the server never acknowledged B's messages"
        other.wait_for_timeout(100)  # lets Playwright deliver the routed messages
    assert (shared.runs / ".incomplete" / job).is_dir(), "the job had finished before clear_cache was handled"

    expect_done(owner)
    metrics = json.loads((shared.runs / job / "metrics.json").read_text())
    assert metrics["status"] == "done"
    assert history_iterations(shared.runs / job) == list(range(1, 81))
    other.reload()  # B's page still works after its session state was cleared
    wait_for_app(other)
    expect(other.get_by_test_id(sel.EXCEPTION)).to_have_count(0)


# -- 3. a file name written in Markdown ------------------------------------------------------------------------
EVIL_NAME = "[phish](https://evil.example/login) ![px](https://evil.example/px.png).png"


def test_a_markdown_file_name_is_shown_as_text_everywhere(shared, new_browser):
    """An upload named like a Markdown link and image: no link, no remote image anywhere (main, sidebar, toasts),
    and the literal name is shown (the settings line under the job, the Runs page)."""
    page = new_browser()
    found: list[str] = []  # every link or image to the evil host, named by where it was seen
    prepare_job(page, shared.url, iterations=10, snapshot_every=5, file=upload(EVIL_NAME))
    assert_clean(page, found, "Denoising, before the run")
    job = start_job(page)
    expect_done(page)
    wait_for_app(page)
    settings_line = page.get_by_text(re.compile(r"^This run: ")).first
    expect(settings_line).to_be_visible()
    assert reads(settings_line).startswith(f"This run: {EVIL_NAME} · 64x64 px"), reads(settings_line)
    assert_clean(page, found, "Denoising, job done")

    page.reload()  # the job read back
    wait_for_app(page)
    expect_done(page, APP_MS)
    assert f"This run: {EVIL_NAME}" in reads(page.locator("body"))
    assert_clean(page, found, "Denoising, reloaded")

    page.get_by_test_id(sel.SIDEBAR_NAV).get_by_text("Runs", exact=True).click()
    expect(page.get_by_role("heading", name="Runs", exact=True)).to_be_visible(timeout=APP_MS)
    wait_for_app(page)
    assert_clean(page, found, "Runs")
    page.goto(f"{shared.url}/runs?run={job}")
    wait_for_app(page)
    title = page.get_by_role("heading", name=re.compile(r"^Denoising · "))
    expect(title).to_be_visible(timeout=APP_MS)
    assert EVIL_NAME in reads(title), reads(title)
    assert_clean(page, found, "Runs, the run opened")

    page.goto(shared.url)  # Home counts the runs
    wait_for_app(page)
    assert_clean(page, found, "Home")
    assert not found, "\n".join(found)


# -- 4. uploads are private until shared -----------------------------------------------------------------------
def test_an_uploaded_photo_s_run_is_private_until_its_owner_shares_a_link(shared, new_browser):
    """B: not listed, ``?run=`` says there is no run B can open, ``?job=`` shows nothing; A makes a share link;
    C opens it and sees the run read-only."""
    url = shared.url
    owner, stranger, grader = new_browser(), new_browser(), new_browser()
    prepare_job(owner, url, iterations=10, snapshot_every=5, file=upload("private_face.png"))
    job = start_job(owner)
    expect_done(owner)
    wait_for_app(owner)

    owner.goto(f"{url}/runs")  # the owner's listing names it: the stranger's check below is not vacuous
    wait_for_app(owner)
    assert any("private_face.png" in label for label in run_options(owner)), run_options(owner)
    owner.goto(f"{url}/denoising?job={job}")
    wait_for_app(owner)
    expect_done(owner, APP_MS)

    stranger.goto(f"{url}/runs")
    wait_for_app(stranger)
    assert not any("private_face" in label for label in run_options(stranger))
    stranger.goto(f"{url}/runs?run={job}")
    wait_for_app(stranger)
    expect(stranger.get_by_test_id(sel.WARNING)).to_contain_text(
        f"There is no saved run you can open named {job}", timeout=APP_MS
    )
    expect(stranger.get_by_test_id(sel.METRIC)).to_have_count(0)
    stranger.goto(f"{url}/denoising?job={job}")
    expect(stranger.get_by_test_id(sel.TOAST)).to_contain_text(NOT_YOURS, timeout=APP_MS)
    wait_for_app(stranger)
    expect(stranger.get_by_test_id(sel.METRIC)).to_have_count(0)
    assert "private_face" not in page_text(stranger)

    share_button(owner).click()
    code = owner.get_by_test_id(sel.CODE)
    expect(code).to_contain_text(f"{url}/runs?share=", timeout=APP_MS)
    link = code.inner_text().strip()
    assert re.fullmatch(rf"{re.escape(url)}/runs\?share=[A-Za-z0-9_-]{{22,64}}", link), link

    grader.goto(link)
    wait_for_app(grader)
    expect(grader.get_by_role("heading", name=re.compile(r"private_face\.png"))).to_be_visible(timeout=APP_MS)
    expect(grader.get_by_test_id(sel.METRIC).filter(has_text="PSNR output")).to_contain_text(
        re.compile(r"\d+\.\d\d dB"), timeout=APP_MS
    )
    expect(grader.get_by_text(READ_ONLY)).to_be_visible()
    expect(share_button(grader)).to_have_count(0)
    expect(cancel_button(grader)).to_have_count(0)
    expect(grader.get_by_test_id(sel.EXCEPTION)).to_have_count(0)
    assert any("private_face.png" in label for label in run_options(grader))  # listed for C, by the link

    stranger.goto(f"{url}/runs?run={job}")  # the link was made for C: B still cannot open the run
    wait_for_app(stranger)
    expect(stranger.get_by_test_id(sel.WARNING)).to_contain_text(
        f"There is no saved run you can open named {job}", timeout=APP_MS
    )
    expect(stranger.get_by_test_id(sel.METRIC)).to_have_count(0)


# -- 5. kill -9 mid-run ----------------------------------------------------------------------------------------
def test_a_job_cut_off_by_kill_9_resumes_on_the_next_server_and_finishes(new_browser, tmp_path):
    """SIGKILL at iteration >= 10; a new process on the same runs folder (another port: the cookie is per host)
    resumes the job for its owner from its checkpoint; history.csv has exactly one row per iteration."""
    n = 60
    env = {**SMALL, "DIP_CHECKPOINT_EVERY": "3", "DIP_POLL_SECONDS": "0.5"}
    with app_server(tmp_path, env) as server:
        page = new_browser()
        prepare_job(page, server.url, iterations=n, snapshot_every=5)
        job = start_job(page)
        key = owner_key(page)
        seen = wait_for_iteration(page, 10)
        server.kill()
        pending = server.runs / ".incomplete" / job
        assert (pending / "job.json").is_file(), f"nothing to resume in {pending}"
        assert not (server.runs / job).exists(), f"the job finished before the kill (seen at iteration {seen})"
        assert (pending / "checkpoint.pt").is_file()

        old = server.url
        url = server.start()
        assert urlsplit(url).port != urlsplit(old).port
        assert any(c["name"] == sel.OWNER_COOKIE and c["domain"] == "127.0.0.1" for c in page.context.cookies())
        page.goto(f"{url}/denoising?job={job}")
        wait_for_app(page)
        resumed = page.get_by_text(re.compile(r"resumed after a server restart|continues from its checkpoint"))
        expect(resumed.or_(page.get_by_test_id(sel.SUCCESS)).first).to_be_visible(timeout=APP_MS)
        if progress(page):  # still active: A owns it in the new process too
            expect(cancel_button(page).or_(page.get_by_test_id(sel.SUCCESS)).first).to_be_visible()
        expect(page.get_by_text(READ_ONLY)).to_have_count(0)
        expect_done(page)

        folder = server.runs / job
        assert history_iterations(folder) == list(range(1, n + 1))
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["status"] == "done" and metrics.get("resumed_after_restart") is True
        assert json.loads((folder / "access.json").read_text())["owner"] == key
        assert not any((server.runs / ".incomplete").iterdir())
        assert not (folder / "checkpoint.pt").exists()


# -- 6. damaged run folders ------------------------------------------------------------------------------------
GOOD = "20260101-000000-denoise-aaaaaa"
TRUNC_METRICS = "20260102-000000-denoise-bbbbbb"
LIST_METRICS = "20260103-000000-denoise-cccccc"
TRUNC_HISTORY = "20260104-000000-denoise-dddddd"
TRUNC_PNG = "20260105-000000-denoise-eeeeee"


def damaged_runs(runs: Path) -> None:
    fake_run(runs / GOOD, iters=12, side=32)
    path = fake_run(runs / TRUNC_METRICS, iters=12, side=32) / "metrics.json"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    (fake_run(runs / LIST_METRICS, iters=12, side=32) / "metrics.json").write_text("[]")
    path = fake_run(runs / TRUNC_HISTORY, iters=12, side=32) / "history.csv"
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b",", len(data) // 2) + 1])  # cut off mid-row, as a killed writer leaves it
    path = fake_run(runs / TRUNC_PNG, iters=12, side=32) / "result.png"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_damaged_run_folders_never_break_the_runs_page(new_browser, tmp_path):
    """A gallery server (every run listed) with a good run and four damaged ones: the page loads, notes the
    folders it skipped, and each damaged run, opened by its link, says what is wrong with it."""
    damaged_runs(tmp_path / "runs")
    with app_server(tmp_path, {**SMALL, "DIP_PUBLIC_RUNS": "1"}) as server:
        page = new_browser()
        page.goto(f"{server.url}/runs")
        wait_for_app(page)
        expect(page.get_by_role("heading", name="Runs", exact=True)).to_be_visible(timeout=APP_MS)
        skipped = page.get_by_text("2 run folders could not be read and are not listed")
        expect(skipped).to_be_visible(timeout=APP_MS)
        expect(skipped).to_contain_text(f"{LIST_METRICS} (metrics.json is not a JSON object (it holds a list))")
        expect(skipped).to_contain_text(f"{TRUNC_METRICS} (metrics.json is truncated")
        # The newest listed run does not open: the default view says so and shows the newest that does.
        expect(
            page.get_by_test_id(sel.WARNING).filter(has_text=f"Showing {TRUNC_HISTORY}, the newest run that opens")
        ).to_be_visible()
        assert len(run_options(page)) == 3  # the good run, the cut history and the cut image
        assert_clean(page)

        for run, kind, message in [
            (TRUNC_METRICS, sel.ERROR, f"Run {TRUNC_METRICS} could not be read: metrics.json is truncated"),
            (
                LIST_METRICS,
                sel.ERROR,
                f"Run {LIST_METRICS} could not be read: metrics.json is not a JSON object (it holds a list).",
            ),
            (
                TRUNC_PNG,
                sel.ERROR,
                f"Run {TRUNC_PNG} could not be read: result.png could not be decoded (a "
                "truncated, corrupt or oversized image file).",
            ),
            (TRUNC_HISTORY, sel.WARNING, "history.csv is truncated at line"),
        ]:
            page.goto(f"{server.url}/runs?run={run}")
            wait_for_app(page)
            expect(page.get_by_test_id(kind).filter(has_text=message)).to_be_visible(timeout=APP_MS)
            assert_clean(page)
            assert str(tmp_path) not in page_text(page)
            if run == TRUNC_HISTORY:  # opens, without the partial row
                expect(page.get_by_test_id(sel.METRIC).filter(has_text="PSNR output")).to_contain_text("24.00 dB")
            else:
                expect(page.get_by_test_id(sel.METRIC)).to_have_count(0)

        page.goto(f"{server.url}/runs?run={GOOD}")
        wait_for_app(page)
        expect(page.get_by_test_id(sel.METRIC).filter(has_text="PSNR output")).to_contain_text(
            "24.00 dB", timeout=APP_MS
        )
        assert_clean(page)


# -- 7. limits -------------------------------------------------------------------------------------------------
def test_the_servers_limits_refuse_a_job_before_it_is_queued(new_browser, tmp_path):
    """DIP_MAX_WORKING_SIDE=96: 128 px is not offered, or refused naming the limit; DIP_MAX_TFLOP: a job over the
    compute budget is refused naming it, and no job starts. One job per owner: a second tab of the same browser
    (same cookie) is refused while the first job runs; another browser may queue."""
    env = {**SMALL, "DIP_MAX_WORKING_SIDE": "96", "DIP_MAX_TFLOP": "0.1", "DIP_MAX_JOBS_PER_OWNER": "1"}
    with app_server(tmp_path, env) as server:
        url = server.url
        first = new_browser()
        # 64 px, 8 channels: 0.0487 GFLOP per iteration, so 5,000 iterations (243 GFLOP) exceed 100 GFLOP and
        # 2,000 (97 GFLOP) fit.
        prepare_job(first, url, iterations=5000, snapshot_every=500)

        def refused(text: str) -> None:
            warning = first.get_by_test_id(sel.WARNING).filter(has_text=text)
            expect(warning).to_be_visible(timeout=APP_MS)
            wait_for_app(first)
            assert job_in(first.url) is None
            expect(first.get_by_test_id(sel.PROGRESS)).to_have_count(0)
            expect(my_job_link(first)).to_have_count(0)
            expect(first.get_by_test_id(sel.SIDEBAR)).to_contain_text("Queue: 0 job(s) waiting or running")
            pending = server.runs / ".incomplete"
            assert not pending.is_dir() or not any(pending.iterdir())

        sizes = option_texts(first, "Working size")
        assert "64" in sizes and "96" in sizes, sizes
        if "128" in sizes:  # offered: the server refuses it when the job is submitted
            choose(first, "Working size", "128")
            expect(first.get_by_text("Working image: 128x128 px.")).to_be_visible(timeout=APP_MS)
            press_run(first)
            refused(
                "the working image is 128x128 px; this server allows at most 96 px on the longer side. Choose "
                "a working size of 96 px or less."
            )
            choose(first, "Working size", "64")
            expect(first.get_by_text("Working image: 64x64 px.")).to_be_visible(timeout=APP_MS)
        else:  # the page offers only the sizes this server accepts
            assert all(int(x) <= 96 for x in sizes), sizes
        press_run(first)
        refused(
            "this job needs 243 GFLOP of compute (5,000 iterations at 64x64 px with 8 channels); this server "
            "allows 100 GFLOP per job. At this size and width at most 2,055 iterations fit"
        )
        set_number(first, "Iterations", 2000)

        second_tab = first.context.new_page()  # same cookie: the same owner
        prepare_job(second_tab, url, iterations=10)
        other = new_browser()
        # Long enough to be still running when its owner cancels it (10 iterations could finish first on a fast CI).
        prepare_job(other, url, iterations=2000, snapshot_every=500)

        job = start_job(first)
        expect(first.get_by_test_id(sel.PROGRESS)).to_contain_text(re.compile("Queued|Running"), timeout=APP_MS)
        press_run(second_tab)
        busy = second_tab.get_by_test_id(sel.WARNING).filter(has_text=re.compile("you already have a", re.I))
        expect(busy).to_be_visible(timeout=APP_MS)
        expect(busy).to_contain_text(job)
        wait_for_app(second_tab)
        assert job_in(second_tab.url) is None
        expect(my_job_link(second_tab)).to_be_visible()  # the first tab's job is this browser's job

        queued = start_job(other)
        assert queued != job
        expect(other.get_by_test_id(sel.PROGRESS)).to_contain_text("Queued · 1 job(s) ahead", timeout=APP_MS)
        expect(other.get_by_test_id(sel.SIDEBAR)).to_contain_text("Queue: 2 job(s) waiting or running")

        cancel_button(first).click()  # tidy up: each owner cancels its own job
        expect(first.get_by_test_id(sel.WARNING)).to_contain_text("Cancelled", timeout=APP_MS)
        expect(cancel_button(other)).to_be_visible(timeout=APP_MS)
        cancel_button(other).click()
        expect(other.get_by_test_id(sel.WARNING)).to_contain_text("Cancelled", timeout=APP_MS)


# -- 8. malformed job ids --------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["a" * 300, "[text](https://evil.example/x)"], ids=["300-chars", "markdown"])
def test_a_malformed_job_id_gets_a_plain_message(shared, new_browser, bad):
    page = new_browser()
    page.goto(f"{shared.url}/denoising?job={quote(bad)}")
    expect(page.get_by_test_id(sel.TOAST)).to_contain_text(NOT_VALID, timeout=APP_MS)
    wait_for_app(page)
    assert_clean(page)
    assert bad not in page_text(page)  # never echoed
    expect(page.get_by_test_id(sel.METRIC)).to_have_count(0)

    page.goto(f"{shared.url}/runs?run={quote(bad)}")
    wait_for_app(page)
    expect(page.get_by_text(re.compile("There is no saved run you can open named"))).to_be_visible(timeout=APP_MS)
    assert_clean(page)
