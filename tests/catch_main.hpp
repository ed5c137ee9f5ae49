// Catch2's session for a test binary's own main, for Catch2 3.x (catch_session.hpp) and 2.x
// (catch.hpp with CATCH_CONFIG_RUNNER). Include it first, in the translation unit of main only.
#pragma once

#if __has_include(<catch2/catch_session.hpp>)
#include <catch2/catch_session.hpp>
#else
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#endif
