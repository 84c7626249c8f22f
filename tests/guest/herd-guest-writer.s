# herd-guest-writer: the test guest that writes to a disk.
#
# It writes numbered, checksummed 4 KiB blocks to a data disk, one per timer
# tick (18.2 a second), and reports on COM1 each block whose write and the
# cache flush after it the disk completed:
#
#     herd-guest boot
#     herd-guest id 2882400018 ring 2048
#     herd-guest resume 0
#     herd-guest ack 1
#     herd-guest ack 2
#     ...
#
# Block k goes to slot k mod N of the data disk (slot s: sectors 8s..8s+7),
# N = the disk's size in 4 KiB blocks, at most RING_MAX = 2048 (so at most the
# first 8 MiB are written, and the ring wraps).  A block (little-endian):
#
#     0   "HERDBLK1"
#     8   k (64 bits)
#     16  the boot id (32 bits, printed in the `id` line)
#     20  N
#     24  checksum a: the sum of the 1024 32-bit words, mod 2^32
#     28  checksum b: the sum of the running sums a_0..a_1023, mod 2^32
#         (a and b computed with both fields 0)
#     32  words 8..1023: word i = (k << 10 | i) xor the boot id
#
# The block being written is always the one after the last acknowledged
# one: at most one write is in flight.  At boot, the guest reads all N slots
# and continues after the highest valid block (magic and checksum right) it
# finds ("resume K", 0 on an empty disk), so a VM restarted after a crash or
# a failover goes on numbering; a torn block (a write cut short) fails its
# checksum and is written again.  All state is in RAM and the pace comes
# from timer ticks, so a live migration does not interrupt the numbering.
#
# The driver is ATA PIO on the primary IDE channel (ports 0x1f0-0x1f7,
# 0x3f6), master: QEMU's i440fx/PIIX IDE, what libvirt gives a disk with
# <target dev='hda' bus='ide'/>.  WRITE MULTIPLE / READ MULTIPLE with a
# multiple count of 8 move a block as one 4 KiB request (plain WRITE SECTORS
# would make QEMU issue eight 512-byte writes), then FLUSH CACHE.  While the
# disk is busy the CPU sits in HLT, woken by the disk's IRQ14 (or the timer).
# On an error (the disk reports ERR or DF) it prints "herd-guest error ..."
# and retries the same block at the next tick; it never acknowledges a block
# whose write or flush failed.
#
# Layout: sector 0 (SeaBIOS loads it at 0x7c00) initialises COM1, prints
# "herd-guest boot" and loads the rest of the image (LOAD_SECTORS sectors
# from the boot disk, INT 13h extended read) to 0x7e00; the block buffer is
# at BUF.  The boot disk is read-only (virtio-blk, as for herd-guest.img).
#
# Built by tests/guest/meson.build into herd-guest-writer.img (1 MiB).

	.code16

	.include "guest-io.inc"

	.set IVT_IRQ14,		0x76 * 4	# SeaBIOS maps IRQ8-15 to 0x70-0x77
	.set ATA_DATA,		0x1f0
	.set ATA_ERROR,		0x1f1
	.set ATA_COUNT,		0x1f2
	.set ATA_LBA0,		0x1f3		# then 0x1f4, 0x1f5: LBA bits 8-23
	.set ATA_DEVICE,	0x1f6
	.set ATA_CMD,		0x1f7		# read: the status (clears the IRQ)
	.set ATA_ALTSTATUS,	0x3f6		# write: device control
	.set ST_BSY,		0x80
	.set ST_DF,		0x20
	.set ST_DRQ,		0x08
	.set ST_ERR,		0x01
	.set CMD_IDENTIFY,	0xec
	.set CMD_SETMULT,	0xc6
	.set CMD_READMULT,	0xc4
	.set CMD_WRITEMULT,	0xc5
	.set CMD_FLUSH,		0xe7
	.set BLOCK_SECTORS,	8		# a block is 4 KiB
	.set BLOCK_DWORDS,	1024
	.set RING_MAX,		2048		# blocks: 8 MiB
	.set MAGIC0,		0x44524548	# "HERD"
	.set MAGIC1,		0x314b4c42	# "BLK1"
	.set LOAD_SECTORS,	8		# the image after sector 0 (4 KiB)
	.set BUF,		0xa000		# one block

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
	movb	%dl, boot_drive		# the drive SeaBIOS booted
	com1_init
	movw	$msg_boot, %si
	call	puts

	# The rest of the image, from the boot drive.
	sti
	movb	boot_drive, %dl
	movw	$dap, %si
	movb	$0x42, %ah
	int	$0x13
	jc	1f
	cli
	jmp	stage2
