// epsim cli: `epsim fabric-check` (see commands.h).
#include <cstdio>
#include <string>

#include "calibrate/profile/profile.h"
#include "common/command_line.h"
#include "common/error.h"
#include "sim/cli/commands.h"
#include "sim/config/data_files.h"
#include "sim/config/topology.h"
#include "sim/report/fabric_check.h"

namespace epsim {
namespace {

void PrintUsage() {
  std::printf(
      "usage: epsim fabric-check --profile PROFILE --topology TOPOLOGY\n"
      "\n"
      "Replays the all-to-all PROFILE measured (epsim-calibrate --backend cuda on 2+ GPUs:\n"
      "NCCL between the GPUs of one box) on one NVLink domain of TOPOLOGY, prints measured\n"
      "against modeled time per case, and the scale_up.efficiency the measurement implies.\n"
      "PROFILE and TOPOLOGY are bundled names or paths to YAML files.\n");
}

int FabricCheck(int argc, char** argv) {
  FlagSpec flags;
  flags.with_value = {"--profile", "--topology"};
  flags.help_hint = "epsim fabric-check --help";
  const CommandLine line = ParseCommandLine(argc, argv, 2, flags);
  if (line.help) {
    PrintUsage();
    return kExitOk;
  }
  if (!line.Has("--profile")) throw ConfigError(kCommandLine, "--profile", "", "missing (the measured profile)");
  if (!line.Has("--topology")) throw ConfigError(kCommandLine, "--topology", "", "missing (the cluster to check)");
  const std::string profile_path =
      ResolveDataFile("calibrate/profiles", line.Get("--profile"), kCommandLine, "--profile");
  const std::string topology_path = ResolveDataFile("topologies", line.Get("--topology"), kCommandLine, "--topology");
  const Profile profile = LoadProfile(profile_path);
  const Topology topology = LoadTopology(topology_path);
  std::fputs(FabricCheckReport(profile, profile_path, topology).c_str(), stdout);
  return kExitOk;
}

}  // namespace

int RunFabricCheckCommand(int argc, char** argv) {
  return RunReportingErrors("epsim fabric-check", [&] { return FabricCheck(argc, argv); }, DisplayPath);
}

}  // namespace epsim
