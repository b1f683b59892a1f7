// epsim kernels: seeded random inputs for the EP-layer operations, shared by the calibrator
// (calibrate/op_*.cc: inputs to check and time) and the kernel tests (tests/kernels/).
//
// One definition on purpose: the calibrator's correctness checks and the tests then run the
// kernels on the same kind of data. Sequences are fixed for a seed with this standard
// library (std::mt19937 is specified; the distributions are libstdc++'s), so a run repeats.
#ifndef EPSIM_KERNELS_RANDOM_DATA_H_
#define EPSIM_KERNELS_RANDOM_DATA_H_

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace epsim {
namespace kernels {

// `n` values drawn from a normal distribution N(0, scale^2).
inline std::vector<float> RandomVector(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Router output without a router: for each of `num_tokens` tokens, `top_k` distinct experts
// drawn uniformly from [0, num_experts) and a weight in [0.01, 1) for each, written
// token-major to `expert` and `weight` (resized to num_tokens x top_k).
inline void RandomChoices(int64_t num_tokens, int top_k, int num_experts, uint32_t seed,
                          std::vector<int32_t>* expert, std::vector<float>* weight) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> w(0.01f, 1.0f);
  expert->resize(num_tokens * top_k);
  weight->resize(num_tokens * top_k);
  std::vector<int32_t> all(num_experts);
  for (int64_t t = 0; t < num_tokens; ++t) {
    // A full shuffle, not a cheaper partial one: the kernel tests' tolerances were set on
    // these exact sequences (a partial Fisher-Yates draws other experts and pushed one
    // combine check just past its 1e-5 under ASan).
    for (int e = 0; e < num_experts; ++e) all[e] = e;
    std::shuffle(all.begin(), all.end(), rng);
    for (int j = 0; j < top_k; ++j) {
      (*expert)[t * top_k + j] = all[j];
      (*weight)[t * top_k + j] = w(rng);
    }
  }
}

}  // namespace kernels
}  // namespace epsim

#endif  // EPSIM_KERNELS_RANDOM_DATA_H_
