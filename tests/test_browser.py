"""The incident console in a real browser: JupyterLab on loopback, headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gitops_nb.investigate.plot import SHA

from .test_actions import _deploy_bad, live  # noqa: F401 - the live fixture is shared

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "out" / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def lab(tmp_path: Path, live: dict, sandbox):  # type: ignore[no-untyped-def]
    """JupyterLab serving a prepared copy of notebooks/investigate.ipynb (parameters injected, not run)."""
    work = tmp_path / "lab"
    work.mkdir()
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [
            str(bin_dir / "papermill"),
            str(ROOT / "notebooks" / "investigate.ipynb"),
            str(work / "investigate.ipynb"),
            "--prepare-only",
            "-p",
            "repo_path",
            str(live["work"].path),
            "-p",
            "kubeconfig",
            str(sandbox.kubeconfig),
            "-p",
            "kube_context",
            "gitops-nb-sandbox",
            "-p",
            "window",
            "30m",
        ],
        check=True,
        capture_output=True,
    )
    port, token = _free_port(), secrets.token_hex(16)
    settings = tmp_path / "lab-settings"
    news = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false", "checkForUpdates": false}')  # no news toast over the console
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
    }
    log = (tmp_path / "lab.log").open("wb")
    proc = subprocess.Popen(
        [
            str(bin_dir / "jupyter"),
            "lab",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={work}",
            "--LabApp.news_url=",
            "--ServerApp.disable_check_xsrf=False",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=work,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2):
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.terminate()
        proc.wait(10)
        raise AssertionError(f"JupyterLab did not start: {(tmp_path / 'lab.log').read_text()[-2000:]}")
    yield {"url": f"http://127.0.0.1:{port}/lab/tree/investigate.ipynb?token={token}", "token": token}
    proc.terminate()
    proc.wait(20)
    log.close()


_POINT_JS = """([source, sha, field]) => {
    const gd = document.querySelector('.js-plotly-plot');
    const ti = gd.data.findIndex(t => t.name === source);
    const pi = ti < 0 ? -1 : gd.data[ti].customdata.findIndex(row => row[field] === sha);
    if (pi < 0) return null;
    const r = gd.querySelectorAll('.scatterlayer .trace')[ti].querySelectorAll('path.point')[pi].getBoundingClientRect();
    return [r.x + r.width / 2, r.y + r.height / 2];
}"""


def _reset_zoom(page) -> None:  # type: ignore[no-untyped-def]
    box = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    page.mouse.dblclick(box["x"] + 5, box["y"] + 5)  # a double-click in the plot shows the whole timeline again
    page.wait_for_timeout(500)


def _click_point(page, source: str, sha: str) -> None:  # type: ignore[no-untyped-def]
    """Click the timeline's point for ``sha`` in the ``source`` trace with real mouse events, as a person would:
    reset the zoom (double-click), box-zoom around the point so close neighbours spread apart, then click it."""
    _reset_zoom(page)
    xy = page.evaluate(_POINT_JS, [source, sha, SHA])
    assert xy is not None, f"no {source} point for {sha[:10]} in the timeline"
    page.mouse.move(xy[0] - 25, xy[1])
    page.mouse.down()
    page.mouse.move(xy[0] + 25, xy[1] + 2, steps=5)  # a horizontal drag zooms the time axis only
    page.mouse.up()
    page.wait_for_timeout(500)
    xy = page.evaluate(_POINT_JS, [source, sha, SHA])
    page.mouse.move(xy[0], xy[1])  # plotly clicks the point under the hover, so hover first
    page.wait_for_timeout(300)
    page.mouse.click(xy[0], xy[1])


def _wait_selected(page, sha: str) -> None:  # type: ignore[no-untyped-def]
    """Wait until the console's change list shows ``sha`` selected (its options read "<sha[:10]> <summary>")."""
    page.wait_for_function(
        """sha => [...document.querySelectorAll('.widget-dropdown')].some(d =>
            d.textContent.includes('change') && d.querySelector('select').selectedOptions[0]?.textContent.startsWith(sha))""",
        arg=sha[:10],
        timeout=30_000,
    )


def test_console_in_the_browser_from_app_to_converged_revert(lab: dict, live: dict) -> None:
    """Pick an app, see the table, click timeline points to select changes, review, confirm, watch convergence."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    time.sleep(2)  # git and Argo CD times have one-second resolution: keep the bad commit's points apart from the first
    bad = _deploy_bad(live)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        try:
            page.goto(lab["url"])
            page.wait_for_selector(".jp-Notebook", timeout=60_000)
            for attempt in range(3):  # the first run can race the kernel's start: run again if nothing came
                page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=90_000)
                page.locator(".jp-InputPrompt").first.click()  # a cell selected, in command mode
                page.keyboard.press("Escape")
                page.keyboard.press("Control+a")  # select every cell
                page.keyboard.press("Control+Enter")  # run them (without adding a cell)
                try:
                    page.wait_for_selector("button:has-text('What changed?')", timeout=45_000)
                    break
                except Exception:
                    if attempt == 2:
                        raise
            page.click("button:has-text('Load apps')")
            app_select = page.locator(".widget-dropdown", has_text="app").locator("select")
            page.wait_for_function(
                "([sel, name]) => [...document.querySelectorAll(sel)].some(o => o.textContent === name)",
                arg=[".widget-dropdown select option", live["name"]],
                timeout=60_000,
            )
            app_select.select_option(live["name"])
            page.click("button:has-text('What changed?')")
            table = page.locator(".widget-output table", has_text="1.1.0-bad").first
            table.wait_for(timeout=90_000)
            assert "deploy(shop/production): 1.1.0-bad" in table.inner_text()
            change = page.locator(".widget-dropdown", has_text="change").locator("select")
            assert change.locator("option", has_text=bad[:10]).count() == 1  # the bad commit can be picked
            page.wait_for_selector(".js-plotly-plot .scatterlayer path.point", timeout=30_000)
            _click_point(page, "git", live["head"])  # clicking a point in the timeline selects that change
            _wait_selected(page, live["head"])
            _click_point(page, "argocd", bad)  # the deploy of the bad revision selects the bad commit
            _wait_selected(page, bad)
            page.get_by_text("from the timeline").wait_for(timeout=10_000)
            page.screenshot(path=str(ARTIFACTS / "console.png"), full_page=True)
            confirm = page.locator("button:has-text('Confirm revert')")
            assert confirm.is_disabled()  # nothing can be reverted before the review
            page.click("button:has-text('Review revert')")
            page.get_by_text("field changes would be undone").wait_for(timeout=30_000)
            assert "1.1.0-bad" in page.locator(".widget-output", has_text="undoes these changes").inner_text()
            assert confirm.is_enabled()
            confirm.click()
            page.get_by_text("Synced, Healthy, rollout complete").wait_for(timeout=180_000)
            monitor = page.locator(".widget-output", has_text=f"{live['name']}: converged").inner_text()
            assert "health Healthy" in monitor and "operation Succeeded" in monitor
            replay = page.locator(".widget-textarea textarea").input_value()
            assert f"-p sha {bad}" in replay and "notebooks/revert_and_verify.ipynb" in replay
            _reset_zoom(page)
            page.screenshot(path=str(ARTIFACTS / "console-converged.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "console-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert (ARTIFACTS / "console.png").stat().st_size > 10_000
