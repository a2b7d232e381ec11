/* libFuzzer harness for the landmark CSV reader (src/io/landmark_file.c): open the bytes as a
 * file and ask for frames in order, skipping some, as the CLI does. */
#define _GNU_SOURCE
#include "faceau.h"
#include "fuzz_memfd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fa_landmark_file_t *file = NULL;
    if (fa_landmark_file_open(fuzz_memfd_path(data, size), &file, NULL) != FA_OK) return 0;
    fa_landmarks_t landmarks;
    for (int frame = 1; frame <= 64; frame += 1 + frame % 3)
        if (fa_landmark_file_get(file, frame, &landmarks, NULL) != FA_OK) break;
    fa_landmark_file_close(file);
    return 0;
}
