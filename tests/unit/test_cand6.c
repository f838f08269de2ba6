/* test_cand6.c - IPv6 candidates (lib/cand6.c): the filter (temporary, unique-local,
 * link-local, loopback, multicast, mapped addresses rejected; documentation
 * addresses accepted), /proc/net/if_inet6 lines, the V6 probe and report codecs,
 * and the sealing of a keyed candidate (only the key and the sender's nonce open
 * it; a changed byte fails). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cand6.h"
#include "test.h"

static struct in6_addr a6(const char *s)
{
	struct in6_addr a = { 0 };

	if (inet_pton(AF_INET6, s, &a) != 1)
		n4_test_fail(__FILE__, __LINE__, s);
	return a;
}

static struct sockaddr_in6 sa6(const char *s, uint16_t port)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(port) };

	a.sin6_addr = a6(s);
	return a;
}

TEST(cand6_filter_accepts_global_and_documentation)
{
	struct in6_addr a = a6("2a01:4f8::1"), doc = a6("2001:db8:a::2");

	CHECK(n4_cand6_usable(&a, 0));
	CHECK(n4_cand6_usable(&doc, 0));
	/* "permanent" (0x80) and "no prefix route" are no reason to refuse */
	CHECK(n4_cand6_usable(&a, 0x80));
}

TEST(cand6_filter_rejects_local_and_special)
{
	const char *bad[] = { "::",	 "::1",	    "fe80::1",		"fd00::2",
			      "fc12::1", "ff02::1", "::ffff:192.0.2.1", "::192.0.2.1",
			      "fec0::1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct in6_addr a = a6(bad[i]);
		if (n4_cand6_usable(&a, 0)) {
			printf("  accepted %s\n", bad[i]);
			CHECK(!"an unusable address was accepted");
		}
	}
}

TEST(cand6_filter_rejects_temporary_tentative_deprecated)
{
	struct in6_addr a = a6("2a01:4f8::1");

	CHECK(!n4_cand6_usable(&a, N4_IFA_F_TEMPORARY));
	CHECK(!n4_cand6_usable(&a, N4_IFA_F_TENTATIVE));
	CHECK(!n4_cand6_usable(&a, N4_IFA_F_DEPRECATED));
	CHECK(!n4_cand6_usable(&a, N4_IFA_F_DADFAILED));
}

TEST(cand6_parse_proc_line)
{
	struct in6_addr a;
	unsigned flags;

	CHECK_EQ(n4_cand6_parse_line("20010db8000a00000000000000000002 02 40 00 80     eth0\n", &a,
				     &flags),
		 0);
	CHECK(memcmp(&a,
		     &(struct in6_addr){ .s6_addr = { 0x20, 0x01, 0x0d, 0xb8, 0, 0x0a, [15] = 2 } },
		     sizeof(a)) == 0);
	CHECK_EQ(flags, 0x80u);
	CHECK_EQ(n4_cand6_parse_line("2001 02 40 00 80 eth0\n", &a, &flags), -EINVAL);
	CHECK_EQ(n4_cand6_parse_line("20010db8000a0000000000000000000g 02 40 00 80 eth0", &a,
				     &flags),
		 -EINVAL);
	CHECK_EQ(n4_cand6_parse_line("20010db8000a00000000000000000002 02 40", &a, &flags),
		 -EINVAL);
}

TEST(cand6_pick_skips_temporary_ula_and_link_local)
{
	char path[] = "/tmp/n4-if_inet6-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	FILE *f = fdopen(fd, "w");
	fputs("00000000000000000000000000000001 01 80 10 80       lo\n"
	      "fe800000000000000000000000000001 02 40 20 80     eth0\n"
	      "fd000000000000000000000000000002 02 40 00 80     eth0\n"
	      "2a0100000000000011112222333344ff 02 40 00 01     eth0\n" /* temporary */
	      "2a010000000000000000000000000005 02 40 00 00     eth0\n",
	      f);
	fclose(f);
	struct in6_addr a, want = a6("2a01::5");
	CHECK_EQ(n4_cand6_pick(path, &a), 0);
	CHECK(memcmp(&a, &want, sizeof(a)) == 0);
	f = fopen(path, "w");
	fputs("2a0100000000000011112222333344ff 02 40 00 01     eth0\n", f);
	fclose(f);
	CHECK_EQ(n4_cand6_pick(path, &a), -ENOENT);
	unlink(path);
	CHECK_EQ(n4_cand6_pick("/nonexistent/if_inet6", &a), -ENOENT);
}

