"""deploy/gunicorn.conf.py's settings for the hello-world app (run_serving.py's ceiling reference).

Everything is taken from the registry's file, so the comparison follows it when it changes, except its
post_fork hook, which imports the registry's own app (the hello app has no database to reconnect to).
"""
import runpy
from pathlib import Path

_deploy = runpy.run_path(str(Path(__file__).resolve().parents[2] / "deploy" / "gunicorn.conf.py"))
globals().update({k: v for k, v in _deploy.items()
                  if not k.startswith("_") and not callable(v) and not isinstance(v, type(runpy))})
del _deploy
proc_name = "perf-hello"
