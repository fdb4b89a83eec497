"""Every ``st.session_state`` key and widget ``key=`` of the app, in one place.

No Streamlit here: these are only the strings. They must never change: tests find widgets by them, and widgets
made with ``persist_state="session"`` keep their values under them across page switches. Widgets of one page
start with the task ("denoise.source"), those of one job or run with its id ("<id>.wipe"), so that a new job
gets fresh widgets.
"""

from __future__ import annotations

# -- this browser (ui.state) --
OWNER_SECRET = "owner.secret"  # the browser's secret (never shown, never in a URL)
OWNER_IN_COOKIE = "owner.in_cookie"  # the secret is already stored in the browser's cookie
URL_CHECKED = "url_checked"  # this session has opened the ?job= of its first URL


def job(task: str) -> str:
    """The id of this session's job of ``task``."""
    return f"job.{task}"


# -- the image picker (ui.inputs) --
def source(task: str) -> str:
    """Sample image, upload, or an already degraded upload (blind)."""
    return f"{task}.source"


def sample(task: str) -> str:
    """The chosen sample image."""
    return f"{task}.sample"


def upload(task: str) -> str:
    """The image uploader."""
    return f"{task}.upload"


def kept(uploader: str) -> str:
    """The (name, bytes) an uploader's file is kept under, so that it survives page switches."""
    return f"{uploader}.kept"


def downscaled(task: str) -> str:
    """(digest of the upload, name, bytes) of the downscaled copy the user accepted."""
    return f"{task}.downscaled"


def downscale(task: str) -> str:
    """The button that accepts a downscaled copy of an upload over the pixel limit."""
    return f"{task}.downscale"


# -- the inpainting mask picker (ui.inputs) --
MASK_KIND = "inpaint.mask_kind"
MASK_DEFAULTED_FOR = "inpaint.mask_defaulted_for"  # the upload whose transparency was made the default mask
KEEP_FRACTION = "inpaint.keep"
BRUSH = "inpaint.brush"
MASK_UPLOAD = "inpaint.mask_upload"
DRAWING = "inpaint.drawing"  # (image digest, strokes, RGBA): the last drawing, kept while the canvas is hidden
CANVAS_SHOWN = "inpaint.canvas_shown"  # (image digest, full run, strokes it started from)


def canvas(digest: str) -> str:
    """The drawing canvas of one image (another image gets a blank canvas; a new working size keeps it)."""
    return f"inpaint.canvas.{digest}"


# -- settings and Run (ui.widgets) --
def mode(task: str) -> str:
    """Lab preset or Quick look."""
    return f"{task}.mode"


def preset(task: str) -> str:
    """The preset's name."""
    return f"{task}.preset"


def max_side(task: str) -> str:
    """The working size (longer side, px)."""
    return f"{task}.max_side"


def quick_iterations(task: str) -> str:
    """The iterations the quick look last set by itself (a different value is the user's own)."""
    return f"{task}.quick.auto"


def setting(task: str, preset_name: str, name: str) -> str:
    """A hyper-parameter widget of one preset (each preset shows its own values): ``name`` is "iterations",
    "lr", "sigma_p", "seed", "snapshot_every", "stop_at_blind", "channels", "sigma" or "factor"."""
    return f"{task}.{preset_name}.{name}"


def use_size(task: str, side: int) -> str:
    """The "Use N px" button offered when the image is too small at the chosen working size."""
    return f"{task}.fits.{side}"


def smaller_size(task: str, side: int) -> str:
    """A "Use N px" button offered when a run would take long."""
    return f"{task}.smaller.{side}"


def run(task: str) -> str:
    """The Run button."""
    return f"{task}.run"


# -- a job's or a run's panels (ui.panels) --
def cancel(job_id: str) -> str:
    """The owner's Cancel button."""
    return f"cancel.{job_id}"


def share(job_id: str) -> str:
    """The "Make a read-only share link" button."""
    return f"{job_id}.share"


def share_token(job_id: str) -> str:
    """The share token made by that button."""
    return f"{share(job_id)}.token"


def snapshots(job_id: str, target: str = "") -> str:
    """The prefix of a snapshot picker's keys: the job's own, or one impedance target's."""
    return f"{job_id}.{target}" if target else job_id


def follow(picker: str) -> str:
    """The "Follow the latest snapshot" toggle of a snapshot picker (``snapshots``)."""
    return f"{picker}.follow"


def snapshot(picker: str) -> str:
    """The iteration slider of a snapshot picker (``snapshots``)."""
    return f"{picker}.snap"


def shown(job_id: str, phase: str) -> str:
    """Which output is shown; ``phase`` "live" or "final", so that a finished job opens on its final output."""
    return f"{job_id}.shown.{phase}"


def wipe(job_id: str) -> str:
    """The wipe slider between the reference and the output."""
    return f"{job_id}.wipe"


def baselines(job_id: str) -> str:
    """The table of classical methods."""
    return f"{job_id}.baselines"


def loss_chart(job_id: str) -> str:
    """The loss and PSNR chart."""
    return f"{job_id}.loss"


def impedance_chart(job_id: str) -> str:
    """The noise impedance chart (four loss curves)."""
    return f"{job_id}.impedance"


def target(job_id: str) -> str:
    """The impedance target whose snapshots are shown."""
    return f"{job_id}.target"


def download(job_id: str, name: str) -> str:
    """A download button: ``name`` is the file's path in the run folder, or "zip" for the report."""
    return f"{job_id}.dl.{name}"


# -- the Runs page (ui.panels.runs_browser) --
RUNS_TABLE = "runs.table"
RUNS_PICK = "runs.pick"


# -- the app's own --
FULL_RUNS = "app.full_runs"  # full script runs of this session (fragment reruns excluded)
