"""One error type for problems the user can fix, printed as one line by the entry points."""


class VaelabError(Exception):
    """A problem with the user's input (data, config, checkpoint) that the message explains.

    Entry points print ``vaelab: error: <message>`` instead of a traceback; set
    ``HYDRA_FULL_ERROR=1`` to see the full traceback.
    """


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): what a
    one-line error quotes of a library's multi-line message."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
