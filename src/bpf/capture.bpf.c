// SPDX-License-Identifier: GPL-2.0
// daisi syscall capture: one event per system call of a watched process,
// plus fork, exec (with the executable, arguments, user and cgroup) and exit
// events, into a BPF ring buffer; for the security-relevant calls user space
// selects (`argmask`), an argument event follows the call's own: paths,
// socket addresses, ids and flags.
//
// Filtering happens here, in the kernel, so unwatched processes cost only
// the hook itself:
//   - mode ALL watches every process but daisi itself;
//   - otherwise a process is watched when its tgid's bit is set in
//     `watched` (pids from config, processes whose comm matched
//     `watched_comms` at exec, and every child of a watched process: fork
//     is followed here), or when its cgroup is in `watched_cgroups`.
// `watched` is a bitmap in an array map, not a hash: the verifier turns an
// array lookup into a plain memory load, so the check every syscall of
// every process pays is a load and a bit test.
// Wake-ups are batched: user space is woken only when WAKEUP_BYTES are
// waiting (it also drains on a timer), which is worth ~3.5x on a syscall
// storm. Failed reservations are counted per CPU in `dropped`.

#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

#define TASK_COMM_LEN 16
// Bounded strings of an exec record: what is longer is cut, and the record
// says how long it was (user space counts the cuts).
#define EXEC_PATH_LEN 256
#define EXEC_ARGS_LEN 512
#define WAKEUP_BYTES (256 * 1024)
// Bounded strings and socket address of an argument event.
#define ARG_STR_LEN 256
#define ARG_ADDR_LEN 32
// Syscall numbers the argument mask covers (x86_64 has ~460).
#define ARGMASK_WORDS 8

enum mode { MODE_ALL = 0, MODE_FILTERED = 1 };
enum kind { EV_SYSCALL = 0, EV_EXEC = 1, EV_EXIT = 2, EV_FORK = 3, EV_ARGS = 4 };

// Kernel types, only the fields used; CO-RE relocates them against the
// running kernel's BTF at load time.
struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
	struct mm_struct *mm;
	char comm[TASK_COMM_LEN];
} __attribute__((preserve_access_index));

struct linux_binprm {
	const char *filename;
} __attribute__((preserve_access_index));

// The system call's registers (x86_64: arguments in di, si, dx, r10, r8).
struct pt_regs {
	unsigned long di;
	unsigned long si;
	unsigned long dx;
	unsigned long r10;
	unsigned long r8;
} __attribute__((preserve_access_index));

// One syscall (24 bytes: the hot path).
struct syscall_event {
	__u32 kind;
	__u32 tgid;
	__u32 tid;
	__u32 nr;
	__u64 ts;
};

// Fork, exec and exit, with the comm (a forked child's is its parent's;
// exec's is the new program's). `ppid` is the parent's tgid for a fork, 0
// otherwise; for a fork, `tgid` is the child's.
struct proc_event {
	__u32 kind;
	__u32 tgid;
	__u32 tid;
	__u32 ppid;
	__u64 ts;
	char comm[TASK_COMM_LEN];
};

// Exec: the new program, who runs it, where, and its arguments (NUL
// separated, as in the process's memory). Starts like `proc_event`.
struct exec_event {
	__u32 kind;
	__u32 tgid;
	__u32 tid;
	__u32 ppid;
	__u64 ts;
	char comm[TASK_COMM_LEN];
	__u32 uid;
	__u32 gid;
	__u64 cgroup;
	__u32 path_len;  // bytes of `path` read, with the NUL; 0 when unreadable
	__u32 args_len;  // bytes of `args` read
	__u32 args_full; // bytes the arguments take (more than args_len: cut)
	__u32 pad;
	char parent_comm[TASK_COMM_LEN]; // the parent may exit before anyone looks
	char path[EXEC_PATH_LEN];
	char args[EXEC_ARGS_LEN];
};

