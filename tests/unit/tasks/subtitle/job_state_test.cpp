#include "tasks/subtitle/job_state.h"

#include <gtest/gtest.h>

namespace llmd::subtitle {
namespace {

using nlohmann::json;

TEST(JobState, ProgressSurvivesTheDatabaseRoundTripAndKeepsTheStatesOtherFields) {
  JobProgress p;
  p.next_batch = 3;
  p.lines = {"一", "二", ""};
  p.kept_source = {2};
  p.context.summary = "so far";
  p.context.glossary = {{"cat", "猫"}};
  p.prompt_tokens = 120;
  p.completion_tokens = 45;
  p.model_calls = 4;
  p.started_at = 1700000000;
  json state = {{"instance", "a"}, {"reservation", {{"id", 7}, {"amount", 900}}}};
  progress_to_state(p, state);
  const JobProgress back = progress_from_state(json::parse(state.dump()), 42);
  EXPECT_EQ(back.next_batch, 3u);
  EXPECT_EQ(back.lines, p.lines);
  EXPECT_EQ(back.kept_source, p.kept_source);
  EXPECT_EQ(back.context.summary, "so far");
  EXPECT_EQ(back.context.glossary, p.context.glossary);
  EXPECT_EQ(back.base(), 165);
  EXPECT_EQ(back.model_calls, 4);
  EXPECT_EQ(back.started_at, 1700000000);
  EXPECT_EQ(state["instance"], "a");
  const auto r = reservation_from_state(state, 5, "job-1");
  EXPECT_EQ(r.id, 7);
  EXPECT_EQ(r.amount, 900);
  EXPECT_EQ(r.user_id, 5);
  EXPECT_EQ(r.request_id, "job-1");
  EXPECT_EQ(reservation_json(r), state["reservation"]);
}

TEST(JobState, AStateWithoutProgressStartsAtTheFirstBatchNow) {
  const JobProgress p = progress_from_state(json{{"lines", "not a list"}, {"kept_source", {1, "x", 3}}}, 42);
  EXPECT_EQ(p.next_batch, 0u);
  EXPECT_TRUE(p.lines.empty());
  EXPECT_EQ(p.kept_source, (std::vector<std::int64_t>{1, 3}));
  EXPECT_EQ(p.started_at, 42);
  EXPECT_EQ(reservation_from_state(json::object(), 5, "j").id, 0);
}

TEST(JobState, TheDocumentKeepsEveryCueFieldAndADamagedOneIsAnError) {
  Document doc;
  doc.source_format = Format::kAss;
  doc.ass_header = "[Script Info]\n";
  Cue c;
  c.start_ms = 1000;
  c.end_ms = 2500;
  c.text = "line one\nline two";
  c.style = "Default";
  c.raw = "{\\i1}line one\\Nline two";
  c.ass_fields = "0,,0,0,0,";
  doc.cues.push_back(c);
  const auto back = document_from_json(json::parse(document_to_json(doc).dump()));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->source_format, Format::kAss);
  EXPECT_EQ(back->ass_header, doc.ass_header);
  ASSERT_EQ(back->cues.size(), 1u);
  EXPECT_EQ(back->cues[0].end_ms, 2500);
  EXPECT_EQ(back->cues[0].raw, c.raw);
  EXPECT_EQ(back->cues[0].ass_fields, c.ass_fields);

  for (const json& damaged : {json::array(), json{{"cues", "x"}}, json{{"cues", {{1, "two"}}}}}) {
    const auto r = document_from_json(damaged);
    ASSERT_FALSE(r) << damaged.dump();
    EXPECT_EQ(r.error().code, ErrorCode::kInternal);
    EXPECT_EQ(r.error().reason, "job_damaged");
  }

  SubtitleJobSpec spec;
  spec.target_lang = "en";
  spec.output_format = Format::kVtt;
  spec.bilingual = true;
  spec.source_name = "a.srt";
  const SubtitleJobSpec spec_back = spec_from_json(spec_to_json(spec));
  EXPECT_EQ(spec_back.target_lang, "en");
  EXPECT_EQ(spec_back.output_format, Format::kVtt);
  EXPECT_TRUE(spec_back.bilingual);
  EXPECT_EQ(spec_back.source_name, "a.srt");
}

}  // namespace
}  // namespace llmd::subtitle
