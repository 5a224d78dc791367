"""Stands in for the `openai` Python package, which Debian 12 does not ship
(llmd's tests install nothing from PyPI). Importing it works, so the other
tests of a file that imports it still run; a test that uses the client
fails with this message and is counted as not run here."""


class OpenAI:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("the openai Python client is not packaged in Debian 12: this test cannot run here")
