"""`streamlit run`, with the server time of every script run appended to $DIGITS_RUN_TIMES (JSON lines).

bench/app_speed.py starts the app through this wrapper to measure what a stroke costs on the
server, without timing code in the app: each run of the script (the whole page, or only the
canvas fragment) is timed where Streamlit executes it.

    python bench/serve_timed.py run app.py [streamlit options]
"""

from __future__ import annotations

import json
import os
import sys
import time

from streamlit.runtime.scriptrunner import script_runner
from streamlit.web.cli import main

LOG = os.environ["DIGITS_RUN_TIMES"]
_run_script = script_runner.ScriptRunner._run_script


def _timed_run(self, rerun_data):
    start = time.perf_counter()
    try:
        return _run_script(self, rerun_data)
    finally:
        record = {"fragment": bool(rerun_data.fragment_id_queue), "seconds": time.perf_counter() - start,
                  "ended": time.time()}
        with open(LOG, "a") as log:
            log.write(json.dumps(record) + "\n")


script_runner.ScriptRunner._run_script = _timed_run
if __name__ == "__main__":
    sys.exit(main())
