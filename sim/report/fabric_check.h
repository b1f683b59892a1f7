// epsim fabric-check: the all-to-all a profile measured on real GPUs, against the same
// exchange replayed on a topology's fabric model.
//
//   epsim fabric-check --profile my-h800-box.yaml --topology h800-ib   (sim/cli/fabric_check_command.cc)
//
// epsim-calibrate's CUDA backend measures NCCL's all-to-all between the GPUs of one box
// (profile key operations.a2a: each rank sends a base size to its next `peers` ranks, skew x
// the base to the first of them; a sample is the slowest rank), or imports it from
// nccl-tests. This command rebuilds each measured
// exchange as flows between GPUs of one NVLink domain of the topology, replays it on the fast
// path, and prints measured against modeled time per case, twice: with the profile (NVLink at
// the measured rate and nccl's measured costs, as a run with this profile takes them:
// sim/config/inputs.h, sim/traffic/comm_model.h) and with the defaults (the topology's
// efficiency and nccl's cited costs). So a user sees how far the defaults are from the
// device they have, and that the measured model reproduces it.
#ifndef EPSIM_SIM_REPORT_FABRIC_CHECK_H_
#define EPSIM_SIM_REPORT_FABRIC_CHECK_H_

#include <string>

#include "calibrate/profile/profile.h"
#include "sim/config/topology.h"

namespace epsim {

// The report `epsim fabric-check` prints for `profile` (read from `profile_path`) on
// `topology`. Throws ConfigError naming the profile's file and key when it holds no NVLink
// all-to-all measurement that fits one NVLink domain of the topology.
std::string FabricCheckReport(const Profile& profile, const std::string& profile_path, const Topology& topology);

}  // namespace epsim

#endif  // EPSIM_SIM_REPORT_FABRIC_CHECK_H_
