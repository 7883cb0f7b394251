#!/bin/sh
# Creates demo Accounts in the source fake org, the way a user or a data load
# would, so `producer poll` has something to capture. POSIX sh + curl only
# (it runs in the curlimages/curl image of the compose "demo" profile).
#
#   SEED_URL           the source org           (default http://fakeorg-source:8081)
#   SEED_CLIENT_ID     connected app key        (default demo)
#   SEED_CLIENT_SECRET connected app secret     (default demo-secret)
#   SEED_ACCOUNTS      how many Accounts        (default 500)
#   SEED_REJECT_EVERY  every Nth Account is named "Reject …", which the demo's
#                      target refuses (a validation rule): dead letters (default 50, 0: none)
#   SEED_API_VERSION   REST API version         (default 61.0)
set -eu

url=${SEED_URL:-http://fakeorg-source:8081}
client_id=${SEED_CLIENT_ID:-demo}
client_secret=${SEED_CLIENT_SECRET:-demo-secret}
total=${SEED_ACCOUNTS:-500}
reject_every=${SEED_REJECT_EVERY:-50}
version=${SEED_API_VERSION:-61.0}

# The fake org may still be starting: retry the token for about a minute.
token=""
tries=0
while [ -z "$token" ]; do
  answer=$(curl -sS --max-time 5 -X POST "$url/services/oauth2/token" \
    --data-urlencode grant_type=client_credentials \
    --data-urlencode "client_id=$client_id" \
    --data-urlencode "client_secret=$client_secret" 2>/dev/null || true)
  token=$(printf '%s' "$answer" | sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p')
  if [ -z "$token" ]; then
    tries=$((tries + 1))
    if [ "$tries" -ge 60 ]; then
      echo "seed: no token from $url after $tries tries: $answer" >&2
      exit 1
    fi
    sleep 1
  fi
done

# sObject Collections create: up to 200 records per call, allOrNone=false.
stamp=$(date -u +%Y%m%dT%H%M%SZ)
created=0
i=1
while [ "$i" -le "$total" ]; do
  body='{"allOrNone":false,"records":['
  n=0
  while [ "$n" -lt 200 ] && [ "$i" -le "$total" ]; do
    name="Demo Account $stamp-$i"
    if [ "$reject_every" -gt 0 ] && [ $((i % reject_every)) -eq 0 ]; then
      name="Reject $stamp-$i"
    fi
    [ "$n" -gt 0 ] && body="$body,"
    body="$body{\"attributes\":{\"type\":\"Account\"},\"Name\":\"$name\",\"Industry\":\"Technology\",\"NumberOfEmployees\":$((i % 900 + 10)),\"BillingCity\":\"Springfield\"}"
    n=$((n + 1))
    i=$((i + 1))
  done
  body="$body]}"
  out=$(printf '%s' "$body" | curl -sS --fail-with-body --max-time 30 -X POST \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    --data-binary @- "$url/services/data/v$version/composite/sobjects") || {
    echo "seed: create failed: $out" >&2
    exit 1
  }
  ok=$(printf '%s' "$out" | grep -o '"success" *: *true' | wc -l)
  created=$((created + ok))
done
echo "seed: created $created of $total Accounts in $url"
