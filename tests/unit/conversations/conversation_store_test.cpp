#include "conversations/conversation_store.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "auth/users.h"
#include "conversations/retention.h"
#include "support/backends.h"
#include "support/test_support.h"

namespace llmd::conversations {
namespace {

// Every test runs on SQLite and on a private MariaDB server.
class ConversationStoreTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    auto db = store::Database::open(testing::fresh_database_url(GetParam(), dir_), 4);
    ASSERT_TRUE(db) << db.error().message;
    db_ = std::move(*db);
    ASSERT_TRUE(db_->migrate());
    users_ = std::make_unique<auth::UserStore>(*db_);
    alice_ = users_->create("alice", "a@b.cn", "$2b$10$x", "user", 100).value().id;
    bob_ = users_->create("bob", "b@b.cn", "$2b$10$x", "user", 100).value().id;
    reopen(Limits{});
  }

  void reopen(Limits limits) { store_ = std::make_unique<ConversationStore>(*db_, limits); }

  std::string make(std::int64_t user, const std::string& title = "") {
    auto c = store_->create(user, {title, "tiny", ""});
    EXPECT_TRUE(c) << c.error().message;
    return c ? c->summary.id : "";
  }

  // One whole turn: the user's message and a finished reply.
  OpenTurn chat(std::int64_t user, const std::string& id, const std::string& message, const std::string& reply,
                TurnKind kind = TurnKind::kSend, std::int64_t edit_id = 0) {
    auto plan = store_->plan_turn(user, {id, kind, message, edit_id});
    EXPECT_TRUE(plan) << plan.error().message;
    if (!plan) return {};
    auto turn = store_->open_turn(user, *plan, "tiny");
    EXPECT_TRUE(turn) << turn.error().message;
    if (!turn) return {};
    EXPECT_TRUE(store_->close_turn(user, *turn, {reply, "", 5, 7, 12, "stop"}));
    return *turn;
  }

  std::int64_t count(const std::string& sql, std::vector<store::Value> params) {
    auto rows =
        db_->with_connection<std::vector<store::Row>>([&](store::Connection& c) { return c.query(sql, params); });
    EXPECT_TRUE(rows) << rows.error().message;
    return rows ? rows->front().integer(0) : -1;
  }

  std::vector<std::string> search(std::int64_t user, const std::string& q) {
    auto page = store_->list(user, {q, 100, ""});
    EXPECT_TRUE(page) << page.error().message;
    std::vector<std::string> ids;
    if (page) {
      for (const auto& s : page->items) ids.push_back(s.id);
    }
    return ids;
  }

  testing::TempDir dir_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<auth::UserStore> users_;
  std::unique_ptr<ConversationStore> store_;
  std::int64_t alice_ = 0, bob_ = 0;
};

TEST_P(ConversationStoreTest, ATurnStoresTheMessageAndItsReplyAndTitlesTheConversation) {
  const std::string id = make(alice_);
  const OpenTurn turn = chat(alice_, id, "  What is\n 2+2?  ", "4");
  EXPECT_EQ(turn.title, "What is 2+2?");
  auto got = store_->get(id, alice_);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->summary.title, "What is 2+2?");
  EXPECT_EQ(got->summary.model, "tiny");
  ASSERT_EQ(got->messages.size(), 2u);
  EXPECT_EQ(got->messages[0].id, turn.user_message_id);
  EXPECT_EQ(got->messages[0].role, "user");
  EXPECT_EQ(got->messages[0].content, "  What is\n 2+2?  ");
  EXPECT_FALSE(got->messages[0].finish_reason);
  EXPECT_EQ(got->messages[1].id, turn.reply_message_id);
  EXPECT_EQ(got->messages[1].content, "4");
  EXPECT_EQ(got->messages[1].finish_reason, "stop");
  EXPECT_EQ(got->messages[1].prompt_tokens, 5);
  EXPECT_EQ(got->messages[1].tokens_consumed, 12);
  EXPECT_EQ(got->summary.message_count, 2);
  EXPECT_EQ(got->summary.bytes, static_cast<std::int64_t>(std::string("  What is\n 2+2?  4").size()));
  // The next turn's history is the finished exchange.
  auto plan = store_->plan_turn(alice_, {id, TurnKind::kSend, "and 3+3?", 0});
  ASSERT_TRUE(plan);
  ASSERT_EQ(plan->history.size(), 2u);
  EXPECT_EQ(plan->history[1].content, "4");
  EXPECT_EQ(plan->user_text, "and 3+3?");
}

