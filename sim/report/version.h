// epsim report: the version every report and summary.json names.
#ifndef EPSIM_SIM_REPORT_VERSION_H_
#define EPSIM_SIM_REPORT_VERSION_H_

namespace epsim {

inline constexpr char kEpsimVersion[] = "0.1.0";

}  // namespace epsim

#endif  // EPSIM_SIM_REPORT_VERSION_H_
