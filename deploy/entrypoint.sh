#!/bin/sh
# Container entry point: runs the given command (by default gunicorn, see the Dockerfile's CMD).
#
# The release step `registry db upgrade` is normally run once per deploy as its own command (compose's
# `migrate` service, the Kubernetes Job). For a single container, REGISTRY_MIGRATE_ON_START=1 runs it
# right before gunicorn instead; with several replicas keep it off so instances do not race to migrate.
set -eu

if [ "${REGISTRY_MIGRATE_ON_START:-0}" = "1" ] && [ "${1:-}" = "gunicorn" ]; then
    registry db upgrade
fi

# exec: the command replaces this shell as PID 1, so SIGTERM from `docker stop` / the kubelet reaches gunicorn.
exec "$@"
