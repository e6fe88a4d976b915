"""A stand-in for Heroku's Platform API, for `drainpipe drains` tests (Heroku itself cannot be
reached from tests). Test-only.

Routes come from Heroku's published schema (platform-api-schema.json): every link of `app`,
`log-drain` and `telemetry-drain`. Each request is checked before it is served: the path's
parameters against the schema's identities, the body against the link's schema, the headers
(`Accept: application/vnd.heroku+json; version=3`, `Authorization: Bearer KEY`, a JSON
Content-Type on bodies). Each answer is checked against the link's target schema before it is
sent. `strictProperties` (Heroku's hyper-schema keyword: every property present, no other) is
enforced too. What fails is a violation: answered as Heroku would (400, 422) or 500 for the
stand-in's own answer, and listed at GET /__standin.

The rate limit works as Heroku's does: a budget of requests (--budget) that refills by one every
--refill seconds; every answer carries `RateLimit-Remaining`; a request with none left gets 429
(counted as `exhausted`: a client that honours RateLimit-Remaining never sees one). --storm N
answers the first N requests that change something with 429 anyway, as a busy API may.
--page-size N answers lists N items at a time, as Heroku does past its page size: 206 with a
`Next-Range: id ]LAST..; max=N` that the next request sends back as `Range`.

Usage: platform_api_standin.py --state STATE.json --key KEY [--budget N] [--refill S] [--storm N]
[--page-size N]
STATE: {"apps": [{"name", "generation": "cedar"|"fir", "log_drains": [{"url", "addon"?}],
"telemetry_drains": [{"signals", "exporter"}]}]}. Prints its port on the first line.
"""

import argparse
import datetime
import json
import os
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import jsonschema
from jsonschema import validators

ACCEPT = "application/vnd.heroku+json; version=3"
SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "platform-api-schema.json")
RESOURCES = ("app", "log-drain", "telemetry-drain")


def strict_properties(validator, strict, instance, schema):
    """prmd's `strictProperties: true`: every property listed is present, and no other."""
    if not strict or not validator.is_type(instance, "object"):
        return
    listed = set(schema.get("properties", {}))
    for missing in sorted(listed - set(instance)):
        yield jsonschema.ValidationError(f"{missing!r} is required (strictProperties)")
    for extra in sorted(set(instance) - listed):
        yield jsonschema.ValidationError(f"{extra!r} is not allowed (strictProperties)")


