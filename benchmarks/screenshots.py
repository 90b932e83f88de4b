"""README screenshots of "See it learn": live curves and two "Try it" widgets, in JupyterLab, headless Chromium.

Writes a small notebook under ``build/screenshots/`` (not committed), starts JupyterLab on it with
``$COURSE_LIVE=1`` (so ``fit`` draws its curves and the widgets show their controls), opens it in
Debian's ``chromium`` driven by Playwright (``pip install playwright``; no ``playwright install``
needed), runs all cells in the browser's kernel (ipywidgets render only there), waits for the sliders
and saves one PNG per cell into ``docs/images/``:

    live-curves.png     fit(..., live=True) on a tiny CNN, mid-run (the cell still running): the figure is
                        redrawn in place as epochs end (taken at its 7th version)
    widget-kernel.png   lesson 04's 3×3 kernel on a photo: the static grid, then nine sliders and the result
    widget-nms.png      lesson 10's NMS IoU threshold: the static grid, then the slider and the kept boxes

    python benchmarks/screenshots.py              # offline; 2-3 minutes on a busy 2-core machine
    python benchmarks/screenshots.py --out /tmp   # somewhere else
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
MID_RUN = 7  # the live figure's screenshot: at its 7th version of 12 (redrawn once an epoch, at most 1/s)

CELLS = {  # PNG name -> source of one code cell (the first cell, without a PNG, only imports)
    None: "import torch\nfrom course_utils import widgets\nfrom course_utils.train import TensorLoader, fit",
    "live-curves.png": """\
torch.manual_seed(0)   # a tiny CNN on 3 classes of coloured 16x16 noise: curves that move within seconds
y = torch.randint(0, 3, (1800,)); x = (torch.randint(0, 128, (1800, 3, 16, 16)) + y.view(-1, 1, 1, 1) * 12).to(torch.uint8)
model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),
                            torch.nn.Flatten(), torch.nn.Linear(32, 3))
hist = fit(model, TensorLoader(x[:1500], y[:1500], 32, seed=0), TensorLoader(x[1500:], y[1500:], 100, shuffle=False),
           epochs=12, lr=0.05, seed=0, quiet=True, live=True)   # live: one figure, redrawn as epochs end""",
    "widget-kernel.png": """\
from skimage import data
photo = torch.from_numpy(data.camera() / 255.0).float()[::4, ::4]   # lesson 04's photo, (128, 128)
widgets.kernel_demo(photo, presets=("box blur", "sharpen", "Sobel x", "outline"));""",
    "widget-nms.png": """\
from torchvision.ops import box_convert
torch.manual_seed(0)   # lesson 10's widget on made-up detections: 3 objects, 8 jittered boxes each
image = torch.full((3, 128, 128), 0.9); centres = torch.tensor([[36., 40, 40, 40], [90, 44, 36, 30], [64, 98, 50, 30]])
for cx, cy, w, h in centres.tolist():
    image[:, int(cy - h / 2):int(cy + h / 2), int(cx - w / 2):int(cx + w / 2)] = torch.rand(3, 1, 1) * 0.7
jitter = centres.repeat_interleave(8, 0) + torch.randn(24, 4) * torch.tensor([5., 5, 6, 6])
boxes, scores = box_convert(jitter, "cxcywh", "xyxy"), torch.rand(24) * 0.8 + 0.2
widgets.nms_demo(image, boxes, scores, grid=(0.1, 0.4, 0.7));""",
}


def write_notebook(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS.values()]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "see_it_learn.ipynb"
    nbformat.write(nb, path)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(folder: Path, port: int, token: str) -> subprocess.Popen:
    config = folder / "jupyter_config"  # no "news?" pop-up over the screenshot
    (config / "labconfig").mkdir(parents=True, exist_ok=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    import jupyterlab_widgets  # ipywidgets' JupyterLab extension, under the prefix it was installed into
    shared = Path(jupyterlab_widgets.__file__).resolve().parents[4] / "share" / "jupyter"  # (a venv that
    path = os.pathsep.join(p for p in (os.environ.get("JUPYTER_PATH"), str(shared)) if p)  # borrows site-packages)
    env = {**os.environ, "COURSE_LIVE": "1", "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_PATH": path}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}", "--allow-root"]  # root in containers
    lab = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(folder / "lab.log", "w"))
    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
            return lab
        except OSError:
            time.sleep(1)
    lab.terminate()
    raise RuntimeError(f"JupyterLab did not start: see {folder / 'lab.log'}")


def shoot(url: str, out: Path, timeout_s: float) -> list[Path]:
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(REPO))
    from course_utils.machinery.sitecheck import find_chromium

    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("no chromium: apt-get install -y chromium")
    saved = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 960, "height": 3200})  # tall: every cell stays rendered
        page.goto(url)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        try:  # a fresh server asks which kernel: the notebook's own
            page.locator(".jp-Dialog").get_by_role("button", name="Select").click(timeout=20_000)
        except Exception:
            pass
        try:  # the kernel is up when the toolbar's indicator says idle
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
        except Exception:
            time.sleep(10)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_text("Run All Cells", exact=True).click()
        deadline = time.time() + timeout_s
        cells = page.locator(".jp-Notebook .jp-CodeCell")
        live, drawn = cells.nth(1), set()  # the live figure's versions seen so far
        while time.time() < deadline:
            img = live.locator(".jp-OutputArea-output img")
            if img.count() and out / "live-curves.png" not in saved:
                drawn.add(hash(img.first.get_attribute("src") or ""))
                if len(drawn) >= MID_RUN or live.locator(".jp-InputPrompt").inner_text().strip() != "[*]:":
                    live.screenshot(path=str(out / "live-curves.png"))  # mid-run, else at the end
                    saved.append(out / "live-curves.png")
            # done: every cell numbered, 10 sliders and both widget images drawn
            prompts = [cells.nth(i).locator(".jp-InputPrompt").inner_text() for i in range(cells.count())]
            if (all(p.strip() not in ("[ ]:", "[*]:") for p in prompts)
                    and page.locator(".widget-slider").count() >= 10
                    and page.locator(".widget-interact .jp-OutputArea-output img").count() >= 2):
                break
            time.sleep(0.3)
        else:
            page.screenshot(path=str(REPO / "build" / "screenshots" / "failed.png"))
            raise SystemExit(f"the notebook did not finish in {timeout_s:.0f} s: prompts {prompts}, "
                             f"{page.locator('.widget-slider').count()} sliders; see build/screenshots/failed.png")
        time.sleep(2)
        for i, name in enumerate(CELLS):
            if name and out / name not in saved:
                cells.nth(i).screenshot(path=str(out / name))
                saved.append(out / name)
        browser.close()
    return saved


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "images", help="folder for the PNGs")
    ap.add_argument("--timeout", type=float, default=300, help="seconds to wait for the notebook to run")
    args = ap.parse_args(argv)
    folder = REPO / "build" / "screenshots"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    notebook = write_notebook(folder)
    port, token = free_port(), secrets.token_hex(16)
    lab = start_lab(folder, port, token)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        for png in shoot(f"http://127.0.0.1:{port}/doc/tree/{notebook.name}?token={token}", args.out, args.timeout):
            print(f"{png}: {png.stat().st_size / 1e3:.0f} kB")
    finally:
        lab.terminate()
        lab.wait(30)


if __name__ == "__main__":
    main()
