// epsim traffic: what an all-to-all costs besides the fabric, per implementation.
//
// Each call (one dispatch or one combine of one micro-batch) is timed, for GPU g, as
//
//   ready_g = (barrier ? latest entry of any GPU : entry of g) + fixed + messages_g x per_message
//   a flow g -> h starts at max(ready_g, ready_h) and moves its wire bytes over the fabric
//   (NVLink at scale_up.efficiency of line rate, NICs at scale_out.efficiency), plus its
//   route latency; with an SM budget, a flow over NVLink also goes through g's send SMs and
//   h's receive SMs, and a GPU's own tokens, which cross no link, through its own SMs (flows
//   over the NICs do not: the NIC moves RDMA data); g leaves when all of its flows have
//   arrived, or at ready_g with none.
//
// So a call that moves nothing costs its fixed cost, N messages cost N x per_message, and
// a GPU is SM-bound when its SMs x rate per SM is below its NVLink port's achievable rate.
// The defaults come from docs/calibration_sources.md, row by row (comm_model.cc); each fixed
// cost measured as a whole call (through the switch) is taken less the topology's NVLink
// latency, which every flow adds. A measured profile's NCCL all-to-all replaces nccl's fixed
// and per-message costs (and, through ResolveInputs, the NVLink rate).
#ifndef EPSIM_SIM_TRAFFIC_COMM_MODEL_H_
#define EPSIM_SIM_TRAFFIC_COMM_MODEL_H_

#include <string>

#include "sim/config/inputs.h"
#include "sim/config/scenario.h"

namespace epsim {

enum class Phase { kDispatch, kCombine };

// The cost terms of one implementation for one phase.
struct CommModel {
  CommImpl impl = CommImpl::kNccl;  // never kAuto
  double fixed_s = 0;               // per call: kernel launches and the count exchange
  double per_message_s = 0;         // per message a GPU sends, serialized on it
  bool barrier = false;             // data moves only once every GPU has entered the call
  int send_sms = 0;                 // SMs moving a GPU's outgoing bytes; 0: no SM budget
  int recv_sms = 0;                 // SMs moving its incoming bytes
  double sm_rate_Bps = 0;           // bytes per second one SM moves
  std::string source;               // where the numbers come from (report header)

  bool HasSmBudget() const { return send_sms > 0 && sm_rate_Bps > 0; }
};

// nccl's default terms on `topology` (no measurement, no SM budget): the fixed cost is the
// measured floor less the topology's NVLink latency, which the replay adds to every flow.
CommModel NcclDefaults(const Topology& topology);

// The cost terms of the run's implementation for `phase`: the defaults, with a measured
// NCCL all-to-all of the run's profile in place of nccl's fixed and per-message costs.
CommModel CommModelFor(const SimulationInputs& inputs, Phase phase);

// Bytes one token (one (token, expert) message for deepep-ll) occupies on the wire in
// `phase`: the payload in its dtype plus the implementation's metadata. `intranode`:
// every GPU of the run in one NVLink domain (DeepEP's intranode kernels).
double WireBytesPerToken(CommImpl impl, Phase phase, Dtype dtype, int64_t hidden, int top_k, bool intranode);
// The same for a run: its implementation, its phase's dtype, intranode when all its GPUs
// are in one NVLink domain.
double WireBytesPerToken(const SimulationInputs& inputs, Phase phase);

// One line for the report: the implementation and its terms, and where they came from.
std::string DescribeCommModel(const CommModel& dispatch, const CommModel& combine);

}  // namespace epsim

#endif  // EPSIM_SIM_TRAFFIC_COMM_MODEL_H_