// The arguments of one selected call, read at its entry (accept's peer at
// its return). Starts like `syscall_event`. Which fields a call fills is
// the reader's to know by `nr` (capture::ebpf); strings are NUL-terminated
// and bounded (`*_len` counts the bytes read with the NUL, 0 when
// unreadable; a string that filled its buffer may have been cut).
struct args_event {
	__u32 kind;
	__u32 tgid;
	__u32 tid;
	__u32 nr;
	__u64 ts;
	__u64 num[2];  // flags, ids, a target pid...
	__u32 str_len;
	__u32 str2_len;
	__u32 addr_len; // bytes of `addr` read (a sockaddr)
	__u32 pad;
	__u8 addr[ARG_ADDR_LEN];
	char str[ARG_STR_LEN];
	char str2[ARG_STR_LEN];
};

// x86_64 numbers of the calls whose arguments are read (user space sets
// `argmask` from the same list in capture::ebpf).
enum args_nr {
	NR_OPEN = 2,
	NR_UNLINK = 87,
	NR_RENAME = 82,
	NR_CONNECT = 42,
	NR_BIND = 49,
	NR_PTRACE = 101,
	NR_SETUID = 105,
	NR_SETGID = 106,
	NR_SETREUID = 113,
	NR_SETREGID = 114,
	NR_SETRESUID = 117,
	NR_SETRESGID = 119,
	NR_MOUNT = 165,
	NR_INIT_MODULE = 175,
	NR_OPENAT = 257,
	NR_UNLINKAT = 263,
	NR_RENAMEAT = 264,
	NR_FINIT_MODULE = 313,
	NR_RENAMEAT2 = 316,
	NR_MEMFD_CREATE = 319,
	NR_ACCEPT = 43,
	NR_ACCEPT4 = 288,
	NR_OPENAT2 = 437,
};

struct config {
	__u32 mode;
	__u32 self_tgid;
	__u32 has_cgroups; /* skip the cgroup lookup when none is watched */
	__u32 pad;
	// One bit per syscall number whose arguments are captured.
	__u64 argmask[ARGMASK_WORDS];
};

// Never used: they make the compiler emit these types' BTF, from which
// the skeleton generates the Rust definitions the reader parses with
// (`capture::ebpf`), so the layout is defined here only.
struct syscall_event _syscall_event_layout = {};
struct proc_event _proc_event_layout = {};
struct exec_event _exec_event_layout = {};
struct args_event _args_event_layout = {};
enum args_nr _args_nr_values = NR_OPEN;
enum kind _kind_values = EV_SYSCALL;
enum mode _mode_values = MODE_ALL;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} cfg SEC(".maps");

// One bit per tgid: word tgid / 64, bit tgid % 64; 65536 words cover
// every pid a 64-bit kernel hands out (PID_MAX_LIMIT, 4M): 512 KiB.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} watched SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, char[TASK_COMM_LEN]);
	__type(value, __u8);
} watched_comms SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u64);
	__type(value, __u8);
} watched_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} events SEC(".maps");

// Threads inside accept: the peer is in their buffer once the call
// returns, which the thread's next system call shows (one bit per tid, as
// `watched`: the check every call of a watched process pays is a load and
// a bit test), and where that buffer is.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} accepting SEC(".maps");

struct accept_buf {
	__u64 addr;
	__u64 len;
	__u32 fd;
	__u32 nr;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct accept_buf);
} accept_bufs SEC(".maps");

// [0] events lost because the ring buffer was full, [1] events submitted.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 i)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &i);
	if (v)
		*v += 1;
}

static __always_inline struct config *get_cfg(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&cfg, &zero);
}

static __always_inline int tgid_watched(__u32 tgid)
{
	__u32 word = tgid / 64;
	__u64 *w = bpf_map_lookup_elem(&watched, &word);
	return w && ((*w >> (tgid % 64)) & 1);
}

static __always_inline void set_watched(__u32 tgid, int on)
{
	__u32 word = tgid / 64;
	__u64 *w = bpf_map_lookup_elem(&watched, &word);
	if (!w)
		return;
	__u64 bit = 1ULL << (tgid % 64);
	if (on)
		__sync_fetch_and_or(w, bit);
	else
		__sync_fetch_and_and(w, ~bit);
}

