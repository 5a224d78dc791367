// The GBNF recognizer moved to src/grammar (the runner vets client grammars
// with it); the tests keep using it under its old name.
#pragma once

#include "grammar/gbnf_matcher.h"

namespace llmd::grammar::testing {
using llmd::grammar::GbnfMatcher;
}  // namespace llmd::grammar::testing
