#!/usr/bin/env python3
"""What a stock GraphQL client does against eventshop's /graphql, with graphql-core 3.3.

1. Sends graphql-core's standard introspection query (`get_introspection_query()`, the
   query gql's `fetch_schema_from_transport`, GraphiQL and Apollo send: `ofType` nested 9
   levels), once as given and once with every option on, and builds a client schema from each
   answer (`build_client_schema`).
2. Validates a few ordinary queries against that client schema and runs them with the token.

Exits 0 when everything worked, 1 (with one line on stderr saying what failed) otherwise.

    scripts/graphql_clients.py --url http://127.0.0.1:8080/graphql --token "$ACCESS_TOKEN"

Needs graphql-core (`pip install graphql-core`), nothing else.
"""

import argparse
import json
import sys
import time
import urllib.error
import urllib.request

from graphql import (
    build_client_schema,
    get_introspection_query,
    parse,
    print_schema,
    validate,
)


class Failure(Exception):
    """A check that did not hold."""


def post(url, query, token=None, variables=None):
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Accept", "application/graphql-response+json, application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    except (urllib.error.URLError, OSError) as error:
        raise Failure(f"cannot reach {url}: {error}") from error
    try:
        answer = json.loads(payload)
    except ValueError as error:
        raise Failure(f"HTTP {status}: the answer is not JSON: {payload[:200]!r}") from error
    if status != 200:
        raise Failure(f"HTTP {status}: {json.dumps(answer)[:300]}")
    return answer


def data_of(answer, what):
    if answer.get("errors"):
        raise Failure(f"{what}: {json.dumps(answer['errors'])[:300]}")
    data = answer.get("data")
    if not isinstance(data, dict):
        raise Failure(f"{what}: no data in {json.dumps(answer)[:300]}")
    return data


def introspect(url, token, **options):
    what = "introspection" + (" with every option" if options else "")
    data = data_of(post(url, get_introspection_query(**options), token), what)
    try:
        schema = build_client_schema(data)
    except Exception as error:  # graphql-core raises TypeError/GraphQLError on a bad answer
        raise Failure(f"{what}: build_client_schema failed: {error}") from error
    if schema.query_type is None or "history" not in schema.query_type.fields:
        raise Failure(f"{what}: the client schema has no Query.history")
    print_schema(schema)  # every type must print
    return schema


def run_checked(url, token, schema, query, variables=None):
    errors = validate(schema, parse(query))
    if errors:
        raise Failure(f"{query!r} does not validate against the client schema: {errors[0]}")
    return data_of(post(url, query, token, variables), query)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the /graphql endpoint")
    parser.add_argument("--token", required=True, help="an access token (Bearer)")
    args = parser.parse_args()
    try:
        schema = introspect(args.url, args.token)
        introspect(
            args.url,
            args.token,
            descriptions=True,
            specified_by_url=True,
            directive_is_repeatable=True,
            schema_description=True,
            input_value_deprecation=True,
        )
        for _ in range(50):  # a new account shows once the projectors applied it
            answer = post(args.url, "{ me { id email role } }", args.token)
            codes = [e.get("extensions", {}).get("code") for e in answer.get("errors") or []]
            if codes != ["NOT_FOUND"]:
                break
            time.sleep(0.1)
        me = run_checked(args.url, args.token, schema, "{ me { id email role } }")["me"]
        if not me or not me.get("id"):
            raise Failure(f"me answered {me!r}")
        run_checked(
            args.url,
            args.token,
            schema,
            "query($id: ID!) { history(aggregateType: \"account\", aggregateId: $id, first: 5) "
            "{ version eventType payload } }",
            {"id": me["id"]},
        )
        products = run_checked(
            args.url,
            args.token,
            schema,
            "{ products(first: 5) { pageInfo { hasNextPage } edges { node { id name } } } }",
        )
        if not isinstance(products["products"]["edges"], list):
            raise Failure("products answered no edges")
    except Failure as failure:
        print(f"graphql_clients: {failure}", file=sys.stderr)
        return 1
    print(
        f"graphql_clients: ok: introspection built a client schema of {len(schema.type_map)} "
        "types; me, history and products ran through it"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
