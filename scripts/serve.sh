#!/usr/bin/env bash
# `make serve`: the whole stack on this machine; Ctrl-C (or SIGTERM) stops all of it and leaves nothing behind.
#   Prefect UI        http://127.0.0.1:4200
#   intake service    http://127.0.0.1:8000/docs
#   dispatch console  http://127.0.0.1:8000/console
#   mail inbox        http://127.0.0.1:8025 (every notification sent, unless TRUCKROLL_NOTIFY_EMAIL_URL is set)
# Settings: TRUCKROLL_DATABASE_URL (default sqlite:///truckroll.db here), TRUCKROLL_WEBHOOK_SECRET (unset:
# development mode with the default secret, and a warning),
# TRUCKROLL_PORT (8000), PREFECT_PORT (4200), MAIL_PORT (8025, SMTP on 1025 or SMTP_PORT),
# TRUCKROLL_HOST / PREFECT_HOST (127.0.0.1), TRUCKROLL_WORKERS (task workers, 2), TRUCKROLL_WORKER_LIMIT (runs
# at once per worker, 2), PREFECT_API_DATABASE_CONNECTION_URL (Prefect's own database; SQLite in PREFECT_HOME
# by default, postgresql+asyncpg://... in production).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$PWD/.venv/bin"
PREFECT_HOST=${PREFECT_HOST:-127.0.0.1}
PREFECT_PORT=${PREFECT_PORT:-4200}
MAIL_PORT=${MAIL_PORT:-8025}
SMTP_PORT=${SMTP_PORT:-1025}
WORKERS=${TRUCKROLL_WORKERS:-2}
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_HOME=${PREFECT_HOME:-$PWD/.prefect}
export PREFECT_API_URL=${PREFECT_API_URL:-http://$PREFECT_HOST:$PREFECT_PORT/api}
export TRUCKROLL_DATABASE_URL=${TRUCKROLL_DATABASE_URL:-sqlite:///$PWD/truckroll.db}
# Links both ways between the dispatcher's console and the Prefect UI (docs/console.md).
export TRUCKROLL_CONSOLE_URL=${TRUCKROLL_CONSOLE_URL:-http://${TRUCKROLL_HOST:-127.0.0.1}:${TRUCKROLL_PORT:-8000}/console}
export TRUCKROLL_PREFECT_UI_URL=${TRUCKROLL_PREFECT_UI_URL:-http://$PREFECT_HOST:$PREFECT_PORT}
# Prefect's server and client settings (retries, lock waits, batched recorders): scripts/prefect-server.env, each
# unless already set.
while IFS='=' read -r name value; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  if [ -z "${!name:-}" ]; then export "$name=$value"; fi
done < scripts/prefect-server.env
# The process worker runs only the scheduled deployments and runs started from the UI: it polls at Prefect's
# default (10 s). Every poll writes to Prefect's database (work queues and deployments marked ready); polling
# every 2 s added lock waits of up to 60 s on SQLite during bursts.
export PREFECT_WORKER_QUERY_SECONDS=${PREFECT_WORKER_QUERY_SECONDS:-10}
# A development convenience: without a webhook secret of your own the service would refuse to start.
if [ -z "${TRUCKROLL_WEBHOOK_SECRET:-}" ] && [ -z "${TRUCKROLL_WEBHOOK_SECRETS:-}" ]; then
  export TRUCKROLL_DEVELOPMENT=${TRUCKROLL_DEVELOPMENT:-true}
  echo "WARNING: development set-up: the webhook accepts the default secret 'change-me'." \
       "Set TRUCKROLL_WEBHOOK_SECRET for anything but a try-out." >&2
fi
mkdir -p "$PREFECT_HOME/logs"
LOGS="$PREFECT_HOME/logs"

PIDS=()
declare -A NAME_OF=()
stopping=0
# Every process of this stack carries this marker in its environment however it was started: the flow runs the
# process worker starts run in sessions of their own and outlive it, and stop_all finds them by it.
export TRUCKROLL_SERVE_ID="serve-$$-$RANDOM$RANDOM"
marked() {  # the processes carrying this stack's marker (the grep that looks does not)
  local f
  for f in $(env -u TRUCKROLL_SERVE_ID grep -lsz "^TRUCKROLL_SERVE_ID=$TRUCKROLL_SERVE_ID\$" /proc/[0-9]*/environ); do
    f=${f#/proc/}
    echo "${f%/environ}"
  done
}
descendants() {  # every process below $1, whatever its process group
  local p
  for p in $(pgrep -P "$1" 2>/dev/null); do echo "$p"; descendants "$p"; done
}
stop_group() {  # stop_group PID...: SIGINT to each, its process group and every descendant, 20 s to exit, then SIGKILL
  local tree=() pid alive
  for pid in "$@"; do tree+=("$pid" $(descendants "$pid")); done
  for pid in "$@"; do kill -INT -- "-$pid" 2>/dev/null || true; done
  for pid in "${tree[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 40); do
    alive=0
    for pid in "$@"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
    for pid in "${tree[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.5
  done
  for pid in "$@"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  for pid in "${tree[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}
stop_all() {
  [ "$stopping" = 1 ] && return
  stopping=1
  trap - EXIT INT TERM
  echo "stopping: ${PIDS[*]:-nothing}"
  # The intake and the workers first, while the Prefect server still answers their last calls (a worker whose
  # server is gone retries its goodbye for 20 s); then the flow runs the process worker left running; then the
  # server and the mail catcher; then anything else still carrying the marker.
  local first=() last=() keep=() left=() pid
  for pid in "${PIDS[@]}"; do
    case ${NAME_OF[$pid]:-} in
      server|mail) last+=("$pid") ;;
      *) first+=("$pid") ;;
    esac
  done
  [ "${#first[@]}" -gt 0 ] && stop_group "${first[@]}"
  for pid in "${last[@]}"; do keep+=("$pid" $(descendants "$pid")); done
  for pid in $(marked); do
    [[ " ${keep[*]} " == *" $pid "* ]] || left+=("$pid")
  done
  if [ "${#left[@]}" -gt 0 ]; then
    echo "stopping the runs the workers left running: ${left[*]}"
    stop_group "${left[@]}"
  fi
  [ "${#last[@]}" -gt 0 ] && stop_group "${last[@]}"
  left=($(marked))
  [ "${#left[@]}" -gt 0 ] && kill -KILL "${left[@]}" 2>/dev/null
  wait 2>/dev/null || true
  echo "stopped"
}
trap stop_all EXIT INT TERM

start() {  # start NAME LOG CMD...: in its own session and process group, remembered for stop_all
  local name=$1 log=$2
  shift 2
  # A background job of a script ignores SIGINT; the subshell gives the process the default back, so that
  # stop_all's SIGINT stops it gracefully (Prefect's worker turns SIGTERM into SIGINT too).
  ( trap - INT; exec setsid "$@" >>"$log" 2>&1 ) &
  PIDS+=($!)
  NAME_OF[$!]=$name
}

start_dispatch_worker() {  # a Prefect task worker that runs the dispatch flow (truckroll worker)
  start "dispatch-worker-$1" "$LOGS/dispatch-worker-$1.log" "$BIN/truckroll" worker
}

if [ -z "${TRUCKROLL_NOTIFY_EMAIL_URL:-}" ]; then
  start mail "$LOGS/mail.log" "$BIN/truckroll" mailsink --smtp-port "$SMTP_PORT" --http-port "$MAIL_PORT" \
    --maildir "$PREFECT_HOME/mail"
  # Email to the catcher; text messages too, addressed to <phone>@sms.local so the inbox shows them apart.
  export TRUCKROLL_NOTIFY_EMAIL_URL="mailto://127.0.0.1:$SMTP_PORT?from=dispatch@truckroll.local&mode=insecure"
  export TRUCKROLL_NOTIFY_SMS_URL=${TRUCKROLL_NOTIFY_SMS_URL:-"$TRUCKROLL_NOTIFY_EMAIL_URL&to={recipient}@sms.local"}
  MAIL_NOTE="notifications: a local mail catcher, inbox at http://127.0.0.1:$MAIL_PORT (maildir $PREFECT_HOME/mail)"
else
  MAIL_NOTE="notifications: delivered through TRUCKROLL_NOTIFY_EMAIL_URL"
fi

echo "Prefect server on $PREFECT_API_URL (log: $LOGS/server.log)"
start server "$LOGS/server.log" "$BIN/prefect" server start --host "$PREFECT_HOST" --port "$PREFECT_PORT"
up=0
for _ in $(seq 1 240); do
  if "$BIN/python" -c "import httpx,sys; sys.exit(httpx.get('$PREFECT_API_URL/health', timeout=2).status_code != 200)" \
    2>/dev/null; then up=1; break; fi
  sleep 1
done
[ "$up" = 1 ] || { echo "the Prefect server did not start: see $LOGS/server.log"; exit 1; }

"$BIN/truckroll" db upgrade
"$BIN/prefect" work-pool create truckroll-pool --type process >/dev/null 2>&1 || true
# `prefect deploy --all` with a work-around for a Prefect 3.8.8 client bug, then the operators' automations
# (flows/deploy.py).
"$BIN/python" -m flows.deploy --all >"$LOGS/deploy.log" 2>&1 || { cat "$LOGS/deploy.log"; exit 1; }
echo "deployments and automations created (log: $LOGS/deploy.log)"

echo "process worker on pool truckroll-pool for the scheduled deployments (log: $LOGS/worker.log)"
start worker "$LOGS/worker.log" "$BIN/prefect" worker start --pool truckroll-pool --name "worker-$(hostname)-1"
for i in $(seq 1 "$WORKERS"); do start_dispatch_worker "$i"; done
echo "$WORKERS dispatch task worker(s) (logs: $LOGS/dispatch-worker-N.log)"

echo "intake service on http://${TRUCKROLL_HOST:-127.0.0.1}:${TRUCKROLL_PORT:-8000} (docs at /docs)"
echo "dispatcher's console at $TRUCKROLL_CONSOLE_URL (sign in as a dispatcher: truckroll users create NAME --role dispatcher --password)"
echo "Prefect UI at http://$PREFECT_HOST:$PREFECT_PORT"
echo "$MAIL_NOTE"
start intake "$LOGS/intake.log" "$BIN/truckroll" serve --host "${TRUCKROLL_HOST:-127.0.0.1}" \
  --port "${TRUCKROLL_PORT:-8000}"
echo "ready (intake log: $LOGS/intake.log); Ctrl-C stops everything"
# Supervise: a dispatch worker that dies is started again (the runs it held are recovered by the requeue sweep
# once their leases expire); if any other part exits, everything stops.
while true; do
  rc=0
  wait -n || rc=$?
  [ "$stopping" = 1 ] && exit 0  # stop_all ran (SIGINT or SIGTERM): nothing to restart
  alive=()
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then alive+=("$pid"); continue; fi
    name=${NAME_OF[$pid]:-?}
    case $name in
      dispatch-worker-*)
        echo "$(date +%T) $name (pid $pid) exited (status $rc); starting it again"
        PIDS=("${alive[@]}" "${PIDS[@]:${#alive[@]}+1}")
        start_dispatch_worker "${name#dispatch-worker-}"
        continue 2 ;;
      *)
        echo "$(date +%T) $name (pid $pid) exited (status $rc); stopping the rest (its log is in $LOGS)"
        exit 1 ;;
    esac
  done
done