TEST_P(ConversationStoreTest, EveryVerbOnAnotherUsersConversationIsNotFound) {
  const std::string id = make(alice_, "secret");
  chat(alice_, id, "hello", "hi");
  EXPECT_EQ(store_->get(id, bob_).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->update(id, bob_, {std::string("mine"), std::nullopt}).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->remove(id, bob_).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->plan_turn(bob_, {id, TurnKind::kSend, "x", 0}).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->plan_turn(bob_, {id, TurnKind::kRegenerate, "", 0}).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->remove_all(bob_).value(), 0);
  EXPECT_TRUE(search(bob_, "hello").empty());
  EXPECT_TRUE(search(bob_, "secret").empty());
  auto mine = store_->get(id, alice_);
  ASSERT_TRUE(mine);
  EXPECT_EQ(mine->summary.title, "secret");
  EXPECT_EQ(mine->messages.size(), 2u);
}

TEST_P(ConversationStoreTest, RegenerateReplacesTheLastReplyAndKeepsItsQuestion) {
  const std::string id = make(alice_);
  chat(alice_, id, "one", "first");
  const OpenTurn second = chat(alice_, id, "two", "second");
  auto plan = store_->plan_turn(alice_, {id, TurnKind::kRegenerate, "", 0});
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(plan->user_text, "two");
  EXPECT_EQ(plan->history.size(), 2u);
  auto turn = store_->open_turn(alice_, *plan, "tiny");
  ASSERT_TRUE(turn) << turn.error().message;
  EXPECT_EQ(turn->user_message_id, second.user_message_id);
  ASSERT_TRUE(store_->close_turn(alice_, *turn, {"again", "", 1, 1, 2, "stop"}));
  auto got = store_->get(id, alice_).value();
  ASSERT_EQ(got.messages.size(), 4u);
  EXPECT_EQ(got.messages[2].content, "two");
  EXPECT_EQ(got.messages[3].content, "again");
  EXPECT_EQ(got.messages[3].id, turn->reply_message_id);
}

TEST_P(ConversationStoreTest, EditReplacesTheMessageAndEverythingAfterIt) {
  const std::string id = make(alice_);
  const OpenTurn first = chat(alice_, id, "one", "first");
  chat(alice_, id, "two", "second");
  chat(alice_, id, "three", "third");
  auto not_user = store_->plan_turn(alice_, {id, TurnKind::kEdit, "x", first.reply_message_id});
  ASSERT_FALSE(not_user);
  EXPECT_EQ(not_user.error().code, ErrorCode::kNotFound);
  chat(alice_, id, "uno", "primero", TurnKind::kEdit, first.user_message_id);
  auto got = store_->get(id, alice_).value();
  ASSERT_EQ(got.messages.size(), 2u);
  EXPECT_EQ(got.messages[0].content, "uno");
  EXPECT_EQ(got.messages[1].content, "primero");
  EXPECT_EQ(got.summary.message_count, 2);
  EXPECT_TRUE(search(alice_, "three").empty());  // the replaced text is out of the index too
}

TEST_P(ConversationStoreTest, AStalePlanIsRefusedAndChangesNothing) {
  const std::string id = make(alice_);
  chat(alice_, id, "one", "first");
  auto regenerate = store_->plan_turn(alice_, {id, TurnKind::kRegenerate, "", 0});
  ASSERT_TRUE(regenerate);
  chat(alice_, id, "two", "second");  // the reply it would replace is no longer the last
  auto turn = store_->open_turn(alice_, *regenerate, "tiny");
  ASSERT_FALSE(turn);
  EXPECT_EQ(turn.error().reason, "conversation_changed");
  EXPECT_EQ(store_->get(id, alice_)->messages.size(), 4u);

  const std::string empty = make(alice_);
  auto nothing = store_->plan_turn(alice_, {empty, TurnKind::kRegenerate, "", 0});
  ASSERT_FALSE(nothing);
  EXPECT_EQ(nothing.error().reason, "nothing_to_regenerate");
}

