"""The one exception tree. HTTP status codes are assigned in ``wire/errors.py``, never by matching messages.

    PagescribeError
    ├── RequestError                 the caller sent something we will not process        (400)
    │   ├── InvalidRequest           malformed JSON, wrong types, unknown/out-of-range parameter
    │   ├── ImageError               bytes that are not a usable image (bad base64, not an image, truncated)
    │   ├── ContextOverflow          the prompt does not fit the model's context window
    │   ├── PayloadTooLarge          body or decoded image over the configured limits     (413)
    │   │   └── ImageTooLarge
    │   ├── UnsupportedMediaType     content type is not JSON / JSON Lines               (415)
    │   └── Unauthorized             an API key is required and was missing or wrong      (401)
    ├── ModelError                   model files missing, unreadable or inconsistent
    │   ├── ModelNotFound
    │   └── ModelInvalid
    ├── ServiceUnavailable           not ready or overloaded; the caller may retry        (503)
    │   ├── NotReady
    │   └── Overloaded             queue full                                            (503)
    └── EngineError                  inference failed for a reason that is not the caller's (500)
"""

from __future__ import annotations


class PagescribeError(Exception):
    """Base of every error pagescribe raises on purpose. ``param`` names the offending field, when there is one."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class RequestError(PagescribeError):
    """The request cannot be processed as sent."""


class InvalidRequest(RequestError):
    pass


class ImageError(RequestError):
    pass


class ContextOverflow(RequestError):
    pass


class PayloadTooLarge(RequestError):
    pass


class ImageTooLarge(PayloadTooLarge, ImageError):
    pass


class UnsupportedMediaType(RequestError):
    pass


class Unauthorized(RequestError):
    pass


class ModelError(PagescribeError):
    """Model files are missing, unreadable or do not fit together."""


class ModelNotFound(ModelError):
    pass


class ModelInvalid(ModelError):
    pass


class ServiceUnavailable(PagescribeError):
    """Try again later; ``retry_after_s`` says when."""

    def __init__(self, message: str, *, retry_after_s: float = 1.0, param: str | None = None) -> None:
        super().__init__(message, param=param)
        self.retry_after_s = retry_after_s


class NotReady(ServiceUnavailable):
    pass


class Overloaded(ServiceUnavailable):
    pass


class EngineError(PagescribeError):
    """Inference failed for a reason that is not the caller's."""
