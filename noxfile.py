"""The sessions a contributor runs (``python3 -m pip install nox``, then ``nox -s NAME``).

``nox`` runs tests, lint, typecheck and docs, each in a venv of its own with the versions
of ``constraints.txt`` (those CI verifies). ``bench`` runs only when named: it takes
minutes and installs the peers it compares against (``bench/requirements.txt``); pass
its options after ``--`` (``nox -s bench -- --quick``).
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.reuse_existing_virtualenvs = True

DEV = ("-c", "constraints.txt", "-e", ".[dev]")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite: the README's test command (arguments go to pytest)."""
    session.install(*DEV)
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff format --check and ruff check, as CI runs them."""
    session.install("-c", "constraints.txt", "ruff")
    session.run("bash", ".ci/checks", "lint", external=True)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package, the tests and the examples, as CI runs it."""
    session.install(*DEV)
    session.run("bash", ".ci/checks", "types", external=True)


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, built strictly (``-- serve`` to preview it instead)."""
    session.install(*DEV)
    if session.posargs == ["serve"]:
        session.run("mkdocs", "serve")
    else:
        session.run("mkdocs", "build", "--strict")


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks (bench/run.py, ~12 minutes; writes docs/performance.md)."""
    session.install("-r", "bench/requirements.txt")
    session.run("python", "bench/run.py", *session.posargs)
