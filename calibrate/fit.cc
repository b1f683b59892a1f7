// epsim calibration: robust roofline fitting (see fit.h).
#include "calibrate/fit.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>

#include <eigen3/Eigen/Dense>

#include "common/stats.h"

namespace epsim {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// The folds k-fold cross-validation uses for n points: min(folds, n), or 0 (none) below 2
// folds or 4 points.
int EffectiveFolds(int n, int folds) {
  folds = std::min(folds, n);
  return folds >= 2 && n >= 4 ? folds : 0;
}

// k-fold cross-validation over a seeded shuffle, the same for every fit: per fold,
// `score(train, test, held)` fits the training points and appends the relative errors of the
// test points it can predict. A fold with fewer than 2 training points, or whose fit throws
// std::invalid_argument, adds nothing. Returns every held-out error.
template <typename Point, typename Score>
std::vector<double> HeldOutErrors(const std::vector<Point>& points, int folds, uint32_t seed, const Score& score) {
  std::vector<double> held;
  const int n = static_cast<int>(points.size());
  folds = EffectiveFolds(n, folds);
  if (folds == 0) return held;
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  for (int f = 0; f < folds; ++f) {
    std::vector<Point> train, test;
    for (int i = 0; i < n; ++i) (i % folds == f ? test : train).push_back(points[order[i]]);
    if (train.size() < 2) continue;
    try {
      score(train, test, held);
    } catch (const std::invalid_argument&) {
    }
  }
  return held;
}

// Internal parameters: time = f + max(a*flops + c*flops/tokens, b*bytes).
struct Linear {
  double f = 0, a = 0, c = 0, b = 0;
  double Compute(const FitPoint& p) const {
    return p.flops > 0 ? a * p.flops + (p.tokens > 0 ? c * p.flops / p.tokens : 0.0) : 0.0;
  }
  double Memory(const FitPoint& p) const { return b * p.bytes; }
  double Time(const FitPoint& p) const { return f + std::max(Compute(p), Memory(p)); }
};

// Weighted relative least squares with parameters >= 0, for one branch assignment
// (compute[i] true: point i is on the compute branch). Tries every subset of free
// parameters (16) and keeps the best feasible one.
Linear SolveAssigned(const std::vector<FitPoint>& pts, const std::vector<double>& w,
                     const std::vector<bool>& compute) {
  const int n = static_cast<int>(pts.size());
  Eigen::MatrixXd A(n, 4);
  Eigen::VectorXd y(n);
  for (int i = 0; i < n; ++i) {
    const FitPoint& p = pts[i];
    const double s = std::sqrt(w[i]) / p.time_s;
    const bool cb = compute[i];
    A(i, 0) = s;
    A(i, 1) = cb ? s * p.flops : 0;
    A(i, 2) = cb && p.tokens > 0 ? s * p.flops / p.tokens : 0;
    A(i, 3) = cb ? 0 : s * p.bytes;
    y(i) = s * p.time_s;
  }
  // Scale columns for conditioning.
  Eigen::Vector4d scale;
  for (int j = 0; j < 4; ++j) {
    const double m = A.col(j).cwiseAbs().maxCoeff();
    scale(j) = m > 0 ? m : 1;
    A.col(j) /= scale(j);
  }
  Linear best;
  double best_loss = kInf;
  for (int mask = 0; mask < 16; ++mask) {
    std::vector<int> cols;
    for (int j = 0; j < 4; ++j)
      if ((mask >> j) & 1) {
        if (A.col(j).cwiseAbs().maxCoeff() == 0) goto next;  // unidentifiable column
        cols.push_back(j);
      }
    {
      Eigen::Vector4d x = Eigen::Vector4d::Zero();
      if (!cols.empty()) {
        Eigen::MatrixXd sub(n, cols.size());
        for (size_t k = 0; k < cols.size(); ++k) sub.col(k) = A.col(cols[k]);
        const Eigen::VectorXd sol = sub.colPivHouseholderQr().solve(y);
        for (size_t k = 0; k < cols.size(); ++k) {
          if (!(sol(k) >= 0)) goto next;
          x(cols[k]) = sol(k);
        }
      }
      const double loss = (A * x - y).squaredNorm();
      if (loss < best_loss) {
        best_loss = loss;
        best = {x(0) / scale(0), x(1) / scale(1), x(2) / scale(2), x(3) / scale(3)};
      }
    }
  next:;
  }
  return best;
}

double Loss(const Linear& m, const std::vector<FitPoint>& pts, const std::vector<double>& w) {
  double loss = 0;
  for (size_t i = 0; i < pts.size(); ++i) {
    const double r = (m.Time(pts[i]) - pts[i].time_s) / pts[i].time_s;
    loss += w[i] * r * r;
  }
  return loss;
}

// Best fit for fixed weights: from several starting branch assignments, alternate
// (solve, reassign) until the assignment is stable.
Linear FitWeighted(const std::vector<FitPoint>& pts, const std::vector<double>& w) {
  const int n = static_cast<int>(pts.size());
  std::vector<int> by_intensity(n);
  std::iota(by_intensity.begin(), by_intensity.end(), 0);
  auto intensity = [&](int i) { return pts[i].bytes > 0 ? pts[i].flops / pts[i].bytes : kInf; };
  std::sort(by_intensity.begin(), by_intensity.end(),
            [&](int x, int y) { return intensity(x) < intensity(y); });
  std::vector<int> splits;
  const int steps = std::min(n, 24);
  for (int s = 0; s <= steps; ++s) splits.push_back(s * n / steps);
  splits.erase(std::unique(splits.begin(), splits.end()), splits.end());
  Linear best;
  double best_loss = kInf;
  for (int split : splits) {
    std::vector<bool> compute(n, false);
    for (int r = split; r < n; ++r) compute[by_intensity[r]] = true;
    Linear m;
    for (int iter = 0; iter < 30; ++iter) {
      m = SolveAssigned(pts, w, compute);
      std::vector<bool> next(n);
      for (int i = 0; i < n; ++i) next[i] = m.Compute(pts[i]) > m.Memory(pts[i]);
      // A branch with zero rate cannot be chosen: keep points with work where they were.
      if (next == compute) break;
      compute = next;
    }
    const double loss = Loss(m, pts, w);
    if (loss < best_loss) {
      best_loss = loss;
      best = m;
    }
  }
  return best;
}

// Huber IRLS around FitWeighted. Returns the model and the final robust residual scale.
Linear FitRobust(const std::vector<FitPoint>& pts, const FitOptions& opt, double* sigma_out) {
  std::vector<double> w(pts.size(), 1.0);
  Linear m = FitWeighted(pts, w);
  double sigma = 0;
  for (int round = 0; round < 6; ++round) {
    std::vector<double> abs_r(pts.size());
    for (size_t i = 0; i < pts.size(); ++i)
      abs_r[i] = std::fabs((m.Time(pts[i]) - pts[i].time_s) / pts[i].time_s);
    sigma = std::max(1.4826 * Median(abs_r), 1e-3);
    for (size_t i = 0; i < pts.size(); ++i) {
      const double u = abs_r[i] / sigma;
      w[i] = u <= opt.huber_k ? 1.0 : opt.huber_k / u;
    }
    m = FitWeighted(pts, w);
  }
  if (sigma_out) *sigma_out = sigma;
  return m;
}

RooflineParams ToParams(const Linear& m) {
  RooflineParams p;
  p.fixed_s = m.f;
  p.flop_rate_Fps = m.a > 0 ? 1.0 / m.a : (m.c > 0 ? kInf : kInf);
  p.half_rate_tokens = m.a > 0 ? m.c / m.a : 0.0;
  p.mem_rate_Bps = m.b > 0 ? 1.0 / m.b : kInf;
  return p;
}

}  // namespace

