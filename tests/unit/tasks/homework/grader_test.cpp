// The grader: the model's reply read and clamped, combined with the exact
// check (which wins), self-consistency over several samples.
#include <gtest/gtest.h>

#include "tasks/homework/grader.h"

namespace llmd::homework {
namespace {

ModelGrade model(int score, bool correct, std::string feedback = "好", std::vector<std::string> s = {"多练习"}) {
  return {score, correct, std::move(feedback), std::move(s)};
}

Check check_of(Verdict v) {
  Check c;
  c.verdict = v;
  c.expression = "2+3*4";
  c.expected = "14";
  c.student = v == Verdict::kMatch ? "14" : "15";
  return c;
}

TEST(HomeworkGrader, SchemaHasTheFourRequiredFieldsAndBounds) {
  const auto s = grade_schema();
  EXPECT_EQ(s["required"].size(), 4u);
  EXPECT_EQ(s["properties"]["score"]["maximum"], 100);
  EXPECT_EQ(s["properties"]["feedback"]["maxLength"], 500);
  EXPECT_EQ(s["properties"]["suggestions"]["maxItems"], 5);
  EXPECT_EQ(s["properties"]["suggestions"]["minItems"], 1);
  EXPECT_EQ(s["additionalProperties"], false);
}

TEST(HomeworkGrader, ParsesAndClampsTheModelReply) {
  auto g =
      parse_model_grade(R"({"score": 150, "correct": true, "feedback": "  很好  ", "suggestions": [" a ", "", "b"]})");
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_EQ(g->score, 100);
  EXPECT_EQ(g->feedback, "很好");
  EXPECT_EQ(g->suggestions, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(parse_model_grade(R"({"score": -7, "correct": false, "feedback": "x", "suggestions": []})")->score, 0);
  EXPECT_EQ(parse_model_grade(R"({"score": 72.6, "correct": false, "feedback": "x", "suggestions": []})")->score, 73);
  const std::string long_text(2000, 'x');
  auto cut =
      parse_model_grade(R"({"score": 5, "correct": false, "feedback": ")" + long_text + R"(", "suggestions": []})");
  EXPECT_EQ(cut->feedback.size(), 500u);
}

TEST(HomeworkGrader, UnusableRepliesAreErrors) {
  for (const char* bad :
       {"", "{\"score\": 5, \"correct\": tr", "[1,2]", "{\"score\": \"high\", \"correct\": true, \"feedback\": \"\"}",
        "{\"score\": 5, \"feedback\": \"x\"}"}) {
    auto g = parse_model_grade(bad);
    ASSERT_FALSE(g) << bad;
    EXPECT_EQ(g.error().reason, "model_reply_invalid");
  }
}

TEST(HomeworkGrader, MismatchCapsTheScoreAndForcesIncorrect) {
  const auto g = combine({model(100, true, "满分")}, check_of(Verdict::kMismatch), Language::kZh);
  EXPECT_EQ(g.score, 40);
  EXPECT_FALSE(g.correct);
  EXPECT_EQ(g.feedback.rfind("精确验算", 0), 0u) << g.feedback;
  EXPECT_NE(g.feedback.find("满分"), std::string::npos);
  const auto low = combine({model(10, false)}, check_of(Verdict::kMismatch), Language::kZh);
  EXPECT_EQ(low.score, 10);  // a cap, not a fixed score
}

TEST(HomeworkGrader, UnparseableAnswerToAnArithmeticQuestionIsIncorrect) {
  const auto g = combine({model(95, true)}, check_of(Verdict::kUnparseableAnswer), Language::kEn);
  EXPECT_FALSE(g.correct);
  EXPECT_LE(g.score, 40);
  EXPECT_NE(g.feedback.find("no number"), std::string::npos);
}

TEST(HomeworkGrader, MatchForcesCorrectAndLiftsToTheFloor) {
  const auto g = combine({model(5, false)}, check_of(Verdict::kMatch), Language::kZh);
  EXPECT_TRUE(g.correct);
  EXPECT_EQ(g.score, 60);
  EXPECT_EQ(combine({model(90, false)}, check_of(Verdict::kMatch), Language::kZh).score, 90);
}

TEST(HomeworkGrader, WithoutADecisiveCheckTheModelDecides) {
  for (Verdict v : {Verdict::kNotArithmetic, Verdict::kDivisionByZero}) {
    const auto g = combine({model(77, true, "不错")}, check_of(v), Language::kZh);
    EXPECT_EQ(g.score, 77);
    EXPECT_TRUE(g.correct);
    EXPECT_EQ(g.feedback, "不错");
  }
  EXPECT_FALSE(decisive(check_of(Verdict::kNotArithmetic)));
  EXPECT_TRUE(decisive(check_of(Verdict::kUnparseableAnswer)));
}

TEST(HomeworkGrader, SamplesGiveTheMedianAndAConfidence) {
  const Check none = check_of(Verdict::kNotArithmetic);
  const auto odd = combine({model(90, true, "a"), model(10, false, "b"), model(80, true, "c")}, none, Language::kZh);
  EXPECT_EQ(odd.score, 80);
  EXPECT_TRUE(odd.correct);
  EXPECT_EQ(odd.feedback, "c");  // the sample nearest the median speaks
  EXPECT_EQ(odd.sample_scores, (std::vector<int>{90, 10, 80}));
  ASSERT_TRUE(odd.confidence);
  EXPECT_DOUBLE_EQ(*odd.confidence, 0.13);  // (1 - 0.8) x 2/3
  const auto even = combine({model(70, true), model(75, true)}, none, Language::kZh);
  EXPECT_EQ(even.score, 73);
  EXPECT_DOUBLE_EQ(*even.confidence, 0.95);
  const auto same = combine({model(50, false), model(50, false), model(50, false)}, none, Language::kZh);
  EXPECT_DOUBLE_EQ(*same.confidence, 1.0);
  EXPECT_FALSE(combine({model(50, false)}, none, Language::kZh).confidence);
  const auto tie = combine({model(70, true), model(60, false)}, none, Language::kZh);
  EXPECT_TRUE(tie.correct);  // 1:1 goes to the median score (65 >= 60)
}

TEST(HomeworkGrader, EmptyAnswerScoresZero) {
  const auto g = grade_empty_answer(check_of(Verdict::kUnparseableAnswer), Language::kZh);
  EXPECT_EQ(g.score, 0);
  EXPECT_FALSE(g.correct);
  EXPECT_FALSE(g.feedback.empty());
  EXPECT_EQ(g.suggestions.size(), 1u);
  EXPECT_TRUE(g.sample_scores.empty());
}

TEST(HomeworkGrader, GradeByCheckAloneOnlyWhenDecisive) {
  EXPECT_EQ(grade_by_check(check_of(Verdict::kMatch), Language::kZh)->score, 100);
  EXPECT_FALSE(grade_by_check(check_of(Verdict::kMismatch), Language::kZh)->correct);
  EXPECT_FALSE(grade_by_check(check_of(Verdict::kNotArithmetic), Language::kZh));
}

TEST(HomeworkGrader, CheckJsonNamesTheVerdict) {
  const auto j = check_json(check_arithmetic("2+3×4", "15"));
  EXPECT_EQ(j["verdict"], "mismatch");
  EXPECT_EQ(j["expression"], "2+3*4");
  EXPECT_EQ(j["expected"], "14");
  EXPECT_EQ(j["student"], "15");
  EXPECT_EQ(j["kind"], "arithmetic");
}

TEST(HomeworkGrader, FeedbackStaysWithinTheLimitAfterTheCheckSentence) {
  const auto g = combine({model(90, true, std::string(500, 'x'))}, check_of(Verdict::kMismatch), Language::kZh);
  std::size_t points = 0;
  for (unsigned char c : g.feedback) points += (c & 0xC0) != 0x80;
  EXPECT_LE(points, 500u);
}

}  // namespace
}  // namespace llmd::homework

namespace llmd::homework {
namespace {

TEST(HomeworkGrader, BriefSchemaHasTheSameShapeWithShortTexts) {
  const auto full = grade_schema();
  const auto brief = grade_schema(true);
  EXPECT_EQ(brief["required"], full["required"]);
  EXPECT_EQ(brief["properties"]["score"], full["properties"]["score"]);
  EXPECT_EQ(brief["properties"]["feedback"]["maxLength"], 80);
  EXPECT_EQ(brief["properties"]["suggestions"]["maxItems"], 2);
}

}  // namespace
}  // namespace llmd::homework
