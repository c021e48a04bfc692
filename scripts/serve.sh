#!/usr/bin/env bash
# The production server, as `make serve` runs it (after check --deploy, migrate and
# collectstatic), and as the benchmarks and the live-server tests start it.
#
#   HOST (127.0.0.1: loopback, behind a proxy; 0.0.0.0 to face the network)
#   PORT (8000)  WEB_CONCURRENCY (2 worker processes)
#   FORWARDED_ALLOW_IPS (127.0.0.1,::1): whose X-Forwarded-* headers are believed
#                     (gunicorn's own setting, and the app's: signalements_project/proxies.py)
#   SERVER            granian (default: keep-alive, its own static-file route for photos)
#                     or gunicorn (sync workers; GUNICORN_TIMEOUT, 300 s)
#   ACCESS_LOG        1 (default) or 0
#   SERVE_MEDIA       1 (default here): uploaded photos served from MEDIA_ROOT at
#                     MEDIA_URL, so that the URLs the API returns work on a one-server
#                     install; 0 when a proxy or the storage (S3…) serves them
#   TASK_WORKERS      background task workers (`manage.py worker`) started beside the
#                     server and stopped with it: 0 by default here, 1 from `make serve`;
#                     0 when a process manager runs them (`make worker`)
#
# Run from the project directory with the virtualenv's bin/ on PATH (make serve does).
set -euo pipefail
cd "$(dirname "$0")/.."

host=${HOST:-127.0.0.1}
port=${PORT:-8000}
workers=${WEB_CONCURRENCY:-2}
server=${SERVER:-granian}
access_log=${ACCESS_LOG:-1}
app=signalements_project.wsgi:application

# Local photos: MEDIA_ROOT (relative to the project) at MEDIA_URL, unless they live
# elsewhere (another storage backend, or a MEDIA_URL on another host).
media_root=${MEDIA_ROOT:-media}
case $media_root in /*) ;; *) media_root="$PWD/$media_root" ;; esac
media_url=${MEDIA_URL:-/media/}
serve_media=${SERVE_MEDIA:-1}
case ${MEDIA_STORAGE_BACKEND:-django.core.files.storage.FileSystemStorage} in
    django.core.files.storage.FileSystemStorage) ;;
    *) serve_media=0 ;;
esac
case $media_url in /*) ;; *) serve_media=0 ;; esac
case $serve_media in 1 | true | yes | on) serve_media=1 ;; *) serve_media=0 ;; esac

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
if [ "$task_workers" -gt 0 ]; then
    # The server in the background too, so that a signal stops all of them.
    trap 'stop_all' EXIT
    trap 'stop_all; exit 143' TERM INT
    run() { "$@" & pids+=($!); wait "${pids[-1]}"; }
else
    run() { exec "$@"; }
fi

case $server in
granian)
    args=(--interface wsgi --host "$host" --port "$port" --workers "$workers"
        --blocking-threads 1 --no-ws --respawn-failed-workers --log-level warning)
    if [ "$access_log" = 1 ]; then args+=(--access-log); else args+=(--no-access-log); fi
    if [ "$serve_media" = 1 ]; then
        mkdir -p "$media_root"
        args+=(--static-path-route "${media_url%/}" --static-path-mount "$media_root")
    fi
    run granian "${args[@]}" "$app"
    ;;
gunicorn)
    # gunicorn has no static route: Django serves the photos (SERVE_MEDIA).
    export SERVE_MEDIA=$serve_media
    args=(--bind "$host:$port" --workers "$workers" --timeout "${GUNICORN_TIMEOUT:-300}"
        --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1,::1}")
    if [ "$access_log" = 1 ]; then args+=(--access-logfile -); fi
    run gunicorn "${args[@]}" "${app%%:*}"
    ;;
*)
    echo "SERVER must be granian or gunicorn, not $server" >&2
    exit 2
    ;;
esac
