/* Inputs given to path-based entry points through an anonymous in-memory file: the bytes are
 * written to a memfd and the entry point opens /proc/self/fd/N, exactly as it opens a user's
 * file (no disk, no temporary names). */
#ifndef FACEAU_FUZZ_MEMFD_H
#define FACEAU_FUZZ_MEMFD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static int fuzz_memfd = -1;

/* Fills the memfd with data; returns its path (static buffer). Aborts if memfd is unusable. */
static const char *fuzz_memfd_path(const uint8_t *data, size_t size)
{
    static char path[64];
    if (fuzz_memfd < 0) {
        fuzz_memfd = memfd_create("faceau-fuzz", 0);
        if (fuzz_memfd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fuzz_memfd);
    }
    if (ftruncate(fuzz_memfd, 0) != 0) abort();
    size_t written = 0;
    while (written < size) {
        ssize_t n = pwrite(fuzz_memfd, data + written, size - written, (off_t)written);
        if (n <= 0) abort();
        written += (size_t)n;
    }
    return path;
}

#endif
