// epsim kernels: a library opened at run time (dlopen), so that binaries start where it is
// missing and say what is: the cuBLAS, cuBLASLt and NCCL loaders share it. Host code only.
#ifndef EPSIM_KERNELS_SHARED_LIBRARY_H_
#define EPSIM_KERNELS_SHARED_LIBRARY_H_

#include <dlfcn.h>

#include <initializer_list>
#include <string>

namespace epsim {
namespace kernels {

struct SharedLibrary {
  void* handle = nullptr;
  std::string file;   // the name that opened
  std::string error;  // the first failure (no file opened, a missing symbol); "" when none

  // Opens the first of `names` that loads; if none does, `error` names them, dlerror() and
  // `hint` (what the user can do).
  static SharedLibrary OpenFirst(std::initializer_list<const char*> names, const std::string& hint) {
    SharedLibrary lib;
    std::string tried;
    for (const char* name : names) {
      lib.handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (lib.handle) {
        lib.file = name;
        return lib;
      }
      tried += (tried.empty() ? "" : ", ") + std::string(name);
    }
    lib.error = "cannot dlopen " + tried + ": " + std::string(dlerror()) + " (" + hint + ")";
    return lib;
  }

  // Sets `fn` to the symbol `name`; a required one that is missing sets `error` (the first
  // failure is kept), an optional one is left null (a newer library's call).
  template <typename Fn>
  void Load(Fn& fn, const char* name, bool required = true) {
    fn = nullptr;
    if (!handle) return;
    fn = reinterpret_cast<Fn>(dlsym(handle, name));
    if (!fn && required && error.empty()) error = file + ": missing symbol " + name;
  }
};

}  // namespace kernels
}  // namespace epsim

#endif  // EPSIM_KERNELS_SHARED_LIBRARY_H_
