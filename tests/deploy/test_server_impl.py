"""`edgemap serve --http/--loop`: uvicorn's HTTP parser and event loop are chosen, checked, and all serve."""

import importlib.util
import json
import subprocess
import sys
import urllib.request

import pytest

from edgemap.data.sample import load_sample
from edgemap.deploy.server import ServeConfig
from edgemap.errors import EdgemapError

from tests.deploy.test_serve_process import EDGE_CLI, free_port, stop_gracefully, wait_ready


def test_unknown_choices_are_refused_and_auto_prefers_the_c_parser_on_asyncio():
    with pytest.raises(EdgemapError, match="--http must be one of auto, h11, httptools"):
        ServeConfig(http="httpx")
    with pytest.raises(EdgemapError, match="--loop must be one of"):
        ServeConfig(loop="trio")
    assert ServeConfig(http="h11", loop="asyncio").uvicorn_choice() == ("h11", "asyncio")
    http, loop = ServeConfig().uvicorn_choice()
    assert http == ("httptools" if importlib.util.find_spec("httptools") else "h11")
    assert loop == "asyncio"  # uvloop answered 503s slower under overload (serve_attempts.md)
    if importlib.util.find_spec("uvloop"):
        assert ServeConfig(loop="uvloop").uvicorn_choice() == (http, "uvloop")


def test_cli_refuses_a_bad_choice_in_one_line(bundle):
    r = subprocess.run([sys.executable, "-m", "edgemap.cli", "serve", str(bundle), "--port", str(free_port()),
                        "--http", "nope"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "--http must be one of" in r.stderr


@pytest.mark.parametrize("http, loop", [("h11", "asyncio"), ("httptools", "asyncio"), ("httptools", "uvloop")])
def test_each_parser_and_loop_serves_predictions_without_torch(bundle, encode, classes, http, loop):
    for module in {http, loop} - {"h11", "asyncio"}:
        pytest.importorskip(module)
    port = free_port()
    proc = subprocess.Popen([sys.executable, EDGE_CLI, "serve", str(bundle), "--port", str(port), "--http", http,
                             "--loop", loop], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(port, proc)
        images = load_sample().images
        for i in range(3):  # keep-alive is not exercised by urllib; each request is a new connection
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/predict", data=encode(images[i]),
                                         headers={"Content-Type": "image/png", "X-Request-ID": f"r{i}"})
            with urllib.request.urlopen(req, timeout=10) as r:
                answer = json.loads(r.read())
                assert r.headers["X-Request-ID"] == f"r{i}"
            assert answer["predictions"][0]["top1"] in classes
        with pytest.raises(urllib.error.HTTPError) as bad:
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/v1/predict", data=b"junk"), timeout=10)
        assert bad.value.code == 400
        out, err = stop_gracefully(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert f"; {http}, {loop})" in err and "torch never imported" in out
