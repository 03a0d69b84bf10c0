"""What a service says when it cannot do what was asked: a sentence that says what to do, a
short code, and the HTTP status the API answers with (the command line prints the sentence).

Services raise ``ServiceError``; ``api.errors`` turns it into a JSON body or a page."""

from __future__ import annotations


class ServiceError(Exception):
    def __init__(self, status: int, message: str, code: str = "error") -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


# The workflow's rejection types (``workflows.casework.Rejected``), as HTTP statuses.
REJECTION_STATUS = {
    "OutOfOrder": 409,
    "CaseClosed": 409,
    "Duplicate": 409,
    "InvalidDate": 422,
    "NotFound": 422,
}
