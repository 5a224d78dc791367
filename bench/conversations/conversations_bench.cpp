// The conversation store at a heavy user's size: one user with N
// conversations of M messages (plus other users' text in the same tables),
// then the calls behind the chat page timed one after another: a page of
// the list, opening one conversation (rendered to the API's JSON), and
// searches (a rare word, a common word, two CJK characters: the scan
// fallback). Server time without HTTP: what the worker pool spends per call.
//
//   conversations_bench [DATABASE_URL] [--conversations N] [--messages M] [--runs R]
//   (default: a fresh SQLite file in /tmp, 1000 x 50, 200 runs)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "auth/users.h"
#include "conversations/conversation_store.h"
#include "conversations/transfer.h"
#include "store/database.h"

namespace {

using llmd::conversations::Conversation;
using llmd::conversations::ConversationStore;
using llmd::conversations::Message;

const char* const kWords[] = {"the",      "equation", "teacher", "answer",    "because", "energy",   "triangle",
                              "function", "history",  "river",   "molecule",  "poem",    "velocity", "grammar",
                              "derive",   "solve",    "explain", "carefully", "example", "homework", "chapter"};
const char* const kHan[] = {"数学", "作业", "解释", "方程", "历史", "三角形", "老师", "答案", "能量", "函数"};

std::string sentence(std::mt19937& rng, int words) {
  std::string s;
  for (int i = 0; i < words; ++i) {
    if (!s.empty()) s += ' ';
    s += rng() % 4 == 0 ? kHan[rng() % std::size(kHan)] : kWords[rng() % std::size(kWords)];
  }
  return s;
}

// N conversations of M messages; every 97th message mentions photosynthesis.
std::vector<Conversation> conversations(int n, int m, std::mt19937& rng, std::int64_t now_ms) {
  std::vector<Conversation> out;
  int counter = 0;
  for (int c = 0; c < n; ++c) {
    Conversation conv;
    conv.summary.title = sentence(rng, 4);
    conv.summary.model = "qwen2.5-7b";
    conv.summary.created_at_ms = conv.summary.updated_at_ms = now_ms - (n - c) * 60'000;
    for (int i = 0; i < m; ++i) {
      Message msg;
      msg.role = i % 2 == 0 ? "user" : "assistant";
      msg.content = sentence(rng, i % 2 == 0 ? 20 : 80);
      if (++counter % 97 == 0) msg.content += " photosynthesis";
      msg.model = "qwen2.5-7b";
      msg.created_at_ms = conv.summary.created_at_ms;
      if (msg.role == "assistant") {
        msg.prompt_tokens = 300;
        msg.completion_tokens = 120;
        msg.tokens_consumed = 420;
        msg.finish_reason = "stop";
      }
      conv.messages.push_back(std::move(msg));
    }
    out.push_back(std::move(conv));
  }
  return out;
}

struct Timing {
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
};

Timing measure(int runs, const std::function<void()>& call) {
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    call();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::ranges::sort(ms);
  auto at = [&](double q) { return ms[std::min(ms.size() - 1, static_cast<std::size_t>(q * ms.size()))]; };
  return {at(0.50), at(0.99), ms.back()};
}

int fail(const std::string& what) {
  std::fprintf(stderr, "conversations_bench: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string url;
  int n = 1000, m = 50, runs = 200;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--conversations" && i + 1 < argc) n = std::atoi(argv[++i]);
    else if (a == "--messages" && i + 1 < argc) m = std::atoi(argv[++i]);
    else if (a == "--runs" && i + 1 < argc) runs = std::atoi(argv[++i]);
    else url = a;
  }
  if (url.empty()) {
    const auto path = std::filesystem::temp_directory_path() / "llmd-conversations-bench.db";
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
    url = "sqlite:" + path.string();
  }
  auto db = llmd::store::Database::open(url, 4);
  if (!db) return fail(db.error().message);
  if (auto v = (*db)->migrate(); !v) return fail(v.error().message);
  llmd::auth::UserStore users(**db);
  llmd::conversations::Limits limits;
  limits.max_conversations = 0;
  ConversationStore store(**db, limits);

  std::mt19937 rng(42);
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const auto fill_start = std::chrono::steady_clock::now();
  std::int64_t heavy = 0;
  for (const char* name : {"heavy", "other1", "other2"}) {
    auto user = users.create(name, std::string(name) + "@school.cn", "$2b$10$x", "user", 0);
    if (!user) return fail(user.error().message);
    if (heavy == 0) heavy = user->id;
    const int count = heavy == user->id ? n : n / 4;  // other users' text shares the index
    for (int done = 0; done < count; done += 50) {
      auto batch = conversations(std::min(50, count - done), m, rng, now_ms);
      if (auto ids = store.import(user->id, batch); !ids) return fail(ids.error().message);
    }
  }
  const double fill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - fill_start).count();
  auto first = store.list(heavy, {"", 20, ""});
  if (!first || first->items.empty()) return fail("the list is empty");
  const std::string middle_id = first->items[first->items.size() / 2].id;
  auto page2 = store.list(heavy, {"", 20, first->next_cursor.value_or("")});
  if (!page2 || page2->items.size() != 20) return fail("no second page");

  std::printf("database: %s\nuser: %d conversations x %d messages (+ %d conversations of 2 other users); filled in %.1f s\n",
              url.starts_with("sqlite:") ? "sqlite" : "mysql", n, m, 2 * (n / 4), fill_s);
  std::printf("%-44s %9s %9s %9s %7s\n", "call", "p50 ms", "p99 ms", "max ms", "hits");
  auto row = [&](const char* name, const std::function<std::size_t()>& call) {
    std::size_t hits = 0;
    const Timing t = measure(runs, [&] { hits = call(); });
    std::printf("%-44s %9.3f %9.3f %9.3f %7zu\n", name, t.p50_ms, t.p99_ms, t.max_ms, hits);
  };
  row("list: first page (20)", [&] { return store.list(heavy, {"", 20, ""}).value().items.size(); });
  row("list: a later page (cursor)",
      [&] { return store.list(heavy, {"", 20, *first->next_cursor}).value().items.size(); });
  row("open: one conversation + JSON", [&] {
    const Conversation c = store.get(middle_id, heavy).value();
    std::size_t bytes = 0;
    for (const auto& msg : c.messages) bytes += llmd::conversations::message_json(msg, true).dump().size();
    return c.messages.size() + (bytes == 0 ? 1 : 0);
  });
  row("search: rare word (photosynthesis)",
      [&] { return store.list(heavy, {"photosynthesis", 20, ""}).value().items.size(); });
  row("search: common word (equation)", [&] { return store.list(heavy, {"equation", 20, ""}).value().items.size(); });
  row("search: 2 CJK characters (scan fallback)",
      [&] { return store.list(heavy, {"方程", 20, ""}).value().items.size(); });
  row("search: no match (quantum)", [&] { return store.list(heavy, {"quantum", 20, ""}).value().items.size(); });
  return 0;
}
