# herd-guest: the tiny real guest of herd's tests.
#
# A 16-bit x86 boot sector. SeaBIOS loads it at 0000:7C00 and jumps to it.
# It initialises COM1, prints "herd-guest boot\r\n" once and then
# "herd-guest N\r\n" about once a second, N = 1, 2, 3, ... (32 bits, decimal).
# Between prints the CPU sits in HLT and is woken by the BIOS timer
# interrupt (IRQ0, 18.2065 Hz), which increments the dword at 0040:006C.
#
# All state (the counter and the timing) lives in guest RAM and is derived
# only from timer ticks, never from the wall clock, so the guest keeps
# counting across a live migration and does not jump when the host clock
# does. The BIOS resets the tick count to 0 at midnight; that is handled.
#
# There is no ACPI and no power-button handling: the guest cannot be shut
# down gracefully, only powered off (virsh destroy).
#
# Built by tests/guest/meson.build with GNU as/ld/objcopy into a raw disk
# image padded to 1 MiB (SeaBIOS does not boot a 512-byte disk).

	.code16

	.set COM1,		0x3f8
	.set BDA_TICKS,		0x046c		# 0040:006C as a linear address
	.set TICKS_PER_DAY,	0x1800b0	# where the BIOS wraps BDA_TICKS
	.set TICKS_PER_PRINT,	18		# 18.2065 ticks = 1 s:
	.set FRAC_PER_PRINT,	2065		#   18 + 2065/10000
	.set FRAC_ONE,		10000

	# outb_imm PORT, VALUE
	.macro outb_imm port, value
	movw	$\port, %dx
	movb	$\value, %al
	outb	%al, %dx
	.endm

	.text
	.globl	start
start:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	$0x7c00, %sp		# stack grows down below the sector
	ljmp	$0, $normalised		# some BIOSes enter at 07C0:0000
normalised:
	cld

	# COM1: no UART interrupts, 115200 baud, 8N1, FIFOs on, DTR+RTS.
	outb_imm COM1+1, 0x00		# IER
	outb_imm COM1+3, 0x80		# LCR: DLAB=1
	outb_imm COM1+0, 0x01		# DLL: divisor 1 = 115200 baud
	outb_imm COM1+1, 0x00		# DLM
	outb_imm COM1+3, 0x03		# LCR: 8 data bits, no parity, 1 stop
	outb_imm COM1+2, 0xc7		# FCR: enable and clear FIFOs
	outb_imm COM1+4, 0x03		# MCR: DTR, RTS (OUT2 off: no IRQ)

	movw	$msg_boot, %si
	call	puts

	movl	BDA_TICKS, %eax
	movl	%eax, last_tick
	sti

idle:
	hlt				# until the next interrupt (IRQ0)
	movl	BDA_TICKS, %eax		# one instruction: IRQ0 cannot tear it
	movl	%eax, %edx
	subl	last_tick, %edx		# ticks since we last looked
	movl	%eax, last_tick
	jns	1f
	addl	$TICKS_PER_DAY, %edx	# the BIOS wrapped at midnight
1:	addl	%edx, elapsed
	movl	elapsed, %eax
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

# put_decimal: print %eax in decimal. Clobbers eax, ebx, edx, si, di.
put_decimal:
	movw	$digits_end, %di
	movl	$10, %ebx
1:	xorl	%edx, %edx
	divl	%ebx			# edx:eax / 10
	addb	$'0', %dl
	decw	%di
	movb	%dl, (%di)
	testl	%eax, %eax
	jnz	1b
	movw	%di, %si
	# fall through

# puts: print the NUL-terminated string at %si. Clobbers ax, dx, si.
puts:
	lodsb
	testb	%al, %al
	jz	2f
	movb	%al, %ah
	movw	$COM1+5, %dx		# LSR
1:	inb	%dx, %al
	testb	$0x20, %al		# THRE: transmitter ready for a byte
	jz	1b
	movb	%ah, %al
	movw	$COM1, %dx		# THR
	outb	%al, %dx
	jmp	puts
2:	ret

msg_boot:	.asciz	"herd-guest boot\r\n"
msg_prefix:	.asciz	"herd-guest "
msg_crlf:	.asciz	"\r\n"

	.balign	4
counter:	.long	0		# lines printed so far
elapsed:	.long	0		# timer ticks since boot
next_due:	.long	TICKS_PER_PRINT	# elapsed tick count of the next print
last_tick:	.long	0		# BDA_TICKS when we last looked
next_frac:	.word	FRAC_PER_PRINT	# fraction of next_due, in 1/10000
digits:		.skip	10		# 2^32 - 1 has 10 digits
digits_end:	.byte	0

	.org	510
	.word	0xaa55			# boot signature

	.section .note.GNU-stack, "", @progbits
