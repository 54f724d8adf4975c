"""The ``lpm`` command line (extra ``cli``): ``lpm --help`` lists the commands.

The Typer app is imported lazily so :mod:`.config` stays usable without the ``cli`` extra
(the web UI relies on it).
"""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    """Entry point of the ``lpm`` script."""
    try:
        from .app import app
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SystemExit(
            f'lpm needs the cli extra ({exc.name} is missing): '
            'pip install "langchain-persistent-memory[cli]"') from None
    app()