static __always_inline int accepting_bit(__u32 tid, int clear)
{
	__u32 word = tid / 64;
	__u64 *w = bpf_map_lookup_elem(&accepting, &word);
	if (!w)
		return 0;
	__u64 bit = 1ULL << (tid % 64);
	if (!(*w & bit))
		return 0;
	if (clear)
		__sync_fetch_and_and(w, ~bit);
	return 1;
}

static __always_inline void set_accepting(__u32 tid)
{
	__u32 word = tid / 64;
	__u64 *w = bpf_map_lookup_elem(&accepting, &word);
	if (w)
		__sync_fetch_and_or(w, 1ULL << (tid % 64));
}

static __always_inline int is_watched(struct config *c, __u32 tgid)
{
	if (tgid == c->self_tgid)
		return 0;
	if (c->mode == MODE_ALL)
		return 1;
	if (tgid_watched(tgid))
		return 1;
	if (!c->has_cgroups)
		return 0;
	__u64 cg = bpf_get_current_cgroup_id();
	return bpf_map_lookup_elem(&watched_cgroups, &cg) != 0;
}

static __always_inline __u64 wakeup_flags(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP
									     : BPF_RB_NO_WAKEUP;
}

static __always_inline void read_str(char *dst, __u32 *len, unsigned long src)
{
	long n = src ? bpf_probe_read_user_str(dst, ARG_STR_LEN, (const void *)src) : 0;
	*len = n > 0 ? n : 0;
}

static __always_inline void read_addr(struct args_event *e, unsigned long src, unsigned long len)
{
	e->addr_len = 0;
	if (len > ARG_ADDR_LEN)
		len = ARG_ADDR_LEN;
	// Keep the compiler from re-reading the unclamped value: the verifier
	// must see the bound on the register passed.
	asm volatile("" : "+r"(len));
	if (!src || len == 0 || len > ARG_ADDR_LEN)
		return;
	if (bpf_probe_read_user(e->addr, len, (const void *)src) == 0)
		e->addr_len = len;
}


static __always_inline void args_event(struct pt_regs *regs, __u32 tgid, __u32 tid, __u32 nr)
{
	struct args_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(0);
		return;
	}
	unsigned long a0 = BPF_CORE_READ(regs, di);
	unsigned long a1 = BPF_CORE_READ(regs, si);
	unsigned long a2 = BPF_CORE_READ(regs, dx);
	unsigned long a3 = BPF_CORE_READ(regs, r10);
	unsigned long a4 = BPF_CORE_READ(regs, r8);
	e->kind = EV_ARGS;
	e->tgid = tgid;
	e->tid = tid;
	e->nr = nr;
	e->ts = bpf_ktime_get_boot_ns();
	e->num[0] = 0;
	e->num[1] = 0;
	e->str_len = 0;
	e->str2_len = 0;
	e->addr_len = 0;
	e->pad = 0;
	switch (nr) {
	case NR_OPEN: // open(path, flags)
		read_str(e->str, &e->str_len, a0);
		e->num[0] = a1;
		e->num[1] = (__u64)-100; // AT_FDCWD
		break;
	case NR_OPENAT: // openat(dfd, path, flags)
		read_str(e->str, &e->str_len, a1);
		e->num[0] = a2;
		e->num[1] = a0;
		break;
	case NR_OPENAT2: { // openat2(dfd, path, how): how->flags first
		__u64 flags = 0;
		bpf_probe_read_user(&flags, sizeof(flags), (const void *)a2);
		read_str(e->str, &e->str_len, a1);
		e->num[0] = flags;
		e->num[1] = a0;
		break;
	}
	case NR_CONNECT: // connect(fd, addr, len)
	case NR_BIND:
		read_addr(e, a1, a2);
		e->num[0] = a0;
		break;
	case NR_PTRACE: // ptrace(request, pid)
		e->num[0] = a0;
		e->num[1] = a1;
		break;
	case NR_SETUID: // setuid(uid): the new effective id
	case NR_SETGID:
		e->num[0] = a0;
		e->num[1] = a0;
		break;
	case NR_SETREUID: // setreuid(real, effective)
	case NR_SETREGID:
	case NR_SETRESUID: // setresuid(real, effective, saved)
	case NR_SETRESGID:
		e->num[0] = a0;
		e->num[1] = a1;
		break;
	case NR_MOUNT: // mount(source, target, type, flags)
		read_str(e->str, &e->str_len, a0);
		read_str(e->str2, &e->str2_len, a1);
		e->num[0] = a3;
		break;
	case NR_INIT_MODULE: // init_module(image, len, params)
		read_str(e->str, &e->str_len, a2);
		e->num[0] = a1;
		break;
	case NR_FINIT_MODULE: // finit_module(fd, params, flags)
		read_str(e->str, &e->str_len, a1);
		e->num[0] = a0;
		break;
	case NR_MEMFD_CREATE: // memfd_create(name, flags)
		read_str(e->str, &e->str_len, a0);
		e->num[0] = a1;
		break;
	case NR_UNLINK: // unlink(path)
		read_str(e->str, &e->str_len, a0);
		e->num[1] = (__u64)-100;
		break;
	case NR_UNLINKAT: // unlinkat(dfd, path, flags)
		read_str(e->str, &e->str_len, a1);
		e->num[0] = a2;
		e->num[1] = a0;
		break;
	case NR_RENAME: // rename(old, new)
		read_str(e->str, &e->str_len, a0);
		read_str(e->str2, &e->str2_len, a1);
		e->num[1] = (__u64)-100;
		break;
	case NR_RENAMEAT: // renameat(olddfd, old, newdfd, new[, flags])
	case NR_RENAMEAT2:
		read_str(e->str, &e->str_len, a1);
		read_str(e->str2, &e->str2_len, a3);
		e->num[0] = a4;
		e->num[1] = a0;
		break;
	}
	bpf_ringbuf_submit(e, wakeup_flags());
	count(1);
}

