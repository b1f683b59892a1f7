// epsim kernels: CPU reference of the EP layer (see ep_ops.h). fp32, Eigen GEMMs, work split
// over std::threads by token or by (expert, row block), so a skewed load still uses every core.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <eigen3/Eigen/Dense>

#include "kernels/ep_ops.h"
#include "kernels/select.h"

namespace epsim {
namespace kernels {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMatrix>;
using Map = Eigen::Map<RowMatrix>;

// A persistent pool of worker threads (created once, on first use), so that small calls do
// not pay for thread creation.
class ThreadPool {
 public:
  static ThreadPool& Get() {
    static ThreadPool* pool = new ThreadPool();  // never destroyed: workers outlive main
    return *pool;
  }
  // Runs task(i) for i in [0, tasks) on up to `threads` threads (the caller is one of them).
  void Run(int tasks, int threads, const std::function<void(int)>& task) {
    threads = std::max(1, std::min(threads, tasks));
    if (threads == 1) {
      for (int i = 0; i < tasks; ++i) task(i);
      return;
    }
    std::unique_lock<std::mutex> run_lock(run_mutex_);  // one parallel region at a time
    Grow(threads - 1);
    std::atomic<int> next{0};
    auto body = [&]() {
      for (int i = next++; i < tasks; i = next++) task(i);
    };
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = body;
      helpers_wanted_ = threads - 1;
      helpers_done_ = 0;
      ++generation_;
    }
    wake_.notify_all();
    body();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return helpers_done_ == threads - 1; });
    job_ = nullptr;
  }

 private:
  void Grow(int helpers) {
    while (static_cast<int>(workers_.size()) < helpers) {
      workers_.emplace_back([this] { Loop(); });
      workers_.back().detach();
    }
  }
  void Loop() {
    uint64_t seen = 0;
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_ != seen && helpers_wanted_ > 0; });
        seen = generation_;
        --helpers_wanted_;
        job = job_;
      }
      job();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        ++helpers_done_;
      }
      done_.notify_all();
    }
  }
  std::mutex run_mutex_, mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  std::function<void()> job_;
  uint64_t generation_ = 0;
  int helpers_wanted_ = 0, helpers_done_ = 0;
};

// Runs fn(begin, end) over [0, n) in contiguous chunks of at least `grain` items on up to
// `num_threads` threads.
void ParallelFor(int64_t n, int num_threads, int64_t grain,
                 const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(num_threads, n / std::max<int64_t>(grain, 1)));
  if (threads <= 1) {
    fn(0, n);
    return;
  }
  const int64_t chunk = (n + threads - 1) / threads;
  ThreadPool::Get().Run(static_cast<int>(threads), static_cast<int>(threads), [&](int t) {
    const int64_t begin = t * chunk, end = std::min(n, begin + chunk);
    if (begin < end) fn(begin, end);
  });
}

void Require(bool ok, const std::string& op, const std::string& why) {
  if (!ok) throw KernelError(op + ": " + why);
}

}  // namespace

void ValidateRouterConfig(const RouterConfig& c) {
  Require(c.num_experts > 0, "route", "num_experts must be > 0, got " + std::to_string(c.num_experts));
  Require(c.top_k > 0 && c.top_k <= c.num_experts, "route",
          "top_k must be in [1, num_experts], got " + std::to_string(c.top_k));
  Require(c.num_groups > 0 && c.num_groups <= 1024 && c.num_experts % c.num_groups == 0, "route",
          "num_groups must be <= 1024 and divide num_experts, got " + std::to_string(c.num_groups));
  Require(c.topk_groups > 0 && c.topk_groups <= c.num_groups, "route",
          "topk_groups must be in [1, num_groups], got " + std::to_string(c.topk_groups));
  Require(c.topk_groups * (c.num_experts / c.num_groups) >= c.top_k, "route",
          "topk_groups x group size must be >= top_k");
}

int ContiguousExpertRank(int expert, int num_experts, int num_ranks) {
  const int per = num_experts / num_ranks, extra = num_experts % num_ranks;
  const int boundary = extra * (per + 1);
  if (expert < boundary) return expert / (per + 1);
  return extra + (expert - boundary) / per;
}

uint16_t FloatToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x7fffffu)) return 0x7fc0;  // NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