TEST_P(ConversationStoreTest, FailedAndPendingTurnsStayOutOfTheHistory) {
  const std::string id = make(alice_);
  chat(alice_, id, "one", "first");
  auto plan = store_->plan_turn(alice_, {id, TurnKind::kSend, "lost", 0});
  auto failed = store_->open_turn(alice_, *plan, "tiny");
  ASSERT_TRUE(failed);
  ASSERT_TRUE(store_->close_turn(alice_, *failed, {"", "", 0, 0, 0, "error"}));
  auto pending_plan = store_->plan_turn(alice_, {id, TurnKind::kSend, "still writing", 0});
  ASSERT_TRUE(store_->open_turn(alice_, *pending_plan, "tiny"));
  auto next = store_->plan_turn(alice_, {id, TurnKind::kSend, "three", 0});
  ASSERT_TRUE(next);
  ASSERT_EQ(next->history.size(), 2u);
  EXPECT_EQ(next->history[0].content, "one");
  EXPECT_EQ(next->history[1].content, "first");
  // While a reply is pending, regenerate and edit wait for it.
  auto regenerate = store_->plan_turn(alice_, {id, TurnKind::kRegenerate, "", 0});
  ASSERT_FALSE(regenerate);
  EXPECT_EQ(regenerate.error().reason, "reply_in_progress");
  // A stopped server's pending reply is marked failed by the sweep.
  auto swept = sweep(*store_, RetentionOptions{0, {}, std::chrono::milliseconds(0)}, 1LL << 60);
  ASSERT_TRUE(swept);
  EXPECT_EQ(swept->replies_failed, 1);
  EXPECT_EQ(store_->get(id, alice_)->messages.back().finish_reason, "error");
}

TEST_P(ConversationStoreTest, LimitsRefuseWithTheRightErrorAndKeepTheHistoryWhole) {
  reopen(Limits{2, 4, 10});
  const std::string id = make(alice_);
  chat(alice_, id, "one", "first");
  auto big = store_->plan_turn(alice_, {id, TurnKind::kSend, std::string(11, 'x'), 0});
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, ErrorCode::kTooLarge);
  EXPECT_EQ(big.error().reason, "message_too_large");
  chat(alice_, id, "two", "second");
  auto full = store_->plan_turn(alice_, {id, TurnKind::kSend, "three", 0});
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, ErrorCode::kConflict);
  EXPECT_EQ(full.error().reason, "conversation_full");
  EXPECT_EQ(store_->get(id, alice_)->messages.size(), 4u);
  make(alice_);
  auto third = store_->create(alice_, {"", "", ""});
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().reason, "too_many_conversations");
  EXPECT_EQ(store_->list(alice_, {"", 10, ""})->items.size(), 2u);
  ASSERT_TRUE(store_->create(bob_, {"", "", ""}));  // per user
}

TEST_P(ConversationStoreTest, PagesHaveNeitherDuplicatesNorGapsWhileNewConversationsArrive) {
  std::set<std::string> before;
  for (int i = 0; i < 25; ++i) before.insert(make(alice_, "c" + std::to_string(i)));
  std::set<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    auto page = store_->list(alice_, {"", 10, cursor});
    ASSERT_TRUE(page) << page.error().message;
    for (const auto& s : page->items) EXPECT_TRUE(seen.insert(s.id).second) << "duplicate " << s.id;
    make(alice_, "arrived while paging");  // newer: belongs before the first page
    cursor = page->next_cursor.value_or("");
    ++pages;
  } while (!cursor.empty() && pages < 10);
  for (const auto& id : before) EXPECT_TRUE(seen.count(id)) << "gap: " << id;
  EXPECT_EQ(seen.size(), before.size());
  auto bad = store_->list(alice_, {"", 10, "not-a-cursor"});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().reason, "invalid_cursor");
}

