"""A connector written in Python and built with componentize-py.

It probes `<base-url><path>` (path from the configuration, default `/health`) in two steps:
first without the credential, to prove the server is the product (every answer of the product
carries the header named by `productHeader`, default `X-Version`, whose value is its version);
then, when the integration has an AuthRef, with the secret applied as a bearer token. So the
credential never goes to a server that has not identified itself. It shows that any toolchain
that targets the component model can ship a connector: the host treats it exactly like a Rust
one.
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


def _transport_failure(error):
    """The failure class of the host's typed HTTP error, and a message."""
    kind = type(error).__name__.removeprefix("HttpError_")
    failure = {
        "Denied": types.FailureClass.MISCONFIGURED,
        "Dns": types.FailureClass.NETWORK,
        "ConnectionRefused": types.FailureClass.NETWORK,
        "Timeout": types.FailureClass.TIMEOUT,
        "Tls": types.FailureClass.TLS,
    }.get(kind, types.FailureClass.PROVIDER_DOWN)
    return failure, kind + ": " + str(error.value)


def _status_failure(status):
    """The failure class of an unexpected status."""
    if status == 401:
        return types.FailureClass.AUTH
    if status == 403:
        return types.FailureClass.PERMISSION
    if status == 404:
        return types.FailureClass.NOT_FOUND
    if status == 429:
        return types.FailureClass.RATE_LIMITED
    if status >= 500:
        return types.FailureClass.PROVIDER_DOWN
    return types.FailureClass.PROVIDER_MISMATCH


def _header(response, name):
    for header in response.headers:
        if header.name.lower() == name.lower():
            return header.value
    return None


class WitWorld(wit_world.WitWorld):
    def test_connection(self, config: types.ConnectionConfig) -> types.TestResult:
        steps = []
        try:
            settings = json.loads(config.configuration)
        except ValueError:
            settings = {}
        path = settings.get("path", "/health")
        product_header = settings.get("productHeader", "X-Version")
        if not config.base_url:
            steps.append(types.CheckStep("configuration", False, "the integration has no base URL"))
            return _result(False, "the integration has no base URL", types.FailureClass.MISCONFIGURED, steps)
        if not isinstance(path, str) or not path.startswith("/") or not isinstance(product_header, str):
            steps.append(types.CheckStep("configuration", False, "`path` must start with / and `productHeader` be a header name"))
            return _result(False, "the configuration is not valid", types.FailureClass.MISCONFIGURED, steps)
        steps.append(types.CheckStep("configuration", True, "the settings are valid"))
        url = config.base_url.rstrip("/") + path
        accept = [http.Header("accept", "application/json")]

        # 1. Without the credential: is this the product at all?
        log.log(log.Level.INFO, "python connector calling " + url)
        try:
            anonymous = http.send(http.Request(http.Method.GET, url, accept, None, None), None)
        except Err as e:
            failure, message = _transport_failure(e.value)
            steps.append(types.CheckStep("reachable", False, message))
            return _result(False, "the server could not be reached", failure, steps)
        steps.append(types.CheckStep("reachable", True, "status %d" % anonymous.status))
        version = _header(anonymous, product_header)
        if anonymous.status >= 500 or anonymous.status == 429:
            steps.append(types.CheckStep("is-product", False, "status %d" % anonymous.status))
            return _result(False, "the server answered %d" % anonymous.status, _status_failure(anonymous.status), steps)
        if version is None:
            message = "status %d without a %s header: this is not the product" % (anonymous.status, product_header)
            steps.append(types.CheckStep("is-product", False, message))
            return _result(False, message, types.FailureClass.PROVIDER_MISMATCH, steps)
        steps.append(types.CheckStep("is-product", True, "version " + version))

        # 2. With the credential, now that the server has identified itself.
        if not config.auth_ref:
            if not 200 <= anonymous.status < 300:
                steps.append(types.CheckStep("answered", False, "status %d" % anonymous.status))
                return _result(False, "the product answered %d" % anonymous.status, _status_failure(anonymous.status), steps, version)
            return _result(True, "the product answered %d" % anonymous.status, None, steps, version)
        try:
            secret = secrets.resolve(config.auth_ref)
        except Err as e:
            steps.append(types.CheckStep("credential", False, repr(e.value)))
            return _result(False, "the credential could not be resolved", types.FailureClass.MISCONFIGURED, steps, version)
        credential = http.Credential(secret, http.CredentialPlacement_Bearer())
        try:
            response = http.send(http.Request(http.Method.GET, url, accept, None, None), credential)
        except Err as e:
            failure, message = _transport_failure(e.value)
            steps.append(types.CheckStep("credential", False, message))
            return _result(False, "the server could not be reached", failure, steps, version)
        if not 200 <= response.status < 300:
            steps.append(types.CheckStep("credential", False, "status %d" % response.status))
            return _result(False, "the credential was refused (%d)" % response.status, _status_failure(response.status), steps, version)
        steps.append(types.CheckStep("credential", True, "status %d with " % response.status + secret.auth_ref()))
        return _result(True, "the product answered %d to the credential" % response.status, None, steps, version)

    def check_health(self, config: types.ConnectionConfig) -> types.HealthResult:
        t = self.test_connection(config)
        status = types.HealthStatus.HEALTHY if t.success else types.HealthStatus.UNHEALTHY
        return types.HealthResult(status, t.message, t.failure, t.steps, t.facts)
