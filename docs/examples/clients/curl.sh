#!/usr/bin/env bash
# The DevSphere API v1 with curl: list leads, get one lead, then page through
# all of them with the cursor.
#
#   export DVS_API_KEY=dvs_live_...                 # a key with the leads:read scope
#   export DVS_API_URL=http://127.0.0.1:8080        # optional; this is the default
#   DVS_PAGE_SIZE=100 docs/examples/clients/curl.sh  # optional page size, 1-100
#
# Needs bash, curl 7.84 or later, grep and sed (no jq). The key is passed to
# curl on its standard input, so it does not show up in `ps`.
set -euo pipefail

API_URL="${DVS_API_URL:-http://127.0.0.1:8080}"
API_URL="${API_URL%/}"
PAGE_SIZE="${DVS_PAGE_SIZE:-100}"
if [[ -z "${DVS_API_KEY:-}" ]]; then
  echo "set DVS_API_KEY to an API key (dvs_live_...)" >&2
  exit 2
fi

# api_get PATH [NAME=VALUE...]: GET with the key; prints the JSON body. On an
# error prints "error: GET PATH: HTTP STATUS CODE: MESSAGE (request REQ_ID)"
# on stderr (and how long to wait, on 429) and returns 1.
api_get() {
  local path="$1"
  shift
  local args=(-sS -G --max-time 30 -K - -w '\n%{http_code}|%header{x-request-id}|%header{retry-after}')
  local param
  for param in "$@"; do args+=(--data-urlencode "$param"); done
  local out
  out=$(curl "${args[@]}" "$API_URL$path" <<<"header = \"Authorization: Bearer $DVS_API_KEY\"")
  local trailer="${out##*$'\n'}" body="${out%$'\n'*}"
  local status request_id retry_after
  IFS='|' read -r status request_id retry_after <<<"$trailer"
  if [[ "$status" != 2?? ]]; then
    local code message
    code=$(sed -n 's/.*"code":"\([^"]*\)".*/\1/p' <<<"$body")
    message=$(sed -n 's/.*"message":"\([^"]*\)".*/\1/p' <<<"$body")
    echo "error: GET $path: HTTP $status $code: $message (request $request_id)" >&2
    if [[ "$status" == 429 ]]; then echo "rate limited: retry after ${retry_after} seconds" >&2; fi
    return 1
  fi
  printf '%s\n' "$body"
}

# Lead ids of a list body, space-separated.
lead_ids() { grep -o '"id":"lead_[0-9A-Za-z]*"' <<<"$1" | sed 's/"id":"\(.*\)"/\1/' | tr '\n' ' ' | sed 's/ $//'; }

echo "# GET /v1/leads?limit=2"
first=$(api_get /v1/leads limit=2)
echo "$first"

id=$(lead_ids "$first" | cut -d' ' -f1)
if [[ -n "$id" ]]; then
  echo "# GET /v1/leads/$id"
  api_get "/v1/leads/$id"
fi

echo "# all leads, $PAGE_SIZE per page"
cursor="" pages=0 total=0
while :; do
  if [[ -z "$cursor" ]]; then
    page=$(api_get /v1/leads "limit=$PAGE_SIZE")
  else
    page=$(api_get /v1/leads "limit=$PAGE_SIZE" "cursor=$cursor")
  fi
  ids=$(lead_ids "$page")
  pages=$((pages + 1))
  total=$((total + $(wc -w <<<"$ids")))
  echo "page $pages: $ids"
  grep -q '"has_more":true' <<<"$page" || break
  cursor=$(sed -n 's/.*"next_cursor":"\([^"]*\)".*/\1/p' <<<"$page")
done
plural() { if [[ "$1" == 1 ]]; then echo "$1 $2"; else echo "$1 ${2}s"; fi; }
echo "total: $(plural "$total" lead) in $(plural "$pages" page)"