HerokuValidator = validators.extend(jsonschema.Draft4Validator, {"strictProperties": strict_properties})


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Api:
    def __init__(self, root, state, key, budget, refill, storm, page_size):
        self.root = root
        self.key = key
        self.lock = threading.Lock()
        self.apps = {}
        for a in state["apps"]:
            app = {"id": str(uuid.uuid4()), "name": a["name"], "generation": a.get("generation", "cedar")}
            app["log_drains"] = [self.new_log_drain(app, d["url"], d.get("addon")) for d in a.get("log_drains", [])]
            app["telemetry_drains"] = [self.new_telemetry_drain(app, d) for d in a.get("telemetry_drains", [])]
            self.apps[app["name"]] = app
        self.routes = []
        for name in RESOURCES:
            for i, link in enumerate(root["definitions"][name]["links"]):
                params = re.findall(r"\{\(([^)]*)\)\}", link["href"])
                pattern = re.sub(r"\{\([^)]*\)\}", "([^/]+)", link["href"])
                self.routes.append((link["method"], re.compile("^" + pattern + "$"), name, i, params))
        self.requests, self.violations = [], []
        self.exhausted = self.stormed = 0
        self.budget, self.remaining, self.storm, self.page_size = budget, budget, storm, page_size
        self.pages = 0
        threading.Thread(target=self.refill, args=(refill,), daemon=True).start()

    def refill(self, every):
        while True:
            time.sleep(every)
            with self.lock:
                self.remaining = min(self.budget, self.remaining + 1)

    def errors(self, pointer, instance):
        schema = {"$ref": "#" + pointer, "definitions": self.root["definitions"]}
        checker = jsonschema.FormatChecker()
        found = HerokuValidator(schema, format_checker=checker).iter_errors(instance)
        return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in found]

    def new_log_drain(self, app, url, addon=None):
        return {
            "addon": addon,
            "app": {"id": app["id"], "name": app["name"]},
            "created_at": now(),
            "id": str(uuid.uuid4()),
            "token": "d." + str(uuid.uuid4()),
            "updated_at": now(),
            "url": url,
        }

    def new_telemetry_drain(self, app, body):
        return {
            "created_at": now(),
            "id": str(uuid.uuid4()),
            "owner": {"id": app["id"], "type": "app"},
            "signals": body["signals"],
            "exporter": body["exporter"],
            "updated_at": now(),
        }

    def app(self, identity):
        for app in self.apps.values():
            if identity in (app["id"], app["name"]):
                return app
        return None

    def example(self, schema):
        """The schema's example value: its own, its $ref's, or one built from its properties."""
        if "example" in schema:
            return schema["example"]
        if "$ref" in schema:
            target = self.root
            for part in schema["$ref"].lstrip("#/").split("/"):
                target = target[unquote(part)]
            return self.example(target)
        if "properties" in schema:
            return {k: self.example(v) for k, v in schema["properties"].items()}
        return None

    def app_resource(self, app):
        """An app as Heroku answers (every property, from the schema's examples), with its own
        id, name and generation."""
        resource = self.example(self.root["definitions"]["app"])
        resource.update(id=app["id"], name=app["name"])
        resource["generation"] = {"id": str(uuid.uuid5(uuid.NAMESPACE_DNS, app["generation"])), "name": app["generation"]}
        return resource

    def serve(self, method, name, link, args, body):
        """(status, answer) for a request that passed the checks; None for a link not served."""
        rel = link.get("rel")
        if link["href"].startswith("/addons") or link["href"].startswith("/spaces"):
            return None
        if name == "app":
            if method != "GET" or rel != "self":
                return None
            app = self.app(args[0])
            return (200, self.app_resource(app)) if app else not_found("app")
        if name == "log-drain":
            return self.log_drains(method, rel, self.app(args[0]), args[1:], body)
        return self.telemetry_drains(method, rel, args, body)

    def log_drains(self, method, rel, app, args, body):
        if app is None:
            return not_found("app")
        drains = app["log_drains"]
        if method == "GET" and rel == "instances":
            return 200, drains
        if method == "POST":
            if any(d["url"] == body["url"] for d in drains):
                return 422, {"id": "invalid_params", "message": "Url has already been taken"}
            if not re.match(r"^(https?|syslog(\+tls)?)://", body["url"]):
                return 422, {"id": "invalid_params", "message": "Url is invalid"}
            drain = self.new_log_drain(app, body["url"])
            drains.append(drain)
            return 201, drain
        found = [d for d in drains if args[0] in (d["id"], d["url"], d["token"])]
        if not found:
            return not_found("log_drain")
        if method == "DELETE":
            if found[0]["addon"] is not None:
                return 422, {"id": "invalid_params", "message": "This drain belongs to an add-on and cannot be removed here"}
            drains.remove(found[0])
        return 200, found[0]

    def telemetry_drains(self, method, rel, args, body):
        if method == "GET" and rel == "instances":
            app = self.app(args[0])
            return (200, app["telemetry_drains"]) if app else not_found("app")
        if method == "POST":
            app = self.app(body["owner"]["id"])
            if app is None or body["owner"]["type"] != "app":
                return not_found("app")
            if app["generation"] != "fir":
                return 422, {"id": "invalid_params", "message": "Telemetry drains are for Fir apps only"}
            drain = self.new_telemetry_drain(app, body)
            app["telemetry_drains"].append(drain)
            return 201, drain
        for app in self.apps.values():
            for drain in app["telemetry_drains"]:
                if drain["id"] == args[0]:
                    if method == "PATCH":
                        drain.update({k: v for k, v in body.items()}, updated_at=now())
                    if method == "DELETE":
                        app["telemetry_drains"].remove(drain)
                    return 200, drain
        return not_found("telemetry_drain")


def not_found(what):
    return 404, {"id": "not_found", "message": f"Couldn't find that {what}."}


