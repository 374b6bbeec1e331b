/*
 * An LD_PRELOAD free() that scans each block being freed for a 16-byte canary
 * (FREE_SCAN_CANARY) and reports "FREE_SCAN: canary in freed block" on stderr: a copy of
 * plaintext left in freed memory. For crates/hsmkit-cli/tests/cli.rs (glibc: it sizes
 * blocks with malloc_usable_size). The Rust heap of the hsmkit command is malloc's.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned char canary[16];
static int armed = -1;
static void (*real_free)(void *);

static void init(void) {
    const char *c = getenv("FREE_SCAN_CANARY");
    armed = c && strlen(c) == 16;
    if (armed) memcpy(canary, c, 16);
}

void free(void *p) {
    if (!real_free) real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    if (armed < 0) init();
    if (p && armed) {
        size_t n = malloc_usable_size(p);
        const unsigned char *b = p;
        for (size_t i = 0; n >= 16 && i + 16 <= n; i++)
            if (b[i] == canary[0] && memcmp(b + i, canary, 16) == 0) {
                static const char msg[] = "FREE_SCAN: canary in freed block\n";
                write(2, msg, sizeof msg - 1);
                break;
            }
    }
    real_free(p);
}
