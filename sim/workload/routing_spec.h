// epsim workload: the distribution each token's top-k experts are drawn from
// (`workload.routing`), and its routing traces.
#ifndef EPSIM_SIM_WORKLOAD_ROUTING_SPEC_H_
#define EPSIM_SIM_WORKLOAD_ROUTING_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

namespace epsim {

// The distribution each token's top-k experts are drawn from.
//   uniform      every expert equally likely
//   zipf:S       weight 1/rank^S over a seeded random permutation of the experts
//   hot:SHARE    one expert receives SHARE of all assignments, the others share the rest
//   trace:FILE   a CSV of observed routing, in one of three forms told apart by the header:
//                "step,expert,tokens": per-step expert counts; step s draws from the counts
//                of the file's step s mod (steps in the file);
//                "step,layer,expert,tokens": the same per layer of the stack, layer l from the
//                file's layer l mod (layers in the file) (ForLayer);
//                "step,gpu,token,experts": every token's top-k experts (highest score first);
//                step s replays the file's step s mod (steps in the file), token for token
//                (see LoadRoutingTrace in routing_trace.h).
struct RoutingSpec {
  enum class Kind { kUniform, kZipf, kHot, kTrace };
  Kind kind = Kind::kUniform;
  double parameter = 0;  // Zipf exponent or hot share
  std::string trace_path;                            // kTrace: the CSV as given
  std::vector<std::vector<double>> trace_weights;    // kTrace, counts: [file step][expert] counts
  // kTrace, counts with a layer column: [file layer][file step][expert] (trace_weights holds
  // layer 0's); trace_layer: which file layer a ForLayer copy is (-1: not a copy).
  std::vector<std::vector<std::vector<double>>> trace_layer_weights;
  int trace_layer = -1;
  // kTrace, per-token choices: top_k of the file (> 0 marks this form), every token's experts
  // in file order (trace_top_k ids each), and where each file step's tokens start (one entry
  // per step plus the end).
  int trace_top_k = 0;
  std::vector<int32_t> trace_choices;
  std::vector<int64_t> trace_step_begin;
  // Parses the forms above (for trace:FILE only the path; see LoadRoutingTrace); throws
  // std::invalid_argument with the reason.
  static RoutingSpec Parse(const std::string& text);
  std::string ToString() const;
  bool IsTokenTrace() const { return kind == Kind::kTrace && trace_top_k > 0; }
  bool IsLayeredTrace() const { return !trace_layer_weights.empty(); }
  // A layered trace's counts for stack layer `layer`: the file's layer layer mod (layers in
  // the file), as a counts trace of its own.
  RoutingSpec ForLayer(int layer) const;
  // Steps in a trace file (0 for other kinds).
  int TraceSteps() const;
};

}  // namespace epsim

#endif  // EPSIM_SIM_WORKLOAD_ROUTING_SPEC_H_