TEST_P(ConversationStoreTest, SearchFindsTitlesAndTextFromTheMiddleOfAMessage) {
  const std::string photo = make(alice_);
  chat(alice_, photo, "Explain how photosynthesis turns light into sugar", "Chlorophyll absorbs light.");
  const std::string chinese = make(alice_);
  chat(alice_, chinese, "请解释勾股定理的证明", "直角三角形两直角边的平方和等于斜边的平方。");
  const std::string titled = make(alice_, "Algebra homework");
  const std::string percent = make(alice_);
  chat(alice_, percent, "what is 50% of 80", "40");
  const std::string others = make(bob_);
  chat(bob_, others, "photosynthesis for bob", "ok");

  EXPECT_EQ(search(alice_, "synthesis"), std::vector<std::string>{photo});    // inside a word
  EXPECT_EQ(search(alice_, "LIGHT INTO"), std::vector<std::string>{photo});   // any case, across words
  EXPECT_EQ(search(alice_, "chlorophyll"), std::vector<std::string>{photo});  // in the reply
  EXPECT_EQ(search(alice_, "勾股定理"), std::vector<std::string>{chinese});
  EXPECT_EQ(search(alice_, "斜边"), std::vector<std::string>{chinese});  // two characters: the scan
  EXPECT_EQ(search(alice_, "algebra"), std::vector<std::string>{titled});
  EXPECT_EQ(search(alice_, "50%"), std::vector<std::string>{percent});  // % is text, not a wildcard
  EXPECT_TRUE(search(alice_, "quantum").empty());
  EXPECT_EQ(search(alice_, "\"light").size(), 0u);  // a quote cannot break out of the phrase
}

TEST_P(ConversationStoreTest, DeleteRemovesTheRowsFromTheDatabase) {
  const std::string id = make(alice_);
  chat(alice_, id, "remember the password swordfish", "noted");
  const std::string other = make(alice_);
  chat(alice_, other, "keep me", "kept");
  ASSERT_TRUE(store_->remove(id, alice_));
  EXPECT_EQ(count("SELECT COUNT(*) FROM conversations WHERE id = ?", {id}), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM conversation_messages WHERE conversation_id = ?", {id}), 0);
  EXPECT_TRUE(search(alice_, "swordfish").empty());
  if (GetParam() == testing::Backend::kSqlite) {
    // The index forgets the text too (not only the rows it points at).
    EXPECT_EQ(count("SELECT COUNT(*) FROM conversation_messages_fts WHERE conversation_messages_fts MATCH ?",
                    {std::string("\"swordfish\"")}),
              0);
  }
  EXPECT_EQ(store_->remove(id, alice_).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->remove_all(alice_).value(), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM conversation_messages WHERE user_id = ?", {alice_}), 0);
}

TEST_P(ConversationStoreTest, ConcurrentTurnsInOneConversationAreAllStoredInPairs) {
  const std::string id = make(alice_);
  constexpr int kThreads = 4, kTurns = 5;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kTurns; ++i) {
        const std::string n = std::to_string(t) + "." + std::to_string(i);
        auto plan = store_->plan_turn(alice_, {id, TurnKind::kSend, "q" + n, 0});
        ASSERT_TRUE(plan) << plan.error().message;
        auto turn = store_->open_turn(alice_, *plan, "tiny");
        ASSERT_TRUE(turn) << turn.error().message;
        ASSERT_TRUE(store_->close_turn(alice_, *turn, {"a" + n, "", 1, 1, 2, "stop"}));
      }
    });
  }
  for (auto& t : threads) t.join();
  auto got = store_->get(id, alice_).value();
  ASSERT_EQ(got.messages.size(), static_cast<std::size_t>(2 * kThreads * kTurns));
  std::set<std::string> questions;
  for (std::size_t i = 0; i < got.messages.size(); i += 2) {
    EXPECT_EQ(got.messages[i].role, "user");
    EXPECT_EQ("a" + got.messages[i].content.substr(1), got.messages[i + 1].content);  // each reply after its question
    EXPECT_LT(got.messages[i].id, got.messages[i + 1].id);
    questions.insert(got.messages[i].content);
  }
  EXPECT_EQ(questions.size(), static_cast<std::size_t>(kThreads * kTurns));
  EXPECT_EQ(got.summary.message_count, 2 * kThreads * kTurns);
}