float Bf16ToFloat(uint16_t value) {
  const uint32_t bits = static_cast<uint32_t>(value) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

namespace cpu {

void Route(const float* x, const float* gate_weight, const float* bias, int64_t num_tokens,
           int64_t hidden, const RouterConfig& config, float* logits, int32_t* topk_expert,
           float* topk_weight, const ExecContext& ctx) {
  ValidateRouterConfig(config);
  const int64_t e = config.num_experts;
  const ConstMap w(gate_weight, e, hidden);
  ParallelFor(num_tokens, ctx.num_threads, 16, [&](int64_t begin, int64_t end) {
    const ConstMap xb(x + begin * hidden, end - begin, hidden);
    Map lb(logits + begin * e, end - begin, e);
    lb.noalias() = xb * w.transpose();
    std::vector<float> scratch;
    for (int64_t t = begin; t < end; ++t) {
      SelectExperts(logits + t * e, bias, config, topk_expert + t * config.top_k,
                    topk_weight + t * config.top_k, scratch);
    }
  });
}

int64_t DispatchLayout(const int32_t* topk_expert, const float* topk_weight,
                       const int32_t* expert_rank, int64_t num_tokens, int top_k,
                       int num_experts, int num_ranks, int64_t capacity, DropPolicy policy,
                       const LayoutOut& out, const ExecContext& /*ctx*/) {
  Require(num_experts > 0 && num_ranks > 0 && top_k > 0, "layout", "counts must be > 0");
  const int64_t num_slots = num_tokens * top_k;
  // Counting sort of slots by expert; slots arrive in token order, so each expert's list is
  // in token order.
  std::vector<int64_t> count(num_experts, 0);
  for (int64_t i = 0; i < num_slots; ++i) {
    const int32_t ex = topk_expert[i];
    if (ex < 0 || ex >= num_experts)
      throw KernelError("layout: slot " + std::to_string(i) + ": expert " + std::to_string(ex) +
                        " outside [0, " + std::to_string(num_experts) + ")");
    ++count[ex];
  }
  std::vector<int64_t> begin(num_experts + 1, 0);
  for (int ex = 0; ex < num_experts; ++ex) begin[ex + 1] = begin[ex] + count[ex];
  std::vector<int32_t> by_expert(num_slots);
  {
    std::vector<int64_t> fill(begin.begin(), begin.end() - 1);
    for (int64_t i = 0; i < num_slots; ++i) by_expert[fill[topk_expert[i]]++] = static_cast<int32_t>(i);
  }
  // Capacity: keep a prefix of each expert's list (reordered by score first if asked).
  std::vector<int64_t> kept(num_experts);
  for (int ex = 0; ex < num_experts; ++ex) {
    int32_t* list = by_expert.data() + begin[ex];
    const int64_t n = count[ex];
    kept[ex] = capacity < 0 ? n : std::min<int64_t>(n, capacity);
    if (kept[ex] < n && policy == DropPolicy::kScore) {
      std::stable_sort(list, list + n, [&](int32_t a, int32_t b) {
        return topk_weight[a] > topk_weight[b];
      });
      std::sort(list, list + kept[ex]);  // kept rows back in token order
    }
    out.num_tokens_per_expert[ex] = static_cast<int32_t>(kept[ex]);
    out.num_dropped_per_expert[ex] = static_cast<int32_t>(n - kept[ex]);
  }
  // Rows: by rank, then expert, then token.
  std::vector<std::vector<int>> experts_of_rank(num_ranks);
  for (int ex = 0; ex < num_experts; ++ex) {
    const int r = expert_rank[ex];
    if (r < 0 || r >= num_ranks)
      throw KernelError("layout: expert " + std::to_string(ex) + ": rank " + std::to_string(r) +
                        " outside [0, " + std::to_string(num_ranks) + ")");
    experts_of_rank[r].push_back(ex);
  }
  for (int64_t i = 0; i < num_slots; ++i) out.slot_to_row[i] = -1;
  int64_t row = 0;
  for (int r = 0; r < num_ranks; ++r) {
    out.rank_row_begin[r] = static_cast<int32_t>(row);
    for (int ex : experts_of_rank[r]) {
      out.expert_row_begin[ex] = static_cast<int32_t>(row);
      for (int64_t i = 0; i < kept[ex]; ++i) {
        const int32_t slot = by_expert[begin[ex] + i];
        out.slot_to_row[slot] = static_cast<int32_t>(row);
        out.row_to_slot[row++] = slot;
      }
    }
    out.num_copies_per_rank[r] = static_cast<int32_t>(row - out.rank_row_begin[r]);
  }
  out.rank_row_begin[num_ranks] = static_cast<int32_t>(row);
  // Distinct tokens per destination rank (a token goes once to each rank it needs).
  std::fill(out.num_tokens_per_rank, out.num_tokens_per_rank + num_ranks, 0);
  std::vector<int> ranks;
  for (int64_t t = 0; t < num_tokens; ++t) {
    ranks.clear();
    for (int j = 0; j < top_k; ++j) {
      const int64_t slot = t * top_k + j;
      if (out.slot_to_row[slot] < 0) continue;
      const int r = expert_rank[topk_expert[slot]];
      if (std::find(ranks.begin(), ranks.end(), r) == ranks.end()) ranks.push_back(r);
    }
    for (int r : ranks) ++out.num_tokens_per_rank[r];
  }
  return row;
}

void Permute(const float* x, const int32_t* row_to_slot, int64_t num_rows, int64_t hidden,
             int top_k, float* permuted, const ExecContext& ctx) {
  ParallelFor(num_rows, ctx.num_threads, 256, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t token = row_to_slot[r] / top_k;
      std::memcpy(permuted + r * hidden, x + token * hidden, sizeof(float) * hidden);
    }
  });
}

