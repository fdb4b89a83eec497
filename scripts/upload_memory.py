"""Peak memory of decoding uploads the way the app does, without Streamlit (issue #19: one share link, many graders).

The attack: a PNG of about 130 KB that decodes to 6300x6300 px (under the 40 MP limit). The app keeps each decoded
upload in a process-wide cache (``ui.inputs._decoded``) and gives every rerun a float32 copy (``Picked.image``).

    app        ui.service.imaging.decode_upload (uint8, at most ui.service.config.DOWNSCALE_TO px, at most
               ui.service.imaging.DECODES at once), then the float32 copy ui.inputs._load makes
    full-float dip.core.images.load_image at full size, then a copy: what ui/inputs.py did before (the old loader also
               made an exif_transpose copy: 1173 MB for one upload, 3532 MB for three, measured once)

Each case runs in a fresh Python process, so that peaks do not mix: the process imports what the app imports,
reads the files, resets its peak RSS (/proc/self/clear_refs), decodes one upload or three at once (three threads,
three different files, as three browsers), keeps the results as the cache and a rerun do, and reports the peak
(VmHWM) and the RSS still held afterwards (VmRSS), both over its RSS before.

    .venv/bin/python scripts/upload_memory.py          # prints a table (about a minute on 2 cores)

Goal: one upload under 300 MB, three at once under 900 MB. On a 2-core AMD EPYC: app 211 MB (1), 391-452 MB (3,
varying with the threads' timing); full-float 1069 MB and 2926 MB.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIDE = 6300
GOALS_MB = {1: 300, 3: 900}


def attack_png(variant: int) -> bytes:
    """A smooth 6300x6300 RGB gradient (a different one per variant) with a little seeded noise: ~100+ KB."""
    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, 255, SIDE).astype(np.uint16)
    channels = (ramp[:, None], ramp[None, :], (ramp[:, None] + ramp[None, :]) // 2)
    image = np.empty((SIDE, SIDE, 3), np.uint8)
    for c in range(3):
        image[..., c] = channels[(c + variant) % 3]
    rng = np.random.default_rng(variant)
    image[rng.integers(0, SIDE, 2000), rng.integers(0, SIDE, 2000)] = rng.integers(0, 256, (2000, 3))
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=9)
    return buf.getvalue()


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def child(path: str, count: int, how: str) -> None:
    """One measurement, in this (fresh) process; prints one JSON line."""
    from dip.core.images import load_image
    from ui.service import config
    from ui.service.imaging import decode_upload, float_image, inspect_upload

    files = [Path(path.format(i)).read_bytes() for i in range(count)]
    kept = [None] * count

    def app_way(i: int) -> None:  # ui.inputs._load: header check, cached decode, a float32 copy for the rerun
        info = inspect_upload(files[i])
        assert info is not None and info.pixels <= config.max_pixels()
        decoded = decode_upload(files[i], f"upload{i}.png", max_pixels=config.max_pixels())
        kept[i] = (decoded, float_image(decoded.pixels))

    def full_float(i: int) -> None:  # ui.inputs._load before: load_image at full size, then .copy()
        named = io.BytesIO(files[i])
        named.name = f"upload{i}.png"
        image = load_image(named, mode="rgb", max_pixels=config.max_pixels())
        kept[i] = (image, image.copy())

    work = {"app": app_way, "full-float": full_float}[how]
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    except OSError:
        pass
    idle_kb, start_hwm_kb = _status_kb("VmRSS"), _status_kb("VmHWM")
    t0 = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    assert all(k is not None for k in kept), "a decode failed"
    shape = kept[0][1].shape
    print(
        json.dumps(
            {
                "idle_mb": idle_kb / 1024,
                "peak_mb": (_status_kb("VmHWM") - idle_kb) / 1024,
                "after_mb": (_status_kb("VmRSS") - idle_kb) / 1024,
                "hwm_reset": start_hwm_kb <= idle_kb + 1024,
                "seconds": seconds,
                "shape": list(shape),
            }
        )
    )


def measure(path: str, count: int, how: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", path, str(count), how],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "attack{}.png")
        sizes = []
        for i in range(3):
            data = attack_png(i)
            Path(path.format(i)).write_bytes(data)
            sizes.append(len(data))
        print(
            f"files: {SIDE}x{SIDE} px PNG, {', '.join(f'{s / 1024:.0f} KB' for s in sizes)}; "
            f"one decoded as float32 at full size: {SIDE * SIDE * 12 / 2**20:.0f} MB"
        )
        print(
            f"{'uploads at once':>15} | {'way':>10} | {'peak over idle':>14} | {'goal':>7} | {'held after':>10} | "
            f"{'seconds':>7} | image per rerun"
        )
        for count in (1, 3):
            for how in ("app", "full-float"):
                r = measure(path, count, how)
                goal = f"< {GOALS_MB[count]}" if how == "app" else ""
                mark = "" if how != "app" else (" ok" if r["peak_mb"] < GOALS_MB[count] else " OVER")
                print(
                    f"{count:>15} | {how:>10} | {r['peak_mb']:>11.0f} MB | {goal:>7} | {r['after_mb']:>7.0f} MB | "
                    f"{r['seconds']:>7.1f} | {'x'.join(map(str, r['shape']))} float32{mark}"
                    + ("" if r["hwm_reset"] else "  (peak not reset: includes the imports)")
                )
        print(f"(idle RSS of a child after its imports: {r['idle_mb']:.0f} MB)")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        sys.path.insert(0, str(ROOT))
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        main()
