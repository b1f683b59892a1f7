// epsim validation: DeepEP's published H800 dispatch/combine numbers (V1 normal kernels),
// predicted from first principles: the h800-ib topology, the hierarchical algorithm,
// node-limited routing (min(nodes, 4)), DeepEP's routing and dtypes (4096 tokens, hidden
// 7168, top-8, 256 experts, fp8 dispatch, bf16 combine), compute excluded (the kernels
// are timed in isolation). Published bandwidths are turned into kernel times with
// DeepEP's own counting (deepep_v1_normal_h800.yaml, copied from shared/reference).
//
// What is compared: DeepEP's benchmark times back-to-back calls that each start with a
// barrier across the ranks (the cached notify), so a timed call lasts as long as the
// slowest rank's kernel; the prediction is therefore the slowest GPU's dispatch (combine)
// time, not the mean (they differ by 0.2-0.8% here).
//
// The bar is every case within 20% and the median within 10%, with one set of
// fabric constants. With the cited maxima (NVLink 160 GB/s, NIC 50 GB/s) the model is
// 9-23% fast on every case. To say why, each case is run a second time with NVLink at its
// nominal 200 GB/s: a time that shrinks by 1 - 160/200 is bound by NVLink, one that does
// not move is bound by the NIC. The rate the published time implies on that link
// (model rate x predicted / published) comes out at 124-140 GB/s of NVLink and 43-45 GB/s
// of NIC: DeepEP's kernels reach 78-87% and 86-91% of the cited maxima, which the model,
// running links at those maxima, cannot show without a measured achievable rate. The bar
// is not met; this test pins what the model does today so that changes show up.
#include <gtest/gtest.h>

#include "tests/testing/csv_column.h"
#include "tests/testing/run_command.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace {

using epsim::testing::CommandResult;
using epsim::testing::CsvColumn;
using epsim::testing::ReadFile;
using epsim::testing::RunCommand;
using epsim::testing::WriteFile;

constexpr double kNvlinkCitedGBps = 160;    // topologies/h800-ib.yaml: 200 GB/s x 0.8
constexpr double kNvlinkNominalGBps = 200;  // the same file with efficiency 1
constexpr double kNicGBps = 50;             // 400 Gb/s

double Mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / v.size();
}

double Max(const std::vector<double>& v) { return v.empty() ? 0 : *std::max_element(v.begin(), v.end()); }

struct Row {
  std::string name;
  double predicted_us = 0, published_us = 0;
  double nvlink_share = 0;  // part of the predicted time that scales with the NVLink rate
  double error() const { return (predicted_us - published_us) / published_us; }
};

// The h800-ib topology with NVLink at its nominal rate (scale_up.efficiency 1), written once
// for the test; "" when the file no longer has the cited efficiency in its scale_up block.
std::string NominalNvlinkTopology() {
  std::string text = ReadFile("topologies/h800-ib.yaml");
  const std::string cited = "efficiency: 0.8";
  const size_t block = text.find("scale_up:"), at = text.find(cited, block), next = text.find("scale_out:", block);
  if (block == std::string::npos || at == std::string::npos || at > next) return "";
  text.replace(at, cited.size(), "efficiency: 1.0");
  const std::string path = ::testing::TempDir() + "/h800-ib-nominal-nvlink.yaml";
  WriteFile(path, text);
  return path;
}

