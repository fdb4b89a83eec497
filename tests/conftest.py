"""Shared by every test folder. The project is installed into the venv (scripts/setup.sh: ``pip install -e .``); pytest
puts this folder on the path itself (no ``__init__.py`` here), which is how ``tests/fakes.py`` is imported."""
