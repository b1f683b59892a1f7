// epsim engine: event-driven max-min fair sharing (see max_min.h).
#include "sim/engine/max_min.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <utility>

namespace epsim {
namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

// A binary min-heap of ids (flows by end time, links by fair share), each id at most once,
// its key changed in place; ties by id, for a deterministic order.
class IndexedMinHeap {
 public:
  explicit IndexedMinHeap(size_t ids) : key_(ids, 0), at_(ids, -1) {}
  bool empty() const { return heap_.empty(); }
  int top() const { return heap_.front(); }
  double top_key() const { return key_[heap_.front()]; }
  void Set(int f, double time) {
    key_[f] = time;
    if (at_[f] < 0) {
      at_[f] = static_cast<int>(heap_.size());
      heap_.push_back(f);
    }
    Up(at_[f]);
    Down(at_[f]);
  }
  void Remove(int f) {
    const int i = at_[f];
    if (i < 0) return;
    const int last = heap_.back();
    heap_.pop_back();
    at_[f] = -1;
    if (last == f) return;
    heap_[i] = last;
    at_[last] = i;
    Up(i);
    Down(at_[last]);
  }

 private:
  bool Less(int a, int b) const { return key_[heap_[a]] < key_[heap_[b]] || (key_[heap_[a]] == key_[heap_[b]] && heap_[a] < heap_[b]); }
  void Swap(int a, int b) {
    std::swap(heap_[a], heap_[b]);
    at_[heap_[a]] = a;
    at_[heap_[b]] = b;
  }
  void Up(int i) {
    while (i > 0 && Less(i, (i - 1) / 2)) {
      Swap(i, (i - 1) / 2);
      i = (i - 1) / 2;
    }
  }
  void Down(int i) {
    const int n = static_cast<int>(heap_.size());
    while (true) {
      int least = i;
      for (const int c : {2 * i + 1, 2 * i + 2})
        if (c < n && Less(c, least)) least = c;
      if (least == i) return;
      Swap(i, least);
      i = least;
    }
  }
  std::vector<int> heap_;
  std::vector<double> key_;
  std::vector<int> at_;
};

class MaxMinSolver {
 public:
  MaxMinSolver(const std::vector<FluidFlow>& flows, const std::vector<double>& capacity, double precision_s)
      : flows_(flows), capacity_(capacity), precision_s_(precision_s), alloc_(capacity.size(), 0),
        residual_(capacity.size(), 0), to_fix_(capacity.size()), unfixed_(capacity.size(), 0), stamp_(capacity.size(), 0),
        remaining_(flows.size()), rate_(flows.size(), 0), updated_(flows.size(), 0),
        state_(flows.size(), kWaiting), finish_(flows.size(), 0), position_(flows.size(), -1),
        in_refill_(flows.size(), 0), ends_(flows.size()), shares_(capacity.size()) {
    for (size_t f = 0; f < flows.size(); ++f) remaining_[f] = flows[f].bytes;
  }

  std::vector<double> Run() {
    std::vector<int> by_start(flows_.size());
    std::iota(by_start.begin(), by_start.end(), 0);
    std::stable_sort(by_start.begin(), by_start.end(),
                     [&](int a, int b) { return flows_[a].start_s < flows_[b].start_s; });
    size_t next = 0;
    while (true) {
      const double next_start = next < by_start.size() ? flows_[by_start[next]].start_s : kInfinity;
      const double next_end = NextEnd();
      if (next_start == kInfinity && next_end == kInfinity) {
        if (active_ > 0) throw std::logic_error("max-min: flows in flight without a rate (a link of capacity 0?)");
        break;
      }
      if (next_start <= next_end) {
        // Every flow starting now; then progressive filling over all flows in flight.
        while (next < by_start.size() && flows_[by_start[next]].start_s == next_start) Start(by_start[next++], next_start);
        Refill(0, next_start);
      } else {
        // Every flow ending now (within the precision, or a relative 1e-12); the rest
        // refilled from the lowest rate among them up.
        const double tolerance = std::max(next_end * 1e-12, precision_s_);
        size_t from = order_.size();
        while (!ends_.empty() && ends_.top_key() <= next_end + tolerance) {
          const int f = ends_.top();
          End(f, next_end);
          from = std::min(from, static_cast<size_t>(position_[f]));
        }
        // Flows fixed at that rate just before `from` belong to its level too.
        while (from > 0 && rate_[order_[from - 1]] >= level_of_end_ * (1 - 1e-12)) --from;
        Refill(from, next_end);
      }
    }
    for (size_t f = 0; f < flows_.size(); ++f) finish_[f] += flows_[f].latency_s;
    return finish_;
  }