// accept(fd, addr, len): where the peer will be written.
static __always_inline void accepting_now(struct pt_regs *regs, __u32 tid, __u32 nr)
{
	struct accept_buf b = {
		.addr = BPF_CORE_READ(regs, si),
		.len = BPF_CORE_READ(regs, dx),
		.fd = (__u32)BPF_CORE_READ(regs, di),
		.nr = nr,
	};
	if (!b.addr || !b.len)
		return; // the caller does not ask for the peer
	if (bpf_map_update_elem(&accept_bufs, &tid, &b, BPF_ANY) == 0)
		set_accepting(tid);
}

// The thread's accept has returned: its peer, when the call wrote one.
static __always_inline void accepted(__u32 tgid, __u32 tid)
{
	struct accept_buf *b = bpf_map_lookup_elem(&accept_bufs, &tid);
	if (!b)
		return;
	__u32 len = 0;
	bpf_probe_read_user(&len, sizeof(len), (const void *)b->len);
	struct args_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(0);
		bpf_map_delete_elem(&accept_bufs, &tid);
		return;
	}
	e->kind = EV_ARGS;
	e->tgid = tgid;
	e->tid = tid;
	e->nr = b->nr;
	e->ts = bpf_ktime_get_boot_ns();
	e->num[0] = b->fd;
	e->num[1] = 0;
	e->str_len = 0;
	e->str2_len = 0;
	e->pad = 0;
	read_addr(e, b->addr, len);
	bpf_map_delete_elem(&accept_bufs, &tid);
	bpf_ringbuf_submit(e, wakeup_flags());
	count(1);
}

