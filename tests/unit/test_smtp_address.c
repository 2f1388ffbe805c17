/* placeholder: being written; fails until it is. */
#include "unit.h"
static void not_written(void) { CHECK(!"test not written yet"); }
int main(void) { UNIT_RUN(not_written); return unit_finish(); }
