"""The extension list and compiler flags; all metadata lives in pyproject.toml.

Environment switches for local builds:
  FASTNN_DEBUG=1   Cython bounds checks, -O1 -g and AddressSanitizer/UBSan (see
                   docs/guide/install.md).
  FASTNN_NATIVE=1  add -march=native (the default build runs on any x86-64 or ARM CPU;
                   the SIMD kernels are chosen at run time either way).
"""

import os
import sys
from glob import glob

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

debug = os.environ.get("FASTNN_DEBUG") == "1"
native = os.environ.get("FASTNN_NATIVE") == "1"

if sys.platform == "win32":  # no pthreads: the kernels run on the calling thread (pool.c)
    compile_args, link_args = ["/O2"], []
else:
    # No errno and no trapping floating-point exceptions (the kernels never read either):
    # lets the compiler vectorise libm-free math and selects; every result stays IEEE's.
    compile_args = [
        "-std=c11",
        "-pthread",
        "-fno-math-errno",
        "-fno-trapping-math",
        "-Wall",
        "-Wno-unused-function",
    ]
    link_args = ["-pthread"]
    if debug:
        sanitize = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
        compile_args += ["-O1", "-g"] + sanitize
        link_args += sanitize
    else:
        compile_args.append("-O3")
    if native:
        compile_args.append("-march=native")

directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": debug,
    "initializedcheck": debug,
    "cdivision": not debug,
    "embedsignature": True,
}

extensions = [
    Extension(
        "fastnn._kernels",
        sources=["fastnn/_kernels.pyx"] + sorted(glob("csrc/*.c")),
        depends=sorted(glob("csrc/*.h")) + ["fastnn/_kernels.pxd"],  # rebuild when a header changes
        include_dirs=["csrc", np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
