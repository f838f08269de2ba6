/* wav_tone.c - how much of a sine tone a WAV file holds.  The SIP tests dump what a user
 * agent received (baresip's sndfile module writes the decoded audio, frame by frame as
 * RTP brings it) and ask how many seconds of it are the peer's tone.  The file is cut
 * into windows (100 ms by default); a window counts as tone when it is loud enough
 * (RMS >= -40 dBFS) and at least half of its energy sits at the expected frequency
 * (Goertzel at that frequency, normalised by the window's energy: 1.0 for a pure tone,
 * about 2/N for noise, near 0 for another tone).  Silence, a different tone, noise or
 * garbled audio do not count.
 *
 *   wav_tone [-v] [-w WINDOW_MS] FILE FREQ_HZ
 *
 * Prints the seconds of tone with one decimal ("7.9"); -v adds the file's format, its
 * length and the window counts on stderr.  Reads 16-bit PCM and 32-bit float WAV (mono
 * or interleaved channels, mixed down), the formats baresip's sndfile writes.  A data
 * chunk whose size is 0 or runs past the end (a file still open in its writer) is read
 * to the end of the file.  Exit 1 on usage errors and unreadable files. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { WAV_PCM = 1, WAV_FLOAT = 3, WAV_EXTENSIBLE = 0xfffe };

#define MIN_RMS 0.01  /* -40 dBFS: a tone at any usable level is well above it */
#define MIN_RATIO 0.5 /* share of the window's energy at the frequency */

struct wav {
	unsigned rate;
	unsigned channels;
	bool is_float;
	const uint8_t *data;
	size_t frames;
};

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* cos without libm (the helpers link without -lm): Taylor series on [-pi, pi], where 12
 * terms are exact to double precision. */
static double cosine(double x)
{
	const double pi = 3.14159265358979323846;
	double term = 1.0, sum = 1.0;

	while (x > pi)
		x -= 2 * pi;
	while (x < -pi)
		x += 2 * pi;
	for (int k = 1; k <= 12; k++) {
		term *= -x * x / (double)((2 * k - 1) * (2 * k));
		sum += term;
	}
	return sum;
}

static int read_all(const char *path, uint8_t **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 1 << 16, n = 0;
	uint8_t *b;

	if (!f)
		return -errno;
	b = malloc(cap);
	while (b) {
		size_t got = fread(b + n, 1, cap - n, f);

		n += got;
		if (n < cap)
			break;
		cap *= 2;
		uint8_t *nb = realloc(b, cap);
		if (!nb) {
			free(b);
			b = NULL;
		} else {
			b = nb;
		}
	}
	if (!b || ferror(f)) {
		free(b);
		fclose(f);
		return -EIO;
	}
	fclose(f);
	*buf = b;
	*len = n;
	return 0;
}

/* parse_wav: find 'fmt ' and 'data' in a RIFF/WAVE file; NULL on success, else why not. */
static const char *parse_wav(const uint8_t *buf, size_t len, struct wav *w)
{
	size_t pos = 12, frame_size = 0;
	bool have_fmt = false;

	if (len < 12 || memcmp(buf, "RIFF", 4) || memcmp(buf + 8, "WAVE", 4))
		return "not a RIFF/WAVE file";
	while (pos + 8 <= len) {
		const uint8_t *id = buf + pos;
		size_t size = le32(buf + pos + 4), avail = len - pos - 8;

		pos += 8;
		if (!memcmp(id, "fmt ", 4)) {
			if (size < 16 || size > avail)
				return "short fmt chunk";
			unsigned tag = le16(buf + pos), bits = le16(buf + pos + 14);

			if (tag == WAV_EXTENSIBLE && size >= 26)
				tag = le16(buf + pos + 24); /* the sub-format GUID starts with it */
			w->channels = le16(buf + pos + 2);
			w->rate = le32(buf + pos + 4);
			if (tag == WAV_PCM && bits == 16)
				w->is_float = false;
			else if (tag == WAV_FLOAT && bits == 32)
				w->is_float = true;
			else
				return "neither 16-bit PCM nor 32-bit float";
			if (w->channels == 0 || w->rate == 0)
				return "no channels or no sample rate";
			frame_size = w->channels * (bits / 8u);
			have_fmt = true;
		} else if (!memcmp(id, "data", 4)) {
			if (!have_fmt)
				return "data before fmt";
			if (size == 0 || size > avail) /* writer has not closed it (yet) */
				size = avail;
			w->data = buf + pos;
			w->frames = size / frame_size;
			return NULL;
		}
		if (size > avail)
			break;
		pos += size + (size & 1); /* chunks are padded to even sizes */
	}
	return "no data chunk";
}

