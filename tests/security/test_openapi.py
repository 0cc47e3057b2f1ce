"""The OpenAPI schema says what the API does (issue #12, finding 13): schemathesis against
the live schema of a real production-mode gateway, as a signed-in user (a DRF token).

Every operation is called with data generated from its schema (a few examples each, so
the run stays short): no response is a server error, and every response matches the
schema (a documented status code, content type and body).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
#: Revoking the token would sign the rest of the run out.
SKIP = {("POST", "/api/auth/token/revoke/")}
EXAMPLES = 6


def test_the_api_does_what_its_schema_says(
    live_server_factory: Any, redis_url: str, key_prefix: str, django_user_model: Any
) -> None:
    user = django_user_model.objects.create_user(username="schemathesis", password="pw")
    headers = {"Authorization": f"Token {Token.objects.create(user=user).key}"}
    server = live_server_factory(server="uvicorn", redis=redis_url, key_prefix=key_prefix)
    schema = schemathesis.openapi.from_url(f"{server.http_url}/api/schema/?format=json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def call(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            call()
        except (Exception, BaseExceptionGroup) as exc:  # every operation is tried; failures listed together
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
    assert operations >= 30
    assert not failures, "\n\n".join(failures)