1:	movw	$msg_load_err, %si
	call	puts
2:	hlt				# for ever
	jmp	2b

	io_routines

	.balign	4
dap:	.byte	16, 0			# disk address packet: size, reserved
	.word	LOAD_SECTORS
	.word	0x7e00, 0		# buffer offset, segment
	.quad	1			# first sector

msg_boot:	.asciz	"herd-guest boot\r\n"
msg_load_err:	.asciz	"herd-guest error cannot load the image\r\n"
boot_drive:	.byte	0

	.org	510
	.word	0xaa55			# boot signature

# ---- loaded by the boot sector at 0x7e00
stage2:
	timer_init
	movw	$irq14, IVT_IRQ14
	movw	$0, IVT_IRQ14+2
	outb_imm PIC1_DATA, 0xfa	# IRQ0 and IRQ2 (the cascade) only
	outb_imm PIC2_DATA, 0xbf	# IRQ14 only
	outb_imm ATA_ALTSTATUS, 0x00	# device control: nIEN=0, IRQ14 on
	sti

	# The boot id: the TSC (running on the host's clock under TCG, so its
	# low bits differ at every boot) mixed with the RTC's day and time.
	rdtsc
	xorl	%edx, %eax
	movl	%eax, %ebx
	xorl	%ecx, %ecx
	movw	$rtc_regs, %si
1:	lodsb
	testb	%al, %al
	js	2f			# 0xff ends the list
	outb	%al, $0x70
	inb	$0x71, %al
	shll	$8, %ecx
	movb	%al, %cl
	jmp	1b
2:	xorl	%ecx, %ebx
	movl	%ebx, boot_id

	# The data disk: primary IDE master, its size from IDENTIFY (words
	# 60-61: sectors addressable with LBA28).
	outb_imm ATA_DEVICE, 0xe0	# master, LBA
	outb_imm ATA_CMD, CMD_IDENTIFY
	call	ata_wait		# no disk: status 0, no DRQ
	testb	$(ST_ERR | ST_DF), %al
	jnz	no_disk
	testb	$ST_DRQ, %al
	jz	no_disk
	movw	$BUF, %di
	movw	$128, %cx
	movw	$ATA_DATA, %dx
	rep insl
	movl	BUF+120, %eax
	shrl	$3, %eax		# sectors -> blocks
	cmpl	$RING_MAX, %eax
	jbe	1f
	movl	$RING_MAX, %eax
1:	cmpl	$2, %eax
	jb	too_small
	movl	%eax, ring
	outb_imm ATA_COUNT, BLOCK_SECTORS
	outb_imm ATA_CMD, CMD_SETMULT	# a DRQ block of 8 sectors
	call	ata_wait
	testb	$(ST_ERR | ST_DF), %al
	jnz	no_disk

	movw	$msg_id, %si
	call	puts
	movl	boot_id, %eax
	call	put_decimal
	movw	$msg_ring, %si
	call	puts
	movl	ring, %eax
	call	put_decimal
	movw	$msg_crlf, %si
	call	puts

	# Resume after the highest valid block on the disk.
scan:
	movl	slot, %eax
	cmpl	ring, %eax
	jae	scan_done
	call	read_block
	jc	read_error
	call	valid_block
	jc	1f
	cmpl	seq, %eax
	jbe	1f
	movl	%eax, seq
1:	incl	slot
	jmp	scan
read_error:
	movw	$msg_read_err, %si
	movl	slot, %eax
	call	report_error
	call	next_tick
	jmp	scan
scan_done:
	movw	$msg_resume, %si
	call	puts
	movl	seq, %eax
	call	put_decimal
	movw	$msg_crlf, %si
	call	puts

	# Write block seq+1, flush, acknowledge; at most one a tick.
