"""The web page end to end in a real headless browser (Chromium driven by Selenium): upload a
generated song through the file input, wait for the stems, play every player, download the
stems and compare them with wavesep-separate's files, see the queue from a second tab, and show a
bad file's message. Skips with the reason when no browser is installed (``.ci/run`` installs
Debian's chromium and chromium-driver).

``WAVESEP_SCREENSHOT=docs/serve.png python -m pytest tests/web/test_web_browser.py`` also saves the
screenshot shown in the README.
"""

import os
import shutil
import socket
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install -e '.[web]')")
pytest.importorskip("uvicorn", reason="the web extra is not installed (pip install -e '.[web]')")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")

from wavesep.separate import main as separate_main  # noqa: E402
from wavesep.web.app import create_app  # noqa: E402
from wavesep.web.jobs import JobQueue  # noqa: E402
from wavesep.web.serve import make_server, run_in_thread  # noqa: E402

RATE = 44100
BROWSER = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
DRIVER = next((p for p in ("/usr/bin/chromedriver", shutil.which("chromedriver")) if p and os.path.exists(p)), None)

pytestmark = [
    pytest.mark.skipif(BROWSER is None or DRIVER is None,
                       reason="no Chromium and chromedriver (apt-get install chromium chromium-driver)"),
    pytest.mark.usefixtures("one_thread"),
]


def generated_song(path: Path, seconds=3.0):
    """A short stereo 'song': a bass line, a melody with vibrato and noise hits, 16-bit wav."""
    t = np.arange(int(seconds * RATE)) / RATE
    bass = 0.25 * np.sin(2 * np.pi * 110 * t) * (1 + np.sign(np.sin(2 * np.pi * 2 * t))) / 2
    melody = 0.2 * np.sin(2 * np.pi * (440 + 6 * np.sin(2 * np.pi * 5 * t)) * t) * (np.sin(2 * np.pi * 0.5 * t) > -0.3)
    hits = 0.1 * np.random.default_rng(0).standard_normal(t.size) * np.exp(-((t * 4) % 1) * 20)
    data = np.stack([bass + 0.8 * melody + hits, bass + 1.2 * melody + hits], axis=1)
    sf.write(str(path), data.astype(np.float32), RATE, subtype="PCM_16")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def base_url():
    queue = JobQueue("tiny-untrained", device="cpu")
    port = free_port()
    server = make_server(create_app(queue), "127.0.0.1", port)
    thread = run_in_thread(server)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)
    assert not queue.root.exists()  # the shutdown removed the uploads and results


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager download anything
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required",
                 "--window-size=1200,900", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def wait_for(driver, condition, timeout=120, message=""):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition, message)


def test_upload_play_and_download_in_a_browser(base_url, browser, tmp_path):
    from selenium.webdriver.common.by import By

    song = generated_song(tmp_path / "generated song.wav")
    browser.get(base_url + "/")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"), 30, "the page did not load its models")
    assert "only this computer" in browser.find_element(By.ID, "binding").text
    browser.find_element(By.ID, "file").send_keys(str(song))
    card = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "article.job[data-status='done']"),
                    120, "the stems did not appear")[0]
    assert card.find_element(By.CLASS_NAME, "job-name").text == "generated song.wav"
    assert card.find_element(By.TAG_NAME, "progress").get_attribute("value") == "1"
    players = card.find_elements(By.TAG_NAME, "audio")
    assert [p.get_attribute("data-stem") for p in players] == ["mixture", "accompaniment", "vocals"]

    # Every player loads its file and plays: play() resolves and the time moves on.
    for player in players:
        state = browser.execute_async_script(
            """
            const [audio, done] = arguments;
            const fail = e => done({error: String(e && (e.message || e))});
            const start = () => audio.play().then(() => {
                const t0 = performance.now();
                const check = () => {
                    if (audio.currentTime > 0.05) { audio.pause(); done({duration: audio.duration, time: audio.currentTime}); }
                    else if (performance.now() - t0 > 20000) done({error: "currentTime did not advance"});
                    else setTimeout(check, 50);
                };
                check();
            }, fail);
            if (audio.readyState >= 1) start(); else { audio.onloadedmetadata = start; audio.onerror = () => fail(audio.error && audio.error.code); audio.load(); }
            """,
            player,
        )
        assert "error" not in state, (player.get_attribute("data-stem"), state)
        assert abs(state["duration"] - 3.0) < 0.01 and state["time"] > 0.05

    # The waveform views are drawn (not blank).
    ink = browser.execute_script(
        "return [...arguments[0].querySelectorAll('canvas')].map(c => {"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; });", card)
    assert len(ink) == 3 and min(ink) > 100

    # The downloads are wavesep-separate's files, byte for byte.
    out = tmp_path / "cli"
    assert separate_main([str(song), "-o", str(out), "-n", "tiny-untrained", "-d", "cpu", "-q"]) == 0
    links = card.find_elements(By.CSS_SELECTOR, "a.download")
    assert [a.get_attribute("data-stem") for a in links] == ["accompaniment", "vocals"]
    for link in links:
        with urllib.request.urlopen(link.get_attribute("href")) as response:
            assert "attachment" in response.headers["Content-Disposition"]
            body = response.read()
        assert body == (out / "tiny-untrained" / "generated song" / f"{link.get_attribute('data-stem')}.wav").read_bytes()
    # ... also when the page itself fetches them (same origin, as the browser's download does).
    size = browser.execute_async_script(
        "fetch(arguments[0]).then(r => r.arrayBuffer()).then(b => arguments[1](b.byteLength));",
        links[1].get_attribute("href"))
    assert size == (out / "tiny-untrained" / "generated song" / "vocals.wav").stat().st_size
    with urllib.request.urlopen(card.find_element(By.CSS_SELECTOR, "a.zip").get_attribute("href")) as response:
        assert response.headers["Content-Type"] == "application/zip" and len(response.read()) > 1000

    screenshot = tmp_path / "serve.png"
    browser.set_window_size(1200, 760)
    browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    if os.environ.get("WAVESEP_SCREENSHOT"):
        shutil.copyfile(screenshot, os.environ["WAVESEP_SCREENSHOT"])

    # A second tab sees the same queue, results included.
    first = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.get(base_url + "/")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "article.job[data-status='done'] audio"), 30,
             "the second tab does not show the job")
    browser.close()
    browser.switch_to.window(first)


def test_a_bad_file_shows_the_command_lines_message(base_url, browser, tmp_path):
    from selenium.webdriver.common.by import By

    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    browser.get(base_url + "/")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"), 30)
    browser.find_element(By.ID, "file").send_keys(str(bad))
    error = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#errors .error"), 30,
                     "no error was shown")[0]
    assert error.text.startswith("cannot decode audio file broken.wav: it is corrupt")
