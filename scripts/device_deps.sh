#!/usr/bin/env bash
# Packs the Debian-provided headers and libraries pinntk builds against (OpenBLAS, LAPACKE, GoogleTest,
# nlohmann-json, CLI11, GiNaC and CLN, the Boost, Eigen and Spectra headers it includes; nanobind and Python's headers
# for the Python module) into .devdeps.tar.xz, for a GPU machine that has the CUDA
# toolkit and a compiler but cannot install packages. benchmarks/device_check.sh unpacks it there. Run here after scripts/install_deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
arch=x86_64-linux-gnu
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
d="$stage/devdeps"
mkdir -p "$d/include" "$d/lib/$arch/cmake" "$d/share/cmake"
cp -r /usr/include/nlohmann /usr/include/CLI /usr/include/gtest /usr/include/gmock "$d/include/"
cp /usr/include/lapacke*.h "$d/include/"
cp -L /usr/include/$arch/cblas.h /usr/include/$arch/openblas_config.h "$d/include/"
cp -r /usr/lib/$arch/cmake/GTest "$d/lib/$arch/cmake/"
cp -r /usr/share/cmake/nlohmann_json /usr/share/cmake/CLI11 "$d/share/cmake/"
mkdir -p "$d/share/eigen3" && cp -r /usr/share/eigen3/cmake "$d/share/eigen3/"  # Eigen3Config.cmake
cp /usr/lib/$arch/libgtest*.a /usr/lib/$arch/libgmock*.a "$d/lib/$arch/"
for lib in libopenblas.so.0 liblapacke.so.3 liblapack.so.3 libblas.so.3 libtmglib.so.3 libgfortran.so.5 \
           libquadmath.so.0; do
  cp -L "/usr/lib/$arch/$lib" "$d/lib/$arch/"
done
ln -s libopenblas.so.0 "$d/lib/$arch/libopenblas.so"
ln -s liblapacke.so.3 "$d/lib/$arch/liblapacke.so"
cp -L /usr/lib/$arch/liblbfgsb.so.0 "$d/lib/$arch/" && ln -s liblbfgsb.so.0 "$d/lib/$arch/liblbfgsb.so"
# GiNaC and CLN (problem files): headers, shared libraries and relocatable pkg-config files (libgmp is the GPU
# machine's own: the compiler needs it too).
cp -r /usr/include/ginac /usr/include/cln "$d/include/"
cp -r /usr/include/toml++ "$d/include/"  # TOML problem files (header-only use)
for lib in libginac.so.11 libcln.so.6; do cp -L "/usr/lib/$arch/$lib" "$d/lib/$arch/"; done
ln -s libginac.so.11 "$d/lib/$arch/libginac.so" && ln -s libcln.so.6 "$d/lib/$arch/libcln.so"
mkdir -p "$d/lib/$arch/pkgconfig"
for pc in ginac cln; do
  sed -e 's|^prefix=.*|prefix=${pcfiledir}/../../..|' "/usr/lib/$arch/pkgconfig/$pc.pc" > "$d/lib/$arch/pkgconfig/$pc.pc"
done
# Header-only libraries (Boost's Sobol sequence; Eigen and Spectra where used): only the headers the sources reach,
# found by the compiler's dependency listing, not the whole trees (Boost's is 150 MB).
# Every C++ source of the build (-MG: headers found elsewhere, e.g. nanobind's, are listed, not fatal).
for src in $(git ls-files '*.cpp' | grep -v '^examples/'); do
  g++ -std=c++17 -M -MG -I. -I/usr/include/eigen3 -fopenmp "$src" 2>/dev/null | tr ' \\' '\n\n' || true
done | grep -E '^/usr/include/(boost|eigen3|Spectra)/' | sort -u | while read -r h; do
  mkdir -p "$d/include/$(dirname "${h#/usr/include/}")"
  cp -L "$h" "$d/include/${h#/usr/include/}"
done
# The Python module's build on the GPU machine (no package index there): nanobind (pure source and CMake files)
# and this interpreter's headers, used only where the GPU machine's python3 has none and is the same version.
python3 -m pip install -q --no-deps --target "$d/python" nanobind
pyinc=$(python3 -c "import sysconfig; print(sysconfig.get_paths()['include'])")
pyver=$(python3 -c "import sys; print('%d.%d' % sys.version_info[:2])")
if [ -f "$pyinc/Python.h" ]; then
  mkdir -p "$d/python-include" && cp -r "$pyinc" "$d/python-include/python$pyver"
fi
tar -C "$stage" -cJf .devdeps.tar.xz devdeps
grep -qx '/.devdeps.tar.xz' .git/info/exclude 2>/dev/null || echo '/.devdeps.tar.xz' >> .git/info/exclude
grep -qx '/.devdeps/' .git/info/exclude 2>/dev/null || echo '/.devdeps/' >> .git/info/exclude
ls -la .devdeps.tar.xz
