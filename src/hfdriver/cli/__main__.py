"""``python -m hfdriver.cli``."""

from hfdriver.cli._app import run

run()