/* sample: frame i of the file, channels mixed down, in [-1, 1]. */
static double sample(const struct wav *w, size_t i)
{
	double sum = 0;

	for (unsigned c = 0; c < w->channels; c++) {
		if (w->is_float) {
			uint32_t u = le32(w->data + (i * w->channels + c) * 4);
			float f;

			memcpy(&f, &u, sizeof(f));
			sum += f;
		} else {
			uint16_t u = le16(w->data + (i * w->channels + c) * 2);

			sum += (int16_t)u / 32768.0;
		}
	}
	return sum / w->channels;
}

/* is_tone: frames [start, start + n) are loud enough and mostly at the frequency whose
 * Goertzel coefficient is coeff (2 cos(2 pi f / rate)). */
static bool is_tone(const struct wav *w, size_t start, size_t n, double coeff)
{
	double s1 = 0, s2 = 0, energy = 0, power, ratio;

	for (size_t i = start; i < start + n; i++) {
		double x = sample(w, i), s = x + coeff * s1 - s2;

		s2 = s1;
		s1 = s;
		energy += x * x;
	}
	if (energy < MIN_RMS * MIN_RMS * (double)n)
		return false;
	power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
	ratio = 2 * power / ((double)n * energy);
	return ratio >= MIN_RATIO;
}

static void usage(void)
{
	fprintf(stderr, "usage: wav_tone [-v] [-w WINDOW_MS] FILE FREQ_HZ\n");
	exit(1);
}

int main(int argc, char **argv)
{
	const double pi = 3.14159265358979323846;
	bool verbose = false;
	long window_ms = 100;
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-v")) {
			verbose = true;
		} else if (!strcmp(argv[i], "-w") && i + 1 < argc) {
			window_ms = strtol(argv[++i], NULL, 10);
			if (window_ms < 10 || window_ms > 10000)
				usage();
		} else {
			usage();
		}
	}
	if (argc - i != 2)
		usage();

	const char *path = argv[i];
	char *end;
	double freq = strtod(argv[i + 1], &end);
	uint8_t *buf = NULL;
	size_t len = 0;
	struct wav w = { 0 };
	const char *why;
	int err;

	if (*end || freq <= 0)
		usage();
	err = read_all(path, &buf, &len);
	if (err) {
		fprintf(stderr, "wav_tone: %s: %s\n", path, strerror(-err));
		return 1;
	}
	why = parse_wav(buf, len, &w);
	if (why) {
		fprintf(stderr, "wav_tone: %s: %s\n", path, why);
		free(buf);
		return 1;
	}
	if (freq >= w.rate / 2.0) {
		fprintf(stderr, "wav_tone: %s: %g Hz is not below half the sample rate (%u Hz)\n",
			path, freq, w.rate);
		free(buf);
		return 1;
	}

	size_t n = (size_t)w.rate * (size_t)window_ms / 1000, windows = 0, tone = 0;
	double coeff = 2 * cosine(2 * pi * freq / w.rate);

	for (size_t start = 0; n > 0 && start + n <= w.frames; start += n) {
		windows++;
		tone += is_tone(&w, start, n, coeff);
	}
	/* tenths of a second, rounded down: never more tone than there was */
	unsigned long tenths = (unsigned long)(tone * (size_t)window_ms / 100);

	printf("%lu.%lu\n", tenths / 10, tenths % 10);
	if (verbose)
		fprintf(stderr,
			"wav_tone: %s: %u Hz, %u ch, %s, %zu frames (%.2f s); %g Hz in %zu of %zu "
			"windows of %ld ms\n",
			path, w.rate, w.channels, w.is_float ? "f32" : "s16", w.frames,
			(double)w.frames / w.rate, freq, tone, windows, window_ms);
	free(buf);
	return 0;
}
