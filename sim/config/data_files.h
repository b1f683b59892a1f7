// epsim config: finding bundled files (topologies, profiles, scenarios) by name.
//
// A reference is a path when it contains '/' or ends in ".yaml"; otherwise a bundled name,
// looked up as KIND/NAME.yaml under, in order: $EPSIM_DATA_DIR, the binary's Bazel
// runfiles, $BUILD_WORKSPACE_DIRECTORY, and the current folder.
#ifndef EPSIM_SIM_CONFIG_DATA_FILES_H_
#define EPSIM_SIM_CONFIG_DATA_FILES_H_

#include <string>

namespace epsim {

// True when `reference` names a file (contains '/' or ends in ".yaml"), not a bundled name.
bool IsPathReference(const std::string& reference);

// Returns a readable path for `reference` of `kind` ("topologies", "calibrate/profiles",
// "scenarios"); throws ConfigError(file, key, reference, why) when none exists.
std::string ResolveDataFile(const std::string& kind, const std::string& reference,
                            const std::string& file, const std::string& key);

// `path` as a user would name it: a bundled file relative to the repository root. Also
// applied to error messages, which may hold such paths.
std::string DisplayPath(const std::string& path);

}  // namespace epsim

#endif  // EPSIM_SIM_CONFIG_DATA_FILES_H_
