"""Build the Cython fast path.

Options (``python setup.py build_ext``):
  --cython-annotate        write an HTML annotation next to each .pyx
  --cython-directives=...  extra Cython compiler directives (k=v,k=v)
Environment: QRVERIFY_DEBUG=1 turns on line tracing and bounds checks everywhere.
"""

from __future__ import annotations

import glob
import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext as _build_ext

EXTENSIONS = [
    "fastpath._decode",
    "fastpath._hashset",
    "fastpath._engine",
    "fastpath._records",
    "fastpath._links",
    "fastpath._ossl",
]


class build_ext(_build_ext):  # noqa: N801 - setuptools naming
    user_options = _build_ext.user_options + [
        ("cython-annotate", None, "write Cython HTML annotation"),
        ("cython-directives=", None, "extra Cython compiler directives"),
    ]
    boolean_options = _build_ext.boolean_options + ["cython-annotate"]

    def initialize_options(self) -> None:
        super().initialize_options()
        self.cython_annotate = False
        self.cython_directives = None

    def finalize_options(self) -> None:
        from Cython.Build import cythonize

        directives = {
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "embedsignature": True,
        }
        if os.environ.get("QRVERIFY_DEBUG"):
            directives.update(linetrace=True, boundscheck=True, wraparound=True)
        if self.cython_directives:
            for item in self.cython_directives.split(","):
                key, _, value = item.partition("=")
                directives[key.strip()] = value.strip()
        macros = [("CYTHON_TRACE", "1")] if os.environ.get("QRVERIFY_DEBUG") else []
        self.distribution.ext_modules[:] = cythonize(
            [
                Extension(
                    name,
                    [name.replace(".", "/") + ".pyx"],
                    define_macros=macros,
                    depends=[
                        "fastpath/sha256.h",
                        "fastpath/ossl.h",
                        *glob.glob("fastpath/*.pxi"),
                        *glob.glob("fastpath/*.pxd"),
                    ],
                )
                for name in EXTENSIONS
            ],
            compiler_directives=directives,
            annotate=bool(self.cython_annotate),
        )
        super().finalize_options()


setup(
    ext_modules=[Extension(name, [name.replace(".", "/") + ".pyx"]) for name in EXTENSIONS],
    cmdclass={"build_ext": build_ext},
)
