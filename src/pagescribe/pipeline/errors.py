"""Why a document could not be turned into pages.

    PagescribeError
    └── DocumentError                a document cannot be opened or rendered; ``reason``: a stable code
        ├── EmptyDocument            zero bytes, or no pages                                  ("empty")
        ├── EncryptedDocument        needs a password                                        ("encrypted")
        ├── CorruptDocument          not readable as the format it claims to be              ("corrupt")
        ├── TooLargeDocument         over the size or pixel limits                           ("too_large")
        ├── UnsupportedDocument      a type pagescribe does not read                         ("unsupported")
        └── ConverterUnavailable     LibreOffice is needed and missing, or it failed         ("converter")

In a ``convert`` run each of these becomes an error record for its document and the run goes on.
"""

from __future__ import annotations

from pagescribe.errors import PagescribeError


class DocumentError(PagescribeError):
    """A document that cannot be opened or rendered. The message names the file and the cause."""

    reason = "document"


class EmptyDocument(DocumentError):
    reason = "empty"


class EncryptedDocument(DocumentError):
    reason = "encrypted"


class CorruptDocument(DocumentError):
    reason = "corrupt"


class TooLargeDocument(DocumentError):
    reason = "too_large"


class UnsupportedDocument(DocumentError):
    reason = "unsupported"


class ConverterUnavailable(DocumentError):
    reason = "converter"
