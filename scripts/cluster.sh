#!/usr/bin/env bash
# Signalements scaled out, on one machine: every part a real program of its own, on
# 127.0.0.1, each on its port, in a directory of its own (`make cluster` runs `up`).
#
#   nginx         the load balancer, in front (CLUSTER_PORT, 8080), TLS-less
#   app1..appN    the production server (scripts/serve.sh: granian), N = CLUSTER_APP_SERVERS
#                 (3), CLUSTER_WEB_CONCURRENCY processes each (1); ports CLUSTER_PORT+1…
#   worker1..M    background task workers on the database queue, M = CLUSTER_TASK_WORKERS (2)
#   primary       PostgreSQL (Debian's), CLUSTER_PORT+10: every write, and reads after a write
#   replica       its streaming replica (pg_basebackup -R), CLUSTER_PORT+11: the other reads
#   redis         the shared cache (throttles, logins' lockout, read-your-writes), CLUSTER_PORT+12
#
# Photos are written by the app servers into one shared media directory; Django checks who
# asks, nginx sends the file (PHOTO_ACCEL_REDIRECT, an internal location).
#
#   scripts/cluster.sh up            start everything, print where, wait; Ctrl-C stops it all
#   scripts/cluster.sh down          stop the cluster that `up` runs (make cluster-stop)
#   scripts/cluster.sh status        each part: running or not, its port, its log
#   scripts/cluster.sh kill PART     kill -9 a part (all its processes): a lost machine
#   scripts/cluster.sh stop PART     stop a part cleanly (PostgreSQL: pg_ctl stop -m fast)
#   scripts/cluster.sh start PART    start a part again, as `up` started it
#   scripts/cluster.sh balance APP…  nginx sends requests to these app servers only
#                                    (e.g. `balance app1`; `balance` alone: all of them)
#
# Knobs: CLUSTER_DIR (/tmp/signalements-cluster: data, logs, pids; emptied by `up`),
# CLUSTER_PORT (8080), CLUSTER_APP_SERVERS (3), CLUSTER_TASK_WORKERS (2),
# CLUSTER_WEB_CONCURRENCY (1), CLUSTER_TASKSET (0; 1: app server i pinned to core i-1,
# modulo the cores, with taskset), CLUSTER_DEMO_DATA (1: the demo data of `make run`).
# Any other variable of the README's configuration table (THROTTLE_…, REPLICA_…) is
# passed to the app servers and workers as it is.
#
# Needs Debian's postgresql, redis-server and nginx (installed with apt-get when run as
# root and missing), and the virtualenv's bin/ on PATH (make cluster sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

dir=${CLUSTER_DIR:-/tmp/signalements-cluster}
base_port=${CLUSTER_PORT:-8080}
app_servers=${CLUSTER_APP_SERVERS:-3}
task_workers=${CLUSTER_TASK_WORKERS:-2}
web_concurrency=${CLUSTER_WEB_CONCURRENCY:-1}
primary_port=$((base_port + 10))
replica_port=$((base_port + 11))
redis_port=$((base_port + 12))

log() { echo "cluster: $*" >&2; }
die() { log "$*"; exit 1; }

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

