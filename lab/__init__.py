"""Veo Prompt Lab: a prompt lab for the APIYI text-to-video API (Veo 3.1)."""

__version__ = "0.1.0"
