"""Answers with its input reversed, standing in for a real model call."""

NAME = "reverse"


def run(text: str) -> str:
    return text[::-1]