TEST_P(ConversationStoreTest, ImportOfAnExportRecreatesEveryField) {
  const std::string id = make(alice_, "Thermodynamics");
  ASSERT_TRUE(store_->update(id, alice_, {std::nullopt, std::string("Answer briefly.")}));
  chat(alice_, id, "What is entropy?", "A measure of disorder: $S = k \\ln W$");
  auto plan = store_->plan_turn(alice_, {id, TurnKind::kSend, "more", 0});
  auto stopped = store_->open_turn(alice_, *plan, "tiny");
  ASSERT_TRUE(store_->close_turn(alice_, *stopped, {"partial", "thinking...", 3, 1, 4, "stopped"}));
  const auto exported = store_->all_of(alice_).value();
  auto ids = store_->import(bob_, exported);
  ASSERT_TRUE(ids) << ids.error().message;
  ASSERT_EQ(ids->size(), 1u);
  const auto copy = store_->get(ids->front(), bob_).value();
  const auto& original = exported.front();
  EXPECT_NE(copy.summary.id, original.summary.id);
  EXPECT_EQ(copy.summary.title, original.summary.title);
  EXPECT_EQ(copy.summary.created_at_ms, original.summary.created_at_ms);
  EXPECT_EQ(copy.summary.updated_at_ms, original.summary.updated_at_ms);
  EXPECT_EQ(copy.summary.bytes, original.summary.bytes);
  EXPECT_EQ(copy.system, "Answer briefly.");
  ASSERT_EQ(copy.messages.size(), original.messages.size());
  for (std::size_t i = 0; i < copy.messages.size(); ++i) {
    const Message& a = copy.messages[i];
    const Message& b = original.messages[i];
    EXPECT_EQ(std::tie(a.role, a.content, a.reasoning_content, a.model, a.prompt_tokens, a.completion_tokens,
                       a.tokens_consumed, a.finish_reason, a.created_at_ms),
              std::tie(b.role, b.content, b.reasoning_content, b.model, b.prompt_tokens, b.completion_tokens,
                       b.tokens_consumed, b.finish_reason, b.created_at_ms))
        << "message " << i;
  }
  // All or nothing: one bad message leaves no conversation behind.
  auto bad = exported;
  bad.push_back(exported.front());
  bad.back().messages.back().role = "system";
  ASSERT_FALSE(store_->import(bob_, bad));
  EXPECT_EQ(store_->list(bob_, {"", 10, ""})->items.size(), 1u);
}

TEST_P(ConversationStoreTest, RetentionRemovesOnlyConversationsIdleLongerThanItsDays) {
  const std::string old_one = make(alice_);
  chat(alice_, old_one, "old", "reply");
  const std::string fresh = make(alice_);
  const std::int64_t now = store_->get(fresh, alice_)->summary.updated_at_ms;
  ASSERT_TRUE(db_->with_connection<void>([&](store::Connection& c) -> Result<void> {
    const std::vector<store::Value> p{now - 31LL * 24 * 3600 * 1000, old_one};
    LLMD_TRY(c.exec("UPDATE conversations SET updated_at = ? WHERE id = ?", p));
    return {};
  }));
  auto kept = sweep(*store_, RetentionOptions{0}, now);
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->conversations_removed, 0);
  auto swept = sweep(*store_, RetentionOptions{30}, now);
  ASSERT_TRUE(swept);
  EXPECT_EQ(swept->conversations_removed, 1);
  EXPECT_EQ(store_->get(old_one, alice_).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(count("SELECT COUNT(*) FROM conversation_messages WHERE conversation_id = ?", {old_one}), 0);
  EXPECT_TRUE(store_->get(fresh, alice_));
  auto stats = store_->stats(alice_);
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->conversations, 1);
}

TEST(ConversationTitle, CollapsesWhitespaceAndCutsOnACharacterBoundary) {
  EXPECT_EQ(title_from("  a\n\tb  c ", 100), "a b c");
  EXPECT_EQ(title_from("勾股定理", 7), "勾股");  // 3 bytes per character: never half of one
  EXPECT_EQ(title_from("", 10), "");
}

INSTANTIATE_TEST_SUITE_P(Backends, ConversationStoreTest, ::testing::ValuesIn(testing::all_backends()),
                         testing::backend_name);

}  // namespace
}  // namespace llmd::conversations
