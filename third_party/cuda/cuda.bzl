"""cuda_objects: compiles .cu files with nvcc into a static cc_library.

Each .cu becomes one genrule calling nvcc (with -objtemp, so parallel compiles do not share
temporary files) for sm_80 and sm_90 plus compute_90 PTX for newer cards. The cc_library
wrapping the objects must be linkstatic, or tests fail with an undefined
__cudaPopCallConfiguration. Only use it when @local_cuda//:defs.bzl says CUDA_AVAILABLE.
"""

load("@local_cuda//:defs.bzl", "CUDA_ROOT", "NVCC")

_GENCODE = " ".join([
    "-gencode arch=compute_80,code=sm_80",
    "-gencode arch=compute_90,code=sm_90",
    "-gencode arch=compute_90,code=compute_90",
])

def cuda_objects(name, srcs, hdrs = [], deps = [], defines = [], **kwargs):
    objs = []
    for src in srcs:
        obj = name + "_" + src.replace("/", "_").replace(".cu", ".o")
        native.genrule(
            name = obj + "_nvcc",
            srcs = [src] + hdrs,
            outs = [obj],
            cmd = " ".join([
                NVCC,
                "-std=c++17 -O3 -Xcompiler -fPIC -objtemp",
                _GENCODE,
                "-I. -I$(GENDIR) -isystem " + CUDA_ROOT + "/include",
                " ".join(["-D" + d for d in defines]),
                "-c $(location " + src + ") -o $@",
            ]),
        )
        objs.append(":" + obj)
    native.cc_library(
        name = name,
        srcs = objs,
        hdrs = hdrs,
        deps = deps,
        defines = defines,
        linkstatic = True,
        **kwargs
    )
