// epsim tests: the communication models' defaults and wire formats (sim/traffic/comm_model.h)
// against their sources: the measured floors of docs/calibration_sources.md and DeepEP's
// kernels' buffer layouts.
#include <gtest/gtest.h>

#include "calibrate/profile/profile.h"
#include "sim/config/inputs.h"
#include "sim/traffic/comm_model.h"

namespace epsim {
namespace {

// DeepSeek-V3's shape: hidden 7168, top-8, fp8 dispatch (7168 + 4 x 7168 / 128 scales =
// 7392 bytes), bf16 combine (14336 bytes).
constexpr int64_t kHidden = 7168;
constexpr int kTopK = 8;

TEST(CommModelTest, WireBytesFollowDeepEpsBufferLayouts) {
  // nccl moves the tensors only.
  EXPECT_EQ(WireBytesPerToken(CommImpl::kNccl, Phase::kDispatch, Dtype::kFp8, kHidden, kTopK, true), 7392);
  EXPECT_EQ(WireBytesPerToken(CommImpl::kNccl, Phase::kCombine, Dtype::kBf16, kHidden, kTopK, false), 14336);
  // DeepEP intranode.cu: + src_idx (4) + topk_idx (8 x 8) + topk_weights (4 x 8); combine
  // + src_idx + weights.
  EXPECT_EQ(WireBytesPerToken(CommImpl::kDeepEpNormal, Phase::kDispatch, Dtype::kFp8, kHidden, kTopK, true), 7492);
  EXPECT_EQ(WireBytesPerToken(CommImpl::kDeepEpNormal, Phase::kCombine, Dtype::kBf16, kHidden, kTopK, true), 14372);
  // internode.cu: + SourceMeta (8) + topk_idx (4 x 8) + weights (4 x 8), to 16 bytes:
  // 7464 -> 7472; combine without the indices: 14376 -> 14384.
  EXPECT_EQ(WireBytesPerToken(CommImpl::kDeepEpNormal, Phase::kDispatch, Dtype::kFp8, kHidden, kTopK, false), 7472);
  EXPECT_EQ(WireBytesPerToken(CommImpl::kDeepEpNormal, Phase::kCombine, Dtype::kBf16, kHidden, kTopK, false), 14384);
  // Low latency, per (token, expert) message: + 16 in dispatch (AISimulate's S_d).
  EXPECT_EQ(WireBytesPerToken(CommImpl::kDeepEpLowLatency, Phase::kDispatch, Dtype::kFp8, kHidden, kTopK, false),
            7408);
  EXPECT_EQ(WireBytesPerToken(CommImpl::kDeepEpLowLatency, Phase::kCombine, Dtype::kBf16, kHidden, kTopK, false),
            14336);
}

SimulationInputs Inputs(A2aAlgorithm a2a, CommImpl comm = CommImpl::kAuto, const std::string& gpu = "h800") {
  SimulationInputs in;
  in.scenario.a2a = a2a;
  in.scenario.comm = comm;
  in.topology.gpu = gpu;
  in.topology.scale_up.latency_s = 1e-6;  // as every bundled topology
  return in;
}

TEST(CommModelTest, NcclDefaultsReproduceTheTwoMeasuredFloors) {
  const CommModel m = CommModelFor(Inputs(A2aAlgorithm::kDirect), Phase::kDispatch);
  EXPECT_EQ(m.impl, CommImpl::kNccl);
  // docs/calibration_sources.md D.2: one peer (sendrecv 1 KB, 4 x H800) 3.7 us; seven
  // (all-to-all of 128 B-4 KB, 8 x H20) 10.3-11.1 us; both through the switch, whose
  // latency the replay adds to every flow.
  const double latency = 1e-6;
  EXPECT_NEAR(m.fixed_s + 1 * m.per_message_s + latency, 3.7e-6, 1e-12);
  EXPECT_NEAR(m.fixed_s + 7 * m.per_message_s + latency, 10.7e-6, 1e-12);
  EXPECT_FALSE(m.barrier);
  EXPECT_FALSE(m.HasSmBudget());
}

TEST(CommModelTest, EachAlgorithmRunsItsImplementation) {
  EXPECT_EQ(CommModelFor(Inputs(A2aAlgorithm::kHierarchical), Phase::kDispatch).impl, CommImpl::kDeepEpNormal);
  EXPECT_EQ(CommModelFor(Inputs(A2aAlgorithm::kLowLatency), Phase::kDispatch).impl, CommImpl::kDeepEpLowLatency);
  EXPECT_EQ(CommModelFor(Inputs(A2aAlgorithm::kRdmaOnly), Phase::kDispatch).impl, CommImpl::kDeepEpLowLatency);
  EXPECT_EQ(CommModelFor(Inputs(A2aAlgorithm::kDirect, CommImpl::kDeepEpNormal), Phase::kDispatch).impl,
            CommImpl::kDeepEpNormal);
}

TEST(CommModelTest, DeepEpNormalPairsItsSmsAfterABarrier) {
  SimulationInputs in = Inputs(A2aAlgorithm::kHierarchical);
  const CommModel m = CommModelFor(in, Phase::kDispatch);
  EXPECT_TRUE(m.barrier);
  EXPECT_NEAR(m.fixed_s, 2 * (3.5e-6 - 0.5e-6), 1e-12);  // two launches without a CUDA graph (D.2)
  EXPECT_EQ(m.send_sms, 12);  // DeepEP's default 24 SMs, half sending, half receiving
  EXPECT_EQ(m.recv_sms, 12);
  EXPECT_NEAR(m.sm_rate_Bps, 36.7e9, 1);  // NCCL's Hopper LL128 per-channel cap (B.3)
  in.scenario.comm_sms = 9;
  EXPECT_EQ(CommModelFor(in, Phase::kCombine).send_sms + CommModelFor(in, Phase::kCombine).recv_sms, 9);
  EXPECT_NEAR(CommModelFor(Inputs(A2aAlgorithm::kHierarchical, CommImpl::kAuto, "a100"), Phase::kDispatch).sm_rate_Bps,
              20.0e9, 1);  // Ampere (B.3)
}

TEST(CommModelTest, LowLatencyFixedCostsAreTheFitIntercepts) {
  const SimulationInputs in = Inputs(A2aAlgorithm::kLowLatency);
  // docs/calibration_sources.md E, less the switch latency the replay adds.
  EXPECT_NEAR(CommModelFor(in, Phase::kDispatch).fixed_s, 15.935e-6 - 1e-6, 1e-12);
  EXPECT_NEAR(CommModelFor(in, Phase::kCombine).fixed_s, 16.861e-6 - 1e-6, 1e-12);
  EXPECT_FALSE(CommModelFor(in, Phase::kDispatch).barrier);
  // The rest of the fits' slopes (0.0934 and 0.1476 us per token) over the 6 of 8 messages
  // that leave a GPU at EP4, after their bytes at 18 x 40.1 GB/s.
  EXPECT_NEAR(6 * CommModelFor(in, Phase::kDispatch).per_message_s + 6 * 7408 / 721.8e9, 0.0934e-6, 1e-15);
  EXPECT_NEAR(6 * CommModelFor(in, Phase::kCombine).per_message_s + 6 * 14336 / 721.8e9, 0.1476e-6, 1e-15);
}

TEST(CommModelTest, AMeasuredNcclAllToAllReplacesNcclsTermsOnly) {
  SimulationInputs in = Inputs(A2aAlgorithm::kDirect);
  in.profile.device_name = "Some GPU";
  in.profile.name = "box";
  in.profile.a2a.present = true;
  in.profile.a2a.backend = "nccl";
  in.profile.a2a.fixed_s = 20e-6;
  in.profile.a2a.per_message_s = 1e-6;
  in.profile.a2a.bandwidth_Bps = 300e9;
  const CommModel nccl = CommModelFor(in, Phase::kDispatch);
  EXPECT_NEAR(nccl.fixed_s, 20e-6 - 1e-6, 1e-15);  // less the switch latency
  EXPECT_EQ(nccl.per_message_s, 1e-6);
  EXPECT_NE(nccl.source.find("measured on Some GPU (profile box)"), std::string::npos) << nccl.source;
  in.scenario.a2a = A2aAlgorithm::kHierarchical;
  EXPECT_NEAR(CommModelFor(in, Phase::kDispatch).fixed_s, 6e-6, 1e-12);  // DeepEP keeps its own
  // MPI between CPU processes is not a GPU fabric: not used.
  in.scenario.a2a = A2aAlgorithm::kDirect;
  in.profile.a2a.backend = "mpi";
  EXPECT_NEAR(CommModelFor(in, Phase::kDispatch).fixed_s, NcclDefaults(in.topology).fixed_s, 1e-15);
  // A switch slower than the floor: no negative cost.
  in.topology.scale_up.latency_s = 5e-6;
  EXPECT_EQ(NcclDefaults(in.topology).fixed_s, 0.0);
}

}  // namespace
}  // namespace epsim