double RooflineParams::Time(const FitPoint& p) const {
  double rate = flop_rate_Fps;
  if (half_rate_tokens > 0 && p.tokens > 0) rate *= p.tokens / (p.tokens + half_rate_tokens);
  const double compute = p.flops > 0 ? p.flops / rate : 0.0;
  const double memory = p.bytes > 0 ? p.bytes / mem_rate_Bps : 0.0;
  return fixed_s + std::max(compute, memory);
}

FitResult FitRoofline(const std::vector<FitPoint>& points, const FitOptions& opt) {
  if (points.size() < 2) throw std::invalid_argument("fit: need at least 2 points");
  for (const FitPoint& p : points)
    if (!(p.time_s > 0)) throw std::invalid_argument("fit: a measured time is not positive");
  FitResult out;
  double sigma = 0;
  Linear m = FitRobust(points, opt, &sigma);
  // A compute term with a == 0 but c > 0 is a pure 1/tokens term: keep it by giving a a tiny
  // positive value would change the form; instead treat c without a as unused (rare).
  if (m.a == 0) m.c = 0;
  out.params = ToParams(m);
  bool any_flops = false, any_bytes = false;
  for (const FitPoint& p : points) {
    any_flops |= p.flops > 0;
    any_bytes |= p.bytes > 0;
  }
  // Rates that no point was bound by: the lowest rate that never exceeds a measured time.
  if (std::isinf(out.params.flop_rate_Fps)) {
    if (!any_flops) {
      out.flop_rate_unused = true;
    } else {
      double rate = 0;
      for (const FitPoint& p : points)
        if (p.flops > 0) rate = std::max(rate, p.flops / std::max(p.time_s - m.f, 1e-12));
      out.params.flop_rate_Fps = rate;
      out.params.half_rate_tokens = 0;
      out.flop_rate_bound = true;
    }
  }
  if (std::isinf(out.params.mem_rate_Bps)) {
    if (!any_bytes) {
      out.mem_rate_unused = true;
    } else {
      double rate = 0;
      for (const FitPoint& p : points)
        if (p.bytes > 0) rate = std::max(rate, p.bytes / std::max(p.time_s - m.f, 1e-12));
      out.params.mem_rate_Bps = rate;
      out.mem_rate_bound = true;
    }
  }
  std::vector<double> train;
  for (size_t i = 0; i < points.size(); ++i) {
    const double r = (out.params.Time(points[i]) - points[i].time_s) / points[i].time_s;
    train.push_back(std::fabs(r));
    if (std::fabs(r) > opt.outlier_sigmas * sigma && std::fabs(r) > 0.05)
      out.outliers.push_back(static_cast<int>(i));
  }
  out.train_error_median = Median(train);
  const int folds = EffectiveFolds(static_cast<int>(points.size()), opt.folds);
  if (folds > 0) {
    const std::vector<double> held = HeldOutErrors(
        points, folds, opt.seed, [&](const std::vector<FitPoint>& train_pts, const std::vector<FitPoint>& test_pts,
                                     std::vector<double>& errors) {
          const Linear fm = FitRobust(train_pts, opt, nullptr);
          for (const FitPoint& p : test_pts) errors.push_back(std::fabs((fm.Time(p) - p.time_s) / p.time_s));
        });
    out.folds = folds;
    out.heldout_error_median = Median(held);
    out.heldout_error_p90 = Quantile(held, 0.9);
  }
  return out;
}

