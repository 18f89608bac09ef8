"""The one exception type the handler raises for bad input: its text becomes the FAILED reason."""

from __future__ import annotations


class RepackError(Exception):
    """A problem with an input artifact; ``str()`` names the artifact and the problem."""

    def __init__(self, artifact: str, problem: str) -> None:
        super().__init__(f"{artifact}: {problem}")
        self.artifact = artifact
        self.problem = problem


class StreamError(Exception):
    """A problem found while reading a stream; wrapped into ``RepackError`` by the caller."""
