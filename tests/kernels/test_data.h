// epsim kernel tests: layout output arrays held in vectors (the random inputs are
// kernels/random_data.h, shared with the calibrator).
#ifndef EPSIM_TESTS_KERNELS_TEST_DATA_H_
#define EPSIM_TESTS_KERNELS_TEST_DATA_H_

#include <cstdint>
#include <vector>

#include "kernels/ep_ops.h"

namespace epsim {
namespace kernels {
namespace testing {

// Layout output arrays held in vectors.
struct LayoutBuffers {
  std::vector<int32_t> per_expert, dropped, expert_begin, copies_per_rank, tokens_per_rank,
      rank_begin, slot_to_row, row_to_slot;
  LayoutBuffers(int64_t slots, int num_experts, int num_ranks)
      : per_expert(num_experts), dropped(num_experts), expert_begin(num_experts),
        copies_per_rank(num_ranks), tokens_per_rank(num_ranks), rank_begin(num_ranks + 1),
        slot_to_row(slots), row_to_slot(slots) {}
  LayoutOut Out() {
    return {per_expert.data(),  dropped.data(),         expert_begin.data(),
            copies_per_rank.data(), tokens_per_rank.data(), rank_begin.data(),
            slot_to_row.data(), row_to_slot.data()};
  }
};

}  // namespace testing
}  // namespace kernels
}  // namespace epsim

#endif  // EPSIM_TESTS_KERNELS_TEST_DATA_H_
