/* Control-code macros used inside larger expressions: each must be one parenthesized value. */
#include "halo_resapi.h"
#include <stdio.h>

int main(void) {
    /* Without outer parentheses, == binds before | and this comparison is true. */
    int wrong = (0x12345678 == CLCTL_USER_CODE(1, 0));
    unsigned doubled = 2 * CLCTL_USER_CODE(1, 0);
    printf("%d %u %u\n", wrong, doubled, (unsigned)CLCTL_USER_CODE(1, 0));
    return 0;
}
