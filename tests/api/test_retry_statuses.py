"""No answer of ours is 408 or 429. MLflow 3.18's client sends a create, a transition or a rename again only
after those two statuses (or a connection that failed before sending): they mean "not processed". Answering
one after a write committed would make the client repeat the write, e.g. register a second version. The
only statuses a refusal maps to are fixed tables; this guards them and the code that could add another."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import registry
from registry import errors
from registry.api.errors import NATIVE_STATUS, _HTTP_CODES, status_for
from registry.schemas import mlflow as mlflow_schema

RETRY_STATUSES = {408, 429}
ERROR_CLASSES = [cls for cls in vars(errors).values()
                 if isinstance(cls, type) and issubclass(cls, errors.RegistryError)]


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_no_refusal_maps_to_a_status_the_client_takes_for_unprocessed(cls):
    error = cls("x")
    assert status_for(error) not in RETRY_STATUSES
    assert mlflow_schema.error_code_for(error)[1] not in RETRY_STATUSES


def test_the_status_tables_hold_no_retry_status():
    assert not RETRY_STATUSES & (set(NATIVE_STATUS.values()) | set(_HTTP_CODES))
    assert not RETRY_STATUSES & {status for _, status in mlflow_schema._BY_ERROR.values()}
    assert not RETRY_STATUSES & set(mlflow_schema._BY_STATUS)


# The one module that may: the rate limiter answers 429 from the app's first before_request hook, before
# authentication and before any view, or from authentication itself for failed password sign-ins (before the
# password is hashed, still before any view), so nothing was processed (tests/api/test_rate_limits.py,
# tests/api/test_sign_in_limits.py).
RATE_LIMITER = "api/rate_limits.py"


def test_no_module_can_answer_a_retry_status():
    """Werkzeug's RequestTimeout / TooManyRequests, abort(408 / 429) or a literal status: none in the code,
    except the rate limiter's 429 before anything runs."""
    pattern = re.compile(r"RequestTimeout|TooManyRequests|\b(408|429)\b")
    root = Path(registry.__file__).parent
    found = [f"{path.relative_to(root)}:{n}: {line.strip()}"
             for path in sorted(root.rglob("*.py")) if str(path.relative_to(root)) != RATE_LIMITER
             for n, line in enumerate(path.read_text().splitlines(), start=1) if pattern.search(line)]
    assert not found, "\n".join(found)


def test_the_rate_limiter_runs_before_anything_else(app):
    from registry.api.rate_limits import install

    first_hook = app.before_request_funcs[None][0]
    assert first_hook.__qualname__.startswith(install.__qualname__)
