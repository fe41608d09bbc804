#!/usr/bin/env python3
"""Import benchmark (issue 14): `registry import mlflow` from a stock `mlflow server`, and, on the same kind of
data in the same run, `mlflow-export-import`'s `export-models` + `import-models` copying it into a second
stock `mlflow server`.

Two parts, because the tools need different data:
1. **Scale** (ours alone): N models x M versions seeded straight into MLflow's schema by `seed.py` (stages,
   an alias, tags), served by a stock `mlflow server`; `registry import mlflow` into a freshly migrated
   registry database, then once more (the no-op re-run). Wall time of each command.
2. **Side by side**: K models x M versions created through the MLflow client, each version from its own run
   (mlflow-export-import copies a version by exporting and re-creating its run, and fails a version whose run
   does not exist, so the scale data set cannot be used for it). Then, timed one after the other:
   `registry import mlflow` into a fresh registry database, and `export-models --models all` + `import-models`
   into a second, empty stock `mlflow server`. mlflow-export-import also copies the runs (their params and
   artifacts: one small MLmodel file each here), which our import does not do: a version's source keeps
   pointing at the artifacts. Both results are counted afterwards (versions, stages, aliases, tags, runs);
   a side that copied fewer versions than were seeded fails the run.

    .venv/bin/python tests/perf/run_import.py --models 10000 --versions 10 --compare-models 100 \
        --export-import-venv /tmp/mei-venv

mlflow-export-import's only PyPI release, 1.2.0 (February 2023), was made for MLflow 2.x, and requires pytest
plugins that must not load into this venv's pytest runs. `--export-import-venv DIR` makes DIR (if it has no
`export-models` yet) with `python -m venv` and `pip install` of EXPORT_IMPORT_PACKAGES from PyPI:
mlflow-export-import 1.2.0 and MLflow 2.1.1, the client its own tests were pinned to then. That client talks
REST to the stock 3.17.2 servers.
1.2.0 only handles local (or dbfs:) artifact locations: it checks that a version's new source exists on the
local disk, and it cuts the model path out of a source at the first "artifacts" it contains, which an
`mlflow-artifacts:/` URI (the proxy every `mlflow server` uses by default) already does. So part 2's two MLflow
servers run with `--no-serve-artifacts --default-artifact-root <scratch dir>` (the same machine: a local
artifact store), and our import gets REGISTRY_ALLOW_LOCAL_SOURCES=1 to accept those local sources.
`--export-import-bin DIR` instead names a directory holding `export-models` / `import-models` already.
Without either, part 2 times ours only.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import REGISTRY_BIN, REPO, MlflowServer, PerfError, drop_database, free_port  # noqa: E402
from seed import mlflow_url, prepare_mlflow_db, prepare_registry_db, seed_mlflow  # noqa: E402

READY_TIMEOUT = 180.0
# What `--export-import-venv` installs: the tool's only PyPI release and the MLflow client its tests pinned.
EXPORT_IMPORT_PACKAGES = ["mlflow-export-import==1.2.0", "mlflow==2.1.1"]


def run_timed(command: list[str], env: dict[str, str], what: str, cwd: Path | None = None) -> tuple[float, str]:
    elapsed, stdout, _ = run_measured(command, env, what, cwd)
    return elapsed, stdout


def run_measured(command: list[str], env: dict[str, str], what: str,
                 cwd: Path | None = None) -> tuple[float, str, dict]:
    """Wall time, stdout, and what else says where the time went: the command's own CPU seconds (user + sys:
    on a shared machine wall time measures the load as much as the code) and its progress lines (stderr:
    how long each phase took)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(command, env=env, cwd=cwd or REPO, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise PerfError(f"{what} failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, done.stdout, {"cpu_s": round(cpu, 1), "progress": done.stderr.strip().splitlines()}


def registry_env(database_url: str) -> dict[str, str]:
    # The registry under test is this checkout, whichever checkout the venv was installed from.
    return dict(os.environ, DATABASE_URL=database_url,
                PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


class OneWorkerMlflowServer(MlflowServer):
    """A stock `mlflow server` with one uvicorn worker: with several, uvicorn's supervisor kills a worker that
    misses its health check for a few seconds, which on a loaded machine happens already at start-up (seen
    here: four workers dying in a loop). Both tools read from it, so the comparison stays fair.

    With `artifact_root`, runs' artifacts go to that local directory (`--no-serve-artifacts`: clients write
    there themselves) instead of through the server's `mlflow-artifacts:` proxy: mlflow-export-import 1.2.0
    handles local artifact locations only (see the module's docstring)."""

    def __init__(self, *args, artifact_root: Path | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.artifact_root = artifact_root

    def command(self) -> list[str]:
        local = (["--no-serve-artifacts", "--default-artifact-root", str(self.artifact_root)]
                 if self.artifact_root else [])
        return [*super().command(), "--workers", "1", *local]


def mlflow_server(url: str, workdir: Path, label: str, local_artifacts: bool = False) -> MlflowServer:
    root = None
    if local_artifacts:
        root = workdir / f"{label}-store"
        if "artifacts" in str(root):  # 1.2.0 would cut its sources' model paths at it
            raise PerfError(f"the scratch directory {root} contains 'artifacts': set TMPDIR elsewhere")
        root.mkdir()
    server = OneWorkerMlflowServer(mlflow_url(url), free_port(), workdir / f"{label}.log", workdir,
                                   artifact_root=root)
    try:
        server.start(READY_TIMEOUT)
        settle(server)
    except BaseException:
        server.stop()  # never leave a half-started server behind
        raise
    return server


def settle(server: MlflowServer, idle_cores: float = 0.1, window: float = 4.0, timeout: float = 300.0) -> None:
    """Wait until the server's processes are idle. `mlflow server` 3.x answers /health within seconds but then
    starts its job runner and seven huey consumers, each importing mlflow: measured here, about half a core
    for the next 40-60 s. A run started at once would time that start-up along with the tool under test.
    Idle means little CPU over the window and no process of the server runnable at any sample in it: on a
    loaded machine a starting process waits for a core, and its low CPU alone would look idle."""
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        used, runnable = server_cpu(server), False
        for _ in range(int(window / 0.5)):
            time.sleep(0.5)
            runnable = runnable or any(p.status() == psutil.STATUS_RUNNING for p in server_processes(server))
        if not runnable and server_cpu(server) - used < idle_cores * window:
            return
    print(f"warning: {server.label} still busy {timeout:.0f} s after start; timing anyway", file=sys.stderr)


def count_rows(database_url: str, table: str, where: str = "") -> int:
    import psycopg2

    connection = psycopg2.connect(database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {table} {where}")
            return cursor.fetchone()[0]
    finally:
        connection.close()  # psycopg2's `with connection` ends the transaction only, not the connection


# What each side holds after copying, by table: (table, filter) in the registry's schema and in MLflow's.
REGISTRY_COUNTS = {"models": ("registered_models", ""), "versions": ("model_versions", ""),
                   "production": ("model_versions", "WHERE stage = 'Production'"),
                   "aliases": ("model_aliases", ""), "version_tags": ("model_version_tags", "")}
MLFLOW_COUNTS = {"models": ("registered_models", ""), "versions": ("model_versions", ""),
                 "production": ("model_versions", "WHERE current_stage = 'Production'"),
                 "aliases": ("registered_model_aliases", ""), "version_tags": ("model_version_tags", ""),
                 "runs": ("runs", "")}


def count_all(database_url: str, queries: dict) -> dict:
    return {key: count_rows(database_url, table, where) for key, (table, where) in queries.items()}


def export_import_bin(args) -> Path | None:
    """The directory holding export-models / import-models: --export-import-bin, or --export-import-venv's bin
    (the venv made and filled from PyPI first if it has no export-models yet)."""
    if args.export_import_bin:
        return Path(args.export_import_bin)
    if not args.export_import_venv:
        return None
    venv = Path(args.export_import_venv)
    if not (venv / "bin" / "export-models").exists():
        print(f"making {venv}: pip install {' '.join(EXPORT_IMPORT_PACKAGES)}", flush=True)
        for command in ([sys.executable, "-m", "venv", str(venv)],
                        [str(venv / "bin" / "pip"), "install", "--quiet", *EXPORT_IMPORT_PACKAGES]):
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise PerfError(f"{' '.join(command)} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return venv / "bin"


def tool_versions(bin_dir: Path) -> str:
    """mlflow-export-import's and its MLflow client's versions, as that venv's Python reports them."""
    python = bin_dir / "python"
    if not python.exists():
        return "unknown"
    done = subprocess.run([str(python), "-c", "from importlib.metadata import version as v; "
                           "print('mlflow-export-import', v('mlflow-export-import'), 'mlflow', v('mlflow'))"],
                          capture_output=True, text=True)
    return done.stdout.strip() or done.stderr.strip()[-300:]


def part_scale(args, workdir: Path) -> dict:
    source_db = prepare_mlflow_db(args.admin_url, "mlflow_perf_import_source")
    seeded = seed_mlflow(source_db, args.models, args.versions)
    target_db = prepare_registry_db(args.admin_url, "registry_perf_import_target")
    server = mlflow_server(source_db, workdir, "mlflow-source")
    command = [str(REGISTRY_BIN), "import", "mlflow", "--from", server.base_url, *args.import_args]
    try:
        cpu_at_start = server_cpu(server)
        first, summary, measured = run_measured(command, registry_env(target_db), "registry import mlflow")
        cpu_after_first = server_cpu(server)
        again, summary_again, measured_again = run_measured(command, registry_env(target_db),
                                                            "registry import mlflow (re-run)")
        first_source_cpu, again_source_cpu = cpu_after_first - cpu_at_start, server_cpu(server) - cpu_after_first
        versions = count_rows(target_db, "model_versions")
    finally:
        server.stop()
        if not args.keep_db:
            drop_database(args.admin_url, "mlflow_perf_import_source")
            drop_database(args.admin_url, "registry_perf_import_target")
    return {"models": args.models, "versions_per_model": args.versions, "seed_s": seeded["total_s"],
            "import_args": args.import_args, "import_s": round(first, 1), "rerun_s": round(again, 1),
            "versions_imported": versions, "versions_per_s": round(versions / first, 1),
            "import_cpu_s": measured["cpu_s"], "source_server_cpu_s": round(first_source_cpu, 1),
            "rerun_cpu_s": measured_again["cpu_s"], "rerun_source_server_cpu_s": round(again_source_cpu, 1),
            "load_average": os.getloadavg(), "summary": summary, "progress": measured["progress"],
            "rerun_summary": summary_again, "rerun_progress": measured_again["progress"]}


def server_processes(server: MlflowServer) -> list:
    """The server's processes: the `mlflow server` launcher, its uvicorn worker, its job runner and consumers."""
    import psutil

    try:
        root = psutil.Process(server.process.pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def server_cpu(server: MlflowServer) -> float:
    """CPU seconds used so far by the server's processes (and their children that ended)."""
    import psutil

    total = 0.0
    for process in server_processes(server):
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def seed_with_client(url: str, models: int, versions: int) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    experiment = client.create_experiment("perf-import")
    for i in range(models):
        name = f"perf-cmp-{i:05d}"
        client.create_registered_model(name, tags={"team": f"t{i % 4}"}, description=f"model {i}")
        for v in range(1, versions + 1):
            run = client.create_run(experiment)
            client.log_param(run.info.run_id, "v", str(v))
            # mlflow-export-import refuses a version whose source is not among its run's artifacts, and rewrites
            # the run_id in each MLmodel it copies, so the file must be a YAML mapping (a tiny one, no flavor).
            client.log_text(run.info.run_id, f"artifact_path: model\nflavors: {{}}\nrun_id: {run.info.run_id}\n",
                            "model/MLmodel")
            client.set_terminated(run.info.run_id)
            client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id,
                                        tags={"v": str(v)}, await_creation_for=0)
        client.transition_model_version_stage(name, str(versions), "Production")
        client.set_registered_model_alias(name, "champion", str(versions))


def part_side_by_side(args, workdir: Path) -> dict:
    bin_dir = export_import_bin(args)  # made before anything is timed (a pip install takes minutes)
    names = ("mlflow_perf_cmp_source", "registry_perf_cmp_target", "mlflow_perf_cmp_target")
    source_db = prepare_mlflow_db(args.admin_url, names[0])
    target_db = prepare_registry_db(args.admin_url, names[1])
    source = mlflow_server(source_db, workdir, "mlflow-cmp-source", local_artifacts=True)
    destination = None
    expected = args.compare_models * args.versions
    result: dict = {"models": args.compare_models, "versions_per_model": args.versions,
                    "servers": "mlflow server 3.17.2, 1 worker, --no-serve-artifacts, local --default-artifact-root"}
    try:
        started = time.monotonic()
        seed_with_client(source.base_url, args.compare_models, args.versions)
        result["seed_s"] = round(time.monotonic() - started, 1)
        result["source"] = count_all(source_db, MLFLOW_COUNTS)
        settle(source)  # the seeding's requests are done before anything is timed
        # The sources are the runs' local artifact paths, which the registry refuses unless allowed.
        env = dict(registry_env(target_db), REGISTRY_ALLOW_LOCAL_SOURCES="1")
        cpu_before = server_cpu(source)
        ours, _, measured = run_measured([str(REGISTRY_BIN), "import", "mlflow", "--from", source.base_url], env,
                                         "registry import mlflow")
        result["registry"] = {"wall_s": round(ours, 2), "cpu_s": measured["cpu_s"],
                              "source_server_cpu_s": round(server_cpu(source) - cpu_before, 1),
                              "load_average": os.getloadavg(), "copied": count_all(target_db, REGISTRY_COUNTS)}
        print(f"side by side: registry import mlflow: {ours:.2f} s (CPU {measured['cpu_s']} s) for "
              f"{result['registry']['copied']['versions']} versions", flush=True)
        if bin_dir:
            result["export_import_tool"] = tool_versions(bin_dir)
            destination_db = prepare_mlflow_db(args.admin_url, names[2])
            destination = mlflow_server(destination_db, workdir, "mlflow-cmp-destination", local_artifacts=True)
            out = Path(tempfile.mkdtemp(prefix="export-models-", dir=workdir))
            env = dict(os.environ, MLFLOW_TRACKING_URI=source.base_url, MLFLOW_DISABLE_TELEMETRY="true")
            threads = ["--use-threads", "True"] if args.export_import_threads else []
            result["export_import_args"] = threads
            cpu_before = server_cpu(source)
            exported, _, measured_export = run_measured(
                [str(bin_dir / "export-models"), "--models", "all", "--output-dir", str(out), *threads],
                env, "export-models", cwd=workdir)
            source_cpu = server_cpu(source) - cpu_before
            env["MLFLOW_TRACKING_URI"] = destination.base_url
            cpu_before = server_cpu(destination)
            imported, _, measured_import = run_measured(
                [str(bin_dir / "import-models"), "--input-dir", str(out), *threads], env, "import-models", cwd=workdir)
            destination_cpu = server_cpu(destination) - cpu_before
            total = exported + imported
            result["export_import"] = {
                "export_models_s": round(exported, 2), "import_models_s": round(imported, 2),
                "wall_s": round(total, 2), "export_models_cpu_s": measured_export["cpu_s"],
                "import_models_cpu_s": measured_import["cpu_s"],
                "cpu_s": round(measured_export["cpu_s"] + measured_import["cpu_s"], 1),
                "source_server_cpu_s": round(source_cpu, 1),
                "destination_server_cpu_s": round(destination_cpu, 1), "load_average": os.getloadavg(),
                "copied": count_all(destination_db, MLFLOW_COUNTS)}
            result["ratio_wall"] = round(total / ours, 1)
            result["ratio_cpu"] = round(result["export_import"]["cpu_s"] / max(measured["cpu_s"], 0.1), 1)
            # With the MLflow servers' CPU each tool caused (PostgreSQL's own is counted on neither side).
            theirs = result["export_import"]
            ours_all = measured["cpu_s"] + result["registry"]["source_server_cpu_s"]
            theirs_all = theirs["cpu_s"] + theirs["source_server_cpu_s"] + theirs["destination_server_cpu_s"]
            result["ratio_cpu_with_servers"] = round(theirs_all / max(ours_all, 0.1), 1)
        for side in ("registry", "export_import"):
            if side in result and result[side]["copied"]["versions"] != expected:
                raise PerfError(f"{side} copied {result[side]['copied']['versions']} versions, not {expected}: "
                                f"{json.dumps(result)}")
    finally:
        for server in (source, destination):
            if server is not None:
                server.stop()
        if not args.keep_db:
            for name in names:
                drop_database(args.admin_url, name)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--models", type=int, default=10_000, help="part 1: models (0 skips part 1)")
    p.add_argument("--versions", type=int, default=10, help="versions per model (both parts)")
    p.add_argument("--compare-models", type=int, default=100, help="part 2: models (0 skips part 2)")
    p.add_argument("--export-import-bin", default=None, help="directory holding export-models / import-models")
    p.add_argument("--export-import-venv", default=None,
                   help="venv with mlflow-export-import (made with pip from PyPI if it has no export-models yet)")
    p.add_argument("--export-import-threads", action="store_true",
                   help="run export-models and import-models with their own --use-threads True (\"experimental\"; "
                        "import-models then imports models, not runs, in os.cpu_count() threads)")
    p.add_argument("--admin-url", default=os.environ.get("PERF_ADMIN_URL",
                                                         "postgresql://postgres@127.0.0.1:5432/postgres"))
    p.add_argument("--keep-db", action="store_true")
    p.add_argument("--import-arg", dest="import_args", action="append", default=[],
                   help="an extra argument for `registry import mlflow` in part 1 (repeatable), e.g. --import-arg=--jobs=2")
    p.add_argument("--json", default=None, help="also write the figures to this file")
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="perf-import-"))
    figures: dict = {}
    try:
        if args.models:
            figures["scale"] = part_scale(args, workdir)
            s = figures["scale"]
            print(f"scale: {s['models']} x {s['versions_per_model']}: import {s['import_s']} s "
                  f"({s['versions_per_s']} versions/s; CPU: import {s['import_cpu_s']} s, mlflow server "
                  f"{s['source_server_cpu_s']} s), re-run (no-op) {s['rerun_s']} s (CPU {s['rerun_cpu_s']} s, "
                  f"mlflow server {s['rerun_source_server_cpu_s']} s); load average {s['load_average']}")
            print("\n".join(s["progress"]))
            print(s["summary"])
        if args.compare_models:
            figures["side_by_side"] = part_side_by_side(args, workdir)
            print("side by side:", json.dumps(figures["side_by_side"]))
    except PerfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
