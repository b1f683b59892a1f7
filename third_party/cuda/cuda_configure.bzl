"""Finds a CUDA toolkit at fetch time so the build works with and without nvcc.

Creates @local_cuda with:
  defs.bzl   CUDA_AVAILABLE (bool), NVCC (path or ""), CUDA_VERSION (string)
  BUILD      :cuda_headers, :cudart_static (empty libraries when CUDA is absent)
Looks in $CUDA_PATH, then /usr/local/cuda. Set EPSIM_NO_CUDA=1 to build as if absent.
"""

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
    ctx.file("BUILD", build)
    ctx.file("defs.bzl", "CUDA_AVAILABLE = %s\nCUDA_ROOT = %r\nNVCC = %r\nCUDA_VERSION = %r\n" % (
        "True" if root else "False",
        root,
        (root + "/bin/nvcc") if root else "",
        version,
    ))

cuda_configure = repository_rule(
    implementation = _cuda_configure_impl,
    environ = ["CUDA_PATH", "EPSIM_NO_CUDA"],
    local = True,
)
