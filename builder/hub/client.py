"""The Hub connection: one `HfApi` for the Hub at HF_ENDPOINT, bounded timeouts, retries, clear errors.

Every Hub call goes through huggingface_hub's `HfApi`; this module only configures it:
- HF_ENDPOINT and HF_TOKEN are read when a command runs (huggingface_hub reads HF_TOKEN
  itself); the token is never printed or logged: messages are built from status codes and
  server messages only.
- huggingface_hub's HTTP client has no timeout by default, so a Hub that stops answering would
  hang an upload for ever. A transport fills in a bound (KERNEL_BUILDER_HUB_TIMEOUT seconds,
  default 60) wherever a request has none; it limits waiting for the next byte, not the
  length of a transfer.
- `retrying` repeats a step after a 5xx/429/408 answer, a timeout or a dropped connection,
  with exponential back-off (KERNEL_BUILDER_HUB_RETRIES attempts, default 5; first wait
  KERNEL_BUILDER_HUB_RETRY_WAIT seconds, default 1), and says so on stderr.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Callable, TypeVar

from .. import __version__
from ..errors import KernelBuilderError, UsageError

log = logging.getLogger("kernel_builder")
T = TypeVar("T")

RETRY_STATUS = (408, 429, 500, 502, 503, 504)
MAX_WAIT_S = 30.0


class HubError(KernelBuilderError):
    """A Hub operation failed (exit code 1); `status` is the HTTP status behind it, if any."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def _env_float(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


def timeout_s() -> float:
    return _env_float("KERNEL_BUILDER_HUB_TIMEOUT", 60.0)


def retry_attempts() -> int:
    return max(1, int(_env_float("KERNEL_BUILDER_HUB_RETRIES", 5)))


def retry_wait_s() -> float:
    return _env_float("KERNEL_BUILDER_HUB_RETRY_WAIT", 1.0)


def _install_timeouts(limit: float) -> None:
    """Make huggingface_hub's shared HTTP client bound every wait by `limit` seconds."""
    import httpx2
    from huggingface_hub import set_client_factory

    try:
        from huggingface_hub.utils._http import default_client_factory
    except ImportError:  # a huggingface_hub without it: keep its client as it is
        return

    class BoundedTimeouts(httpx2.HTTPTransport):
        # huggingface_hub passes `timeout=None` explicitly on some calls (tree listing), which
        # overrides any client default: fill in the bound at the transport instead.
        def handle_request(self, request: httpx2.Request) -> httpx2.Response:
            wanted = dict(request.extensions.get("timeout") or {})
            for key in ("connect", "read", "write", "pool"):
                if wanted.get(key) is None:
                    wanted[key] = limit
            request.extensions["timeout"] = wanted
            return super().handle_request(request)

    def make_client() -> httpx2.Client:
        template = default_client_factory()  # huggingface_hub's own hooks (offline mode, request ids)
        hooks = template.event_hooks
        template.close()
        return httpx2.Client(event_hooks=hooks, follow_redirects=True, timeout=None, transport=BoundedTimeouts())

    set_client_factory(make_client)


def hub_endpoint() -> str:
    """The Hub uploads go to: HF_ENDPOINT (read now, not at import), else huggingface_hub's default."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def hub_api():
    """An `HfApi` for the Hub at HF_ENDPOINT (read now, not at import) with bounded timeouts."""
    from huggingface_hub import HfApi

    _install_timeouts(timeout_s())
    return HfApi(endpoint=hub_endpoint(), library_name="kernel-builder", library_version=__version__)


def endpoint_of(api) -> str:
    return str(api.endpoint).rstrip("/")


# ---- errors ---------------------------------------------------------------------------------


def status_of(exc: BaseException) -> int | None:
    """The HTTP status behind an exception (following its causes), if any."""
    seen = 0
    while exc is not None and seen < 8:
        response = getattr(exc, "response", None)
        code = getattr(response, "status_code", None)
        if isinstance(code, int):
            return code
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def is_transient(exc: BaseException) -> bool:
    """A 5xx/429/408 answer, a timeout or a dropped connection (anywhere in the cause chain)."""
    import httpx2

    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)):
            return True
        code = getattr(getattr(exc, "response", None), "status_code", None)
        if isinstance(code, int):
            return code in RETRY_STATUS
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def describe(exc: BaseException) -> str:
    """One line about a failed request: status and the server's message, or the network error."""
    code = status_of(exc)
    server = getattr(exc, "server_message", None)
    if code is not None:
        text = f"HTTP {code}"
        if server:
            text += f": {server.strip().splitlines()[0]}"
        return text
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def explain(step: str, exc: BaseException, repo_id: str | None = None) -> KernelBuilderError:
    """The error to show for a request that failed for good."""
    from huggingface_hub.errors import LocalTokenNotFoundError

    if isinstance(exc, LocalTokenNotFoundError):
        return UsageError(f"{step}: no Hub token: set HF_TOKEN (a token with write access) or run `hf auth login`")
    code = status_of(exc)
    if code == 401:
        return HubError(f"{step}: the Hub did not accept the token (HTTP 401): set HF_TOKEN to a valid token with write access, or run `hf auth login`", 401)
    if code == 403:
        where = f" to {repo_id}" if repo_id else ""
        return HubError(
            f"{step}: the Hub refused to let this token publish{where} (HTTP 403). Publishing kernels needs write access "
            "to the namespace and kernel publishing rights on the Hub: use a token with write access for that user or "
            "organization, ask an organization admin to grant you kernel publishing rights, or use --create-pr to "
            "propose the upload as a pull request",
            403,
        )
    return HubError(f"{step} failed: {describe(exc)}", code)


def retrying(step: str, call: Callable[[], T], *, repo_id: str | None = None, on_retry: Callable[[], None] | None = None) -> T:
    """Run one Hub step; repeat it after transient failures; raise a clear error otherwise."""
    attempts = retry_attempts()
    wait = retry_wait_s()
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except KernelBuilderError:
            raise
        except Exception as exc:  # huggingface_hub and httpx2 raise many types; classify, don't guess
            if not is_transient(exc) or attempt == attempts:
                if is_transient(exc):
                    raise HubError(f"{step} failed after {attempts} attempts: {describe(exc)}") from None
                raise explain(step, exc, repo_id) from None
            log.warning("%s: %s; retrying in %.1f s (attempt %d of %d)", step, describe(exc), wait, attempt + 1, attempts)
            time.sleep(wait)
            wait = min(MAX_WAIT_S, wait * 2)
            if on_retry is not None:
                on_retry()
    raise AssertionError("unreachable")


def whoami_name() -> str:
    """The Hub user name of the token in use (for `init` without an owner)."""
    api = hub_api()
    try:
        info = retrying("asking the Hub who you are", lambda: api.whoami())
    except KernelBuilderError as exc:
        raise UsageError(f"{exc}; or pass --name OWNER/NAME to init without the Hub") from None
    name = info.get("name") if isinstance(info, dict) else None
    if not isinstance(name, str) or not name:
        raise HubError("the Hub's whoami answer has no user name")
    return name