# PostgreSQL refuses to run as root: as root, its programs run as `postgres`.
as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_missing() {
    local missing=()
    [ -x "$(pg_bin)/initdb" ] 2>/dev/null || missing+=(postgresql)
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
    [ ${#missing[@]} = 0 ] && return
    if [ "$(id -u)" != 0 ]; then
        die "missing: ${missing[*]} (as root: apt-get install -y ${missing[*]})"
    fi
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

nginx_bin() { command -v nginx || echo /usr/sbin/nginx; }

# --- Parts ------------------------------------------------------------------------------
# Each part runs in a process group of its own (setsid), whose id is in pids/PART.pid:
# `kill` takes all its processes at once (granian's workers with their parent).

pidfile() { echo "$dir/pids/$1.pid"; }

running() {
    local pid
    pid=$(cat "$(pidfile "$1")" 2>/dev/null) || return 1
    kill -0 -- "-$pid" 2>/dev/null
}

launch() { # PART COMMAND…: in the background, its own process group, output to its log
    local part=$1
    shift
    setsid "$@" >>"$dir/logs/$part.log" 2>&1 </dev/null &
    echo $! >"$(pidfile "$part")"
}

wait_for() { # WHAT SECONDS COMMAND…: until the command succeeds
    local what=$1 seconds=$2
    shift 2
    for _ in $(seq 1 $((seconds * 10))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    die "$what did not start in ${seconds} s (logs: $dir/logs/)"
}

app_port() { echo $((base_port + ${1#app})); }

start_postgres() { # primary|replica
    local part=$1 port
    port=$([ "$part" = primary ] && echo "$primary_port" || echo "$replica_port")
    # Each server keeps its own log in its data directory's parent (as the postgres user
    # may not write to logs/ when it is root's).
    as_postgres "$(pg_bin)/pg_ctl" -D "$dir/$part" -l "$dir/$part.log" -w -t 60 -o \
        "-c listen_addresses=127.0.0.1 -p $port -k $dir/sockets -c hot_standby_feedback=on" \
        start >/dev/null
    head -n 1 "$dir/$part/postmaster.pid" >"$(pidfile "$part")"
}

stop_postgres() { # primary|replica [mode]
    as_postgres "$(pg_bin)/pg_ctl" -D "$dir/$1" -m "${2:-fast}" -w stop >/dev/null 2>&1 || true
}

start_part() {
    local part=$1
    case $part in
    primary | replica) start_postgres "$part" ;;
    redis)
        launch redis redis-server --bind 127.0.0.1 --port "$redis_port" --save "" \
            --appendonly no --dir "$dir/redis" --protected-mode yes
        wait_for redis 20 redis-cli -p "$redis_port" ping
        ;;
    app*)
        local port cpu pin=()
        port=$(app_port "$part")
        if [ "${CLUSTER_TASKSET:-0}" = 1 ]; then
            cpu=$(((${part#app} - 1) % $(nproc)))
            pin=(taskset -c "$cpu")
        fi
        mkdir -p "$dir/metrics/$part"
        launch "$part" env HOST=127.0.0.1 PORT="$port" WEB_CONCURRENCY="$web_concurrency" \
            TASK_WORKERS=0 PROMETHEUS_MULTIPROC_DIR="$dir/metrics/$part" \
            "${pin[@]}" scripts/serve.sh
        wait_for "$part" 60 curl -fsS "http://127.0.0.1:$port/healthz"
        ;;
    worker*)
        mkdir -p "$dir/metrics/$part"
        launch "$part" env PROMETHEUS_MULTIPROC_DIR="$dir/metrics/$part" \
            python manage.py worker --no-startup-delay --no-reload
        ;;
    nginx)
        launch nginx "$(nginx_bin)" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -g "daemon off;"
        wait_for nginx 20 curl -fsS "http://127.0.0.1:$base_port/healthz"
        ;;
    *) die "no part named $part (primary, replica, redis, app1…, worker1…, nginx)" ;;
    esac
}

stop_part() { # PART SIGNAL
    local part=$1 signal=${2:-TERM} pid
    case $part in
    primary | replica)
        if [ "$signal" = KILL ]; then
            pid=$(cat "$(pidfile "$part")" 2>/dev/null) || return 0
            # The postmaster and its children: a crashed database server.
            pkill -KILL -P "$pid" 2>/dev/null || true
            kill -KILL "$pid" 2>/dev/null || true
        else
            stop_postgres "$part" fast
        fi
        ;;
    *)
        pid=$(cat "$(pidfile "$part")" 2>/dev/null) || return 0
        kill "-$signal" -- "-$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 -- "-$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
        ;;
    esac
}

all_parts() {
    echo nginx
    for i in $(seq 1 "$app_servers"); do echo "app$i"; done
    for i in $(seq 1 "$task_workers"); do echo "worker$i"; done
    echo redis replica primary
}

# --- The whole cluster -----------------------------------------------------------------

write_nginx_conf() { # [APP…]: the app servers in the upstream (all by default)
    local servers="" part user_line=""
    local parts=("$@")
    if [ ${#parts[@]} = 0 ]; then mapfile -t parts < <(seq -f 'app%g' 1 "$app_servers"); fi
    for part in "${parts[@]}"; do
        # Passive health checks (nginx's open-source edition): after 2 failures within
        # 5 s, a server is left out for 5 s, then tried again.
        servers+="        server 127.0.0.1:$(app_port "$part") max_fails=2 fail_timeout=5s;"$'\n'
    done
    if [ "$(id -u)" = 0 ]; then user_line="user www-data;"; fi
    mkdir -p "$dir/nginx/logs" "$dir/nginx/tmp"
    chmod 1777 "$dir/nginx/tmp"
    cat >"$dir/nginx/nginx.conf" <<EOF
# Written by scripts/cluster.sh for this run.
$user_line
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/logs/nginx-error.log warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    # Which app server answered, and how long it took.
    log_format upstreams '\$remote_addr [\$time_local] "\$request" \$status \$body_bytes_sent '
                         'upstream=\$upstream_addr upstream_status=\$upstream_status '
                         'time=\$request_time id=\$request_id';
    access_log $dir/logs/nginx-access.log upstreams;
    client_body_temp_path $dir/nginx/tmp/client;
    proxy_temp_path $dir/nginx/tmp/proxy;
    fastcgi_temp_path $dir/nginx/tmp/fastcgi;
    uwsgi_temp_path $dir/nginx/tmp/uwsgi;
    scgi_temp_path $dir/nginx/tmp/scgi;
    server_tokens off;

    upstream signalements {
$servers        keepalive 32;
    }

    server {
        listen 127.0.0.1:$base_port;
        # Photos: several of ATTACHMENT_MAX_BYTES (10 MB) in one request.
        client_max_body_size 60m;

        location / {
            proxy_pass http://signalements;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Request-ID \$request_id;
            proxy_connect_timeout 2s;
            proxy_read_timeout 60s;
            # A server that cannot be reached, or breaks the connection, is tried on the
            # next: any request that was not sent yet, and only idempotent ones (GET,
            # HEAD, PUT, DELETE…) once sent: nginx never sends a POST or a PATCH twice
            # (no "non_idempotent" here). A client retries those with its Idempotency-Key.
            proxy_next_upstream error timeout http_502 http_504;
            proxy_next_upstream_tries 3;
        }

        # Photos, once Django has checked who asks (X-Accel-Redirect): never reachable
        # from outside, which would serve a hidden report's photos to anyone.
        location /protected-media/ {
            internal;
            alias $dir/media/;
            # nginx keeps only some of Django's headers (type, disposition, caching).
            add_header X-Content-Type-Options nosniff always;
            add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always;
        }
    }
}
EOF
}

write_environment() {
    local secret metrics_token
    secret=$(python -c 'import secrets; print(secrets.token_urlsafe(50))')
    metrics_token=$(python -c 'import secrets; print(secrets.token_urlsafe(24))')
    export DEBUG=0 SECRET_KEY=$secret
    export DATABASE_URL="postgres://postgres@127.0.0.1:$primary_port/signalements"
    export DATABASE_REPLICA_URL="postgres://postgres@127.0.0.1:$replica_port/signalements"
    export REDIS_URL="redis://127.0.0.1:$redis_port/1"
    export TASKS_BACKEND=database
    export MEDIA_ROOT="$dir/media" PHOTO_ACCEL_REDIRECT=/protected-media/
    export BEHIND_PROXY=1 FORWARDED_ALLOW_IPS=127.0.0.1
    export ALLOWED_HOSTS=${ALLOWED_HOSTS:-127.0.0.1,localhost}
    export PUBLIC_BASE_URL="http://127.0.0.1:$base_port"
    export CSRF_TRUSTED_ORIGINS="http://127.0.0.1:$base_port,http://localhost:$base_port"
    # TLS-less front on loopback: no HTTPS redirect, no HSTS, cookies over plain HTTP. In
    # production nginx terminates TLS and says `X-Forwarded-Proto: https` (README).
    export SECURE_SSL_REDIRECT=0 SECURE_HSTS_SECONDS=0
    export SESSION_COOKIE_SECURE=0 CSRF_COOKIE_SECURE=0
    export METRICS_TOKEN=${METRICS_TOKEN:-$metrics_token}
    export PATH
    # As `export` lines: sourced inside a function, `declare -x` lines would be local.
    export -p | sed 's/^declare -x /export /' >"$dir/cluster.env"
}

print_summary() {
    local i
    cat <<EOF

Signalements cluster ready: http://127.0.0.1:$base_port/
  API      http://127.0.0.1:$base_port/api/   admin: http://127.0.0.1:$base_port/admin/
  through nginx to $app_servers app servers ($(for i in $(seq 1 "$app_servers"); do printf '%s ' "127.0.0.1:$(app_port "app$i")"; done)), $task_workers task workers
  primary  psql postgres://postgres@127.0.0.1:$primary_port/signalements
  replica  psql postgres://postgres@127.0.0.1:$replica_port/signalements
           (lag: psql -p $primary_port -h 127.0.0.1 -U postgres -c 'SELECT application_name, state, replay_lag FROM pg_stat_replication')
  redis    redis-cli -p $redis_port -n 1
  ready    curl -s http://127.0.0.1:$(app_port app1)/readyz
  metrics  curl -s -H 'Authorization: Bearer $METRICS_TOKEN' http://127.0.0.1:$(app_port app1)/metrics
  logs     $dir/logs/   (nginx access log: $dir/logs/nginx-access.log)
  parts    scripts/cluster.sh status | kill app2 | start app2 | stop replica …
Ctrl-C (or make cluster-stop) stops everything.
EOF
}

up() {
    install_missing
    command -v python >/dev/null || die "python not on PATH: run make cluster"
    if [ -f "$dir/cluster.pid" ] && kill -0 "$(cat "$dir/cluster.pid")" 2>/dev/null; then
        die "a cluster already runs in $dir (make cluster-stop, or CLUSTER_DIR=… CLUSTER_PORT=…)"
    fi
    if [ -e "$dir" ] && [ ! -f "$dir/cluster.env" ] && [ -n "$(ls -A "$dir")" ]; then
        die "$dir is not empty and is not a cluster's: choose another CLUSTER_DIR"
    fi
    rm -rf "$dir"
    mkdir -p "$dir"/{pids,logs,sockets,redis,media,metrics}
    chmod 755 "$dir" "$dir/media"
    echo $$ >"$dir/cluster.pid"
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$dir" "$dir/sockets"
        runuser -u postgres -- test -w "$dir" ||
            die "the postgres user cannot enter $dir: choose a CLUSTER_DIR it can reach"
    fi

    trap 'down_parts; exit 130' INT
    trap 'down_parts; exit 0' TERM  # make cluster-stop: a stop asked for
    trap 'down_parts' EXIT

    log "PostgreSQL primary on 127.0.0.1:$primary_port"
    as_postgres "$(pg_bin)/initdb" -D "$dir/primary" -U postgres -A trust -E UTF8 >/dev/null
    start_postgres primary
    as_postgres "$(pg_bin)/createdb" -h 127.0.0.1 -p "$primary_port" -U postgres signalements
    log "its streaming replica on 127.0.0.1:$replica_port (pg_basebackup -R)"
    as_postgres "$(pg_bin)/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres -D "$dir/replica" \
        -R -X stream -c fast
    start_postgres replica
    log "Redis on 127.0.0.1:$redis_port"
    start_part redis

    write_environment
    python manage.py migrate --noinput --verbosity 0
    python manage.py collectstatic --noinput --verbosity 0
    if [ "${CLUSTER_DEMO_DATA:-1}" = 1 ]; then python manage.py load_demo_data; fi

    for i in $(seq 1 "$app_servers"); do
        log "app server app$i on 127.0.0.1:$(app_port "app$i")"
        start_part "app$i"
    done
    for i in $(seq 1 "$task_workers"); do start_part "worker$i"; done
    write_nginx_conf
    log "nginx on 127.0.0.1:$base_port"
    start_part nginx
    print_summary
    echo "cluster: ready" >&2
    while true; do sleep 1; done
}

down_parts() {
    trap - INT TERM EXIT
    local part
    for part in $(all_parts); do stop_part "$part" TERM; done
    rm -f "$dir/cluster.pid"
    log "stopped (data and logs kept in $dir until the next up)"
}

load_environment() {
    [ -f "$dir/cluster.env" ] || die "no cluster in $dir (scripts/cluster.sh up)"
    # shellcheck disable=SC1091
    source "$dir/cluster.env"
}

case ${1:-} in
up) up ;;
down)
    if [ -f "$dir/cluster.pid" ] && kill -0 "$(cat "$dir/cluster.pid")" 2>/dev/null; then
        kill -TERM "$(cat "$dir/cluster.pid")"
        for _ in $(seq 1 300); do
            [ -f "$dir/cluster.pid" ] || exit 0
            sleep 0.1
        done
    fi
    down_parts
    ;;
status)
    load_environment
    for part in $(all_parts); do
        if running "$part" || { [[ $part == primary || $part == replica ]] &&
            as_postgres "$(pg_bin)/pg_ctl" -D "$dir/$part" status >/dev/null 2>&1; }; then
            state=running
        else
            state=stopped
        fi
        logfile=$dir/logs/$part.log
        if [[ $part == primary || $part == replica ]]; then logfile=$dir/$part.log; fi
        printf '%-9s %-8s %s\n' "$part" "$state" "$logfile"
    done
    ;;
balance)
    load_environment
    shift
    write_nginx_conf "$@"
    "$(nginx_bin)" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -s reload
    ;;
kill | stop | start)
    [ -n "${2:-}" ] || die "usage: scripts/cluster.sh $1 PART"
    load_environment
    case $1 in
    kill) stop_part "$2" KILL ;;
    stop) stop_part "$2" TERM ;;
    start) start_part "$2" ;;
    esac
    ;;
*)
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
