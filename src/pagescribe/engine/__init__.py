"""Engines answer GenerationRequests. ``base`` holds the protocol, ``sinks`` the ways to read an engine, ``factory``
the one way to build the llama.cpp engine from ``options``; each backend lives in its own module."""

from pagescribe.engine.base import CancelToken, Engine, Health, Work, final
from pagescribe.engine.sinks import AsyncEvents, Events, collect, stream

__all__ = ["AsyncEvents", "CancelToken", "Engine", "Events", "Health", "Work", "collect", "final", "stream"]
