// epsim config: everything one run reads (scenario, topology, profile), resolved and
// checked against each other.
//
// LoadScenario (scenario.h) reads each field on its own; ResolveInputs loads the topology
// and profile the scenario names and makes every check across fields and files, in one
// place: whatever it accepts, the simulator can run.
#ifndef EPSIM_SIM_CONFIG_INPUTS_H_
#define EPSIM_SIM_CONFIG_INPUTS_H_

#include "calibrate/profile/profile.h"
#include "sim/config/scenario.h"
#include "sim/config/topology.h"

namespace epsim {

struct SimulationInputs {
  Scenario scenario;
  Topology topology;
  Profile profile;
};

// Resolves the scenario's topology and profile references and checks the combination. With
// a measured NCCL all-to-all in the profile, the topology's NVLink runs at its rate.
// Throws ConfigError naming the file and key (or the flag) of the value to change.
SimulationInputs ResolveInputs(const Scenario& scenario);

// True when `profile` holds an all-to-all measured with NCCL between GPUs (epsim-calibrate
// --backend cuda, or imported from nccl-tests): its bandwidth is then the NVLink rate of the
// run (ResolveInputs) and its fixed and per-message costs nccl's (sim/traffic/comm_model.h).
// An MPI measurement between CPU processes is not a GPU fabric and is not used.
bool UsesMeasuredAllToAll(const Profile& profile);

// GPUs a scenario's NVLink domains hold on `topology` ("node" in node_limit and in the
// hierarchical all-to-all): the topology's domain, at most the run's GPUs.
int DomainGpus(const Scenario& scenario, const Topology& topology);

// True when every GPU of the run is in one NVLink domain (DeepEP's intranode kernels).
inline bool InOneDomain(const SimulationInputs& inputs) {
  return inputs.scenario.gpus <= inputs.topology.scale_up.domain_gpus;
}

}  // namespace epsim

#endif  // EPSIM_SIM_CONFIG_INPUTS_H_
