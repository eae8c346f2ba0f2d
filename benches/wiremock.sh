#!/usr/bin/env bash
# WireMock against sessionrange's full pipeline on the same page, loaded by the load bench's own generator.
#
# Not run by CI. Needs Java 17+ and npm: the npm package `wiremock` ships
# WireMock's standalone jar, installed on first use into a cache folder.
# WireMock serves a stub of `GET /api/v1/items` with the very bytes the
# target sends for page 1 (from `cargo bench --bench load -- --print-page`),
# is loaded alone for its warm-up (JIT), then the bench alternates rounds of
# WireMock and of the cookie pipeline (every rule, trace on disk) and
# prints the ratio, against the goal of at least 4.
#
# Usage: bash benches/wiremock.sh
# Environment: WARMUP (seconds, default 30), PAIRS (default 9),
# WIREMOCK_VERSION (default 3.13.2), WIREMOCK_CACHE (where the jar is kept),
# WIREMOCK_FLAGS (default: no request journal and no request logging, as
# WireMock advises for load; the journal otherwise grows with every request).
set -euo pipefail
cd "$(dirname "$0")/.."

warmup=${WARMUP:-30}
pairs=${PAIRS:-9}
version=${WIREMOCK_VERSION:-3.13.2}
cache=${WIREMOCK_CACHE:-${TMPDIR:-/tmp}/sessionrange-wiremock-$version}
read -r -a flags <<<"${WIREMOCK_FLAGS:---no-request-journal --disable-request-logging}"

work=$(mktemp -d)
jvm=
cleanup() {
  if [[ -n $jvm ]]; then
    kill "$jvm" 2>/dev/null || true
    wait "$jvm" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

find_jar() {
  find "$cache/node_modules/wiremock" -name 'wiremock-standalone-*.jar' 2>/dev/null | head -n 1 || true
}
jar=$(find_jar)
if [[ -z $jar ]]; then
  echo "wiremock.sh: installing the npm package wiremock@$version into $cache" >&2
  mkdir -p "$cache"
  npm install --prefix "$cache" --no-save --no-audit --no-fund --silent "wiremock@$version" >&2
  jar=$(find_jar)
fi
[[ -n $jar ]] || { echo "wiremock.sh: no standalone jar in the wiremock package" >&2; exit 1; }

# The page's bytes, as the target serves them, and a stub that returns them
# (an inline body: WireMock keeps it in memory). Content-Length framing,
# not chunked, as the target and the floor answer.
cargo bench --bench load -- --print-page >"$work/page.json"
mkdir -p "$work/root/mappings" "$work/root/__files"
node -e '
  const fs = require("fs");
  const body = fs.readFileSync(process.argv[1], "utf8");
  const stub = {
    request: { method: "GET", urlPath: "/api/v1/items" },
    response: { status: 200, headers: { "Content-Type": "application/json" }, body },
  };
  fs.writeFileSync(process.argv[2], JSON.stringify(stub));
' "$work/page.json" "$work/root/mappings/items.json"

# A free loopback port.
port=$(node -e '
  const s = require("net").createServer().listen(0, "127.0.0.1", () => {
    console.log(s.address().port);
    s.close();
  });
')

java -jar "$jar" --port "$port" --bind-address 127.0.0.1 --disable-banner \
  --root-dir "$work/root" --use-chunked-encoding never "${flags[@]}" \
  >"$work/wiremock.log" 2>&1 &
jvm=$!

url="http://127.0.0.1:$port/api/v1/items?page=1"
for _ in $(seq 1 120); do
  if curl -fsS -o /dev/null "$url" 2>/dev/null; then
    break
  fi
  kill -0 "$jvm" 2>/dev/null || { cat "$work/wiremock.log" >&2; exit 1; }
  sleep 0.5
done
curl -fsS -o "$work/served.json" "$url"
cmp -s "$work/page.json" "$work/served.json" || { echo "wiremock.sh: WireMock serves other bytes" >&2; exit 1; }

echo "wiremock.sh: WireMock $version ($(basename "$jar")) on $url, flags: --use-chunked-encoding never ${flags[*]}"
echo "wiremock.sh: $(java -version 2>&1 | head -n 1)"
cargo bench --bench load -- --url "$url" --warmup "$warmup" --pairs "$pairs"