namespace {

// The non-negative relative least-squares fit of t = f + m c + b x over `points`, with c
// left out when `with_messages` is false: every subset of the free terms is solved
// unconstrained and the best one whose terms are all >= 0, with x > 0, is kept.
AllToAllFit SolveAllToAll(const std::vector<AllToAllPoint>& points, bool with_messages) {
  const int n = static_cast<int>(points.size());
  Eigen::MatrixXd a(n, 3);
  Eigen::VectorXd t(n);
  for (int i = 0; i < n; ++i) {
    const double w = 1 / points[i].time_s;  // relative error: every size counts alike
    a(i, 0) = w;
    a(i, 1) = with_messages ? points[i].messages * w : 0;
    a(i, 2) = points[i].bytes * w;
    t(i) = 1;
  }
  double best_residual = kInf;
  Eigen::Vector3d best = Eigen::Vector3d::Zero();
  for (int mask = 1; mask < 8; ++mask) {
    if (!(mask & 4)) continue;                    // the bandwidth term is always there
    if ((mask & 2) && !with_messages) continue;
    std::vector<int> cols;
    for (int c = 0; c < 3; ++c)
      if (mask & (1 << c)) cols.push_back(c);
    Eigen::MatrixXd sub(n, cols.size());
    for (size_t c = 0; c < cols.size(); ++c) sub.col(c) = a.col(cols[c]);
    const Eigen::VectorXd x = sub.colPivHouseholderQr().solve(t);
    if ((x.array() < 0).any() || x(x.size() - 1) <= 0) continue;
    const double residual = (sub * x - t).squaredNorm();
    if (residual < best_residual) {
      best_residual = residual;
      best.setZero();
      for (size_t c = 0; c < cols.size(); ++c) best(cols[c]) = x(c);
    }
  }
  if (!std::isfinite(best_residual)) throw std::invalid_argument("fit: no positive bandwidth fits the points");
  AllToAllFit fit;
  fit.fixed_s = best(0);
  fit.per_message_s = best(1);
  fit.bandwidth_Bps = 1 / best(2);
  fit.per_message_unresolved = !with_messages;
  return fit;
}

}  // namespace

