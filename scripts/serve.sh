#!/usr/bin/env bash
# The production server, as `make serve` runs it (after check --deploy, migrate and
# collectstatic), and as the benchmarks and the live-server tests start it.
#
#   HOST (127.0.0.1: loopback, behind a proxy; 0.0.0.0 to face the network)
#   PORT (8000)  WEB_CONCURRENCY (2 worker processes)
#   FORWARDED_ALLOW_IPS (127.0.0.1,::1): whose X-Forwarded-* headers are believed
#                     (gunicorn's own setting, and the app's: signalements_project/proxies.py)
#   SERVER            granian (default: keep-alive) or gunicorn (sync workers;
#                     GUNICORN_TIMEOUT, 300 s)
#   ACCESS_LOG        1 (default) or 0: the application's line per request (method,
#                     route, status, duration, user id, request id: settings.py); the
#                     servers' own access logs, which write raw paths (with the tokens of
#                     emailed links) and no request id, stay off
#   LOG_FORMAT        text (default) or json: the application's lines, and with json the
#                     server's own (scripts/server-logging.json), one JSON object a line
#   PROMETHEUS_MULTIPROC_DIR  where every process started here (server and task workers)
#                     writes its metrics, which GET /metrics adds up: emptied at start; by
#                     default a new directory for this run, removed when it stops
#   TASK_WORKERS      background task workers (`manage.py worker`) started beside the
#                     server and stopped with it: 0 by default here, 1 from `make serve`;
#                     0 when a process manager runs them (`make worker`)
#
# Uploaded photos are served by Django at MEDIA_URL, whichever the server, after its check
# of who may have them (signalements/photo_access.py): no static-file route here, which
# would give a hidden report's photo to anyone holding its URL.
#
# Run from the project directory with the virtualenv's bin/ on PATH (make serve does).
set -euo pipefail
cd "$(dirname "$0")/.."

host=${HOST:-127.0.0.1}
port=${PORT:-8000}
workers=${WEB_CONCURRENCY:-2}
server=${SERVER:-granian}
app=signalements_project.wsgi:application

# Metrics: each process counts into its own files in this directory, and a scrape adds
# them up (prometheus-client's multiprocess mode, signalements/metrics.py). Emptied first:
# files left there are the counts of an earlier run's processes.
metrics_dir=${PROMETHEUS_MULTIPROC_DIR:-}
own_metrics_dir=0
if [ -z "$metrics_dir" ]; then
    metrics_dir=$(mktemp -d "${TMPDIR:-/tmp}/signalements-metrics.XXXXXX")
    own_metrics_dir=1
fi
mkdir -p "$metrics_dir"
rm -f "$metrics_dir"/*.db
export PROMETHEUS_MULTIPROC_DIR=$metrics_dir

# Task workers beside the server, stopped with it.
task_workers=${TASK_WORKERS:-0}
pids=()
stop_all() {
    if [ ${#pids[@]} -gt 0 ]; then
        kill "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
}
for _ in $(seq 1 "$task_workers"); do
    python manage.py worker --no-startup-delay --no-reload --verbosity 0 &
    pids+=($!)
done
stop_and_clean() {
    stop_all
    if [ "$own_metrics_dir" = 1 ]; then rm -rf "$metrics_dir"; fi
}
if [ "$task_workers" -gt 0 ] || [ "$own_metrics_dir" = 1 ]; then
    # The server in the background too, so that a signal stops all of them (and removes
    # this run's metrics directory).
    trap 'stop_and_clean' EXIT
    trap 'stop_and_clean; exit 143' TERM INT
    run() { "$@" & pids+=($!); wait "${pids[-1]}"; }
else
    run() { exec "$@"; }
fi

case $server in
granian)
    args=(--interface wsgi --host "$host" --port "$port" --workers "$workers"
        --blocking-threads 1 --no-ws --respawn-failed-workers --log-level warning)
    # The access log is the application's (ACCESS_LOG).
    args+=(--no-access-log)
    if [ "${LOG_FORMAT:-text}" = json ]; then args+=(--log-config scripts/server-logging.json); fi
    run granian "${args[@]}" "$app"
    ;;
gunicorn)
    args=(--bind "$host:$port" --workers "$workers" --timeout "${GUNICORN_TIMEOUT:-300}"
        --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1,::1}")
    # No --access-logfile: the access log is the application's (ACCESS_LOG).
    if [ "${LOG_FORMAT:-text}" = json ]; then
        args+=(--log-config-json scripts/server-logging.json)
    fi
    run gunicorn "${args[@]}" "${app%%:*}"
    ;;
*)
    echo "SERVER must be granian or gunicorn, not $server" >&2
    exit 2
    ;;
esac
