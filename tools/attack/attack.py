#!/usr/bin/env python3
"""Black-box attack run against an `eventshop` binary, covering items 1-11 of issue #11.

It starts the server itself on a fresh database (SQLite file or a fresh PostgreSQL database),
creates the accounts it needs over the API, runs each item's attacks and prints, per item and
store, the requests sent, 5xx answers, leaks and other failures. A measuring tool, not a test:
it exits 0 whatever it measured, and non-zero only when it itself broke. See README.md.
"""

from __future__ import annotations

import argparse
import base64
import collections
import concurrent.futures
import hashlib
import hmac
import json
import os
import random
import resource
import select
import shutil
import signal
import socket
import sqlite3
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx

PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
HOST = "127.0.0.1"

# Control characters every text input must refuse (Unicode Cc other than tab, LF, CR).
CONTROL_CHARS = ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f", "\x85", "\x9f"]

ITEM_TITLES = {
    1: "secrets through history/events/audit",
    2: "deleted accounts, one authenticator",
    3: "NUL and control characters in text",
    4: "body limit and query cost",
    5: "idle and slowloris connections",
    6: "trailing data and content types",
    7: "privacy on shared aggregates",
    8: "policies with subject *",
    9: "refresh-token reuse",
    10: "login flooding",
    11: "/healthz with the database down",
}

# Order in which items run on one server: the destructive ones (floods, database down) last.
RUN_ORDER = [1, 2, 3, 6, 7, 9, 8, 4, 10, 5, 11]


# --------------------------------------------------------------------------------------------
# Counting


@dataclass
class Tally:
    """What one item measured on one store."""

    item: int
    store: str
    requests: int = 0
    http_5xx: int = 0
    leaks: int = 0
    failures: int = 0
    seconds: float = 0.0
    not_applicable: str | None = None
    error: str | None = None
    notes: collections.Counter = field(default_factory=collections.Counter)
    info: list = field(default_factory=list)

    def note(self, kind: str, text: str, n: int = 1) -> None:
        self.notes[f"{kind}: {text}"] += n

    def leak(self, text: str, n: int = 1) -> None:
        self.leaks += n
        self.note("leak", text, n)

    def fail(self, text: str, n: int = 1) -> None:
        self.failures += n
        self.note("fail", text, n)

    def server_error(self, text: str) -> None:
        self.http_5xx += 1
        self.note("5xx", text)

    @property
    def verdict(self) -> str:
        if self.not_applicable:
            return "n/a"
        if self.error:
            return "BROKEN"
        if self.http_5xx or self.leaks or self.failures:
            return "FAIL"
        return "pass"

    def as_json(self) -> dict:
        return {
            "item": self.item,
            "title": ITEM_TITLES.get(self.item, "setup"),
            "store": self.store,
            "requests": self.requests,
            "http_5xx": self.http_5xx,
            "leaks": self.leaks,
            "failures": self.failures,
            "verdict": self.verdict,
            "seconds": round(self.seconds, 1),
            "not_applicable": self.not_applicable,
            "error": self.error,
            "notes": dict(self.notes.most_common()),
            "info": self.info,
        }


class Secrets:
    """Every secret the run knows of; any answer that contains one is a leak."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.lock = threading.Lock()

    def add(self, kind: str, value: str) -> None:
        if value:
            with self.lock:
                self.values[value] = kind

    def add_refresh_token(self, token: str) -> None:
        claims = jwt_claims(token)
        if claims and claims.get("jti"):
            self.add("refresh-token id", str(claims["jti"]))

    def found(self, text: str) -> list[str]:
        kinds = set()
        if "$argon2" in text:
            kinds.add("password hash")
        if "password_hash" in text:
            kinds.add("password_hash field")
        with self.lock:
            items = list(self.values.items())
        for value, kind in items:
            if value in text:
                kinds.add(kind)
        return sorted(kinds)


# --------------------------------------------------------------------------------------------
# Small helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rand_word(n: int = 10) -> str:
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_claims(token: str) -> dict | None:
    try:
        part = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except Exception:
        return None


def sign_jwt(claims: dict, key: bytes | None, alg: str = "HS256") -> str:
    header = {"typ": "JWT", "alg": alg}
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    if alg == "none" or key is None:
        return signing_input + "."
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    sig = hmac.new(key, signing_input.encode(), digest).digest()
    return signing_input + "." + b64url(sig)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100 * (len(values) - 1)))))
    return values[k]


def cc_name(c: str) -> str:
    return f"U+{ord(c):04X}"


def raw_http(port: int, data: bytes, timeout: float = 5.0) -> tuple[int | None, bytes]:
    """Sends raw bytes, returns (status, whole answer); status None: no answer."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(data)
            chunks = []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
                answer = b"".join(chunks)
                if b"\r\n\r\n" in answer:
                    head, _, body = answer.partition(b"\r\n\r\n")
                    cl = [
                        ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")
                    ]
                    if cl and len(body) >= int(cl[0].split(b":")[1]):
                        break
            answer = b"".join(chunks)
            if not answer.startswith(b"HTTP/"):
                return None, answer
            return int(answer.split(b" ")[1]), answer
    except OSError as e:
        return None, str(e).encode()


def ready(socks: list, events: int, timeout: float) -> list:
    """The sockets of `socks` ready for `events` (poll: no FD_SETSIZE limit, unlike select)."""
    poller = select.poll()
    by_fd = {}
    for s in socks:
        poller.register(s, events | select.POLLERR | select.POLLHUP)
        by_fd[s.fileno()] = s
    return [by_fd[fd] for fd, _ in poller.poll(timeout * 1000)]


def complete_connects(pending: dict, conns: list, connect_errors: collections.Counter,
                      deadline: float) -> None:
    """Waits until `deadline` for the non-blocking connects in `pending` to complete; moves the
    connected ones to `conns` (a slowloris one sends its first header line)."""
    while pending and time.monotonic() < deadline:
        for s in ready(list(pending), select.POLLOUT, 0.05):
            kind = pending.pop(s)
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                connect_errors[os.strerror(err)] += 1
                s.close()
                continue
            if kind == "slowloris":
                try:
                    s.send(b"POST /api/v1/accounts HTTP/1.1\r\nHost: x\r\n")
                except OSError:
                    pass
            conns.append((s, kind))


# --------------------------------------------------------------------------------------------
# The server under attack