AllToAllFit FitAllToAll(const std::vector<AllToAllPoint>& points, int folds, uint32_t seed) {
  if (points.size() < 2) throw std::invalid_argument("fit: need at least 2 points");
  bool any_bytes = false;
  std::set<double> message_counts;
  for (const AllToAllPoint& p : points) {
    if (!(p.time_s > 0)) throw std::invalid_argument("fit: a measured time is not positive");
    any_bytes |= p.bytes > 0;
    message_counts.insert(p.messages);
  }
  if (!any_bytes) throw std::invalid_argument("fit: no point moves bytes");
  const bool with_messages = message_counts.size() >= 2;
  AllToAllFit fit = SolveAllToAll(points, with_messages);
  const std::vector<double> held = HeldOutErrors(
      points, folds, seed, [&](const std::vector<AllToAllPoint>& train, const std::vector<AllToAllPoint>& test,
                               std::vector<double>& errors) {
        const AllToAllFit part = SolveAllToAll(train, with_messages);
        for (const AllToAllPoint& p : test) errors.push_back(std::fabs((part.Time(p) - p.time_s) / p.time_s));
      });
  if (!held.empty()) {
    fit.heldout_error_median = Median(held);
    fit.heldout_error_p90 = Quantile(held, 0.9);
  }
  return fit;
}

