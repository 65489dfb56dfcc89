"""The optional compiled build: ``HIVE_COMPILE=1 pip install .`` compiles hive's hot modules
(hive/_compiled.py lists them) with mypyc, which needs a C compiler.  Without the variable,
hive installs as pure Python, the source of truth.  `make compiled` builds a copy of the
tree under build/compiled for the test suite.
"""

import os
import runpy
import sys

from setuptools import setup

ext_modules = []
if os.environ.get("HIVE_COMPILE") == "1":
    try:
        from mypyc.build import mypycify
    except ImportError:
        # Asked for the build's requirements (egg_info), which _build_backend.py adds mypy to.
        if "egg_info" not in sys.argv:
            raise SystemExit("HIVE_COMPILE=1 needs mypy (pip install mypy)") from None
    else:
        modules = runpy.run_path(os.path.join("hive", "_compiled.py"))["MODULES"]
        ext_modules = mypycify(list(modules), opt_level="3", group_name="hive")

setup(ext_modules=ext_modules)
