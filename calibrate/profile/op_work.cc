// epsim profile: per-operation work (see op_work.h).
#include "calibrate/profile/op_work.h"

#include <cmath>

namespace epsim {

OpWork RouteWork(double t, double h, double e) { return {2 * t * h * e, 2 * (t * h + h * e) + 4 * t * e, t}; }

OpWork LayoutWork(double t, double k) { return {0, 16 * t * k, t}; }

OpWork PermuteWork(double copies, double token_bytes) { return {0, 2.0 * copies * token_bytes, copies}; }

OpWork ExpertWork(double m, double h, double f) { return {6 * m * h * f, 2 * 3 * h * f + 2 * m * (2 * h + 3 * f), m}; }

OpWork CombineWork(double copies, double t, double h) {
  return {2.0 * copies * h, copies * 2 * h + t * 2 * h, t};
}

namespace {

double WeightBytes(const GroupedGemm& g) {
  return g.dtype == GemmDtype::kFp8 ? g.n * g.k + 4 * std::ceil(g.n / 128) * std::ceil(g.k / 128) : 2 * g.n * g.k;
}

}  // namespace

double ExpertWeightBytes(double hidden, double ffn, GemmDtype dtype) {
  return WeightBytes(GateUpGemm({1}, hidden, ffn, dtype)) + WeightBytes(DownGemm({1}, hidden, ffn, dtype));
}

OpWork GroupedGemmWork(const GroupedGemm& g) {
  const bool fp8 = g.dtype == GemmDtype::kFp8;
  const double weight_bytes = WeightBytes(g);
  const double input_bytes_per_row = fp8 ? g.k + 4 * std::ceil(g.k / 128) : 2 * g.k;
  OpWork work;
  for (const int64_t r : g.rows) {
    if (r <= 0) continue;
    const double m = static_cast<double>(r);
    work.flops += 2 * m * g.n * g.k;
    work.bytes += weight_bytes + m * input_bytes_per_row + 2 * m * g.n;
    work.tokens += m;
  }
  return work;
}

double GroupedGemmTiles(const GroupedGemm& g, int row_tile, int col_tile) {
  double tiles = 0;
  for (const int64_t r : g.rows)
    if (r > 0) tiles += std::ceil(static_cast<double>(r) / row_tile) * std::ceil(g.n / col_tile);
  return tiles;
}

GroupedGemm GateUpGemm(const std::vector<int64_t>& rows, double hidden, double ffn, GemmDtype dtype) {
  return {rows, 2 * ffn, hidden, dtype};
}

GroupedGemm DownGemm(const std::vector<int64_t>& rows, double hidden, double ffn, GemmDtype dtype) {
  return {rows, hidden, ffn, dtype};
}

GroupedGemm DownInputGradGemm(const std::vector<int64_t>& rows, double hidden, double ffn, GemmDtype dtype) {
  return {rows, ffn, hidden, dtype};
}

GroupedGemm GateUpInputGradGemm(const std::vector<int64_t>& rows, double hidden, double ffn, GemmDtype dtype) {
  return {rows, hidden, 2 * ffn, dtype};
}

std::vector<GroupedGemm> AttentionProjections(double tokens, const AttentionShape& a, bool kv_cache) {
  const std::vector<int64_t> rows = {static_cast<int64_t>(tokens)};
  // Dense GEMMs of a cuBLAS-class library (split K where the tiles leave SMs idle).
  auto dense = [&a](const std::vector<int64_t>& m, double n, double k) {
    return GroupedGemm{m, n, k, a.projection_dtype, true};
  };
  const GroupedGemm output = dense(rows, a.hidden, a.heads * a.head_dim);
  if (!a.IsLatent()) return {dense(rows, (a.heads + 2 * a.kv_heads) * a.head_dim, a.hidden), output};
  const double d = a.head_dim, c = a.kv_lora_rank, r = a.rope_head_dim, query = a.heads * (d + r);
  std::vector<GroupedGemm> gemms;
  if (a.q_lora_rank > 0) {
    gemms.push_back(dense(rows, a.q_lora_rank, a.hidden));
    gemms.push_back(dense(rows, query, a.q_lora_rank));
  } else {
    gemms.push_back(dense(rows, query, a.hidden));
  }
  gemms.push_back(dense(rows, c + r, a.hidden));  // the latent and the RoPE key, kept in the cache
  if (kv_cache) {  // absorbed: each head's query into the latent, its attended latent out to d
    const std::vector<int64_t> per_head(static_cast<size_t>(a.heads), static_cast<int64_t>(tokens));
    gemms.push_back(dense(per_head, c, d));
    gemms.push_back(dense(per_head, d, c));
  } else {
    gemms.push_back(dense(rows, a.heads * 2 * d, c));  // keys and values up from the latent
  }
  gemms.push_back(output);
  return gemms;
}

OpWork AttentionCoreWork(double tokens, double context, const AttentionShape& a, bool kv_cache) {
  if (a.IsLatent()) {
    const double d = a.head_dim, c = a.kv_lora_rank, r = a.rope_head_dim, h = a.heads;
    if (kv_cache) {
      const double q_and_o = tokens * h * ((c + r) + c) * 2;
      return {2 * tokens * context * h * (2 * c + r), q_and_o + tokens * context * (c + r) * 2, tokens};
    }
    const double q_k_v_o = tokens * h * ((d + r) + (d + r) + d + d) * 2;
    return {2 * tokens * context * h * (2 * d + r), q_k_v_o, tokens};
  }
  const double q_and_o = 2 * tokens * a.heads * a.head_dim * 2;
  const double kv_tokens = kv_cache ? tokens * context : tokens;
  return {4 * tokens * context * a.heads * a.head_dim, q_and_o + 2 * kv_tokens * a.kv_heads * a.head_dim * 2, tokens};
}

}  // namespace epsim
