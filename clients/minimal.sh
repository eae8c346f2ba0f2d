#!/bin/sh
# A minimal sessionrange client in shell: curl and jq, one account, one exit.
set -eu
proxy=$(printf '%s' "${SESSIONRANGE_PROXIES:-}" | cut -d, -f1)
user=$(jq -r '.[0].username' "$SESSIONRANGE_ACCOUNTS")
pass=$(jq -r '.[0].password' "$SESSIONRANGE_ACCOUNTS")
curl_() { curl -sSf ${proxy:+-x "$proxy"} "$@"; }
token=$(curl_ -H 'content-type: application/json' \
  -d "{\"username\":\"$user\",\"password\":\"$pass\"}" \
  "$SESSIONRANGE_TARGET/api/login" | jq -r .access_token)
: > "$SESSIONRANGE_OUTPUT"
page=1 n=0
while [ "$page" != null ]; do
  n=$((n + 1))
  body=$(curl_ -H "Authorization: Bearer $token" "$SESSIONRANGE_TARGET/api/v1/items?page=$page")
  printf '%s' "$body" | jq -c '.items[]' >> "$SESSIONRANGE_OUTPUT"
  page=$(printf '%s' "$body" | jq -r .next)
  sleep "0.$(( n % 3 + 2 ))"  # uneven, human-ish pacing
done
