"""Post a `tunectl plan --markdown` file on the merge request, as one note updated in place.

Usage (in a merge-request pipeline): python3 gitlab-mr-comment.py plan.md

The plan's first line is a marker naming its directory (`<!-- tunectl plan: DIR -->`): the
note of this merge request that starts with the same marker is updated, else a note is
created, so each push updates one note per directory. Reads GitLab's predefined variables
(CI_API_V4_URL, CI_PROJECT_ID, CI_MERGE_REQUEST_IID) and a token with the `api` scope in
TUNECTL_GITLAB_TOKEN. Standard library only: it runs in any image with Python 3.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.parse
import urllib.request


def call(method: str, url: str, token: str, body: dict | None = None) -> object:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("PRIVATE-TOKEN", token)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def main(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    first = text.split("\n", 1)[0]
    if not first.startswith("<!-- tunectl plan:"):
        print(f"{path} does not start with tunectl's marker line", file=sys.stderr)
        return 1
    env = os.environ
    token = env["TUNECTL_GITLAB_TOKEN"]
    project = urllib.parse.quote(env["CI_PROJECT_ID"], safe="")
    request = env["CI_MERGE_REQUEST_IID"]
    notes = f"{env['CI_API_V4_URL']}/projects/{project}/merge_requests/{request}/notes"
    page = 1
    while True:
        batch = call("GET", f"{notes}?per_page=100&page={page}&sort=asc", token)
        assert isinstance(batch, list)
        for note in batch:
            if str(note.get("body", "")).split("\n", 1)[0] == first:
                call("PUT", f"{notes}/{note['id']}", token, {"body": text})
                print(f"updated note {note['id']}")
                return 0
        if len(batch) < 100:
            break
        page += 1
    created = call("POST", notes, token, {"body": text})
    assert isinstance(created, dict)
    print(f"created note {created.get('id')}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
