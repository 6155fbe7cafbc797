#!/usr/bin/env bash
# Measures ordered webhook delivery end to end with the real processes: a
# bridge (`run`), a webhook worker (`work`) and a local receiver answering
# 200 at once (Python's http.server, kept-alive connections). It makes a
# scratch schema with an events table and one webhook route ordered by the
# column k, commits N events spread over KEYS keys in one transaction,
# waits until every delivery is completed, prints the deliveries a second
# (from the first delivery's start to the last one's completion, read from
# notified's history), and drops the schema.
#
# usage: docs/measure/ordered-webhooks.sh BINARY N KEYS [work flags...]
#   docs/measure/ordered-webhooks.sh ./notified-bridge 200 1 --fetch-cooldown 10ms
#   docs/measure/ordered-webhooks.sh ./notified-bridge 5000 1000 --fetch-cooldown 10ms --ordered-completions 0
# DATABASE_URL names the database (default the local test database).
set -euo pipefail
BIN=$(realpath "$1"); N=$2; KEYS=$3; shift 3
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
S=measure_owh_$$
PORT=$((20000 + $$ % 10000))
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql -q "$DATABASE_URL" -c "DROP SCHEMA IF EXISTS $S CASCADE" 2>/dev/null || true
}
trap cleanup EXIT

python3 - "$PORT" <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    disable_nagle_algorithm = True
    wbufsize = 65536  # the answer in one write
    def do_POST(self):
        self.rfile.read(int(self.headers.get('Content-Length', 0)))
        self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers(); self.wfile.write(b'ok')
    def log_message(self, *a): pass
class S(http.server.ThreadingHTTPServer):
    request_queue_size = 1024
S(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
PY
pids+=($!)

psql -q "$DATABASE_URL" -c "CREATE SCHEMA $S" -c "CREATE TABLE $S.events (id bigserial PRIMARY KEY, name text, k int)"
"$BIN" --schema "$S" migrate >/dev/null
"$BIN" --schema "$S" install-trigger --table "$S.events" --channel "ch_$S" >/dev/null
"$BIN" --schema "$S" routes add --webhook "http://127.0.0.1:$PORT/hook" --ordered-by '$.k' evt >/dev/null 2>&1
"$BIN" --schema "$S" run --table "$S.events" --channel "ch_$S" --log-level error &
pids+=($!)
"$BIN" --schema "$S" work --webhook-allow-cidr 127.0.0.1/32 --log-level error "$@" &
pids+=($!)
sleep 2

psql -q "$DATABASE_URL" -c "INSERT INTO $S.events (name, k) SELECT 'evt', g % $KEYS FROM generate_series(1, $N) g"
until [ "$(psql -tA "$DATABASE_URL" -c "SELECT count(*) FROM $S.notified_job WHERE state = 'completed'")" -ge "$N" ]; do
  sleep 0.2
done
psql -tA "$DATABASE_URL" -c "SELECT format('%s deliveries, %s keys, work %s: %s deliveries/s', $N, $KEYS, '$*',
    round(($N / extract(epoch FROM max(finalized_at) - min(attempted_at)))::numeric, 1)) FROM $S.notified_job"
