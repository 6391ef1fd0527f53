// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "capture.h"
#include "env.h"

/* GRO and TSO hand the socket up to 64 KiB segments. */
#define FRAME_MAX (256 * 1024)
/* Enough for the few MiB a test sends; beyond it payloads are counted but
 * not kept, which capture_has would then miss: tests stay below it. */
#define KEEP_MAX (32u << 20)
#define MAX_PORTS 64
#define POLL_MS 50

struct port_count {
	uint16_t port;
	long segments;
	long tls;
};

struct capture {
	pthread_t thread;
	char ns[128];
	char ifname[IF_NAMESIZE];
	int fd;
	atomic_bool stop;
	int start_err;
	pthread_mutex_t lock;
	pthread_cond_t started;
	bool ready;
	struct port_count ports[MAX_PORTS];
	int nr_ports;
	/* Payloads, each preceded by its length, so a search never spans two
	 * segments. */
	uint8_t *kept;
	size_t kept_len;
};

static struct port_count *port_slot(struct capture *c, uint16_t port)
{
	for (int i = 0; i < c->nr_ports; i++)
		if (c->ports[i].port == port)
			return &c->ports[i];
	if (c->nr_ports == MAX_PORTS)
		return NULL;
	c->ports[c->nr_ports].port = port;
	return &c->ports[c->nr_ports++];
}

static void count(struct capture *c, uint16_t port, bool tls)
{
	struct port_count *p = port_slot(c, port);

	if (p) {
		p->segments++;
		p->tls += tls;
	}
}

static void keep(struct capture *c, const uint8_t *payload, uint32_t len)
{
	if (c->kept_len + sizeof(len) + len > KEEP_MAX)
		return;
	memcpy(c->kept + c->kept_len, &len, sizeof(len));
	memcpy(c->kept + c->kept_len + sizeof(len), payload, len);
	c->kept_len += sizeof(len) + len;
}

static void tcp_segment(struct capture *c, const uint8_t *p, size_t len)
{
	const struct tcphdr *th = (const void *)p;
	size_t off;
	bool tls;

	if (len < sizeof(*th))
		return;
	off = th->doff * 4u;
	if (off < sizeof(*th) || off >= len)
		return;
	p += off;
	len -= off;
	tls = len >= 3 && p[0] == 0x17 && p[1] == 0x03 && p[2] == 0x03;
	pthread_mutex_lock(&c->lock);
	count(c, ntohs(th->source), tls);
	if (th->source != th->dest)
		count(c, ntohs(th->dest), tls);
	keep(c, p, len);
	pthread_mutex_unlock(&c->lock);
}

static void frame(struct capture *c, const uint8_t *p, size_t len)
{
	const struct ethhdr *eth = (const void *)p;

	if (len < sizeof(*eth))
		return;
	p += sizeof(*eth);
	len -= sizeof(*eth);
	if (eth->h_proto == htons(ETH_P_IP) && len >= sizeof(struct iphdr)) {
		const struct iphdr *ip = (const void *)p;
		size_t hl = ip->ihl * 4u, tot = ntohs(ip->tot_len);

		if (ip->protocol == IPPROTO_TCP && hl >= sizeof(*ip) && tot <= len && hl < tot)
			tcp_segment(c, p + hl, tot - hl);
	} else if (eth->h_proto == htons(ETH_P_IPV6) && len >= sizeof(struct ip6_hdr)) {
		const struct ip6_hdr *ip6 = (const void *)p;
		size_t plen = ntohs(ip6->ip6_plen);

		if (ip6->ip6_nxt == IPPROTO_TCP && sizeof(*ip6) + plen <= len)
			tcp_segment(c, p + sizeof(*ip6), plen);
	}
}

static int open_socket(struct capture *c)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	int ret = netns_join(c->ns);

	if (ret)
		return ret;
	sll.sll_ifindex = if_nametoindex(c->ifname);
	if (!sll.sll_ifindex)
		return -errno;
	c->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (c->fd < 0)
		return -errno;
	if (bind(c->fd, (struct sockaddr *)&sll, sizeof(sll)))
		return -errno;
	return 0;
}

static void *capture_thread(void *arg)
{
	struct capture *c = arg;
	uint8_t *buf = malloc(FRAME_MAX);
	int ret = buf ? open_socket(c) : -ENOMEM;

	pthread_mutex_lock(&c->lock);
	c->start_err = ret;
	c->ready = true;
	pthread_cond_signal(&c->started);
	pthread_mutex_unlock(&c->lock);
	while (!ret && !atomic_load(&c->stop)) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, POLL_MS) <= 0)
			continue;
		n = recv(c->fd, buf, FRAME_MAX, MSG_DONTWAIT);
		if (n > 0)
			frame(c, buf, n);
	}
	free(buf);
	return NULL;
}

struct capture *capture_start(const char *ns, const char *ifname)
{
	struct capture *c = calloc(1, sizeof(*c));

	if (!c || !(c->kept = malloc(KEEP_MAX))) {
		free(c);
		printf("capture: out of memory\n");
		return NULL;
	}
	snprintf(c->ns, sizeof(c->ns), "%s", ns);
	snprintf(c->ifname, sizeof(c->ifname), "%s", ifname);
	c->fd = -1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->started, NULL);
	if (pthread_create(&c->thread, NULL, capture_thread, c)) {
		printf("capture: cannot start a thread\n");
		free(c->kept);
		free(c);
		return NULL;
	}
	pthread_mutex_lock(&c->lock);
	while (!c->ready)
		pthread_cond_wait(&c->started, &c->lock);
	pthread_mutex_unlock(&c->lock);
	if (c->start_err) {
		printf("capture on %s in %s: %s\n", ifname, ns, strerror(-c->start_err));
		capture_free(c);
		return NULL;
	}
	return c;
}

void capture_stop(struct capture *c)
{
	if (!c || atomic_exchange(&c->stop, true))
		return;
	pthread_join(c->thread, NULL);
}

void capture_free(struct capture *c)
{
	if (!c)
		return;
	capture_stop(c);
	if (c->fd >= 0)
		close(c->fd);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->started);
	free(c->kept);
	free(c);
}

static const struct port_count *port_find(const struct capture *c, uint16_t port)
{
	for (int i = 0; i < c->nr_ports; i++)
		if (c->ports[i].port == port)
			return &c->ports[i];
	return NULL;
}

long capture_segments(const struct capture *c, uint16_t port)
{
	const struct port_count *p = port_find(c, port);

	return p ? p->segments : 0;
}

long capture_tls_records(const struct capture *c, uint16_t port)
{
	const struct port_count *p = port_find(c, port);

	return p ? p->tls : 0;
}

bool capture_has(const struct capture *c, const void *needle, size_t len)
{
	size_t off = 0;

	while (off + sizeof(uint32_t) <= c->kept_len) {
		uint32_t n;

		memcpy(&n, c->kept + off, sizeof(n));
		off += sizeof(n);
		if (memmem(c->kept + off, n, needle, len))
			return true;
		off += n;
	}
	return false;
}
