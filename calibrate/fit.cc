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
  // k-fold cross-validation over a seeded shuffle.
  const int n = static_cast<int>(points.size());
  const int folds = std::min(opt.folds, n);
  if (folds >= 2 && n >= 4) {
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::mt19937 rng(opt.seed);
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<double> held;
    for (int f = 0; f < folds; ++f) {
      std::vector<FitPoint> train_pts, test_pts;
      for (int i = 0; i < n; ++i) (i % folds == f ? test_pts : train_pts).push_back(points[order[i]]);
      if (train_pts.size() < 2) continue;
      const Linear fm = FitRobust(train_pts, opt, nullptr);
      for (const FitPoint& p : test_pts) held.push_back(std::fabs((fm.Time(p) - p.time_s) / p.time_s));
    }
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
  // k-fold cross-validation over a seeded shuffle.
  const int n = static_cast<int>(points.size());
  folds = std::min(folds, n);
  if (folds >= 2 && n >= 4) {
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::mt19937 rng(seed);
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<double> held;
    for (int f = 0; f < folds; ++f) {
      std::vector<AllToAllPoint> train, test;
      for (int i = 0; i < n; ++i) (i % folds == f ? test : train).push_back(points[order[i]]);
      if (train.size() < 2) continue;
      try {
        const AllToAllFit part = SolveAllToAll(train, with_messages);
        for (const AllToAllPoint& p : test) held.push_back(std::fabs((part.Time(p) - p.time_s) / p.time_s));
      } catch (const std::invalid_argument&) {
      }
    }
    if (!held.empty()) {
      fit.heldout_error_median = Median(held);
      fit.heldout_error_p90 = Quantile(held, 0.9);
    }
  }
  return fit;
}

}  // namespace epsim
