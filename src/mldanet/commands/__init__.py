"""The ``mldanet`` sub-commands, one module each: ``add_arguments(parser)`` and ``run(args) -> int``.

Only this package (and :mod:`mldanet.cli`) parses arguments; the library below it takes typed values.
"""
