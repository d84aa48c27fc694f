"""Throwaway virtual environments for peer libraries (RecBole, Cornac), outside the repository.

A peer's venv is built once under ``~/.cache/fusionrec-peers/<name>-venv`` from a list of pip install steps
(torch first: a local CPU wheel on these machines, and installing it alone keeps pip from resolving a peer's
"torch>=..." to a CUDA build), optionally patched in place, and checked by importing the peer. A marker file
records the steps; a venv built from other steps is rebuilt. Nothing here is imported by fusionrec.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

CACHE = Path(os.environ.get("HOME", "~")).expanduser() / ".cache" / "fusionrec-peers"
READY_MARKER = ".fusionrec-peers-ready"


def log(msg: str) -> None:
    print(f"[peers] {msg}", file=sys.stderr, flush=True)


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def thread_env(threads: int) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    return env


def ensure_venv(
    venv: Path,
    steps: Sequence[Sequence[str]],
    check: str,
    patch: Callable[[Path], list[str]] | None = None,
    patch_names: Sequence[str] = (),
    reinstall: bool = False,
) -> float | None:
    """Create and populate ``venv`` unless it is already there; ``check`` is Python code that must run in it.

    ``patch(venv)`` runs after installing and on every reuse (it must be idempotent). Returns the install
    seconds, or None when the venv was reused.
    """
    marker = venv / READY_MARKER
    wanted = {"steps": [list(s) for s in steps], "patches": list(patch_names)}
    if not reinstall and marker.exists() and venv_python(venv).exists():
        if json.loads(marker.read_text()).get("steps") == wanted["steps"]:
            log(f"reusing {venv}")
            if patch:
                patch(venv)  # picks up patches added since the venv was built
            marker.write_text(json.dumps(wanted))
            return None
    start = time.perf_counter()
    if not venv_python(venv).exists():
        log(f"creating venv {venv}")
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)], check=True)
    for pkgs in steps:
        log(f"pip install {' '.join(pkgs)}")
        proc = subprocess.run([str(venv_python(venv)), "-m", "pip", "install", *pkgs], capture_output=True, text=True)
        if proc.returncode:
            tail = "\n".join((proc.stdout + "\n" + proc.stderr).splitlines()[-30:])
            raise RuntimeError(f"pip install {' '.join(pkgs)} failed (exit {proc.returncode}):\n{tail}")
    if patch:
        patch(venv)
    proc = subprocess.run([str(venv_python(venv)), "-c", check], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{venv} does not import:\n{proc.stderr}")
    log(f"{venv}: {proc.stdout.strip()}")
    seconds = time.perf_counter() - start
    marker.write_text(json.dumps(wanted))
    log(f"venv ready in {seconds:.1f} s")
    return seconds


def outside_repository(venv: Path) -> Path:
    """``venv`` resolved; refuses a path inside the repository (a peer must never land in it)."""
    venv = venv.expanduser().resolve()
    try:
        venv.relative_to(Path(__file__).resolve().parents[2])
    except ValueError:
        return venv
    raise SystemExit(f"--venv {venv} is inside the repository; put it elsewhere")


def _tail(proc: subprocess.CompletedProcess) -> str:
    return "\n".join((proc.stdout + "\n" + proc.stderr).splitlines()[-40:])


def run_runner(venv: Path, runner: str, spec: dict, work: Path, threads: int, verbose: bool = False) -> dict:
    """Write ``runner`` (Python source) and ``spec`` into ``work``, run the runner with the venv's python
    there (peers write logs relative to the working directory) and return the JSON of its last
    ``RESULT {json}`` line; RuntimeError with the output's tail when it fails."""
    (work / "runner.py").write_text(runner)
    (work / "spec.json").write_text(json.dumps(spec, indent=1))
    proc = subprocess.run(
        [str(venv_python(venv)), str(work / "runner.py"), str(work / "spec.json")],
        cwd=work,
        env=thread_env(threads),
        capture_output=True,
        text=True,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{venv.name} runner failed (exit {proc.returncode}):\n{_tail(proc)}")
    if verbose:
        print(proc.stdout, proc.stderr, sep="\n", file=sys.stderr)
    return json.loads(lines[-1][len("RESULT ") :])


def fusionrec_train(cmd: list[str], run_dir: Path, threads: int, verbose: bool = False) -> dict:
    """Run a ``fusionrec train ... --run-dir run_dir`` command and return its ``record.json``."""
    log("fusionrec: " + " ".join(cmd))
    proc = subprocess.run(cmd, env=thread_env(threads), capture_output=True, text=True)
    if verbose:
        print(proc.stdout, proc.stderr, sep="\n", file=sys.stderr)
    record = run_dir / "record.json"
    if proc.returncode or not record.exists():
        raise RuntimeError(f"fusionrec failed (exit {proc.returncode}):\n{_tail(proc)}")
    return json.loads(record.read_text())


def save_json(path: Path | None, results: dict) -> None:
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1, default=str))
        log(f"wrote {path}")
