"""Stands in for Cython's `cython` module where Cython is not installed (a pure install).

Cython is a build requirement, not a runtime one. A hot module that branches on
`cython.compiled` imports `cython` and falls back to this; compiled, Cython resolves the name
itself at build time and this module is never imported.
"""

compiled = False