class Server:
    """One `eventshop serve` on a fresh database, with a lowered soft open-file limit."""

    def __init__(self, binary: str, store: str, workdir: str, nofile_soft: int,
                 database_url: str | None = None) -> None:
        self.binary = binary
        self.store = store
        self.workdir = workdir
        self.nofile_soft = nofile_soft
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log_path = os.path.join(workdir, f"server-{store}-{self.port}.log")
        if database_url:
            self.db_name = None
            self.db_path = None
            self.database_url = database_url
        elif store == "sqlite":
            self.db_name = None
            self.db_path = os.path.join(workdir, "eventshop.db")
            self.database_url = f"sqlite://{self.db_path}"
        else:
            self.db_name = "attack_" + uuid.uuid4().hex[:16]
            self.db_path = None
            self.database_url = f"postgres://postgres@127.0.0.1:5432/{self.db_name}"
            self.pg_admin(f'CREATE DATABASE "{self.db_name}"')

    @staticmethod
    def pg_admin(sql: str) -> list:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            cur = conn.execute(sql)
            try:
                return cur.fetchall()
            except psycopg.ProgrammingError:
                return []

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTSHOP_")}
        env["DATABASE_URL"] = self.database_url
        env["RUST_LOG"] = env.get("ATTACK_RUST_LOG", "warn")
        return env

    def start(self) -> None:
        soft = self.nofile_soft

        def lower_limit() -> None:
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, hard), hard))
            os.setsid()

        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--bind", f"{HOST}:{self.port}"],
            env=self.env(),
            cwd=self.workdir,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            preexec_fn=lower_limit,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not become healthy in 60 s: " + self.log_tail())

    def log_tail(self, n: int = 2000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-n:]
        except OSError:
            return ""

    def log_count(self, needle: str) -> int:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace").count(needle)
        except OSError:
            return 0

    def cli(self, *args: str, stdin: str | None = None, extra_env: dict | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
        env = self.env()
        env.update(extra_env or {})
        return subprocess.run(
            [self.binary, *args],
            env=env,
            cwd=self.workdir,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def jwt_secret(self) -> str | None:
        try:
            if self.store == "sqlite":
                with sqlite3.connect(self.db_path) as conn:
                    row = conn.execute("SELECT value FROM secrets WHERE name='jwt_hs256'").fetchone()
            else:
                import psycopg

                with psycopg.connect(self.database_url) as conn:
                    row = conn.execute(
                        "SELECT value FROM secrets WHERE name='jwt_hs256'"
                    ).fetchone()
            return row[0] if row else None
        except Exception:
            return None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def cleanup(self) -> None:
        self.stop()
        if self.db_name:
            try:
                self.pg_admin(f'ALTER DATABASE "{self.db_name}" ALLOW_CONNECTIONS true')
            except Exception:
                pass
            try:
                self.pg_admin(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            except Exception as e:
                print(f"warning: could not drop {self.db_name}: {e}", file=sys.stderr)


# --------------------------------------------------------------------------------------------
# The attacking client


@dataclass
class Account:
    name: str
    id: str
    email: str
    password: str
    access: str
    refresh: str
    role: str


class Attack:
    """One store's run: the server, the accounts, the counting HTTP helpers, the items."""

    def __init__(self, server: Server, verbose: bool) -> None:
        self.server = server
        self.verbose = verbose
        self.base = server.base
        self.api = server.base + "/api/v1"
        self.secrets = Secrets()
        self.tally = Tally(0, server.store)
        self.client = httpx.Client(timeout=20)
        self.accounts: dict[str, Account] = {}
        self.last_position = 0
        self.products: dict[str, str] = {}
        self.orders: dict[str, str] = {}
        self.jwt_key: bytes | None = None

    # ---- counting wrappers -------------------------------------------------------------

    def log(self, msg: str) -> None:
        if self.verbose:
            print(f"  [{self.server.store} #{self.tally.item}] {msg}", file=sys.stderr, flush=True)

    def scan(self, label: str, text: str, tally: Tally | None = None) -> list[str]:
        kinds = self.secrets.found(text)
        t = tally or self.tally
        for kind in kinds:
            t.leak(f"{kind} in {label}")
        return kinds

    def request(self, method: str, url: str, label: str, *, client: httpx.Client | None = None,
                tally: Tally | None = None, expect_5xx_ok: bool = False,
                **kw) -> httpx.Response | None:
        """One counted request. None when it got no answer (counted as a failure)."""
        t = tally or self.tally
        t.requests += 1
        try:
            r = (client or self.client).request(method, url, **kw)
        except httpx.TimeoutException:
            t.fail(f"{label}: timeout")
            return None
        except httpx.HTTPError as e:
            t.fail(f"{label}: no answer ({type(e).__name__})")
            return None
        if r.status_code >= 500 and not expect_5xx_ok:
            t.server_error(f"{label} -> {r.status_code}")
        self.scan(label, r.text, t)
        return r

    def rest(self, method: str, path: str, label: str | None = None, token: str | None = None,
             body: Any = None, headers: dict | None = None, **kw) -> httpx.Response | None:
        h = dict(headers or {})
        if token:
            h.setdefault("authorization", f"Bearer {token}")
        if body is not None and "content" not in kw:
            kw["json"] = body
        r = self.request(method, self.api + path, label or f"{method} {path}", headers=h, **kw)
        if r is not None and r.status_code < 300:
            try:
                pos = r.json().get("position")
                if isinstance(pos, int):
                    self.last_position = max(self.last_position, pos)
            except Exception:
                pass
        return r

    def gql(self, token: str | None, query: str, variables: dict | None = None,
            label: str = "graphql", auth: str | None = None, wait: bool = True,
            tally: Tally | None = None, client: httpx.Client | None = None,
            timeout: float = 20) -> tuple[httpx.Response | None, dict | None]:
        h = {"content-type": "application/json"}
        if auth is not None:
            h["authorization"] = auth
        elif token:
            h["authorization"] = f"Bearer {token}"
        if wait and self.last_position:
            h["x-min-position"] = str(self.last_position)
        body = {"query": query}
        if variables is not None:
            body["variables"] = variables
        r = self.request("POST", self.base + "/graphql", label, headers=h, json=body,
                         tally=tally, client=client, timeout=timeout)
        if r is None:
            return None, None
        try:
            doc = r.json()
        except Exception:
            return r, None
        t = tally or self.tally
        for err in doc.get("errors") or []:
            if (err.get("extensions") or {}).get("code") == "INTERNAL_SERVER_ERROR":
                t.server_error(f"{label} -> INTERNAL_SERVER_ERROR")
        return r, doc

    @staticmethod
    def gql_codes(doc: dict | None) -> set[str]:
        if not doc:
            return set()
        return {(e.get("extensions") or {}).get("code", "?") for e in doc.get("errors") or []}

    @staticmethod
    def gql_has_data(doc: dict | None) -> bool:
        if not doc:
            return False
        data = doc.get("data")
        if not isinstance(data, dict):
            return False
        return any(v not in (None, [], {}) for v in data.values())

    # ---- set-up ------------------------------------------------------------------------

    def register(self, name: str, role: str = "customer") -> Account:
        email = f"{name.lower()}-{rand_word(8)}@example.com"
        password = f"pw-{name}-{rand_word(16)}"
        self.secrets.add(f"password of {name}", password)
        r = self.rest("POST", "/accounts", f"register {name}",
                      body={"email": email, "password": password, "name": f"User {name}",
                            "role": role})
        if r is None or r.status_code != 201:
            raise RuntimeError(f"registering {name}: {r.status_code if r else 'no answer'} "
                               f"{r.text if r else ''}")
        d = r.json()
        self.secrets.add_refresh_token(d["refresh_token"])
        acc = Account(name, d["account_id"], email, password, d["access_token"],
                      d["refresh_token"], role)
        self.accounts[name] = acc
        return acc

    def login(self, acc: Account, label: str = "login") -> httpx.Response | None:
        r = self.rest("POST", "/sessions", label,
                      body={"email": acc.email, "password": acc.password})
        if r is not None and r.status_code == 200:
            d = r.json()
            acc.access, acc.refresh = d["access_token"], d["refresh_token"]
            self.secrets.add_refresh_token(acc.refresh)
        return r

    def refresh(self, token: str, label: str = "refresh") -> httpx.Response | None:
        r = self.rest("POST", "/sessions/refresh", label, body={"refresh_token": token})
        if r is not None and r.status_code == 200:
            try:
                self.secrets.add_refresh_token(r.json()["refresh_token"])
            except Exception:
                pass
        return r

    def place_order(self, acc: Account, items: list, label: str = "place order") -> str | None:
        r = self.rest("POST", "/orders", label, token=acc.access,
                      body={"items": items, "currency": "EUR"})
        if r is not None and r.status_code == 202:
            return r.json()["order_id"]
        return None

    def order_status(self, acc: Account, order_id: str) -> str | None:
        _, doc = self.gql(acc.access, "query($id: ID!){ order(id: $id) { status } }",
                          {"id": order_id}, "order status")
        try:
            return doc["data"]["order"]["status"]
        except Exception:
            return None

    def wait_orders(self, pairs: list[tuple[Account, str]], seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        pending = list(pairs)
        while pending and time.monotonic() < deadline:
            pending = [(a, o) for a, o in pending
                       if self.order_status(a, o) in (None, "PENDING", "AWAITING_PAYMENT")]
            if pending:
                time.sleep(0.3)

    def setup(self) -> None:
        t0 = time.monotonic()
        self.tally = Tally(0, self.server.store)
        a = self.register("A")
        b = self.register("B")
        s = self.register("S", "seller")
        self.register("S2", "seller")
        self.register("D")  # deleted in item 2
        self.register("R")  # refresh families, item 9
        self.register("F")  # login-flood target, item 10
        x = self.register("X")  # deleted here: its AccountDeleted is in the history of item 1
        self.register("T6")  # trailing-data refreshes, item 6
        # The admin, through the CLI (the only way to make one).
        admin_email = f"admin-{rand_word(8)}@example.com"
        admin_pw = f"pw-admin-{rand_word(16)}"
        self.secrets.add("password of admin", admin_pw)
        cp = self.server.cli("accounts", "create-admin", "--email", admin_email,
                             extra_env={"EVENTSHOP_ADMIN_PASSWORD": admin_pw})
        if cp.returncode != 0:
            raise RuntimeError(f"create-admin failed: {cp.stderr.strip()}")
        admin = Account("ADM", cp.stdout.strip().split()[-1], admin_email, admin_pw, "", "",
                        "admin")
        self.accounts["ADM"] = admin
        if self.login(admin, "admin login").status_code != 200:
            raise RuntimeError("admin login failed")
        key = self.server.jwt_secret()
        if key:
            self.secrets.add("JWT signing key", key)
            self.jwt_key = base64.b64decode(key)
        # Money and products.
        for acc in (a, self.accounts["D"]):
            self.rest("POST", f"/accounts/{acc.id}/deposits", "deposit", token=acc.access,
                      body={"amount": 1_000_000, "currency": "EUR"})
        for i in range(50):  # a longer wallet history for item 4
            self.rest("POST", f"/accounts/{a.id}/deposits", "deposit", token=a.access,
                      body={"amount": 100 + i, "currency": "EUR"})
        for key_, stock in (("P1", 1000), ("P2", 1)):
            r = self.rest("POST", "/products", "create product", token=s.access,
                          body={"name": f"Teapot {key_}", "description": "Blue", "price": 500,
                                "currency": "EUR", "stock": stock})
            if r is None or r.status_code != 201:
                raise RuntimeError(f"creating a product: {r.text if r else 'no answer'}")
            self.products[key_] = r.json()["product_id"]
        p1, p2 = self.products["P1"], self.products["P2"]
        self.rest("PATCH", f"/products/{p1}", "update product", token=s.access,
                  body={"description": "Blue, with a lid"})
        self.rest("POST", f"/products/{p1}/restock", "restock", token=s.access,
                  body={"quantity": 5})
        # Orders: approved (A), rejected for stock (A), declined for funds (B), canceled (A).
        self.orders["O1"] = self.place_order(a, [{"product_id": p1, "quantity": 2}])
        self.orders["O2"] = self.place_order(a, [{"product_id": p2, "quantity": 5}])
        self.orders["O3"] = self.place_order(b, [{"product_id": p1, "quantity": 1}])
        o4 = self.place_order(a, [{"product_id": p1, "quantity": 1}])
        self.orders["O4"] = o4
        if o4:
            self.rest("POST", f"/orders/{o4}/cancel", "cancel order", token=a.access,
                      body={"reason": "changed my mind"})
        # The device of item 2 owns an order too.
        d = self.accounts["D"]
        self.orders["OD"] = self.place_order(d, [{"product_id": p1, "quantity": 1}])
        # Logins and refreshes: AccountAuthenticated, RefreshTokenRevoked.
        self.login(a)
        r = self.refresh(a.refresh)
        if r is not None and r.status_code == 200:
            a.access, a.refresh = r.json()["access_token"], r.json()["refresh_token"]
        self.login(b)
        # Policy grant and revoke by the admin.
        pol = f"{b.id}:get:audit:{b.id}"
        self.rest("PUT", "/policies", "grant", token=admin.access, body={"policy": pol})
        self.rest("DELETE", "/policies", "revoke", token=admin.access, body={"policy": pol})
        # A deleted account.
        self.rest("DELETE", f"/accounts/{x.id}", "delete account", token=x.access)
        waits = [(a, self.orders[k]) for k in ("O1", "O2", "O4") if self.orders[k]]
        if self.orders["O3"]:
            waits.append((b, self.orders["O3"]))
        self.wait_orders(waits)
        self.tally.seconds = time.monotonic() - t0
        self.tally.info.append(f"accounts {len(self.accounts)}, last position {self.last_position}")

    # ---- item 1: secrets through history, events tail, audit ---------------------------

    HISTORY_Q = ("query($t: String!, $id: ID!){ history(aggregateType: $t, aggregateId: $id) "
                 "{ position aggregateType aggregateId version eventType recordedAt actor "
                 "correlationId payload } }")

    def item1(self) -> None:
        acc = self.accounts
        aggregates = []  # (type, id, owner name or None for shared)
        for name in ("A", "B", "S", "ADM", "X", "D"):
            aggregates.append(("account", acc[name].id, name))
            aggregates.append(("policy_set", acc[name].id, name))
        for name in ("A", "B", "D"):
            aggregates.append(("wallet", acc[name].id, name))
        for key in ("P1", "P2"):
            aggregates.append(("product", self.products[key], None))
        for key, owner in (("O1", "A"), ("O2", "A"), ("O3", "B"), ("O4", "A")):
            if self.orders.get(key):
                aggregates.append(("order", self.orders[key], owner))
        event_types = set()
        for viewer in ("A", "B", "S", "ADM"):
            v = acc[viewer]
            for typ, agg_id, owner in aggregates:
                label = f"history({typ}) as {'owner' if owner == viewer else viewer}"
                _, doc = self.gql(v.access, self.HISTORY_Q, {"t": typ, "id": agg_id}, label)
                hist = ((doc or {}).get("data") or {}).get("history") or []
                for rec in hist:
                    event_types.add(rec.get("eventType"))
                private = typ in ("account", "wallet", "order", "policy_set")
                if hist and private and owner not in (viewer, None) and viewer != "ADM":
                    self.tally.leak(f"{label}: another user's private history readable")
            # Accounts, wallets and audit of everyone.
            for name in ("A", "B", "S", "ADM"):
                other = acc[name]
                _, doc = self.gql(v.access, "query($id: ID!){ account(id: $id) { id email name } "
                                  "wallet(accountId: $id) { balance { amount } } }",
                                  {"id": other.id}, f"account+wallet as {viewer}")
                if name != viewer and viewer != "ADM" and self.gql_has_data(doc):
                    if other.email in json.dumps(doc):
                        self.tally.leak(f"account({name}) readable by {viewer}")
                _, doc = self.gql(v.access, "query($a: String){ audit(actor: $a, first: 100) "
                                  "{ edges { node { eventType aggregateId correlationId "
                                  "causationId } } } }", {"a": other.id}, f"audit as {viewer}")
                if name != viewer and viewer != "ADM" and self.gql_has_data(doc):
                    edges = doc["data"]["audit"]["edges"] if doc["data"].get("audit") else []
                    if edges:
                        self.tally.leak(f"audit(actor {name}) readable by {viewer}")
        self.tally.info.append(f"event types seen in history: {len(event_types)}: "
                               + ",".join(sorted(t for t in event_types if t)))
        # The CLI: events leave the process there too.
        cli_runs = [
            ("events tail --json", ["events", "tail", "--json", "--limit", "100000"]),
            ("events tail", ["events", "tail", "--limit", "100000"]),
            ("audit --json", ["audit", "--json", "--limit", "100000"]),
        ]
        if self.orders.get("O1"):
            cli_runs.append(("orders trace --json", ["orders", "trace", self.orders["O1"],
                                                     "--json"]))
        for label, args in cli_runs:
            self.tally.requests += 1
            try:
                cp = self.server.cli(*args)
            except subprocess.TimeoutExpired:
                self.tally.fail(f"CLI {label}: timeout")
                continue
            if cp.returncode != 0:
                self.tally.fail(f"CLI {label}: exit {cp.returncode}: {cp.stderr.strip()[:120]}")
            if "panicked" in cp.stderr:
                self.tally.server_error(f"CLI {label}: panic")
            self.scan(f"CLI {label}", cp.stdout + cp.stderr)

    # ---- item 2: deleted accounts and one authenticator --------------------------------

    def rest_probe(self, auth: str | None, acc: Account) -> int | None:
        """A side-effect-light authenticated REST command: a 1-cent deposit to acc's wallet."""
        h = {} if auth is None else {"authorization": auth}
        r = self.rest("POST", f"/accounts/{acc.id}/deposits", "REST deposit probe", headers=h,
                      body={"amount": 1, "currency": "EUR"})
        return None if r is None else r.status_code

    def item2(self) -> None:
        acc = self.accounts
        d, a = acc["D"], acc["A"]
        queries = {
            "me": ("{ me { id email name } }", None),
            "account": ("query($id: ID!){ account(id: $id) { id email name } }", {"id": d.id}),
            "wallet": ("query($id: ID!){ wallet(accountId: $id) { balance { amount } "
                       "transactions { kind } } }", {"id": d.id}),
            "orders": ("{ orders(first: 10) { edges { node { id status } } } }", None),
            "order": ("query($id: ID!){ order(id: $id) { id status } }",
                      {"id": self.orders.get("OD") or d.id}),
            "history(account)": (self.HISTORY_Q, {"t": "account", "id": d.id}),
            "history(wallet)": (self.HISTORY_Q, {"t": "wallet", "id": d.id}),
            "audit": ("query($a: String){ audit(actor: $a) { edges { node { eventType } } } }",
                      {"a": d.id}),
            "policies": ("query($s: String!){ policies(subject: $s) { policies } }",
                         {"s": d.id}),
            "can": ("query($s: String!, $r: String!){ can(subject: $s, action: \"get\", "
                    "resourceType: \"accounts\", resourceId: $r) }", {"s": d.id, "r": d.id}),
            "products": ("{ products(first: 1) { edges { node { id } } } }", None),
        }
        # Sanity: D can read before deletion.
        _, doc = self.gql(d.access, "{ me { id } }", None, "me before delete")
        if not self.gql_has_data(doc):
            self.tally.info.append("D could not read `me` before its deletion")
        r = self.rest("DELETE", f"/accounts/{d.id}", "delete own account", token=d.access)
        if r is None or r.status_code != 200:
            self.tally.fail(f"DELETE /accounts/{{id}} by its owner -> "
                            f"{r.status_code if r else 'no answer'}")
        time.sleep(0.3)
        st = self.rest_probe(f"Bearer {d.access}", d)
        if st != 401:
            self.tally.fail(f"REST with a deleted account's token -> {st}")
        for name, (q, v) in queries.items():
            _, doc = self.gql(d.access, q, v, f"deleted account: {name}")
            if self.gql_has_data(doc):
                self.tally.leak(f"deleted account's token reads `{name}` on GraphQL")
            elif "UNAUTHENTICATED" not in self.gql_codes(doc):
                self.tally.fail(f"deleted account `{name}` -> {sorted(self.gql_codes(doc))} "
                                "(want UNAUTHENTICATED)")
        r = self.refresh(d.refresh, "refresh of a deleted account")
        if r is not None and r.status_code == 200:
            self.tally.leak("refresh token of a deleted account buys new tokens")
        elif r is not None and r.status_code != 401:
            self.tally.fail(f"refresh of a deleted account -> {r.status_code}")
        r = self.login(d, "login of a deleted account")
        if r is not None and r.status_code == 200:
            self.tally.leak("a deleted account can log in")

        # The same Authorization forms on REST and GraphQL.
        tok = a.access
        must_accept = [f"Bearer {tok}", f"bearer {tok}", f"BEARER {tok}", f"BeArEr {tok}"]
        consistent_only = [f"Bearer  {tok}", f"Bearer\t{tok}"]
        must_refuse = [f"Basic {tok}", f"Token {tok}", tok, "Bearer", f"Bearer x{tok}",
                       f"Bearer {tok}, Bearer {tok}", f"Bearer {tok[:-2]}"]
        for form in must_accept + consistent_only + must_refuse:
            shown = form.replace(tok, "<token>")
            st = self.rest_probe(form, a)
            _, doc = self.gql(None, "{ me { id } }", None, f"auth form {shown!r}", auth=form)
            rest_ok = st is not None and st < 300
            gql_ok = self.gql_has_data(doc)
            if rest_ok != gql_ok:
                self.tally.fail(f"Authorization {shown!r}: REST {'accepts' if rest_ok else st}, "
                                f"GraphQL {'accepts' if gql_ok else sorted(self.gql_codes(doc))}")
            if form in must_accept and not (rest_ok and gql_ok):
                self.tally.fail(f"Authorization {shown!r} (scheme is case-insensitive) refused")
            if form in must_refuse:
                if rest_ok or gql_ok:
                    self.tally.leak(f"Authorization {shown!r} accepted")
                if st is not None and not rest_ok and st != 401:
                    self.tally.fail(f"Authorization {shown!r}: REST {st} (want 401)")
                if not gql_ok and "UNAUTHENTICATED" not in self.gql_codes(doc):
                    self.tally.fail(f"Authorization {shown!r}: GraphQL "
                                    f"{sorted(self.gql_codes(doc))} (want UNAUTHENTICATED)")

        # Forged and misused tokens, signed with the server's own key where it helps.
        now = int(time.time())
        forged = {"refresh token used as access token": a.refresh}
        if self.jwt_key:
            key = self.jwt_key
            base = {"sub": a.id, "jti": str(uuid.uuid4()), "iat": now, "exp": now + 600,
                    "typ": "access"}
            forged.update({
                "expired access token": sign_jwt({**base, "iat": now - 700, "exp": now - 60}, key),
                "token without typ": sign_jwt({k: v for k, v in base.items() if k != "typ"}, key),
                "token with typ=refresh": sign_jwt({**base, "typ": "refresh"}, key),
                "token with typ=admin": sign_jwt({**base, "typ": "admin"}, key),
                "token without exp": sign_jwt({k: v for k, v in base.items() if k != "exp"}, key),
                "HS512 token with the right key": sign_jwt(base, key, "HS512"),
                "token for a deleted account": sign_jwt({**base, "sub": d.id}, key),
                "token for an unknown account": sign_jwt({**base, "sub": str(uuid.uuid4())}, key),
                "token with a non-uuid sub": sign_jwt({**base, "sub": "admin"}, key),
            })
            control = sign_jwt(base, key)
            st = self.rest_probe(f"Bearer {control}", a)
            _, doc = self.gql(control, "{ me { id } }", None, "control: well-formed token")
            if not (st == 201 and self.gql_has_data(doc)):
                self.tally.info.append(f"a well-formed token signed with the stored key was "
                                       f"refused (REST {st}); forged-token checks are weaker")
        forged["alg none"] = sign_jwt({"sub": a.id, "jti": str(uuid.uuid4()), "iat": now,
                                       "exp": now + 600, "typ": "access"}, None, "none")
        forged["wrong key"] = sign_jwt({"sub": acc["ADM"].id, "jti": str(uuid.uuid4()),
                                        "iat": now, "exp": now + 600, "typ": "access"},
                                       b"not-the-key-not-the-key-not-the-key!")
        for name, token in forged.items():
            target = d if "deleted" in name else a
            st = self.rest_probe(f"Bearer {token}", target)
            if st is not None and st < 300:
                self.tally.leak(f"REST accepts a {name}")
            elif st is not None and st != 401:
                self.tally.fail(f"REST {name} -> {st} (want 401)")
            _, doc = self.gql(token, "query($id: ID!){ me { id email } wallet(accountId: $id) "
                              "{ balance { amount } } }", {"id": target.id}, f"GraphQL {name}")
            if self.gql_has_data(doc):
                self.tally.leak(f"GraphQL accepts a {name}")
            elif not ({"UNAUTHENTICATED"} & self.gql_codes(doc)):
                self.tally.fail(f"GraphQL {name} -> {sorted(self.gql_codes(doc))} "
                                "(want UNAUTHENTICATED)")

    # ---- item 3: NUL and control characters in every text input ------------------------

    def item3(self) -> None:
        acc = self.accounts
        a, s, adm = acc["A"], acc["S"], acc["ADM"]
        p1 = self.products["P1"]
        # A cancelable order per attempt would cost a placement each; one order is enough: a
        # refused reason never reaches the domain, an accepted one shows up as a wrong status.
        cancel_order = self.place_order(a, [{"product_id": p1, "quantity": 1}],
                                        "order for item 3")

        def fresh_account_body() -> dict:
            return {"email": f"cc-{rand_word(10)}@example.com", "password": "pw-" + rand_word(12),
                    "name": "Control", "role": "customer"}

        # (label, method, path, token, body factory, field path, strict)
        routes: list[tuple] = []

        def route(label, method, path, token, body, fld, strict=True):
            routes.append((label, method, path, token, body, fld, strict))

        for fld in ("email", "name", "role"):
            route("POST /accounts", "POST", "/accounts", None, fresh_account_body, fld)
        route("POST /accounts", "POST", "/accounts", None, fresh_account_body, "password", False)
        for fld in ("email", "password"):
            route("POST /sessions", "POST", "/sessions", None,
                  lambda: {"email": a.email, "password": a.password}, fld, False)
        route("POST /sessions/refresh", "POST", "/sessions/refresh", None,
              lambda: {"refresh_token": "x.y.z"}, "refresh_token", False)
        route("POST /accounts/{id}/deposits", "POST", f"/accounts/{a.id}/deposits", a.access,
              lambda: {"amount": 1, "currency": "EUR"}, "currency")
        for fld in ("name", "description", "currency"):
            route("POST /products", "POST", "/products", s.access,
                  lambda: {"name": "CC", "description": "d", "price": 100, "currency": "EUR",
                           "stock": 1}, fld)
            route("PATCH /products/{id}", "PATCH", f"/products/{p1}", s.access,
                  lambda: {"name": "Teapot P1", "description": "Blue", "currency": "EUR"}, fld)
        route("POST /orders", "POST", "/orders", a.access,
              lambda: {"items": [{"product_id": p1, "quantity": 1}], "currency": "EUR"},
              "currency")
        route("POST /orders", "POST", "/orders", a.access,
              lambda: {"items": [{"product_id": p1, "quantity": 1}], "currency": "EUR"},
              "items.0.product_id")
        if cancel_order:
            route("POST /orders/{id}/cancel", "POST", "CANCEL", a.access,
                  lambda: {"reason": "why"}, "reason")
        for method in ("PUT", "DELETE"):
            route(f"{method} /policies", method, "/policies", adm.access,
                  lambda: {"policy": f"{acc['B'].id}:get:audit:{acc['B'].id}"}, "policy")

        def put_field(body: dict, path: str, c: str) -> None:
            parts = path.split(".")
            obj = body
            for p in parts[:-1]:
                obj = obj[int(p)] if p.isdigit() else obj[p]
            last = parts[-1]
            val = obj[last]
            obj[last] = val[:2] + c + val[2:] if len(val) > 2 else val + c

        for label, method, path, token, body_fn, fld, strict in routes:
            for c in CONTROL_CHARS:
                body = body_fn()
                put_field(body, fld, c)
                what = f"{label} {fld} {cc_name(c)}"
                if path == "CANCEL":
                    # A fresh order, canceled at once: before the saga can approve it.
                    o = self.place_order(a, [{"product_id": p1, "quantity": 1}], "order")
                    path_ = f"/orders/{o or cancel_order}/cancel"
                else:
                    path_ = path
                r = self.rest(method, path_, what, token=token, body=body)
                if r is None or r.status_code >= 500:
                    continue
                if r.status_code == 429:
                    self.tally.note("info", f"{label} answered 429 (rate limit): inconclusive")
                    continue
                if path == "CANCEL" and r.status_code == 409:
                    self.tally.note("info", "cancel answered 409 (order no longer cancelable): "
                                    "inconclusive")
                    continue
                if r.status_code < 300:
                    if strict or label == "POST /sessions":
                        self.tally.fail(f"{label} `{fld}` with a control character accepted "
                                        f"({r.status_code})")
                    continue
                if strict:
                    if r.status_code != 422:
                        self.tally.fail(f"{label} `{fld}` control character -> {r.status_code} "
                                        "(want 422)")
                    else:
                        try:
                            fields = [e.get("field") for e in r.json()["errors"]]
                        except Exception:
                            fields = []
                        if not any(fields):
                            self.tally.fail(f"{label} `{fld}` 422 names no field")
        # A control character in a JSON key (an unknown field).
        for c in ("\x00", "\x1b"):
            r = self.rest("POST", f"/accounts/{a.id}/deposits", f"key with {cc_name(c)}",
                          token=a.access, body={"amount": 1, "currency": "EUR", f"x{c}": 1})
            if r is not None and r.status_code < 300:
                self.tally.fail("unknown field with a control character in its name accepted")
        # Path ids with control characters.
        for c in ("%00", "%01", "%1B", "%7F", "%C2%85"):
            for method, path, body in (
                ("POST", f"/accounts/a{c}b/deposits", {"amount": 1, "currency": "EUR"}),
                ("PATCH", f"/products/{c}", {"name": "x"}),
                ("POST", f"/products/{p1[:8]}{c}/restock", {"quantity": 1}),
                ("POST", f"/orders/{c}/cancel", {}),
                ("DELETE", f"/accounts/{c}", None),
            ):
                r = self.rest(method, path, f"path id {c}", token=adm.access, body=body)
                if r is not None and (r.status_code < 300 or r.status_code not in (400, 404)):
                    if r.status_code < 500:
                        self.tally.fail(f"{method} path id with {c} -> {r.status_code} "
                                        "(want 400)")
        # Headers with control characters, sent raw (clients refuse to).
        port = self.server.port
        dep_body = json.dumps({"amount": 1, "currency": "EUR"}).encode()
        for hname, hval in ((b"Idempotency-Key", b"k\x01y"), (b"Idempotency-Key", b"k\x85y"),
                            (b"Idempotency-Key", b"k\x7fy"), (b"If-Match", b"\"1\x01\""),
                            (b"X-Min-Position", b"1\x01")):
            path = b"/graphql" if hname == b"X-Min-Position" else \
                f"/api/v1/accounts/{a.id}/deposits".encode()
            body = (json.dumps({"query": "{ me { id } }"}).encode()
                    if hname == b"X-Min-Position" else dep_body)
            req = (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                   + a.access.encode() + b"\r\nContent-Type: application/json\r\n" + hname
                   + b": " + hval + b"\r\nContent-Length: " + str(len(body)).encode()
                   + b"\r\nConnection: close\r\n\r\n" + body)
            self.tally.requests += 1
            st, ans = raw_http(port, req)
            what = f"header {hname.decode()} with {hval!r}"
            if st is None:
                self.tally.fail(f"{what}: no answer")
            elif st >= 500:
                self.tally.server_error(f"{what} -> {st}")
            self.scan(what, ans.decode(errors="replace"))

        # GraphQL String and ID arguments.
        gq = [
            ("products(after)", "query($s: String){ products(after: $s) { edges { cursor } } }"),
            ("products(filter.nameContains)",
             "query($s: String){ products(filter: {nameContains: $s}) { edges { cursor } } }"),
            ("products(filter.sellerId)",
             "query($s: ID){ products(filter: {sellerId: $s}) { edges { cursor } } }"),
            ("orders(after)", "query($s: String){ orders(after: $s) { edges { cursor } } }"),
            ("orders(accountId)", "query($s: ID){ orders(accountId: $s) { edges { cursor } } }"),
            ("audit(actor)", "query($s: String){ audit(actor: $s) { edges { cursor } } }"),
            ("audit(resourceType)",
             "query($s: String){ audit(resourceType: $s) { edges { cursor } } }"),
            ("audit(resourceId)",
             "query($s: String){ audit(resourceType: \"order\", resourceId: $s) "
             "{ edges { cursor } } }"),
            ("audit(after)", "query($s: String){ audit(after: $s) { edges { cursor } } }"),
            ("policies(subject)", "query($s: String!){ policies(subject: $s) { policies } }"),
            ("can(subject)", "query($s: String!){ can(subject: $s, action: \"get\", "
             "resourceType: \"orders\", resourceId: \"x\") }"),
            ("can(action)", "query($s: String!, $me: String!){ can(subject: $me, action: $s, "
             "resourceType: \"orders\", resourceId: \"x\") }"),
            ("can(resourceType)", "query($s: String!, $me: String!){ can(subject: $me, "
             "action: \"get\", resourceType: $s, resourceId: \"x\") }"),
            ("can(resourceId)", "query($s: String!, $me: String!){ can(subject: $me, "
             "action: \"get\", resourceType: \"orders\", resourceId: $s) }"),
            ("history(aggregateType)",
             "query($s: String!, $me: ID!){ history(aggregateType: $s, aggregateId: $me) "
             "{ position } }"),
            ("history(aggregateId)",
             "query($s: ID!){ history(aggregateType: \"account\", aggregateId: $s) "
             "{ position } }"),
            ("account(id)", "query($s: ID!){ account(id: $s) { id } }"),
            ("product(id)", "query($s: ID!){ product(id: $s) { id } }"),
            ("order(id)", "query($s: ID!){ order(id: $s) { id } }"),
            ("wallet(accountId)", "query($s: ID!){ wallet(accountId: $s) { accountId } }"),
        ]
        for name, q in gq:
            for c in CONTROL_CHARS:
                base_val = a.id if ("Id" in name or "(id)" in name or "subject" in name
                                    or "actor" in name or "sellerId" in name) else "abcd"
                val = base_val[:4] + c + base_val[4:]
                variables = {"s": val}
                if "$me" in q:
                    variables["me"] = a.id
                _, doc = self.gql(a.access, q, variables, f"GraphQL {name} {cc_name(c)}",
                                  wait=False)
                if doc is None:
                    continue
                codes = self.gql_codes(doc)
                if not codes:
                    self.tally.fail(f"GraphQL {name} with a control character accepted")
                elif "BAD_USER_INPUT" not in codes and "INTERNAL_SERVER_ERROR" not in codes:
                    self.tally.fail(f"GraphQL {name} control character -> {sorted(codes)} "
                                    "(want BAD_USER_INPUT)")

    # ---- item 4: body limits and query cost --------------------------------------------

    def item4(self) -> None:
        acc = self.accounts
        a, adm = acc["A"], acc["ADM"]
        p1 = self.products["P1"]
        o = self.orders.get("O1") or str(uuid.uuid4())
        routes = [
            ("POST", "/api/v1/accounts"), ("POST", "/api/v1/sessions"),
            ("POST", "/api/v1/sessions/refresh"), ("POST", f"/api/v1/accounts/{a.id}/deposits"),
            ("POST", "/api/v1/products"), ("PATCH", f"/api/v1/products/{p1}"),
            ("POST", f"/api/v1/products/{p1}/restock"), ("POST", "/api/v1/orders"),
            ("POST", f"/api/v1/orders/{o}/cancel"), ("PUT", "/api/v1/policies"),
            ("DELETE", "/api/v1/policies"), ("DELETE", f"/api/v1/accounts/{acc['X'].id}"),
            ("POST", "/graphql"),
        ]

        def big_body(size: int, graphql: bool) -> bytes:
            if graphql:
                head = b'{"query":"{ __typename }","variables":{"pad":"'
            else:
                head = b'{"pad":"'
            tail = b'"}}' if graphql else b'"}'
            return head + b"x" * (size - len(head) - len(tail)) + tail

        for method, path in routes:
            g = path == "/graphql"
            variants = [(70_000, False), (2 * 1024 * 1024, False), (2 * 1024 * 1024, True)]
            if method == "DELETE" and "/accounts/" in path:
                # Takes no body: a length-limit layer can refuse a declared length, but a chunked
                # body the route never reads is harmless.
                variants = variants[:2]
            for size, chunked in variants:
                body = big_body(size, g)
                content: Any = body
                if chunked:
                    def gen(b=body):
                        for i in range(0, len(b), 65536):
                            yield b[i:i + 65536]
                    content = gen()
                label = f"{method} {path.split('/')[-1] if not g else '/graphql'} " \
                        f"{size // 1024} KiB{' chunked' if chunked else ''}"
                self.tally.requests += 1
                try:
                    r = self.client.request(method, self.base + path, content=content,
                                            headers={"content-type": "application/json",
                                                     "authorization": f"Bearer {adm.access}"})
                except httpx.HTTPError as e:
                    # The server may close the connection after its 413 while we still send.
                    self.tally.info.append(f"{label}: connection closed ({type(e).__name__})")
                    continue
                if r.status_code >= 500:
                    self.tally.server_error(f"{label} -> {r.status_code}")
                elif r.status_code != 413:
                    self.tally.fail(f"{method} {'/graphql' if g else path.split('/')[3]} body "
                                    f"over the limit -> {r.status_code} (want 413)")

        # Alias bombs and list-heavy queries (each under 64 KiB, so only cost can stop them).
        def aliases(n: int, field_: str) -> str:
            return "query($t: String!, $w: ID!){ " + " ".join(
                f"a{i}: {field_}" for i in range(n)) + " }"

        bombs = [
            ("500 aliases of history(wallet) { payload }", aliases(
                500, "history(aggregateType: $t, aggregateId: $w) { payload }"),
             {"t": "wallet", "w": a.id}),
            ("1200 aliases of wallet { transactions }", aliases(
                1200, "wallet(accountId: $w) { transactions { kind } }"),
             {"t": "wallet", "w": a.id}),
            ("2400 aliases of history(account) { payload } (>64 KiB)", aliases(
                2400, "history(aggregateType: $t, aggregateId: $w) { payload }"),
             {"t": "account", "w": a.id}),
            ("60 aliases of orders(first: 100) { items { product } }", aliases(
                60, "orders(first: 100) { edges { node { items { product { name } } } } }"),
             {"t": "x", "w": a.id}),
        ]
        cap = 8 * 1024 * 1024
        for label, q, v in bombs:
            self.tally.requests += 1
            t0 = time.monotonic()
            size = 0
            status = None
            head = b""
            try:
                with self.client.stream("POST", self.base + "/graphql",
                                        json={"query": q, "variables": v}, timeout=30,
                                        headers={"authorization": f"Bearer {a.access}"}) as r:
                    status = r.status_code
                    for chunk in r.iter_bytes():
                        if len(head) < 4096:
                            head += chunk[:4096]
                        size += len(chunk)
                        if size > cap:
                            break
            except httpx.TimeoutException:
                self.tally.fail(f"{label}: no answer in 30 s")
                continue
            except httpx.HTTPError as e:
                self.tally.fail(f"{label}: {type(e).__name__}")
                continue
            took = time.monotonic() - t0
            self.tally.info.append(f"{label}: HTTP {status}, {size / 1e6:.1f} MB"
                                   f"{'+' if size > cap else ''} in {took:.1f} s")
            if status and status >= 500:
                self.tally.server_error(f"{label} -> {status}")
            accepted = status == 200 and b'"data":{' in head.replace(b" ", b"")
            if b"INTERNAL_SERVER_ERROR" in head:
                self.tally.server_error(f"{label} -> INTERNAL_SERVER_ERROR")
            if accepted:
                self.tally.fail(f"{label} executed ({size / 1e6:.1f} MB answer)")
            elif size > 1_000_000 or took > 5:
                self.tally.fail(f"{label}: refused but {size / 1e6:.1f} MB / {took:.1f} s")
        # A batch request: many operations in one body must not bypass the cost limit.
        batch = [{"query": "query($t: String!, $w: ID!){ history(aggregateType: $t, "
                  "aggregateId: $w) { payload } }", "variables": {"t": "wallet", "w": a.id}}] * 300
        r = self.request("POST", self.base + "/graphql", "batch of 300 history queries",
                         json=batch, headers={"authorization": f"Bearer {a.access}"}, timeout=30)
        if r is not None:
            self.tally.info.append(f"batch of 300: HTTP {r.status_code}, {len(r.content)} bytes, "
                                   f"{r.headers.get('content-type')}")
            if r.status_code == 200 and len(r.content) > 1_000_000:
                self.tally.fail(f"batch of 300 history queries executed "
                                f"({len(r.content) / 1e6:.1f} MB)")

        # Heavy queries in parallel while a cheap query and a command are timed.
        heavy_q = aliases(200, "history(aggregateType: $t, aggregateId: $w) { payload }")
        heavy_v = {"t": "wallet", "w": a.id}
        cheap_q = "{ me { id } }"
        base_lat = []
        for _ in range(15):
            t0 = time.monotonic()
            self.gql(a.access, cheap_q, None, "cheap baseline", wait=False)
            base_lat.append(time.monotonic() - t0)
        base_p50 = statistics.median(base_lat)
        threshold = max(10 * base_p50, 0.25)
        stop = threading.Event()
        heavy_count = collections.Counter()

        def heavy_worker() -> None:
            with httpx.Client(timeout=30) as c:
                while not stop.is_set():
                    try:
                        with c.stream("POST", self.base + "/graphql",
                                      json={"query": heavy_q, "variables": heavy_v},
                                      headers={"authorization": f"Bearer {a.access}"}) as r:
                            # Read it all: at most one heavy query in flight per worker.
                            for _ in r.iter_bytes():
                                pass
                            heavy_count[r.status_code] += 1
                    except httpx.HTTPError:
                        heavy_count["error"] += 1

        workers = [threading.Thread(target=heavy_worker, daemon=True) for _ in range(4)]
        for w in workers:
            w.start()
        time.sleep(0.5)
        lat = []
        slow = 0
        end = time.monotonic() + 8
        while time.monotonic() < end:
            t0 = time.monotonic()
            r, doc = self.gql(a.access, cheap_q, None, "cheap query under heavy load",
                              wait=False, timeout=10)
            took = time.monotonic() - t0
            lat.append(took)
            if r is not None and not self.gql_has_data(doc):
                self.tally.fail("cheap query failed under heavy load "
                                f"({sorted(self.gql_codes(doc))})")
            elif took > threshold:
                slow += 1
            t0 = time.monotonic()
            r = self.rest("POST", f"/accounts/{a.id}/deposits", "deposit under heavy load",
                          token=a.access, body={"amount": 1, "currency": "EUR"},
                          timeout=10)
            took = time.monotonic() - t0
            if r is not None and r.status_code != 201 and r.status_code < 500:
                self.tally.fail(f"deposit under heavy load -> {r.status_code}")
            elif took > threshold:
                slow += 1
            time.sleep(0.1)
        stop.set()
        for w in workers:
            w.join(timeout=35)
        self.tally.requests += sum(heavy_count.values())
        self.tally.http_5xx += sum(v for k, v in heavy_count.items()
                                   if isinstance(k, int) and k >= 500)
        if slow:
            self.tally.fail(f"cheap request slower than {threshold * 1000:.0f} ms "
                            "under heavy queries", slow)
        self.tally.info.append(
            f"cheap query p50 {base_p50 * 1000:.1f} ms alone, {percentile(lat, 50) * 1000:.1f} / "
            f"p99 {percentile(lat, 99) * 1000:.1f} ms beside 4 heavy clients "
            f"(heavy answers: {dict(heavy_count)})")
        pool_timeouts = self.server.log_count("pool timed out")
        if pool_timeouts:
            self.tally.info.append(f"server log: {pool_timeouts} pool time-outs")

    # ---- item 5: idle and slowloris connections ----------------------------------------

    def item5(self, n_conns: int = 1500, hold: float = 35.0) -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < n_conns + 200:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n_conns + 500), hard))
        port = self.server.port
        conns: list[tuple[socket.socket, str]] = []
        connect_errors = collections.Counter()
        # Non-blocking connects in batches of 100, each waited for up to 2 s (so the kernel's SYN
        # queue keeps up); a server that stopped accepting leaves them in its listen backlog or,
        # the backlog full, unanswered.
        pending: dict[socket.socket, str] = {}
        t_open = time.monotonic()
        phase_end = t_open + 30
        for i in range(n_conns):
            kind = "idle" if i % 2 == 0 else "slowloris"
            s = socket.socket()
            s.setblocking(False)
            err = s.connect_ex((HOST, port))
            if err not in (0, 115):  # 115: EINPROGRESS
                connect_errors[os.strerror(err)] += 1
                s.close()
            else:
                pending[s] = kind
            if len(pending) >= 100 or i == n_conns - 1:
                complete_connects(pending, conns, connect_errors,
                                  min(time.monotonic() + 2, phase_end))
                for s in pending:
                    connect_errors["connect not completed in 2 s"] += 1
                    s.close()
                pending.clear()
        self.tally.info.append(f"opening the connections took {time.monotonic() - t_open:.1f} s")
        self.tally.requests += n_conns
        self.tally.info.append(f"opened {len(conns)} of {n_conns} connections "
                               f"(errors: {dict(connect_errors)}), server soft limit "
                               f"{self.server.nofile_soft}")
        closed: dict[int, float] = {}
        t_start = time.monotonic()
        probe_fail = 0
        fileno = {s: s.fileno() for s, _ in conns}
        probes = 0
        probe_lat = []
        last_trickle = time.monotonic()
        while time.monotonic() - t_start < hold:
            # Which connections did the server close (or answer)?
            open_socks = [s for s, _ in conns if fileno[s] not in closed]
            for s in ready(open_socks, select.POLLIN, 0):
                try:
                    s.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                closed.setdefault(fileno[s], time.monotonic() - t_start)
            if time.monotonic() - last_trickle > 5:
                last_trickle = time.monotonic()
                for s, kind in conns:
                    if kind == "slowloris" and fileno[s] not in closed:
                        try:
                            s.send(b"X-a: b\r\n")
                        except OSError:
                            closed.setdefault(fileno[s], time.monotonic() - t_start)
            probes += 1
            t0 = time.monotonic()
            st, _ = raw_http(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                             timeout=2)
            probe_lat.append(time.monotonic() - t0)
            if st != 200:
                probe_fail += 1
                self.tally.note("fail", f"/healthz probe during the flood -> {st or 'no answer'}")
            time.sleep(0.5)
        self.tally.requests += probes
        self.tally.failures += probe_fail
        still_open = sum(1 for s, _ in conns if fileno[s] not in closed)
        open_by_kind = collections.Counter(k for s, k in conns if fileno[s] not in closed)
        if still_open:
            self.tally.fail(f"connection still open after {hold:.0f} s (idle or slowloris)",
                            still_open)
        if closed:
            times = sorted(closed.values())
            self.tally.info.append(f"server closed {len(closed)} connections, median after "
                                   f"{statistics.median(times):.1f} s")
        self.tally.info.append(f"still open after {hold:.0f} s: {dict(open_by_kind)}; /healthz "
                               f"probes {probes - probe_fail}/{probes} ok, p50 "
                               f"{percentile(probe_lat, 50) * 1000:.0f} ms")
        for s, _ in conns:
            try:
                s.close()
            except OSError:
                pass
        time.sleep(1.5)
        self.tally.requests += 1
        try:
            st = httpx.get(self.base + "/healthz", timeout=5).status_code
        except httpx.HTTPError as e:
            st = type(e).__name__
        if st != 200:
            self.tally.fail(f"/healthz after the flood -> {st}")
        emfile = self.server.log_count("Too many open files")
        if emfile:
            self.tally.info.append(f"server log: 'Too many open files' {emfile}x")

    # ---- item 6: trailing data and content types ---------------------------------------

    def item6(self) -> None:
        acc = self.accounts
        a, s, adm, t6 = acc["A"], acc["S"], acc["ADM"], acc["T6"]
        p1 = self.products["P1"]
        state = {"refresh": t6.refresh}

        def cancel_path() -> str:
            o = self.place_order(a, [{"product_id": p1, "quantity": 1}], "order for item 6")
            return f"/orders/{o or uuid.uuid4()}/cancel"

        routes = [
            ("POST /accounts", "POST", lambda: "/accounts", None,
             lambda: {"email": f"t-{rand_word(10)}@example.com", "password": "pw-" + rand_word(),
                      "name": "Trail"}),
            ("POST /sessions", "POST", lambda: "/sessions", None,
             lambda: {"email": a.email, "password": a.password}),
            ("POST /sessions/refresh", "POST", lambda: "/sessions/refresh", None,
             lambda: {"refresh_token": state["refresh"]}),
            ("POST deposits", "POST", lambda: f"/accounts/{a.id}/deposits", a.access,
             lambda: {"amount": 1, "currency": "EUR"}),
            ("POST /products", "POST", lambda: "/products", s.access,
             lambda: {"name": "Trail", "price": 100, "currency": "EUR", "stock": 1}),
            ("PATCH /products/{id}", "PATCH", lambda: f"/products/{p1}", s.access,
             lambda: {"description": "Blue"}),
            ("POST restock", "POST", lambda: f"/products/{p1}/restock", s.access,
             lambda: {"quantity": 1}),
            ("POST /orders", "POST", lambda: "/orders", a.access,
             lambda: {"items": [{"product_id": p1, "quantity": 1}], "currency": "EUR"}),
            ("POST cancel", "POST", cancel_path, a.access, lambda: {"reason": "r"}),
            ("PUT /policies", "PUT", lambda: "/policies", adm.access,
             lambda: {"policy": f"{acc['B'].id}:get:audit:{acc['B'].id}"}),
            ("DELETE /policies", "DELETE", lambda: "/policies", adm.access,
             lambda: {"policy": f"{acc['B'].id}:get:audit:{acc['B'].id}"}),
            ("POST /graphql", "POST", None, a.access, lambda: {"query": "{ me { id } }"}),
        ]
        trailers = [b" trailing", b"{}", b"[]", b'\n{"a":1}', b"1", b'"s"', b"}", b"\x00"]
        content_types = ["text/plain", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x", None, "application/jsonx",
                         "text/json"]

        def send(label, method, path_fn, token, body: bytes, ctype: str | None):
            st = send_(label, method, path_fn, token, body, ctype)
            if st == 429:
                self.tally.note("info", f"{label.split(' + ')[0]} answered 429 (rate limit): "
                                "inconclusive")
                return None
            return st

        def send_(label, method, path_fn, token, body: bytes, ctype: str | None):
            url = self.base + "/graphql" if path_fn is None else self.api + path_fn()
            h = {}
            if ctype is not None:
                h["content-type"] = ctype
            if token:
                h["authorization"] = f"Bearer {token}"
            r = self.request(method, url, label, content=body, headers=h)
            if r is not None and label.startswith("POST /sessions/refresh") and \
                    r.status_code == 200:
                try:
                    state["refresh"] = r.json()["refresh_token"]
                    self.secrets.add_refresh_token(state["refresh"])
                except Exception:
                    pass
            if r is not None and path_fn is None and r.status_code == 200:
                # GraphQL: an accepted body answers data.
                try:
                    if not r.json().get("data"):
                        return 400
                except Exception:
                    return 400
            return None if r is None else r.status_code

        for label, method, path_fn, token, body_fn in routes:
            for tr in trailers:
                good = json.dumps(body_fn()).encode()
                st = send(f"{label} + trailing {tr[:8]!r}", method, path_fn, token,
                          good + tr, "application/json")
                if st is None or st >= 500:
                    continue
                if st < 300:
                    self.tally.fail(f"{label}: body with trailing data accepted ({st})")
                elif st != 400:
                    self.tally.fail(f"{label}: body with trailing data -> {st} (want 400)")
            st = send(f"{label} invalid UTF-8", method, path_fn, token, b'{"\xff":1}',
                      "application/json")
            if st is not None and st < 500 and st != 400:
                self.tally.fail(f"{label}: invalid UTF-8 body -> {st} (want 400)")
            for ct in content_types:
                st = send(f"{label} content-type {ct}", method, path_fn, token,
                          json.dumps(body_fn()).encode(), ct)
                if st is None or st >= 500:
                    continue
                if st != 415:
                    self.tally.fail(f"{label}: wrong or no content-type -> "
                                    f"{'accepted' if st < 300 else st} (want 415)")
        # Controls: whitespace around a body and a charset parameter are fine.
        for label, method, path_fn, token, body_fn in routes[:5] + routes[-1:]:
            st = send(f"{label} whitespace around", method, path_fn, token,
                      b" \n" + json.dumps(body_fn()).encode() + b" \r\n\t",
                      "application/json; charset=utf-8")
            if st is not None and st >= 300 and st < 500:
                self.tally.fail(f"{label}: JSON with surrounding whitespace refused ({st})")

    # ---- item 7: privacy on shared aggregates ------------------------------------------

    def item7(self) -> None:
        acc = self.accounts
        a = acc["A"]
        a_orders = [self.orders[k] for k in ("O1", "O2", "O4") if self.orders.get(k)]
        personal = {o: "A's order id" for o in a_orders}
        personal[a.id] = "A's account id"
        personal[a.email] = "A's e-mail"

        def check(viewer: str, label: str, text: str, count: bool) -> None:
            kinds = sorted({k for v, k in personal.items() if v in text})
            for k in kinds:
                if count:
                    self.tally.leak(f"{k} in {label} as {viewer}")
                else:
                    self.tally.note("info", f"{k} in {label} as the product's seller")

        for viewer in ("B", "S2", "S"):
            v = acc[viewer]
            count = viewer != "S"  # the product's own seller: reported, not counted
            for key in ("P1", "P2"):
                pid = self.products[key]
                r, _ = self.gql(v.access, self.HISTORY_Q, {"t": "product", "id": pid},
                                f"history(product {key})")
                if r is not None:
                    check(viewer, f"history(product {key})", r.text, count)
                r, _ = self.gql(v.access, "query($id: String){ audit(resourceType: \"product\", "
                                "resourceId: $id, first: 100) { edges { node { actor "
                                "correlationId causationId requestId } } } }", {"id": pid},
                                f"audit(product {key})")
                if r is not None:
                    check(viewer, f"audit(product {key})", r.text, count)
                r, _ = self.gql(v.access, "query($id: ID!){ product(id: $id) { id name "
                                "stockReserved } }", {"id": pid}, "product")
                if r is not None:
                    check(viewer, "product", r.text, count)
            r, _ = self.gql(v.access, "query($a: ID){ orders(accountId: $a, first: 100) "
                            "{ edges { node { id accountId } } } }", {"a": a.id},
                            "orders(accountId: A)")
            if r is not None:
                check(viewer, "orders(accountId: A)", r.text, True)
            for o in a_orders:
                _, doc = self.gql(v.access, "query($id: ID!){ order(id: $id) { id accountId } }",
                                  {"id": o}, "order(A's)")
                if self.gql_has_data(doc):
                    self.tally.leak(f"order(A's order) readable by {viewer}")
                _, doc = self.gql(v.access, self.HISTORY_Q, {"t": "order", "id": o},
                                  "history(A's order)")
                if self.gql_has_data(doc):
                    self.tally.leak(f"history(A's order) readable by {viewer}")
            r, _ = self.gql(v.access, "{ products(first: 100) { edges { node { id sellerId "
                            "stockReserved } } } }", None, "products")
            if r is not None:
                check(viewer, "products", r.text, count)

    # ---- item 8: policies with subject * -----------------------------------------------

    def item8(self) -> None:
        acc = self.accounts
        adm, b, a = acc["ADM"], acc["B"], acc["A"]
        o1 = self.orders.get("O1") or str(uuid.uuid4())

        def b_reads_order() -> bool:
            _, doc = self.gql(b.access, "query($id: ID!){ order(id: $id) { id } }",
                              {"id": o1}, "B reads A's order")
            return self.gql_has_data(doc)

        def b_reads_account() -> bool:
            _, doc = self.gql(b.access, "query($id: ID!){ account(id: $id) { id } }",
                              {"id": a.id}, "B reads A's account")
            return self.gql_has_data(doc)

        def b_creates_product() -> bool:
            r = self.rest("POST", "/products", "B creates a product", token=b.access,
                          body={"name": "Star", "price": 100, "currency": "EUR", "stock": 1})
            return r is not None and r.status_code == 201

        def b_deposits_to_a() -> bool:
            r = self.rest("POST", f"/accounts/{a.id}/deposits", "B deposits to A",
                          token=b.access, body={"amount": 1, "currency": "EUR"})
            return r is not None and r.status_code == 201

        cases = [
            (f"*:get:orders:{o1}", ("get", "orders", o1), b_reads_order),
            (f"*:get:accounts:{a.id}", ("get", "accounts", a.id), b_reads_account),
            ("*:post:products:*", ("post", "products", "x"), b_creates_product),
            (f"*:post:accounts:{a.id}", ("post", "accounts", a.id), b_deposits_to_a),
        ]

        def can(subject: str, act: tuple) -> bool | None:
            _, doc = self.gql(b.access, "query($s: String!, $a: String!, $t: String!, "
                              "$r: String!){ can(subject: $s, action: $a, resourceType: $t, "
                              "resourceId: $r) }",
                              {"s": subject, "a": act[0], "t": act[1], "r": act[2]},
                              f"can({subject[:1]}..)")
            try:
                return doc["data"]["can"]
            except Exception:
                return None

        for policy, act, effect in cases:
            if effect():
                self.tally.info.append(f"B already had {act} before {policy!r}")
                continue
            r = self.rest("PUT", "/policies", "PUT * policy", token=adm.access,
                          body={"policy": policy})
            if r is None or r.status_code >= 500:
                continue
            if r.status_code == 422:
                self.tally.info.append(f"{policy.split(':', 1)[1]!r} refused with 422")
                continue
            if r.status_code != 200:
                self.tally.fail(f"PUT policy with subject * -> {r.status_code} (want 200 or 422)")
                continue
            works = False
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                if effect():
                    works = True
                    break
                time.sleep(0.3)
            can_b, can_star = can(b.id, act), can("*", act)
            if not works:
                self.tally.fail(f"policy with subject * accepted but grants nothing "
                                f"({act[0]} {act[1]})")
            if can_b is not None and can_b != works:
                self.tally.fail(f"can(subject: B) says {can_b}, the real access is {works} "
                                f"({act[0]} {act[1]})")
            if can_star is False and works:
                self.tally.fail(f"can(subject: \"*\") says false for a granted * policy")
            r = self.rest("DELETE", "/policies", "DELETE * policy", token=adm.access,
                          body={"policy": policy})
            if r is not None and r.status_code == 200 and works:
                time.sleep(1.0)
                if effect():
                    self.tally.fail(f"{act[0]} {act[1]} still granted after the * policy was "
                                    "revoked")
        # The subject * in DELETE only, and partial wildcards, must not 500.
        for pol in ("*:get:orders:nothing", "a*:get:orders:x", "*a:get:orders:x"):
            self.rest("DELETE", "/policies", "DELETE odd policy", token=adm.access,
                      body={"policy": pol})

    # ---- item 9: refresh-token reuse ---------------------------------------------------

    def item9(self) -> None:
        r_acc = self.accounts["R"]

        def new_family() -> str | None:
            r = self.login(r_acc, "login (new family)")
            if r is not None and r.status_code != 200:
                self.tally.note("info", f"login for a new family -> {r.status_code}: skipped")
            return r_acc.refresh if r is not None and r.status_code == 200 else None

        def rotate(tok: str, label: str) -> str | None:
            r = self.refresh(tok, label)
            if r is not None and r.status_code == 200:
                return r.json()["refresh_token"]
            return None

        def expect_refused(tok: str, what: str) -> None:
            r = self.refresh(tok, what)
            if r is not None and r.status_code == 200:
                self.tally.fail(f"{what} still works")
            elif r is not None and r.status_code != 401 and r.status_code < 500:
                self.tally.fail(f"{what} -> {r.status_code} (want 401)")

        # (a) Reuse of the first token of a family: its successor must die.
        for _ in range(3):
            r0 = new_family()
            if not r0:
                continue
            r1 = rotate(r0, "rotate")
            if not r1:
                self.tally.fail("a fresh refresh token was refused")
                continue
            expect_refused(r0, "reused (rotated) refresh token")
            expect_refused(r1, "successor of a reused refresh token")
        # (b) A longer chain, reuse in the middle: every token of the family must die.
        r0 = new_family()
        if r0:
            chain = [r0]
            for _ in range(3):
                nxt = rotate(chain[-1], "rotate chain")
                if not nxt:
                    break
                chain.append(nxt)
            if len(chain) == 4:
                expect_refused(chain[1], "reused middle token of a chain")
                expect_refused(chain[3], "newest token after a reuse in its family")
        # (c) Concurrent double use: at most one wins, and then the family is revoked.
        r0 = new_family()
        if r0:
            with concurrent.futures.ThreadPoolExecutor(8) as ex:
                results = list(ex.map(lambda _: self.refresh(r0, "concurrent refresh"),
                                      range(8)))
            wins = [r for r in results if r is not None and r.status_code == 200]
            if len(wins) > 1:
                self.tally.fail("one refresh token redeemed more than once concurrently",
                                len(wins) - 1)
            for w in wins:
                expect_refused(w.json()["refresh_token"],
                               "successor of a concurrently reused refresh token")
        # (d) Misuse: an access token, garbage, a forged refresh token.
        self.login(r_acc, "login")
        for what, tok in (("access token as refresh token", r_acc.access),
                          ("garbage refresh token", "a.b.c"),
                          ("empty refresh token", ""),
                          ("refresh token with a flipped signature",
                           r_acc.refresh[:-3] + ("AAA" if r_acc.refresh[-3:] != "AAA"
                                                 else "BBB"))):
            expect_refused(tok, what)

    # ---- item 10: login flooding -------------------------------------------------------

    def item10(self, seconds: float = 10.0, conns: int = 64) -> None:
        acc = self.accounts
        a, f = acc["A"], acc["F"]

        def probe_all(tally_label: str) -> list[tuple[str, float, bool]]:
            out = []
            t0 = time.monotonic()
            try:
                ok = httpx.get(self.base + "/healthz", timeout=10).status_code == 200
            except httpx.HTTPError:
                ok = False
            self.tally.requests += 1
            out.append(("healthz", time.monotonic() - t0, ok))
            t0 = time.monotonic()
            r, doc = self.gql(a.access, "{ me { id } }", None, f"me {tally_label}", wait=False,
                              timeout=10)
            out.append(("graphql me", time.monotonic() - t0, self.gql_has_data(doc)))
            t0 = time.monotonic()
            r = self.rest("POST", f"/accounts/{a.id}/deposits", f"deposit {tally_label}",
                          token=a.access, body={"amount": 1, "currency": "EUR"}, timeout=10)
            out.append(("deposit", time.monotonic() - t0, r is not None and r.status_code == 201))
            return out

        base: dict[str, list[float]] = collections.defaultdict(list)
        for _ in range(10):
            for name, took, ok in probe_all("baseline"):
                base[name].append(took)
        base_p50 = {k: statistics.median(v) for k, v in base.items()}
        stop = threading.Event()
        statuses = collections.Counter()
        missing_retry_after = [0]
        lock = threading.Lock()

        def flooder(i: int) -> None:
            email = f.email if i % 2 == 0 else f"nobody-{i}-{rand_word(6)}@example.com"
            with httpx.Client(timeout=30) as c:
                while not stop.is_set():
                    try:
                        r = c.post(self.api + "/sessions",
                                   json={"email": email, "password": "wrong-" + rand_word(6)})
                        st = r.status_code
                        if st == 429 and "retry-after" not in r.headers:
                            with lock:
                                missing_retry_after[0] += 1
                        if st == 429:
                            time.sleep(0.05)  # a real attacker would not; keeps our CPU low
                    except httpx.HTTPError:
                        st = "error"
                    with lock:
                        statuses[st] += 1

        threads = [threading.Thread(target=flooder, args=(i,), daemon=True) for i in range(conns)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        under: dict[str, list[float]] = collections.defaultdict(list)
        slow = 0
        failed = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for name, took, ok in probe_all("during the login flood"):
                under[name].append(took)
                if not ok:
                    failed += 1
                    self.tally.note("fail", f"{name} failed during the login flood")
                elif took > max(5 * base_p50[name], 0.2):
                    slow += 1
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(timeout=40)
        total = sum(statuses.values())
        self.tally.requests += total
        self.tally.http_5xx += sum(v for k, v in statuses.items()
                                   if isinstance(k, int) and k >= 500)
        self.tally.failures += failed
        allowance = 100
        unlimited = statuses.get(401, 0)
        if unlimited > allowance:
            self.tally.fail(f"wrong-password logins answered 401, never 429, past the first "
                            f"{allowance} from one address in {seconds:.0f} s",
                            unlimited - allowance)
        if missing_retry_after[0]:
            self.tally.fail("429 without Retry-After", missing_retry_after[0])
        if slow:
            self.tally.fail("other request over 5x its baseline (and 200 ms) during the flood",
                            slow)
        self.tally.info.append(f"{conns} connections sent {total} wrong-password logins in "
                               f"{seconds + 1:.0f} s: {dict(statuses)}")
        self.tally.info.append("p50 ms alone -> during flood: " + ", ".join(
            f"{k} {base_p50[k] * 1000:.1f} -> {statistics.median(under[k]) * 1000:.1f}"
            for k in base_p50 if under[k]))

    # ---- item 11: /healthz with the database down --------------------------------------

    def probe_health(self, what: str, timeout: float = 15, base: str | None = None
                     ) -> tuple[int | str, float]:
        self.tally.requests += 1
        t0 = time.monotonic()
        try:
            st: int | str = httpx.get((base or self.base) + "/healthz",
                                      timeout=timeout).status_code
        except httpx.HTTPError as e:
            st = type(e).__name__
        took = time.monotonic() - t0
        if isinstance(st, int) and st >= 500 and st != 503:
            self.tally.server_error(f"/healthz {what} -> {st}")
        return st, took

    def health_while_down(self, variant: str, base: str, n: int = 5) -> None:
        times = []
        for _ in range(n):
            st, took = self.probe_health(f"database {variant}", base=base)
            times.append(took)
            if st != 503:
                self.tally.fail(f"/healthz with the database {variant} -> {st} (want 503)")
            elif took > 1.5:
                self.tally.fail(f"/healthz took over 1.5 s to say 503 (database {variant})")
        self.tally.info.append(f"database {variant}: /healthz answered in " + ", ".join(
            f"{t * 1000:.0f}" for t in times) + " ms")

    def health_recovers(self, variant: str, base: str, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        st: int | str | None = None
        while time.monotonic() < deadline:
            st, _ = self.probe_health(f"after the database came back ({variant})", base=base)
            if st == 200:
                return
            time.sleep(0.5)
        self.tally.fail(f"/healthz did not recover within {seconds:.0f} s after the database "
                        f"came back ({variant}; last {st})")

    def item11(self) -> None:
        if self.server.store != "postgres":
            self.tally.not_applicable = "the embedded SQLite store cannot be down"
            return
        # (a) The database refuses connections: ALLOW_CONNECTIONS false, backends terminated.
        db = self.server.db_name
        st, took = self.probe_health("with the database up")
        self.tally.info.append(f"database up: {st} in {took * 1000:.0f} ms")
        Server.pg_admin(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS false')
        Server.pg_admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        f"WHERE datname = '{db}' AND pid <> pg_backend_pid()")
        try:
            time.sleep(0.3)
            self.health_while_down("refusing connections", self.base)
        finally:
            Server.pg_admin(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS true')
        self.health_recovers("refusing connections", self.base)
        # (b) and (c): a throwaway cluster of our own, stopped and then frozen.
        cluster = ThrowawayCluster(self.server.workdir)
        second = None
        try:
            cluster.start()
            second = Server(self.server.binary, "postgres", self.server.workdir,
                            self.server.nofile_soft,
                            database_url=cluster.url("eventshop_attack"))
            second.start()
            self.probe_health("on the throwaway cluster", base=second.base)
            cluster.stop()
            time.sleep(0.3)
            self.health_while_down("server stopped", second.base)
            cluster.start()
            self.health_recovers("server stopped", second.base)
            cluster.freeze()
            time.sleep(0.3)
            self.health_while_down("server hung (SIGSTOP)", second.base, n=3)
            cluster.thaw()
            self.health_recovers("server hung (SIGSTOP)", second.base)
        except Exception as e:
            self.tally.info.append(f"throwaway cluster variants not measured: {e}")
        finally:
            cluster.thaw()
            if second:
                second.stop()
            cluster.destroy()


class ThrowawayCluster:
    """A PostgreSQL cluster of our own (initdb) on a free port, to stop and freeze at will;
    never the machine's main server."""

    def __init__(self, workdir: str) -> None:
        self.dir = os.path.join(workdir, "pgcluster")
        self.port = free_port()
        self.initialized = False
        self.frozen: list[int] = []

    def _as_postgres(self, *cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(["runuser", "-u", "postgres", "--", *cmd], capture_output=True,
                              text=True, timeout=timeout)

    def url(self, db: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        if not self.initialized:
            os.makedirs(self.dir, exist_ok=True)
            shutil.chown(self.dir, "postgres", "postgres")
            os.chmod(os.path.dirname(self.dir), 0o755)
            cp = self._as_postgres("initdb", "-D", self.dir, "-A", "trust", "-U", "postgres",
                                   "--no-sync")
            if cp.returncode != 0:
                raise RuntimeError(f"initdb: {cp.stderr.strip()[-300:]}")
            self.initialized = True
            created = False
        else:
            created = True
        cp = self._as_postgres("pg_ctl", "-D", self.dir, "-l", os.path.join(self.dir, "log"),
                               "-w", "-o", f"-p {self.port} -k {self.dir} "
                               "-c listen_addresses=127.0.0.1 -c fsync=off", "start")
        if cp.returncode != 0:
            raise RuntimeError(f"pg_ctl start: {cp.stderr.strip()[-300:]}")
        if not created:
            import psycopg

            with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
                conn.execute("CREATE DATABASE eventshop_attack")

    def stop(self) -> None:
        if self.initialized:
            self._as_postgres("pg_ctl", "-D", self.dir, "-m", "immediate", "-w", "stop")

    def postmaster_pid(self) -> int | None:
        try:
            with open(os.path.join(self.dir, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError):
            return None

    def freeze(self) -> None:
        """SIGSTOP the postmaster (new connections hang), then end its backends by pid, so
        pooled connections are gone too."""
        pid = self.postmaster_pid()
        if pid is None:
            raise RuntimeError("no postmaster pid")
        os.kill(pid, signal.SIGSTOP)
        self.frozen.append(pid)
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                children = [int(c) for c in f.read().split()]
        except OSError:
            children = []
        for child in children:
            try:
                with open(f"/proc/{child}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            # Client backends only (their title names the database), not the auxiliaries.
            if b"eventshop_attack" in cmd:
                try:
                    os.kill(child, signal.SIGTERM)
                except OSError:
                    pass

    def thaw(self) -> None:
        while self.frozen:
            try:
                os.kill(self.frozen.pop(), signal.SIGCONT)
            except OSError:
                pass

    def destroy(self) -> None:
        self.thaw()
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# The run


def run_store(binary: str, store: str, items: list[int], verbose: bool,
              nofile_soft: int) -> list[Tally]:
    workdir = tempfile.mkdtemp(prefix=f"eventshop-attack-{store}-")
    results: list[Tally] = []
    server = None
    try:
        server = Server(binary, store, workdir, nofile_soft)
        server.start()
        attack = Attack(server, verbose)
        try:
            attack.setup()
        except Exception as e:
            attack.tally.error = f"{type(e).__name__}: {e}"
            traceback.print_exc()
            results.append(attack.tally)
            return results
        results.append(attack.tally)
        for n in [i for i in RUN_ORDER if i in items]:
            tally = Tally(n, store)
            attack.tally = tally
            if server.proc.poll() is not None:
                tally.error = f"server had exited ({server.proc.returncode})"
                results.append(tally)
                continue
            t0 = time.monotonic()
            print(f"[{store}] item {n}: {ITEM_TITLES[n]} ...", file=sys.stderr, flush=True)
            try:
                getattr(attack, f"item{n}")()
            except Exception as e:
                tally.error = f"{type(e).__name__}: {e}"
                traceback.print_exc()
            tally.seconds = time.monotonic() - t0
            results.append(tally)
        panics = server.log_count("panicked")
        if panics:
            results[0].info.append(f"server log: {panics} panics")
        if server.proc.poll() is not None:
            results[0].info.append(f"server exited during the run ({server.proc.returncode})")
        return results
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if server:
            server.cleanup()
            if os.environ.get("ATTACK_KEEP_LOG"):
                shutil.copy(server.log_path, os.environ["ATTACK_KEEP_LOG"] + f".{store}.log")
        shutil.rmtree(workdir, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, on_sigterm)


def tally_from_json(d: dict) -> Tally:
    t = Tally(d["item"], d["store"], d["requests"], d["http_5xx"], d["leaks"], d["failures"],
              d.get("seconds", 0.0), d.get("not_applicable"), d.get("error"))
    t.notes.update(d.get("notes") or {})
    t.info = list(d.get("info") or [])
    return t


def print_table(results: list[Tally], binary: str, notes: int,
                baseline: dict | None = None, when: str | None = None) -> None:
    print(f"eventshop attack run (issue #11, items 1-11) against {binary}")
    print(when or time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()))
    if baseline is not None:
        print(f"(before: the run of {baseline['binary']} at {baseline.get('when', '?')})")
    base = {(b["item"], b["store"]): b for b in (baseline or {}).get("results", [])}
    print()
    print(f"{'item':<5} {'store':<9} {'requests':>9} {'5xx':>6} {'leaks':>6} {'failures':>9}  "
          f"{'verdict':<7} {'secs':>5}  " + ("before: 5xx/leaks/failures verdict  "
                                             if baseline is not None else "") + "what")
    for t in sorted(results, key=lambda t: (t.item, t.store)):
        title = ITEM_TITLES.get(t.item, "set-up (accounts, products, orders)")
        before = ""
        if baseline is not None:
            b = base.get((t.item, t.store))
            before = (f"{b['http_5xx']:>6}/{b['leaks']}/{b['failures']:<6} {b['verdict']:<7}  "
                      if b else f"{'-':>8}{'':<20}")
        print(f"{t.item if t.item else '-':<5} {t.store:<9} {t.requests:>9} {t.http_5xx:>6} "
              f"{t.leaks:>6} {t.failures:>9}  {t.verdict:<7} {t.seconds:>5.0f}  {before}{title}")
    totals = collections.defaultdict(lambda: [0, 0, 0, 0])
    for t in results:
        if t.item:
            for i, v in enumerate((t.requests, t.http_5xx, t.leaks, t.failures)):
                totals[t.store][i] += v
    for store, (rq, e5, lk, fl) in totals.items():
        print(f"{'all':<5} {store:<9} {rq:>9} {e5:>6} {lk:>6} {fl:>9}")
    if notes:
        print()
        print("Details (most frequent first; 'info' lines are measurements, not counted):")
        for t in sorted(results, key=lambda t: (t.item, t.store)):
            lines = [f"{k} (x{v})" if v > 1 else k for k, v in t.notes.most_common(notes)]
            if len(t.notes) > notes:
                lines.append(f"... and {len(t.notes) - notes} more kinds")
            lines += [f"info: {i}" for i in t.info]
            if t.not_applicable:
                lines.append(f"n/a: {t.not_applicable}")
            if t.error:
                lines.append(f"tool error: {t.error}")
            if lines:
                print(f"- item {t.item if t.item else 'set-up'} [{t.store}]")
                for ln in lines:
                    print(f"    {ln}")


def on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    signal.signal(signal.SIGTERM, on_sigterm)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", help="the eventshop binary to attack")
    p.add_argument("--report", metavar="JSON",
                   help="attack nothing: print the table of a saved --json run")
    p.add_argument("--baseline", metavar="JSON",
                   help="a saved --json run (e.g. results-before.json) to show beside this one")
    p.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--items", default="1-11", help="e.g. 1-11, or 1,3,6")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON ('-': stdout)")
    p.add_argument("--notes", type=int, default=12, help="detail lines per item (0: none)")
    p.add_argument("--nofile", type=int, default=1024,
                   help="the server's soft open-file limit (default 1024)")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()

    items: list[int] = []
    for part in args.items.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            items += range(int(lo), int(hi) + 1)
        else:
            items.append(int(part))
    baseline = None
    if args.baseline:
        with open(args.baseline) as f:
            baseline = json.load(f)
    if args.report:
        with open(args.report) as f:
            doc = json.load(f)
        print_table([tally_from_json(d) for d in doc["results"]], doc["binary"], args.notes,
                    baseline, doc.get("when"))
        return 0
    if not args.binary:
        p.error("--binary is required (or --report)")
    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        print(f"error: {binary} is not an executable", file=sys.stderr)
        return 2
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    random.seed()
    results: list[Tally] = []
    t0 = time.monotonic()
    when = time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())
    for store in stores:
        results += run_store(binary, store, items, args.verbose, args.nofile)
    if args.json != "-":
        print_table(results, args.binary, args.notes, baseline, when)
        print(f"\n(run took {time.monotonic() - t0:.0f} s)")
    if args.json:
        doc = {"binary": args.binary, "when": when, "items": items,
               "results": [t.as_json() for t in results]}
        if args.json == "-":
            json.dump(doc, sys.stdout, indent=2)
            print()
        else:
            with open(args.json, "w") as f:
                json.dump(doc, f, indent=2)
    broken = [t for t in results if t.error]
    return 2 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
