// epsim workload: routing distributions (see routing_spec.h).
#include "sim/workload/routing_spec.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "common/numbers.h"

namespace epsim {

RoutingSpec RoutingSpec::Parse(const std::string& text) {
  RoutingSpec spec;
  if (text == "uniform") return spec;
  if (text.rfind("trace:", 0) == 0) {
    spec.kind = Kind::kTrace;
    spec.trace_path = text.substr(6);
    if (spec.trace_path.empty()) throw std::invalid_argument("expected a file after 'trace:'");
    return spec;
  }
  auto colon = text.find(':');
  std::string kind = text.substr(0, colon);
  if (colon == std::string::npos || (kind != "zipf" && kind != "hot"))
    throw std::invalid_argument("expected uniform, zipf:EXPONENT, hot:SHARE or trace:FILE");
  std::string number = text.substr(colon + 1);
  double value = 0;
  if (!ParseFiniteDouble(number, &value)) throw std::invalid_argument("expected a number after '" + kind + ":'");
  if (kind == "zipf") {
    if (value < 0 || value > 20) throw std::invalid_argument("Zipf exponent must be in [0, 20]");
    spec.kind = Kind::kZipf;
  } else {
    if (value <= 0 || value >= 1) throw std::invalid_argument("hot share must be in (0, 1)");
    spec.kind = Kind::kHot;
  }
  spec.parameter = value;
  return spec;
}

std::string RoutingSpec::ToString() const {
  char buffer[64];
  switch (kind) {
    case Kind::kUniform:
      return "uniform";
    case Kind::kZipf:
      std::snprintf(buffer, sizeof(buffer), "zipf:%g", parameter);
      return buffer;
    case Kind::kHot:
      std::snprintf(buffer, sizeof(buffer), "hot:%g", parameter);
      return buffer;
    case Kind::kTrace:
      return "trace:" + trace_path + (trace_layer >= 0 ? " layer " + std::to_string(trace_layer) : "");
  }
  return "?";
}

RoutingSpec RoutingSpec::ForLayer(int layer) const {
  RoutingSpec spec;
  spec.kind = Kind::kTrace;
  spec.trace_path = trace_path;
  spec.trace_layer = layer % static_cast<int>(trace_layer_weights.size());
  spec.trace_weights = trace_layer_weights[static_cast<size_t>(spec.trace_layer)];
  return spec;
}

int RoutingSpec::TraceSteps() const {
  if (kind != Kind::kTrace) return 0;
  if (trace_top_k > 0) return trace_step_begin.empty() ? 0 : static_cast<int>(trace_step_begin.size() - 1);
  return static_cast<int>(trace_weights.size());
}

}  // namespace epsim
