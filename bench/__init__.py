"""Benchmarks: each module measures one thing and prints one JSON line.

Run one from the repository root as a script or as a module (the editable install makes ``bench``
importable): ``.venv/bin/python bench/qa.py --help`` or ``.venv/bin/python -m bench.qa --help``.
``bench._common`` holds what they share; ``bench.hardnews`` generates the hard news set.
"""
