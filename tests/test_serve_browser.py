"""End to end: `unmask serve` on a loopback port, the web page in headless Chromium.

Debian's /usr/bin/chromium driven by Playwright (`executable_path`: Playwright never
downloads a browser here); skips with a reason when either is missing (`.ci/browser`
installs chromium). Uses the shipped model when it exists, else an untrained stand-in CNN (so the Grad-CAM
click is exercised either way).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "examples" / "astronaut.jpg"
CHROMIUM = os.environ.get("UNMASK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _predictor():
    from unmask.inference.saved_model import MODEL_JSON, default_model_dir

    shipped = default_model_dir()
    if (shipped / MODEL_JSON).is_file():
        from unmask.inference.loader import load_predictor

        return load_predictor(shipped), shipped
    from doubles.serving import TinyCamPredictor  # untrained: exercises Grad-CAM

    return TinyCamPredictor(crop_size=128), None


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(
            f"chromium not found at {CHROMIUM} (apt-get install chromium; "
            ".ci/browser does it in CI)"
        )
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright not installed (pip install -e '.[test]')"
    )
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            yield b
        finally:
            b.close()


def test_page_upload_boxes_scores_and_heatmap(browser, tmp_path):
    from doubles.serving import live_server
    from unmask.serving.app import create_app

    predictor, model_dir = _predictor()
    app = create_app(predictor, model_dir=model_dir)
    external: list[str] = []
    console_errors: list[str] = []
    with live_server(app) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on(
            "request",
            lambda r: (
                None
                if r.url.startswith(url) or r.url.startswith(("data:", "blob:"))
                else external.append(r.url)
            ),
        )
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.goto(url + "/", wait_until="networkidle")
        page.wait_for_function("document.getElementById('model').textContent.includes('model ')")

        # Pick the file (the drop zone's <input type=file>).
        page.set_input_files("#file", str(ASTRONAUT))
        page.wait_for_selector("body[data-state=done]", timeout=60_000)
        rows = page.locator("#faces tbody tr.face")
        assert rows.count() == 1
        cells = rows.first.locator("td").all_inner_texts()
        p_fake = float(cells[2])
        verdict = rows.first.get_attribute("data-verdict")
        assert 0.0 <= p_fake <= 1.0 and verdict in ("real", "fake")
        assert cells[-1].strip().lower() == verdict
        assert page.locator("#canvas").get_attribute("data-faces") == "1"

        # The box is drawn on the canvas in the verdict's colour, where the API put it.
        pixels = page.evaluate("""() => {
            const ctx = document.getElementById('canvas').getContext('2d');
            const [x0, y0, x1, y1] = state.result.faces[0].box;
            const x = Math.round(x0 * state.scale.sx), y = Math.round((y0 + y1) / 2 * state.scale.sy);
            return Array.from(ctx.getImageData(x - 1, y, 3, 1).data);
        }""")
        want = (220, 40, 40) if verdict == "fake" else (40, 170, 60)
        rgb = [pixels[i : i + 3] for i in range(0, len(pixels), 4)]
        assert any(max(abs(a - b) for a, b in zip(px, want, strict=True)) < 12 for px in rgb), rgb
        shot = tmp_path / "serve-page.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        keep = os.environ.get("UNMASK_SCREENSHOT_DIR")
        if keep:
            shutil.copy(shot, Path(keep) / shot.name)

        # Click the face: a heatmap for CNN models, a clear message otherwise.
        rows.first.click()
        can_explain = app.state.engine.explain is not None
        if can_explain:
            page.wait_for_selector("#explain-box:not([hidden])", timeout=60_000)
            natural = page.evaluate("document.getElementById('explain').naturalWidth")
            assert natural > 0
        else:
            page.wait_for_selector("#status.error", timeout=30_000)
            assert "cannot explain" in page.inner_text("#status")
        page.screenshot(path=str(tmp_path / "serve-page-clicked.png"), full_page=True)
        if keep:
            shutil.copy(tmp_path / "serve-page-clicked.png", Path(keep))
        page.close()
    assert not external, f"the page tried to load external resources: {external}"
    unexpected = [e for e in console_errors if "422" not in e]
    assert not unexpected, unexpected


def test_page_shows_content_credentials_beside_the_score(browser, tmp_path):
    """A signed upload: the verdict and score as before, and the credentials' summary on a
    line of its own beside them (issue 23); an unsigned photo shows no such line."""
    pytest.importorskip("c2pa", reason="c2pa-python (the `provenance` extra) not installed")
    from doubles.provenance import sign_image, throwaway_chain
    from doubles.serving import BrightnessPredictor, live_server
    from unmask.serving.app import create_app

    signed = tmp_path / "signed.jpg"
    signed.write_bytes(sign_image(ASTRONAUT.read_bytes(), "image/jpeg", throwaway_chain()))
    with live_server(create_app(BrightnessPredictor())) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url + "/", wait_until="networkidle")
        verdicts = []
        for f in (ASTRONAUT, signed):
            page.set_input_files("#file", str(f))
            page.wait_for_function(
                "(n) => document.body.dataset.state === 'done' && state.file.name === n",
                arg=f.name,
                timeout=60_000,
            )
            verdicts.append(page.inner_text("#verdict"))
            if f == ASTRONAUT:
                assert page.locator("#provenance").is_hidden()
        line = page.locator("#provenance")
        assert line.is_visible() and line.get_attribute("data-status") == "unverified"
        text = line.inner_text()
        assert text.startswith("Content Credentials: generated by AI (trainedAlgorithmicMedia)")
        assert "signed by unmask test signer" in text
        assert verdicts[0] == verdicts[1]  # the same pixels: the same verdict and score
        page.screenshot(path=str(tmp_path / "serve-provenance.png"), full_page=True)
        keep = os.environ.get("UNMASK_SCREENSHOT_DIR")
        if keep:
            shutil.copy(tmp_path / "serve-provenance.png", Path(keep))
        page.close()