 private:
  enum State : char { kWaiting, kActive, kDone };

  double NextEnd() const { return ends_.empty() ? kInfinity : ends_.top_key(); }

  void Start(int f, double now) {
    state_[f] = kActive;
    updated_[f] = now;
    if (remaining_[f] <= 0) {  // nothing to move: done at once
      state_[f] = kDone;
      finish_[f] = now;
      return;
    }
    ++active_;
    position_[f] = static_cast<int>(order_.size());
    order_.push_back(f);
  }

  void End(int f, double now) {
    state_[f] = kDone;
    finish_[f] = now;
    --active_;
    level_of_end_ = std::min(level_of_end_, rate_[f]);
    SetRate(f, 0, now);
  }

  // Brings flow f's remaining bytes to `now` and gives it `rate` from now on.
  void SetRate(int f, double rate, double now) {
    remaining_[f] = std::max(0.0, remaining_[f] - rate_[f] * (now - updated_[f]));
    updated_[f] = now;
    for (const int l : flows_[f].links)
      if (l >= 0) alloc_[l] += rate - rate_[f];
    rate_[f] = rate;
    if (state_[f] == kActive && rate > 0)
      ends_.Set(f, now + remaining_[f] / rate);
    else
      ends_.Remove(f);
  }

  // Progressive filling over the active flows at positions >= from of the fixing order
  // (the lower ones keep their rates); rewrites that part of the order.
  void Refill(size_t from, double now) {
    level_of_end_ = kInfinity;
    std::vector<int> refill;
    for (size_t i = from; i < order_.size(); ++i)
      if (state_[order_[i]] == kActive) refill.push_back(order_[i]);
    order_.resize(from);
    if (refill.empty()) return;
    ++epoch_;
    // Capacity left on each touched link: its capacity less the rates of the flows kept.
    std::vector<int> touched;
    for (const int f : refill) {
      for (const int l : flows_[f].links) {
        if (l < 0) continue;
        if (stamp_[l] != epoch_) {
          stamp_[l] = epoch_;
          residual_[l] = capacity_[l] - alloc_[l];
          unfixed_[l] = 0;
          touched.push_back(l);
        }
        residual_[l] += rate_[f];
        ++unfixed_[l];
        to_fix_[l].push_back(f);
      }
      in_refill_[f] = 1;
    }
    auto share_of = [&](int l) { return std::max(0.0, residual_[l]) / unfixed_[l]; };
    for (const int l : touched) shares_.Set(l, share_of(l));
    while (!shares_.empty()) {
      const int l = shares_.top();
      const double share = shares_.top_key();
      shares_.Remove(l);
      for (const int f : to_fix_[l]) {
        if (!in_refill_[f]) continue;
        in_refill_[f] = 0;
        position_[f] = static_cast<int>(order_.size());
        order_.push_back(f);
        for (const int m : flows_[f].links) {
          if (m < 0 || m == l) continue;
          residual_[m] -= share;
          if (--unfixed_[m] > 0)
            shares_.Set(m, share_of(m));
          else
            shares_.Remove(m);
        }
        if (share != rate_[f]) SetRate(f, share, now);
      }
    }
    for (const int l : touched) to_fix_[l].clear();
    for (const int f : refill)
      if (in_refill_[f]) throw std::logic_error("max-min: a flow was left without a rate");
  }

  const std::vector<FluidFlow>& flows_;
  const std::vector<double>& capacity_;
  const double precision_s_;                // ends this close to the next one are one event
  std::vector<double> alloc_;               // per link: the rates of its active flows
  std::vector<double> residual_;            // Refill's scratch per link: capacity left,
  std::vector<std::vector<int>> to_fix_;    // the flows to fix,
  std::vector<int> unfixed_;                // and how many are not yet fixed
  std::vector<int> stamp_;
  int epoch_ = 0;
  int active_ = 0;                          // flows started and not ended
  std::vector<double> remaining_, rate_, updated_;
  std::vector<State> state_;
  std::vector<double> finish_;
  std::vector<int> order_;                  // active flows in the order progressive filling fixed them
  std::vector<int> position_;
  std::vector<char> in_refill_;
  double level_of_end_ = kInfinity;         // the lowest rate among flows just ended
  IndexedMinHeap ends_;    // flows in flight with a rate, by end time
  IndexedMinHeap shares_;  // Refill's links with flows to fix, by fair share
};

}  // namespace

std::vector<double> MaxMinCompletions(const std::vector<FluidFlow>& flows,
                                      const std::vector<double>& link_capacity_Bps, double precision_s) {
  return MaxMinSolver(flows, link_capacity_Bps, precision_s).Run();
}

}  // namespace epsim
