"""Mullama: a local LLM server and terminal app on llama.cpp."""

__version__ = "0.1.0"