namespace {

// The grouped_gemm model (profile.h) with rate R for bf16 launches and R8 for fp8 ones (0:
// none measured), each as the peak with efficiency 1.
OpModel GemmModel(const GemmGrid& grid, double fixed_s, double rate_Fps, double k_half, double mem_Bps,
                  double rate_fp8_Fps = 0) {
  OpModel m;
  m.name = "expert";
  m.form = "grouped_gemm";
  m.fixed_s = fixed_s;
  m.mem_rate_Bps = mem_Bps;
  m.gemm.sms = grid.sms;
  m.gemm.row_tile = grid.row_tile;
  m.gemm.col_tile = grid.col_tile;
  m.gemm.peak_bf16_Fps = rate_Fps;
  m.gemm.peak_fp8_Fps = rate_fp8_Fps;
  m.gemm.efficiency = 1;
  m.gemm.efficiency_fp8 = 1;
  m.gemm.k_half = k_half;
  m.flop_rate_Fps = rate_Fps;
  return m;
}

double LayerTimeS(const OpModel& m, const GroupedGemmPoint& p) {
  return m.GroupedGemmS(GateUpGemm(p.rows, p.hidden, p.ffn, p.dtype)) +
         m.GroupedGemmS(DownGemm(p.rows, p.hidden, p.ffn, p.dtype));
}

// One launch in the fit's linear terms: time = fixed + max(compute / R, bytes / M), with
// compute = waves x 2 row_tile col_tile (K + k_half) x sms (the tile time at rate 1).
struct LaunchTerms {
  double compute = 0, bytes = 0;
  bool present = false;
};

std::vector<LaunchTerms> Terms(const GroupedGemmPoint& p, const GemmGrid& grid, double k_half) {
  std::vector<LaunchTerms> out;
  for (const GroupedGemm& g : {GateUpGemm(p.rows, p.hidden, p.ffn, p.dtype), DownGemm(p.rows, p.hidden, p.ffn, p.dtype)}) {
    LaunchTerms t;
    const OpWork w = GroupedGemmWork(g);
    t.present = w.tokens > 0;
    const double waves = std::ceil(GroupedGemmTiles(g, grid.row_tile, grid.col_tile) / grid.sms);
    t.compute = waves * 2.0 * grid.row_tile * grid.col_tile * (g.k + k_half) * grid.sms;
    t.bytes = w.bytes;
    out.push_back(t);
  }
  return out;
}

struct GemmSolution {
  double fixed_s = 0, inv_rate = 0, inv_mem = 0, k_half = 0, residual = kInf;
  bool rate_bound = false, mem_bound = false;
};

// For one k_half: alternate the launches' bound (compute or memory) and a non-negative
// relative least-squares solve of (fixed, 1/R, 1/M); a rate no launch is bound by is set to
// the lowest one consistent with every case.
GemmSolution SolveGemm(const std::vector<GroupedGemmPoint>& points, const GemmGrid& grid, double k_half) {
  const int n = static_cast<int>(points.size());
  std::vector<std::vector<LaunchTerms>> terms;
  for (const GroupedGemmPoint& p : points) terms.push_back(Terms(p, grid, k_half));
  std::vector<std::vector<bool>> compute_bound(n, std::vector<bool>(2, true));
  GemmSolution best;
  for (int iteration = 0; iteration < 30; ++iteration) {
    Eigen::MatrixXd a(n, 3);
    Eigen::VectorXd t = Eigen::VectorXd::Ones(n);
    for (int i = 0; i < n; ++i) {
      const double w = 1 / points[i].time_s;
      a.row(i).setZero();
      for (int l = 0; l < 2; ++l) {
        if (!terms[i][l].present) continue;
        a(i, 0) += w;
        if (compute_bound[i][l]) a(i, 1) += terms[i][l].compute * w; else a(i, 2) += terms[i][l].bytes * w;
      }
    }
    GemmSolution s;
    s.k_half = k_half;
    for (int mask = 1; mask < 8; ++mask) {
      std::vector<int> cols;
      for (int c = 0; c < 3; ++c)
        if (mask & (1 << c)) cols.push_back(c);
      Eigen::MatrixXd sub(n, cols.size());
      for (size_t c = 0; c < cols.size(); ++c) sub.col(c) = a.col(cols[c]);
      if (sub.squaredNorm() == 0) continue;
      const Eigen::VectorXd x = sub.colPivHouseholderQr().solve(t);
      if ((x.array() < 0).any() || !x.allFinite()) continue;
      const double residual = (sub * x - t).squaredNorm();
      if (residual < s.residual) {
        s.residual = residual;
        s.fixed_s = s.inv_rate = s.inv_mem = 0;
        for (size_t c = 0; c < cols.size(); ++c) (cols[c] == 0 ? s.fixed_s : cols[c] == 1 ? s.inv_rate : s.inv_mem) = x(c);
      }
    }
    if (!std::isfinite(s.residual)) break;
    // A rate no launch was bound by: the lowest one that never makes a launch's part longer
    // than its case's whole time.
    if (s.inv_rate <= 0) {
      s.rate_bound = true;
      double max_inv = kInf;
      for (int i = 0; i < n; ++i)
        for (const LaunchTerms& l : terms[i])
          if (l.present && l.compute > 0) max_inv = std::min(max_inv, points[i].time_s / l.compute);
      s.inv_rate = max_inv;
    }
    if (s.inv_mem <= 0) {
      s.mem_bound = true;
      double max_inv = kInf;
      for (int i = 0; i < n; ++i)
        for (const LaunchTerms& l : terms[i])
          if (l.present && l.bytes > 0) max_inv = std::min(max_inv, points[i].time_s / l.bytes);
      s.inv_mem = max_inv;
    }
    bool changed = false;
    for (int i = 0; i < n; ++i) {
      for (int l = 0; l < 2; ++l) {
        const bool c = terms[i][l].compute * s.inv_rate >= terms[i][l].bytes * s.inv_mem;
        changed |= c != compute_bound[i][l];
        compute_bound[i][l] = c;
      }
    }
    best = s;
    if (!changed) break;
  }
  // The residual of the true model (the max per launch), which the alternation approximates.
  if (std::isfinite(best.residual) && best.inv_rate > 0 && best.inv_mem > 0) {
    const OpModel m = GemmModel(grid, best.fixed_s, 1 / best.inv_rate, k_half, 1 / best.inv_mem);
    best.residual = 0;
    for (const GroupedGemmPoint& p : points) best.residual += std::pow(LayerTimeS(m, p) / p.time_s - 1, 2);
  }
  return best;
}

GemmSolution BestOverKHalf(const std::vector<GroupedGemmPoint>& points, const GemmGrid& grid) {
  GemmSolution best;
  for (const double k_half : {0.0, 16.0, 32.0, 64.0, 96.0, 128.0, 192.0, 256.0, 384.0, 512.0, 768.0, 1024.0, 1536.0,
                              2048.0, 3072.0, 4096.0}) {
    const GemmSolution s = SolveGemm(points, grid, k_half);
    if (s.residual < best.residual) best = s;
  }
  if (!std::isfinite(best.residual) || !(best.inv_rate > 0) || !(best.inv_mem > 0))
    throw std::invalid_argument("fit: no positive rates fit the expert layers");
  return best;
}

// The fp8 rate, with the fixed cost, k_half and memory rate of the bf16 fit (the same kernel
// family on the same GPU: only the tensor-core rate differs): the inverse rate minimizing
// the relative error, over a log grid from 1/4 to 16 times the bf16 rate, refined by golden
// section. *bound: no fp8 launch was compute-bound, so the rate is only the lowest one no
// case contradicts.
double FitFp8Rate(const std::vector<GroupedGemmPoint>& points, const GemmGrid& grid, const GemmSolution& bf16,
                  bool* bound) {
  std::vector<std::vector<LaunchTerms>> terms;
  for (const GroupedGemmPoint& p : points) terms.push_back(Terms(p, grid, bf16.k_half));
  auto residual = [&](double inv_rate) {
    double sum = 0;
    for (size_t i = 0; i < points.size(); ++i) {
      double t = 0;
      for (const LaunchTerms& l : terms[i])
        if (l.present) t += bf16.fixed_s + std::max(l.compute * inv_rate, l.bytes * bf16.inv_mem);
      sum += std::pow(t / points[i].time_s - 1, 2);
    }
    return sum;
  };
  const double lo = std::log(bf16.inv_rate / 16), hi = std::log(bf16.inv_rate * 4);
  constexpr int kSteps = 400;
  int best = 0;
  double best_residual = kInf;
  for (int i = 0; i <= kSteps; ++i) {
    const double r = residual(std::exp(lo + (hi - lo) * i / kSteps));
    if (r < best_residual) best_residual = r, best = i;
  }
  double a = lo + (hi - lo) * std::max(best - 1, 0) / kSteps, b = lo + (hi - lo) * std::min(best + 1, kSteps) / kSteps;
  const double phi = (std::sqrt(5.0) - 1) / 2;
  for (int i = 0; i < 60; ++i) {
    const double c = b - phi * (b - a), d = a + phi * (b - a);
    if (residual(std::exp(c)) <= residual(std::exp(d))) b = d; else a = c;
  }
  const double inv_rate = std::exp((a + b) / 2);
  bool any_compute = false;
  for (const auto& launches : terms)
    for (const LaunchTerms& l : launches) any_compute |= l.present && l.compute * inv_rate >= l.bytes * bf16.inv_mem;
  *bound = !any_compute;
  if (any_compute) return 1 / inv_rate;
  double max_inv = kInf;  // as SolveGemm: the lowest rate no launch's part contradicts
  for (size_t i = 0; i < points.size(); ++i)
    for (const LaunchTerms& l : terms[i])
      if (l.present && l.compute > 0) max_inv = std::min(max_inv, points[i].time_s / l.compute);
  return 1 / max_inv;
}

// The bf16 points fitted as BestOverKHalf does, then the fp8 points' rate with the rest fixed.
OpModel FitBothDtypes(const std::vector<GroupedGemmPoint>& points, const GemmGrid& grid, bool* rate_bound,
                      bool* mem_bound, bool* rate_fp8_bound) {
  std::vector<GroupedGemmPoint> bf16, fp8;
  for (const GroupedGemmPoint& p : points) (p.dtype == GemmDtype::kFp8 ? fp8 : bf16).push_back(p);
  if (bf16.size() < 2) throw std::invalid_argument("fit: need at least 2 bf16 points (fp8 is fitted against them)");
  const GemmSolution s = BestOverKHalf(bf16, grid);
  *rate_bound = s.rate_bound;
  *mem_bound = s.mem_bound;
  *rate_fp8_bound = false;
  const double rate_fp8 = fp8.empty() ? 0 : FitFp8Rate(fp8, grid, s, rate_fp8_bound);
  return GemmModel(grid, s.fixed_s, 1 / s.inv_rate, s.k_half, 1 / s.inv_mem, rate_fp8);
}

}  // namespace

