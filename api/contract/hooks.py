"""schemathesis hooks for the contract run (loaded through SCHEMATHESIS_HOOKS).

A real client sends a fresh Idempotency-Key for each logical operation. The generator draws keys
from a small space and so reuses one with a different body, which the API rightly refuses with
422 (draft-ietf-httpapi-idempotency-key-header); the API's own tests cover that refusal, so here
each generated request gets a key of its own.

The import also takes NDJSON (one integration per line), which schemathesis does not serialize
on its own.
"""

import json
import uuid

import schemathesis


@schemathesis.hook
def map_case(context, case):
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
    return case


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    """The import's NDJSON body: one integration per line (a generated list, one line each)."""
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(item) + "\n" for item in items).encode()


@schemathesis.deserializer("application/x-ndjson")
def ndjson_lines(ctx, response):
    """The export's NDJSON answer: the lines, as the list of integrations they hold."""
    return [json.loads(line) for line in response.content.decode("utf-8").splitlines() if line.strip()]