TEST(cand6_probe_roundtrip_and_rejections)
{
	struct n4_v6probe p = { .kind = N4_V6_PROBE, .token = { 1, 2, 3, 4, 5, 6 } }, q;
	uint8_t buf[N4_V6_PROBE_SIZE];

	n4_v6probe_encode(&p, buf);
	CHECK_EQ(buf[0], N4_CMD_V6);
	CHECK_EQ(buf[1], N4_V6_PROBE);
	CHECK_EQ(n4_v6probe_decode(buf, sizeof(buf), &q), 0);
	CHECK(memcmp(q.token, p.token, N4_TOKEN_SIZE) == 0);
	CHECK_EQ(n4_v6probe_decode(buf, sizeof(buf) - 1, &q), -EMSGSIZE);
	buf[20] = 1; /* an unkeyed probe carries no blob */
	CHECK_EQ(n4_v6probe_decode(buf, sizeof(buf), &q), -EPROTO);
	buf[1] = N4_V6_PROBE_SEALED;
	CHECK_EQ(n4_v6probe_decode(buf, sizeof(buf), &q), 0);
	CHECK_EQ(q.blob[20 - 8], 1);
	buf[1] = 0x7f;
	CHECK_EQ(n4_v6probe_decode(buf, sizeof(buf), &q), -EPROTO);
	buf[1] = N4_V6_PROBE;
	buf[0] = N4_CMD_EXCHANGE;
	CHECK_EQ(n4_v6probe_decode(buf, sizeof(buf), &q), -EPROTO);
}

TEST(cand6_reports_roundtrip_in_order)
{
	struct sockaddr_in6 self = sa6("2001:db8:a::2", 40000), peer = sa6("2001:db8:b::2", 50000);
	struct sockaddr_in6 got;
	struct n4_msg out[N4_V6_REPORT_MAX];
	struct n4_v6rx rx = { 0 };

	unsigned n = n4_v6_report_msgs(&self, &peer, NULL, out);
	CHECK_EQ(n, 6u);
	for (unsigned i = 0; i < n; i++)
		CHECK_EQ(n4_v6rx_take(&rx, &out[i]), 0);
	CHECK_EQ(n4_v6rx_self(&rx, &got), 0);
	CHECK(memcmp(&got.sin6_addr, &self.sin6_addr, 16) == 0 && got.sin6_port == self.sin6_port);
	CHECK_EQ(n4_v6rx_peer(&rx, &got), 0);
	CHECK(memcmp(&got.sin6_addr, &peer.sin6_addr, 16) == 0 && got.sin6_port == peer.sin6_port);
	uint8_t blob[N4_V6_SEALED_SIZE];
	CHECK_EQ(n4_v6rx_sealed(&rx, blob), -ENOENT);

	/* out of order, or a part twice: refused */
	struct n4_v6rx rx2 = { 0 };
	CHECK_EQ(n4_v6rx_take(&rx2, &out[1]), -EPROTO);
	CHECK_EQ(n4_v6rx_take(&rx2, &out[0]), 0);
	CHECK_EQ(n4_v6rx_take(&rx2, &out[0]), -EPROTO);
	/* self only: no peer */
	struct n4_v6rx rx3 = { 0 };
	n = n4_v6_report_msgs(&self, NULL, NULL, out);
	CHECK_EQ(n, 3u);
	for (unsigned i = 0; i < n; i++)
		CHECK_EQ(n4_v6rx_take(&rx3, &out[i]), 0);
	CHECK_EQ(n4_v6rx_peer(&rx3, &got), -ENOENT);
	/* an unusable address inside: refused at decode */
	struct sockaddr_in6 lo = sa6("::1", 1);
	struct n4_v6rx rx4 = { 0 };
	n = n4_v6_report_msgs(&lo, NULL, NULL, out);
	for (unsigned i = 0; i < n; i++)
		CHECK_EQ(n4_v6rx_take(&rx4, &out[i]), 0);
	CHECK_EQ(n4_v6rx_self(&rx4, &got), -EINVAL);
}

TEST(cand6_sealed_report_and_open)
{
	uint8_t key[32] = { 7 }, other[32] = { 8 }, nonce[16] = { 1 }, nonce2[16] = { 2 };
	struct sockaddr_in6 cand = sa6("2001:db8:b::2", 51000), got;
	uint8_t blob[N4_V6_SEALED_SIZE], back[N4_V6_SEALED_SIZE];
	struct n4_msg out[N4_V6_REPORT_MAX];
	struct n4_v6rx rx = { 0 };

	n4_cand6_seal(key, nonce, &cand, blob);
	/* the address is not in the clear */
	CHECK(memmem(blob, sizeof(blob), &cand.sin6_addr, 8) == NULL);
	unsigned n = n4_v6_report_msgs(NULL, NULL, blob, out);
	CHECK_EQ(n, (unsigned)N4_V6_SEALED_PARTS);
	for (unsigned i = 0; i < n; i++)
		CHECK_EQ(n4_v6rx_take(&rx, &out[i]), 0);
	CHECK_EQ(n4_v6rx_sealed(&rx, back), 0);
	CHECK(memcmp(back, blob, sizeof(blob)) == 0);
	CHECK_EQ(n4_cand6_open(key, nonce, back, &got), 0);
	CHECK(memcmp(&got.sin6_addr, &cand.sin6_addr, 16) == 0 && got.sin6_port == cand.sin6_port);
	CHECK_EQ(n4_cand6_open(other, nonce, back, &got), -EBADMSG);
	CHECK_EQ(n4_cand6_open(key, nonce2, back, &got), -EBADMSG);
	for (size_t i = 0; i < sizeof(blob); i++) {
		back[i] ^= 0x01;
		CHECK_EQ(n4_cand6_open(key, nonce, back, &got), -EBADMSG);
		back[i] ^= 0x01;
	}
}
