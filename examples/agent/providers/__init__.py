"""Agent providers: each module exposes `NAME` and `run(text) -> str`."""

from . import echo, reverse

PROVIDERS = {module.NAME: module for module in (echo, reverse)}
