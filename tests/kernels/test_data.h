// epsim kernel tests: seeded random inputs and a whole-layer run on the CPU reference.
#ifndef EPSIM_TESTS_KERNELS_TEST_DATA_H_
#define EPSIM_TESTS_KERNELS_TEST_DATA_H_

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/ep_ops.h"

namespace epsim {
namespace kernels {
namespace testing {

inline std::vector<float> RandomVector(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Random distinct experts per token with random positive weights.
inline void RandomChoices(int64_t num_tokens, int top_k, int num_experts, uint32_t seed,
                          std::vector<int32_t>* expert, std::vector<float>* weight) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> w(0.01f, 1.0f);
  expert->resize(num_tokens * top_k);
  weight->resize(num_tokens * top_k);
  std::vector<int32_t> all(num_experts);
  for (int64_t t = 0; t < num_tokens; ++t) {
    for (int e = 0; e < num_experts; ++e) all[e] = e;
    std::shuffle(all.begin(), all.end(), rng);
    for (int j = 0; j < top_k; ++j) {
      (*expert)[t * top_k + j] = all[j];
      (*weight)[t * top_k + j] = w(rng);
    }
  }
}

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
