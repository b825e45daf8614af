"""Placeholder until its issue lands."""


def register(subparsers):
    pass
