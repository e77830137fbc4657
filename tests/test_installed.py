"""The suite runs against the installed, compiled build, never a source tree copy."""

import os
import sysconfig
from pathlib import Path

import fastpath._decode
import fastpath._hashset
import keys
import verifier


def test_fast_path_is_compiled() -> None:
    for mod in (fastpath._decode, fastpath._hashset):
        assert Path(mod.__file__).suffix == ".so", mod.__file__


def test_imports_come_from_the_installed_package() -> None:
    if not os.environ.get("QRVERIFY_REQUIRE_INSTALLED"):
        return  # a developer's in-place build; scripts/test sets the variable
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    plat = Path(sysconfig.get_paths()["platlib"]).resolve()
    for mod in (verifier, keys, fastpath._decode):
        path = Path(mod.__file__).resolve()
        assert site in path.parents or plat in path.parents, path
