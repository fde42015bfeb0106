#!/usr/bin/env python3
"""A FAKE of the cloud control planes kiln's Azure and Google Cloud uploads call.

Microsoft Entra ID, Azure Resource Manager, Google's OAuth token endpoint and the Compute
Engine API run only inside their clouds: no server for them can run on this machine. This
file stands in for exactly the calls `kiln upload azure` and `kiln upload gce` make, checks
their credentials as the services do, answers in the services' documented formats, and logs
each request (secrets replaced) as one JSON line so that the tests assert on what kiln sent.
The data itself goes to real servers: the VHD to Azurite, the tarball to gcp-storage-emulator.

  POST /entra/{tenant}/oauth2/v2.0/token                  client credentials grant
  PUT|GET /subscriptions/.../Microsoft.Compute/images/{n}  create, then read (Creating, then
                                                           Succeeded)
  POST /google/token                                       JWT bearer grant (RS256 checked
                                                           with the service account's public
                                                           key through openssl)
  GET /compute/v1/projects/{p}/global/images/{n}           404 until inserted
  POST /compute/v1/projects/{p}/global/images              checks the rawDisk source exists
                                                           in the storage emulator
  GET /compute/v1/projects/{p}/global/operations/{op}      RUNNING once, then DONE

Secrets come from the environment, never argv: FAKE_AZURE_CLIENT_SECRET,
FAKE_GOOGLE_PUBLIC_KEY (a PEM file's path; the key is public).
Usage: cloud_control_fake.py PORT LOG AZURE_TENANT AZURE_CLIENT_ID GOOGLE_EMAIL GCS_URL
"""
import base64
import http.client
import http.server
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def main():
    port, log_path, tenant, client_id, google_email, gcs_url = sys.argv[1:7]
    client_secret = os.environ["FAKE_AZURE_CLIENT_SECRET"]
    google_key = os.environ["FAKE_GOOGLE_PUBLIC_KEY"]
    lock = threading.Lock()
    log = open(log_path, "a", buffering=1)
    issued = set()
    azure_images, google_images, operations = {}, {}, {}
    gcs = urllib.parse.urlparse(gcs_url)

    def object_exists(source):
        prefix = "https://storage.googleapis.com/"
        if not source.startswith(prefix):
            return False
        bucket, _, name = source[len(prefix):].partition("/")
        connection = http.client.HTTPConnection(gcs.hostname, gcs.port, timeout=30)
        connection.request("GET", "/storage/v1/b/%s/o/%s" % (bucket, urllib.parse.quote(name, safe="")))
        status = connection.getresponse().status
        connection.close()
        return status == 200

    def jwt_valid(assertion, audience):
        try:
            header, claims, signature = assertion.split(".")
            if json.loads(b64url_decode(header)).get("alg") != "RS256":
                return False
            body = json.loads(b64url_decode(claims))
            with tempfile.TemporaryDirectory() as scratch:
                with open(scratch + "/data", "wb") as out:
                    out.write((header + "." + claims).encode())
                with open(scratch + "/sig", "wb") as out:
                    out.write(b64url_decode(signature))
                verified = subprocess.run(
                    ["openssl", "dgst", "-sha256", "-verify", google_key, "-signature",
                     scratch + "/sig", scratch + "/data"], capture_output=True).returncode == 0
            now = time.time()
            return (verified and body.get("iss") == google_email and body.get("aud") == audience
                    and "cloud-platform" in body.get("scope", "")
                    and body.get("iat", 0) <= now + 60 < body.get("exp", 0) + 60)
        except (ValueError, KeyError):
            return False

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *unused):
            pass

        def answer(self, status, document, entry):
            entry["status"] = status
            with lock:
                log.write(json.dumps(entry) + "\n")
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def bearer_ok(self):
            value = self.headers.get("Authorization", "")
            return value.startswith("Bearer ") and value[7:] in issued

        def issue(self):
            token = "fake-access-" + secrets.token_hex(16)
            with lock:
                issued.add(token)
            return {"token_type": "Bearer", "expires_in": 3599, "access_token": token}

        def handle_request(self):
            length = int(self.headers.get("Content-Length", 0) or 0)
            raw = self.rfile.read(length) if length else b""
            url = urllib.parse.urlparse(self.path)
            path, query = url.path, urllib.parse.parse_qs(url.query)
            entry = {"method": self.command, "path": path, "query": query,
                     "authorized": self.bearer_ok()}
            if path == "/ready":  # the tests' readiness probe
                return self.answer(200, {}, entry)
            if path.startswith("/entra/") and path.endswith("/oauth2/v2.0/token"):
                form = urllib.parse.parse_qs(raw.decode())
                one = lambda key: form.get(key, [""])[0]
                entry["form"] = {k: ("<secret>" if k in ("client_secret", "client_assertion")
                                     else v[0]) for k, v in form.items()}
                good = (path.split("/")[2] == tenant and one("client_id") == client_id
                        and one("grant_type") == "client_credentials"
                        and one("client_secret") == client_secret)
                if not good:
                    return self.answer(401, {
                        "error": "invalid_client",
                        "error_description": "AADSTS7000215: Invalid client secret provided. "
                                             "Ensure the secret being sent in the request is the "
                                             "client secret value.\r\nTrace ID: fake"}, entry)
                return self.answer(200, self.issue(), entry)
            if path.startswith("/subscriptions/") and "/providers/Microsoft.Compute/images/" in path:
                if not entry["authorized"]:
                    return self.answer(401, {"error": {
                        "code": "InvalidAuthenticationToken",
                        "message": "The access token is invalid."}}, entry)
                if self.command == "PUT":
                    entry["body"] = json.loads(raw)
                    image = dict(entry["body"], id=path, name=path.rsplit("/", 1)[1])
                    image["properties"] = dict(image["properties"], provisioningState="Creating")
                    with lock:
                        azure_images[path] = image
                    return self.answer(201, image, entry)
                with lock:
                    image = azure_images.get(path)
                    if image:
                        image["properties"]["provisioningState"] = "Succeeded"
                if not image:
                    return self.answer(404, {"error": {
                        "code": "ResourceNotFound",
                        "message": "The Resource was not found."}}, entry)
                return self.answer(200, image, entry)
            if path == "/google/token":
                form = urllib.parse.parse_qs(raw.decode())
                entry["form"] = {k: ("<secret>" if k == "assertion" else v[0])
                                 for k, v in form.items()}
                audience = "http://%s%s" % (self.headers["Host"], path)
                if not jwt_valid(form.get("assertion", [""])[0], audience):
                    return self.answer(400, {"error": "invalid_grant",
                                             "error_description": "Invalid JWT Signature."}, entry)
                return self.answer(200, self.issue(), entry)
            if path.startswith("/compute/v1/projects/"):
                if not entry["authorized"]:
                    return self.answer(401, {"error": {
                        "code": 401, "status": "UNAUTHENTICATED",
                        "message": "Request had invalid authentication credentials."}}, entry)
                parts = path.split("/")  # ['', compute, v1, projects, P, global, KIND, NAME?]
                project, kind = parts[4], parts[6]
                if kind == "images" and self.command == "POST":
                    body = entry["body"] = json.loads(raw)
                    name = body["name"]
                    operation = "operation-" + secrets.token_hex(6)
                    error = None
                    if not object_exists(body["rawDisk"]["source"]):
                        error = {"errors": [{"code": "INVALID_URL", "message":
                                             "The source object does not exist."}]}
                    with lock:
                        if not error:
                            google_images[(project, name)] = dict(
                                body, id=str(secrets.randbits(60)), status="READY",
                                selfLink="https://www.googleapis.com/compute/v1/projects/%s/"
                                         "global/images/%s" % (project, name))
                        operations[operation] = {"polls": 0, "error": error}
                    return self.answer(200, {"kind": "compute#operation", "name": operation,
                                             "operationType": "insert", "status": "RUNNING"},
                                       entry)
                if kind == "operations":
                    with lock:
                        state = operations.get(parts[7])
                        if state:
                            state["polls"] += 1
                    if not state:
                        return self.answer(404, {"error": {"code": 404, "status": "NOT_FOUND",
                                                           "message": "no such operation"}}, entry)
                    document = {"kind": "compute#operation", "name": parts[7],
                                "status": "DONE" if state["polls"] > 1 else "RUNNING"}
                    if state["error"] and document["status"] == "DONE":
                        document["error"] = state["error"]
                    return self.answer(200, document, entry)
                if kind == "images":
                    with lock:
                        image = google_images.get((project, parts[7]))
                    if not image:
                        return self.answer(404, {"error": {
                            "code": 404, "status": "NOT_FOUND",
                            "message": "The resource 'projects/%s/global/images/%s' was not "
                                       "found" % (project, parts[7])}}, entry)
                    return self.answer(200, image, entry)
            return self.answer(404, {"error": {"code": "NotFound", "message": path}}, entry)

        do_GET = do_PUT = do_POST = handle_request

    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
