// epsim fuzzing: the routing-trace CSV loader (LoadRoutingTrace, `workload.routing:
// trace:FILE`), then the sampler on what it accepted; what one input goes through is
// RunInput("routing_trace", ...) in tests/fuzz/fuzz_targets.h (shared with
// //tests/robustness:regression_test).
//
//   tools/fuzz/build_and_run.sh 600 routing_trace
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return epsim_fuzz::FuzzOne("routing_trace", data, size);
}
