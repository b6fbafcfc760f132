"""One error type for problems the user can fix, printed as one line by the entry points."""


class VaelabError(Exception):
    """A problem with the user's input (data, config, checkpoint) that the message explains.

    Entry points print ``vaelab: error: <message>`` instead of a traceback; set
    ``HYDRA_FULL_ERROR=1`` to see the full traceback.
    """
