// epsim tests: links.csv's numbers against hand-worked ones: bytes summed over the flows
// that cross a link, busy time as the union of their spans, the most in flight at once.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "sim/config/topology.h"
#include "sim/engine/fabric_layout.h"
#include "sim/engine/step_work.h"
#include "sim/report/link_load.h"
#include "tests/sim/test_topologies.h"

namespace epsim {
namespace {

using testing::kTwoNodeTopology;  // GPU g uses NIC g % 8 of its node, on leaf g % 8

const LinkStepRecord* Find(const std::vector<LinkStepRecord>& records, const FabricLayout& layout,
                           const std::string& name) {
  for (const LinkStepRecord& r : records)
    if (layout.LinkName(r.link) == name) return &r;
  return nullptr;
}

TEST(LinkLoadTest, BytesBusyTimeAndPeakFlowsByHand) {
  const Topology topo = ParseTopology(kTwoNodeTopology, "two-node");
  const FabricLayout layout(topo, 16);
  StepWork work;
  // GPU 0 (node 0, rail 0) to GPU 8 (node 1, rail 0): same leaf. To GPU 9 (rail 1): through
  // a spine. GPU 1 to GPU 2: NVLink.
  work.dispatch = {{0, 8, 1e6}, {0, 9, 2e6}, {1, 2, 4e6}};
  work.combine = {{8, 0, 3e6}, {0, 8, 5e6}};
  StepTimeline t;
  t.dispatch_flow_start = {0.0, 1.0, 0.0};
  t.dispatch_flow_end = {2.0, 3.0, 1.0};
  t.combine_flow_start = {5.0, 6.0};  // back to back with the first: never two at once
  t.combine_flow_end = {7.0, 8.0};
  const std::vector<LinkStepRecord> r = LinkLoads(layout, 3, work, t);

  // nic-0.0-up carries 0->8, 0->9 and the combine 0->8: 8 MB, busy [0, 3) and [6, 8).
  const LinkStepRecord* nic = Find(r, layout, "nic-0.0-up");
  ASSERT_NE(nic, nullptr);
  EXPECT_EQ(nic->step, 3);
  EXPECT_DOUBLE_EQ(nic->bytes, 8e6);
  EXPECT_DOUBLE_EQ(nic->load_s, 8e6 / 50e9);  // 400 Gb/s = 50 GB/s
  EXPECT_DOUBLE_EQ(nic->capacity_Bps, 50e9);
  EXPECT_DOUBLE_EQ(nic->busy_s, 3.0 + 2.0);
  EXPECT_EQ(nic->peak_flows, 2);
  EXPECT_STREQ(layout.LinkTier(nic->link), "nic");
  // nic-1.0-down: 0->8 twice (1 + 5 MB), [0, 2) and [6, 8); its up link the combine 8->0.
  const LinkStepRecord* down = Find(r, layout, "nic-1.0-down");
  ASSERT_NE(down, nullptr);
  EXPECT_DOUBLE_EQ(down->bytes, 6e6);
  EXPECT_DOUBLE_EQ(down->busy_s, 4.0);
  EXPECT_EQ(down->peak_flows, 1);
  const LinkStepRecord* back = Find(r, layout, "nic-1.0-up");
  ASSERT_NE(back, nullptr);
  EXPECT_DOUBLE_EQ(back->bytes, 3e6);
  // The cross-rail flow 0->9 climbs leaf 0 to a spine and comes down to leaf 1.
  int spine_links = 0;
  for (const LinkStepRecord& l : r) {
    if (std::string(layout.LinkTier(l.link)) != "spine") continue;
    ++spine_links;
    EXPECT_DOUBLE_EQ(l.bytes, 2e6) << layout.LinkName(l.link);
    EXPECT_DOUBLE_EQ(l.busy_s, 2.0);
  }
  EXPECT_EQ(spine_links, 2);
  // NVLink 1->2: 4 MB on gpu-1's up port and gpu-2's down port, 1 s each.
  const LinkStepRecord* nvl = Find(r, layout, "gpu-1-nvl-up");
  ASSERT_NE(nvl, nullptr);
  EXPECT_DOUBLE_EQ(nvl->bytes, 4e6);
  EXPECT_DOUBLE_EQ(nvl->load_s, 4e6 / 400e9);
  EXPECT_DOUBLE_EQ(nvl->busy_s, 1.0);
  ASSERT_NE(Find(r, layout, "gpu-2-nvl-down"), nullptr);
  // Only links that carried bytes: 4 NIC ports of 0->8 and 8->0 (nic-0.0 and nic-1.0, up and
  // down), nic-1.1-down, 2 spine links, 2 NVLink ports.
  EXPECT_EQ(r.size(), 4u + 1 + 2 + 2);
}

// A GPU with four NICs (nodes of 2 GPUs, 8 NICs) whose NIC 1 is down: its flow to GPU 2
// (node 1) moves a third of the bytes over each of NICs 0, 2 and 3 into GPU 2's NICs 0, 2
// and 3; NIC 1 at both ends carries nothing.
TEST(LinkLoadTest, StripesOverTheNicsLeftWhenOneIsDown) {
  const Topology topo = ParseTopology(testing::kFourNicsPerGpuTopology, "four-nics");
  const FabricLayout layout(topo, 4);
  StepWork work;
  work.dispatch = {{0, 2, 6e6}};
  work.link_down.assign(layout.num_links(), 0);
  work.link_down[layout.NicUpLink(0, 1)] = work.link_down[layout.NicUpLink(0, 1) + 1] = 1;
  StepTimeline t;
  t.dispatch_flow_start = {0.0};
  t.dispatch_flow_end = {1.0};
  const std::vector<LinkStepRecord> r = LinkLoads(layout, 0, work, t);
  for (const char* nic : {"0", "2", "3"}) {
    for (const std::string& name : {std::string("nic-0.") + nic + "-up", std::string("nic-1.") + nic + "-down"}) {
      const LinkStepRecord* link = Find(r, layout, name);
      ASSERT_NE(link, nullptr) << name;
      EXPECT_DOUBLE_EQ(link->bytes, 2e6) << name;
    }
  }
  EXPECT_EQ(Find(r, layout, "nic-0.1-up"), nullptr);
  EXPECT_EQ(Find(r, layout, "nic-1.1-down"), nullptr);
  EXPECT_EQ(r.size(), 6u);  // one leaf per rail: each stripe crosses only its two NIC ports
}

// Every link has a distinct name, and its tier matches the name.
TEST(LinkLoadTest, LinkNamesAreDistinct) {
  const Topology topo = ParseTopology(kTwoNodeTopology, "two-node");
  const FabricLayout layout(topo, 16, SmBudget{1e11, 1e11});
  std::vector<std::string> names;
  for (int l = 0; l < layout.num_links(); ++l) {
    names.push_back(layout.LinkName(l));
    const std::string tier = layout.LinkTier(l), name = names.back();
    if (tier == "nvlink") { EXPECT_NE(name.find("-nvl-"), std::string::npos) << name; }
    if (tier == "nic") { EXPECT_EQ(name.rfind("nic-", 0), 0u) << name; }
    if (tier == "spine") { EXPECT_NE(name.find("spine-"), std::string::npos) << name; }
    if (tier == "sm") { EXPECT_NE(name.find("-sm-"), std::string::npos) << name; }
  }
  EXPECT_EQ(static_cast<size_t>(layout.num_links()), layout.LinkCapacities().size());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end());
}

}  // namespace
}  // namespace epsim
