"""A small Hugging Face Hub stand-in for the tests: the endpoints the real ``huggingface_hub`` client (2.x) and
timm's ``hf-hub:`` loading use, over plain HTTP on a loopback port, with repos and commits held in memory.

Run as ``python tests/hub_server.py`` (prints ``PORT <n>`` once listening on a free port). The client must have
``HF_ENDPOINT=http://127.0.0.1:<n>`` and ``HF_HUB_DISABLE_XET=1`` set before huggingface_hub is imported
(it reads them at import). Uploads arrive as base64 inside the NDJSON commit body (``uploadMode: regular``).

Endpoints: repo create, card metadata validation, repo info (``/api/models/ORG/NAME[/revision/REV]``), file tree
(``/api/models/ORG/NAME/tree/REV``), preupload, commit (files added and deleted), and
``HEAD``/``GET /ORG/NAME/resolve/REV/PATH`` with ``X-Repo-Commit``, ``ETag`` and ``Content-Length``; misses answer
404 with ``X-Error-Code: RepoNotFound`` / ``EntryNotFound`` / ``RevisionNotFound``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

REPOS: dict[str, list[dict]] = {}  # repo_id -> commits, oldest first: {"oid", "files": {path: bytes}}
LOCK = threading.Lock()


def _resolve(repo_id: str, rev: str) -> dict | None:
    commits = REPOS.get(repo_id)
    if not commits:
        return None
    if rev == "main":
        return commits[-1]
    return next((c for c in commits if c["oid"] == rev), None)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    # -- helpers
    def _send(self, code: int, body: bytes = b"", headers: dict | None = None, head: bool = False) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, code: int, obj, headers: dict | None = None) -> None:
        self._send(code, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _error(self, code: int, error_code: str, msg: str, head: bool = False) -> None:
        body = json.dumps({"error": msg}).encode()
        self._send(
            code,
            body,
            {"X-Error-Code": error_code, "X-Error-Message": msg, "Content-Type": "application/json"},
            head=head,
        )

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    @property
    def base(self) -> str:
        return f"http://{self.headers.get('Host')}"

    # -- routes
    def do_POST(self) -> None:
        path = unquote(urlsplit(self.path).path)
        body = self._body()
        if path == "/api/repos/create":
            req = json.loads(body or b"{}")
            repo_id = f"{req['organization']}/{req['name']}" if req.get("organization") else req["name"]
            with LOCK:
                exists = repo_id in REPOS
                REPOS.setdefault(repo_id, [])
            if exists:
                return self._json(
                    409, {"error": "You already created this model repo", "url": f"{self.base}/{repo_id}"}
                )
            return self._json(200, {"url": f"{self.base}/{repo_id}", "name": repo_id})
        if path == "/api/validate-yaml":  # the model card's metadata, checked before a commit
            content = json.loads(body)["content"]
            parts = content.split("---\n")
            if not content.startswith("---\n") or len(parts) < 3:
                return self._json(
                    200, {"errors": [], "warnings": [{"message": "empty or missing yaml metadata"}]}
                )
            try:
                import yaml

                yaml.safe_load(parts[1])
            except Exception as e:  # noqa: BLE001 - any parse failure is the client's error
                return self._error(400, "BadRequest", f"invalid yaml metadata: {e}")
            return self._json(200, {"errors": [], "warnings": []})
        m = re.fullmatch(r"/api/models/(.+?)/preupload/(.+)", path)
        if m:
            files = json.loads(body)["files"]
            return self._json(
                200,
                {
                    "files": [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
                    ]
                },
            )
        m = re.fullmatch(r"/api/models/(.+?)/commit/(.+)", path)
        if m:
            repo_id, rev = m.group(1), m.group(2)
            if repo_id not in REPOS:
                return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            with LOCK:
                parent = _resolve(repo_id, rev)
                files = dict(parent["files"]) if parent else {}
                summary = ""
                for line in body.splitlines():
                    if not line.strip():
                        continue
                    item = json.loads(line)
                    if item["key"] == "header":
                        summary = item["value"].get("summary", "")
                    elif item["key"] == "file":
                        files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                    elif item["key"] == "deletedFile":
                        files.pop(item["value"]["path"], None)
                    else:
                        return self._error(400, "BadRequest", f"unsupported commit operation {item['key']}")
                digest = hashlib.sha1(json.dumps([summary, len(REPOS[repo_id])]).encode())
                for p in sorted(files):
                    digest.update(p.encode() + hashlib.sha1(files[p]).digest())
                oid = digest.hexdigest()
                REPOS[repo_id].append({"oid": oid, "files": files})
            return self._json(
                200, {"commitOid": oid, "commitUrl": f"{self.base}/{repo_id}/commit/{oid}", "success": True}
            )
        self._error(404, "NotFound", f"no route POST {path}")

    def do_HEAD(self) -> None:
        self._get(head=True)

    def do_GET(self) -> None:
        self._get(head=False)

    def _get(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/.*)?", path)
        if m:  # the file listing upload_folder(delete_patterns=...) reads; one page, recursive
            repo_id, rev = m.groups()
            if repo_id not in REPOS:
                return self._error(404, "RepoNotFound", f"Repository {repo_id} not found", head)
            commit = _resolve(repo_id, rev)
            files = commit["files"] if commit else {}
            return self._json(
                200,
                [
                    {"type": "file", "path": p, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                    for p, b in sorted(files.items())
                ],
            )
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/(.+))?", path)
        if m:
            repo_id, rev = m.group(1), m.group(2) or "main"
            if repo_id not in REPOS:
                return self._error(404, "RepoNotFound", f"Repository {repo_id} not found", head)
            commit = _resolve(repo_id, rev)
            if commit is None:
                return self._error(404, "RevisionNotFound", f"Revision {rev} not found", head)
            info = {
                "id": repo_id,
                "modelId": repo_id,
                "sha": commit["oid"],
                "private": False,
                "siblings": [{"rfilename": p, "size": len(b)} for p, b in sorted(commit["files"].items())],
            }
            return self._json(200, info)
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m:
            repo_id, rev, file = m.groups()
            if repo_id not in REPOS:
                return self._error(404, "RepoNotFound", f"Repository {repo_id} not found", head)
            commit = _resolve(repo_id, rev)
            if commit is None:
                return self._error(404, "RevisionNotFound", f"Revision {rev} not found", head)
            if file not in commit["files"]:
                return self._error(404, "EntryNotFound", f"{file} not found at {rev}", head)
            data = commit["files"][file]
            etag = '"' + hashlib.sha256(data).hexdigest() + '"'
            return self._send(
                200,
                data,
                {"X-Repo-Commit": commit["oid"], "ETag": etag, "Content-Type": "application/octet-stream"},
                head=head,
            )
        self._error(404, "NotFound", f"no route GET {path}", head)


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
