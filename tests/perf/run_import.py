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
   artifacts: none here), which our import does not do: a version's source keeps pointing at the artifacts.

    .venv/bin/python tests/perf/run_import.py --models 10000 --versions 10 --compare-models 100 \
        --export-import-bin /tmp/mei-venv/bin

mlflow-export-import 1.2.0 (PyPI) installs `export-models` / `import-models`; install it in a venv of its own
(it pulls pytest plugins in) that sees this venv's mlflow. Without --export-import-bin part 2 times ours only.
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
    here: four workers dying in a loop). Both tools read from it, so the comparison stays fair."""

    def command(self) -> list[str]:
        return [*super().command(), "--workers", "1"]


def mlflow_server(url: str, workdir: Path, label: str) -> MlflowServer:
    server = OneWorkerMlflowServer(mlflow_url(url), free_port(), workdir / f"{label}.log", workdir)
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


def count_rows(database_url: str, table: str) -> int:
    import psycopg2

    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        return cursor.fetchone()[0]


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
            # mlflow-export-import refuses a version whose source is not among its run's artifacts.
            client.log_text(run.info.run_id, f"model {name} v{v}", "model/MLmodel")
            client.set_terminated(run.info.run_id)
            client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id,
                                        tags={"v": str(v)}, await_creation_for=0)
        client.transition_model_version_stage(name, str(versions), "Production")
        client.set_registered_model_alias(name, "champion", str(versions))


def part_side_by_side(args, workdir: Path) -> dict:
    names = ("mlflow_perf_cmp_source", "registry_perf_cmp_target", "mlflow_perf_cmp_target")
    source_db = prepare_mlflow_db(args.admin_url, names[0])
    target_db = prepare_registry_db(args.admin_url, names[1])
    source = mlflow_server(source_db, workdir, "mlflow-cmp-source")
    destination = None
    result: dict = {"models": args.compare_models, "versions_per_model": args.versions}
    try:
        started = time.monotonic()
        seed_with_client(source.base_url, args.compare_models, args.versions)
        result["seed_s"] = round(time.monotonic() - started, 1)
        ours, _ = run_timed([str(REGISTRY_BIN), "import", "mlflow", "--from", source.base_url],
                            registry_env(target_db), "registry import mlflow")
        result["registry_import_s"] = round(ours, 2)
        result["registry_versions"] = count_rows(target_db, "model_versions")
        print(f"side by side: registry import mlflow: {ours:.2f} s for {result['registry_versions']} versions",
              flush=True)
        if args.export_import_bin:
            bin_dir = Path(args.export_import_bin)
            destination_db = prepare_mlflow_db(args.admin_url, names[2])
            destination = mlflow_server(destination_db, workdir, "mlflow-cmp-destination")
            out = Path(tempfile.mkdtemp(prefix="export-models-", dir=workdir))
            env = dict(os.environ, MLFLOW_TRACKING_URI=source.base_url, MLFLOW_DISABLE_TELEMETRY="true")
            exported, _ = run_timed([str(bin_dir / "export-models"), "--models", "all", "--output-dir", str(out)],
                                    env, "export-models", cwd=workdir)
            env["MLFLOW_TRACKING_URI"] = destination.base_url
            imported, _ = run_timed([str(bin_dir / "import-models"), "--input-dir", str(out)], env,
                                    "import-models", cwd=workdir)
            result.update(export_models_s=round(exported, 2), import_models_s=round(imported, 2),
                          export_import_s=round(exported + imported, 2),
                          export_import_versions=count_rows(destination_db, "model_versions"),
                          ratio=round((exported + imported) / ours, 1))
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
