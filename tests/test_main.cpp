// The Catch2 main for every test binary, for Catch2 2.x and 3.x alike.
#include "catch_main.hpp"

int main(int argc, char** argv) { return Catch::Session().run(argc, argv); }
