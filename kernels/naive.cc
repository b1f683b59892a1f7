// epsim kernels: naive reference loops (see naive.h).
#include "kernels/naive.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

namespace epsim {
namespace kernels {
namespace naive {

std::vector<float> GateLogits(const std::vector<float>& x, const std::vector<float>& gate,
                              int64_t num_tokens, int64_t hidden, int num_experts) {
  std::vector<float> logits(num_tokens * num_experts);
  for (int64_t t = 0; t < num_tokens; ++t)
    for (int e = 0; e < num_experts; ++e) {
      double acc = 0;
      for (int64_t h = 0; h < hidden; ++h) acc += double(x[t * hidden + h]) * gate[e * hidden + h];
      logits[t * num_experts + e] = static_cast<float>(acc);
    }
  return logits;
}

void Select(const std::vector<float>& logits, const float* bias, int64_t num_tokens,
            const RouterConfig& c, std::vector<int32_t>* topk_expert,
            std::vector<float>* topk_weight) {
  const int e = c.num_experts, size = e / c.num_groups;
  topk_expert->assign(num_tokens * c.top_k, -1);
  topk_weight->assign(num_tokens * c.top_k, 0);
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float* l = logits.data() + t * e;
    std::vector<double> score(e), choice(e);
    if (c.score_func == ScoreFunc::kSoftmax) {
      double mx = l[0], sum = 0;
      for (int i = 0; i < e; ++i) mx = std::max<double>(mx, l[i]);
      for (int i = 0; i < e; ++i) sum += std::exp(l[i] - mx);
      for (int i = 0; i < e; ++i) score[i] = std::exp(l[i] - mx) / sum;
    } else {
      for (int i = 0; i < e; ++i) score[i] = 1.0 / (1.0 + std::exp(-double(l[i])));
    }
    for (int i = 0; i < e; ++i) choice[i] = score[i] + (bias ? bias[i] : 0.0);
    // Groups ranked by (score desc, index asc) with a full sort.
    std::vector<bool> allowed(e, true);
    if (c.num_groups > 1 && c.topk_groups < c.num_groups) {
      std::vector<std::pair<double, int>> groups;
      for (int g = 0; g < c.num_groups; ++g) {
        std::vector<double> s(choice.begin() + g * size, choice.begin() + (g + 1) * size);
        std::sort(s.rbegin(), s.rend());
        const double gs = (c.score_func == ScoreFunc::kSoftmax || size < 2) ? s[0] : s[0] + s[1];
        groups.push_back({-gs, g});
      }
      std::sort(groups.begin(), groups.end());
      allowed.assign(e, false);
      for (int p = 0; p < c.topk_groups; ++p)
        for (int i = 0; i < size; ++i) allowed[groups[p].second * size + i] = true;
    }
    std::vector<std::pair<double, int>> order;
    for (int i = 0; i < e; ++i)
      if (allowed[i]) order.push_back({-choice[i], i});
    std::sort(order.begin(), order.end());
    double sum = 0;
    for (int j = 0; j < c.top_k; ++j) sum += score[order[j].second];
    for (int j = 0; j < c.top_k; ++j) {
      const int i = order[j].second;
      double w = score[i];
      if (c.normalize_weights && sum > 0) w /= sum;
      (*topk_expert)[t * c.top_k + j] = i;
      (*topk_weight)[t * c.top_k + j] = static_cast<float>(w * c.weight_scale);
    }
  }
}

Layout DispatchLayout(const std::vector<int32_t>& topk_expert,
                      const std::vector<float>& topk_weight,
                      const std::vector<int32_t>& expert_rank, int64_t num_tokens, int top_k,
                      int num_experts, int num_ranks, int64_t capacity, DropPolicy policy) {
  Layout l;
  const int64_t slots = num_tokens * top_k;
  l.num_tokens_per_expert.assign(num_experts, 0);
  l.num_dropped_per_expert.assign(num_experts, 0);
  l.expert_row_begin.assign(num_experts, 0);
  l.num_copies_per_rank.assign(num_ranks, 0);
  l.num_tokens_per_rank.assign(num_ranks, 0);
  l.rank_row_begin.assign(num_ranks + 1, 0);
  l.slot_to_row.assign(slots, -1);
  // Kept slots of each expert, by scanning every slot once per expert.
  std::vector<std::vector<int32_t>> kept(num_experts);
  for (int e = 0; e < num_experts; ++e) {
    std::vector<int32_t> mine;
    for (int64_t i = 0; i < slots; ++i)
      if (topk_expert[i] == e) mine.push_back(static_cast<int32_t>(i));
    if (capacity >= 0 && static_cast<int64_t>(mine.size()) > capacity) {
      if (policy == DropPolicy::kScore)
        std::sort(mine.begin(), mine.end(), [&](int32_t a, int32_t b) {
          if (topk_weight[a] != topk_weight[b]) return topk_weight[a] > topk_weight[b];
          return a < b;
        });
      l.num_dropped_per_expert[e] = static_cast<int32_t>(mine.size() - capacity);
      mine.resize(capacity);
      std::sort(mine.begin(), mine.end());
    }
    l.num_tokens_per_expert[e] = static_cast<int32_t>(mine.size());
    kept[e] = mine;
  }
  for (int r = 0; r < num_ranks; ++r) {
    l.rank_row_begin[r] = static_cast<int32_t>(l.row_to_slot.size());
    for (int e = 0; e < num_experts; ++e) {
      if (expert_rank[e] != r) continue;
      l.expert_row_begin[e] = static_cast<int32_t>(l.row_to_slot.size());
      for (int32_t s : kept[e]) {
        l.slot_to_row[s] = static_cast<int32_t>(l.row_to_slot.size());
        l.row_to_slot.push_back(s);
      }
    }
    l.num_copies_per_rank[r] = static_cast<int32_t>(l.row_to_slot.size()) - l.rank_row_begin[r];
  }
  l.rank_row_begin[num_ranks] = static_cast<int32_t>(l.row_to_slot.size());
  for (int r = 0; r < num_ranks; ++r)
    for (int64_t t = 0; t < num_tokens; ++t) {
      bool any = false;
      for (int j = 0; j < top_k; ++j) {
        const int64_t s = t * top_k + j;
        any |= l.slot_to_row[s] >= 0 && expert_rank[topk_expert[s]] == r;
      }
      l.num_tokens_per_rank[r] += any;
    }
  return l;
}

std::vector<float> Permute(const std::vector<float>& x, const std::vector<int32_t>& row_to_slot,
                           int64_t hidden, int top_k) {
  std::vector<float> out(row_to_slot.size() * hidden);
  for (size_t r = 0; r < row_to_slot.size(); ++r)
    for (int64_t h = 0; h < hidden; ++h) out[r * hidden + h] = x[(row_to_slot[r] / top_k) * hidden + h];
  return out;
}

std::vector<float> ExpertFfn(const std::vector<float>& input,
                             const std::vector<int32_t>& num_rows,
                             const std::vector<int32_t>& row_begin, int64_t hidden, int64_t ffn,
                             const std::vector<float>& w1, const std::vector<float>& w2) {
  std::vector<float> out(input.size(), 0.0f);
  std::vector<double> a(ffn);
  for (size_t e = 0; e < num_rows.size(); ++e) {
    const float* g = w1.data() + e * hidden * 2 * ffn;
    const float* d = w2.data() + e * ffn * hidden;
    for (int64_t r = row_begin[e]; r < row_begin[e] + num_rows[e]; ++r) {
      const float* x = input.data() + r * hidden;
      for (int64_t f = 0; f < ffn; ++f) {
        double gate = 0, up = 0;
        for (int64_t h = 0; h < hidden; ++h) {
          gate += double(x[h]) * g[h * 2 * ffn + f];
          up += double(x[h]) * g[h * 2 * ffn + ffn + f];
        }
        a[f] = gate / (1.0 + std::exp(-gate)) * up;
      }
      for (int64_t h = 0; h < hidden; ++h) {
        double acc = 0;
        for (int64_t f = 0; f < ffn; ++f) acc += a[f] * d[f * hidden + h];
        out[r * hidden + h] = static_cast<float>(acc);
      }
    }
  }
  return out;
}

std::vector<float> Combine(const std::vector<float>& expert_out,
                           const std::vector<int32_t>& slot_to_row,
                           const std::vector<float>& topk_weight, int64_t num_tokens, int top_k,
                           int64_t hidden) {
  std::vector<float> out(num_tokens * hidden);
  for (int64_t t = 0; t < num_tokens; ++t)
    for (int64_t h = 0; h < hidden; ++h) {
      double acc = 0;
      for (int j = 0; j < top_k; ++j) {
        const int32_t row = slot_to_row[t * top_k + j];
        if (row >= 0) acc += double(topk_weight[t * top_k + j]) * expert_out[row * hidden + h];
      }
      out[t * hidden + h] = static_cast<float>(acc);
    }
  return out;
}

double MaxRelativeError(const std::vector<float>& a, const std::vector<float>& b, double floor) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double err = std::fabs(double(a[i]) - b[i]) / std::max(std::fabs(double(b[i])), floor);
    if (std::isnan(err)) return INFINITY;
    worst = std::max(worst, err);
  }
  return worst;
}

}  // namespace naive
}  // namespace kernels
}  // namespace epsim
