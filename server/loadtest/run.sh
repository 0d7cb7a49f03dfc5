#!/usr/bin/env bash
# Load test of the live server with wrk: validated creates and reads by id
# at 16 connections. Installs wrk (Debian package) when it is missing.
#
#   server/loadtest/run.sh [duration, default 20s] [connections, default 16]
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-20s}
conns=${2:-16}
port=${PORT:-18081}
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get install -y wrk >/dev/null 2>&1 || { $sudo apt-get update >/dev/null && $sudo apt-get install -y wrk >/dev/null; }
fi

go build -o "$work/infusion" .
"$work/infusion" serve -addr "127.0.0.1:$port" -db "$work/load.db" 2>"$work/server.log" &
pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done

export TYPE=MedicationRequest BODY=testdata/resources/valid/medicationrequest-ketamine-crps.json IDS="$work/ids"
for _ in $(seq 500); do
  curl -s -D - -o /dev/null -H 'Content-Type: application/fhir+json' --data-binary "@$BODY" \
    "http://127.0.0.1:$port/$TYPE" | sed -n 's#^Location: .*/'"$TYPE"'/\([^/]*\)/_history.*#\1#Ip' | tr -d '\r'
done >"$IDS"

echo "== create $TYPE (validated), $conns connections, $duration"
wrk -t"${WRK_THREADS:-1}" -c"$conns" -d"$duration" --latency -s server/loadtest/create.lua "http://127.0.0.1:$port"
echo "== read $TYPE by id, $conns connections, $duration"
wrk -t"${WRK_THREADS:-1}" -c"$conns" -d"$duration" --latency -s server/loadtest/read.lua "http://127.0.0.1:$port"
