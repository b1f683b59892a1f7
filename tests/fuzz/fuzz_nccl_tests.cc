// epsim fuzzing: the nccl-tests output reader (ReadNcclTests, `epsim-calibrate --import`),
// then the all-to-all fit on what it accepted; what one input goes through is
// RunInput("nccl_tests", ...) in tests/fuzz/fuzz_targets.h (shared with
// //tests/robustness:regression_test).
//
//   tools/fuzz/build_and_run.sh 600 nccl_tests
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return epsim_fuzz::FuzzOne("nccl_tests", data, size);
}
