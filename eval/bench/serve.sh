# Sourced by the HTTP benchmarks (load.sh, flood.sh): builds the release
# binary, serves INDEX on a free loopback port (extra environment in
# SERVE_ENV, e.g. "HUBSEARCH_SERVER__QUEUE_TIMEOUT_MS=100"), waits until it
# answers, then warms the query-vector cache with the dev queries (or
# $QUERIES) in mode $MODE and writes a wrk script that rotates through them.
# Sets: port, tmp, server (pid), and $tmp/q.txt, $tmp/rotate.lua, and
# $tmp/fresh.lua: the same rotation with a fresh made-up word appended to
# every request (distinct across wrk's threads), so no query vector is
# cached: every search embeds its query.
serve_index() {
  local index=$1
  command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null; }
  # HUBSEARCH_BIN: another binary to serve with (e.g. a build of an older
  # commit, for before/after figures); default: this checkout's, built.
  local bin=${HUBSEARCH_BIN:-target/release/hubsearch}
  [ -n "${HUBSEARCH_BIN:-}" ] || cargo build --release --quiet -p hubsearch ${HUBSEARCH_CARGO_FLAGS:-}
  port=$((20000 + RANDOM % 20000))
  tmp=$(mktemp -d)
  env ${SERVE_ENV:-} "$bin" --index "$index" serve --addr "127.0.0.1:$port" 2>"$tmp/server.log" &
  server=$!
  trap 'kill $server 2>/dev/null; rm -rf "$tmp"' EXIT
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
  cut -f2 "${QUERIES:-../shared/eval/dev/queries.tsv}" | sed 's/ /+/g' > "$tmp/q.txt"
  while read -r q; do curl -sf "http://127.0.0.1:$port/v1/search?q=$q&mode=$MODE" >/dev/null; done < "$tmp/q.txt"
  cat > "$tmp/rotate.lua" <<LUA
local qs = {}
for line in io.lines("$tmp/q.txt") do qs[#qs + 1] = line end
local i = 0
request = function()
  i = i % #qs + 1
  return wrk.format("GET", "/v1/search?mode=$MODE&q=" .. qs[i])
end
LUA
  cat > "$tmp/fresh.lua" <<LUA
local qs = {}
for line in io.lines("$tmp/q.txt") do qs[#qs + 1] = line end
local threads = 0
setup = function(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local i, n = 0, 0
-- A made-up word from a counter, in letters (base 26), unique per thread.
local function word(k)
  local s = ""
  repeat
    s = string.char(97 + k % 26) .. s
    k = math.floor(k / 26)
  until k == 0
  return "zq" .. s
end
request = function()
  i = i % #qs + 1
  n = n + 1
  return wrk.format("GET", "/v1/search?mode=$MODE&q=" .. qs[i] .. "+" .. word(n * 64 + (tid or 0)))
end
LUA
}
