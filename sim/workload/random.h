// epsim workload: seeded random streams that give the same numbers on every platform and
// standard library, and O(1) draws from a discrete distribution.
#ifndef EPSIM_SIM_WORKLOAD_RANDOM_H_
#define EPSIM_SIM_WORKLOAD_RANDOM_H_

#include <cstdint>
#include <random>
#include <vector>

namespace epsim {

// xoshiro256** (Blackman and Vigna): small, fast, and the same on every platform; seeded
// through std::seed_seq so that nearby (seed, step, gpu) give unrelated streams.
class Rng {
 public:
  explicit Rng(std::seed_seq& seq) {
    uint32_t words[8];
    seq.generate(words, words + 8);
    for (int i = 0; i < 4; ++i) state_[i] = (uint64_t{words[2 * i]} << 32) | words[2 * i + 1];
    if ((state_[0] | state_[1] | state_[2] | state_[3]) == 0) state_[0] = 1;
  }
  uint64_t operator()() {
    const uint64_t result = Rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = Rotl(state_[3], 45);
    return result;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t state_[4];
};


// Uniform double in [0, 1) from 53 random bits: the same on every standard library.
double Uniform01(Rng& rng);
// Uniform integer in [0, n) by rejection, the same on every standard library.
int UniformInt(Rng& rng, int n);
// The stream for one (seed, step, gpu): nearby triples give unrelated streams.
Rng StreamFor(uint64_t seed, uint64_t step, uint64_t gpu);

// Walker/Vose alias table: O(1) draws from a discrete distribution.
class AliasTable {
 public:
  // `weights` >= 0, not all 0.
  explicit AliasTable(const std::vector<double>& weights);
  // One 64-bit draw: the high 32 bits pick the column (multiply-shift, bias below 2^-32
  // per column for any realistic size), the low 32 bits decide between it and its alias.
  int Draw(Rng& rng) const {
    const uint64_t x = rng();
    const int i = static_cast<int>(((x >> 32) * prob_.size()) >> 32);
    // Without a branch (which way it goes is as random as the draw): all ones for i.
    const int keep = -static_cast<int>(static_cast<double>(x & 0xffffffffu) * 0x1.0p-32 < prob_[i]);
    return (i & keep) | (alias_[i] & ~keep);
  }

 private:
  std::vector<double> prob_;
  std::vector<int> alias_;
};

}  // namespace epsim

#endif  // EPSIM_SIM_WORKLOAD_RANDOM_H_
