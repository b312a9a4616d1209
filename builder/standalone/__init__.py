"""Standard-library-only helpers shared by kernel-builder and the build trees it generates.

`create-pyproject` copies this package into `<tree>/cmake/kbtools/`, where CMake runs it
(`python <tree>/cmake/kbtools <command>`), so a generated tree builds without kernel-builder
installed while both use one implementation of arch selection, naming, probing and metadata.
Modules import each other relatively and nothing outside the standard library.
"""
