// epsim kernels: per-token expert selection (see select.h and ep_ops.h, RouterConfig).
#include "kernels/select.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace epsim {
namespace kernels {

void SelectExperts(const float* logits, const float* bias, const RouterConfig& c,
                   int32_t* expert, float* weight, std::vector<float>& scratch) {
  const int e = c.num_experts;
  scratch.resize(2 * static_cast<size_t>(e));
  float* score = scratch.data();      // probabilities or sigmoids: give the weights
  float* choice = scratch.data() + e; // score + bias, masked: gives the choice
  if (c.score_func == ScoreFunc::kSoftmax) {
    const float mx = *std::max_element(logits, logits + e);
    float sum = 0;
    for (int i = 0; i < e; ++i) sum += score[i] = std::exp(logits[i] - mx);
    for (int i = 0; i < e; ++i) score[i] /= sum;
  } else {
    for (int i = 0; i < e; ++i) score[i] = 1.0f / (1.0f + std::exp(-logits[i]));
  }
  for (int i = 0; i < e; ++i) choice[i] = score[i] + (bias ? bias[i] : 0.0f);
  if (c.num_groups > 1 && c.topk_groups < c.num_groups) {
    const int size = e / c.num_groups;
    const float kMasked = -std::numeric_limits<float>::infinity();
    float group_score[1024];
    const int groups = std::min(c.num_groups, 1024);
    for (int g = 0; g < groups; ++g) {
      const float* s = choice + g * size;
      if (c.score_func == ScoreFunc::kSoftmax || size < 2) {
        group_score[g] = *std::max_element(s, s + size);
      } else {  // sum of the two best
        float a = kMasked, b = kMasked;
        for (int i = 0; i < size; ++i) {
          if (s[i] > a) { b = a; a = s[i]; } else if (s[i] > b) { b = s[i]; }
        }
        group_score[g] = a + b;
      }
    }
    bool keep[1024] = {};
    for (int pick = 0; pick < c.topk_groups; ++pick) {
      int best = -1;
      for (int g = 0; g < groups; ++g)
        if (!keep[g] && (best < 0 || group_score[g] > group_score[best])) best = g;
      keep[best] = true;
    }
    for (int g = 0; g < groups; ++g)
      if (!keep[g]) std::fill(choice + g * size, choice + (g + 1) * size, kMasked);
  }
  // k passes of argmax: strict '>' keeps the lowest index among equals.
  float sum = 0;
  for (int j = 0; j < c.top_k; ++j) {
    int best = -1;
    for (int i = 0; i < e; ++i) {
      if (std::isinf(choice[i]) && choice[i] < 0) continue;  // masked or taken
      if (best < 0 || choice[i] > choice[best]) best = i;
    }
    if (best < 0) throw KernelError("route: no expert left to choose (NaN logits?)");
    choice[best] = -std::numeric_limits<float>::infinity();
    expert[j] = best;
    weight[j] = score[best];
    sum += score[best];
  }
  for (int j = 0; j < c.top_k; ++j) {
    if (c.normalize_weights && sum > 0) weight[j] /= sum;
    weight[j] *= c.weight_scale;
  }
}

}  // namespace kernels
}  // namespace epsim
