/* fuzz_http.c - libFuzzer target for the metrics endpoint's HTTP decoding
 * (lib/metrics.c): whatever bytes a client sends, classifying them never reads out
 * of bounds, and finding the end of the head byte by byte (as slow clients
 * deliver it) agrees with one scan of the whole input. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The obvious definition: a "\n\n" or "\n\r\n" anywhere. */
static bool blank_line(const char *b, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (b[i] == '\n' &&
		    (b[i + 1] == '\n' || (i + 2 < len && b[i + 1] == '\r' && b[i + 2] == '\n')))
			return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes, so ASan sees any read past the end. */
	char *buf = malloc(size ? size : 1);
	bool head_only;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	bool whole = n4_http_head_complete(buf, size, 0);
	if (whole != blank_line(buf, size))
		abort();
	bool seen = false;
	for (size_t len = 1; len <= size && !seen; len++)
		seen = n4_http_head_complete(buf, len, len - 1);
	if (seen != whole)
		abort();
	enum n4_http_verdict v = n4_http_request(buf, size, &head_only);
	if (v > N4_HTTP_TOO_LARGE || (head_only && v == N4_HTTP_METHOD))
		abort();
	free(buf);
	return 0;
}
