// epsim workload: routing traces (`workload.routing: trace:FILE`), read into a RoutingSpec.
#ifndef EPSIM_SIM_WORKLOAD_ROUTING_TRACE_H_
#define EPSIM_SIM_WORKLOAD_ROUTING_TRACE_H_

#include <string>

#include "sim/workload/routing_spec.h"

namespace epsim {

// Routing trace files larger than this are refused before they are read (the limit of
// configuration files, kMaxConfigFileBytes): about 700 000 tokens of top-8 choices.
constexpr long long kMaxRoutingTraceBytes = 16LL << 20;

// Reads a routing trace CSV into `spec` (kind kTrace; trace_path kept if set); the header
// picks the form.
//  - "step,expert,tokens": whole numbers; expert < num_experts; steps numbered from 0 without
//    gaps; into spec.trace_weights (at most 2^24 step x expert counts).
//  - "step,layer,expert,tokens": the same per layer, layers numbered from 0 without gaps and
//    each layer's steps too; into spec.trace_layer_weights (layer 0's also in trace_weights;
//    at most 2^24 counts in all).
//  - "step,gpu,token,experts": one row per token, rows ordered by step (from 0, no gaps),
//    then by (gpu, token), strictly increasing; `experts` is the token's top_k distinct
//    expert ids (< num_experts) separated by spaces, highest score first, optionally in
//    double quotes ("5 9 12 200"). Needs top_k > 0. Into spec.trace_choices.
// Lines may end in \r\n. Files over kMaxRoutingTraceBytes, folders and empty files are
// refused. Throws ConfigError(path, "line N: COLUMN", VALUE, why) (or a whole-file reason).
void LoadRoutingTrace(RoutingSpec& spec, const std::string& path, int num_experts, int top_k = 0);

}  // namespace epsim

#endif  // EPSIM_SIM_WORKLOAD_ROUTING_TRACE_H_