TEST(DeepEpValidationTest, PredictedKernelTimesAgainstPublished) {
  YAML::Node ref = YAML::LoadFile("tests/validation/deepep_v1_normal_h800.yaml");
  const double hidden = ref["setup"]["hidden"].as<double>();
  const double fp8_token_bytes = hidden * 2 * (1 + 4.0 / 128) / 2;  // DeepEP's dtype factor
  const double bf16_token_bytes = hidden * 2;
  const std::string nominal_topology = NominalNvlinkTopology();
  ASSERT_FALSE(nominal_topology.empty()) << "topologies/h800-ib.yaml: no scale_up.efficiency 0.8 any more";
  std::vector<Row> rows;
  for (const YAML::Node& c : ref["results"]) {
    const int ep = c["ep"].as<int>();
    const int nodes = std::max(1, ep / 8);
    const int node_limit = std::min(nodes, 4);
    // Slowest GPU's dispatch and combine times (us) on one topology.
    auto run = [&](const std::string& topology, const std::string& dir) {
      const std::string cmd =
          "sim/epsim --topology " + topology + " --profile tests/validation/no_compute.yaml --gpus " +
          std::to_string(ep) + " --nodes " + std::to_string(nodes) +
          " --tokens-per-gpu 4096 --hidden 7168 --expert-ffn 2048 --experts 256 --shared-experts 0"
          " --top-k 8 --routing uniform --dispatch-dtype fp8 --combine-dtype bf16"
          " --capacity-factor none --a2a hierarchical --node-limit " + std::to_string(node_limit) +
          " --steps 1 --seed 1 --engine simgrid --out " + dir;
      const CommandResult r = RunCommand(cmd);
      EXPECT_TRUE(r.exited && r.exit_status == 0) << cmd << "\n" << r.Describe();
      return std::make_pair(Max(CsvColumn(dir + "/gpus.csv", "dispatch_s")) * 1e6,
                            Max(CsvColumn(dir + "/gpus.csv", "combine_s")) * 1e6);
    };
    const std::string dir = ::testing::TempDir() + "/deepep" + std::to_string(ep);
    const auto [dispatch_us, combine_us] = run("h800-ib", dir);
    const auto [dispatch_nominal_us, combine_nominal_us] =
        run(nominal_topology, ::testing::TempDir() + "/deepep_nominal" + std::to_string(ep));
    if (HasFailure()) return;
    // DeepEP's counting: intranode, unique tokens a rank receives (incl. its own);
    // internode, unique (token, destination node) pairs incl. the sender's own node.
    const bool intranode = c["type"].as<std::string>() == "intranode";
    const double counted_tokens =
        Mean(CsvColumn(dir + "/gpus.csv", intranode ? "unique_tokens_received" : "node_tokens_sent"));
    const double published_dispatch_us = counted_tokens * fp8_token_bytes / (c["dispatch_GBps"].as<double>() * 1e3);
    const double published_combine_us = counted_tokens * bf16_token_bytes / (c["combine_GBps"].as<double>() * 1e3);
    // Time at 160 GB/s shrinks by this fraction at 200 GB/s when NVLink alone binds.
    const double nvlink_bound_saving = 1 - kNvlinkCitedGBps / kNvlinkNominalGBps;
    auto share = [&](double cited_us, double nominal_us) { return (1 - nominal_us / cited_us) / nvlink_bound_saving; };
    rows.push_back({"EP" + std::to_string(ep) + " dispatch", dispatch_us, published_dispatch_us,
                    share(dispatch_us, dispatch_nominal_us)});
    rows.push_back({"EP" + std::to_string(ep) + " combine", combine_us, published_combine_us,
                    share(combine_us, combine_nominal_us)});
  }
  std::printf("\n# DeepEP V1 normal kernels on H800: epsim prediction (slowest GPU) vs published\n");
  std::printf("#  case                predicted (us)  published (us)    error   binding link   "
              "model rate   rate the published time implies\n");
  std::vector<double> errors;
  for (const Row& r : rows) {
    const bool nvlink = r.nvlink_share > 0.5;
    const double model_rate = nvlink ? kNvlinkCitedGBps : kNicGBps;
    std::printf("   %-18s %14.0f %15.0f %+8.1f%%   %-6s (%3.0f%%) %7.0f GB/s   %6.1f GB/s\n", r.name.c_str(),
                r.predicted_us, r.published_us, 100 * r.error(), nvlink ? "NVLink" : "NIC",
                100 * (nvlink ? r.nvlink_share : 1 - r.nvlink_share), model_rate,
                model_rate * r.predicted_us / r.published_us);
    errors.push_back(std::fabs(r.error()));
  }
  std::sort(errors.begin(), errors.end());
  const double median = (errors[errors.size() / 2] + errors[(errors.size() - 1) / 2]) / 2;
  std::printf("# median |error| %.1f%%, max |error| %.1f%% (issue bar: 10%% / 20%%)\n", 100 * median,
              100 * errors.back());
  ASSERT_EQ(rows.size(), 8u);
  for (const Row& r : rows) {
    // Links at their maximum rate make the fluid model a lower bound on a kernel's time.
    EXPECT_LT(r.predicted_us, r.published_us) << r.name;
    // What the model achieves today (see the header): within 25% on every case.
    EXPECT_LT(std::fabs(r.error()), 0.25) << r.name;
    // Each case has one binding link: NVLink (share near 1) or the NIC (near 0).
    EXPECT_TRUE(r.nvlink_share > 0.9 || r.nvlink_share < 0.1) << r.name << ": " << r.nvlink_share;
  }
}

}  // namespace
