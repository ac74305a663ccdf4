"""Schemathesis hooks for scripts/conformance.py.

An `Idempotency-Key` names one request: a client that reuses a key with another request gets
422, as the IETF Idempotency-Key draft says. Schemathesis repeats one generated key across many
different requests, so before each call a valid key is made unique; keys that break the
header's schema (negative cases) are sent as generated.
"""

import re
import uuid

import schemathesis

KEY = re.compile(r"^[!-~]([ -~]*[!-~])?$")


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key":
            value = headers[name]
            if isinstance(value, str) and len(value) <= 255 and KEY.match(value):
                unique = uuid.uuid4().hex
                headers[name] = f"{value[: 255 - len(unique) - 1]}-{unique}"
