"""``python -m cli`` runs the ``kup`` command line."""

from cli.main import app

app()