class Handler(BaseHTTPRequestHandler):
    api = None

    def log_message(self, *args):
        pass

    def answer(self, status, body, next_range=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        if next_range:
            self.send_header("Next-Range", next_range)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("RateLimit-Remaining", str(max(self.api.remaining, 0)))
        self.end_headers()
        self.wfile.write(data)

    def violation(self, status, id_, message):
        self.api.violations.append(f"{self.command} {self.path}: {message}")
        self.answer(status, {"id": id_, "message": message})

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def do_PATCH(self):
        self.handle_any()

    def do_DELETE(self):
        self.handle_any()

    def handle_any(self):
        api = self.api
        path = urlsplit(self.path).path
        if path == "/__standin":
            with api.lock:
                seen = {"requests": api.requests, "violations": api.violations, "exhausted": api.exhausted, "stormed": api.stormed, "pages": api.pages, "apps": list(api.apps.values())}
            return self.answer(200, seen)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        with api.lock:
            api.requests.append([self.command, path])
            if not self.checked_headers(raw):
                return
            if api.remaining <= 0:
                api.exhausted += 1
                return self.answer(429, {"id": "rate_limit", "message": "Your account reached the API rate limit"})
            api.remaining -= 1
            if api.storm > 0 and self.command != "GET":
                api.storm -= 1
                api.stormed += 1
                return self.answer(429, {"id": "rate_limit", "message": "Your account reached the API rate limit"})
            self.route(path, raw)

    def checked_headers(self, raw):
        if self.headers.get("Accept", "").strip() != ACCEPT:
            self.violation(400, "bad_request", f"Accept is {self.headers.get('Accept')!r}, not {ACCEPT!r}")
            return False
        if self.headers.get("Authorization") != "Bearer " + self.api.key:
            self.answer(401, {"id": "unauthorized", "message": "Invalid credentials provided."})
            return False
        if raw and not self.headers.get("Content-Type", "").startswith("application/json"):
            self.violation(400, "bad_request", f"a body of Content-Type {self.headers.get('Content-Type')!r}")
            return False
        return True

    def route(self, path, raw):
        api = self.api
        for method, pattern, name, i, params in api.routes:
            match = pattern.match(path)
            if method != self.command or not match:
                continue
            link = api.root["definitions"][name]["links"][i]
            args = [unquote(a) for a in match.groups()]
            for param, arg in zip(params, args):
                problems = api.errors(unquote(param).lstrip("#"), arg)
                if problems:
                    return self.violation(404, "not_found", f"{arg!r} is not a {unquote(param)}: {problems[0]}")
            body = None
            if "schema" in link:
                try:
                    body = json.loads(raw or b"null")
                except ValueError as e:
                    return self.violation(400, "bad_request", f"the body is not JSON: {e}")
                problems = api.errors(f"/definitions/{name}/links/{i}/schema", body)
                if problems:
                    return self.violation(422, "invalid_params", "; ".join(problems))
            served = api.serve(method, name, link, args, body)
            if served is None:
                return self.violation(501, "not_implemented", f"the stand-in does not serve {link['title']!r}")
            status, answer = served
            if status < 300:
                target = f"/definitions/{name}/links/{i}/targetSchema" if "targetSchema" in link else None
                problems = api.errors(target, answer) if target else self.resource_errors(name, link, answer)
                if problems:
                    return self.violation(500, "internal_server_error", "the stand-in's own answer: " + "; ".join(problems))
            if link.get("rel") == "instances" and status == 200 and api.page_size:
                return self.page(answer)
            return self.answer(status, answer)
        return self.violation(404, "not_found", "no link of the schema has this method and path")

    def page(self, items):
        """A list past the page size, a page at a time, as Heroku's `Range` / `Next-Range`."""
        size, start = self.api.page_size, 0
        asked = self.headers.get("Range")
        if asked is not None:
            m = re.match(r"^id \]([^.]*)\.\.; max=(\d+)$", asked.strip())
            if not m:
                return self.violation(400, "bad_request", f"Range {asked!r} is not one Next-Range gave")
            ids = [i["id"] for i in items]
            start = ids.index(m.group(1)) + 1 if m.group(1) in ids else len(items)
            size = min(size, int(m.group(2)))
        page = items[start : start + size]
        if start + size < len(items):
            self.api.pages += 1
            return self.answer(206, page, f"id ]{page[-1]['id']}..; max={size}")
        return self.answer(200, page)

    def resource_errors(self, name, link, answer):
        """Links without a target schema answer with their resource (or a list of it)."""
        if link.get("rel") == "instances":
            return [p for item in answer for p in self.api.errors(f"/definitions/{name}", item)]
        return self.api.errors(f"/definitions/{name}", answer)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--state", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--budget", type=int, default=4500)
    p.add_argument("--refill", type=float, default=0.8)
    p.add_argument("--storm", type=int, default=0)
    p.add_argument("--page-size", type=int, default=0)
    a = p.parse_args()
    with open(SCHEMA) as f:
        root = json.load(f)
    with open(a.state) as f:
        state = json.load(f)
    Handler.api = Api(root, state, a.key, a.budget, a.refill, a.storm, a.page_size)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
