"""Exceptions an author or operator can see, named after Prefect's where Prefect has one."""

from __future__ import annotations


class HeadwaterException(Exception):
    """Base class of every error Headwater raises on purpose."""


class ParameterTypeError(HeadwaterException):
    """Flow parameters do not match the flow function's signature."""


class MissingContextError(HeadwaterException, RuntimeError):
    """Run-only API (``get_run_logger``, ``get_run_context``) used outside a run.

    Also a ``RuntimeError``, so code written against earlier Headwater versions still
    catches it.
    """


class SignatureMismatchError(HeadwaterException):
    """A flow or task was called with arguments its signature cannot bind."""


class UpstreamTaskError(HeadwaterException):
    """A task did not run because a task it waits for did not complete."""


class FailedRun(HeadwaterException):
    """Raised by ``State.result()`` when the state failed without an exception object."""


class CancelledRun(HeadwaterException):
    """Raised by ``State.result()`` for a cancelled run."""


class CrashedRun(HeadwaterException):
    """Raised by ``State.result()`` for a crashed run."""


class ResultStorageKeyError(HeadwaterException, ValueError):
    """A task's ``result_storage_key`` cannot be filled, or is not a safe relative path."""


class MissingResult(HeadwaterException):
    """A cached or persisted result could not be read back."""


class TaskRunTimeoutError(TimeoutError):
    """A task run exceeded its ``timeout_seconds``."""


class FlowRunTimeoutError(TimeoutError):
    """A flow run exceeded its ``timeout_seconds``."""


class TerminationSignal(BaseException):
    """The process received SIGTERM: stop the run and report it Cancelled.

    A ``BaseException`` so that an author's ``except Exception`` cannot swallow it.
    """


class BlockNotFoundError(HeadwaterException, ValueError):
    """No block of that name in the store (a ``ValueError``, as Prefect raises).

    The message names the block, the store looked in and how to create it.
    """

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


class MissingSecretError(BlockNotFoundError):
    """``Secret.load`` found no block, no environment variable and no mounted file."""


class BlockSecretNotFoundError(HeadwaterException, ValueError):
    """A block's secret field has no value in the store (a half-configured block)."""

    def __init__(self, message: str, name: str, field: str) -> None:
        super().__init__(message)
        self.name = name
        self.field = field


class BlockAlreadyExistsError(HeadwaterException, ValueError):
    """``save`` without ``overwrite=True`` found a block of that name."""


class BlockTypeError(HeadwaterException, ValueError):
    """A stored block's type is not the class loading it, or cannot be imported."""


class BlockValidationError(HeadwaterException, RuntimeError):
    """A stored block's fields do not fit its class (a ``RuntimeError``, as in Prefect)."""


class BlockStoreError(HeadwaterException):
    """The block or variable store cannot be used: an unknown ``HEADWATER_BLOCK_STORE``,
    a store plugin that is not installed, a read-only store, a corrupt document."""


class VariableAlreadyExistsError(HeadwaterException, ValueError):
    """``Variable.set`` without ``overwrite=True`` found a variable of that name."""


class InvalidNameError(HeadwaterException, ValueError):
    """A block or variable name breaks its naming rule (the message states the rule)."""


class NotificationError(HeadwaterException):
    """A notification block could not deliver a message (:mod:`headwater.blocks.notifications`).

    The message names the block type (and the block, when saved) and the receiver's
    status; it never holds a webhook URL, routing key or password. Attributes tell a
    caller whether and when to try again:

    * ``retryable``: ``True`` when sending again may succeed (connection refused or
      reset, a timeout, HTTP 429 or 5xx, an SMTP 4xx reply); ``False`` when the request
      or the block's configuration must change first (other HTTP 4xx, an SMTP 5xx reply,
      a bad URL, a TLS certificate that does not verify);
    * ``status``: the receiver's HTTP status, or the SMTP reply code; ``None`` when
      there was no answer;
    * ``retry_after``: seconds to wait before the next attempt, from a 429 or 503
      response's ``Retry-After`` header; ``None`` when it gave none.
    """

    def __init__(self, message: str, *, retryable: bool, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments do not survive BaseException's default pickling.
        return (_notification_error, (str(self), self.retryable, self.status,
                                      self.retry_after))


def _notification_error(message: str, retryable: bool, status: int | None,
                        retry_after: float | None) -> NotificationError:
    return NotificationError(message, retryable=retryable, status=status,
                             retry_after=retry_after)


class EntrypointError(HeadwaterException):
    """The entrypoint string is malformed or does not name a flow."""
