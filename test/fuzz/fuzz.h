/*
 * fuzz.h — what the libFuzzer targets share: the entry point's prototype
 * (libFuzzer declares none) and CHECK, which aborts, so that the fuzzer
 * keeps the input that broke a property.
 */
#ifndef PAV_FUZZ_H
#define PAV_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)             \
	do {                    \
		if (!(cond))    \
			abort(); \
	} while (0)

#endif
