"""``make run``: the workflow, recovering by itself from an interrupted earlier run.

    python -m ddstars.runner [snakemake arguments ...]      (make run passes --cores)

* Jobs an interrupted run left unfinished (Ctrl-C, a killed job, a crash) are redone: Snakemake is called
  with ``--rerun-incomplete``, so their partial outputs never count as results.
* A run whose Snakemake process was killed (``kill -9``, a closed terminal) leaves the working directory
  locked. When no other Snakemake process works in this directory the lock is stale: it is removed
  (``--unlock``) and the run goes on, with a line saying so. When another one is running, the run stops and
  says which process holds the directory.
* The last line names the report and the summary.

Any other failure is Snakemake's own, with its exit status.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REPORT = "results/validation/report.md"
SUMMARY = "results/validation/summary.json"


def _snakemake(args: list[str], capture: bool = False) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), *args]
    if not capture:
        return subprocess.run(cmd)
    # the output is shown as it comes and kept, to recognise a lock
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines = []
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            sys.stdout.write(line)
            lines.append(line)
    except KeyboardInterrupt:  # Ctrl-C reaches Snakemake too, which stops its jobs; wait for it
        proc.wait()
        return subprocess.CompletedProcess(cmd, 130, "".join(lines[-200:]), "")
    return subprocess.CompletedProcess(cmd, proc.wait(), "".join(lines[-200:]), "")


def other_snakemakes(workdir: Path) -> list[int]:
    """PIDs of other Snakemake processes working in ``workdir`` (Linux /proc; empty where it cannot tell)."""
    me = {os.getpid(), os.getppid()}
    found = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    target = workdir.resolve()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) in me:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        words = [w.decode(errors="replace") for w in cmdline if w]
        if not any("snakemake" in w for w in words[:3]) or any(w == "--unlock" for w in words):
            continue
        if "--directory" in words:
            i = words.index("--directory")
            if i + 1 < len(words):
                cwd = (cwd / words[i + 1]).resolve()
        if cwd.resolve() == target:
            found.append(int(entry.name))
    return found


def config_error(path: Path) -> str | None:
    """A YAML syntax error in ``path``, with its line and column (Snakemake names neither), or None."""
    import yaml

    if not path.is_file():
        return None
    try:
        yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        return f"{path}:{where}: not valid YAML ({problem}); tabs cannot indent YAML"
    return None


def main(argv: list[str] | None = None) -> int:
    import time

    args = list(sys.argv[1:] if argv is None else argv)
    workdir = Path.cwd()
    if "--directory" in args:
        workdir = Path(args[args.index("--directory") + 1])
    configs = [workdir / "config" / "config.yaml"]
    if "--configfile" in args:
        configs.append(Path(args[args.index("--configfile") + 1]))
    for cfg in configs:
        problem = config_error(cfg)
        if problem:
            print(f"ddstars: {problem}", file=sys.stderr)
            return 1
    dry = "-n" in args or "--dry-run" in args
    started = time.time()
    run = ["--rerun-incomplete", *args]
    result = _snakemake(run, capture=True)
    if result.returncode in (130, -2):
        print(
            "ddstars: interrupted. Run the same command again to go on: the jobs left unfinished are redone, "
            "finished ones are kept",
            file=sys.stderr,
        )
        return 130
    if result.returncode != 0 and "LockException" in result.stdout:
        others = other_snakemakes(workdir)
        if others:
            print(
                f"ddstars: {workdir} is in use by another Snakemake run (process {', '.join(map(str, others))}); "
                "wait for it to finish, or stop it, then run again",
                file=sys.stderr,
            )
            return result.returncode
        print(
            f"ddstars: {workdir} was left locked by an interrupted run (no Snakemake process works there now): "
            "unlocking and going on; its unfinished jobs are redone",
            file=sys.stderr,
        )
        dir_args = ["--directory", str(workdir)] if "--directory" in args else []
        unlock = _snakemake(["--unlock", *dir_args])
        if unlock.returncode != 0:
            return unlock.returncode
        result = _snakemake(run, capture=True)
    if result.returncode == 0 and not dry:
        report = workdir / REPORT
        fresh = report.is_file() and report.stat().st_mtime >= started  # written by this run
        where = f"report {report}, summary {workdir / SUMMARY}" if fresh else f"results in {workdir}"
        print(f"ddstars: done; {where}")
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
