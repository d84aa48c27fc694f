"""A bounded load test of ``fusionrec serve`` on localhost with wrk (Debian package ``wrk``).

For each run directory given: start ``fusionrec serve RUN --ann KIND`` in its own process, wait for
/health, then let wrk send ``/recommend?user=U&k=10`` for random known users (and, with --bad-share, a
share of requests for unknown users, which must be answered 404) at a fixed concurrency for a fixed
time. Prints one JSON line per run: requests, throughput, p50/p99 latency, non-2xx counts by kind,
5xx count (must be 0), the server's peak RSS, and the ANN check the server reported at start.

    python benchmarks/serving_load.py RUN_DIR [RUN_DIR ...] --ann auto --connections 32 --seconds 20

The client shares the machine with the server: on 2 cores the figures are a lower bound on what the
server does alone. State the machine and its load with any figure quoted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

LUA = """
math.randomseed(7)
local users = {%(users)s}
local bad_share = %(bad_share)f
local counts = {}
request = function()
  if math.random() < bad_share then
    return wrk.format("GET", "/recommend?user=no-such-user&k=10")
  end
  return wrk.format("GET", "/recommend?user=" .. users[math.random(#users)] .. "&k=10")
end
response = function(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end
done = function(summary, latency, requests)
  io.write(string.format('RESULT {"requests": %%d, "duration_s": %%.3f, "p50_ms": %%.3f, "p99_ms": %%.3f, '
    .. '"mean_ms": %%.3f, "socket_errors": %%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    latency.mean / 1e3, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=120) as response:
        return json.loads(response.read())


def wait_up(url: str, process: subprocess.Popen, limit_s: float = 600) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode} before answering /health")
        try:
            get(f"{url}/health")
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"no answer from {url}/health within {limit_s} s")


def peak_rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]


def one(run_dir: str, args: argparse.Namespace, port: int) -> dict:
    url = f"http://127.0.0.1:{port}"
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # a file: an unread pipe would fill and block
    server = subprocess.Popen(
        [sys.executable, "-m", "fusionrec", "serve", run_dir, "--port", str(port), "--ann", args.ann],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env={**os.environ, "OMP_NUM_THREADS": str(args.server_threads)},
    )
    try:
        start = time.perf_counter()
        wait_up(url, server)
        startup_s = time.perf_counter() - start
        meta = get(f"{url}/metadata")
        users = get(f"{url}/users?limit=1000")["users"]
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(LUA % {"users": ", ".join(json.dumps(u) for u in users), "bad_share": args.bad_share})
        wrk = subprocess.run(
            ["wrk", "-t", "2", "-c", str(args.connections), "-d", f"{args.seconds}s", "-s", script.name, url],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(wrk.stdout.split("RESULT ", 1)[1].splitlines()[0])
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk.stdout)
        statuses = _statuses(url, args.bad_share)
        still_up = get(f"{url}/health")["status"] == "ok"
        return {
            "run": run_dir,
            "model": meta["model"],
            "data": meta["data"]["name"],
            "items": meta["data"]["items"],
            "scoring": meta["scoring"],
            "startup_s": round(startup_s, 2),
            "connections": args.connections,
            **result,
            "throughput_rps": round(result["requests"] / result["duration_s"], 1),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "bad_request_statuses": statuses,
            "still_up": still_up,
            "server_peak_rss_mb": round(peak_rss_mb(server.pid), 1),
            "logged_requests": sum('"request_id"' in line for line in Path(log.name).read_text().splitlines()),
        }
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def _statuses(url: str, bad_share: float) -> dict[str, int]:
    """The status of a few bad requests after the load (each must be a 4xx, never a 5xx)."""
    out = {}
    for name, path in (("unknown user", "/recommend?user=no-such-user"), ("k=0", "/recommend?user=x&k=0")):
        try:
            urllib.request.urlopen(f"{url}{path}", timeout=120)
            out[name] = 200
        except urllib.error.HTTPError as exc:
            out[name] = exc.code
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--ann", default="auto")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--bad-share", type=float, default=0.05, help="share of requests for an unknown user")
    parser.add_argument("--server-threads", type=int, default=1)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    for run_dir in args.runs:
        print(json.dumps(one(run_dir, args, args.port)), flush=True)


if __name__ == "__main__":
    main()
