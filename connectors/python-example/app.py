"""A connector written in Python and built with componentize-py.

It GETs `<base-url><path>` (path from the configuration, default `/health`), applying the
integration's secret as a bearer token when it has one, and reports each step. It shows that any
toolchain that targets the component model can ship a connector: the host treats it exactly
like a Rust one.
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import http, log, secrets, types


def _result(success, message, failure, steps, version=None):
    return types.TestResult(
        success=success,
        message=message,
        failure=failure,
        steps=steps,
        facts=types.Facts(provider_version=version, credential_expires_at=None, rate_limit_remaining=None),
    )


class WitWorld(wit_world.WitWorld):
    def test_connection(self, config: types.ConnectionConfig) -> types.TestResult:
        steps = []
        try:
            settings = json.loads(config.configuration)
        except ValueError:
            settings = {}
        if not config.base_url:
            steps.append(types.CheckStep("base-url", False, "the integration has no base URL"))
            return _result(False, "the integration has no base URL", types.FailureClass.MISCONFIGURED, steps)
        url = config.base_url.rstrip("/") + settings.get("path", "/health")

        credential = None
        if config.auth_ref:
            try:
                secret = secrets.resolve(config.auth_ref)
            except Err as e:
                steps.append(types.CheckStep("credential", False, repr(e.value)))
                return _result(False, "the credential could not be resolved", types.FailureClass.AUTH, steps)
            credential = http.Credential(secret, http.CredentialPlacement_Bearer())
            steps.append(types.CheckStep("credential", True, "resolved " + secret.auth_ref()))

        log.log(log.Level.INFO, "python connector calling " + url)
        request = http.Request(http.Method.GET, url, [http.Header("accept", "application/json")], None, None)
        try:
            response = http.send(request, credential)
        except Err as e:
            error = e.value
            kind = type(error).__name__.removeprefix("HttpError_")
            failure = {
                "Denied": types.FailureClass.MISCONFIGURED,
                "Dns": types.FailureClass.NETWORK,
                "ConnectionRefused": types.FailureClass.NETWORK,
                "Timeout": types.FailureClass.TIMEOUT,
                "Tls": types.FailureClass.TLS,
            }.get(kind, types.FailureClass.PROVIDER_DOWN)
            steps.append(types.CheckStep("reachable", False, kind + ": " + error.value))
            return _result(False, "the server could not be reached", failure, steps)

        if response.status in (401, 403):
            steps.append(types.CheckStep("reachable", True, "status %d" % response.status))
            steps.append(types.CheckStep("authorized", False, "status %d" % response.status))
            return _result(False, "the credential was rejected", types.FailureClass.AUTH, steps)
        if not 200 <= response.status < 300:
            steps.append(types.CheckStep("reachable", False, "status %d" % response.status))
            return _result(False, "the server answered %d" % response.status, types.FailureClass.PROVIDER_DOWN, steps)
        steps.append(types.CheckStep("reachable", True, "status %d" % response.status))
        version = None
        for header in response.headers:
            if header.name.lower() == "x-version":
                version = header.value
        return _result(True, "the server answered %d" % response.status, None, steps, version)

    def check_health(self, config: types.ConnectionConfig) -> types.HealthResult:
        t = self.test_connection(config)
        status = types.HealthStatus.HEALTHY if t.success else types.HealthStatus.UNHEALTHY
        return types.HealthResult(status, t.message, t.failure, t.steps, t.facts)
