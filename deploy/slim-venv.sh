#!/bin/sh
# Shrink a venv built for the serving image to what serving runs (deploy/Dockerfile's build stage).
#   slim-venv.sh /opt/tabserve      (after the dependencies, before tabserve itself)
# Each step is measured in docs/adr/0011-images-without-a-registry.md; the image test
# (tests/integration/test_images.py) proves the result still answers /predict and /v2 through ONNX.
set -eu
VENV="$1"
SITE="$(echo "$VENV"/lib/python3*/site-packages)"

# Debug symbols in extension modules (uvloop alone: 13 MB -> 2 MB). Not the vendored libraries
# in *.libs/: auditwheel's patchelf edits do not survive strip (numpy's OpenBLAS then fails with
# "ELF load command address/offset not page-aligned").
find "$SITE" -type f -name '*.cpython-*.so' ! -path '*.libs/*' -exec strip --strip-unneeded {} +
# Test suites, C sources and headers: no import reaches them.
find "$SITE" -depth -type d -name tests -prune -exec rm -rf {} +
find "$SITE" -type f \( -name '*.pyx' -o -name '*.pxd' -o -name '*.c' -o -name '*.h' \) -delete
# onnxruntime's C API library (35 MB): the Python binding does not link it (NEEDED: libc,
# libstdc++ only; RUNPATH $ORIGIN) and loads it nowhere; it is there for C/C++ users and plugin
# execution providers. Its model-conversion tools are not imported by inference either.
rm -rf "$SITE"/onnxruntime/capi/libonnxruntime.so.* \
    "$SITE"/onnxruntime/tools "$SITE"/onnxruntime/transformers "$SITE"/onnxruntime/quantization
# numpy's Fortran-wrapper generator and its distutils: build tools.
rm -rf "$SITE"/numpy/f2py "$SITE"/numpy/distutils "$SITE"/numpy/_pyinstaller
find "$VENV" -type d -name __pycache__ -prune -exec rm -rf {} +
