#!/usr/bin/env bash
# Interop smoke: start cmd/fakeorg on a free loopback port, run unmodified
# third-party Salesforce clients against it (jsforce from npm, at jsforce's
# default API version and at 63.0; k-capehart/go-salesforce v3; the Pub/Sub
# API client salesforce-pubsub-api-client 5.x against -pubsub-addr), stop it,
# print a summary. Exit status 1 if any smoke failed, 2 on setup errors.
#
#   interop/run.sh            from anywhere in a clone; needs go and node/npm
#
# FAKEORG_ARGS adds flags to cmd/fakeorg (e.g. FAKEORG_ARGS="-latency 5ms").
set -u -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

for tool in go node npm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "run.sh: $tool not found in PATH" >&2; exit 2; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/orgsync-interop.XXXXXX")"
fake_pid=""
cleanup() {
  if [ -n "$fake_pid" ] && kill -0 "$fake_pid" 2>/dev/null; then
    kill "$fake_pid" 2>/dev/null
    wait "$fake_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== building cmd/fakeorg"
(cd "$root" && go build -o "$work/fakeorg" ./cmd/fakeorg) || { echo "run.sh: build of cmd/fakeorg failed" >&2; exit 2; }

echo "== installing jsforce (npm ci)"
(
  cd "$here/jsforce" &&
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
) || { echo "run.sh: npm install failed" >&2; exit 2; }

echo "== installing salesforce-pubsub-api-client (npm ci)"
(cd "$here/pubsub" && npm ci --no-audit --no-fund --loglevel=error) || { echo "run.sh: npm install failed" >&2; exit 2; }

echo "== fetching go-salesforce (go mod download)"
(cd "$here/gosalesforce" && go mod download) || { echo "run.sh: go mod download failed" >&2; exit 2; }

echo "== starting fakeorg"
# shellcheck disable=SC2086
"$work/fakeorg" -addr 127.0.0.1:0 -pubsub-addr 127.0.0.1:0 ${FAKEORG_ARGS:-} >"$work/fakeorg.out" 2>"$work/fakeorg.err" &
fake_pid=$!
url=""
for _ in $(seq 1 150); do
  url="$(sed -n 's/^fakeorg listening on \(http:\/\/[^ ]*\).*$/\1/p' "$work/fakeorg.out" | head -n1)"
  [ -n "$url" ] && break
  kill -0 "$fake_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "run.sh: fakeorg did not report its address" >&2
  cat "$work/fakeorg.out" "$work/fakeorg.err" >&2
  exit 2
fi
pubsub_addr="$(sed -n 's/^fakeorg pubsub listening on \([^ ]*\).*$/\1/p' "$work/fakeorg.out" | head -n1)"
echo "fakeorg at $url, pubsub at $pubsub_addr (pid $fake_pid)"

declare -a names=() codes=()
run_smoke() { # name, then the command
  local name="$1"; shift
  echo
  echo "== $name"
  "$@"
  local rc=$?
  names+=("$name"); codes+=("$rc")
}

run_smoke "jsforce (default API version)" env -u JSFORCE_VERSION node "$here/jsforce/smoke.mjs" "$url"
run_smoke "jsforce (API 63.0)" env JSFORCE_VERSION=63.0 node "$here/jsforce/smoke.mjs" "$url"
run_smoke "salesforce-pubsub-api-client" node "$here/pubsub/smoke.mjs" "$url" "$pubsub_addr"
run_smoke "go-salesforce" bash -c 'cd "$1" && go run . "$2"' _ "$here/gosalesforce" "$url"

echo
echo "== fake org stats"
curl -fsS "$url/_fake/stats" 2>/dev/null || node -e 'fetch(process.argv[1]).then(r=>r.text()).then(t=>console.log(t))' "$url/_fake/stats"
echo

echo
echo "== summary"
fail=0
for i in "${!names[@]}"; do
  if [ "${codes[$i]}" -eq 0 ]; then status=PASS; else status="FAIL (exit ${codes[$i]})"; fail=1; fi
  printf '%-34s %s\n' "${names[$i]}" "$status"
done
exit "$fail"
