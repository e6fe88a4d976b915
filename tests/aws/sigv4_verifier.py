"""Checks AWS SigV4 signatures with botocore, independently of drainpipe's signing, and
forwards what passes to a real Elasticsearch or OpenSearch. See sigv4-verifier."""

import hashlib
import http.server
import json
import re
import sys
import threading
import urllib.error
import urllib.request
from urllib.parse import parse_qsl

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

UPSTREAM, REGION, SERVICE, ACCESS_KEY, SECRET = sys.argv[1:6]
TOKEN = sys.argv[6] if len(sys.argv) > 6 else None
AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]{64})$"
)
counts = {"verified": 0, "refused": 0}
lock = threading.Lock()


def why_refused(method, path, headers, body):
    """None if the request is signed as AWS would check it; else why not."""
    m = AUTH.match(headers.get("authorization", ""))
    if not m:
        return "no SigV4 Authorization header"
    if (m["key"], m["region"], m["service"]) != (ACCESS_KEY, REGION, SERVICE):
        return f"signed for {m['key']}/{m['region']}/{m['service']}"
    if headers.get("x-amz-security-token") != TOKEN:
        return "the security token is not the one issued"
    timestamp = headers.get("x-amz-date", "")
    if not timestamp.startswith(m["date"]):
        return "x-amz-date does not match the credential scope"
    if SERVICE == "aoss" and headers.get("x-amz-content-sha256") != hashlib.sha256(body).hexdigest():
        return "x-amz-content-sha256 is not the body's hash"
    signed = m["signed"].split(";")
    if "host" not in signed:
        return "host is not signed"
    # The query as parameters, as botocore's own test-suite runner gives it: botocore then encodes
    # each key and value as AWS's front end does (`*` as %2A), rather than taking the URL's query
    # as it is. The path is taken as sent and escaped again, as AWS does for all but S3.
    route, _, query = path.partition("?")
    request = AWSRequest(
        method=method,
        url=f"http://{headers['host']}{route}",
        data=body,
        params=parse_qsl(query, keep_blank_values=True),
    )
    for name in signed:
        if name not in headers:
            return f"signed header {name} is missing"
        request.headers[name] = headers[name]
    request.context["timestamp"] = timestamp
    auth = SigV4Auth(Credentials(ACCESS_KEY, SECRET, TOKEN), SERVICE, REGION)
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    if expected != m["signature"]:
        return "The request signature we calculated does not match the signature you provided"
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="application/json"):
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0) or 0))
        if self.path == "/__verifier":
            with lock:
                return self.answer(200, json.dumps(counts).encode())
        headers = {k.lower(): v for k, v in self.headers.items()}
        why = why_refused(self.command, self.path, headers, body)
        with lock:
            counts["refused" if why else "verified"] += 1
        if why:
            return self.answer(403, json.dumps({"message": why}).encode())
        forward = urllib.request.Request(UPSTREAM + self.path, data=body or None, method=self.command)
        for name in ("content-type", "content-encoding"):
            if name in headers:
                forward.add_header(name, headers[name])
        try:
            with urllib.request.urlopen(forward, timeout=60) as r:
                status, data, kind = r.status, r.read(), r.headers.get("content-type", "application/json")
        except urllib.error.HTTPError as e:
            status, data, kind = e.code, e.read(), e.headers.get("content-type", "application/json")
        self.answer(status, data, kind)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