GroupedGemmFit FitGroupedGemm(const std::vector<GroupedGemmPoint>& points, const GemmGrid& grid, int folds,
                              uint32_t seed) {
  if (points.size() < 2) throw std::invalid_argument("fit: need at least 2 points");
  for (const GroupedGemmPoint& p : points) {
    if (!(p.time_s > 0)) throw std::invalid_argument("fit: a measured time is not positive");
    int64_t rows = 0;
    for (const int64_t r : p.rows) rows += std::max<int64_t>(r, 0);
    if (rows == 0) throw std::invalid_argument("fit: a case without rows");
  }
  GroupedGemmFit fit;
  fit.model = FitBothDtypes(points, grid, &fit.rate_bound, &fit.mem_bound, &fit.rate_fp8_bound);
  std::vector<double> train;
  for (const GroupedGemmPoint& p : points) train.push_back(std::fabs(LayerTimeS(fit.model, p) / p.time_s - 1));
  fit.train_error_median = Median(train);
  const std::vector<double> held = HeldOutErrors(
      points, folds, seed, [&](const std::vector<GroupedGemmPoint>& train, const std::vector<GroupedGemmPoint>& test,
                               std::vector<double>& errors) {
        bool unused[3];
        const OpModel m = FitBothDtypes(train, grid, &unused[0], &unused[1], &unused[2]);
        for (const GroupedGemmPoint& p : test) {
          // A fold whose training set has no point of this dtype cannot predict it.
          if (m.gemm.PeakFps(p.dtype) > 0) errors.push_back(std::fabs(LayerTimeS(m, p) / p.time_s - 1));
        }
      });
  if (!held.empty()) {
    fit.folds = EffectiveFolds(static_cast<int>(points.size()), folds);
    fit.heldout_error_median = Median(held);
    fit.heldout_error_p90 = Quantile(held, 0.9);
  }
  return fit;
}

}  // namespace epsim
