#!/usr/bin/env python3
"""The DevSphere API v1 with Python `requests`: list leads, get one lead, then
page through all of them with the cursor.

    pip install requests                          # or: apt-get install python3-requests
    export DVS_API_KEY=dvs_live_...               # a key with the leads:read scope
    export DVS_API_URL=http://127.0.0.1:8080      # optional; this is the default
    DVS_PAGE_SIZE=100 python3 docs/examples/clients/python_requests.py

Without `requests`, python_stdlib.py is the same program on urllib.
"""
import json
import os
import sys
from urllib.parse import quote

import requests

API_URL = os.environ.get("DVS_API_URL", "http://127.0.0.1:8080").rstrip("/")
API_KEY = os.environ.get("DVS_API_KEY", "")
PAGE_SIZE = int(os.environ.get("DVS_PAGE_SIZE", "100"))

session = requests.Session()
session.headers["Authorization"] = f"Bearer {API_KEY}"


class ApiError(Exception):
    """An error answer: HTTP status, error.code, error.message, X-Request-Id, Retry-After."""

    def __init__(self, what, status, code, message, request_id, retry_after):
        super().__init__(f"{what}: HTTP {status} {code}: {message} (request {request_id})")
        self.status, self.code, self.request_id, self.retry_after = status, code, request_id, retry_after


def get(path, **params):
    """GETs a /v1 path with the key; returns the decoded JSON body or raises ApiError."""
    response = session.get(API_URL + path, params=params, timeout=30)  # params that are None are left out
    if not response.ok:
        try:
            error = response.json().get("error", {})
        except ValueError:
            error = {}
        raise ApiError(f"GET {path}", response.status_code, error.get("code"), error.get("message"),
                       response.headers.get("X-Request-Id"), response.headers.get("Retry-After"))
    return response.json()


def all_leads(page_size=PAGE_SIZE, **filters):
    """Yields every page of leads, newest first, following next_cursor."""
    cursor = None
    while True:
        page = get("/v1/leads", limit=page_size, cursor=cursor, **filters)
        yield page
        if not page["has_more"]:
            return
        cursor = page["next_cursor"]


def main():
    if not API_KEY:
        sys.exit("set DVS_API_KEY to an API key (dvs_live_...)")
    try:
        print("# GET /v1/leads?limit=2")
        first = get("/v1/leads", limit=2)
        print(json.dumps(first))
        if first["data"]:
            lead_id = first["data"][0]["id"]
            print(f"# GET /v1/leads/{lead_id}")
            print(json.dumps(get(f"/v1/leads/{quote(lead_id)}")))
        print(f"# all leads, {PAGE_SIZE} per page")
        total = pages = 0
        for page in all_leads():
            pages += 1
            total += len(page["data"])
            print(f"page {pages}: " + " ".join(lead["id"] for lead in page["data"]))
        print(f"total: {total} lead{'' if total == 1 else 's'} in {pages} page{'' if pages == 1 else 's'}")
    except ApiError as e:
        print(f"error: {e}", file=sys.stderr)
        if e.status == 429:
            print(f"rate limited: retry after {e.retry_after} seconds", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
