#include "api/static_routes.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "support/test_support.h"

namespace llmd::api {
namespace {

TEST(StaticRoutes, ContentTypesByExtension) {
  EXPECT_EQ(content_type_for("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(content_type_for("index-AbC.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(content_type_for("INDEX.CSS"), "text/css; charset=utf-8");
  EXPECT_EQ(content_type_for("logo.svg"), "image/svg+xml");
  EXPECT_EQ(content_type_for("font.woff2"), "font/woff2");
  EXPECT_EQ(content_type_for("archive.bin"), "application/octet-stream");
  EXPECT_EQ(content_type_for("no-extension"), "application/octet-stream");
}

TEST(StaticRoutes, ReservedPathsAreTheApiOnes) {
  for (const char* p : {"/api", "/api/v1/x", "/v1", "/v1/models", "/metrics", "/health", "/ready", "/ready/"}) {
    EXPECT_TRUE(is_reserved_path(p)) << p;
  }
  for (const char* p : {"/", "/apis", "/v10", "/chat", "/admin/usage", "/healthy", "/assets/api"}) {
    EXPECT_FALSE(is_reserved_path(p)) << p;
  }
}

TEST(StaticRoutes, ConfiguredWebDirNeedsAnIndex) {
  testing::TempDir dir;
  EXPECT_FALSE(find_web_dir((dir.path() / "missing").string()));
  EXPECT_FALSE(find_web_dir(dir.path().string()));  // no index.html yet
  testing::write_file(dir.path() / "index.html", "<!doctype html>");
  const auto found = find_web_dir(dir.path().string());
  ASSERT_TRUE(found);
  EXPECT_EQ(*found, std::filesystem::canonical(dir.path()));
}

}  // namespace
}  // namespace llmd::api
