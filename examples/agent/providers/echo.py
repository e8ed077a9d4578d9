"""Answers with its input: the simplest provider, for checking the wiring."""

NAME = "echo"


def run(text: str) -> str:
    return text