void ExpertFfn(const float* input, const int32_t* num_rows, const int32_t* row_begin,
               int num_experts, int64_t hidden, int64_t ffn, const float* w_gate_up,
               const float* w_down, float* output, float* workspace, const ExecContext& ctx) {
  int64_t total_rows = 0;
  for (int ex = 0; ex < num_experts; ++ex) total_rows += num_rows[ex];
  // Work items of at most `block` rows, so one hot expert still spreads over threads.
  const int threads = std::max(1, ctx.num_threads);
  const int64_t block = std::max<int64_t>(32, (total_rows + 2 * threads - 1) / (2 * threads));
  struct Item { int expert; int64_t row, rows; };
  std::vector<Item> items;
  for (int ex = 0; ex < num_experts; ++ex)
    for (int64_t r = 0; r < num_rows[ex]; r += block)
      items.push_back({ex, row_begin[ex] + r, std::min<int64_t>(block, num_rows[ex] - r)});
  float* h_all = workspace;                    // [total_rows, 2F], indexed by row
  float* a_all = workspace + total_rows * 2 * ffn;  // [total_rows, F]
  // Rows of the permuted buffer may start anywhere (row_begin), so index scratch by the
  // item's position in a packed order instead.
  std::vector<int64_t> packed(items.size() + 1, 0);
  for (size_t i = 0; i < items.size(); ++i) packed[i + 1] = packed[i] + items[i].rows;
  const int workers = static_cast<int>(std::min<size_t>(threads, items.size()));
  ThreadPool::Get().Run(static_cast<int>(items.size()), workers, [&](int i) {
    const Item& it = items[i];
    const ConstMap in(input + it.row * hidden, it.rows, hidden);
    const ConstMap w1(w_gate_up + static_cast<int64_t>(it.expert) * hidden * 2 * ffn, hidden, 2 * ffn);
    const ConstMap w2(w_down + static_cast<int64_t>(it.expert) * ffn * hidden, ffn, hidden);
    Map h(h_all + packed[i] * 2 * ffn, it.rows, 2 * ffn);
    Map a(a_all + packed[i] * ffn, it.rows, ffn);
    Map out(output + it.row * hidden, it.rows, hidden);
    h.noalias() = in * w1;
    for (int64_t r = 0; r < it.rows; ++r) {
      const float* hr = h.data() + r * 2 * ffn;
      float* ar = a.data() + r * ffn;
      for (int64_t c = 0; c < ffn; ++c) {
        const float g = hr[c];
        ar[c] = g / (1.0f + std::exp(-g)) * hr[ffn + c];
      }
    }
    out.noalias() = a * w2;
  });
}

void Combine(const float* expert_out, const int32_t* slot_to_row, const float* topk_weight,
             int64_t num_tokens, int top_k, int64_t hidden, float* out, const ExecContext& ctx) {
  ParallelFor(num_tokens, ctx.num_threads, 32, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      Eigen::Map<Eigen::VectorXf> o(out + t * hidden, hidden);
      o.setZero();
      for (int j = 0; j < top_k; ++j) {
        const int32_t row = slot_to_row[t * top_k + j];
        if (row < 0) continue;
        o += topk_weight[t * top_k + j] *
             Eigen::Map<const Eigen::VectorXf>(expert_out + static_cast<int64_t>(row) * hidden, hidden);
      }
    }
  });
}

}  // namespace cpu
}  // namespace kernels
}  // namespace epsim
