#!/usr/bin/env python3
"""A real, small OpenStack on loopback for kiln's upload tests: Keystone and Glance from PyPI.

Keystone (identity, fernet tokens, SQLite) and Glance (image service, SQLite, file store,
Keystone auth through keystonemiddleware) run under gunicorn from the virtualenv this script
runs in. After bootstrapping it creates what a tenant has in a real cloud: a project, a user
with the member role in it, an application credential of that user, and the image service in
the catalog. Then it writes STATE/cloud.json (endpoints and the test credentials) and serves
until SIGTERM.

Usage: openstack_cloud.py STATE KEYSTONE_PORT GLANCE_PORT
Nothing here is secret: the passwords are made up per run for a throwaway cloud.
"""
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

VENV = os.path.dirname(os.path.dirname(os.path.abspath(sys.executable)))
SERVERS = []  # the gunicorn processes started, stopped however this script ends


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def call(url, method="GET", body=None, token=None, expect=(200, 201, 204)):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            text = answer.read()
            return answer.status, answer.headers, json.loads(text) if text else {}
    except urllib.error.HTTPError as error:
        raise SystemExit(f"{method} {url}: HTTP {error.code}: {error.read()[:500]!r}")


def wait_for(url, server, key, seconds=120):
    """Waits until SERVER answers URL with a JSON document that has KEY.

    Any other answer means another server holds the port, so it is an error, not success.
    """
    deadline = time.time() + seconds
    while time.time() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server for {url} exited; see servers.log")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                text = answer.read()
        except urllib.error.HTTPError as error:  # Glance answers /versions with 300
            text = error.read()
        except OSError:
            time.sleep(0.2)
            continue
        try:
            if key in json.loads(text):
                return
        except ValueError:
            pass
        raise SystemExit(f"{url} answered, but not as the expected service: {text[:200]!r}")
    raise SystemExit(f"{url} did not answer in {seconds} s")


