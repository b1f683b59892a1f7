// epsim calibration tests: profile round trip (FormatProfile then ParseProfile), the bundled
// datasheet and measured profiles load, unknown schema versions and bad values are refused.
#include <cmath>
#include <string>

#include <gtest/gtest.h>

#include "calibrate/profile/profile.h"
#include "common/error.h"
#include "common/yaml.h"

namespace epsim {
namespace {

Profile Sample() {
  Profile p;
  p.name = "cpu-test";
  p.source = "measured";
  p.device_name = "Some CPU: 2 cores";
  p.memory_bytes = 25'300'000'000;
  p.device_properties = {{"threads", "2"}, {"avx2_fma", "yes"}};
  p.software = {{"compiler", "gcc 12.2.0"}};
  p.samples_csv = "cpu-test.csv";
  for (const char* name : {"route", "permute", "expert", "combine", "layout"}) {
    OpModel m;
    m.name = name;
    m.fixed_s = 3.25e-6;
    m.flop_rate_Fps = 0.0512e12;
    m.mem_rate_Bps = 21.5e9;
    m.half_rate_tokens = 12.5;
    m.valid_tokens_min = 1;
    m.valid_tokens_max = 2048;
    m.valid_shapes = "hidden 1024-2048; experts 64-256";
    m.heldout_error = 0.083;
    m.heldout_error_p90 = 0.21;
    m.num_points = 10;
    m.num_outliers = 1;
    m.note = "a \"quoted\" note: with colon";
    p.ops[name] = m;
  }
  p.ops["permute"].flop_rate_Fps = INFINITY;  // no FLOPs: left out of the file
  p.a2a.present = true;
  p.a2a.backend = "mpi";
  p.a2a.num_ranks = 2;
  p.a2a.source = "nccl-tests: a2a.txt";
  p.a2a.fixed_s = 4e-6;
  p.a2a.per_message_s = 0.5e-6;
  p.a2a.bandwidth_Bps = 5e9;
  p.a2a.heldout_error = 0.1;
  p.a2a.valid_bytes_min = 1024;
  p.a2a.valid_bytes_max = 1 << 24;
  p.a2a.table = {{1024, 1, 1, 1024, 5e-6}, {1024, 4, 1, 4096, 6e-6}};
  return p;
}

TEST(ProfileTest, RoundTrip) {
  const Profile in = Sample();
  const Profile out = ParseProfile(FormatProfile(in, "# header\n"), "roundtrip.yaml");
  EXPECT_EQ(out.name, in.name);
  EXPECT_EQ(out.source, "measured");
  EXPECT_EQ(out.device_name, in.device_name);
  EXPECT_DOUBLE_EQ(out.memory_bytes, in.memory_bytes);
  EXPECT_EQ(out.device_properties, in.device_properties);
  EXPECT_EQ(out.software, in.software);
  EXPECT_EQ(out.samples_csv, in.samples_csv);
  ASSERT_EQ(out.ops.size(), 5u);
  for (const auto& [name, m] : in.ops) {
    const OpModel& o = out.Op(name);
    EXPECT_NEAR(o.fixed_s, m.fixed_s, 1e-12) << name;
    if (std::isinf(m.flop_rate_Fps)) {
      EXPECT_TRUE(std::isinf(o.flop_rate_Fps)) << name;
    } else {
      EXPECT_NEAR(o.flop_rate_Fps, m.flop_rate_Fps, 1e-6 * m.flop_rate_Fps) << name;
    }
    EXPECT_NEAR(o.mem_rate_Bps, m.mem_rate_Bps, 1e-6 * m.mem_rate_Bps) << name;
    EXPECT_DOUBLE_EQ(o.half_rate_tokens, m.half_rate_tokens);
    EXPECT_DOUBLE_EQ(o.valid_tokens_max, 2048);
    EXPECT_DOUBLE_EQ(o.heldout_error, m.heldout_error);
    EXPECT_DOUBLE_EQ(o.heldout_error_p90, m.heldout_error_p90);
    EXPECT_EQ(o.num_points, 10);
    EXPECT_EQ(o.num_outliers, 1);
    EXPECT_EQ(o.valid_shapes, m.valid_shapes);
    EXPECT_EQ(o.note, m.note);
    // Same times from the written model.
    EXPECT_NEAR(o.TimeS(1e9, 1e8, 100), m.TimeS(1e9, 1e8, 100), 1e-9);
  }
  ASSERT_TRUE(out.a2a.present);
  EXPECT_EQ(out.a2a.backend, "mpi");
  EXPECT_EQ(out.a2a.num_ranks, 2);
  EXPECT_EQ(out.a2a.source, "nccl-tests: a2a.txt");
  EXPECT_NEAR(out.a2a.TimeS(1e6, 3), 4e-6 + 3 * 0.5e-6 + 1e6 / 5e9, 1e-12);
  ASSERT_EQ(out.a2a.table.size(), 2u);
  EXPECT_EQ(out.a2a.table[1].peers, 1);
  EXPECT_DOUBLE_EQ(out.a2a.table[1].skew, 4);
  EXPECT_NEAR(out.a2a.table[1].time_s, 6e-6, 1e-15);
}

TEST(ProfileTest, SkippedAllToAllRoundTrips) {
  Profile in = Sample();
  in.a2a = AllToAllModel();
  in.a2a.present = true;
  in.a2a.skipped = "needs 2+ ranks";
  const Profile out = ParseProfile(FormatProfile(in, ""), "skipped.yaml");
  EXPECT_EQ(out.a2a.skipped, "needs 2+ ranks");
}

TEST(ProfileTest, BundledProfilesLoad) {
  for (const char* name : {"h100", "h200", "h800", "b200", "gb200", "a100", "cpu-dev"}) {
    const Profile p = LoadProfile(std::string("calibrate/profiles/") + name + ".yaml");
    EXPECT_EQ(p.schema_version, kProfileSchemaVersion) << name;  // read into this version's form
    for (const char* op : {"route", "permute", "expert", "combine"}) EXPECT_GT(p.Op(op).mem_rate_Bps, 0) << name;
  }
  const Profile cpu = LoadProfile("calibrate/profiles/cpu-dev.yaml");
  EXPECT_EQ(cpu.source, "measured");
  for (const char* op : {"route", "permute", "expert", "combine"}) {
    EXPECT_GE(cpu.Op(op).heldout_error, 0) << op;
    EXPECT_GT(cpu.Op(op).valid_tokens_max, cpu.Op(op).valid_tokens_min) << op;
  }
}

// cpu-dev.yaml is a version-1 profile: its `latency_us` becomes the fixed cost, no per-message
// cost, and every measured row sent to every other rank.
TEST(ProfileTest, VersionOneAllToAllIsReadAsFixedCost) {
  const Profile cpu = LoadProfile("calibrate/profiles/cpu-dev.yaml");
  ASSERT_TRUE(cpu.a2a.present);
  EXPECT_NEAR(cpu.a2a.fixed_s, 1.54236e-6, 1e-12);
  EXPECT_EQ(cpu.a2a.per_message_s, 0.0);
  ASSERT_FALSE(cpu.a2a.table.empty());
  for (const AllToAllModel::Row& r : cpu.a2a.table) EXPECT_EQ(r.peers, cpu.a2a.num_ranks - 1);
  // Written back, it is a version-2 file that reads the same.
  const Profile again = ParseProfile(FormatProfile(cpu, ""), "again.yaml");
  EXPECT_NEAR(again.a2a.fixed_s, cpu.a2a.fixed_s, 1e-12);
  EXPECT_EQ(again.a2a.table.size(), cpu.a2a.table.size());
}

TEST(ProfileTest, RefusesUnknownSchemaVersion) {
  std::string text = FormatProfile(Sample(), "");
  text.replace(text.find("schema_version: 3"), 17, "schema_version: 4");
  try {
    ParseProfile(text, "v4.yaml");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "schema_version");
    EXPECT_NE(std::string(e.what()).find("v4.yaml"), std::string::npos);
  }
}

TEST(ProfileTest, RefusesOpWithoutRatesAndUnknownKeys) {
  std::string text = FormatProfile(Sample(), "");
  std::string bad = text;
  bad.replace(bad.find("    flop_rate_TFLOPs: 0.0512\n    mem_rate_GBps: 21.5\n"), 48, "");
  EXPECT_THROW(ParseProfile(bad, "norate.yaml"), ConfigError);
  bad = text;
  bad.replace(bad.find("    half_rate_tokens"), 0, "    bogus_key: 1\n");
  EXPECT_THROW(ParseProfile(bad, "bogus.yaml"), ConfigError);
}

TEST(ProfileTest, ValidityRange) {
  OpModel m;
  m.valid_tokens_min = 1;
  m.valid_tokens_max = 2048;
  EXPECT_TRUE(m.InRange(1));
  EXPECT_TRUE(m.InRange(2048));
  EXPECT_FALSE(m.InRange(4096));
  EXPECT_FALSE(m.InRange(0.5));
}

}  // namespace
}  // namespace epsim
