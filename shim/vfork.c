/* vfork.c: owns the vfork wrapper. The child of vfork() shares its parent's
 * memory and stack until it execs or ends, so it would find its parent's
 * pid in self.c's cache: the wrapper counts it in `sc_memory_shared` first,
 * and the parent counts it out when the call returns there (the child has
 * exec'd or ended by then; other threads of the parent never see a wrong
 * pid, the cache being theirs). Everything else is the real vfork's: the
 * system call itself, made here as glibc makes it, since a wrapper that
 * called vfork() and returned would return twice from one stack frame. The
 * child is then a process the shim does not follow (self.h): every wrapper
 * in it goes straight through, as before. */
#include <errno.h>
#include <sys/syscall.h>

#include "self.h"
#include "shim.h"

#ifdef SC_PID_CACHE

#define STR_(x) #x
#define STR(x) STR_(x)

/* errno for a failed vfork (the kernel's error, negated, in `err`). */
__attribute__((used)) static long vfork_failed(long err)
{
	errno = (int)-err;
	return -1;
}

/* The return address is popped into %rdi, which the system call preserves,
 * so that the child's own returns cannot overwrite what the parent returns
 * through; with a shadow stack in use the child jumps back instead of
 * returning (glibc's sysdeps/unix/sysv/linux/x86_64/vfork.S does the same;
 * rdsspq reads 0 where there is none). */
__asm__(".text\n"
	".globl vfork\n"
	".hidden sc_memory_shared\n"
	".type vfork, @function\n"
	"vfork:\n"
	"	.cfi_startproc\n"
	"	lock incl sc_memory_shared(%rip)\n"
	"	popq %rdi\n"
	"	.cfi_adjust_cfa_offset -8\n"
	"	.cfi_register %rip, %rdi\n"
	"	movl $" STR(SYS_vfork) ", %eax\n"
	"	syscall\n"
	"	pushq %rdi\n"
	"	.cfi_adjust_cfa_offset 8\n"
	"	testq %rax, %rax\n"
	"	jz 1f\n"
	"	lock decl sc_memory_shared(%rip)\n"
	"	cmpq $-4095, %rax\n"
	"	jae 2f\n"
	"	ret\n"
	"1:	xorl %esi, %esi\n"
	"	rdsspq %rsi\n"
	"	testq %rsi, %rsi\n"
	"	jz 3f\n"
	"	popq %rdi\n"
	"	jmp *%rdi\n"
	"3:	ret\n"
	"2:	movq %rax, %rdi\n"
	"	jmp vfork_failed\n"
	"	.cfi_endproc\n"
	".size vfork, .-vfork\n");

#endif
