"""The spec model (and rf_core and torch under it) is imported by one thread at a time in the API.

The app imports it in a warm-up thread at startup while the first POST may need it too, and torch's import
fails when two threads run it at once (pytorch/pytorch#182560). A POST that came within the warm-up's
seconds answered 500 (seen once in CI, on a fast machine, in the native compose-stack test). Each path into
the spec model waits for the one lock, checked here in a fresh interpreter (torch not yet imported)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys, threading, time
import api.openapi as openapi
from api.validation import parse_body, check_spec
from api.settings import Settings

assert "torch" not in sys.modules
done = []
with openapi._SPEC_IMPORT:  # as if the warm-up were halfway through its import
    paths = {
        "parse_body": lambda: parse_body(b'{"name": "x"}', "application/json"),
        "spec_schemas": lambda: openapi.spec_schemas(),
    }
    threads = [threading.Thread(target=lambda f=f, n=n: (f(), done.append(n))) for n, f in paths.items()]
    for t in threads:
        t.start()
    time.sleep(1.0)
    print("while held:", sorted(done), "torch" in sys.modules)
for t in threads:
    t.join(60)
print("after:", sorted(done), "torch" in sys.modules)
"""


def test_requests_wait_for_the_warm_up_import_instead_of_racing_it(tmp_path):
    probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr[-3000:]
    assert probe.stdout.splitlines() == [
        "while held: [] False",
        "after: ['parse_body', 'spec_schemas'] True",
    ], probe.stdout + probe.stderr[-2000:]