write_loop:
	movl	ticks, %eax
	movl	%eax, started
	call	build_block
	movl	seq, %eax
	incl	%eax
	xorl	%edx, %edx
	divl	ring			# edx = slot
	movl	%edx, %eax
	call	write_block
	jc	write_error
	incl	seq
	movw	$msg_ack, %si
	call	puts
	movl	seq, %eax
	call	put_decimal
	movw	$msg_crlf, %si
	call	puts
	call	next_tick
	jmp	write_loop
write_error:
	movw	$msg_write_err, %si
	movl	seq, %eax
	incl	%eax
	call	report_error
	call	next_tick
	jmp	write_loop

no_disk:
	movw	$msg_no_disk, %si
	jmp	1f
too_small:
	movw	$msg_too_small, %si
1:	call	puts
halt:
	sti
	hlt				# for ever (the timer still ticks)
	jmp	halt

# next_tick: wait until `ticks` differs from `started`.  Clobbers eax.
next_tick:
	cli
	movl	ticks, %eax
	cmpl	started, %eax
	jne	1f
	sti
	hlt				# STI's shadow: no tick is lost before HLT
	jmp	next_tick
1:	sti
	ret

# report_error: print the string at %si, %eax, the status (`status`) and
# the error register, and a line end.  Clobbers eax, ebx, edx, si, di.
report_error:
	pushl	%eax
	call	puts
	popl	%eax
	call	put_decimal
	movw	$msg_status, %si
	call	puts
	movzbl	status, %eax
	call	put_decimal
	movw	$msg_error_reg, %si
	call	puts
	movw	$ATA_ERROR, %dx
	inb	%dx, %al
	movzbl	%al, %eax
	call	put_decimal
	movw	$msg_crlf, %si
	call	puts
	movl	ticks, %eax		# retry at the next tick
	movl	%eax, started
	ret

# ata_wait: wait until the disk is not busy; AL = its status.  Sleeps in HLT
# meanwhile (IRQ14 or the timer wakes it).  Clobbers dx.
ata_wait:
	cli
	movw	$ATA_ALTSTATUS, %dx	# does not acknowledge the IRQ
	inb	%dx, %al
	testb	$ST_BSY, %al
	jz	1f
	sti
	hlt
	jmp	ata_wait
1:	sti
	movb	%al, status
	ret

# ata_block_cmd: issue command BL for the 8 sectors of slot %eax.
# Clobbers eax, ecx, dx.
ata_block_cmd:
	shll	$3, %eax		# LBA = slot * 8
	movl	%eax, %ecx
	shrl	$24, %eax
	andb	$0x0f, %al
	orb	$0xe0, %al		# master, LBA, LBA bits 24-27
	movw	$ATA_DEVICE, %dx
	outb	%al, %dx
	movb	$BLOCK_SECTORS, %al
	movw	$ATA_COUNT, %dx
	outb	%al, %dx
	movb	%cl, %al
	movw	$ATA_LBA0, %dx
	outb	%al, %dx
	movb	%ch, %al
	incw	%dx
	outb	%al, %dx
	shrl	$16, %ecx
	movb	%cl, %al
	incw	%dx
	outb	%al, %dx
	movb	%bl, %al
	movw	$ATA_CMD, %dx
	outb	%al, %dx
	ret

# read_block: read slot %eax into BUF; CF set on an error.
read_block:
	movb	$CMD_READMULT, %bl
	call	ata_block_cmd
	call	ata_wait
	testb	$(ST_ERR | ST_DF), %al
	jnz	1f
	testb	$ST_DRQ, %al
	jz	1f
	movw	$BUF, %di
	movw	$BLOCK_DWORDS, %cx
	movw	$ATA_DATA, %dx
	rep insl
	clc
	ret
1:	stc
	ret

# write_block: write BUF to slot %eax, then flush the disk's cache; CF set
# on an error.
write_block:
	movb	$CMD_WRITEMULT, %bl
	call	ata_block_cmd
	call	ata_wait
	testb	$(ST_ERR | ST_DF), %al
	jnz	1f
	testb	$ST_DRQ, %al
	jz	1f
	movw	$BUF, %si
	movw	$BLOCK_DWORDS, %cx
	movw	$ATA_DATA, %dx
	rep outsl
	call	ata_wait		# the write
	testb	$(ST_ERR | ST_DF), %al
	jnz	1f
	outb_imm ATA_CMD, CMD_FLUSH
	call	ata_wait		# the flush
	testb	$(ST_ERR | ST_DF), %al
	jnz	1f
	clc
	ret
