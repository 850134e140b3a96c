/* Line-protocol driver around GNU MIG's C stubs (see gnu_mig.rs for the protocol).
   One command per line on stdin; its output lines on stdout end with `ok` or `err <why>`.
   Byte strings are written `x<hex>` (`x` alone is empty); numbers are decimal. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mach/mig_errors.h>
#include "driver.h"

#define MAX_PARAMS 16
/* Slack after every test-made buffer, so a stub writing an out array up to its declared capacity
   stays inside memory the driver owns even when the test passed a short buffer. */
#define BUFFER_SLACK 65536
#define MESSAGE_BUFFER 262144

void print_hex(const void *bytes, size_t len)
{
	const unsigned char *b = bytes;
	putchar('x');
	for (size_t i = 0; i < len; i++)
		printf("%02x", b[i]);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Buffers a command hands to the stubs live until the next `call` or `demux` (a stub may return
   pointers into them); `alloc` buffers live until the driver exits. */
#define ARENA_SIZE 64
static void *arena[ARENA_SIZE];
static unsigned arena_used;

static void arena_reset(void)
{
	for (unsigned i = 0; i < arena_used; i++)
		free(arena[i]);
	arena_used = 0;
}

static void *arena_keep(void *p)
{
	if (arena_used == ARENA_SIZE)
		abort();
	return arena[arena_used++] = p;
}

/* Decodes an `x<hex>` token into a fresh zeroed buffer with BUFFER_SLACK spare bytes. */
static unsigned char *parse_bytes(const char *token, size_t *len)
{
	if (!token || token[0] != 'x')
		return NULL;
	size_t digits = strlen(token + 1);
	if (digits % 2)
		return NULL;
	unsigned char *buf = calloc(1, digits / 2 + BUFFER_SLACK);
	if (!buf)
		abort();
	for (size_t i = 0; i < digits / 2; i++) {
		int hi = hex_digit(token[1 + 2 * i]), lo = hex_digit(token[2 + 2 * i]);
		if (hi < 0 || lo < 0) {
			free(buf);
			return NULL;
		}
		buf[i] = (unsigned char)(hi << 4 | lo);
	}
	*len = digits / 2;
	return buf;
}

static int parse_number(const char *token, unsigned long long *value)
{
	char *end;
	if (!token || !*token)
		return 0;
	*value = strtoull(token, &end, 0);
	return *end == '\0';
}

static const struct user_routine *find_routine(const char *name)
{
	for (unsigned i = 0; i < user_routine_count; i++)
		if (strcmp(user_routines[i].name, name) == 0)
			return &user_routines[i];
	return NULL;
}

/* `call <routine> <arg>...`: each arg is `v<hex>` (the parameter's own bytes) or `p<hex>` (a
   pointer to a buffer holding these bytes, printed back after the call as `out <i> x...`). */
static const char *cmd_call(char **tok, int ntok)
{
	const struct user_routine *r = find_routine(tok[1]);
	if (!r)
		return "unknown routine";
	if ((unsigned)(ntok - 2) != r->nparams)
		return "wrong number of arguments";
	arena_reset();
	union slot {
		unsigned char bytes[64];
		void *pointer;
	} __attribute__((aligned(16))) slots[MAX_PARAMS];
	void *slot_addrs[MAX_PARAMS];
	unsigned char *buffers[MAX_PARAMS] = { 0 };
	size_t buffer_lens[MAX_PARAMS] = { 0 };
	memset(slots, 0, sizeof slots);
	for (unsigned i = 0; i < r->nparams; i++) {
		const char *arg = tok[2 + i];
		size_t len;
		unsigned char *bytes = arena_keep(parse_bytes(arg + 1, &len));
		slot_addrs[i] = &slots[i];
		if (!bytes || (arg[0] != 'v' && arg[0] != 'p'))
			return "bad argument token";
		if (arg[0] == 'v') {
			if (len != r->sizes[i] || len > sizeof slots[i].bytes)
				return "value size differs from the parameter's size";
			memcpy(slots[i].bytes, bytes, len);
		} else {
			if (!r->pointers[i])
				return "pointer given for a parameter that is not a pointer";
			slots[i].pointer = buffers[i] = bytes;
			buffer_lens[i] = len;
		}
	}
	kern_return_t kr = r->call(slot_addrs);
	printf("kr %d\n", kr);
	for (unsigned i = 0; i < r->nparams; i++)
		if (buffers[i]) {
			printf("out %u ", i);
			print_hex(buffers[i], buffer_lens[i]);
			putchar('\n');
		}
	return NULL;
}

/* The handler results the next server handler call returns (`script <kr> <op>...`). */
static struct {
	int armed;
	kern_return_t kr;
	unsigned nops;
	char *ops[MAX_PARAMS];
} script;

static const char *cmd_script(char **tok, int ntok)
{
	unsigned long long kr;
	if (ntok < 2 || !parse_number(tok[1], &kr))
		return "bad return code";
	if (ntok - 2 > MAX_PARAMS)
		return "too many ops";
	for (unsigned i = 0; i < script.nops; i++)
		free(script.ops[i]);
	script.kr = (kern_return_t)kr;
	script.nops = ntok - 2;
	for (unsigned i = 0; i < script.nops; i++)
		script.ops[i] = strdup(tok[2 + i]);
	script.armed = 1;
	return NULL;
}

/* Records every parameter as `arg <i> x<its bytes>`, then applies the scripted op:
   `-` nothing more; `r<n>` also print n bytes the pointer parameter points to;
   `w<hex>` write the bytes where the pointer parameter points (scalar or inline-array outputs);
   `a<hex>` allocate a buffer with the bytes and store its address where the pointer parameter
   points (out-of-line outputs). */
kern_return_t handler_run(const char *name, unsigned nparams, void *const *slots, const size_t *sizes)
{
	printf("called %s\n", name);
	if (!script.armed || script.nops != nparams) {
		printf("note unscripted call (%u ops for %u parameters)\n", script.armed ? script.nops : 0, nparams);
		return MIG_BAD_ARGUMENTS;
	}
	script.armed = 0;
	for (unsigned i = 0; i < nparams; i++) {
		const char *op = script.ops[i];
		void *target = sizes[i] == sizeof(void *) ? *(void *const *)slots[i] : NULL;
		printf("arg %u ", i);
		print_hex(slots[i], sizes[i]);
		if (op[0] == 'r') {
			unsigned long long n;
			if (!parse_number(op + 1, &n) || !target) {
				printf(" bad-op\n");
				continue;
			}
			putchar(' ');
			print_hex(target, n);
		} else if (op[0] == 'w' || op[0] == 'a') {
			size_t len;
			unsigned char *bytes = arena_keep(parse_bytes(op + 1, &len));
			if (!bytes || !target) {
				printf(" bad-op\n");
				continue;
			}
			if (op[0] == 'w')
				memcpy(target, bytes, len);
			else
				*(void **)target = bytes;
		}
		putchar('\n');
	}
	return script.kr;
}

/* `demux <subsystem>_server x<request>`: prints the handler lines, `handled <0|1>`, `reply x...`. */
static const char *cmd_demux(char **tok, int ntok)
{
	const struct demuxer *d = NULL;
	if (ntok != 3)
		return "usage: demux <name> x<request>";
	for (unsigned i = 0; i < demuxer_count; i++)
		if (strcmp(demuxers[i].name, tok[1]) == 0)
			d = &demuxers[i];
	if (!d)
		return "unknown demuxer";
	size_t len;
	arena_reset();
	unsigned char *bytes = parse_bytes(tok[2], &len);
	if (!bytes || len > MESSAGE_BUFFER)
		return "bad request bytes";
	static union {
		mach_msg_header_t header;
		unsigned char bytes[MESSAGE_BUFFER];
	} request, reply;
	memset(&request, 0, sizeof request);
	memset(&reply, 0, sizeof reply);
	memcpy(request.bytes, bytes, len);
	free(bytes);
	boolean_t handled = d->demux(&request.header, &reply.header);
	printf("handled %d\nreply ", handled ? 1 : 0);
	size_t reply_len = reply.header.msgh_size;
	print_hex(reply.bytes, reply_len < MESSAGE_BUFFER ? reply_len : MESSAGE_BUFFER);
	putchar('\n');
	return NULL;
}

static const char *run(char **tok, int ntok)
{
	unsigned long long n, len;
	size_t blen;
	unsigned char *bytes;
	if (strcmp(tok[0], "call") == 0 && ntok >= 2)
		return cmd_call(tok, ntok);
	if (strcmp(tok[0], "script") == 0)
		return cmd_script(tok, ntok);
	if (strcmp(tok[0], "demux") == 0)
		return cmd_demux(tok, ntok);
	if (strcmp(tok[0], "reply-port") == 0 && ntok == 2 && parse_number(tok[1], &n)) {
		mig_support_set_reply_port((mach_port_t)n);
		return NULL;
	}
	if (strcmp(tok[0], "reply") == 0 && ntok == 2 && (bytes = parse_bytes(tok[1], &blen))) {
		transport_set_reply(bytes, blen);
		free(bytes);
		return NULL;
	}
	if (strcmp(tok[0], "alloc") == 0 && ntok == 2 && (bytes = parse_bytes(tok[1], &blen))) {
		printf("addr %llu\n", (unsigned long long)(uintptr_t)bytes);
		return NULL;
	}
	if (strcmp(tok[0], "peek") == 0 && ntok == 3 && parse_number(tok[1], &n) && parse_number(tok[2], &len)) {
		fputs("bytes ", stdout);
		print_hex((const void *)(uintptr_t)n, len);
		putchar('\n');
		return NULL;
	}
	if (strcmp(tok[0], "params") == 0 && ntok == 2) {
		const struct user_routine *r = find_routine(tok[1]);
		if (!r)
			return "unknown routine";
		fputs("sizes", stdout);
		for (unsigned i = 0; i < r->nparams; i++)
			printf(" %zu%s", r->sizes[i], r->pointers[i] ? "p" : "");
		putchar('\n');
		return NULL;
	}
	if (strcmp(tok[0], "sizeof-pointer") == 0) {
		printf("size %zu\n", sizeof(void *));
		return NULL;
	}
	return "unknown command";
}

int main(void)
{
	char *line = NULL;
	size_t cap = 0;
	char *tok[MAX_PARAMS + 4];
	while (getline(&line, &cap, stdin) > 0) {
		int ntok = 0;
		for (char *t = strtok(line, " \n"); t; t = strtok(NULL, " \n")) {
			if (ntok == (int)(sizeof tok / sizeof tok[0])) {
				ntok = -1;
				break;
			}
			tok[ntok++] = t;
		}
		const char *error = ntok > 0 ? run(tok, ntok) : "too many or no tokens";
		if (error)
			printf("err %s\n", error);
		else
			puts("ok");
		fflush(stdout);
	}
	return 0;
}
