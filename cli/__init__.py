"""The ``kup`` command line: one module per command group (``main`` holds the app and the pipeline commands),
the views that print results, the client of a running ``kup api`` and ``kup up``'s start-up progress.

It sits above ``flows``: ``cli -> flows -> answering -> training -> indexing -> connectors -> errors``.
"""