1:	stc
	ret

# checksum: eax = a, edx = b over the 1024 words of BUF (see the top).
# Clobbers cx, si.
checksum:
	xorl	%eax, %eax
	xorl	%edx, %edx
	movw	$BUF, %si
	movw	$BLOCK_DWORDS, %cx
1:	addl	(%si), %eax
	addl	%eax, %edx
	addw	$4, %si
	loop	1b
	ret

# build_block: block seq+1 in BUF.  Clobbers eax, ebx, ecx, edx, si, di.
build_block:
	movl	seq, %ebx
	incl	%ebx			# k
	movl	%ebx, %eax
	shll	$10, %eax
	xorl	boot_id, %eax		# word i = (k << 10) xor boot id xor i
	movw	$BUF, %di
	xorl	%ecx, %ecx
1:	movl	%eax, %edx
	xorl	%ecx, %edx
	movl	%edx, (%di)
	addw	$4, %di
	incl	%ecx
	cmpl	$BLOCK_DWORDS, %ecx
	jb	1b
	movl	$MAGIC0, BUF
	movl	$MAGIC1, BUF+4
	movl	%ebx, BUF+8
	movl	$0, BUF+12
	movl	boot_id, %eax
	movl	%eax, BUF+16
	movl	ring, %eax
	movl	%eax, BUF+20
	movl	$0, BUF+24
	movl	$0, BUF+28
	call	checksum
	movl	%eax, BUF+24
	movl	%edx, BUF+28
	ret

# valid_block: CF clear and eax = k if BUF holds a valid block (magic, k
# below 2^32, checksum); clobbers the checksum fields of BUF, ebx, ecx,
# edx, si.
valid_block:
	cmpl	$MAGIC0, BUF
	jne	1f
	cmpl	$MAGIC1, BUF+4
	jne	1f
	cmpl	$0, BUF+12
	jne	1f
	movl	BUF+24, %ebx
	pushl	BUF+28
	movl	$0, BUF+24
	movl	$0, BUF+28
	call	checksum
	popl	%ecx
	cmpl	%ebx, %eax
	jne	1f
	cmpl	%ecx, %edx
	jne	1f
	movl	BUF+8, %eax
	clc
	ret
1:	stc
	ret

# irq14: the disk's interrupt; reading its status acknowledges it.
irq14:
	pushw	%ax
	pushw	%dx
	movw	$ATA_CMD, %dx
	inb	%dx, %al
	movb	$PIC_EOI, %al
	outb	%al, $PIC2_CMD
	outb	%al, $PIC1_CMD
	popw	%dx
	popw	%ax
	iret

rtc_regs:	.byte	7, 4, 2, 0, 0xff	# day, hours, minutes, seconds
msg_id:		.asciz	"herd-guest id "
msg_ring:	.asciz	" ring "
msg_resume:	.asciz	"herd-guest resume "
msg_ack:	.asciz	"herd-guest ack "
msg_read_err:	.asciz	"herd-guest error read slot "
msg_write_err:	.asciz	"herd-guest error write block "
msg_status:	.asciz	" status "
msg_error_reg:	.asciz	" error "
msg_no_disk:	.asciz	"herd-guest error no data disk (primary IDE master)\r\n"
msg_too_small:	.asciz	"herd-guest error data disk smaller than 8 KiB\r\n"
msg_crlf:	.asciz	"\r\n"

	.balign	4
ticks:		.long	0		# timer ticks since boot
started:	.long	0		# ticks when the current block was started
boot_id:	.long	0
ring:		.long	0		# N: blocks in the ring
seq:		.long	0		# the last block acknowledged (or resumed)
slot:		.long	0		# the scan's slot
status:		.byte	0		# the disk's status at the last ata_wait
digits:		.skip	10		# 2^32 - 1 has 10 digits
digits_end:	.byte	0

	# as fails here ("attempt to move .org backwards") if the image is
	# larger than what the boot sector loads.
	.org	512 + LOAD_SECTORS * 512
	.if	BUF < 0x7c00 + 512 + LOAD_SECTORS * 512
	.error	"BUF overlaps the image"
	.endif

	.section .note.GNU-stack, "", @progbits
