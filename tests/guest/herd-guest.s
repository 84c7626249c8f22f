# herd-guest: the tiny real guest of herd's tests.
#
# A 16-bit x86 boot sector. SeaBIOS loads it at 0000:7C00 and jumps to it.
# It initialises COM1, prints "herd-guest boot\r\n" once and then
# "herd-guest N\r\n" about once a second, N = 1, 2, 3, ... (32 bits, decimal).
# Between prints the CPU sits in HLT, woken by the PIT timer interrupt
# (IRQ0, 18.2065 Hz), which the guest handles itself: SeaBIOS's own IRQ0
# handler (the one that updates 0040:006C) switches CPU modes on every tick,
# which under TCG costs ~0.7 % of a host CPU; this one costs ~0.05 %.
#
# All state (the counter and the timing) lives in guest RAM and is derived
# only from timer ticks (QEMU's virtual clock), never from the wall clock, so
# the guest keeps counting across a live migration and does not jump when the
# host clock does.
#
# There is no ACPI and no power-button handling: the guest cannot be shut
# down gracefully, only powered off (virsh destroy).
#
# Assembled with --defsym DIRTY_MIB=N it is herd-guest-dirty.img: the same
# guest, which also writes one byte into every 4 KiB page of N MiB of RAM
# (from 2 MiB up) at every timer tick, 18.2 times a second, so that a live
# migration has N MiB to send again and again (a migration limited to less
# than N MiB/s never converges).  Real mode reaches only the first MiB, so it
# switches to "unreal" mode first: FS keeps a 4 GiB limit from a moment in
# protected mode.
#
# Built by tests/guest/meson.build with GNU as/ld/objcopy into a raw disk
# image padded to 1 MiB (SeaBIOS does not boot a 512-byte disk).

	.code16

	.include "guest-io.inc"

	.set TICKS_PER_PRINT,	18		# 18.2065 ticks = 1 s:
	.set FRAC_PER_PRINT,	2065		#   18 + 2065/10000
	.set FRAC_ONE,		10000
	.set DIRTY_BASE,	0x200000	# herd-guest-dirty: its pages start at 2 MiB

	.text
	boot_entry

	com1_init
	# All interrupts but the timer masked.
	timer_init
	outb_imm PIC1_DATA, 0xfe	# only IRQ0
	outb_imm PIC2_DATA, 0xff

	movw	$msg_boot, %si
	call	puts

	.ifdef DIRTY_MIB
	inb	$0x92, %al		# fast A20 on: addresses above 1 MiB
	orb	$0x02, %al
	andb	$0xfe, %al		# (bit 0 would reset the machine)
	outb	%al, $0x92
	lgdt	gdt_desc
	movl	%cr0, %eax
	orb	$1, %al
	movl	%eax, %cr0		# protected mode, interrupts still off
	movw	$8, %bx			# the flat data descriptor
	movw	%bx, %fs		# FS caches its 4 GiB limit…
	andb	$0xfe, %al
	movl	%eax, %cr0		# …back in real mode
	xorw	%bx, %bx
	movw	%bx, %fs		# base 0, the limit stays ("unreal")
	.endif
	sti

idle:
	hlt				# until the next interrupt (IRQ0)
	.ifdef DIRTY_MIB
	movl	$DIRTY_BASE, %ebx
	movb	ticks, %al
	orb	$1, %al			# never 0: a page of zeroes is sent as one
1:	addr32 movb %al, %fs:(%ebx)
	addl	$4096, %ebx
	cmpl	$DIRTY_BASE + DIRTY_MIB * 0x100000, %ebx
	jb	1b
	.endif
	movl	ticks, %eax		# one instruction: IRQ0 cannot tear it
	cmpl	next_due, %eax
	jb	idle			# not yet

	# Due: the next print is 18.2065 ticks after this one was due.
	addl	$TICKS_PER_PRINT, next_due
	addw	$FRAC_PER_PRINT, next_frac
	cmpw	$FRAC_ONE, next_frac
	jb	2f
	subw	$FRAC_ONE, next_frac
	incl	next_due
2:	# Far behind (the VM was starved of CPU)? Resynchronise rather than
	# print a burst of lines: N counts lines, one per second or so.
	cmpl	next_due, %eax
	jb	3f
	addl	$TICKS_PER_PRINT, %eax
	movl	%eax, next_due
3:	incl	counter
	movw	$msg_prefix, %si
	call	puts
	movl	counter, %eax
	call	put_decimal
	movw	$msg_crlf, %si
	call	puts
	jmp	idle

	io_routines

msg_boot:	.asciz	"herd-guest boot\r\n"
msg_prefix:	.asciz	"herd-guest "
msg_crlf:	.asciz	"\r\n"

	.balign	4
counter:	.long	0		# lines printed so far
ticks:		.long	0		# timer ticks since boot
next_due:	.long	TICKS_PER_PRINT	# tick count of the next print
next_frac:	.word	FRAC_PER_PRINT	# fraction of next_due, in 1/10000
digits:		.skip	10		# 2^32 - 1 has 10 digits
digits_end:	.byte	0

	.ifdef DIRTY_MIB
	.balign	8
gdt:		.quad	0
		.quad	0x00cf92000000ffff	# data, base 0, limit 4 GiB, writable
gdt_desc:	.word	15			# limit: two descriptors
		.long	gdt
	.endif

	.org	510
	.word	0xaa55			# boot signature

	.section .note.GNU-stack, "", @progbits
