"""Finds a CUDA toolkit at fetch time so the build works with and without nvcc.

Creates @local_cuda with:
  defs.bzl   CUDA_AVAILABLE (bool), NVCC (path or ""), CUDA_VERSION (string),
             MPI_AVAILABLE (bool)
  BUILD      :cuda_headers, :cudart_static (empty libraries when CUDA is absent),
             :mpi (OpenMPI headers and -lmpi; empty when MPI is absent)
Looks in $CUDA_PATH, then /usr/local/cuda. Set EPSIM_NO_CUDA=1 to build as if absent.
MPI (for the CPU all-to-all) is found through `mpicc --showme`; EPSIM_NO_MPI=1 leaves it out.
It lives here because the WORKSPACE declares one configured repository for system toolkits.
"""

def _mpi_build(ctx):
    """Returns (available, BUILD text for :mpi)."""
    empty = (False, '\ncc_library(name = "mpi")\n')
    if ctx.os.environ.get("EPSIM_NO_MPI", "") == "1":
        return empty
    mpicc = ctx.which("mpicc")
    if not mpicc:
        return empty
    inc = ctx.execute([mpicc, "--showme:incdirs"])
    lib = ctx.execute([mpicc, "--showme:libdirs"])
    if inc.return_code != 0 or lib.return_code != 0:
        return empty
    incdirs = inc.stdout.strip().split(" ")
    libdirs = [d for d in lib.stdout.strip().split(" ") if d]
    if not incdirs or not incdirs[0] or not ctx.path(incdirs[0] + "/mpi.h").exists:
        return empty
    ctx.symlink(incdirs[0], "mpi_include")
    linkopts = []
    for d in libdirs:
        linkopts += ["-L" + d, "-Wl,-rpath," + d]
    linkopts.append("-lmpi")
    return (True, """
cc_library(
    name = "mpi",
    hdrs = glob(["mpi_include/**/*.h"]),
    includes = ["mpi_include"],
    linkopts = %r,
)
""" % linkopts)

def _cuda_configure_impl(ctx):
    root = ""
    if ctx.os.environ.get("EPSIM_NO_CUDA", "") != "1":
        for candidate in [ctx.os.environ.get("CUDA_PATH", ""), "/usr/local/cuda"]:
            if candidate and ctx.path(candidate + "/bin/nvcc").exists:
                root = candidate
                break

    version = ""
    if root:
        result = ctx.execute([root + "/bin/nvcc", "--version"])
        for line in result.stdout.splitlines():
            if "release" in line:
                version = line.split("release ")[1].split(",")[0]
        ctx.symlink(root + "/include", "include")
        ctx.symlink(root + "/lib64", "lib64")
        build = """
package(default_visibility = ["//visibility:public"])
cc_library(name = "cuda_headers", hdrs = glob(["include/**/*.h", "include/**/*.hpp"]), includes = ["include"])
cc_library(name = "cudart_static", srcs = ["lib64/libcudart_static.a"], linkopts = ["-ldl", "-lrt", "-lpthread"], deps = [":cuda_headers"])
"""
    else:
        build = """
package(default_visibility = ["//visibility:public"])
cc_library(name = "cuda_headers")
cc_library(name = "cudart_static")
"""
    mpi_available, mpi_build = _mpi_build(ctx)
    ctx.file("BUILD", build + mpi_build)
    ctx.file("defs.bzl", "CUDA_AVAILABLE = %s\nCUDA_ROOT = %r\nNVCC = %r\nCUDA_VERSION = %r\nMPI_AVAILABLE = %s\n" % (
        "True" if root else "False",
        root,
        (root + "/bin/nvcc") if root else "",
        version,
        "True" if mpi_available else "False",
    ))

cuda_configure = repository_rule(
    implementation = _cuda_configure_impl,
    environ = ["CUDA_PATH", "EPSIM_NO_CUDA", "EPSIM_NO_MPI", "PATH"],
    local = True,
)
