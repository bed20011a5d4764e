"""The one mapping table: every class in the error tree answers with the contract's status."""

from __future__ import annotations

import pytest

from pagescribe import errors
from pagescribe.wire.errors import error_body, error_headers, exception_for, kind_of


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (errors.InvalidRequest("x"), 400),
        (errors.ImageError("x"), 400),
        (errors.ContextOverflow("x"), 400),
        (errors.PayloadTooLarge("x"), 413),
        (errors.ImageTooLarge("x"), 413),
        (errors.UnsupportedMediaType("x"), 415),
        (errors.NotReady("x"), 503),
        (errors.Overloaded("x"), 503),
        (errors.ModelNotFound("x"), 503),
        (errors.EngineError("x"), 500),
        (KeyError("defect"), 500),
    ],
)
def test_status_by_class(exc: Exception, status: int) -> None:
    assert kind_of(exc).status == status


def test_a_subclass_without_a_row_inherits_its_parents() -> None:
    class OddImage(errors.ImageError):
        pass

    assert kind_of(OddImage("x")) == kind_of(errors.ImageError("x"))


def test_caller_errors_say_what_went_wrong_and_name_the_field() -> None:
    body = error_body(errors.InvalidRequest("temperature must be >= 0", param="parameters.temperature"))
    assert body == {
        "error": {
            "type": "invalid_request_error",
            "message": "temperature must be >= 0",
            "param": "parameters.temperature",
        }
    }


def test_defects_and_engine_failures_only_say_internal_error() -> None:
    for exc in (ZeroDivisionError("secret detail"), errors.EngineError("llama_decode failed at 17")):
        body = error_body(exc)
        assert body["error"]["message"] == "internal error"
        assert "secret" not in str(body) and "llama_decode" not in str(body)


def test_openai_envelope_adds_the_code() -> None:
    assert error_body(errors.ImageError("bad"), openai=True)["error"]["code"] == 400


def test_retry_after_on_service_unavailable_only() -> None:
    assert error_headers(errors.Overloaded("full", retry_after_s=3)) == {"Retry-After": "3"}
    assert error_headers(errors.NotReady("loading", retry_after_s=0.2)) == {"Retry-After": "1"}
    assert error_headers(errors.InvalidRequest("x")) == {}


@pytest.mark.parametrize(
    "cls",
    [
        errors.InvalidRequest,
        errors.ImageError,
        errors.ImageTooLarge,
        errors.UnsupportedMediaType,
        errors.NotReady,
        errors.Overloaded,
        errors.ContextOverflow,
        errors.PayloadTooLarge,
    ],
)
def test_clients_can_turn_a_body_back_into_the_same_exception(cls: type[errors.PagescribeError]) -> None:
    sent = error_body(cls("message", param="p"))["error"]
    received = exception_for(sent["type"], sent["message"], param=sent["param"])
    assert type(received) is cls and received.param == "p"