def gunicorn(app, port, env, log, folder):
    # Settings from gunicorn.conf.py in its working folder, not argv: the services parse
    # sys.argv with oslo.config and refuse gunicorn's options.
    write(f"{folder}/gunicorn.conf.py", f"""wsgi_app = "{app}"
bind = "127.0.0.1:{port}"
workers = 1
threads = 4
timeout = 600
""")
    return subprocess.Popen([f"{VENV}/bin/gunicorn"], cwd=folder, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def main():
    state, keystone_port, glance_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    shutil.rmtree(state, ignore_errors=True)
    for sub in ("keystone/fernet", "keystone/credential", "glance/images", "glance/staging",
                "glance/tasks"):
        os.makedirs(f"{state}/{sub}")
    keystone_url = f"http://127.0.0.1:{keystone_port}"
    glance_url = f"http://127.0.0.1:{glance_port}"
    admin_password = secrets.token_hex(12)
    glance_password = secrets.token_hex(12)
    log = open(f"{state}/servers.log", "a", buffering=1)

    write(f"{state}/keystone/keystone.conf", f"""[DEFAULT]
log_file = {state}/keystone/keystone.log
[database]
connection = sqlite:///{state}/keystone/keystone.db
[token]
provider = fernet
[fernet_tokens]
key_repository = {state}/keystone/fernet
[fernet_receipts]
key_repository = {state}/keystone/fernet
[credential]
key_repository = {state}/keystone/credential
""")
    manage = [f"{VENV}/bin/keystone-manage", "--config-file", f"{state}/keystone/keystone.conf"]
    user = os.getuid()
    for args in (["db_sync"],
                 ["fernet_setup", "--keystone-user", str(user), "--keystone-group", str(user)],
                 ["credential_setup", "--keystone-user", str(user), "--keystone-group", str(user)],
                 ["bootstrap", "--bootstrap-password", admin_password,
                  "--bootstrap-region-id", "RegionOne",
                  "--bootstrap-admin-url", f"{keystone_url}/v3",
                  "--bootstrap-public-url", f"{keystone_url}/v3",
                  "--bootstrap-internal-url", f"{keystone_url}/v3"]):
        subprocess.run(manage + args, check=True, stdout=log, stderr=subprocess.STDOUT)
    env = dict(os.environ, OS_KEYSTONE_CONFIG_FILES=f"{state}/keystone/keystone.conf")
    servers = SERVERS
    servers.append(gunicorn("keystone.wsgi.api:application", keystone_port, env, log,
                            f"{state}/keystone"))

    def stop(*unused):
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    wait_for(f"{keystone_url}/v3", servers[0], "version")

    def password_auth(name, password, project):
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": name, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
        status, headers, doc = call(f"{keystone_url}/v3/auth/tokens", "POST", body)
        return headers["X-Subject-Token"], doc

    admin, _ = password_auth("admin", admin_password, "admin")
    v3 = f"{keystone_url}/v3"
    roles = {r["name"]: r["id"] for r in call(f"{v3}/roles", token=admin)[2]["roles"]}

    def project(name):
        return call(f"{v3}/projects", "POST", {"project": {"name": name, "domain_id": "default"}},
                    admin)[2]["project"]["id"]

    def user_in(name, password, project_id, role):
        user_id = call(f"{v3}/users", "POST", {"user": {
            "name": name, "password": password, "domain_id": "default",
            "default_project_id": project_id}}, admin)[2]["user"]["id"]
        call(f"{v3}/projects/{project_id}/users/{user_id}/roles/{roles[role]}", "PUT",
             token=admin)
        return user_id

    service_project = project("service")
    user_in("glance", glance_password, service_project, "admin")
    builds_project = project("builds")
    builder_password = secrets.token_hex(12)
    builder_id = user_in("builder", builder_password, builds_project, "member")
    service = call(f"{v3}/services", "POST", {"service": {"type": "image", "name": "glance"}},
                   admin)[2]["service"]["id"]
    for interface in ("public", "internal", "admin"):
        call(f"{v3}/endpoints", "POST", {"endpoint": {
            "service_id": service, "interface": interface, "url": glance_url,
            "region_id": "RegionOne"}}, admin)
    builder, _ = password_auth("builder", builder_password, "builds")
    credential = call(f"{v3}/users/{builder_id}/application_credentials", "POST", {
        "application_credential": {"name": "kiln-uploads"}}, builder)[2]["application_credential"]

    write(f"{state}/glance/glance-api.conf", f"""[DEFAULT]
enabled_backends = fs:file
log_file = {state}/glance/glance-api.log
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = {state}/glance/images
[os_glance_staging_store]
filesystem_store_datadir = {state}/glance/staging
[os_glance_tasks_store]
filesystem_store_datadir = {state}/glance/tasks
[database]
connection = sqlite:///{state}/glance/glance.db
[paste_deploy]
flavor = keystone
config_file = {VENV}/etc/glance/glance-api-paste.ini
[keystone_authtoken]
www_authenticate_uri = {keystone_url}/v3
auth_url = {keystone_url}/v3
auth_type = password
project_domain_id = default
user_domain_id = default
project_name = service
username = glance
password = {glance_password}
""")
    subprocess.run([f"{VENV}/bin/glance-manage", "--config-file",
                    f"{state}/glance/glance-api.conf", "db_sync"],
                   check=True, stdout=log, stderr=subprocess.STDOUT)
    env = dict(os.environ, OS_GLANCE_CONFIG_DIR=f"{state}/glance")
    servers.append(gunicorn("glance.wsgi.api:application", glance_port, env, log,
                            f"{state}/glance"))
    wait_for(f"{glance_url}/versions", servers[-1], "versions")

    cloud = {
        "auth_url": f"{keystone_url}/v3",
        "image_url": glance_url,
        "region": "RegionOne",
        "project": "builds",
        "project_id": builds_project,
        "username": "builder",
        "password": builder_password,
        "application_credential_id": credential["id"],
        "application_credential_secret": credential["secret"],
    }
    write(f"{state}/cloud.json.tmp", json.dumps(cloud))
    os.rename(f"{state}/cloud.json.tmp", f"{state}/cloud.json")
    while True:
        for server in servers:
            if server.poll() is not None:
                print(f"a server exited ({server.args[-1]}): see {state}/servers.log",
                      file=sys.stderr)
                stop()
        time.sleep(1)


if __name__ == "__main__":
    try:
        main()
    finally:
        for running in SERVERS:
            running.terminate()
