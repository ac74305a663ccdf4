#!/usr/bin/env python3
"""Conformance of a real eventshop server to its own OpenAPI document, on both stores.

Builds nothing: `cargo test` has built target/debug/eventshop (or $CARGO_TARGET_DIR/debug). For
SQLite (a fresh file) and PostgreSQL (a fresh database on the server of TEST_DATABASE_URL /
DATABASE_URL, else postgres@127.0.0.1:5432) it starts `eventshop serve --bind 127.0.0.1:<free>`,
registers a customer and a seller and makes an admin, runs schemathesis with every default
check against /api/v1/openapi.json (as the seller, then as the admin), and runs scripts/graphql_clients.py against /graphql when
that script exists. Any failure ends the script non-zero, loudly.

Run it with the Python of the virtual environment scripts/test makes (schemathesis and
graphql-core pinned there). Bounds: CONFORMANCE_MAX_EXAMPLES (default 25 per operation),
CONFORMANCE_SEED (default 1; "random" for a new seed each run), CONFORMANCE_STORES (default
"sqlite,postgres").
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
BINARY = TARGET / "debug" / "eventshop"
BIN = Path(sys.executable).parent
MAX_EXAMPLES = os.environ.get("CONFORMANCE_MAX_EXAMPLES", "25")
SEED = os.environ.get("CONFORMANCE_SEED", "1")


def say(message: str) -> None:
    print(f"conformance: {message}", file=sys.stderr, flush=True)


def die(message: str) -> None:
    say(f"FAILED: {message}")
    sys.exit(1)


def postgres_server() -> str:
    for name in ("TEST_DATABASE_URL", "DATABASE_URL"):
        url = os.environ.get(name, "")
        if url.startswith(("postgres://", "postgresql://")):
            return url
    return "postgres://postgres@127.0.0.1:5432/postgres"


def with_database(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    scheme, _, rest = base.partition("://")
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/{name}" + (f"?{query}" if query else "")


def request(method: str, url: str, body: dict | None = None, token: str | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        die(f"{method} {url} answered {error.code}: {error.read()[:500]!r}")
    raise AssertionError("unreachable")


def create_admin(database_url: str, base: str) -> dict:
    """An admin made the way an operator makes one (`accounts create-admin`), logged in."""
    email = f"admin-{uuid.uuid4().hex}@example.com"
    password = "conformance admin password"
    env = dict(os.environ, DATABASE_URL=database_url, EVENTSHOP_CONFIG="/nonexistent/eventshop.toml",
               EVENTSHOP_ADMIN_PASSWORD=password)
    made = subprocess.run([str(BINARY), "accounts", "create-admin", "--email", email], env=env,
                          capture_output=True, text=True)
    if made.returncode != 0:
        die(f"accounts create-admin failed: {made.stderr.strip()}")
    return request("POST", f"{base}/api/v1/sessions", {"email": email, "password": password})


def register(base: str, role: str) -> dict:
    email = f"{role}-{uuid.uuid4().hex}@example.com"
    return request(
        "POST",
        f"{base}/api/v1/accounts",
        {"email": email, "password": "conformance password", "name": role.title(), "role": role},
    )


class Server:
    """`eventshop serve` on a free port of 127.0.0.1 over `database_url`."""

    def __init__(self, database_url: str, log: Path) -> None:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=database_url,
            EVENTSHOP_CONFIG="/nonexistent/eventshop.toml",
            RUST_LOG=env.get("RUST_LOG", "warn"),
            # schemathesis sends hundreds of logins for one e-mail from one address: the login
            # limits (429, tested by tests/tests/auth_login_limits.rs) would answer most of them.
            EVENTSHOP_LOGIN_ATTEMPTS_PER_ACCOUNT_PER_MINUTE="0",
            EVENTSHOP_LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE="0",
        )
        self.log = log
        migrated = subprocess.run(
            [str(BINARY), "migrate"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        if migrated.returncode != 0:
            die(f"eventshop migrate failed: {migrated.stderr.strip()}")
        self.process = subprocess.Popen(
            [str(BINARY), "serve", "--bind", "127.0.0.1:0"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=open(log, "wb"),
            text=True,
        )
        line = self.process.stdout.readline().strip() if self.process.stdout else ""
        prefix = "eventshop listening on "
        if not line.startswith(prefix):
            self.stop()
            die(f"the server did not start (first line {line!r}); log:\n{log.read_text()[-3000:]}")
        self.base = line[len(prefix):]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def server_errors(self) -> list[str]:
        return [l for l in self.log.read_text(errors="replace").splitlines() if "request failed" in l]


# Operations whose schema-valid requests may still break a rule of the domain that depends on
# stored state or on several fields at once, which JSON Schema can't express: these answer 422
# for such a request (and say which field), so 422 counts as a valid answer there.
DOMAIN_RULES = [
    # The wallet's currency is fixed when it is opened.
    ("POST", "/api/v1/accounts/{id}/deposits"),
    # Every product must be priced in the order's currency; a product once per order.
    ("POST", "/api/v1/orders"),
    # At least one field; `currency` only together with `price`.
    ("PATCH", "/api/v1/products/{id}"),
]


def config_file(token: str, directory: Path) -> Path:
    """The schemathesis configuration: the bearer token for the `bearer` security scheme (so
    schemathesis can also leave it out) and the operations of DOMAIN_RULES."""
    lines = ["[auth.openapi.bearer]", f"bearer = {json.dumps(token)}", ""]
    for method, path in DOMAIN_RULES:
        lines += [
            "[[operations]]",
            f"include-method = {json.dumps(method)}",
            f"include-path = {json.dumps(path)}",
            'checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]',
            "",
        ]
    path = directory / "schemathesis.toml"
    path.write_text("\n".join(lines))
    return path


def schemathesis(base: str, token: str, report: Path) -> int:
    report.mkdir(parents=True, exist_ok=True)
    command = [
        str(BIN / "schemathesis"),
        "--config-file",
        str(config_file(token, report)),
        "run",
        f"{base}/api/v1/openapi.json",
        "--url",
        base,
        "--max-examples",
        MAX_EXAMPLES,
        "--workers",
        "2",
        "--request-timeout",
        "20",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(report),
    ]
    if SEED != "random":
        command += ["--seed", SEED]
    say("running " + " ".join(command))
    env = dict(os.environ, SCHEMATHESIS_HOOKS="conformance_hooks")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "scripts"), env.get("PYTHONPATH")]))
    return subprocess.call(command, cwd=ROOT, env=env)


def graphql_clients(base: str, token: str) -> int | None:
    script = ROOT / "scripts" / "graphql_clients.py"
    if not script.exists():
        say("scripts/graphql_clients.py does not exist: no GraphQL client run")
        return None
    return subprocess.call(
        [sys.executable, str(script), "--url", f"{base}/graphql", "--token", token], cwd=ROOT
    )


def run_store(kind: str, database_url: str, work: Path) -> list[str]:
    failures = []
    say(f"{kind}: starting eventshop serve")
    server = Server(database_url, work / f"{kind}-server.log")
    try:
        seller = register(server.base, "seller")
        customer = register(server.base, "customer")
        admin = create_admin(database_url, server.base)
        # As a seller (what most callers may do) and as an admin (every operation allowed).
        for role, account in (("seller", seller), ("admin", admin)):
            if schemathesis(server.base, account["access_token"], work / f"{kind}-{role}-report") != 0:
                failures.append(f"{kind}: schemathesis as {role} found failures")
        code = graphql_clients(server.base, customer["access_token"])
        if code not in (None, 0):
            failures.append(f"{kind}: scripts/graphql_clients.py exited {code}")
        if server.process.poll() is not None:
            failures.append(f"{kind}: the server died (exit {server.process.returncode})")
        errors = server.server_errors()
        if errors:
            failures.append(f"{kind}: the server logged {len(errors)} failed requests, e.g. {errors[0]}")
    finally:
        server.stop()
    if failures:
        say(f"{kind}: server log at {server.log}")
    return failures


def main() -> None:
    if not BINARY.exists():
        die(f"{BINARY} is missing: run cargo test (or cargo build) first")
    if shutil.which("schemathesis", path=str(BIN)) is None:
        die(f"schemathesis is not installed in {BIN}: run scripts/test, which installs it")
    work = Path(tempfile.mkdtemp(prefix="eventshop-conformance-"))
    failures: list[str] = []
    started = time.monotonic()

    stores = os.environ.get("CONFORMANCE_STORES", "sqlite,postgres").split(",")
    if "sqlite" in stores:
        failures += run_store("sqlite", f"sqlite://{work / 'conformance.db'}", work)

    server = postgres_server()
    name = f"eventshop_conformance_{uuid.uuid4().hex}"
    try:
        if "postgres" in stores:
            failures += run_store("postgres", with_database(server, name), work)
    finally:
        if "postgres" in stores and shutil.which("psql"):
            subprocess.call(
                ["psql", server, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    took = time.monotonic() - started
    if failures:
        for failure in failures:
            say(f"FAILED: {failure}")
        say(f"reports and logs in {work}")
        sys.exit(1)
    say(f"{', '.join(stores)}: conform ({took:.0f} s)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
