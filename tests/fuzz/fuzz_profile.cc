// epsim fuzzing: the profile loader; what one input goes through is RunInput("profile", ...) in
// tests/fuzz/fuzz_targets.h (shared with //tests/robustness:regression_test).
//
//   tools/fuzz/build_and_run.sh 600 profile
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return epsim_fuzz::FuzzOne("profile", data, size);
}
