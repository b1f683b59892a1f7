// epsim traffic: communication models and their defaults (see comm_model.h).
//
// Every default is a figure of docs/calibration_sources.md (section named at each), or a
// fact of the implementation's source code (DeepEP's wire formats); none is fitted to the
// DeepEP tables the validation holds the model to (tests/validation).
#include "sim/traffic/comm_model.h"

#include <algorithm>
#include <cmath>

#include "common/numbers.h"

namespace epsim {
namespace {

// NCCL grouped send/recv, one small-message floor per call and per peer, derived from two
// measured floors (docs/calibration_sources.md D.2): sendrecv_perf of 1 KB on 4 x H800,
// one message per rank, 3.7 us (= fixed + 1 x per message); NCCL all-to-all of 128 B-4 KB
// on 8 x H20, 7 messages per rank, 10.3-11.1 us, midpoint 10.7 (= fixed + 7 x per message).
constexpr double kNcclPerMessageS = (10.7e-6 - 3.7e-6) / 6;  // 1.17 us
constexpr double kNcclCallS = 3.7e-6 - kNcclPerMessageS;      // 2.53 us, through the switch

// DeepEP's normal kernels (cached layout, as its benchmark and a steady-state MoE layer run
// them) launch two kernels per call, a notify that exchanges the counts (a barrier across
// the ranks) and the data kernel. A launch without a CUDA graph: 3.5 us against 0.5 us
// with one for the same 1 KB NCCL call on 4 x H800 (D.2), i.e. 3.0 us.
constexpr double kLaunchS = 3.5e-6 - 0.5e-6;
constexpr int kDeepEpDefaultSms = 24;  // DeepEP's default; SMs paired as sender and receiver (B.5)

// DeepEP's low-latency kernels, from NVIDIA AISimulate's linear fits of their time against
// tokens on GB200 EP4 (hidden 7168, top-8, 256 experts; docs/calibration_sources.md E):
// the intercepts are the fixed costs, dispatch 15.935 us and combine 16.861 us per call. The
// slopes, 0.0934 and 0.1476 us per token, are more than the link time of a token's messages:
// of its 8 messages 6 leave the GPU on average (EP4), 6 x 7408 B (dispatch) and 6 x 14336 B
// (combine) at GB200's usable NVLink, 18 x 40.1 GB/s (A.1.1). The rest of each slope, spread
// over those 6 messages, is the cost per message: 5.30 ns (dispatch) and 4.74 ns (combine).
constexpr double kLowLatencyDispatchFixedS = 15.935e-6;
constexpr double kLowLatencyCombineFixedS = 16.861e-6;
constexpr double kGb200NvlinkBps = 18 * 40.1e9;
constexpr double kLowLatencyDispatchPerMessageS = (0.0934e-6 - 6 * 7408 / kGb200NvlinkBps) / 6;
constexpr double kLowLatencyCombinePerMessageS = (0.1476e-6 - 6 * 14336 / kGb200NvlinkBps) / 6;

// Bytes one SM moves per second: NCCL's per-channel (one CTA on one SM) LL128 cap, the only
// citable per-SM figure (B.3, B.6): Hopper 36.7 GB/s, Ampere 20.0 GB/s. Blackwell has no
// row; it takes Hopper's.
double SmRateBps(const std::string& gpu) { return gpu == "a100" ? 20.0e9 : 36.7e9; }

// The floors above and a measured profile's fixed cost are whole calls timed end to end,
// through the switch; the replay adds each flow's route latency to its arrival. So a call's
// fixed cost is its measured floor less one NVLink latency (scale_up.latency), never below 0.
// (DeepEP normal's launch cost is a difference of two floors: no latency in it.)
double LessSwitchLatency(double measured_s, const Topology& topology) {
  return std::max(0.0, measured_s - topology.scale_up.latency_s);
}

}  // namespace

CommModel NcclDefaults(const Topology& topology) {
  CommModel m;
  m.impl = CommImpl::kNccl;
  m.fixed_s = LessSwitchLatency(kNcclCallS, topology);
  m.per_message_s = kNcclPerMessageS;
  m.source = "defaults (docs/calibration_sources.md D.2)";
  return m;
}

CommModel CommModelFor(const SimulationInputs& in, Phase phase) {
  const Scenario& s = in.scenario;
  CommModel m;
  m.impl = s.Implementation();
  const double sm_rate = SmRateBps(in.topology.gpu);
  switch (m.impl) {
    case CommImpl::kAuto:  // resolved above
    case CommImpl::kNccl: {
      m = NcclDefaults(in.topology);
      if (UsesMeasuredAllToAll(in.profile)) {
        const AllToAllModel& a2a = in.profile.a2a;
        m.fixed_s = LessSwitchLatency(a2a.fixed_s, in.topology);
        m.per_message_s = a2a.per_message_s;
        m.source = "measured on " + in.profile.device_name + " (profile " + in.profile.name +
                   (a2a.source.empty() ? "" : ", " + a2a.source) + ")";
      }
      // NCCL's channels (one SM each) move both directions; no cap unless asked for.
      m.send_sms = m.recv_sms = s.comm_sms;
      break;
    }
    case CommImpl::kDeepEpNormal: {
      m.fixed_s = 2 * kLaunchS;
      m.barrier = true;
      const int sms = s.comm_sms > 0 ? s.comm_sms : kDeepEpDefaultSms;
      m.send_sms = sms / 2;
      m.recv_sms = sms - sms / 2;
      m.source = "defaults (docs/calibration_sources.md B.3, B.5, D.2)";
      break;
    }
    case CommImpl::kDeepEpLowLatency:
      m.fixed_s = LessSwitchLatency(phase == Phase::kDispatch ? kLowLatencyDispatchFixedS : kLowLatencyCombineFixedS,
                                    in.topology);
      m.per_message_s = phase == Phase::kDispatch ? kLowLatencyDispatchPerMessageS : kLowLatencyCombinePerMessageS;
      m.send_sms = m.recv_sms = s.comm_sms;  // the kernels size their grid themselves: no cap unless asked
      m.source = "defaults (docs/calibration_sources.md E)";
      break;
  }
  if (m.send_sms > 0) m.sm_rate_Bps = sm_rate;
  return m;
}

double WireBytesPerToken(CommImpl impl, Phase phase, Dtype dtype, int64_t hidden, int top_k, bool intranode) {
  const double payload = Scenario::TokenBytes(dtype, hidden);
  const double k = top_k;
  switch (impl) {
    case CommImpl::kAuto:
    case CommImpl::kNccl:
      return payload;  // the tensors themselves; the counts travel in a separate exchange
    case CommImpl::kDeepEpNormal:
      if (intranode) {
        // deepseek-ai/DeepEP csrc/kernels/intranode.cu, the channel buffers per token: dispatch
        // x (+ fp8 scales), src_idx (int), topk_idx (int64 x k), topk_weights (float x k);
        // combine x, src_idx, topk_weights.
        return phase == Phase::kDispatch ? payload + 4 + 8 * k + 4 * k : payload + 4 + 4 * k;
      }
      // internode.cu, get_num_bytes_per_token: x (+ scales) + SourceMeta (8 B) + topk_idx
      // (int x k) + topk_weights (float x k), aligned to 16 bytes; combine carries no indices.
      return 16 * std::ceil((payload + 8 + (phase == Phase::kDispatch ? 4 * k : 0) + 4 * k) / 16);
    case CommImpl::kDeepEpLowLatency:
      // One message per (token, expert): dispatch H + 4H/128 + 16 for fp8, combine 2H
      // (docs/calibration_sources.md E, AISimulate's payload formulas).
      return phase == Phase::kDispatch ? payload + 16 : payload;
  }
  return payload;
}

double WireBytesPerToken(const SimulationInputs& in, Phase phase) {
  const Scenario& s = in.scenario;
  return WireBytesPerToken(s.Implementation(), phase, phase == Phase::kDispatch ? s.dispatch_dtype : s.combine_dtype,
                           s.hidden, s.top_k, InOneDomain(in));
}

std::string DescribeCommModel(const CommModel& d, const CommModel& c) {
  std::string out = NameOf(CommImplNames(), d.impl);
  out += StrFormat(": fixed %.3g us", d.fixed_s * 1e6);
  if (c.fixed_s != d.fixed_s) out += StrFormat(" (combine %.3g us)", c.fixed_s * 1e6);
  out += " per call";
  // Per-message costs run from a few ns (low latency) to about a microsecond (nccl).
  auto per_message = [](double s) { return s < 0.1e-6 ? StrFormat("%.3g ns", s * 1e9) : StrFormat("%.3g us", s * 1e6); };
  if (d.per_message_s > 0 || c.per_message_s > 0) {
    out += " + " + per_message(d.per_message_s);
    if (c.per_message_s != d.per_message_s) out += " (combine " + per_message(c.per_message_s) + ")";
    out += " per message";
  }
  if (d.barrier) out += ", after a barrier";
  if (d.HasSmBudget()) {
    out += StrFormat(", %d + %d SMs at %.3g GB/s", d.send_sms, d.recv_sms, d.sm_rate_Bps / 1e9);
  } else {
    out += ", no SM budget";
  }
  return out + "; " + d.source;
}

}  // namespace epsim
