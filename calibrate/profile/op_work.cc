// epsim profile: per-operation work (see op_work.h).
#include "calibrate/profile/op_work.h"

namespace epsim {

OpWork RouteWork(double t, double h, double e) { return {2 * t * h * e, 2 * (t * h + h * e) + 4 * t * e, t}; }

OpWork LayoutWork(double t, double k) { return {0, 16 * t * k, t}; }

OpWork PermuteWork(double copies, double token_bytes) { return {0, 2.0 * copies * token_bytes, copies}; }

OpWork ExpertWork(double m, double h, double f) { return {6 * m * h * f, 2 * 3 * h * f + 2 * m * (2 * h + 3 * f), m}; }

OpWork CombineWork(double copies, double t, double h) {
  return {2.0 * copies * h, copies * 2 * h + t * 2 * h, t};
}

}  // namespace epsim
