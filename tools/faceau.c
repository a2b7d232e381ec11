#include "faceau.h"
#include <stdio.h>
int main(void) { puts("faceau " FA_VERSION_STRING); return 0; }
