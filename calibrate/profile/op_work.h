// epsim profile: the work of each EP-layer operation, in FLOPs and bytes moved through HBM,
// from the layer's shape. What a profile's rates mean: the calibrator divides measured
// times into this work when it fits a profile, and the simulator multiplies it back when it
// predicts a time, so both take the formulas from here and nowhere else.
//
//   route    gate GEMM T x H x E: 2THE FLOPs; reads T*H + H*E bf16, writes T*E fp32 scores
//   layout   (calibrator only) reads expert ids and weights, writes both maps: 16 T k bytes
//   permute  gather of the dispatched copies: reads and writes copies * token_bytes
//   expert   per local expert with M tokens, gate/up M x H x 2F then down M x F x H:
//            6MHF FLOPs; reads the 3HF bf16 weights once, activations 2M(2H + 3F) bytes
//   combine  weighted un-permute and sum: reads returned copies * 2H, writes T * 2H;
//            2 copies H FLOPs
// `tokens` is what a profile's validity range and its small-M term are stated in: tokens
// per GPU (route, layout, combine), dispatched copies (permute), rows of one expert (expert).
#ifndef EPSIM_CALIBRATE_PROFILE_OP_WORK_H_
#define EPSIM_CALIBRATE_PROFILE_OP_WORK_H_

namespace epsim {

struct OpWork {
  double flops = 0;
  double bytes = 0;
  double tokens = 0;
};

OpWork RouteWork(double tokens, double hidden, double experts);
OpWork LayoutWork(double tokens, double top_k);
// `token_bytes`: one dispatched token as it is gathered (2H for bf16).
OpWork PermuteWork(double copies, double token_bytes);
OpWork ExpertWork(double rows, double hidden, double ffn);
OpWork CombineWork(double returned_copies, double tokens, double hidden);

}  // namespace epsim

#endif  // EPSIM_CALIBRATE_PROFILE_OP_WORK_H_