SEC("raw_tracepoint/sys_enter")
int on_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	struct config *c = get_cfg();
	if (!c)
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (!is_watched(c, tgid))
		return 0;
	if (accepting_bit((__u32)id, 1))
		accepted(tgid, (__u32)id);
	struct syscall_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(0);
		return 0;
	}
	e->kind = EV_SYSCALL;
	e->tgid = tgid;
	e->tid = (__u32)id;
	__u32 nr = (__u32)ctx->args[1];
	e->nr = nr;
	e->ts = bpf_ktime_get_boot_ns();
	bpf_ringbuf_submit(e, wakeup_flags());
	count(1);
	// One load and a bit test for the calls without argument capture.
	if (nr < ARGMASK_WORDS * 64 &&
	    (c->argmask[(nr / 64) & (ARGMASK_WORDS - 1)] >> (nr % 64)) & 1) {
		struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
		if (nr == NR_ACCEPT || nr == NR_ACCEPT4)
			accepting_now(regs, (__u32)id, nr);
		else
			args_event(regs, tgid, (__u32)id, nr);
	}
	return 0;
}

static __always_inline void proc_event(__u32 kind, __u32 tgid, __u32 tid, __u32 ppid)
{
	struct proc_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(0);
		return;
	}
	e->kind = kind;
	e->tgid = tgid;
	e->tid = tid;
	e->ppid = ppid;
	e->ts = bpf_ktime_get_boot_ns();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	// Process events are rare: wake user space at once.
	bpf_ringbuf_submit(e, 0);
	count(1);
}

// A watched process's children are watched too, and user space learns of
// each new process (not thread) with its parent. Runs in the parent.
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	struct config *c = get_cfg();
	if (!c)
		return 0;
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	if (ptgid == ctgid || ptgid == c->self_tgid)
		return 0;
	if (c->mode != MODE_ALL) {
		if (!tgid_watched(ptgid))
			return 0;
		set_watched(ctgid, 1);
	}
	proc_event(EV_FORK, ctgid, BPF_CORE_READ(child, pid), ptgid);
	return 0;
}

static __always_inline void exec_event(struct task_struct *p, struct linux_binprm *bprm,
				       __u32 tgid, __u32 tid)
{
	struct exec_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(0);
		return;
	}
	e->kind = EV_EXEC;
	e->tgid = tgid;
	e->tid = tid;
	struct task_struct *parent = BPF_CORE_READ(p, real_parent);
	e->ppid = BPF_CORE_READ(parent, tgid);
	BPF_CORE_READ_STR_INTO(&e->parent_comm, parent, comm);
	e->ts = bpf_ktime_get_boot_ns();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	__u64 ug = bpf_get_current_uid_gid();
	e->uid = (__u32)ug;
	e->gid = ug >> 32;
	e->cgroup = bpf_get_current_cgroup_id();
	e->pad = 0;
	long n = bpf_probe_read_kernel_str(e->path, sizeof(e->path), BPF_CORE_READ(bprm, filename));
	e->path_len = n > 0 ? n : 0;
	unsigned long start = BPF_CORE_READ(p, mm, arg_start);
	unsigned long end = BPF_CORE_READ(p, mm, arg_end);
	unsigned long full = end > start ? end - start : 0;
	unsigned long len = full;
	if (len > EXEC_ARGS_LEN)
		len = EXEC_ARGS_LEN;
	e->args_full = full;
	e->args_len = 0;
	if (len > 0 && bpf_probe_read_user(e->args, len, (void *)start) == 0)
		e->args_len = len;
	bpf_ringbuf_submit(e, 0);
	count(1);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, int old_pid, struct linux_binprm *bprm)
{
	struct config *c = get_cfg();
	if (!c)
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (tgid == c->self_tgid)
		return 0;
	if (c->mode != MODE_ALL) {
		char comm[TASK_COMM_LEN] = {};
		bpf_get_current_comm(comm, sizeof(comm));
		if (bpf_map_lookup_elem(&watched_comms, comm))
			set_watched(tgid, 1);
	}
	if (is_watched(c, tgid))
		exec_event(p, bprm, tgid, (__u32)id);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit)
{
	struct config *c = get_cfg();
	if (!c)
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	accepting_bit((__u32)id, 1); // a thread that ends inside accept
	// The thread-group leader's exit ends the process.
	if (tgid != (__u32)id)
		return 0;
	if (is_watched(c, tgid))
		proc_event(EV_EXIT, tgid, (__u32)id, 0);
	set_watched(tgid, 0);
	return 0;
}
